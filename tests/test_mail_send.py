"""Sending from the card: out over real SMTP, a copy in the real Dovecot's Sent, logged once, threaded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from connectors.mail.mime import parse
from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import FetchedMessage, Location
from crm_core.mail.models import MailCopy, MailMessage
from crm_core.models import Role
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from hub.mail import Mail
from hub.web.app import make_app
from tests.conftest import bearer, open_context
from tests.dovecot import Dovecot, MailUser
from tests.smtp_server import SmtpTestServer

ADDRESS = "ivan@romashka.example"


@pytest.fixture
async def hub(
    database_url: str,
    tmp_path: Path,
    dovecot: Dovecot,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> AsyncIterator[tuple[TestClient, HubContext, Mail, str]]:
    smtp_server.require_auth(dovecot_user.name, dovecot_user.password)  # the mailbox's own login, by default
    mailbox = {
        "name": "sales",
        "address": "sales@hub.example",
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": dovecot_user.name,
        "password": dovecot_user.password,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
    }
    context = await open_context(
        database_url, tmp_path / "data", mailbox=[mailbox], mail={"own_domains": ["hub.example"]}
    )
    mail = Mail(context)
    http = TestClient(TestServer(make_app(context, mail=mail)))
    await http.start_server()
    async with context.transaction() as session:
        user = await UserDirectory(session).create(NewUser("anna", Role.operator))
        token = await UserDirectory(session).create_token(user)
    try:
        yield http, context, mail, token
    finally:
        await mail.close()
        await http.close()
        await context.close()


def _question() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Иван Петров <{ADDRESS}>"
    mail["To"] = "sales@hub.example"
    mail["Subject"] = "Вопрос по счёту"
    mail["Message-ID"] = "<question-1@romashka.example>"
    mail["References"] = "<earlier@romashka.example>"
    mail.set_content("Когда будет отгрузка?")
    return mail.as_bytes()


async def _count(context: HubContext, table: Any) -> int:
    async with context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_reply_goes_out_threaded_lands_in_sent_and_is_logged_once(
    hub: tuple[TestClient, HubContext, Mail, str],
    smtp_server: SmtpTestServer,
    dovecot: Dovecot,
    dovecot_user: MailUser,
) -> None:
    http, context, mail, token = hub
    async with context.transaction() as session:
        client = await ClientBook(session).create(ClientIn(name="Ромашка", emails=[{"address": ADDRESS}]), SYSTEM)
    await mail.ingest.deliver(False, [FetchedMessage(Location("sales", "INBOX", 1, 1), _question())])
    async with context.reading() as session:
        parent_id = await session.scalar(select(MailMessage.id))

    resp = await http.post(
        "/api/messages", json={"reply_to": parent_id, "text": "Отгрузим в пятницу."}, headers=bearer(token)
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["saved_to_sent"] and body["refused"] == {}
    sent = body["message"]
    assert sent["direction"] == "out" and sent["subject"] == "Re: Вопрос по счёту"
    assert sent["clients"] == [{"client_id": client.id, "contact_id": None}]

    [received] = smtp_server.messages
    assert received.rcpt_tos == (ADDRESS,) and received.mail_from == "sales@hub.example"
    on_the_wire = parse(received.raw, max_attachment_bytes=10**6)
    assert on_the_wire.in_reply_to == "question-1@romashka.example"
    assert on_the_wire.references == ("earlier@romashka.example", "question-1@romashka.example")
    async with context.reading() as session:
        parent = await session.get(MailMessage, parent_id)
        assert parent is not None and sent["thread_id"] == parent.thread_id

    with dovecot.imap(dovecot_user.name) as imap:
        imap.select("Sent")
        assert imap.search(None, "ALL")[1][0].split() == [b"1"]

    await mail.start()  # the Sent folder's follower now finds the copy: recognised, not logged again
    for _ in range(200):
        statuses = mail.statuses()[0].folders
        if statuses and all(f.connected and f.last_checked_at for f in statuses.values()):
            break
        await asyncio.sleep(0.05)
    assert await _count(context, MailMessage) == 2 and await _count(context, MailCopy) == 2


async def test_a_template_is_rendered_for_the_card_and_its_errors_stop_the_sending(
    hub: tuple[TestClient, HubContext, Mail, str],
    smtp_server: SmtpTestServer,
) -> None:
    http, context, _mail, token = hub
    async with context.transaction() as session:
        client = await ClientBook(session).create(
            ClientIn(
                name="Ромашка",
                contacts=[{"first_name": "Иван", "last_name": "Петров", "emails": [{"address": ADDRESS}]}],
            ),
            SYSTEM,
        )
    contact_id = client.contacts[0].id
    good = {
        "client_id": client.id,
        "contact_id": contact_id,
        "template": True,
        "subject": "Счёт для {{ client.name }}",
        "text": "{{ contact.first_name }}, добрый день!\nСчёт во вложении.",
        "attachments": [{"filename": "Счёт.pdf", "content_type": "application/pdf", "data_base64": "JVBERi0="}],
    }
    resp = await http.post("/api/messages", json=good, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    [received] = smtp_server.messages
    out = parse(received.raw, max_attachment_bytes=10**6)
    assert out.subject == "Счёт для Ромашка" and out.text.startswith("Иван, добрый день!")
    assert out.to[0].address == ADDRESS and [a.filename for a in out.attachments] == ["Счёт.pdf"]

    broken = {**good, "text": "Строка 1\n{{ contact.nickname }}"}
    resp = await http.post("/api/messages", json=broken, headers=bearer(token))
    assert resp.status == 422 and "nickname" in (await resp.json())["message"]
    syntax = {**good, "subject": "Счёт {{ client.name"}
    resp = await http.post("/api/messages", json=syntax, headers=bearer(token))
    assert resp.status == 422 and "line 1" in (await resp.json())["message"]
    assert len(smtp_server.messages) == 1  # nothing went out for the broken ones


async def test_a_refused_message_is_reported_and_not_logged(
    hub: tuple[TestClient, HubContext, Mail, str],
    smtp_server: SmtpTestServer,
) -> None:
    http, context, _mail, token = hub
    smtp_server.refuse("nobody@romashka.example")
    resp = await http.post(
        "/api/messages", json={"to": [{"address": "nobody@romashka.example"}], "text": "?"}, headers=bearer(token)
    )
    assert resp.status == 502 and "nobody@romashka.example" in (await resp.json())["message"]
    assert await _count(context, MailMessage) == 0
