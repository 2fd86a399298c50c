"""Several `hub run` processes on one PostgreSQL: one node follows the PBX, any node pops the
card and places click-to-call, and when the node that follows the PBX is killed with
`kill -9`, another takes over within 10 s and every call is still logged once with the right
outcome; one node sends a campaign, and when it is killed the other finishes it."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.leases import Leases
from crm_core.models import Role
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from tests.ami_traces import expected
from tests.campaign_run import CampaignRun, address, smtp_section, until
from tests.conftest import bearer, fresh_pg_database, open_context
from tests.fake_ami import FakeAmi
from tests.hub_process import WAIT, Hub, free_port, write_config
from tests.smtp_server import SmtpTestServer

NODES = 3
TAKEOVER = 10.0  # seconds: the limit
# Played at half speed, so that calls ringing when the holder dies are still going when another
# node takes over: a call that begins and ends while no node listens cannot be seen by anyone.
DURING = ("inbound_queue_answered", "inbound_queue_missed", "inbound_direct_answered", "inbound_blind_transfer")
AFTER = ("inbound_direct_busy", "internal_call")


def _pbx(fake: FakeAmi) -> str:
    return (
        "[[pbx]]\n"
        'name = "office"\n'
        f'host = "{fake.host}"\nport = {fake.port}\n'
        'username = "hub"\nsecret = "hubsecret"\n'
        'operator_channel = "Local/{extension}@agents/n"\n'
        "reconnect_min_seconds = 0.05\nreconnect_max_seconds = 0.5\n"
    )


async def _nodes(stack: AsyncExitStack, url: str, tmp_path: Path, count: int, sections: str) -> list[Hub]:
    """``count`` hub processes on one database, sharing one secret key (tokens made by any node
    are good on every node)."""
    hubs = []
    sections = 'secret_key = "one-key-for-every-node-of-this-hub-0123456789"\n' + sections
    for n in range(count):
        port = free_port()
        logs = tmp_path / f"node{n}"
        logs.mkdir()
        hub = Hub(write_config(logs / "hub.toml", logs / "var", url, port, sections), port, logs)
        stack.callback(hub.stop)
        await hub.start()
        hubs.append(hub)
    return hubs


async def _holder(context: HubContext, hubs: list[Hub], lease: str = "ami:office") -> Hub | None:
    async with context.reading() as session:
        held = (await Leases(session).holders()).get(lease)
    if held is None:
        return None
    pid = int(held[0].split(":")[1])
    return next((h for h in hubs if h.proc is not None and h.proc.pid == pid and h.proc.poll() is None), None)


async def _wait_for_holder(context: HubContext, hubs: list[Hub], fake: FakeAmi, timeout: float) -> Hub:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = await _holder(context, hubs)
        if holder is not None and fake.logged_in_sessions:
            return holder
        await asyncio.sleep(0.1)
    raise AssertionError(f"no node followed the PBX within {timeout} s:\n" + "\n".join(h.log() for h in hubs))


async def _calls(hub: Hub, headers: dict[str, str]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(hub.url + "/api/calls", params={"per_page": "200"}) as resp,
    ):
        assert resp.status == 200
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items


async def _read(ws: aiohttp.ClientWebSocketResponse, frames: list[dict[str, Any]]) -> None:
    async for msg in ws:
        frames.append(msg.json())


async def _people(
    stack: AsyncExitStack, url: str, tmp_path: Path, extensions: tuple[str, ...]
) -> tuple[HubContext, dict[str, str], dict[str, dict[str, str]]]:
    """The test's own view of the database, an admin's headers and each operator's."""
    context = await open_context(url, tmp_path / "setup")
    stack.push_async_callback(context.close)
    async with context.transaction() as session:
        users = UserDirectory(session)
        admin = bearer(await users.create_token(await users.create(NewUser("boss", Role.admin))))
        operators = {}
        for ext in extensions:
            user = await users.create(NewUser(f"op{ext}", Role.operator, extension=ext))
            operators[ext] = bearer(await users.create_token(user))
    return context, admin, operators


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


