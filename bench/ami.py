"""How many AMI events per second does the hub carry, and how soon does an operator see the pop?

Every event Asterisk sends crosses the same path: the connector cuts it off the socket, the call
tracker updates its call, and what the tracker decides goes to the database (the call log, the
client lookup behind each pop) and to the operators' WebSockets.  The targets:

- end to end, at least 5,000 events/s on SQLite, and at least 30% of the rate at which
  panoramisk alone turns the same bytes into messages (measured in this run: the cheapest
  parse of these frames this machine does, so the ratio says what the rest of the hub costs);
- a pop on the operator's screen within 20 ms (p99) of the event that rang their phone, with
  200 calls in progress at once.

The hub is the real one, assembled as ``hub run`` assembles it: migrations on a fresh database,
``PopHub``, ``Telephony`` with the real ``AmiConnector``, the aiohttp app on a TCP port of
127.0.0.1, logs formatted at INFO (written to /dev/null).  What is outside the hub runs in a
child process, so that it does not take the hub's CPU: the fake Asterisk (``tests.fake_ami``,
replaying the shared traces renumbered, so one trace stands for many concurrent calls) and one
WebSocket client per operator extension.  The latency is measured there on one clock: from the
moment the fake wrote the event that made a phone ring (``PlayedEvent.at``, the loop's monotonic
time) to the moment the pop frame reached that operator's socket.  Which event rang the phone is
not guessed: each replay's events are fed afterwards to a fresh ``CallTracker``, and the event
that made it say ``Ringing`` for that call and extension is the one.

    .venv/bin/python -m bench.ami                       # SQLite, 1000 calls for throughput
    .venv/bin/python -m bench.ami --backend both --calls 3000
    .venv/bin/python -m bench.ami --quick               # a smoke run of about half a minute

The renumbered replays keep the traces' phone numbers (two dozen callers), so a cache keyed on the
caller's number would look better here than with real traffic; a cache keyed on the call would not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import io
import itertools
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository's packages (tests, bench) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import WSMsgType, web
from panoramisk.ami_protocol import AMIProtocol
from sqlalchemy import func, select

from bench.child import ChildProcess
from bench.hub_logs import configure_logs
from bench.lookup import postgresql_database, sqlite_database
from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from connectors.ami.frames import Frame, FrameReader
from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Call, Role
from crm_core.telephony.events import PbxEvent, Ringing
from crm_core.telephony.tracker import CallTracker
from crm_core.users import NewUser, UserDirectory
from hub.config import Settings
from hub.context import HubContext
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.app import make_app
from tests.ami_traces import expected, trace_names
from tests.fake_ami import BANNER, FakeAmi, pbx_events

TARGET_EVENTS_PER_SECOND = 5_000.0
TARGET_SHARE_OF_BARE = 0.30
TARGET_POP_P99_MS = 20.0
JUDGED_CONCURRENCY = 200  # the pop target is stated for this many calls at once
THROUGHPUT_TARGET = (
    f">= {TARGET_EVENTS_PER_SECOND:,.0f} events/s and >= {TARGET_SHARE_OF_BARE:.0%} of panoramisk's bare parse rate"
)
POP_TARGET = f"p99 < {TARGET_POP_P99_MS:g} ms with {JUDGED_CONCURRENCY} concurrent calls"

PBX = "office"
EXTENSIONS = ("101", "102", "103", "104", "201", "202")
READ_CHUNK = 256 * 1024  # what asyncio's selector transport reads per recv; the hub gets such chunks
FLAT_OUT = 1_000_000.0  # replay speed for throughput: a 17 s trace goes out in 17 us
# Single-call traces for the latency runs (so N replays are N calls); the throughput mix is every trace.
# inbound_direct_busy is left out here: it rings no phone and is over in a moment, so it would
# neither pop nor count as a call in progress.
LATENCY_TRACES = (
    "inbound_queue_answered",
    "inbound_queue_missed",
    "inbound_direct_answered",
    "inbound_anonymous",
    "inbound_blind_transfer",
    "inbound_direct_noanswer",
    "internal_call",
    "outbound_click2call",
)
UNKNOWN_EVERY = 4  # every fourth caller's number is on no card: those pops say "unknown number"


# -- the traffic ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """Replays to start at once: (trace, start delay in seconds), and what they amount to."""

    replays: tuple[tuple[str, float], ...]
    calls: int
    events: int


@functools.cache
def calls_in(trace: str) -> int:
    return len(expected(trace))


def make_plan(calls: int, traces: Sequence[str], ramp: float, rng: random.Random) -> Plan:
    """Traces in turn until ``calls`` calls; each starts at a random moment within ``ramp`` s."""
    replays: list[tuple[str, float]] = []
    total = events = 0
    for name in itertools.cycle(traces):
        if total >= calls:
            break
        replays.append((name, rng.uniform(0.0, ramp) if ramp > 0 else 0.0))
        total += calls_in(name)
        events += len(pbx_events(name))
    return Plan(tuple(replays), total, events)


def peak_in_progress(plan: Plan, speed: float) -> int:
    """The most calls in progress at one moment: each replay runs from its start for its trace's length."""
    edges = []
    for name, start in plan.replays:
        length = pbx_events(name)[-1].t / speed
        edges += [(start, calls_in(name)), (start + length, -calls_in(name))]
    peak = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


