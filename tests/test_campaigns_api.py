"""A marketer's mailing through the API, into a real SMTP server: a segment counted, a campaign
checked, previewed, test-sent, sent, its pixel and a link hit, and the figures read back."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Role
from hub.campaign_sender import CampaignSender
from hub.context import HubContext
from hub.web import campaigns_api
from hub.web.app import make_app
from hub.web.tracking import HITS
from tests.conftest import bearer, open_context
from tests.smtp_server import SmtpTestServer
from tests.test_campaign_sending import _parsed
from tests.test_tracking import BROWSER

HTML = '<p>Здравствуйте, {{ client.name }}!</p><a href="https://shop.example.com/sale">Скидки</a>'


@pytest.fixture
async def marketing(
    database_url: str, tmp_path: Path, smtp_server: SmtpTestServer
) -> AsyncIterator[tuple[TestClient, HubContext]]:
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    context = await open_context(database_url, tmp_path / "data", campaigns={"smtp": smtp, "concurrency": 2})
    sender = CampaignSender(context, "http://hub.test")
    await sender.start()
    client = TestClient(TestServer(make_app(context, campaigns=sender)))
    await client.start_server()
    try:
        yield client, context
    finally:
        await client.close()
        await sender.stop()
        await context.close()


async def _marketer(context: HubContext) -> dict[str, str]:
    from crm_core.users import NewUser, UserDirectory

    async with context.transaction() as session:
        directory = UserDirectory(session)
        user = await directory.create(NewUser(username="anna", role=Role.marketer))
        return bearer(await directory.create_token(user))


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_marketers_campaign_from_segment_to_statistics(
    marketing: tuple[TestClient, HubContext], smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, context = marketing
    auth = await _marketer(context)
    async with context.transaction() as session:
        book = ClientBook(session)
        ids = []
        for n, city in enumerate(["Москва", "Москва", "Тверь"]):
            card = {"name": f"Клиент {n}", "tags": ["vip"], "custom_fields": {"city": city},
                    "emails": [{"address": f"c{n}@clients.example"}]}  # fmt: skip
            ids.append((await book.create(ClientIn.model_validate(card), SYSTEM)).id)
    rules = {"tags_any": ["vip"]}
    counted = await _json(await http.post("/api/segments/count", json={"rules": rules}, headers=auth))
    assert counted == {"clients": 3, "addresses": 3, "suppressed": 0}
    segment = await _json(await http.post("/api/segments", json={"name": "VIP", "rules": rules}, headers=auth), 201)

    body = {"name": "Декабрь", "from_address": "news@shop.example.com", "subject": "Для {{ client.name }}",
            "html": "<p>\n{{ client.nmae }}</p>", "segment_id": segment["id"]}  # fmt: skip
    refused = await _json(await http.post("/api/campaigns", json=body, headers=auth), 201)
    bad = await http.post(f"/api/campaigns/{refused['id']}/start", headers=auth)
    assert bad.status == 422 and "html, line 2" in (await bad.json())["message"]

    campaign = await _json(await http.post("/api/campaigns", json={**body, "html": HTML}, headers=auth), 201)
    one = f"/api/campaigns/{campaign['id']}"
    preview = await _json(await http.post(one + "/preview", json={"client_id": ids[2]}, headers=auth))
    assert preview["subject"] == "Для Клиент 2" and "https://shop.example.com/sale" in preview["html"]
    tested = await _json(await http.post(one + "/test", json={"address": "me@shop.example.com", "client_id": ids[0]},
                                         headers=auth))  # fmt: skip
    assert smtp_server.messages[-1].rcpt_tos == ("me@shop.example.com",) and tested["message_id"]
    assert b"/t/o/" not in smtp_server.messages[-1].raw  # a test copy is not tracked

    started = await _json(await http.post(one + "/start", headers=auth))
    assert started["status"] == "sending" and started["recipients"]["queued"] == 3
    deadline = time.monotonic() + 15
    while (await _json(await http.get(one, headers=auth)))["status"] != "finished":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    raw = next(m for m in smtp_server.messages if m.rcpt_tos == ("c1@clients.example",)).raw
    copy = _parsed(raw).get_body(("html",)).get_content()  # type: ignore[union-attr]
    pixel = "/t/o/" + copy.split("http://hub.test/t/o/")[1].split('"')[0]
    link = "/t/c/" + copy.split("http://hub.test/t/c/")[1].split('"')[0]
    await asyncio.sleep(3.1)  # an open or a click within seconds of sending is a machine's
    person = {"User-Agent": BROWSER, "Accept-Language": "ru-RU,ru;q=0.9"}
    assert (await http.get(pixel, headers=person)).status == 200
    clicked = await http.get(link, headers=person, allow_redirects=False)
    assert clicked.status == 302 and clicked.headers["Location"] == "https://shop.example.com/sale"
    assert (await http.get(pixel, headers={"User-Agent": "Mozilla/5.0"})).status == 200  # Apple's proxy
    await http.app[HITS].flush()  # type: ignore[index]

    stats = await _json(await http.get(one + "/stats", headers=auth))
    assert stats["sent"] == 3
    assert stats["opens"]["human"] == {"total": 1, "unique": 1}
    assert stats["opens"]["machine"] == {"total": 1, "unique": 1}
    assert stats["clicks"]["human"] == {"total": 1, "unique": 1}
    assert stats["links"][0]["url"] == "https://shop.example.com/sale"
    rows = await _json(await http.get(one + "/recipients?limit=2", headers=auth))
    assert len(rows["items"]) == 2 and rows["next_after"] == rows["items"][-1]["id"]
    monkeypatch.setattr(campaigns_api, "CSV_PAGE", 2)  # streamed page by page: the header only once
    exported = await http.get(one + "/recipients.csv", headers=auth)
    table = list(csv.DictReader(io.StringIO((await exported.text()).lstrip("\ufeff")), delimiter=";"))
    assert {r["address"]: r["clicks"] for r in table} == {
        "c0@clients.example": "0", "c1@clients.example": "1", "c2@clients.example": "0"}  # fmt: skip

    added = await _json(await http.post("/api/suppressions", json={"address": "C0@Clients.example"}, headers=auth), 201)
    listed = await _json(await http.get("/api/suppressions?q=clients", headers=auth))
    assert [s["address"] for s in listed["items"]] == ["c0@clients.example"] and added["reason"] == "manual"
    counted = await _json(await http.post("/api/segments/count", json={"rules": rules}, headers=auth))
    assert counted["addresses"] == 2 and counted["suppressed"] == 1
    assert (await http.delete(f"/api/suppressions/{added['id']}", headers=auth)).status == 204
