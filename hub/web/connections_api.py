"""/api/connections: what the hub is wired to (PBXes, mailboxes, SMTP, 1C, webhooks), and a test of each.

The items and their checks are ``hub doctor``'s own (hub.doctor), so the admin's "test
connection" button and the command line cannot disagree.  Settings come from the
configuration (hub.toml and HUB_* variables) and are shown without their secrets; webhook
targets come from the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from crm_core import audit
from crm_core.models import Role
from crm_core.subscriptions import Subscriptions, WebhookSubscription
from hub import doctor
from hub.shown_urls import without_credentials
from hub.web.endpoints import Api, ApiError, actor_of, json_response, session_of
from hub.web.schemas import _In, _Out
from hub.web.state import CONTEXT
from webhooks.targets import TargetRefused, check_target

api = Api()
ADMIN = {Role.admin}
TAG = "connections"

Kind = Literal["pbx", "mailbox", "mailbox_smtp", "bounce_mailbox", "bounce_smtp", "campaign_smtp", "onec", "webhook"]


class ConnectionOut(_Out):
    kind: Kind
    name: str = Field(description="The item's name in the configuration; a webhook's subscription id")
    label: str = Field(description="How `hub doctor` names it")
    section: str = Field(description="Where it is configured: a hub.toml table, or 'database' for a webhook")
    env: str = Field(description="The prefix of its HUB_* environment variables ('' for a webhook)")
    settings: dict[str, Any] = Field(description="Its settings, without passwords or secrets")


class ConnectionListOut(_Out):
    items: list[ConnectionOut]
    timeout_seconds: float


class ConnectionTestIn(_In):
    kind: Kind
    name: str = Field(min_length=1, max_length=2000)


class VerdictOut(_Out):
    kind: Kind
    name: str
    label: str
    ok: bool
    detail: str = Field(description="What the check found, or the error")
    reason: Literal["", "timeout", "login_rejected", "refused", "unknown_host", "tls", "unreachable", "error"] = Field(
        description="Why it failed, as a word a page can explain ('' when ok)"
    )
    checked_at: datetime


def _shown(item: doctor.Item) -> dict[str, Any]:
    settings = {key: without_credentials(value) if key == "url" else value for key, value in item.shown.items()}
    return {"kind": item.kind, "name": item.name, "label": item.label, "section": item.section, "env": item.env,
            "settings": settings}  # fmt: skip


def _webhook_item(subscription: WebhookSubscription, allow_private: bool) -> doctor.Item:
    """The subscription's target, checked against the hub's own network first (as each delivery is)."""
    item = doctor.webhook(
        subscription.url,
        str(subscription.id),
        event_types=subscription.event_types,
        active=subscription.active,
        description=subscription.description,
    )

    async def guarded() -> str:
        try:
            await check_target(subscription.url, allow_private=allow_private)
        except TargetRefused as exc:
            raise RuntimeError(f"the hub will not send there: {exc}") from None
        return await item.check()

    return replace(item, check=guarded)


@api.route(
    "GET", "/api/connections", summary="Every PBX, mailbox, SMTP server, 1C connection and webhook target (no secrets)",
    roles=ADMIN, tag=TAG, response=ConnectionListOut,
)  # fmt: skip
async def connections_overview(request: web.Request) -> web.Response:
    settings = request.app[CONTEXT].settings
    webhooks = [
        _webhook_item(s, settings.webhooks.allow_private) for s in await Subscriptions(session_of(request)).all()
    ]
    items = [*doctor.configured(settings), *webhooks]
    return json_response({"items": [_shown(item) for item in items], "timeout_seconds": doctor.TIMEOUT})


@api.route(
    "POST", "/api/connections/test", summary="Run one item's `hub doctor` check now (bounded by its timeout)",
    roles=ADMIN, tag=TAG, body=ConnectionTestIn, response=VerdictOut, errors=(404,), own_transactions=True,
)  # fmt: skip
async def check_connection(request: web.Request, body: ConnectionTestIn) -> web.Response:
    context = request.app[CONTEXT]
    item = await _item(request, body.kind, body.name)
    verdict = await doctor.run(item)  # outside any transaction: it waits on the peer
    async with context.transaction() as session:
        audit.record(
            session, actor_of(request), "test", "connection", f"{item.kind}:{item.name}",
            item=item.label, ok=verdict.ok, detail=verdict.detail,
        )  # fmt: skip
    return json_response(
        {"kind": item.kind, "name": item.name, "label": item.label, "ok": verdict.ok, "detail": verdict.detail,
         "reason": verdict.reason, "checked_at": datetime.now(UTC).isoformat()}
    )  # fmt: skip


async def _item(request: web.Request, kind: str, name: str) -> doctor.Item:
    context = request.app[CONTEXT]
    if kind == "webhook":
        if not name.isdigit():
            raise ApiError(404, "not_found", f"webhook {name} not found")
        async with context.transaction() as session:
            subscription = await Subscriptions(session).get(int(name))
            return _webhook_item(subscription, context.settings.webhooks.allow_private)
    for item in doctor.configured(context.settings):
        if item.kind == kind and item.name == name:
            return item
    raise ApiError(404, "not_found", f"no {kind} named {name} is configured")
