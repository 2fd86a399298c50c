"""The whole telephony path: fake Asterisk socket -> connector -> tracker -> database -> WebSocket.

Every shared trace is replayed by the fake AMI server into a running hub; operators whose
phones ring hold the pop socket.  What they see and what the call log says must match
``expected.json``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Role
from crm_core.outbox import OutboxEvent
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.app import make_app
from tests.ami_traces import expected, load_trace, trace_names
from tests.conftest import bearer, open_context
from tests.fake_ami import FakeAmi

EXTENSIONS = ("101", "102", "103", "104", "201", "202")
COMPARED = (
    "direction",
    "caller",
    "did",
    "queue",
    "status",
    "reason",
    "answered_by",
    "transferred_to",
    "final_operator",
    "operator",
    "callee",
    "originate_id",
)


@dataclass
class Operator:
    extension: str
    frames: list[dict[str, Any]] = field(default_factory=list)

    def pops(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "pop"]

    def withdrawals(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "withdraw"]


@dataclass
class Hub:
    context: HubContext
    telephony: Telephony
    http: TestClient
    fake: FakeAmi
    operators: dict[str, Operator]

    async def calls(self) -> list[dict[str, Any]]:
        resp = await self.http.get("/api/calls", params={"per_page": "200"}, headers=self.admin)
        assert resp.status == 200
        return (await resp.json())["items"]

    async def wait_for_calls(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = await self.calls()
            if len(calls) >= count:
                return calls
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(await self.calls())} calls logged within {timeout} s, {count} expected")

    admin: dict[str, str] = field(default_factory=dict)


def _pbx(name: str, fake: FakeAmi) -> dict[str, Any]:
    return {
        "name": name,
        "host": fake.host,
        "port": fake.port,
        "username": "hub",
        "secret": "hubsecret",
        "operator_channel": "Local/{extension}@agents/n",
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
    }


@asynccontextmanager
async def running_hub(
    database_url: str, data_dir: Path, fakes: dict[str, FakeAmi], **settings: Any
) -> AsyncIterator[Hub]:
    """A hub following each fake PBX, with one operator socket per extension and one known client."""
    pbx = [_pbx(name, fake) for name, fake in fakes.items()]
    context = await open_context(database_url, data_dir, pbx=pbx, **settings)
    tokens = {}
    async with context.transaction() as session:
        users = UserDirectory(session)
        admin_token = await users.create_token(await users.create(NewUser("boss", Role.admin)))
        for ext in EXTENSIONS:
            tokens[ext] = await users.create_token(
                await users.create(NewUser(f"op{ext}", Role.operator, extension=ext))
            )
        await ClientBook(session, context.rules).create(
            ClientIn(
                name="Ромашка",
                inn="7707083893",
                tags=["vip"],
                contacts=[{"first_name": "Иван", "last_name": "Сидоров", "phones": [{"number": "8 (495) 123-45-67"}]}],
            ),
            SYSTEM,
        )
    pops = PopHub()
    telephony = Telephony(context, pops)
    http = TestClient(TestServer(make_app(context, pops, telephony)))
    await http.start_server()
    operators = {ext: Operator(ext) for ext in EXTENSIONS}
    readers = []
    try:
        for ext, operator in operators.items():
            ws = await http.ws_connect("/ws", headers=bearer(tokens[ext]))
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            readers.append(asyncio.create_task(_read(ws, operator)))
        await telephony.start()
        await _until(lambda: all(telephony.connected().values()), 10)
        yield Hub(context, telephony, http, next(iter(fakes.values())), operators, admin=bearer(admin_token))
    finally:
        await telephony.stop()
        for reader in readers:
            reader.cancel()
        await http.close()
        await context.close()


@pytest.fixture
async def hub(database_url: str, tmp_path: Path) -> AsyncIterator[Hub]:
    async with FakeAmi(speed=50) as fake, running_hub(database_url, tmp_path / "data", {"office": fake}) as running:
        yield running


async def _read(ws: Any, operator: Operator) -> None:
    async for msg in ws:
        operator.frames.append(msg.json())


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _check_call(call: dict[str, Any], truth: dict[str, Any]) -> None:
    """Every key expected.json states for the call (it leaves out what does not apply)."""
    for key in COMPARED:
        if key in truth:
            assert call[key] == truth[key], (key, call[key], truth[key])
    if "rang" in truth:
        assert call["rang"] == truth["rang"]
    if "talk_seconds" in truth:
        assert abs(call["talk_seconds"] - truth["talk_seconds"]) <= 1


def _check_pops(hub: Hub, trace: str, truth: list[dict[str, Any]]) -> None:
    """Each extension that rang got a pop while ringing, and every pop was withdrawn."""
    rang = {ext for call in truth for ext in call.get("rang", [])}
    for ext in rang:
        operator = hub.operators[ext]
        assert operator.pops(), f"{trace}: {ext} rang but got no pop"
    for ext, operator in hub.operators.items():
        popped = {p["call_id"] for p in operator.pops()}
        withdrawn = {w["call_id"] for w in operator.withdrawals()}
        assert popped == withdrawn, f"{trace}: {ext} still shows {popped - withdrawn}"


SINGLE_CALL_TRACES = [name for name in trace_names() if name != "load_20_callers"]


@pytest.mark.parametrize("trace", SINGLE_CALL_TRACES)
async def test_trace_gives_the_expected_call_log_and_pops(hub: Hub, trace: str) -> None:
    """Speed 10, not the fixture's 50: where no Cdr gives the answer away, talk time is read from
    when events arrived, and a one-second tolerance at speed 50 is 20 ms of wall time, less than
    one event-loop stall on a loaded CI machine."""
    replay = hub.fake.play(trace, speed=10)
    await replay.wait()
    [call] = await hub.wait_for_calls(1, timeout=10)
    [truth] = expected(trace)
    _check_call(call, truth)
    _check_pops(hub, trace, [truth])
    assert call["pbx"] == "office" and call["linkedid"] and call["started_at"] and call["ended_at"]


async def test_pop_shows_the_matched_card_and_is_withdrawn_from_the_operator_who_did_not_answer(hub: Hub) -> None:
    await hub.fake.play("inbound_queue_answered").wait()
    [call] = await hub.wait_for_calls(1, timeout=10)
    anna, boris = hub.operators["101"], hub.operators["102"]
    pop = anna.pops()[0]
    assert pop["caller"] == "+74951234567" and pop["queue"] == "support"
    assert pop["client"]["name"] == "Ромашка" and pop["client"]["contact"] == "Сидоров Иван"
    assert pop["client"]["inn"] == "7707083893" and pop["client"]["tags"] == ["vip"]
    assert boris.withdrawals()[0]["reason"] == "answered_elsewhere" and boris.withdrawals()[0]["by"] == "101"
    assert anna.withdrawals()[-1]["reason"] == "ended"
    assert call["client_id"] is not None
    metrics = await (await hub.http.get("/metrics")).text()
    assert 'hub_ami_connected{pbx="office"} 1.0' in metrics
    assert 'hub_calls_logged_total{status="answered"} 1.0' in metrics
    assert "hub_screen_pops_total 2.0" in metrics


async def test_a_call_announces_ringing_answered_and_ended_in_order_under_its_client(hub: Hub) -> None:
    """The webhook events of a call, written to the outbox by the call log's writer in the order
    they happened: each operator's ring, the answer, the end; all filed under the caller's card."""
    await hub.fake.play("inbound_queue_answered").wait()
    [call] = await hub.wait_for_calls(1, timeout=10)
    async with hub.context.reading() as session:
        rows = await session.execute(
            select(OutboxEvent.type, OutboxEvent.client_id, OutboxEvent.payload).order_by(OutboxEvent.id)
        )
        calls = [row for row in rows if row.type.startswith("call.")]
    assert [e.type for e in calls] == ["call.ringing", "call.ringing", "call.answered", "call.ended"]
    assert [e.payload["extension"] for e in calls[:3]] == ["101", "102", "101"]
    assert {e.client_id for e in calls} == {call["client_id"]} and call["client_id"] is not None
    ringing = calls[0].payload
    assert ringing["caller"] == "+74951234567" and ringing["queue"] == "support" and ringing["direction"] == "inbound"
    assert calls[-1].payload["id"] == call["id"] and calls[-1].payload["linkedid"] == call["linkedid"]


async def test_twenty_callers_are_all_logged_once_with_their_verdicts(hub: Hub) -> None:
    await hub.fake.play("load_20_callers").wait()
    calls = await hub.wait_for_calls(20, timeout=20)
    truth = {t["caller"]: t for t in expected("load_20_callers")}
    assert len(calls) == 20 and {c["caller"] for c in calls} == set(truth)
    for call in calls:
        _check_call(call, truth[call["caller"]])
    _check_pops(hub, "load_20_callers", list(truth.values()))


def _identity(call: dict[str, Any]) -> tuple[Any, ...]:
    return (call["direction"], call.get("caller"), call.get("did"), call.get("callee"))


async def test_every_trace_at_recorded_speed_all_at_once(hub: Hub) -> None:
    """Speed 1: the real gaps between events, every trace playing at the same time."""
    replays = [hub.fake.play(name, speed=1, renumber=True) for name in trace_names()]
    await asyncio.gather(*(replay.wait(timeout=60) for replay in replays))
    truths = [truth for name in trace_names() for truth in expected(name)]
    calls = await hub.wait_for_calls(len(truths), timeout=20)
    assert len(calls) == len(truths)
    by_identity = {_identity(c): c for c in calls}
    assert len(by_identity) == len(calls), "two calls look alike; the test cannot tell them apart"
    for truth in truths:
        _check_call(by_identity[_identity(truth)], truth)
    _check_pops(hub, "all traces", truths)


@pytest.mark.parametrize("seed", [11, 23, 42])
async def test_cuts_at_random_points_of_twenty_callers_lose_and_duplicate_nothing(hub: Hub, seed: int) -> None:
    """The AMI connection drops three times mid-trace; each time the hub reconnects and resyncs."""
    rng = random.Random(seed)
    speed = 2.0
    # Just before randomly chosen events, so that each outage swallows at least that one.
    events = [f.t for f in load_trace("load_20_callers") if f.direction == "in" and f.raw.startswith("Event:")]
    cuts = sorted(max(0.0, t / speed - 0.01) for t in rng.sample(events[1:-1], 3))
    replay = hub.fake.play("load_20_callers", speed=speed)
    started = asyncio.get_running_loop().time()
    for at in cuts:
        await asyncio.sleep(max(0.0, started + at - asyncio.get_running_loop().time()))
        hub.fake.cut(down_for=rng.uniform(0.2, 0.6))  # refused meanwhile: the events then are lost
    await replay.wait(timeout=60)
    calls = await hub.wait_for_calls(20, timeout=20)
    await asyncio.sleep(0.5)  # nothing more may arrive: no duplicates
    calls = await hub.calls()
    truth = {t["caller"]: t for t in expected("load_20_callers")}
    assert sorted(c["caller"] for c in calls) == sorted(truth), f"cuts at {cuts}"
    for call in calls:
        want = truth[call["caller"]]
        assert (call["status"], call["reason"]) == (want["status"], want["reason"]), (call["caller"], cuts)
    assert replay.lost, "no event fell into an outage: the test proved nothing"
    await _until(lambda: hub.telephony.connected()["office"], 5)
    assert len(hub.fake.logged_in_sessions) == 1


async def _operator_token(hub: Hub, extension: str) -> dict[str, str]:
    async with hub.context.transaction() as session:
        users = UserDirectory(session)
        return bearer(await users.create_token(await users.by_username(f"op{extension}")))


async def test_click_to_call_rings_the_operator_then_dials_the_client(hub: Hub) -> None:
    async with hub.context.transaction() as session:
        client = await ClientBook(session, hub.context.rules).create(
            ClientIn(name="Лютик", phones=[{"number": "8 (495) 765-43-21"}]), SYSTEM
        )
    hub.fake.originate_trace = "outbound_click2call"
    resp = await hub.http.post(
        "/api/calls/originate", json={"client_id": client.id}, headers=await _operator_token(hub, "101")
    )
    assert resp.status == 200, await resp.text()
    placed = await resp.json()
    assert (placed["success"], placed["reason"], placed["number"]) == (True, "answered", "+74957654321")
    [action] = hub.fake.actions_named("Originate")
    assert (action.get("Channel"), action.get("Exten"), action.get("Context"), action.get("Async")) == (
        "Local/101@agents/n",
        "74957654321",
        "from-internal",
        "true",
    )
    assert f"HUB_ORIGINATE_ID={placed['originate_id']}" in action.get_all("Variable")
    [call] = await hub.wait_for_calls(1, timeout=15)
    assert (call["direction"], call["operator"], call["callee"], call["status"]) == (
        "outbound",
        "101",
        "+74957654321",
        "answered",
    )
    assert call["client_id"] == client.id


async def test_click_to_call_while_the_pbx_is_away_is_refused_and_never_sent_later(hub: Hub) -> None:
    hub.fake.cut(down_for=1.0)
    await _until(lambda: not hub.telephony.connected()["office"], 5)
    resp = await hub.http.post(
        "/api/calls/originate", json={"number": "+7 495 765-43-21"}, headers=await _operator_token(hub, "101")
    )
    assert resp.status == 503 and (await resp.json())["error"] == "pbx_unreachable"
    await _until(lambda: hub.telephony.connected()["office"], 10)
    await asyncio.sleep(0.3)
    assert hub.fake.actions_named("Originate") == []


async def test_queue_set_to_pop_on_answer_pops_only_the_operator_who_answered(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        FakeAmi(speed=50) as fake,
        running_hub(
            database_url, tmp_path / "data", {"office": fake}, screen_pop={"queues": {"support": "answer"}}
        ) as hub,
    ):
        await fake.play("inbound_queue_answered").wait()
        await hub.wait_for_calls(1, timeout=10)
        assert hub.operators["102"].frames == []  # rang, but this queue pops on answer only
        [pop] = hub.operators["101"].pops()
        assert pop["moment"] == "answer" and pop["client"]["name"] == "Ромашка"
        assert hub.operators["101"].withdrawals()[-1]["reason"] == "ended"


async def test_two_pbxes_are_followed_at_once_and_logged_apart(database_url: str, tmp_path: Path) -> None:
    async with (
        FakeAmi(speed=50) as moscow,
        FakeAmi(speed=50) as spb,
        running_hub(database_url, tmp_path / "data", {"moscow": moscow, "spb": spb}) as hub,
    ):
        await asyncio.gather(moscow.play("inbound_queue_answered").wait(), spb.play("inbound_direct_busy").wait())
        calls = await hub.wait_for_calls(2, timeout=10)
        assert sorted((c["pbx"], c["status"], c["reason"]) for c in calls) == [
            ("moscow", "answered", None),
            ("spb", "missed", "busy"),
        ]