def wire_stream(traces: Sequence[str], repeats: int) -> tuple[list[bytes], int]:
    """The banner and then the traces' PBX events as bytes, ``repeats`` times, in socket-sized chunks."""
    one_pass = b"".join(f.raw.encode() for name in traces for f in pbx_events(name))
    frames = sum(len(pbx_events(name)) for name in traces) * repeats
    data = BANNER.encode() + one_pass * repeats
    return [data[i : i + READ_CHUNK] for i in range(0, len(data), READ_CHUNK)], frames


# -- parsing and tracking alone, for reference ------------------------------------------------


class _CountingAmiProtocol(AMIProtocol):
    """panoramisk's own data path (decode, split on blank lines, ``Message.from_line``) with the
    dispatch of each message replaced by a count: the bare parse, nothing after it."""

    def __init__(self) -> None:
        self.messages = 0

    def handle_message(self, message: Any) -> None:
        self.messages += 1


@dataclass(frozen=True, slots=True)
class Rate:
    label: str
    items: int
    seconds: list[float]  # one per repetition

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        return self.items / self.median_seconds


def _panoramisk_pass(chunks: Sequence[bytes]) -> int:
    protocol = _CountingAmiProtocol()
    protocol.connection_made(None)  # type: ignore[arg-type]  # no transport: nothing is sent
    for chunk in chunks:
        protocol.data_received(chunk)
    return protocol.messages


def _hub_parse_pass(chunks: Sequence[bytes]) -> int:
    """What the connector does per event before the tracker: FrameReader -> Frame.fields -> PbxEvent."""
    reader = FrameReader(64 * 1024)
    received_at = datetime.now(UTC)
    count = 0
    for chunk in chunks:
        for item in reader.feed(chunk):
            if isinstance(item, Frame):
                PbxEvent(pbx=PBX, name=item.event, fields=item.fields, received_at=received_at)
                count += 1
    return count


def _tracker_pass(events: Sequence[PbxEvent], repeats: int) -> int:
    """A fresh tracker per pass, so every pass sees new calls (the traces' own Linkedids)."""
    for _ in range(repeats):
        tracker = CallTracker(region="RU")
        for event in events:
            tracker.feed(event)
    return len(events) * repeats


