"""The marketer's pages in a real browser: a segment built (the count on screen follows the
filters and matches the database), a campaign written with a live preview for a chosen
recipient and a broken variable shown at its line, sent into a real SMTP server, one copy
opened and its link followed in a recipient's browser, and the open and the click read back on
the statistics page, in the figures, the charts and the recipient's events.  Plus the server
refusing these pages to operators and accountants."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, ViewportSize, expect
from sqlalchemy import select, update

from crm_core.audit import SYSTEM
from crm_core.campaigns.book import CampaignIn, Campaigns, SegmentIn, Segments
from crm_core.campaigns.models import Recipient, RecipientStatus, TrackingHit
from crm_core.campaigns.segments import SegmentRules, count
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Role
from crm_core.users import NewUser, UserDirectory
from hub.campaign_sender import CampaignSender
from hub.context import HubContext
from hub.web.app import make_app
from hub.web.pages import marketer
from tests.browser import VIEWPORT, chromium, logged_in, screenshot
from tests.conftest import PASSWORD, bearer, open_context, password_hash
from tests.smtp_server import SmtpTestServer
from tests.test_campaign_sending import _parsed

# A person's browser, as a recipient's mail client opens links: not headless Chrome's own
# User-Agent, which the machine rules rightly take for automation.
PERSONS_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
HTML = (
    "<p>Здравствуйте, {{ contact.first_name or client.name }}!</p>\n"
    "<p>Для {{ client.name }} скидка 10%.</p>\n"
    '<p><a href="{offer}">Посмотреть предложение</a></p>'
)
PAGES = ("/campaigns", "/campaigns/new", "/campaigns/1", "/campaigns/1/stats", "/segments", "/suppressions")


@dataclass
class Marketing:
    context: HubContext
    http: TestClient
    offer: str  # a page of a site of the test's own, where the campaign's link leads

    @property
    def url(self) -> str:
        return str(self.http.make_url("")).rstrip("/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _offer_site() -> TestServer:
    async def offer(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>Offer</title><h1>Спасибо за интерес!</h1>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/offer", offer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def marketing(database_url: str, tmp_path: Path, smtp_server: SmtpTestServer) -> AsyncIterator[Marketing]:
    """The hub with its campaign sender writing to the test's SMTP server; tracking links point
    at the hub itself (its port chosen first), so a browser can follow them."""
    port = _free_port()
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    campaigns = {"smtp": smtp, "concurrency": 2, "tracking_url": f"http://127.0.0.1:{port}",
                 "hit_recorder_process": False}  # fmt: skip
    context = await open_context(database_url, tmp_path / "data", campaigns=campaigns)
    sender = CampaignSender(context, f"http://127.0.0.1:{port}")
    await sender.start()
    http = TestClient(TestServer(make_app(context, campaigns=sender), host="127.0.0.1", port=port))
    await http.start_server()
    site = await _offer_site()
    try:
        yield Marketing(context, http, str(site.make_url("/offer")))
    finally:
        await site.close()
        await http.close()
        await sender.stop()
        await context.close()


async def _people(context: HubContext) -> None:
    """A marketer who logs in with PASSWORD, and three cards: two tagged vip (one written to
    through its contact person, the other a lead), one not."""
    async with context.transaction() as session:
        directory = UserDirectory(session)
        anna = await directory.create(NewUser(username="anna", role=Role.marketer, full_name="Анна Маркетолог"))
        anna.password_hash = password_hash()
    await _cards(context)


async def _shown_count(page: Page, expected: int) -> None:
    await expect(page.locator("#count-addresses")).to_have_attribute("data-addresses", str(expected))


async def _build_segment(page: Page, context: HubContext) -> None:
    await page.goto("/segments")
    await _shown_count(page, 3)  # no conditions: every card with an address
    await page.select_option("#add-filter", "tags_any")
    await page.fill(".filter-row[data-kind=tags_any] input", "vip")
    await _shown_count(page, 2)
    await page.select_option("#add-filter", "statuses")
    await page.check(".filter-row[data-kind=statuses] input[value=active]")
    await _shown_count(page, 1)
    await page.click(".filter-row[data-kind=statuses] .remove-filter")
    await _shown_count(page, 2)
    async with context.reading() as session:
        assert (await count(session, SegmentRules(tags_any=["vip"]))).addresses == 2
    await expect(page.locator("#sample tbody tr")).to_have_count(2)
    await page.fill("#segment-name", "VIP-клиенты")
    await page.click("#save-segment")
    await expect(page.locator("#segment-list a.active")).to_have_text("VIP-клиенты")
    await screenshot(page, "marketer-segments")


async def _write_campaign(page: Page, offer: str) -> int:
    await page.goto("/campaigns")
    await page.click("#new-campaign")
    await page.wait_for_url("**/campaigns/new")
    await page.fill("#name", "Ноябрьская акция")
    await page.fill("#from_name", "Магазин")
    await page.fill("#from_address", "news@shop.example")
    await page.select_option("#segment_id", label="VIP-клиенты")
    await expect(page.locator("#segment-count")).to_have_attribute("data-addresses", "2")
    await page.fill("#subject", "Скидка для {{ client.name }}")
    await page.fill("#html", HTML.replace("{offer}", offer))
    preview = page.frame_locator("#preview-frame")
    await expect(page.locator("#preview-recipient option:checked")).to_contain_text("irina@romashka.example")
    await expect(preview.locator("p").first).to_have_text("Здравствуйте, Ирина!")
    await expect(page.locator("#preview-subject")).to_have_text("Скидка для Ромашка")
    await page.select_option("#preview-recipient", label="Лютик <info@lyutik.example>")
    await expect(preview.locator("p").first).to_have_text("Здравствуйте, Лютик!")
    await screenshot(page, "marketer-editor-preview")

    broken = HTML.replace("{offer}", offer).replace("Для {{ client.name }}", "Для {{ client.nmae }}")
    await page.fill("#html", broken)
    error = page.locator("#error-html")
    await expect(error).to_contain_text("строка 2")
    await expect(error).to_contain_text("client.nmae")
    await expect(page.locator("#html")).to_have_value(broken)  # the text stays as typed
    await expect(page.locator("#html")).to_have_class("invalid")
    await screenshot(page, "marketer-editor-error")
    await page.fill("#html", HTML.replace("{offer}", offer))
    await expect(error).to_be_hidden()
    await expect(preview.locator("p").nth(1)).to_have_text("Для Лютик скидка 10%.")

    await expect(page.locator("#unsaved")).to_be_visible()
    await page.click("#save")
    await page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    await expect(page.locator("#unsaved")).to_be_hidden()
    return int(page.url.rsplit("/", 1)[1])


async def _open_and_click(browser_url: str, raw: bytes, offer: str) -> None:
    """The recipient reads the message in a person's browser: the pixel loads, the link is
    followed through the hub's redirect to the offer."""
    html = _parsed(raw).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert browser_url + "/t/o/" in html and browser_url + "/t/c/" in html
    async with chromium() as browser:
        size = ViewportSize(width=VIEWPORT["width"], height=VIEWPORT["height"])
        reader = await browser.new_context(viewport=size, locale="ru-RU", user_agent=PERSONS_BROWSER)
        page = await reader.new_page()
        async with page.expect_response(lambda r: "/t/o/" in r.url) as pixel:
            await page.set_content(html)
        assert (await pixel.value).status == 200
        await page.click("text=Посмотреть предложение")
        await page.wait_for_url(offer)
        await expect(page.locator("h1")).to_have_text("Спасибо за интерес!")


