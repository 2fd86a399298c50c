"""Every endpoint in the OpenAPI document enforces exactly the roles the document states."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.inbound_hooks import HOOK_KINDS, InboundHooks
from crm_core.mail.events import Address, Attachment, Location, ParsedMail
from crm_core.mail.mail_log import MailLog, MailRules
from crm_core.mail.models import MailAttachment, MailQuarantine
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from crm_core.telephony.events import CallKey, CallRecord
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from hub.web.app import all_endpoints, make_app
from hub.web.openapi import build_document
from hub.web.pages import routes as page_routes
from tests.conftest import bearer

DOCUMENT = build_document(all_endpoints())
OPERATIONS = [
    (method.upper(), path, op["x-roles"])
    for path, methods in DOCUMENT["paths"].items()
    for method, op in methods.items()
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Role checks do not depend on the database kind; SQLite keeps this table fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


async def _concrete_path(path: str, context: HubContext) -> str:
    """A fresh record for each call, so a permitted DELETE cannot spoil the next role's call."""
    path = path.replace("{pbx}", "office").replace("{linkedid}", "1796286947.1").replace("{recipient}", "1")
    if "{id}" not in path:
        return path
    async with context.transaction() as session:
        if path.startswith("/api/clients"):
            record_id = (await ClientBook(session).create(ClientIn(name="Проверка"), SYSTEM)).id
        elif path.startswith("/api/calls"):
            call = await CallLog(session).record(
                CallRecord(
                    CallKey("office", uuid.uuid4().hex),
                    "inbound",
                    "+74951234567",
                    None,
                    None,
                    None,
                    "missed",
                    "abandoned",
                )
            )
            assert call is not None
            record_id = call.id
        elif path.startswith(("/api/messages", "/api/attachments", "/api/mail/quarantine")):
            record_id = await _mail_record(session, path)
        elif path.startswith("/api/hooks"):
            record_id = (await InboundHooks(session).create(f"h{uuid.uuid4().hex[:8]}", ["calls"]))[0].id
        else:
            count = await UserDirectory(session).count()
            record_id = (await UserDirectory(session).create(NewUser(f"u{count}", Role.operator))).id
    return path.replace("{id}", str(record_id)).replace("{cid}", "logo")


async def _mail_record(session: AsyncSession, path: str) -> int:
    """A message with an inline image (or a quarantine entry): what the mail paths name by id."""
    where = Location("sales", "INBOX", 1, uuid.uuid4().int % 1_000_000)
    log = MailLog(session, MailRules())
    if path.startswith("/api/mail/quarantine"):
        await log.quarantine(where, raw_sha256="0" * 64, raw_size=0, error="empty message")
        return int(await session.scalar(select(func.max(MailQuarantine.id))) or 0)
    mail = ParsedMail(
        message_id=f"{uuid.uuid4().hex}@x",
        in_reply_to=None,
        references=(),
        subject="Проверка",
        sender=Address("someone@example.ru"),
        to=(),
        cc=(),
        sent_at=None,
        text="",
        html='<img src="cid:logo">',
        attachments=(Attachment("logo.png", "image/png", b"", 0, "logo", True),),
    )
    filed = await log.file(mail, raw_sha256="0" * 64, raw_size=0, attachment_digests=["0" * 64], location=where)
    if path.startswith("/api/attachments"):
        return int(await session.scalar(select(MailAttachment.id).where(MailAttachment.message_id == filed.id)) or 0)
    return filed.id


async def _call(http: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    if path.endswith("/import"):
        resp = await http.request(method, path, data=b"name\nX\n", headers={**headers, "Content-Type": "text/csv"})
    elif method in ("POST", "PATCH", "PUT"):
        resp = await http.request(method, path, json={}, headers=headers)
    else:
        resp = await http.request(method, path, headers=headers)
    return resp.status


@pytest.mark.parametrize(("method", "path", "roles"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
async def test_endpoint_enforces_its_documented_roles(
    method: str, path: str, roles: list[str], http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    if roles == ["public"]:
        status = await _call(http, method, await _concrete_path(path, hub_context), {})
        assert status not in (401, 403), f"public {method} {path} answered {status}"
        return
    if roles[0].startswith("hook:"):
        await _check_hook(http, method, path, roles, tokens, hub_context)
        return
    assert set(roles) <= {r.value for r in Role}
    anonymous = await _call(http, method, await _concrete_path(path, hub_context), {})
    assert anonymous == 401, f"{method} {path} without credentials answered {anonymous}"
    for role in Role:
        status = await _call(http, method, await _concrete_path(path, hub_context), bearer(tokens[role]))
        if role.value in roles:
            assert status not in (401, 403), f"{role.value} refused on {method} {path}: {status}"
        else:
            assert status == 403, f"{role.value} allowed on {method} {path}: {status}"


async def _check_hook(
    http: TestClient, method: str, path: str, roles: list[str], tokens: dict, hub_context: HubContext
) -> None:
    """An incoming webhook opens only to a hook token allowed its kind; users' tokens are refused."""
    [kind] = [r.removeprefix("hook:") for r in roles]
    async with hub_context.transaction() as session:
        _, allowed = await InboundHooks(session).create(f"allowed-{kind}", [kind])
        _, other = await InboundHooks(session).create(f"other-{kind}", [k for k in HOOK_KINDS if k != kind])
    assert await _call(http, method, path, {}) == 401, f"{method} {path} without a token"
    for role in Role:
        status = await _call(http, method, path, bearer(tokens[role]))
        assert status == 401, f"{role.value}'s user token opened {method} {path}: {status}"
    assert await _call(http, method, path, bearer(other)) == 403, f"a token without {kind} opened {method} {path}"
    status = await _call(http, method, path + f"?token={allowed}", {})
    assert status not in (401, 403), f"a {kind} token refused on {method} {path}: {status}"


async def test_every_route_of_the_app_is_in_the_document_or_a_page(hub_context: HubContext) -> None:
    # Pages and the pop socket check the login themselves (tests in test_api_auth and test_telephony);
    # the tracking endpoints are public and check their signed tokens (test_tracking_web).
    pages = {
        ("GET", "/t/o/{token}"),
        ("GET", "/t/c/{token}"),
        ("GET", "/u/{token}"),
        ("POST", "/u/{token}"),
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/operator"),
        ("GET", "/ws"),
        ("GET", "/static"),
    }
    # Every page module's routes (test_pages_roles checks each page against every role).
    pages |= {(route.method, re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)) for route in page_routes}
    app = make_app(hub_context)
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info()
        raw = info.get("formatter") or info.get("path") or info.get("prefix")
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", raw)
        documented = route.method.lower() in DOCUMENT["paths"].get(path, {})
        assert documented or (route.method, path) in pages, f"{route.method} {path} is neither documented nor a page"


def test_every_documented_operation_names_roles_and_responses() -> None:
    for method, path, roles in OPERATIONS:
        op = DOCUMENT["paths"][path][method.lower()]
        assert roles, f"{method} {path} has no x-roles"
        assert op["responses"], f"{method} {path} has no responses"
        if roles != ["public"]:
            assert {"401", "403"} <= set(op["responses"]), f"{method} {path} does not document 401/403"