def measure_reference_rates(traces: Sequence[str], repeats: int, rounds: int) -> list[Rate]:
    chunks, frames = wire_stream(traces, repeats)
    received_at = datetime.now(UTC)
    one_pass = FrameReader(64 * 1024).feed(b"".join(wire_stream(traces, 1)[0]))
    events = [
        PbxEvent(pbx=PBX, name=f.event, fields=f.fields, received_at=received_at)
        for f in one_pass
        if isinstance(f, Frame)
    ]
    passes = {
        "panoramisk bare parse": lambda: _panoramisk_pass(chunks),
        "hub parse (FrameReader -> PbxEvent)": lambda: _hub_parse_pass(chunks),
        "tracker alone (CallTracker.feed)": lambda: _tracker_pass(events, repeats),
    }
    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):  # interleaved, so a noisy moment hurts every one alike
        for label, run in passes.items():
            started = time.perf_counter()
            count = run()
            timings[label].append(time.perf_counter() - started)
            if count != frames:
                raise RuntimeError(f"{label}: {count} items, {frames} frames expected")
    return [Rate(label, frames, timings[label]) for label in passes]


# -- the outside world: a child process with the fake PBX and the operators' browsers ---------


class Outside:
    """Runs in the child: answers the parent's commands one at a time over a pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fake: FakeAmi | None = None
        self.http: aiohttp.ClientSession | None = None
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.frames: list[tuple[float, str, str]] = []  # (loop time, extension, text)
        self._cpu_started = 0.0
        self._wall_started = 0.0

    async def serve(self) -> None:
        async with FakeAmi(speed=1.0) as fake:
            self.fake = fake
            self.conn.send(("ready", fake.port))
            try:
                while True:
                    command, *args = await asyncio.to_thread(self.conn.recv)
                    if command == "stop":
                        break
                    try:
                        reply = await getattr(self, f"do_{command}")(*args)
                    except Exception as exc:  # report it to the parent, which prints it
                        reply = ("error", f"{command}: {type(exc).__name__}: {exc}")
                    self.conn.send(reply)
            finally:
                for reader in self.readers:
                    reader.cancel()
                for ws in self.sockets:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), 2)
                if self.http is not None:
                    await self.http.close()
        self.conn.send(("stopped",))

    async def do_connect(self, url: str, tokens: dict[str, str]) -> tuple[str, int]:
        self.http = aiohttp.ClientSession()
        for extension, token in tokens.items():
            ws = await self.http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
            hello = await ws.receive_json(timeout=10)
            if hello.get("type") != "hello":
                raise RuntimeError(f"{extension}: first frame {hello!r}, not hello")
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(extension, ws)))
        return ("connected", len(self.sockets))

    async def _read(self, extension: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.frames.append((loop.time(), extension, msg.data))

    async def do_play(self, replays: Sequence[tuple[str, float]], speed: float, timeout: float) -> dict[str, Any]:
        assert self.fake is not None
        self.frames.clear()
        self.fake.replays.clear()
        self._cpu_started, self._wall_started = time.process_time(), time.monotonic()
        started = [self.fake.play(name, speed=speed, renumber=True, delay=delay) for name, delay in replays]
        await asyncio.wait_for(asyncio.gather(*(r.finished.wait() for r in started)), timeout)
        played = [e for r in started for e in r.played]
        return {
            "sent": sum(e.delivered for e in played),
            "lost": sum(not e.delivered for e in played),
            "first_at": min((e.at for e in played), default=0.0),
            "last_at": max((e.at for e in played), default=0.0),
        }

    async def do_collect(self, latencies: bool) -> dict[str, Any]:
        """Pops and withdrawals the operators got since the last play; the latency of each pop."""
        assert self.fake is not None
        cpu = (time.process_time() - self._cpu_started) / max(1e-9, time.monotonic() - self._wall_started)
        pops: dict[tuple[str, str], list[float]] = defaultdict(list)
        kinds: Counter[str] = Counter()
        for at, extension, text in self.frames:
            message = _json_loads(text)
            kinds[message.get("type", "?")] += 1
            if message.get("type") == "pop":
                pops[(message["call_id"], extension)].append(at)
        result: dict[str, Any] = {"pops": kinds["pop"], "withdrawals": kinds["withdraw"], "cpu": cpu}
        if latencies:
            rang = self._rang()
            samples: list[float] = []
            unmatched = 0
            for key in pops.keys() | rang.keys():
                arrived, rung = sorted(pops.get(key, [])), sorted(rang.get(key, []))
                unmatched += abs(len(arrived) - len(rung))
                samples += [a - r for a, r in zip(arrived, rung, strict=False)]
            result.update(latencies=samples, unmatched=unmatched, rings=sum(len(v) for v in rang.values()))
        self.frames.clear()
        self.fake.replays.clear()
        return result

    def _rang(self) -> dict[tuple[str, str], list[float]]:
        """(call id, extension) -> when the fake sent each event that made that phone ring."""
        assert self.fake is not None
        rang: dict[tuple[str, str], list[float]] = defaultdict(list)
        now = datetime.now(UTC)
        for replay in self.fake.replays:
            tracker = CallTracker(region="RU")
            for played in replay.sent:
                event = PbxEvent(pbx=PBX, name=played.name, fields=played.headers, received_at=now)
                for output in tracker.feed(event):
                    if isinstance(output, Ringing):
                        rang[(str(output.key), output.extension)].append(played.at)
        return rang


def _json_loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _outside_process(conn: Connection) -> None:
    asyncio.run(Outside(conn).serve())


class OutsideWorld(ChildProcess):
    """The parent's handle on the child process."""

    def __init__(self) -> None:
        super().__init__(_outside_process, "the outside process")
        self.port = 0

    async def start(self) -> None:
        _, self.port = await super().start()


