"""The tracking endpoints over real HTTP: the pixel, the click redirect, the unsubscribe page
and RFC 8058 one-click POST; forged tokens and steering attempts get 404 and record nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm_core.campaigns.machines import MachineRules
from crm_core.campaigns.models import Suppression, TrackingHit
from crm_core.campaigns.tokens import Purpose, make_token, tracking_key
from crm_core.campaigns.tracking import PendingHit, Tracking, Visit
from crm_core.models import utcnow
from hub.context import HubContext
from hub.hit_log import HitLog
from hub.hit_recorder import LocalRecorder
from hub.web.tracking import HITS, PIXEL
from tests.test_tracking import BROWSER, _sent


async def _recipient(hub_context: HubContext, tracking: bool = True) -> tuple[int, int]:
    async with hub_context.transaction() as session:
        recipient, cards = await _sent(session, tracking=tracking)
        return recipient.id, cards["Лютик"]


def _token(hub_context: HubContext, purpose: Purpose, recipient_id: int, link: int | None = None) -> str:
    return make_token(tracking_key(hub_context.signing_key), purpose, recipient_id, link)


async def _recorded(http: TestClient, hub_context: HubContext) -> list[tuple[Any, ...]]:
    await http.app[HITS].flush()  # type: ignore[index]
    async with hub_context.reading() as session:
        rows = await session.execute(select(TrackingHit.kind, TrackingHit.link_number, TrackingHit.human))
        return [tuple(row) for row in rows.all()]


def _altered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


async def test_the_pixel_is_served_at_once_and_the_open_recorded(http: TestClient, hub_context: HubContext) -> None:
    recipient_id, _ = await _recipient(hub_context)
    response = await http.get(
        f"/t/o/{_token(hub_context, Purpose.open, recipient_id)}", headers={"User-Agent": BROWSER}
    )
    assert response.status == 200 and response.content_type == "image/gif"
    assert await response.read() == PIXEL and "no-store" in response.headers["Cache-Control"]
    assert await _recorded(http, hub_context) == [("open", None, True)]
    figures = await (await http.get("/metrics")).text()
    assert "hub_tracking_hits_recorded_total 1.0" in figures and "hub_tracking_hits_waiting 0.0" in figures


async def test_forged_and_altered_tokens_get_404_and_record_nothing(http: TestClient, hub_context: HubContext) -> None:
    recipient_id, _ = await _recipient(hub_context)
    good_open = _token(hub_context, Purpose.open, recipient_id)
    good_click = _token(hub_context, Purpose.click, recipient_id, 1)
    forged = make_token(b"not the hub's key" * 2, Purpose.open, recipient_id)
    for path in (
        f"/t/o/{_altered(good_open)}",
        f"/t/o/{forged}",
        f"/t/o/{good_click}",  # a click's token is not an open's
        f"/t/c/{good_open}",
        f"/t/c/{_altered(good_click)}",
        f"/u/{good_open}",
        "/t/o/" + "A" * 200,
        "/t/c/%00%ff",
    ):
        response = await http.get(path, allow_redirects=False)
        assert response.status == 404, path
    response = await http.post(f"/u/{_altered(_token(hub_context, Purpose.unsubscribe, recipient_id))}")
    assert response.status == 404
    assert await _recorded(http, hub_context) == []
    async with hub_context.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Suppression)) == 0


async def test_a_click_goes_only_to_the_stored_link(http: TestClient, hub_context: HubContext) -> None:
    recipient_id, client_id = await _recipient(hub_context)
    token = _token(hub_context, Purpose.click, recipient_id, 1)
    response = await http.get(
        f"/t/c/{token}?url=https://evil.example/&next=//evil.example",
        allow_redirects=False,
        headers={"User-Agent": BROWSER, "Referer": "https://evil.example/"},
    )
    assert response.status == 302
    assert response.headers["Location"] == f"https://shop.example.com/sale?c={client_id}"
    missing = _token(hub_context, Purpose.click, recipient_id, 7)  # signed, but the campaign has two links
    assert (await http.get(f"/t/c/{missing}", allow_redirects=False)).status == 404
    assert await _recorded(http, hub_context) == [("click", 1, True)]


async def test_without_tracking_the_redirect_works_and_records_nothing(
    http: TestClient, hub_context: HubContext
) -> None:
    recipient_id, _ = await _recipient(hub_context, tracking=False)
    response = await http.get(f"/t/c/{_token(hub_context, Purpose.click, recipient_id, 2)}", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "https://shop.example.com/"
    assert (await http.get(f"/t/o/{_token(hub_context, Purpose.open, recipient_id)}")).status == 200
    assert await _recorded(http, hub_context) == []


async def test_the_unsubscribe_page_asks_and_a_bare_one_click_post_unsubscribes(
    http: TestClient, hub_context: HubContext
) -> None:
    recipient_id, _ = await _recipient(hub_context)
    path = f"/u/{_token(hub_context, Purpose.unsubscribe, recipient_id)}"
    page = await http.get(path)
    assert page.status == 200 and '<form method="post">' in await page.text()
    async with hub_context.reading() as session:  # a GET (a scanner following the link) unsubscribes nobody
        assert await session.scalar(select(func.count()).select_from(Suppression)) == 0

    # RFC 8058: a bare POST, no cookie, no CSRF token, straight from a mail provider's server.
    reader, writer = await asyncio.open_connection(http.host, http.port)
    body = b"List-Unsubscribe=One-Click"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {http.host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    async with hub_context.reading() as session:
        rows = (await session.execute(select(Suppression.address_key, Suppression.detail))).all()
    assert [tuple(r) for r in rows] == [("hello@lyutik.ru", "one-click")]
    again = await http.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status == 200  # asked twice: still fine, still one suppression


async def test_stopping_stores_every_hit_answered_even_those_that_came_during_a_flush(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipient_id, _ = await _recipient(hub_context)
    flushing = asyncio.Event()
    real = Tracking.record

    async def slow(self: Tracking, hits: Any) -> int:
        flushing.set()
        await asyncio.sleep(0.3)  # a flush that takes its time, as under load
        return await real(self, hits)

    monkeypatch.setattr(Tracking, "record", slow)
    log = HitLog(LocalRecorder(hub_context, MachineRules()))
    log.start()
    visit = Visit(utcnow(), user_agent=BROWSER)
    log.add(PendingHit("open", recipient_id, visit))
    await flushing.wait()
    for _ in range(9):  # answered while the first one is being stored
        log.add(PendingHit("open", recipient_id, visit))
    await log.stop()
    async with hub_context.reading() as session:
        assert await session.scalar(select(func.count()).select_from(TrackingHit)) == 10
    assert log.recorded == 10
