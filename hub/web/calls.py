"""/api/calls: the call log, notes on a call, and click-to-call."""

from __future__ import annotations

from aiohttp import web

from connectors.ami import AmiError, AmiNotConnected
from crm_core import phones
from crm_core.clients import ClientBook
from crm_core.errors import InvalidInput
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog, CallQuery, MissedCaller, MissedQuery, call_to_dict
from crm_core.telephony.events import CallKey
from crm_core.telephony.live_notes import write_live_note
from hub.telephony import NoPbx, PbxElsewhere
from hub.web.endpoints import ALL_ROLES, Api, ApiError, actor_of, current_user, json_response, page_response, session_of
from hub.web.schemas import (
    CallNotes,
    CallOut,
    CallPageOut,
    CallSearch,
    LiveNoteOut,
    MissedPageOut,
    MissedSearch,
    OriginateIn,
    OriginateOut,
)
from hub.web.state import CONTEXT, TELEPHONY

api = Api()
CALLERS = {Role.admin, Role.operator}
CALL = r"/api/calls/{id:\d+}"


def _log(request: web.Request) -> CallLog:
    return CallLog(session_of(request), request.app[CONTEXT].rules)


@api.route(
    "GET",
    "/api/calls",
    summary="The call log: by client, operator, queue, status, period, number",
    roles=ALL_ROLES,
    tag="calls",
    query=CallSearch,
    response=CallPageOut,
)
async def search_calls(request: web.Request, query: CallSearch) -> web.Response:
    values = query.model_dump()
    if query.number:
        values["number"] = phones.normalise(query.number, request.app[CONTEXT].rules.region).e164 or query.number
    return page_response(await _log(request).search(CallQuery(**values)), call_to_dict)


@api.route("GET", CALL, summary="One call", roles=ALL_ROLES, tag="calls", response=CallOut, errors=(404,))
async def read_call(request: web.Request) -> web.Response:
    return json_response(call_to_dict(await _log(request).get(int(request.match_info["id"]))))


@api.route(
    "PATCH",
    CALL,
    summary="Write the operator's notes on a call",
    roles={Role.admin, Role.operator},
    tag="calls",
    body=CallNotes,
    response=CallOut,
    errors=(404,),
)
async def note_call(request: web.Request, body: CallNotes) -> web.Response:
    call = await _log(request).set_notes(int(request.match_info["id"]), body.notes, actor_of(request))
    return json_response(call_to_dict(call))


@api.route(
    "PUT",
    r"/api/calls/live/{pbx}/{linkedid}/notes",
    summary="Write the operator's notes on a call in progress (kept until its log row is written)",
    roles=CALLERS,
    tag="calls",
    body=CallNotes,
    response=LiveNoteOut,
)
async def note_live_call(request: web.Request, body: CallNotes) -> web.Response:
    key = CallKey(request.match_info["pbx"], request.match_info["linkedid"])
    call_id = await write_live_note(session_of(request), key, body.notes, actor_of(request))
    return json_response({"pbx": key.pbx, "linkedid": key.linkedid, "notes": body.notes, "call_id": call_id})


@api.route(
    "GET",
    "/api/calls/missed",
    summary="Missed calls to call back, one line per number with how many times it tried",
    roles=ALL_ROLES,
    tag="calls",
    query=MissedSearch,
    response=MissedPageOut,
)
async def missed_callers(request: web.Request, query: MissedSearch) -> web.Response:
    return page_response(await _log(request).missed_callers(MissedQuery(**query.model_dump())), _missed_to_dict)


def _missed_to_dict(missed: MissedCaller) -> dict[str, object]:
    first = missed.first_at.isoformat() if missed.first_at else None
    return {
        "call": call_to_dict(missed.call),
        "tries": missed.tries,
        "first_at": first,
        "client_name": missed.client_name,
    }


@api.route(
    "POST",
    "/api/calls/originate",
    summary="Click-to-call: ring my phone, then dial the number",
    roles=CALLERS,
    tag="calls",
    body=OriginateIn,
    response=OriginateOut,
    errors=(409, 422, 503),
    own_transactions=True,  # waits for the PBX: no write lock held meanwhile
)
async def originate(request: web.Request, body: OriginateIn) -> web.Response:
    user = current_user(request)
    if not user.extension:
        raise InvalidInput("you have no extension to ring first; ask the admin to set one", field="extension")
    number = await _number_to_call(request, body)
    telephony = request.app.get(TELEPHONY)
    if telephony is None:
        raise ApiError(503, "no_pbx", "no PBX is configured")
    try:
        placed = await telephony.click_to_call(
            user, number, pbx=body.pbx, client_id=body.client_id, contact_id=body.contact_id
        )
    except NoPbx as exc:
        raise ApiError(503, "no_pbx", str(exc)) from None
    except PbxElsewhere as exc:
        raise ApiError(503, "pbx_elsewhere", str(exc)) from None
    except AmiNotConnected as exc:
        raise ApiError(503, "pbx_unreachable", f"the PBX is not connected: {exc}") from None
    except AmiError as exc:
        raise ApiError(502, "pbx_error", f"the PBX did not place the call: {exc}") from None
    return json_response(
        {
            "originate_id": placed.originate_id,
            "pbx": placed.pbx,
            "success": placed.result.success,
            "reason": placed.result.reason_text,
            "number": number,
        },
        status=200 if placed.result.success else 409,
    )


async def _number_to_call(request: web.Request, body: OriginateIn) -> str:
    """The E.164 number: typed, or the first phone of the chosen contact or client."""
    region = request.app[CONTEXT].rules.region
    if body.number:
        e164 = phones.normalise(body.number, region).e164
        if e164 is None:
            raise InvalidInput(f"{body.number!r} is not a phone number", field="number")
        return e164
    if body.client_id is None:
        raise InvalidInput("give a number or a client", field="number")
    async with request.app[CONTEXT].reading() as session:
        client = await ClientBook(session, request.app[CONTEXT].rules).get(body.client_id)
        numbers = [
            p.e164 for p in client.phones if p.e164 and (body.contact_id is None or p.contact_id == body.contact_id)
        ]
    if not numbers:
        raise InvalidInput("this card has no phone number to call", field="client_id")
    return numbers[0]