# -- the hub ------------------------------------------------------------------------------------


@dataclass
class Hub:
    context: HubContext
    telephony: Telephony
    ws_url: str
    tokens: dict[str, str]

    @property
    def logged(self) -> int:
        return sum(self.telephony.calls_logged.values())

    async def calls_in_log(self) -> int:
        async with self.context.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Call)) or 0)


async def _seed(context: HubContext) -> dict[str, str]:
    """Operators with extensions (and tokens), and cards for most of the traces' callers."""
    numbers = sorted(
        {c[k] for name in trace_names() for c in expected(name) for k in ("caller", "callee") if c.get(k)}
        - set(EXTENSIONS)
    )
    tokens: dict[str, str] = {}
    async with context.transaction() as session:
        users = UserDirectory(session)
        operators = []
        for ext in EXTENSIONS:
            user = await users.create(NewUser(f"op{ext}", Role.operator, extension=ext, full_name=f"Оператор {ext}"))
            operators.append(user)
            tokens[ext] = await users.create_token(user)
        book = ClientBook(session, context.rules)
        for i, number in enumerate(numbers):
            if i % UNKNOWN_EVERY == UNKNOWN_EVERY - 1:
                continue
            phones = [{"number": number}]
            await book.create(
                ClientIn(
                    name=f"ООО «Клиент {i}»",
                    tags=["bench", "vip"] if i % 3 == 0 else ["bench"],
                    owner_id=operators[i % len(operators)].id,
                    phones=phones if i % 2 == 0 else [],
                    contacts=[{"first_name": "Иван", "last_name": f"Петров {i}", "phones": phones}] if i % 2 else [],
                ),
                SYSTEM,
            )
    return tokens


