"""Webhooks out: every event from the outbox, signed, retried until the receiver takes it, in order."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Role
from crm_core.subscriptions import Subscriptions, WebhookDelivery
from hub.context import HubContext
from tests.conftest import bearer
from webhooks.dispatcher import Dispatcher
from webhooks.signing import verify
from webhooks.targets import TargetRefused, check_target


class Receiver:
    """A real HTTP receiver that fails the first ``failures`` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=503, text="busy")
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def accepted_ids(self) -> list[str]:
        ids = [h["webhook-id"] for h, _ in self.requests]
        return list(dict.fromkeys(ids))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start_server()
    try:
        yield r
    finally:
        await r.server.close()


async def _subscribe(context: HubContext, url: str, types: list[str]) -> Any:
    async with context.transaction() as session:
        return await Subscriptions(session).create(url, types)


async def _rounds(dispatcher: Dispatcher, until: Any, rounds: int = 200) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(rounds):
            await dispatcher.run_once(http)
            if until():
                return
            await asyncio.sleep(0.01)
    raise AssertionError("not reached")


def _verify_like_the_readme(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's snippet, verbatim in spirit: what a receiver writes without our code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


async def test_a_receiver_that_fails_three_times_gets_every_event_signed(
    hub_context: HubContext, receiver: Receiver
) -> None:
    receiver.failures = 3
    subscription = await _subscribe(hub_context, receiver.url, ["client.created", "client.updated"])
    async with hub_context.transaction() as session:
        book = ClientBook(session)
        first = await book.create(ClientIn(name="Ромашка"), SYSTEM)
        await book.create(ClientIn(name="Лютик"), SYSTEM)
        await book.update(first.id, {"name": "Ромашка и сыновья"}, SYSTEM)
    dispatcher = Dispatcher(hub_context, allow_private=True, first_retry=timedelta(milliseconds=10))
    await _rounds(dispatcher, lambda: len(receiver.accepted_ids()) == 3 and receiver.failures == 0)
    await _rounds(dispatcher, lambda: dispatcher.delivered == 3)

    ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert len(ids) == 3 + 3 and len(set(ids)) == 3  # the retries carry the same id
    for headers, body in receiver.requests:
        assert verify(subscription.secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body,
                      headers["webhook-signature"], int(time.time()))  # fmt: skip
        assert _verify_like_the_readme(subscription.secret, headers, body)
    accepted = [json.loads(body) for headers, body in receiver.requests[-3:]]
    card_events = [(e["type"], e["data"]["name"]) for e in accepted if e["data"]["id"] == first.id]
    assert card_events == [("client.created", "Ромашка"), ("client.updated", "Ромашка и сыновья")]  # in order
    async with hub_context.reading() as session:
        states = (await session.scalars(select(WebhookDelivery.status))).all()
    assert sorted(states) == ["delivered"] * 3


async def test_events_committed_before_a_crash_are_delivered_after_it(
    hub_context: HubContext, receiver: Receiver
) -> None:
    await _subscribe(hub_context, receiver.url, [])
    async with hub_context.transaction() as session:
        await ClientBook(session).create(ClientIn(name="Ромашка"), SYSTEM)
    # The hub dies here: the dispatcher never ran.  A new one, after the restart:
    await _rounds(Dispatcher(hub_context, allow_private=True), lambda: len(receiver.requests) == 1)
    async with hub_context.transaction() as session:
        try:
            async with session.begin_nested():
                await ClientBook(session).create(ClientIn(name="Откат"), SYSTEM)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    dispatcher = Dispatcher(hub_context, allow_private=True)
    async with aiohttp.ClientSession() as http:
        assert await dispatcher.run_once(http) == 0  # nothing announced that did not happen


async def test_a_dead_delivery_can_be_replayed(hub_context: HubContext, receiver: Receiver, monkeypatch: Any) -> None:
    monkeypatch.setattr("crm_core.subscriptions.RETRY_WINDOW", timedelta(0))
    receiver.failures = 1
    await _subscribe(hub_context, receiver.url, ["client.created"])
    async with hub_context.transaction() as session:
        await ClientBook(session).create(ClientIn(name="Ромашка"), SYSTEM)
    dispatcher = Dispatcher(hub_context, allow_private=True)
    await _rounds(dispatcher, lambda: dispatcher.failed == 1)
    async with hub_context.transaction() as session:
        delivery = await session.scalar(select(WebhookDelivery))
        assert delivery is not None and delivery.status == "dead" and delivery.last_status == 503
        await Subscriptions(session).replay(delivery.id)
    await _rounds(dispatcher, lambda: dispatcher.delivered == 1)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://localhost/x"])
async def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)
    await check_target(url, allow_private=True)


async def test_a_private_target_is_refused_at_delivery_too(hub_context: HubContext, receiver: Receiver) -> None:
    await _subscribe(hub_context, receiver.url, [])
    async with hub_context.transaction() as session:
        await ClientBook(session).create(ClientIn(name="Ромашка"), SYSTEM)
    dispatcher = Dispatcher(hub_context, allow_private=False)
    await _rounds(dispatcher, lambda: dispatcher.failed == 1)
    assert receiver.requests == []


async def test_the_admin_subscribes_sees_deliveries_and_private_urls_are_refused(
    http: Any, tokens: dict, hub_context: HubContext
) -> None:
    admin = bearer(tokens[Role.admin])
    resp = await http.post("/api/webhooks", json={"url": "http://10.0.0.1/hook"}, headers=admin)
    assert resp.status == 422 and "private" in (await resp.json())["message"]
    resp = await http.post("/api/webhooks", json={"url": "https://93.184.216.34/hook"}, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_") and created["event_types"] == []
    resp = await http.post(
        "/api/webhooks", json={"url": "https://93.184.216.34/h", "event_types": ["call.nope"]}, headers=admin
    )
    assert resp.status == 422
    async with hub_context.transaction() as session:
        await ClientBook(session).create(ClientIn(name="Ромашка"), SYSTEM)
        await Subscriptions(session).fan_out()
    resp = await http.get(f"/api/webhooks/{created['id']}/deliveries", headers=admin)
    [delivery] = (await resp.json())["items"]
    assert delivery["type"] == "client.created" and delivery["status"] == "pending"
    resp = await http.get("/api/webhooks", headers=bearer(tokens[Role.operator]))
    assert resp.status == 403