async def test_a_marketer_builds_a_segment_writes_sends_and_reads_the_statistics(
    marketing: Marketing, smtp_server: SmtpTestServer
) -> None:
    await _people(marketing.context)
    async with chromium() as browser:
        page = await logged_in(browser, marketing.url, "anna", PASSWORD)
        await _build_segment(page, marketing.context)
        campaign_id = await _write_campaign(page, marketing.offer)

        await page.fill("#test-address", "me@shop.example")
        await page.click("#test-send")
        await expect(page.locator("#toast")).to_contain_text("Пробное письмо отправлено на me@shop.example")
        test_copy = next(m for m in smtp_server.messages if m.rcpt_tos == ("me@shop.example",))
        assert "Лютик" in _parsed(test_copy.raw)["Subject"]  # the previewed recipient's copy

        await page.click("#start")
        await expect(page.locator("dialog.mk-confirm")).to_contain_text("Получателей: 2")
        await page.click("#confirm-yes")
        await expect(page.locator("#status .badge")).to_have_attribute("data-status", "finished", timeout=20_000)
        delivered = time.monotonic()
        raw = next(m.raw for m in smtp_server.messages if m.rcpt_tos == ("irina@romashka.example",))
        assert sorted(m.rcpt_tos[0] for m in smtp_server.messages if m is not test_copy) == [
            "info@lyutik.example", "irina@romashka.example"]  # fmt: skip

        # A person opens mail some seconds after it arrives: an open within 2 s or a click
        # within 3 s of delivery is a machine's (a link scanner), and the stats would say so.
        await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - delivered)))
        await _open_and_click(marketing.url, raw, marketing.offer)

        await page.goto(f"/campaigns/{campaign_id}/stats")
        figure = page.locator('[data-figure="opens.human.unique"]')
        for _ in range(20):  # hits are stored in batches, a tenth of a second apart
            if await figure.text_content() == "1":
                break
            await asyncio.sleep(0.25)
            await page.click("#refresh")
        await expect(figure).to_have_text("1")
        await expect(page.locator('[data-figure="clicks.human.unique"]')).to_have_text("1")
        await expect(page.locator('[data-figure="opens.machine.total"]')).to_have_text("0")
        await expect(page.locator('[data-figure="clicks.machine.total"]')).to_have_text("0")
        await expect(page.locator('[data-figure="sent"]')).to_have_text("2")
        await expect(page.locator('#chart-timeline rect[data-series=opens][data-value="1"]')).to_have_count(1)
        await expect(page.locator('#chart-timeline rect[data-series=clicks][data-value="1"]')).to_have_count(1)
        await expect(page.locator('#chart-links rect[data-series=clicks][data-value="1"]')).to_have_count(1)
        await expect(page.locator('#chart-people rect[data-series=opens][data-value="1"]')).to_have_count(1)
        await expect(page.locator("#chart-links")).to_contain_text(marketing.offer)
        row = page.locator("#recipients tbody tr", has_text="irina@romashka.example")
        await expect(row.locator(".opens")).to_have_text("1")
        await row.click()
        await expect(page.locator("#events tr[data-kind=open][data-human=true]")).to_have_count(1)
        await expect(page.locator("#events tr[data-kind=click][data-human=true]")).to_contain_text(marketing.offer)
        await screenshot(page, "marketer-stats")

        await page.goto("/campaigns")
        listed = page.locator(f"#campaigns tr[data-id='{campaign_id}']")
        await expect(listed.locator(".badge")).to_have_text("завершена")
        await expect(listed.locator(".opened")).to_have_text("1 (50,0 %)")
        await expect(listed.locator(".clicked")).to_have_text("1 (50,0 %)")
        await screenshot(page, "marketer-campaigns")

        await _suppressions(page)

        async with marketing.context.transaction() as session:
            (await UserDirectory(session).by_username("anna")).locale = "en"
        await page.goto(f"/campaigns/{campaign_id}/stats")
        await expect(page.locator("h1")).to_contain_text("Statistics: Ноябрьская акция")
        await expect(figure).to_have_text("1")
        await screenshot(page, "marketer-stats-en")


