"""/api/onec: the accountant's view of the 1C sync (connections, runs and their log, conflicts,
proposed matches) and, on a card, its 1C link and documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, true

from crm_core.errors import NotFound
from crm_core.models import Client, Role
from crm_core.onec import decisions
from crm_core.onec.journal import SyncBusy
from crm_core.onec.models import (
    ConflictStatus,
    LinkState,
    OnecConflict,
    OnecLink,
    OnecLogEntry,
    OnecProposal,
    OnecRun,
    ProposalStatus,
    RunStatus,
)
from crm_core.paging import fetch_page
from crm_core.sync_requests import SyncRequests
from hub.onec import OnecSync
from hub.shown_urls import without_credentials
from hub.web.endpoints import ALL_ROLES, Api, ApiError, actor_of, json_response, page_response, session_of
from hub.web.onec_schemas import (
    CardOnecOut,
    CardSyncOut,
    ConflictListOut,
    ConflictOut,
    ConnectionListOut,
    DecisionQuery,
    LogListOut,
    LogQuery,
    ProposalListOut,
    ProposalOut,
    ResolveIn,
    RunListOut,
    RunOut,
    RunsQuery,
    SyncIn,
    SyncRequestOut,
    SyncStartedOut,
)
from hub.web.state import ONEC

api = Api()
ACCOUNTING = {Role.admin, Role.accountant}
TAG = "1c"


def _sync(request: web.Request) -> OnecSync:
    sync = request.app.get(ONEC)
    if sync is None:
        raise ApiError(503, "no_onec", "no 1C connection is configured: add an [[onec]] table to the settings")
    return sync


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


# What a failure's text says, as a kind the pages explain in the user's language (the text is kept
# for the details): the connector's errors are English sentences, 1C's own refusals are Russian.
_FAILURES = (
    ("login", "refused the login"),
    ("not_published", "does not publish"),
    ("schema", " has no propert"),
    ("interrupted", "interrupted: "),
    ("interrupted", "stopped: "),
    ("unreachable", "no answer in time"),
    ("unreachable", "connection failed"),
    ("unreachable", "the web server in front of 1C"),
)


def failure_kind(error: str | None) -> str | None:
    """login, not_published, schema, interrupted, unreachable, or refused (1C's own message); None
    when nothing failed."""
    if not error:
        return None
    return next((kind for kind, mark in _FAILURES if mark in error), "refused")


def run_to_dict(run: OnecRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "connection": run.connection,
        "trigger": run.trigger,
        "status": run.status.value,
        "phase": run.phase,
        "done": run.done,
        "total": run.total,
        "counts": dict(run.counts),
        "error": run.error,
        "error_kind": failure_kind(run.error),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


@dataclass(frozen=True, slots=True)
class _Card:
    """What the sync's lists show of a card: its name, and beside 1C's item its requisites."""

    name: str = ""
    inn: str | None = None
    kpp: str | None = None


async def _cards(request: web.Request, ids: set[int]) -> dict[int, _Card]:
    if not ids:
        return {}
    rows = await session_of(request).execute(
        select(Client.id, Client.name, Client.inn, Client.kpp).where(Client.id.in_(ids))
    )
    return {client_id: _Card(name, inn, kpp) for client_id, name, inn, kpp in rows}


# -- connections and runs ------------------------------------------------------------------------


@api.route("GET", "/api/onec/connections", summary="1C connections and their sync state", roles=ACCOUNTING, tag=TAG,
           response=ConnectionListOut)  # fmt: skip
async def list_connections(request: web.Request) -> web.Response:
    session = session_of(request)
    items = []
    for name, settings in _sync(request).settings.items():
        last = await session.scalar(
            select(OnecRun).where(OnecRun.connection == name).order_by(OnecRun.id.desc()).limit(1)
        )
        good = await session.scalar(
            select(func.max(OnecRun.finished_at)).where(OnecRun.connection == name, OnecRun.status == RunStatus.done)
        )

        async def count(model: Any, *where: Any, name: str = name) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(model.connection == name,
                                                                                         *where)) or 0)  # fmt: skip

        items.append(
            {
                "name": name,
                "url": without_credentials(settings.url),
                "kind": settings.kind,
                "interval_minutes": settings.interval_minutes,
                "running": last is not None and last.status is RunStatus.running,
                "last_run": run_to_dict(last) if last is not None else None,
                "last_success_at": good,
                "links": await count(OnecLink, OnecLink.state == LinkState.linked),
                "open_conflicts": await count(OnecConflict, OnecConflict.status == ConflictStatus.open),
                "open_proposals": await count(OnecProposal, OnecProposal.status == ProposalStatus.open),
            }
        )
    return json_response({"items": items})


@api.route("POST", "/api/onec/sync", summary="Start a sync now (in the background)", roles=ACCOUNTING, tag=TAG,
           body=SyncIn, response=SyncStartedOut, response_status=202, errors=(404, 409, 503),
           own_transactions=True)  # fmt: skip
async def start_sync(request: web.Request, body: SyncIn) -> web.Response:
    sync = _sync(request)
    names = [body.connection] if body.connection else list(sync.settings)
    unknown = [n for n in names if n not in sync.settings]
    if unknown:
        raise NotFound(f"no 1C connection named {unknown[0]!r}")
    started = []
    trigger = f"api:{actor_of(request).username}"
    for name in names:
        try:
            started.append({"connection": name, "run_id": await sync.start_run(name, trigger)})
        except SyncBusy as exc:
            if len(names) == 1:
                raise ApiError(409, "sync_running", str(exc)) from None
    return json_response({"started": started}, status=202)


@api.route("GET", "/api/onec/runs", summary="Sync runs, newest first", roles=ACCOUNTING, tag=TAG, query=RunsQuery,
           response=RunListOut)  # fmt: skip
async def list_runs(request: web.Request, query: RunsQuery) -> web.Response:
    where = OnecRun.connection == query.connection if query.connection else true()
    page = await fetch_page(session_of(request), OnecRun, where, (OnecRun.id.desc(),), query.page, query.per_page)
    return page_response(page, run_to_dict)


@api.route("GET", r"/api/onec/runs/{id:\d+}", summary="One sync run", roles=ACCOUNTING, tag=TAG, response=RunOut,
           errors=(404,))  # fmt: skip
async def get_run(request: web.Request) -> web.Response:
    run = await session_of(request).get(OnecRun, _id(request))
    if run is None:
        raise NotFound(f"run {_id(request)} not found")
    return json_response(run_to_dict(run))


@api.route("GET", r"/api/onec/runs/{id:\d+}/log", summary="What a run did to each counterparty, and why",
           roles=ACCOUNTING, tag=TAG, query=LogQuery, response=LogListOut, errors=(404,))  # fmt: skip
async def run_log(request: web.Request, query: LogQuery) -> web.Response:
    where = OnecLogEntry.run_id == _id(request)
    if query.action:
        where = where & (OnecLogEntry.action == query.action)
    page = await fetch_page(session_of(request), OnecLogEntry, where, (OnecLogEntry.id,), query.page, query.per_page)
    cards = await _cards(request, {e.client_id for e in page.items if e.client_id is not None})
    return page_response(page, lambda e: _log_entry(e, cards))


def _log_entry(e: OnecLogEntry, cards: dict[int, _Card]) -> dict[str, Any]:
    name = cards[e.client_id].name if e.client_id in cards else None
    return {"id": e.id, "at": e.at, "action": e.action, "side": e.side, "client_id": e.client_id,
            "client_name": name, "ref_key": e.ref_key, "fields": list(e.fields), "detail": e.detail}  # fmt: skip


# -- conflicts and proposals ----------------------------------------------------------------------


@api.route("GET", "/api/onec/conflicts", summary="Fields changed differently on both sides", roles=ACCOUNTING,
           tag=TAG, query=DecisionQuery, response=ConflictListOut)  # fmt: skip
async def list_conflicts(request: web.Request, query: DecisionQuery) -> web.Response:
    return await _decisions(request, OnecConflict, query, _conflict)


async def _decisions(
    request: web.Request,
    model: type[OnecConflict] | type[OnecProposal],
    query: DecisionQuery,
    render: Callable[[Any, dict[int, _Card]], dict[str, Any]],
) -> web.Response:
    """A page of conflicts or proposals, filtered alike, each with its card's name and requisites."""
    where = model.status == query.status
    if query.connection:
        where = where & (model.connection == query.connection)
    if query.client_id:
        where = where & (model.client_id == query.client_id)
    page = await fetch_page(session_of(request), model, where, (model.id,), query.page, query.per_page)
    cards = await _cards(request, {item.client_id for item in page.items})
    return page_response(page, lambda item: render(item, cards))


def _conflict(conflict: OnecConflict, cards: dict[int, _Card]) -> dict[str, Any]:
    return {
        "id": conflict.id, "connection": conflict.connection, "client_id": conflict.client_id,
        "client_name": cards.get(conflict.client_id, _Card()).name, "field": conflict.field,
        "base_value": conflict.base_value,
        "hub_value": conflict.hub_value, "onec_value": conflict.onec_value, "status": conflict.status.value,
        "chosen_value": conflict.chosen_value, "resolved_by": conflict.resolved_by,
        "created_at": conflict.created_at, "resolved_at": conflict.resolved_at,
    }  # fmt: skip


@api.route("POST", r"/api/onec/conflicts/{id:\d+}/resolve", summary="Choose a conflicted field's value",
           roles=ACCOUNTING, tag=TAG, body=ResolveIn, response=ConflictOut, errors=(404, 409, 422))  # fmt: skip
async def resolve_conflict(request: web.Request, body: ResolveIn) -> web.Response:
    conflict = await decisions.resolve_conflict(
        session_of(request), _id(request), body.choice, body.value, actor_of(request)
    )
    return json_response(_conflict(conflict, await _cards(request, {conflict.client_id})))


@api.route("GET", "/api/onec/proposals", summary="Uncertain matches waiting for a decision", roles=ACCOUNTING,
           tag=TAG, query=DecisionQuery, response=ProposalListOut)  # fmt: skip
async def list_proposals(request: web.Request, query: DecisionQuery) -> web.Response:
    return await _decisions(request, OnecProposal, query, _proposal)


def _proposal(proposal: OnecProposal, cards: dict[int, _Card]) -> dict[str, Any]:
    card = cards.get(proposal.client_id, _Card())
    return {
        "id": proposal.id, "connection": proposal.connection, "ref_key": proposal.ref_key,
        "client_id": proposal.client_id, "client_name": card.name, "client_inn": card.inn, "client_kpp": card.kpp,
        "reason": proposal.reason,
        "onec_name": proposal.onec_name, "onec_inn": proposal.onec_inn, "status": proposal.status.value,
        "decided_by": proposal.decided_by, "created_at": proposal.created_at, "decided_at": proposal.decided_at,
    }  # fmt: skip


@api.route("POST", r"/api/onec/proposals/{id:\d+}/accept", summary="The same counterparty: link them",
           roles=ACCOUNTING, tag=TAG, response=ProposalOut, errors=(404, 409))  # fmt: skip
async def accept_proposal(request: web.Request) -> web.Response:
    proposal = await decisions.accept_proposal(session_of(request), _id(request), actor_of(request))
    return json_response(_proposal(proposal, await _cards(request, {proposal.client_id})))


@api.route("POST", r"/api/onec/proposals/{id:\d+}/reject", summary="Different counterparties: keep both",
           roles=ACCOUNTING, tag=TAG, response=ProposalOut, errors=(404, 409))  # fmt: skip
async def reject_proposal(request: web.Request) -> web.Response:
    proposal = await decisions.reject_proposal(session_of(request), _id(request), actor_of(request))
    return json_response(_proposal(proposal, await _cards(request, {proposal.client_id})))


# -- one card --------------------------------------------------------------------------------------

CARD = r"/api/clients/{id:\d+}/onec"


@api.route("GET", CARD, summary="The card's 1C links and recent documents (invoices, shipments)",
           roles=ALL_ROLES, tag=TAG, response=CardOnecOut, errors=(404, 503))  # fmt: skip
async def card_onec(request: web.Request) -> web.Response:
    sync = _sync(request)
    session = session_of(request)
    if await session.get(Client, _id(request)) is None:
        raise NotFound(f"client {_id(request)} not found")
    links = (await session.scalars(select(OnecLink).where(OnecLink.client_id == _id(request)))).all()
    return json_response(
        {
            "links": [
                {"connection": link.connection, "ref_key": link.ref_key, "state": link.state.value,
                 "detail": link.detail, "synced_at": link.synced_at}
                for link in links
            ],
            "documents": await sync.documents(_id(request)),
        }
    )  # fmt: skip


@api.route("POST", CARD + "/sync", summary="Sync this card with 1C now", roles=ACCOUNTING | {Role.operator},
           tag=TAG, response=CardSyncOut, response_status=202, errors=(404, 503))  # fmt: skip
async def sync_card(request: web.Request) -> web.Response:
    _sync(request)
    if await session_of(request).get(Client, _id(request)) is None:
        raise NotFound(f"client {_id(request)} not found")
    queued, new = await SyncRequests(session_of(request)).request(_id(request), actor_of(request).username)
    return json_response({"request_id": queued.id, "queued": new}, status=202)


@api.route("GET", r"/api/onec/requests/{id:\d+}", summary="A one-card sync: still waiting, or what it did",
           roles=ACCOUNTING | {Role.operator}, tag=TAG, response=SyncRequestOut, errors=(404,))  # fmt: skip
async def sync_request(request: web.Request) -> web.Response:
    """The runs that took the request are the one-card runs started between the asking and the
    answer; their log lines about this card are what the sync did to it."""
    session = session_of(request)
    asked = await SyncRequests(session).get(_id(request))
    if asked is None:
        raise NotFound(f"sync request {_id(request)} not found")
    runs: list[OnecRun] = []
    entries: list[OnecLogEntry] = []
    if asked.done_at is not None:
        runs = list(
            await session.scalars(
                select(OnecRun)
                .where(
                    OnecRun.trigger == "request",
                    OnecRun.started_at >= asked.requested_at,
                    OnecRun.started_at <= asked.done_at,
                )
                .order_by(OnecRun.id)
            )
        )
    if runs:
        entries = list(
            await session.scalars(
                select(OnecLogEntry)
                .where(OnecLogEntry.run_id.in_([run.id for run in runs]), OnecLogEntry.client_id == asked.client_id)
                .order_by(OnecLogEntry.id)
            )
        )
    card = (await _cards(request, {asked.client_id})).get(asked.client_id, _Card())
    return json_response(
        {"id": asked.id, "client_id": asked.client_id, "client_name": card.name, "status": asked.status,
         "requested_by": asked.requested_by, "requested_at": asked.requested_at, "done_at": asked.done_at,
         "detail": asked.detail, "error_kind": failure_kind(asked.detail),
         "runs": [run_to_dict(run) for run in runs],
         "log": [_log_entry(entry, {asked.client_id: card}) for entry in entries]}
    )  # fmt: skip
