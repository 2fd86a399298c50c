"""A real `hub run` killed with `kill -9` between commit and delivery loses no webhook event.

Delivery is at least once: an attempt cut off by the kill is sent again after the restart, once
its lease has run out (four timeouts + 5 s: a round's attempts go out in up to four waves),
with the same `webhook-id` for the receiver to deduplicate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.hub_process import WAIT, Hub, free_port, write_config
from webhooks.signing import verify

TIMEOUT_SECONDS = 2  # the hub's attempt timeout; a claimed delivery is leased for 4 of them + 5 s


@dataclass
class Attempt:
    mode: str  # how the receiver answered it: "hang", "503" or "204"
    at: float  # time.monotonic() of arrival
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A real HTTP receiver whose answer can be switched: 503, 204, or none until released."""

    def __init__(self) -> None:
        self.mode = "204"
        self.release = asyncio.Event()
        self.attempts: list[Attempt] = []
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.Response:
        mode = self.mode
        self.attempts.append(Attempt(mode, time.monotonic(), dict(request.headers), await request.read()))
        if mode == "hang":
            await self.release.wait()  # by then the hub that sent it is dead: nobody reads this
            return web.Response(status=503, text="too late")
        if mode == "503":
            return web.Response(status=503, text="busy")
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def created(self, client_ids: set[int], mode: str | None = None) -> list[Attempt]:
        """Attempts carrying client.created of one of these clients (answered in ``mode``, if given)."""
        return [
            a
            for a in self.attempts
            if (mode is None or a.mode == mode)
            and a.event["type"] == "client.created"
            and a.event["data"]["id"] in client_ids
        ]

    def clients_reached(self, client_ids: set[int], mode: str) -> set[int]:
        return {a.event["data"]["id"] for a in self.created(client_ids, mode)}


async def _until(what: str, done: Callable[[], bool], hub: Hub) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}\n{hub.log()}")
        if hub.proc is not None and hub.proc.poll() is not None:
            raise AssertionError(f"the hub exited with {hub.proc.returncode} waiting for: {what}\n{hub.log()}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start_server()
    try:
        yield r
    finally:
        r.release.set()
        await r.server.close()


async def test_kill_9_between_commit_and_delivery_loses_nothing(
    hub_database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "hub.toml",
        tmp_path / "var",
        hub_database_url,
        port,
        f"[webhooks]\nallow_private = true\ntimeout_seconds = {TIMEOUT_SECONDS}\n",
    )
    hub = Hub(config, port, tmp_path)
    started = time.monotonic()
    try:
        if hub_database_url:
            await hub.cli("db", "upgrade")
        await hub.start()
        token = (await hub.cli("token", "create", "--user", "admin")).strip()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:

            async def new_client(name: str) -> int:
                async with api.post(hub.url + "/api/clients", json={"name": name}) as resp:
                    assert resp.status == 201, await resp.text()
                    return (await resp.json())["id"]

            async with api.post(hub.url + "/api/webhooks", json={"url": receiver.url}) as resp:
                assert resp.status == 201, await resp.text()
                subscription = await resp.json()
            assert subscription["event_types"] == []  # every event

            # A: the receiver never answers, so the hub holds claimed deliveries in flight; kill it then.
            # (A round of the dispatcher waits for all its attempts: the first client's attempt goes
            # out alone and times out, the others go out together in the next round.)
            receiver.mode = "hang"
            a_ids = {await new_client(f"Ромашка {i}") for i in range(5)}
            await _until("every A event sent", lambda: receiver.clients_reached(a_ids, "hang") == a_ids, hub)
            hub.kill9()
            # Attempts younger than the timeout (with a margin) were still running when the hub died.
            young = time.monotonic() - (TIMEOUT_SECONDS - 0.5)
            cut_off = {a.event["data"]["id"] for a in receiver.created(a_ids, "hang") if a.at > young}
            assert cut_off, "killed too late: no attempt was in flight any more"
            receiver.mode = "204"
            receiver.release.set()
            killed_a = time.monotonic()
            await hub.start()
            await _until("every A event taken", lambda: receiver.clients_reached(a_ids, "204") == a_ids, hub)
            a_seconds = time.monotonic() - killed_a

            # B: the receiver refuses (503); the last client is committed just before the kill.
            receiver.mode = "503"
            b_ids = {await new_client(f"Лютик {i}") for i in range(4)}
            await _until("every B event refused once", lambda: receiver.clients_reached(b_ids, "503") == b_ids, hub)
            b_ids.add(await new_client("Василёк"))
            hub.kill9()  # right after the commit: fanned out or not, claimed or not, attempted or not
            receiver.mode = "204"
            killed_b = time.monotonic()
            await hub.start()
            await _until("every B event taken", lambda: receiver.clients_reached(b_ids, "204") == b_ids, hub)
            b_seconds = time.monotonic() - killed_b

            async with api.get(hub.url + f"/api/webhooks/{subscription['id']}/deliveries") as resp:
                assert resp.status == 200, await resp.text()
                deliveries = (await resp.json())["items"]

        # Each event kept one webhook-id on every attempt (and it is the body's id), signed each time.
        attempts = receiver.created(a_ids | b_ids)
        ids_of: dict[int, set[str]] = {}
        for a in attempts:
            assert a.headers["webhook-id"] == a.event["id"]
            ids_of.setdefault(a.event["data"]["id"], set()).add(a.headers["webhook-id"])
            assert verify(
                subscription["secret"], a.headers["webhook-id"], int(a.headers["webhook-timestamp"]), a.body,
                a.headers["webhook-signature"], int(time.time()),
            )  # fmt: skip
        assert ids_of.keys() == a_ids | b_ids  # no event missing
        assert all(len(ids) == 1 for ids in ids_of.values()), ids_of  # stable id per event
        # Nothing announced twice as different events, nothing taken twice by the hub's books.
        events = [d for d in deliveries if d["type"] == "client.created"]
        assert len(events) == len(a_ids | b_ids) == len({d["event_id"] for d in events})
        assert {d["status"] for d in deliveries} == {"delivered"}, deliveries
        # A's attempts cut off by the kill went unrecorded: the receiver saw more than the hub counted.
        recorded = {d["event_id"]: d["attempts"] for d in events}
        for client_id in cut_off:
            [event_id] = ids_of[client_id]
            seen = sum(1 for a in attempts if a.headers["webhook-id"] == event_id)
            assert seen > recorded[event_id] >= 1, (client_id, seen, recorded[event_id])

        repeated = sum(1 for n in Counter(a.headers["webhook-id"] for a in attempts).values() if n > 1)
        print(
            f"\n{'postgresql' if hub_database_url else 'sqlite'}: {len(ids_of)} events, {len(attempts)} attempts,"
            f" {repeated} webhook-ids seen more than once, {len(cut_off)} attempts cut off by kill -9;"
            f" all in {a_seconds:.1f} s after restart A, {b_seconds:.1f} s after restart B;"
            f" whole test {time.monotonic() - started:.1f} s"
        )
    finally:
        hub.stop()