@contextlib.asynccontextmanager
async def running_hub(url: str, pbx_port: int, data_dir: Path) -> AsyncIterator[Hub]:
    pbx = {"name": PBX, "host": "127.0.0.1", "port": pbx_port, "username": "hub", "secret": "hubsecret"}
    context = await HubContext.open(Settings(database_url=url, data_dir=data_dir, pbx=[pbx]), upgrade=True)
    runner: web.AppRunner | None = None
    telephony: Telephony | None = None
    try:
        tokens = await _seed(context)
        pops = PopHub()
        telephony = Telephony(context, pops)
        runner = web.AppRunner(make_app(context, pops, telephony), access_log=None, shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        await telephony.start()
        deadline = time.monotonic() + 15
        while not telephony.connected()[PBX]:
            if time.monotonic() > deadline:
                raise RuntimeError("the hub did not log in to the fake PBX within 15 s")
            await asyncio.sleep(0.01)
        yield Hub(context, telephony, f"http://{host}:{port}/ws", tokens)
    finally:
        if telephony is not None:
            await telephony.stop()
        if runner is not None:
            await runner.cleanup()
        await context.close()


# -- the runs -----------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # "throughput" or "latency"
    backend: str
    plan: Plan
    speed: float
    ramp: float
    events: int = 0  # handed to Telephony.handle_event from the first event sent to the last call logged
    sent: int = 0
    lost: int = 0
    seconds: float = 0.0
    logged: int = 0
    hub_cpu: float = 0.0  # process CPU time / wall time (the aiosqlite thread included)
    outside_cpu: float = 0.0
    pops: int = 0
    withdrawals: int = 0
    rings: int = 0
    unmatched: int = 0
    latencies: list[float] = field(default_factory=list)
    timed_out: bool = False
    load1: float = 0.0
    log_rows_after: int = 0  # rows in the call log once every run on this database is done

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def play_and_wait(
    hub: Hub, outside: OutsideWorld, run: Run, timeout: float, profile: cProfile.Profile | None = None
) -> Run:
    """Start the plan's replays in the child; wait until the hub has logged every call."""
    loop = asyncio.get_running_loop()
    events_before, logged_before = hub.telephony.events_seen, hub.logged
    cpu_before, wall_before = time.process_time(), loop.time()
    if profile is not None:
        profile.enable()
    outside.send("play", run.plan.replays, run.speed, timeout)
    deadline = loop.time() + timeout
    finished_at = None
    while finished_at is None:
        if hub.logged - logged_before >= run.plan.calls:
            finished_at = loop.time()
        elif loop.time() > deadline:
            break
        else:
            await asyncio.sleep(0.001)
    if profile is not None:
        profile.disable()
    run.events = hub.telephony.events_seen - events_before
    run.hub_cpu = (time.process_time() - cpu_before) / max(1e-9, loop.time() - wall_before)
    run.load1 = os.getloadavg()[0]
    run.timed_out = finished_at is None
    played = await outside.receive(timeout + 30)
    run.sent, run.lost = played["sent"], played["lost"]
    # One clock: loop.time() is CLOCK_MONOTONIC in both processes, so the child's send time of
    # the first event and this process's moment of the last call logged can be subtracted.
    run.seconds = (finished_at if finished_at is not None else loop.time()) - played["first_at"]
    # The last withdrawals follow the last log write; let them (and any stragglers) arrive.
    await asyncio.sleep(1.0 if run.timed_out else 0.3)
    collected = await outside.ask("collect", run.kind == "latency", timeout=120)
    run.pops, run.withdrawals, run.outside_cpu = collected["pops"], collected["withdrawals"], collected["cpu"]
    run.latencies = collected.get("latencies", [])
    run.unmatched, run.rings = collected.get("unmatched", 0), collected.get("rings", 0)
    run.logged = hub.logged - logged_before
    return run


async def run_backend(backend: str, url: str, args: argparse.Namespace, rng: random.Random, runs: list[Run]) -> None:
    """Every run on one database, appended to ``runs`` as each finishes (so a failure keeps the others)."""
    outside = OutsideWorld()
    await outside.start()
    mine: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="hub_bench_ami_") as data_dir:
            async with running_hub(url, outside.port, Path(data_dir)) as hub:
                await outside.ask("connect", hub.ws_url, hub.tokens, timeout=60)
                # Warm-up: every trace once, so statements are compiled and caches filled.
                warm_up = make_plan(sum(map(calls_in, trace_names())), trace_names(), 0.0, rng)
                await play_and_wait(hub, outside, Run("warm-up", backend, warm_up, 50.0, 0.0), 120)
                longest = max(pbx_events(n)[-1].t - pbx_events(n)[0].t for n in LATENCY_TRACES)
                for concurrent in args.concurrency:
                    plan = make_plan(concurrent, LATENCY_TRACES, args.ramp, rng)
                    run = Run("latency", backend, plan, args.speed, args.ramp)
                    timeout = longest / args.speed + args.ramp + 60 + concurrent * 0.5
                    mine.append(await play_and_wait(hub, outside, run, timeout))
                    runs.append(mine[-1])
                    print(f"{backend}: {concurrent} concurrent calls measured", flush=True)
                plan = make_plan(args.calls, trace_names(), 0.0, rng)
                run = Run("throughput", backend, plan, FLAT_OUT, 0.0)
                profile = cProfile.Profile() if args.profile else None
                mine.append(await play_and_wait(hub, outside, run, args.timeout, profile))
                runs.append(mine[-1])
                print(f"{backend}: throughput measured ({plan.calls} calls)", flush=True)
                in_log = await hub.calls_in_log()
                for r in mine:
                    r.log_rows_after = in_log
                if profile is not None:
                    profile.dump_stats(f"{args.profile}.{backend}")
    finally:
        await outside.stop()


