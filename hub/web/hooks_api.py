"""Incoming webhooks (/hooks/...): outside systems push clients, calls and 1C sync requests;
and /api/hooks, where the admin makes and revokes their tokens.

Each push runs in one transaction with its token check: a wrong token is refused before the
body is read, and a bad body changes nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import audit
from crm_core.clients import ClientBook
from crm_core.inbound_hooks import InboundHook, InboundHooks
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from hub.web.endpoints import Api, actor_of, json_response, session_of
from hub.web.hook_schemas import (
    CallHookOut,
    ClientHookIn,
    ClientHookOut,
    HookIn,
    HookListOut,
    HookOut,
    SyncHookIn,
    SyncHookOut,
)
from hub.web.state import CONTEXT, HOOK
from webhooks.inbound import CallPush, log_call, request_sync, upsert_client

api = Api()
ADMIN = {Role.admin}
NOBODY: set[Role] = set()  # the hooks take a hook token, never a user's


def _book(request: web.Request) -> ClientBook:
    return ClientBook(session_of(request), request.app[CONTEXT].rules)


def _source(request: web.Request) -> str:
    """What the hook's records are filed under (a call's PBX): the hook's name, marked as one."""
    hook: InboundHook = request[HOOK]
    return f"hook:{hook.name}"


def _shown(hook: InboundHook, token: str | None = None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": hook.id,
        "name": hook.name,
        "kinds": hook.kinds,
        "created_at": hook.created_at.isoformat(),
        "last_used_at": iso(hook.last_used_at),
        "revoked_at": iso(hook.revoked_at),
        "token": token,
    }


@api.route("GET", "/api/hooks", summary="Incoming webhook tokens", roles=ADMIN, tag="hooks", response=HookListOut)
async def list_hooks(request: web.Request) -> web.Response:
    return json_response({"items": [_shown(h) for h in await InboundHooks(session_of(request)).all()]})


@api.route(
    "POST", "/api/hooks", summary="Make a token for an outside system (shown once, in this answer)", roles=ADMIN,
    tag="hooks", body=HookIn, response=HookOut, response_status=201, errors=(409,),
)  # fmt: skip
async def create_hook(request: web.Request, body: HookIn) -> web.Response:
    hook, token = await InboundHooks(session_of(request)).create(body.name, list(body.kinds))
    audit.record(session_of(request), actor_of(request), "create", "inbound_hook", hook.id, name=hook.name)
    return json_response(_shown(hook, token), status=201)


@api.route(
    "DELETE", r"/api/hooks/{id:\d+}", summary="Revoke an incoming webhook token", roles=ADMIN, tag="hooks",
    response_status=204, errors=(404,),
)  # fmt: skip
async def revoke_hook(request: web.Request) -> web.Response:
    hook_id = int(request.match_info["id"])
    await InboundHooks(session_of(request)).revoke(hook_id)
    audit.record(session_of(request), actor_of(request), "revoke", "inbound_hook", hook_id)
    return web.Response(status=204)


@api.route(
    "POST", "/hooks/clients", summary="Create or update a client (by id, else by INN/KPP, else a new card)",
    roles=NOBODY, hook="clients", tag="hooks", body=ClientHookIn, response=ClientHookOut, errors=(404, 409),
)  # fmt: skip
async def push_client(request: web.Request, body: Any) -> web.Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    client, created = await upsert_client(_book(request), changes, actor_of(request))
    return json_response({"id": client.id, "created": created, "version": client.version})


@api.route(
    "POST", "/hooks/calls", summary="Log a finished call from an outside PBX (a repeated call_id is ignored)",
    roles=NOBODY, hook="calls", tag="hooks", body=CallPush, response=CallHookOut,
)  # fmt: skip
async def push_call(request: web.Request, body: CallPush) -> web.Response:
    call, logged = await log_call(CallLog(session_of(request), request.app[CONTEXT].rules), body, _source(request))
    return json_response({"call_id": call.id, "logged": logged, "status": call.status, "client_id": call.client_id})


@api.route(
    "POST", "/hooks/onec-sync", summary="Ask for one counterparty's 1C sync out of schedule", roles=NOBODY,
    hook="onec_sync", tag="hooks", body=SyncHookIn, response=SyncHookOut, response_status=202, errors=(404,),
)  # fmt: skip
async def push_sync_request(request: web.Request, body: SyncHookIn) -> web.Response:
    wanted, new = await request_sync(_book(request), body.client_id, body.inn, body.kpp, actor_of(request).username)
    return json_response(
        {
            "id": wanted.id,
            "client_id": wanted.client_id,
            "status": wanted.status,
            "requested_at": wanted.requested_at.isoformat(),
            "new": new,
        },
        status=202,
    )