async def test_kill_9_of_the_node_following_the_pbx_another_takes_over_and_every_call_is_logged_once(
    pg_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        context, admin, operators = await _people(stack, pg_url, tmp_path, ("101", "102"))
        async with context.transaction() as session:
            client = await ClientBook(session, context.rules).create(
                ClientIn(name="Лютик", phones=[{"number": "8 (495) 765-43-21"}]), SYSTEM
            )
            client_id = client.id
        fake = await stack.enter_async_context(FakeAmi(speed=0.5))
        hubs = await _nodes(stack, pg_url, tmp_path, NODES, _pbx(fake))
        holder = await _wait_for_holder(context, hubs, fake, WAIT)
        assert len(fake.logged_in_sessions) == 1  # one node follows the PBX, not three

        # Operators 101 and 102 are connected to a node that does not follow the PBX.
        elsewhere = next(h for h in hubs if h is not holder)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        frames: dict[str, list[dict[str, Any]]] = {}
        for ext, headers in operators.items():
            ws = await http.ws_connect(elsewhere.url + "/ws", headers=headers)
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            frames[ext] = []
            reader = asyncio.create_task(_read(ws, frames[ext]))
            stack.callback(reader.cancel)

        replays = [fake.play(name, renumber=True) for name in DURING]
        deadline = time.monotonic() + WAIT
        while not any(f["type"] == "pop" for f in frames["101"]):
            assert time.monotonic() < deadline, "the operator on another node got no pop"
            await asyncio.sleep(0.02)
        holder.kill9()
        killed = time.monotonic()
        successor = await _wait_for_holder(context, [h for h in hubs if h is not holder], fake, TAKEOVER + 5)
        taken_over = time.monotonic() - killed
        assert taken_over <= TAKEOVER, f"taken over after {taken_over:.1f} s"
        await asyncio.gather(*(replay.wait(timeout=120) for replay in replays))
        fake.speed = 4
        for name in AFTER:
            await fake.play(name, renumber=True).wait(timeout=60)

        # Click-to-call asked of a node that does not follow the PBX: the one that does places it.
        asker = next(h for h in hubs if h not in (holder, successor))
        fake.originate_trace = "outbound_click2call"
        async with http.post(asker.url + "/api/calls/originate", json={"client_id": client_id},
                             headers=operators["101"]) as resp:  # fmt: skip
            assert resp.status == 200, await resp.text()
            placed = await resp.json()
        assert (placed["success"], placed["number"]) == (True, "+74957654321")
        [action] = fake.actions_named("Originate")
        assert f"HUB_ORIGINATE_ID={placed['originate_id']}" in action.get_all("Variable")

        truths = [truth for name in (*DURING, *AFTER, "outbound_click2call") for truth in expected(name)]
        deadline = time.monotonic() + WAIT
        while len(calls := await _calls(successor, admin)) < len(truths):
            assert time.monotonic() < deadline, f"{len(calls)} calls logged, {len(truths)} expected"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # nothing more may come: no call is logged twice
        calls = await _calls(elsewhere, admin)  # any node answers the API
        assert len(calls) == len(truths), [(c["caller"], c["status"]) for c in calls]
        found = {(c["direction"], c.get("caller"), c.get("callee"), c.get("did")): c for c in calls}
        for truth in truths:
            call = found[(truth["direction"], truth.get("caller"), truth.get("callee"), truth.get("did"))]
            assert (call["status"], call["reason"]) == (truth["status"], truth["reason"]), (truth, call)
        assert [c["client_id"] for c in calls if c.get("originate_id")] == [client_id]  # filed under the card
        pops = [f for f in frames["101"] if f["type"] == "pop"]
        withdrawn = {f["call_id"] for f in frames["101"] if f["type"] == "withdraw"}
        assert pops and {p["call_id"] for p in pops} <= withdrawn  # the pops did not stay on screen
        print(f"\ntaken over after {taken_over:.1f} s; {len(calls)} calls logged once")


CAMPAIGN = 1000  # recipients
RATE = 100  # per second: ten seconds of sending, the holder killed after five


async def test_kill_9_of_the_node_sending_a_campaign_another_finishes_it_and_each_address_gets_it_once(
    pg_url: str, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        context, admin, _ = await _people(stack, pg_url, tmp_path, ())
        hubs = await _nodes(stack, pg_url, tmp_path, 2, smtp_section(smtp_server, 4, RATE))
        api = await stack.enter_async_context(aiohttp.ClientSession(headers=admin))
        run = CampaignRun(api)
        sender = await _holder(context, hubs, "campaigns")
        assert sender is not None
        other = next(h for h in hubs if h is not sender)
        await run.start(other, CAMPAIGN)  # started on the node that does not send: it is all in the database

        async def halfway() -> bool:
            return len(smtp_server.messages) >= CAMPAIGN // 2

        await until("half the campaign sent", halfway, sender)
        sender.kill9()
        killed, at_kill = time.monotonic(), len(smtp_server.messages)

        async def sending_again() -> bool:
            return len(smtp_server.messages) > at_kill + 10

        await until("the other node sending", sending_again, other, timeout=TAKEOVER + 5)
        taken_over = time.monotonic() - killed
        assert taken_over <= TAKEOVER, f"taken over after {taken_over:.1f} s"
        await until("the campaign finished", lambda: run.finished(other), other, timeout=CAMPAIGN / RATE + WAIT)
        review = await run.settle_review(other, smtp_server)
        await until("the campaign finished after the review", lambda: run.finished(other), other)
        counts = await run.counts(other)
        async with api.get(other.url + "/metrics") as resp:
            figures = await resp.text()
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert [a for a, n in received.items() if n > 1] == []  # nobody twice
    assert set(received) == {address(n) for n in range(CAMPAIGN)}  # nobody lost
    assert counts["sent"] == CAMPAIGN and counts["review"] == counts["queued"] == counts["sending"] == 0
    assert 'hub_lease_held{lease="campaigns"} 1.0' in figures  # the survivor holds the sending
    assert 'hub_campaign_recipients{status="queued"} 0.0' in figures and "hub_database_up 1.0" in figures
    sent = re.search(r'^hub_campaign_messages_total\{result="sent"\} (\S+)$', figures, re.MULTILINE)
    assert sent is not None and CAMPAIGN - at_kill <= float(sent.group(1)) <= CAMPAIGN
    print(f"\n{at_kill} sent before the kill; taken over after {taken_over:.1f} s; {review} in review")
