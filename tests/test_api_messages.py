"""The mail API: what operators read of correspondence, its files, and the triage of unclaimed mail."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from aiohttp.test_utils import TestClient

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import FetchedMessage, Location
from crm_core.models import Role
from hub.context import HubContext
from hub.mail_ingest import MailIngest
from hub.web.mail_schemas import MessageOut
from tests.conftest import bearer
from tests.mail_corpus import by_name

HOSTILE_HTML = (
    '<p onclick="steal()">Счёт во вложении</p><script>alert(1)</script>'
    '<img src="https://tracker.example/open.gif"><img src="cid:logo@romashka">'
)


def _with_inline_image_and_pdf(sender: str = "ivan@romashka.example") -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Иван Петров <{sender}>"
    mail["To"] = "sales@hub.example"
    mail["Subject"] = "Счёт №15"
    mail["Message-ID"] = "<invoice-15@romashka.example>"
    mail.set_content("Счёт во вложении")
    mail.add_alternative(HOSTILE_HTML, subtype="html")
    mail.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nlogo", "image", "png", cid="<logo@romashka>")
    mail.add_attachment(b"%PDF-1.4 invoice", "application", "pdf", filename="Счёт №15.pdf")
    return mail.as_bytes()


async def _deliver(context: HubContext, *raws: bytes, uid: int = 1) -> None:
    messages = [FetchedMessage(Location("sales", "INBOX", 7, uid + i), raw) for i, raw in enumerate(raws)]
    await MailIngest(context).deliver(False, messages)


async def _get(http: TestClient, path: str, token: str, **params: Any) -> Any:
    resp = await http.get(path, params=params, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_clients_mail_reads_sanitised_with_its_files(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    async with hub_context.transaction() as session:
        client = await ClientBook(session).create(
            ClientIn(name="Ромашка", emails=[{"address": "ivan@romashka.example"}]), SYSTEM
        )
    sent = _with_inline_image_and_pdf()
    await _deliver(hub_context, sent)
    token = tokens[Role.operator]
    page = await _get(http, "/api/messages", token, client_id=str(client.id))
    [listed] = page["items"]
    message = await _get(http, f"/api/messages/{listed['id']}", token)
    MessageOut.model_validate(message)
    assert message["subject"] == "Счёт №15" and message["from"]["name"] == "Иван Петров"
    for bad in ("onclick", "<script", "tracker.example"):
        assert bad not in message["html"]
    assert f'src="/api/messages/{listed["id"]}/inline/logo@romashka"' in message["html"]
    with_images = await _get(http, f"/api/messages/{listed['id']}", token, remote_images="true")
    assert "https://tracker.example/open.gif" in with_images["html"]

    [pdf] = message["attachments"]  # the inline logo is not listed
    assert pdf["filename"] == "Счёт №15.pdf"
    resp = await http.get(pdf["url"], headers=bearer(token))
    assert resp.status == 200 and await resp.read() == b"%PDF-1.4 invoice"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82" in resp.headers["Content-Disposition"]
    logo = await http.get(f"/api/messages/{listed['id']}/inline/logo@romashka", headers=bearer(token))
    assert logo.status == 200 and (await logo.read()).startswith(b"\x89PNG")
    raw = await http.get(f"/api/messages/{listed['id']}/raw", headers=bearer(token))
    assert (await raw.read()) == sent


async def test_unclaimed_mail_waits_in_triage_until_linked_or_made_a_card(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    await _deliver(hub_context, by_name("utf8_plain").raw, _with_inline_image_and_pdf("new@stranger.example"))
    token = tokens[Role.operator]
    triage = (await _get(http, "/api/messages", token, unmatched="true"))["items"]
    assert len(triage) == 2
    async with hub_context.transaction() as session:
        known = await ClientBook(session).create(ClientIn(name="Лютик"), SYSTEM)
    by_hand, stranger = sorted(triage, key=lambda m: m["from"]["address"] == "new@stranger.example")
    resp = await http.post(f"/api/messages/{by_hand['id']}/links", json={"client_id": known.id}, headers=bearer(token))
    assert resp.status == 200 and (await resp.json())["clients"] == [{"client_id": known.id, "contact_id": None}]
    resp = await http.post(f"/api/messages/{stranger['id']}/client", json={}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["client"]["name"] == "Иван Петров"
    assert created["message"]["clients"][0]["client_id"] == created["client"]["id"]
    assert (await _get(http, "/api/messages", token, unmatched="true"))["items"] == []
    assert (await _get(http, "/api/messages", token, client_id=str(known.id)))["total"] == 1


async def test_unreadable_mail_is_listed_for_the_admin_with_its_bytes(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    garbage = b"\x00\x01 this is not a message \xff\xfe"
    await _deliver(hub_context, garbage, uid=40)
    admin = tokens[Role.admin]
    [entry] = (await _get(http, "/api/mail/quarantine", admin))["items"]
    assert entry["uid"] == 40 and entry["error"]
    resp = await http.get(entry["raw_url"], headers=bearer(admin))
    assert await resp.read() == garbage
    resp = await http.get("/api/mail/quarantine", headers=bearer(tokens[Role.operator]))
    assert resp.status == 403