# -- the report -----------------------------------------------------------------------------------


def percentile_ms(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1] * 1000


def pop_ms(run: Run, q: float) -> float:
    """A latency run's percentile of pop latency in ms; NaN if no pop could be timed."""
    return percentile_ms(run.latencies, q) if run.latencies else float("nan")


def share_of_bare(per_second: float, bare: Rate) -> float:
    return per_second / bare.per_second


def run_label(run: Run) -> str:
    if run.kind == "throughput":
        return "end to end, AMI socket -> DB + pops"
    return f"pop latency, {run.plan.calls} concurrent calls"


def throughput_misses(run: Run, bare: Rate) -> list[str]:
    misses = []
    if run.events_per_second < TARGET_EVENTS_PER_SECOND:
        misses.append(f"{run.events_per_second:,.0f} events/s is under {TARGET_EVENTS_PER_SECOND:,.0f}")
    share = share_of_bare(run.events_per_second, bare)
    if share < TARGET_SHARE_OF_BARE:
        misses.append(f"{share:.1%} of panoramisk's bare parse rate is under {TARGET_SHARE_OF_BARE:.0%}")
    return misses + _integrity_misses(run)


def latency_misses(run: Run) -> list[str]:
    misses = []
    if not run.latencies:
        misses.append("no pop could be timed")
    elif run.plan.calls >= JUDGED_CONCURRENCY and pop_ms(run, 99) >= TARGET_POP_P99_MS:
        misses.append(f"pop p99 {pop_ms(run, 99):.1f} ms is not under {TARGET_POP_P99_MS:g} ms")
    if run.unmatched:
        misses.append(f"{run.unmatched} pops and rings did not pair up (a pop missing, or one too many)")
    if any(x < 0 for x in run.latencies):
        misses.append(f"{sum(x < 0 for x in run.latencies)} pops arrived before their ring was sent")
    return misses + _integrity_misses(run)


def _integrity_misses(run: Run) -> list[str]:
    misses = []
    if run.timed_out:
        misses.append(f"timed out: {run.logged} of {run.plan.calls} calls logged")
    elif run.logged != run.plan.calls:
        misses.append(f"{run.logged} calls logged, {run.plan.calls} expected")
    if run.lost:
        misses.append(f"{run.lost} events were sent while the hub was not logged in")
    elif run.sent != run.plan.events:
        misses.append(f"the fake sent {run.sent} events, the plan has {run.plan.events}")
    if run.kind == "throughput" and run.events < run.sent:
        misses.append(f"{run.events} events reached Telephony, {run.sent} were sent")
    return misses