async def _suppressions(page: Page) -> None:
    await page.goto("/suppressions")
    await page.fill("#address", "not an address")
    await page.click("#add")
    await expect(page.locator("#error-address")).to_have_text("Это не адрес электронной почты")
    await page.fill("#address", "Spam-Trap@Example.com")
    await page.fill("#detail", "ловушка для спама")
    await page.click("#add")
    row = page.locator("#suppressions tbody tr", has_text="spam-trap@example.com")
    await expect(row).to_contain_text("добавлен вручную")
    await page.fill("#search", "trap")
    await expect(page.locator("#suppressions tbody tr")).to_have_count(1)
    await screenshot(page, "marketer-suppressions")
    await row.locator("button.remove").click()
    await page.click("#confirm-yes")
    await expect(page.locator("#suppressions tbody tr")).to_have_count(0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page's logic, not the database's
async def test_a_campaign_is_scheduled_cancelled_and_its_copies_in_doubt_settled_from_the_editor(
    http: TestClient, hub_context: HubContext, tokens: dict[Role, str]
) -> None:
    await _cards(hub_context)
    async with hub_context.transaction() as session:
        segment = await Segments(session).create(SegmentIn(name="VIP", rules=SegmentRules(tags_any=["vip"])))
        campaigns = Campaigns(session)
        fields = {"from_address": "news@shop.example", "subject": "Привет", "html": "<p>Hi</p>",
                  "segment_id": segment.id}  # fmt: skip
        later = await campaigns.create(CampaignIn(name="Позже", **fields), None)
        crashed = await campaigns.create(CampaignIn(name="После сбоя", **fields), None)
        await campaigns.start(crashed.id)
        await campaigns.pause(crashed.id)
        in_doubt = (Recipient.campaign_id == crashed.id, Recipient.address_key == "info@lyutik.example")
        await session.execute(update(Recipient).where(*in_doubt).values(status=RecipientStatus.review))
    async with chromium() as browser:
        page = await logged_in(browser, str(http.make_url("")), "marketer", PASSWORD)
        await page.goto(f"/campaigns/{later.id}")
        await page.fill("#schedule-at", "2030-01-15T10:00")
        await page.click("#schedule")
        await expect(page.locator("dialog.mk-confirm")).to_contain_text("2030-01-15 10:00")
        await page.click("#confirm-yes")
        await expect(page.locator("#status .badge")).to_have_attribute("data-status", "scheduled")
        await expect(page.locator("#scheduled-note")).to_contain_text("2030-01-15 10:00")
        await page.click("#cancel")
        await page.click("#confirm-no")  # thought better of it
        await expect(page.locator("#status .badge")).to_have_attribute("data-status", "scheduled")
        await page.click("#cancel")
        await page.click("#confirm-yes")
        await expect(page.locator("#status .badge")).to_have_attribute("data-status", "cancelled")
        await expect(page.locator("#subject")).to_be_disabled()

        await page.goto(f"/campaigns/{crashed.id}")
        await expect(page.locator("#review-count")).to_have_text("Писем под вопросом: 1.")
        await expect(page.locator("#resume")).to_be_visible()
        await expect(page.locator("#schedule-box")).to_be_hidden()  # a started campaign is not scheduled again
        await expect(page.locator("#unsaved")).to_be_hidden()
        await screenshot(page, "marketer-editor-review")
        await page.click("#review-sent")
        await page.click("#confirm-yes")
        await expect(page.locator("#review")).to_be_hidden()
    async with hub_context.reading() as session:
        assert (await Campaigns(session).recipient_counts(crashed.id))["review"] == 0


# -- the server's refusals -------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.operator, Role.accountant])
async def test_operators_and_accountants_are_refused_the_marketers_pages(
    http: TestClient, tokens: dict[Role, str], role: Role
) -> None:
    for path in PAGES:
        response = await http.get(path, headers=bearer(tokens[role]), allow_redirects=False)
        assert response.status == 403, path
        assert "Нет доступа" in await response.text()


async def test_the_marketers_pages_send_a_visitor_to_the_login_form(http: TestClient, tokens: dict[Role, str]) -> None:
    for path in PAGES:
        response = await http.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == f"/login?next={path}", path
    missing = await http.get("/campaigns/999", headers=bearer(tokens[Role.marketer]))
    assert missing.status == 404 and "Такой рассылки нет." in await missing.text()
    for path in ("/campaigns", "/campaigns/new", "/segments", "/suppressions"):
        assert (await http.get(path, headers=bearer(tokens[Role.admin]))).status == 200, path


# -- what the pages added to the API ---------------------------------------------------------


def _keys(texts: dict[str, Any], prefix: str = "") -> set[str]:
    return {f"{prefix}{key}" for key in texts} | {
        k for key, value in texts.items() if isinstance(value, dict) for k in _keys(value, f"{prefix}{key}.")
    }


def test_the_pages_say_the_same_things_in_russian_and_english() -> None:
    assert _keys(marketer.TEXTS["ru"]) == _keys(marketer.TEXTS["en"])


async def test_the_editor_api_previews_unsaved_templates_and_places_their_errors(
    http: TestClient, hub_context: HubContext, tokens: dict[Role, str]
) -> None:
    auth = bearer(tokens[Role.marketer])
    await _cards(hub_context)
    rules = {"tags_any": ["vip"]}
    sample = await _json(await http.post("/api/segments/sample", json={"rules": rules, "limit": 5}, headers=auth))
    assert [(s["client_name"], s["contact_name"], s["address"]) for s in sample["items"]] == [
        ("Ромашка", "Ирина Петрова", "irina@romashka.example"), ("Лютик", "", "info@lyutik.example")]  # fmt: skip
    client_id = sample["items"][0]["client_id"]

    draft = {"client_id": client_id, "name": "Акция", "subject": "Для {{ client.name }}",
             "html": "<p>{{ contact.first_name }}, {{ client.custom.region or 'Москва' }}</p>"}  # fmt: skip
    copy = await _json(await http.post("/api/campaigns/preview", json=draft, headers=auth))
    assert copy["subject"] == "Для Ромашка" and "<p>Ирина, Тверь</p>" in copy["html"] and "Ирина, Тверь" in copy["text"]
    broken = await http.post(
        "/api/campaigns/preview", json={**draft, "html": "<p>\n{{ client.nmae }}</p>"}, headers=auth
    )
    assert broken.status == 422
    assert (await broken.json())["details"] == [{"field": "html", "line": 2, "variable": "client.nmae",
        "message": "html, line 2: 'dict object' has no attribute 'nmae'"}]  # fmt: skip
    wrong = await _json(await http.post("/api/campaigns/preview", json={**draft, "subject": "{{ clent.name }}"},
                                        headers=auth), 422)  # fmt: skip
    assert wrong["details"][0] | {"message": ""} == {"field": "subject", "line": 1, "variable": "clent", "message": ""}

    body = {"name": "Акция", "from_address": "news@shop.example", "subject": "Привет", "html": "<p>\n\n{% if %}</p>"}
    refused = await _json(await http.post("/api/campaigns", json=body, headers=auth), 422)
    assert refused["details"][0]["field"] == "html" and refused["details"][0]["line"] == 3
    segment = await _json(await http.post("/api/segments", json={"name": "VIP", "rules": rules}, headers=auth), 201)
    body |= {"html": "<p>Hi</p>", "segment_id": segment["id"]}
    campaign = await _json(await http.post("/api/campaigns", json=body, headers=auth), 201)
    one = f"/api/campaigns/{campaign['id']}"
    patched = await _json(await http.patch(one, json={"text": "a\n{{ contact. }}"}, headers=auth), 422)
    assert patched["details"][0] | {"message": ""} == {"field": "text", "line": 2, "variable": None, "message": ""}
    saved = await _json(await http.post(one + "/preview", json={"client_id": client_id}, headers=auth))
    assert saved["subject"] == "Привет"  # the refused change left the draft as it was

    async with hub_context.transaction() as session:
        await Campaigns(session).start(campaign["id"])
        first = await session.scalar(select(Recipient).where(Recipient.address_key == "irina@romashka.example"))
        assert first is not None
        session.add_all([
            TrackingHit(campaign_id=campaign["id"], recipient_id=first.id, kind="open", human=True, ip="10.0.0.1",
                        user_agent=PERSONS_BROWSER),
            TrackingHit(campaign_id=campaign["id"], recipient_id=first.id, kind="click", link_number=1, human=False,
                        reason="too_fast", user_agent=PERSONS_BROWSER),
        ])  # fmt: skip
        recipient_id = first.id
    listed = await _json(await http.get("/api/campaigns", headers=auth))
    assert [(c["id"], c["opened"], c["clicked"]) for c in listed["items"]] == [(campaign["id"], 1, 0)]
    events = await _json(await http.get(f"{one}/recipients/{recipient_id}/events", headers=auth))
    assert events["recipient"]["address"] == "irina@romashka.example" and events["bounces"] == []
    hits = [(h["kind"], h["human"], h["reason"]) for h in events["hits"]]
    assert hits == [("open", True, None), ("click", False, "too_fast")]
    assert (await http.get(f"{one}/recipients/{recipient_id + 99}/events", headers=auth)).status == 404

    offered = await _json(await http.get("/api/segments/choices", headers=auth))
    assert offered["tags"] == ["vip"] and offered["custom_fields"] == ["region"]
    assert offered["campaigns"] == [{"id": campaign["id"], "name": "Акция"}]
    assert "marketer" in [o["name"] for o in offered["owners"]]
    operator = bearer(tokens[Role.operator])
    assert (await http.get("/api/segments/choices", headers=operator)).status == 403
    assert (await http.post("/api/segments/sample", json={"rules": {}}, headers=operator)).status == 403
    assert (await http.post("/api/campaigns/preview", json=draft, headers=operator)).status == 403
    assert (await http.get(f"{one}/recipients/{recipient_id}/events", headers=operator)).status == 403


async def _cards(context: HubContext) -> None:
    async with context.transaction() as session:
        book = ClientBook(session)
        cards = [
            {"name": "Ромашка", "tags": ["vip"], "custom_fields": {"region": "Тверь"},
             "contacts": [{"first_name": "Ирина", "last_name": "Петрова",
                           "emails": [{"address": "irina@romashka.example"}]}]},
            {"name": "Лютик", "tags": ["vip"], "status": "lead", "emails": [{"address": "info@lyutik.example"}]},
            {"name": "Василёк", "emails": [{"address": "hello@vasilek.example"}]},
        ]  # fmt: skip
        for card in cards:
            await book.create(ClientIn.model_validate(card), SYSTEM)


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()
