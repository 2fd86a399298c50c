"""The client card and the client search: notes on the card, a call's recording played from
the mounted recordings directory, and, in a real browser, an operator who finds a client,
reads their timeline (a call with its note and recording, a hostile e-mail shown sanitised),
corrects the card (a wrong INN refused in place), writes a note, answers the e-mail over real
SMTP, and creates a card for an unknown number."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.client_notes import ClientNote
from crm_core.clients import ClientBook
from crm_core.mail.events import FetchedMessage, Location
from crm_core.models import AuditEntry, Call, Client, Role
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from hub.mail import Mail
from hub.web.app import make_app
from tests.browser import chromium, logged_in, screenshot
from tests.conftest import PASSWORD, bearer, open_context, password_hash
from tests.dovecot import Dovecot, MailUser
from tests.smtp_server import SmtpTestServer

RECORDING = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200)
MONITOR = "/var/spool/asterisk/monitor"
_LINKEDIDS = itertools.count(1)


async def _client(context: HubContext, **fields: Any) -> int:
    async with context.transaction() as session:
        client = await ClientBook(session, context.rules).create(ClientIn(**fields), SYSTEM)
        return client.id


async def _call(context: HubContext, client_id: int, recording: str | None, notes: str = "") -> int:
    started = datetime.now(UTC) - timedelta(hours=1)
    async with context.transaction() as session:
        call = Call(
            pbx="office", linkedid=f"{started.timestamp():.0f}.{next(_LINKEDIDS)}",
            direction="inbound", caller="+74951234567",
            status="answered", answered_by="101", final_operator="101", talk_seconds=95,
            started_at=started, answered_at=started + timedelta(seconds=5), ended_at=started + timedelta(seconds=100),
            recording_file=recording, client_id=client_id, notes=notes,
        )  # fmt: skip
        session.add(call)
        await session.flush()
        return call.id


# -- the API behind the card (both databases) ------------------------------------------------------


async def test_a_note_lands_in_the_timeline_and_the_audit_log(
    http: TestClient, hub_context: HubContext, tokens: dict[Role, str]
) -> None:
    client_id = await _client(hub_context, name="Ромашка")
    notes = f"/api/clients/{client_id}/notes"
    operator, marketer = bearer(tokens[Role.operator]), bearer(tokens[Role.marketer])
    resp = await http.post(notes, json={"text": "  Перезвонить после 15:00  "}, headers=operator)
    assert resp.status == 201, await resp.text()
    note = await resp.json()
    assert note["text"] == "Перезвонить после 15:00" and note["author"] == "operator"

    timeline = await (await http.get(f"/api/clients/{client_id}/timeline", headers=marketer)).json()
    [item] = [i for i in timeline["items"] if i["kind"] == "note"]
    assert item["data"]["text"] == "Перезвонить после 15:00" and item["title"] == "Note"
    async with hub_context.reading() as session:
        assert await session.scalar(select(AuditEntry.action).where(AuditEntry.action == "note")) == "note"

    assert (await http.post(notes, json={"text": "   "}, headers=operator)).status == 422
    assert (await http.post("/api/clients/999999/notes", json={"text": "x"}, headers=operator)).status == 404
    assert (await http.post(notes, json={"text": "x"}, headers=marketer)).status == 403
    async with hub_context.reading() as session:
        assert len((await session.scalars(select(ClientNote))).all()) == 1


@pytest.fixture
async def recordings_hub(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient, HubContext, Path]]:
    mounted = tmp_path / "monitor"
    (mounted / "2026/12/03").mkdir(parents=True)
    (mounted / "2026/12/03/in-101.wav").write_bytes(RECORDING)
    (tmp_path / "secret.txt").write_text("not a recording")
    pbx = {"name": "office", "host": "127.0.0.1", "username": "hub", "secret": "s", "recordings_dir": str(mounted)}
    context = await open_context(database_url, tmp_path / "data", pbx=[pbx])
    http = TestClient(TestServer(make_app(context)))
    await http.start_server()
    try:
        yield http, context, mounted
    finally:
        await http.close()
        await context.close()


async def test_a_recording_plays_from_the_mounted_directory_and_nothing_outside_it(
    recordings_hub: tuple[TestClient, HubContext, Path],
) -> None:
    http, context, _mounted = recordings_hub
    async with context.transaction() as session:
        users = UserDirectory(session)
        operator = await users.create_token(await users.create(NewUser("op", Role.operator, extension="101")))
        marketer = await users.create_token(await users.create(NewUser("mk", Role.marketer)))
    client_id = await _client(context, name="Ромашка")
    played = await _call(context, client_id, f"{MONITOR}/2026/12/03/in-101.wav")
    relative = await _call(context, client_id, "2026/12/03/in-101.wav")
    escaping = await _call(context, client_id, f"{MONITOR}/../../../{_mounted.parent.name}/secret.txt")
    elsewhere = await _call(context, client_id, "/etc/passwd")
    gone = await _call(context, client_id, f"{MONITOR}/2026/12/03/out-102.wav")
    unrecorded = await _call(context, client_id, None)

    resp = await http.get(f"/api/calls/{played}/recording", headers=bearer(operator))
    assert resp.status == 200 and await resp.read() == RECORDING
    assert resp.content_type.startswith("audio/")
    ranged = await http.get(f"/api/calls/{relative}/recording", headers={**bearer(operator), "Range": "bytes=0-3"})
    assert ranged.status == 206 and await ranged.read() == b"RIFF"
    for call_id, code in (
        (escaping, "recording_not_mounted"),
        (elsewhere, "recording_not_mounted"),
        (gone, "recording_missing"),
        (unrecorded, "no_recording"),
    ):
        answer = await http.get(f"/api/calls/{call_id}/recording", headers=bearer(operator))
        assert answer.status == 404 and (await answer.json())["error"] == code, call_id
    assert (await http.get(f"/api/calls/{played}/recording", headers=bearer(marketer))).status == 403
    async with context.reading() as session:
        listened = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "listen"))).all()
        assert [(e.entity, e.entity_id) for e in listened] == [("call", str(played)), ("call", str(relative))]


async def test_pages_need_a_login_and_the_new_card_form_an_editor(
    http: TestClient, hub_context: HubContext, tokens: dict[Role, str]
) -> None:
    client_id = await _client(hub_context, name="Ромашка")
    for path in ("/clients", f"/clients/{client_id}", "/clients/new"):
        resp = await http.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    marketer = await _session(http, "marketer")
    assert (await http.get(f"/clients/{client_id}", cookies=marketer)).status == 200
    assert (await http.get("/clients/new", cookies=marketer)).status == 403
    assert (await http.get("/clients/999999", cookies=marketer)).status == 404


async def _session(http: TestClient, username: str) -> dict[str, str]:
    resp = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    return {"hub_session": resp.cookies["hub_session"].value}


# -- in a real browser -----------------------------------------------------------------------------

HOSTILE = (
    '<p>Добрый день! Пришлите <b>счёт</b>.</p><script>document.title="pwned"</script>'
    '<img src="x" onerror="document.title=\'pwned\'"><a href="javascript:alert(1)">ссылка</a>'
)


def _hostile_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Иван Сидоров <ivan@romashka.example>"
    mail["To"] = "sales@hub.example"
    mail["Subject"] = "Счёт на оплату"
    mail["Message-ID"] = "<invoice-1@romashka.example>"
    mail.set_content("Добрый день! Пришлите счёт.")
    mail.add_alternative(HOSTILE, subtype="html")
    return mail.as_bytes()


@pytest.fixture
async def card_hub(
    tmp_path: Path, dovecot: Dovecot, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> AsyncIterator[tuple[TestClient, HubContext, Mail]]:
    """A SQLite hub with a mailbox (real Dovecot, real SMTP) and a PBX's mounted recordings:
    what the page does is the same on PostgreSQL, whose API the tests above cover."""
    smtp_server.require_auth(dovecot_user.name, dovecot_user.password)
    mounted = tmp_path / "monitor"
    (mounted / "2026/12/03").mkdir(parents=True)
    (mounted / "2026/12/03/in-101.wav").write_bytes(RECORDING)
    mailbox = {
        "name": "sales", "address": "sales@hub.example", "host": dovecot.host, "port": dovecot.port,
        "security": "none", "username": dovecot_user.name, "password": dovecot_user.password,
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
    }  # fmt: skip
    pbx = {"name": "office", "host": "127.0.0.1", "username": "hub", "secret": "s", "recordings_dir": str(mounted)}
    context = await open_context(
        f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        tmp_path / "data",
        mailbox=[mailbox],
        mail={"own_domains": ["hub.example"]},
        pbx=[pbx],
    )
    mail = Mail(context)
    http = TestClient(TestServer(make_app(context, mail=mail)))
    await http.start_server()
    try:
        yield http, context, mail
    finally:
        await mail.close()
        await http.close()
        await context.close()


async def test_an_operator_works_a_card_in_the_browser(
    card_hub: tuple[TestClient, HubContext, Mail], smtp_server: SmtpTestServer
) -> None:
    http, context, mail = card_hub
    async with context.transaction() as session:
        users = UserDirectory(session)
        for name, locale, extension in (("anna", "ru", "101"), ("john", "en", "102")):
            user = await users.create(NewUser(name, Role.operator, extension=extension, full_name=name.title()))
            user.password_hash, user.locale = password_hash(), locale
    client_id = await _client(
        context,
        name="Ромашка",
        inn="7707083893",
        tags=["vip"],
        emails=[{"address": "ivan@romashka.example"}],
        contacts=[{"first_name": "Иван", "last_name": "Сидоров", "phones": [{"number": "8 (495) 123-45-67"}]}],
    )
    await _call(context, client_id, f"{MONITOR}/2026/12/03/in-101.wav", notes="Просил счёт")
    await mail.ingest.deliver(False, [FetchedMessage(Location("sales", "INBOX", 1, 1), _hostile_mail())])
    base = str(http.make_url(""))

    async with chromium() as browser:
        page = await logged_in(browser, base, "anna", PASSWORD)
        await page.goto("/clients")
        await page.fill("#q", "7707083893")
        await page.wait_for_function("document.querySelector('#found').textContent.includes('1')")
        assert await page.text_content("#results a.client-link") == "Ромашка"
        await screenshot(page, "card-search")
        await page.click("#results a.client-link")  # a locator: the list may be redrawn meanwhile

        await page.wait_for_selector("#timeline li.call")
        assert await page.text_content("#client-inn") == "7707083893"
        assert "Просил счёт" in (await page.text_content("#timeline li.call .call-notes") or "")
        audio = await page.wait_for_selector("#timeline li.call audio")
        source = await audio.get_attribute("src")
        assert await page.evaluate("async (src) => (await fetch(src)).status", source) == 200

        await page.click("#timeline li.email .open-message")
        frame_element = await page.wait_for_selector("#timeline li.email iframe")
        frame = await frame_element.content_frame()
        assert frame is not None
        await frame.wait_for_selector("b")
        assert await frame.text_content("b") == "счёт"
        assert await frame.query_selector("script") is None
        assert await frame.eval_on_selector_all("[onerror]", "nodes => nodes.length") == 0
        assert await page.title() != "pwned"
        await screenshot(page, "card-timeline")

        await page.keyboard.press("e")  # the shortcut opens the form
        await page.fill("#f-inn", "7707083894")  # a wrong check digit
        await page.click("#save-card")
        error = await page.wait_for_selector('#card-form .field-error[data-for="inn"]:not(:empty)')
        assert (await error.text_content() or "").strip()
        assert await page.input_value("#f-inn") == "7707083894"  # the text is kept for correcting
        await screenshot(page, "card-edit-error")
        await page.fill("#f-inn", "7707083893")
        await page.fill("#f-tags", "vip, опт")
        await page.click("#save-card")
        await page.wait_for_selector("#card-view:not([hidden]) .badge.tag >> text=опт")

        await page.keyboard.press("n")
        await page.keyboard.type("Оплата через неделю")
        await page.click("#add-note")
        await page.wait_for_selector("#timeline li.note >> text=Оплата через неделю")

        await page.click("#timeline li.email .open-message")  # the saves above redrew the timeline
        await page.click("#timeline li.email .message-body button")  # reply
        await page.fill("#compose-text", "Счёт во вложении к следующему письму.")
        await page.click("#compose-send")
        await page.wait_for_selector("#timeline li.email >> text=Re: Счёт на оплату")
        await screenshot(page, "card-after-reply")

        await page.goto("/clients/new?phone=%2B74957654321")
        assert await page.input_value("#f-phones") == "+74957654321"
        await screenshot(page, "card-new")
        await page.fill("#f-name", "Лютик")
        await page.click("#save-card")
        await page.wait_for_url("**/clients/*")
        await page.wait_for_selector("#client-name >> text=Лютик")
        assert "+74957654321" in (await page.text_content("#client-fields") or "")
        await screenshot(page, "card-created")

        english = await logged_in(browser, base, "john", PASSWORD)
        await english.goto(f"/clients/{client_id}")
        await english.wait_for_selector("#timeline li.note")
        assert await english.text_content("#filters button[data-kind=call]") == "Calls"
        await screenshot(english, "card-english")

    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ("ivan@romashka.example",)
    async with context.reading() as session:
        card = await session.get(Client, client_id)
        assert card is not None
        assert [t.tag for t in card.tags] == ["vip", "опт"] and card.inn == "7707083893"
        new = await session.scalar(select(Client).where(Client.name == "Лютик"))
        assert new is not None