def verdict(run: Run, bare: Rate) -> tuple[str, list[str]]:
    """PASS or FAIL against the targets; "info" for a run no target speaks of (and nothing went wrong)."""
    misses = throughput_misses(run, bare) if run.kind == "throughput" else latency_misses(run)
    judged = run.kind == "throughput" or run.plan.calls >= JUDGED_CONCURRENCY
    return ("FAIL" if misses else "PASS" if judged else "info"), misses


def summary_rows(rates: Sequence[Rate], runs: Sequence[Run]) -> list[Row]:
    """The reference parse rates, the end-to-end rate against panoramisk's, each latency run's pop p99."""
    bare = rates[0]
    rows = [Row("ami", rate.label, "-", rate.per_second, "events/s") for rate in rates]
    for run in runs:
        result = verdict(run, bare)[0]
        met = None if result == "info" else result == "PASS"
        if run.kind == "throughput":
            rows.append(Row("ami", run_label(run), run.backend, run.events_per_second, "events/s",
                            bare.per_second, bare.label, THROUGHPUT_TARGET, met))  # fmt: skip
        else:
            target = POP_TARGET if met is not None else ""
            rows.append(Row("ami", run_label(run), run.backend, pop_ms(run, 99), "ms p99", None, "", target, met))
    return rows


def print_report(rates: Sequence[Rate], runs: Sequence[Run], args: argparse.Namespace, warnings: Counter[str]) -> None:
    bare = rates[0]
    print(
        f"\ncores: {os.cpu_count()}   python {sys.version.split()[0]}   "
        f"parse rates: median of {args.rounds} passes over {bare.items} frames fed in {READ_CHUNK // 1024} KiB reads"
    )
    print("the fake PBX and the 6 operators' WebSocket clients run in a child process; the hub alone in this one")
    header = (
        f"{'what':<38}{'backend':<11}{'calls':>6}{'events':>8}{'seconds':>9}{'events/s':>10}{'of bare':>9}"
        f"{'pops':>6}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'hub cpu':>8}{'peer cpu':>9}{'load1':>6}  verdict"
    )
    print(header)
    print("-" * len(header))
    blank_latency = f"{'':>6}{'':>8}{'':>8}{'':>8}"
    for rate in rates:
        label = rate.label + (" (reference)" if rate is bare else "")
        print(
            f"{label:<38}{'-':<11}{'-':>6}{rate.items:>8}{rate.median_seconds:>9.3f}{rate.per_second:>10,.0f}"
            f"{share_of_bare(rate.per_second, bare):>9.1%}{blank_latency}{'':>8}{'':>9}{'':>6}  -"
        )
    for run in runs:
        if run.kind == "throughput":
            figures = f"{run.events_per_second:>10,.0f}{share_of_bare(run.events_per_second, bare):>9.1%}"
            latency = f"{run.pops:>6}{'':>8}{'':>8}{'':>8}"
        else:
            figures = f"{'':>10}{'':>9}"
            latency = f"{run.pops:>6}" + "".join(f"{pop_ms(run, q):>8.1f}" for q in (50, 99, 100))
        print(
            f"{run_label(run):<38}{run.backend:<11}{run.plan.calls:>6}{run.events:>8}{run.seconds:>9.2f}{figures}{latency}"
            f"{run.hub_cpu:>8.0%}{run.outside_cpu:>9.0%}{run.load1:>6.1f}  {verdict(run, bare)[0]}"
        )
    print(
        f"\nlatency runs: calls of {len(LATENCY_TRACES)} single-call traces in turn, renumbered, each started at a "
        f"random moment within {args.ramp:g} s and played at speed {args.speed:g}, so all are in progress at once; "
        "a pop is timed from the fake's write of the event that rang that phone to the frame's arrival at that "
        "operator's socket"
    )
    print(
        f"throughput run: every trace in turn, renumbered, all started at once at speed {FLAT_OUT:g} (the fake writes "
        "as fast as it can); events/s = events handed to Telephony.handle_event / (first event sent -> last call "
        "logged)"
    )
    print(
        "hub cpu, peer cpu: each process's CPU time over the run's wall time (100% = one core); load1 as the run "
        f"ended (above {os.cpu_count()}: the machine was shared, and the figures say so)"
    )
    if args.quick:
        print(f"--quick: a smoke run; replays at {args.speed:g}x compress the latency runs, whose figures are harsher")
    print(f"\ntargets: end to end {THROUGHPUT_TARGET} (applied to every backend); pop {POP_TARGET}")
    for run in runs:
        result, misses = verdict(run, bare)
        what = "end to end" if run.kind == "throughput" else f"pops at {run.plan.calls} concurrent calls"
        extra = (
            f"{run.sent} events sent, {run.logged} calls logged ({run.log_rows_after} rows in the log after all runs), "
            f"{run.pops} pops, {run.withdrawals} withdrawals"
        )
        if run.kind == "latency":
            extra += f", {run.rings} rings timed, {peak_in_progress(run.plan, run.speed)} calls in progress at the peak"
        print(f"{run.backend}, {what}: {result}; {extra}")
        for miss in misses:
            print(f"  - {miss}")
    if warnings:
        print(
            '\nwarnings the hub logged during the runs ("reading paused" is the connector\'s flow control, '
            "expected while the throughput run's backlog exceeds its high-water mark):"
        )
        for text, count in warnings.most_common():
            print(f"  {count:>6} x {text}")


def print_profile(path: str, backend: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(f"{path}.{backend}", stream=out)
    stats.sort_stats("tottime").print_stats(30)
    print(f"\nprofile of the throughput run on {backend} (this process's main thread, by own time):")
    print(out.getvalue())


# -- the command --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--calls", type=int, default=1000, help="calls in the throughput run")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[20, JUDGED_CONCURRENCY],
        help="concurrent calls of each latency run",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed of the latency runs")
    parser.add_argument(
        "--ramp",
        type=float,
        default=5.0,
        help="latency runs: each call starts at a random moment within this many seconds (the shortest "
        "trace lasts 7 s, so with 5 s every call is still in progress when the last one starts)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="passes of each reference parse")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the throughput run may take")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls, fast replays")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the throughput run into PATH.<backend>")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped",
    )
    parser.add_argument("--seed", type=int, default=1)
    add_summary_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.concurrency, args.speed, args.rounds, args.timeout = 200, [20, 200], 4.0, 3, 60.0
    if args.calls < 1 or args.speed <= 0 or args.ramp < 0 or min(args.concurrency) < 1:
        parser.error("--calls and --concurrency must be positive, --speed above 0, --ramp not negative")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    tally = configure_logs()
    repeats = max(1, 60_000 // sum(len(pbx_events(n)) for n in trace_names()))
    rates = measure_reference_rates(trace_names(), repeats, args.rounds)
    print(f"reference parse: {rates[0].per_second:,.0f} frames/s (panoramisk)", flush=True)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    runs: list[Run] = []
    failures: list[str] = []
    for backend in backends:
        try:
            database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
            async with database as url:
                await run_backend(backend, url, args, rng, runs)
        except Exception as exc:  # report what was measured, and why the rest was not
            failures.append(f"{backend}: FAIL, the runs stopped: {type(exc).__name__}: {exc}")
            print(failures[-1], flush=True)
    print_report(rates, runs, args, tally.seen)
    write_summary(args.summary, summary_rows(rates, runs))
    for failure in failures:
        print(failure)
    if args.profile:
        for backend in backends:
            if Path(f"{args.profile}.{backend}").exists():
                print_profile(args.profile, backend)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
