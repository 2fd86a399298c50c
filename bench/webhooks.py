"""How many webhook deliveries per second does the hub make, beside what the receiver itself takes?

Every event the hub publishes crosses the same path: ``crm_core.outbox.publish`` writes it in its
change's transaction, the dispatcher (``webhooks.dispatcher.Dispatcher``, as ``hub run`` starts
it) fans it out into a delivery per subscription, claims what is due, signs it and POSTs it a few
at a time, and records each outcome.  No target is set; the figure printed beside the hub's is:

- the receiver's own capacity, measured in the same run: a bare aiohttp ``ClientSession`` loop
  in this process POSTing the same-sized pre-built body with the same (validly signed) headers,
  at the dispatcher's concurrency, over a kept-alive connection like the dispatcher's, before
  and after the hub's figures; the better of the two passes is "bare", and the hub's
  deliveries/s are printed as a share of it, so the ratio says what the outbox, the database
  and the dispatcher's rounds cost on top of the HTTP itself.

The receiver is an aiohttp app answering 204 to every POST, in a child process (so that it does
not take the hub's CPU), on a free port of 127.0.0.1.  It notes each request's ``webhook-id`` and
arrival time (``time.time()``), counts duplicates, and checks the Standard Webhooks signature
(``webhooks.signing.verify``) and that the body's ``id`` is the ``webhook-id`` on every
50th request.

The hub is the real one: ``HubContext.open(Settings(...), upgrade=True)`` on a fresh database
(a SQLite file in a temporary directory, or a throw-away ``hub_bench_<random>`` PostgreSQL
database), one subscription to every event at the receiver's URL, logs formatted at INFO (as
``hub run`` logs each delivery; written to /dev/null).  The events are ``client.updated`` with a
card of about a kilobyte, 90% of them spread at random over 1000 client ids and every
10th with no client: the dispatcher keeps each client's events in order (a
delivery waits while an older one of its client is pending), so at most one event of a client goes
per round, and a run of one busy client's events would measure that rule instead.  Two figures:

- backlog: N events published into the outbox in transactions of 100 while no
  dispatcher runs, then a fresh ``Dispatcher(context, allow_private=True, concurrency=<the
  settings' default>)`` started; timed from ``start()`` to the commit of the round that recorded
  the N-th delivery delivered;
- live: a dispatcher already running (idle), then N/2 events (fewer if the rate would take more
  than 30 s, at least 100) published at a steady rate (by default half the backlog rate just
  measured, so that the dispatcher keeps up and the latency is the path's, not a queue's) in
  transactions of 10; each event's latency runs from its transaction's commit (``time.time()``
  in this process, right after the commit) to its arrival at the receiver (``time.time()`` in
  the child, reported back over a pipe: one clock).

The dispatcher is handed the hub's context behind a thin wrapper that times each of its
transactions (one ``fan_out`` + ``claim`` and one ``record`` per round), which splits a round into
fan-out and claim, sending, and recording; the wrapper adds one context manager per transaction.
Afterwards the receiver's ids are checked against the outbox: every event exactly once (delivery
is at least once: duplicates are counted and printed, not hidden), each client's events in order.

    .venv/bin/python -m bench.webhooks                        # SQLite, 5000 events per figure
    .venv/bin/python -m bench.webhooks --backend both --events 20000
    .venv/bin/python -m bench.webhooks --quick                # a smoke run of about 20 seconds
    .venv/bin/python -m bench.webhooks --profile /tmp/webhooks.prof   # cProfile the backlog figure

The hub and the receiver share this machine's cores, as they would on a small office server
sending to an integration next door; the table says how busy each was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository's packages (tests, bench) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench.child import ChildProcess
from bench.hub_logs import configure_logs
from bench.lookup import postgresql_database, sqlite_database
from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from crm_core.outbox import Event, OutboxEvent, publish
from crm_core.subscriptions import Due, Subscriptions, WebhookDelivery
from hub.config import Settings, WebhookSettings
from hub.context import HubContext
from webhooks.dispatcher import WAVES, Dispatcher, body_of
from webhooks.signing import headers, verify

CLIENTS = 1000  # client ids the events are spread over, at random
NO_CLIENT_EVERY = 10  # every tenth event concerns no client (no ordering constraint)
PUBLISH_BATCH = 100  # events per transaction, backlog figure
LIVE_BATCH = 10  # events per transaction, live figure
VERIFY_EVERY = 50  # the receiver checks the signature of one request in this many
WARM_UP_EVENTS = 200
LIVE_SECONDS = 30  # the live figure's default length, at the offered rate
HOOK_PATH = "/hook"


# -- the events ---------------------------------------------------------------------------------


def card_payload(seq: int, client_id: int | None) -> dict[str, Any]:
    """A ``client.updated`` payload shaped like ``client_to_dict`` plus ``changed``: about 1 KiB."""
    number = client_id or 0
    return {
        "id": number,
        "kind": "company",
        "name": f"ООО «Ромашка {number}»",
        "full_name": f"Общество с ограниченной ответственностью «Ромашка {number}»",
        "inn": "7701234567",
        "kpp": "770101001",
        "ogrn": "1027700132195",
        "addresses": ["г. Москва, ул. Тверская, д. 7, оф. 12"],
        "website": "https://romashka.example",
        "status": "active",
        "owner_id": 3,
        "tags": ["bench", "vip"],
        "custom_fields": {"segment": "B2B", "region": "Москва"},
        "phones": [{"id": 1, "number": "8 (495) 123-45-67", "e164": "+74951234567", "extension": None, "label": ""}],
        "emails": [{"id": 1, "address": "office@romashka.example", "label": "work"}],
        "contacts": [
            {
                "id": 11,
                "first_name": "Иван",
                "middle_name": "Петрович",
                "last_name": "Сидоров",
                "position": "Главный бухгалтер",
                "note": "",
                "phones": [{"id": 2, "number": "+7 916 555-12-34", "e164": "+79165551234", "extension": None}],
                "emails": [{"id": 2, "address": "ivan@romashka.example", "label": ""}],
            }
        ],
        "changed": {"status": ["lead", "active"]},
        "bench_seq": seq,
    }


def client_for(seq: int, rng: random.Random) -> int | None:
    return None if seq % NO_CLIENT_EVERY == NO_CLIENT_EVERY - 1 else rng.randrange(1, CLIENTS + 1)


def sample_body(secret: str) -> bytes:
    """The body the dispatcher would send for one of these events (same size, give or take digits)."""
    due = Due(0, "", secret, f"evt_{uuid.uuid4().hex}", "client.updated", datetime.now(UTC), card_payload(0, 500), 0)
    return body_of(due)


# -- the receiver: a child process ----------------------------------------------------------------


class Receiver:
    """Runs in the child: the aiohttp receiver, and the parent's commands one at a time over a pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.arrivals: list[tuple[str, float]] = []  # (webhook-id, time.time()) in arrival order
        self.secret = ""
        self.check_body_id = True
        self.checked = self.good = 0
        self.bad: list[str] = []
        self.statuses: Counter[int] = Counter()
        self._cpu_started = 0.0
        self._wall_started = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        message_id = request.headers.get("webhook-id", "")
        self.arrivals.append((message_id, arrived))
        if self.secret and len(self.arrivals) % VERIFY_EVERY == 1:
            self._check(request, message_id, body)
        return web.Response(status=204)

    def _check(self, request: web.Request, message_id: str, body: bytes) -> None:
        self.checked += 1
        try:
            ok = verify(
                self.secret,
                message_id,
                int(request.headers["webhook-timestamp"]),
                body,
                request.headers["webhook-signature"],
                int(time.time()),
            )
            same_id = not self.check_body_id or json.loads(body).get("id") == message_id
        except (KeyError, ValueError) as exc:
            ok, same_id = False, False
            self.bad.append(f"{message_id}: {type(exc).__name__}: {exc}")
        if ok and same_id:
            self.good += 1
        elif len(self.bad) < 5:
            self.bad.append(f"{message_id}: signature {'ok' if ok else 'BAD'}, body id {'ok' if same_id else 'BAD'}")

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_post(HOOK_PATH, self.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.conn.send(("ready", runner.addresses[0][1]))
            while True:
                command, *args = await asyncio.to_thread(self.conn.recv)
                if command == "stop":
                    break
                try:
                    reply = getattr(self, f"do_{command}")(*args)
                except Exception as exc:  # report it to the parent, which raises it
                    reply = ("error", f"{command}: {type(exc).__name__}: {exc}")
                self.conn.send(reply)
        finally:
            await runner.cleanup()
        self.conn.send(("stopped",))

    def do_reset(self, secret: str, check_body_id: bool = True) -> tuple[str]:
        """Forget what came so far; check signatures with ``secret`` from now on (and that the body's
        ``id`` is the ``webhook-id``, unless every request carries the same body); start the CPU clock."""
        self.arrivals = []
        self.secret, self.check_body_id, self.checked, self.good, self.bad = secret, check_body_id, 0, 0, []
        self._cpu_started, self._wall_started = time.process_time(), time.monotonic()
        return ("reset",)

    def do_collect(self, with_arrivals: bool) -> dict[str, Any]:
        cpu = (time.process_time() - self._cpu_started) / max(1e-9, time.monotonic() - self._wall_started)
        counts = Counter(message_id for message_id, _ in self.arrivals)
        result: dict[str, Any] = {
            "requests": len(self.arrivals),
            "distinct": len(counts),
            "checked": self.checked,
            "good": self.good,
            "bad": self.bad,
            "cpu": cpu,
        }
        if with_arrivals:
            result["arrivals"] = self.arrivals
        return result


def _receiver_process(conn: Connection) -> None:
    asyncio.run(Receiver(conn).serve())


class ReceiverProcess(ChildProcess):
    """The parent's handle on the child."""

    def __init__(self) -> None:
        super().__init__(_receiver_process, "the receiver")
        self.url = ""

    async def start(self) -> None:
        _, port = await super().start()
        self.url = f"http://127.0.0.1:{port}{HOOK_PATH}"


# -- what a figure holds --------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    backend: str
    events: int
    seconds: float = 0.0
    bench_cpu: float = 0.0  # this process's CPU time over the figure's wall time (threads included)
    receiver_cpu: float = 0.0
    load1: float = 0.0
    timed_out: bool = False
    received: dict[str, Any] = field(default_factory=dict)  # the receiver's collect answer, arrivals dropped
    latencies: list[float] = field(default_factory=list)  # live figure: commit -> arrival, seconds
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts_for_ratio: bool = True

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


# -- the receiver's own capacity --------------------------------------------------------------------


async def bare_pass(receiver: ReceiverProcess, label: str, n: int, concurrency: int, timeout: float) -> Figure:
    """N POSTs of the pre-built body with pre-signed headers, ``concurrency`` at a time, as the
    dispatcher posts them (same connector limit, timeout, no redirects, the response text read)."""
    secret = "whsec_" + "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2g="
    body = sample_body(secret)
    now = int(time.time())
    prepared = [headers(secret, f"evt_{uuid.uuid4().hex}", now, body) for _ in range(n)]
    warm = [headers(secret, f"evt_{uuid.uuid4().hex}", now, body) for _ in range(concurrency * WAVES)]
    client_timeout = aiohttp.ClientTimeout(total=10.0)
    not_2xx: Counter[int] = Counter()
    figure = Figure(label, "-", n)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def worker(queue: Any) -> None:
            for signed in queue:  # one iterator shared by the workers: each request goes once
                async with session.post(
                    receiver.url, data=body, headers=signed, timeout=client_timeout, allow_redirects=False
                ) as response:
                    await response.text(errors="replace")
                    if not 200 <= response.status < 300:
                        not_2xx[response.status] += 1

        shared_warm = iter(warm)  # connections opened, code warm
        await asyncio.gather(*(worker(shared_warm) for _ in range(concurrency)))
        await receiver.ask("reset", secret, False)  # one body for all: only the signatures are checked
        shared = iter(prepared)
        cpu_before, started = time.process_time(), time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker(shared) for _ in range(concurrency))), timeout)
        except TimeoutError:
            figure.timed_out = True
        figure.seconds = time.perf_counter() - started
        figure.bench_cpu = (time.process_time() - cpu_before) / max(1e-9, figure.seconds)
    figure.load1 = os.getloadavg()[0]
    received = await receiver.ask("collect", False)
    _take_receiver_answer(figure, received)
    if not_2xx:
        figure.problems.append(f"answers not 2xx: {dict(not_2xx)}")
    if received["requests"] != n:
        figure.problems.append(f"the receiver got {received['requests']} requests, {n} were sent")
    figure.notes.append(
        f"{len(body):,} bytes of body, {concurrency} requests at a time, {received['requests']:,} requests "
        f"received, signatures checked on {received['checked']} ({received['good']} good; the body's id is "
        "the same in every request, so it is not compared with webhook-id here)"
    )
    return figure


def _take_receiver_answer(figure: Figure, received: dict[str, Any]) -> None:
    figure.receiver_cpu = received["cpu"]
    figure.received = {k: v for k, v in received.items() if k != "arrivals"}
    if received["good"] != received["checked"]:
        figure.problems.append(
            f"{received['checked'] - received['good']} of {received['checked']} checked requests failed: "
            + "; ".join(received["bad"])
        )


# -- the hub ----------------------------------------------------------------------------------------


class TimedUnits:
    """The hub's context as the dispatcher sees it (``UnitsOfWork``), with a stopwatch on each of its
    transactions: one that records outcomes (the dispatcher's counters moved inside it) or one that
    fans out and claims.  It notes the commit of the round that recorded the ``target``-th delivery."""

    def __init__(self, context: HubContext, target: int) -> None:
        self.context = context
        self.publish_listeners = context.publish_listeners
        self.target = target
        self.dispatcher: Dispatcher | None = None
        self.done = asyncio.Event()
        self.finished_at = 0.0  # perf_counter
        self.claim_seconds = self.record_seconds = 0.0
        self.claims = self.records = 0

    def restart(self) -> None:
        """Forget the rounds so far: the figure's clock starts now."""
        self.claim_seconds = self.record_seconds = 0.0
        self.claims = self.records = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        assert self.dispatcher is not None
        before = self.dispatcher.delivered + self.dispatcher.failed
        started = time.perf_counter()
        async with self.context.transaction() as session:
            yield session
        ended = time.perf_counter()
        if self.done.is_set():
            return
        if self.dispatcher.delivered + self.dispatcher.failed != before:
            self.records += 1
            self.record_seconds += ended - started
        else:
            self.claims += 1
            self.claim_seconds += ended - started
        if self.dispatcher.delivered >= self.target:
            self.finished_at = ended
            self.done.set()


def new_dispatcher(context: HubContext, target: int) -> tuple[Dispatcher, TimedUnits]:
    settings = context.settings.webhooks
    units = TimedUnits(context, target)
    dispatcher = Dispatcher(
        units, allow_private=True, timeout=settings.timeout_seconds, concurrency=settings.concurrency
    )
    units.dispatcher = dispatcher
    return dispatcher, units


async def publish_events(context: HubContext, first_seq: int, n: int, batch: int, rng: random.Random) -> None:
    for start in range(first_seq, first_seq + n, batch):
        seqs = range(start, min(start + batch, first_seq + n))
        async with context.transaction() as session:
            await publish(session, *_events(seqs, rng))


def _events(seqs: range, rng: random.Random) -> list[Event]:
    events = []
    for seq in seqs:
        client_id = client_for(seq, rng)
        events.append(Event("client.updated", card_payload(seq, client_id), client_id))
    return events


@dataclass(frozen=True, slots=True)
class Published:
    event_id: str
    outbox_id: int
    client_id: int | None
    seq: int


async def published_between(context: HubContext, first_seq: int, n: int) -> dict[str, Published]:
    """event id -> the outbox row of each event with a bench_seq in [first_seq, first_seq + n)."""
    async with context.reading() as session:
        rows = await session.execute(
            select(OutboxEvent.event_id, OutboxEvent.id, OutboxEvent.client_id, OutboxEvent.payload)
        )
        found = {}
        for event_id, outbox_id, client_id, payload in rows:
            seq = int(payload.get("bench_seq", -1))
            if first_seq <= seq < first_seq + n:
                found[event_id] = Published(event_id, outbox_id, client_id, seq)
    return found


async def delivery_states(context: HubContext) -> dict[str, int]:
    async with context.reading() as session:
        rows = await session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
        return {status: int(count) for status, count in rows}


def check_arrivals(figure: Figure, arrivals: Sequence[tuple[str, float]], published: dict[str, Published]) -> None:
    """Every event exactly once (duplicates counted), nothing unknown, each client's events in order."""
    counts = Counter(message_id for message_id, _ in arrivals)
    duplicates = sum(c - 1 for c in counts.values())
    unknown = [m for m in counts if m not in published]
    missing = len(published.keys() - counts.keys())
    first_seen: dict[str, int] = {}
    for position, (message_id, _) in enumerate(arrivals):
        first_seen.setdefault(message_id, position)
    out_of_order = 0
    by_client: dict[int, list[Published]] = {}
    for event in published.values():
        if event.client_id is not None and event.event_id in first_seen:
            by_client.setdefault(event.client_id, []).append(event)
    for events in by_client.values():
        arrived = sorted(events, key=lambda e: first_seen[e.event_id])
        out_of_order += sum(a.outbox_id > b.outbox_id for a, b in zip(arrived, arrived[1:], strict=False))
    figure.notes.append(
        f"receiver: {len(arrivals):,} requests, {len(counts):,} distinct event ids of {len(published):,} published, "
        f"{duplicates} duplicates, {missing} missing, {len(unknown)} unknown; "
        f"{out_of_order} client events out of order ({len(by_client)} clients); "
        f"signatures and body ids checked on {figure.received.get('checked', 0)} "
        f"({figure.received.get('good', 0)} good)"
    )
    if duplicates:
        figure.notes.append(f"{duplicates} duplicate deliveries (at least once: allowed, reported)")
    if missing or unknown:
        figure.problems.append(f"{missing} events never arrived, {len(unknown)} arrived that were not published")
    if out_of_order:
        figure.problems.append(f"{out_of_order} pairs of one client's events arrived out of order")


def round_notes(units: TimedUnits, seconds: float, delivered: int, rest: str = "sending") -> str:
    rounds = max(1, units.claims)
    sending = max(0.0, seconds - units.claim_seconds - units.record_seconds)
    return (
        f"dispatcher: {units.claims} rounds ({units.records} with deliveries), {delivered / rounds:.1f} deliveries "
        f"per round; per round {units.claim_seconds / rounds * 1000:.1f} ms fan-out + claim, "
        f"{sending / rounds * 1000:.1f} ms {rest} (and the loop between), "
        f"{units.record_seconds / rounds * 1000:.1f} ms recording; "
        f"of the time {units.claim_seconds / seconds:.0%} / {sending / seconds:.0%} / "
        f"{units.record_seconds / seconds:.0%}"
    )


async def warm_up(context: HubContext, receiver: ReceiverProcess, secret: str, rng: random.Random) -> int:
    """A few hundred events through, so statements are compiled and connections open; returns the next seq."""
    await receiver.ask("reset", secret)
    await publish_events(context, 0, WARM_UP_EVENTS, PUBLISH_BATCH, rng)
    dispatcher, units = new_dispatcher(context, WARM_UP_EVENTS)
    await dispatcher.start()
    try:
        await asyncio.wait_for(units.done.wait(), 120)
    finally:
        await dispatcher.stop()
    return WARM_UP_EVENTS


async def backlog_figure(
    context: HubContext,
    receiver: ReceiverProcess,
    secret: str,
    backend: str,
    first_seq: int,
    args: argparse.Namespace,
    rng: random.Random,
) -> Figure:
    n = args.events
    figure = Figure("hub, backlog (publish, then start)", backend, n)
    started = time.perf_counter()
    await publish_events(context, first_seq, n, PUBLISH_BATCH, rng)
    publish_seconds = time.perf_counter() - started
    await receiver.ask("reset", secret)
    dispatcher, units = new_dispatcher(context, n)
    profile = cProfile.Profile() if args.profile else None
    cpu_before, started = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    await dispatcher.start()
    try:
        await asyncio.wait_for(units.done.wait(), args.timeout)
    except TimeoutError:
        figure.timed_out = True
    if profile is not None:
        profile.disable()
        profile.dump_stats(f"{args.profile}.{backend}")
    ended = units.finished_at if not figure.timed_out else time.perf_counter()
    figure.seconds = ended - started
    figure.bench_cpu = (time.process_time() - cpu_before) / max(1e-9, time.perf_counter() - started)
    figure.load1 = os.getloadavg()[0]
    received = await receiver.ask("collect", True, timeout=120)
    delivered, failed = dispatcher.delivered, dispatcher.failed
    await dispatcher.stop()
    _take_receiver_answer(figure, received)
    figure.notes.append(
        f"published beforehand: {n:,} events in transactions of 100, {publish_seconds:.2f} s "
        f"({n / publish_seconds:,.0f} events/s into the outbox)"
    )
    figure.notes.append(round_notes(units, figure.seconds, delivered))
    check_arrivals(figure, received["arrivals"], await published_between(context, first_seq, n))
    _outcome_notes(figure, delivered, failed, n, await delivery_states(context))
    return figure


async def live_figure(
    context: HubContext,
    receiver: ReceiverProcess,
    secret: str,
    backend: str,
    first_seq: int,
    rate: float,
    args: argparse.Namespace,
    rng: random.Random,
) -> Figure:
    n = args.live_events or max(100, min(args.events // 2, round(rate * LIVE_SECONDS)))
    figure = Figure(f"hub, live ({rate:,.0f} events/s offered)", backend, n, counts_for_ratio=False)
    await receiver.ask("reset", secret)
    dispatcher, units = new_dispatcher(context, n)
    await dispatcher.start()
    await asyncio.sleep(0.5)  # running and idle, waiting for a wake
    committed: dict[int, float] = {}  # seq -> time.time() right after its transaction committed
    behind = 0.0
    units.restart()
    cpu_before, started = time.process_time(), time.perf_counter()
    begun = time.time()
    try:
        for i, start in enumerate(range(first_seq, first_seq + n, args.live_batch)):
            due = started + i * args.live_batch / rate
            lag = due - time.perf_counter()
            if lag > 0:
                await asyncio.sleep(lag)
            else:
                behind = max(behind, -lag)
            seqs = range(start, min(start + args.live_batch, first_seq + n))
            events = _events(seqs, rng)
            async with context.transaction() as session:
                await publish(session, *events)
            at = time.time()
            committed.update((seq, at) for seq in seqs)
        publish_ended = time.perf_counter()
        try:
            await asyncio.wait_for(units.done.wait(), args.timeout)
        except TimeoutError:
            figure.timed_out = True
        wall = time.perf_counter() - started
        figure.bench_cpu = (time.process_time() - cpu_before) / max(1e-9, wall)
        figure.load1 = os.getloadavg()[0]
        received = await receiver.ask("collect", True, timeout=120)
        delivered, failed = dispatcher.delivered, dispatcher.failed
    finally:
        await dispatcher.stop()
    _take_receiver_answer(figure, received)
    arrivals = received["arrivals"]
    published = await published_between(context, first_seq, n)
    first_arrival: dict[str, float] = {}
    for message_id, at in arrivals:
        first_arrival.setdefault(message_id, at)
    figure.latencies = [
        first_arrival[e.event_id] - committed[e.seq] for e in published.values() if e.event_id in first_arrival
    ]
    last = max(first_arrival.values(), default=begun)
    figure.seconds = last - begun  # first transaction begun -> last event at the receiver
    figure.notes.append(
        f"published while running: {n:,} events in transactions of {args.live_batch}, paced at {rate:,.0f} events/s "
        f"over {publish_ended - started:.2f} s (at most {behind * 1000:.0f} ms behind the pace); deliveries/s here "
        "is the offered rate, not a capacity, so no ratio; latency = receiver's arrival - commit, per event"
    )
    figure.notes.append(round_notes(units, max(1e-9, units.finished_at - started), n, "sending or idle"))
    check_arrivals(figure, arrivals, published)
    _outcome_notes(figure, delivered, failed, n, await delivery_states(context))
    if any(x < 0 for x in figure.latencies):
        figure.problems.append(f"{sum(x < 0 for x in figure.latencies)} events arrived before their commit was noted")
    return figure


def _outcome_notes(figure: Figure, delivered: int, failed: int, n: int, states: dict[str, int]) -> None:
    figure.notes.append(
        f"dispatcher counted {delivered:,} delivered, {failed} failed attempts; webhook_deliveries rows now "
        + ", ".join(f"{count:,} {status}" for status, count in sorted(states.items()))
    )
    if figure.timed_out:
        figure.problems.append(f"timed out: {delivered:,} of {n:,} delivered")
    if failed:
        figure.problems.append(f"{failed} attempts failed (retried after the first retry delay)")


async def run_backend(
    backend: str, url: str, receiver: ReceiverProcess, bare: float, args: argparse.Namespace, figures: list[Figure]
) -> None:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="hub_bench_webhooks_") as data_dir:
        settings = Settings(database_url=url, data_dir=Path(data_dir), webhooks=WebhookSettings(allow_private=True))
        context = await HubContext.open(settings, upgrade=True)
        try:
            async with context.transaction() as session:
                subscription = await Subscriptions(session).create(receiver.url, [], "bench")
            secret = subscription.secret
            seq = await warm_up(context, receiver, secret, rng)
            figures.append(await backlog_figure(context, receiver, secret, backend, seq, args, rng))
            print(f"{backend}: backlog measured ({figures[-1].per_second:,.0f} deliveries/s)", flush=True)
            seq += args.events
            rate = args.rate or max(10.0, 0.5 * (figures[-1].per_second or bare))
            figures.append(await live_figure(context, receiver, secret, backend, seq, rate, args, rng))
            print(f"{backend}: live measured", flush=True)
        finally:
            await context.close()


# -- the report -------------------------------------------------------------------------------------


def percentile_ms(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1] * 1000


def best_bare(figures: Sequence[Figure]) -> Figure | None:
    """The better of the bare passes that finished: what "of bare" is a share of."""
    return max((f for f in figures if f.backend == "-" and not f.timed_out), key=lambda f: f.per_second, default=None)


def share_of_bare(figure: Figure, bare: Figure | None) -> float | None:
    """The figure's deliveries/s as a share of the better bare pass's; None when it has no ratio."""
    if bare is None or not bare.per_second or not figure.counts_for_ratio:
        return None
    return figure.per_second / bare.per_second


def summary_rows(figures: Sequence[Figure]) -> list[Row]:
    """Each bare pass (a reference), the backlog figure against the better bare pass, the live
    figure's p50 and p99 latency; no target is set, so no verdict (``met`` None)."""
    bare = best_bare(figures)
    rows: list[Row] = []
    for f in figures:
        name = f"{f.label}, TIMED OUT" if f.timed_out else f.label
        if f.backend == "-":
            rows.append(Row("webhooks", name, "-", f.per_second, "deliveries/s"))
        elif share_of_bare(f, bare) is not None:
            assert bare is not None
            rows.append(Row("webhooks", name, f.backend, f.per_second, "deliveries/s", bare.per_second, bare.label))
        for q in (50, 99) if f.latencies else ():
            rows.append(Row("webhooks", f"{name}, p{q}", f.backend, percentile_ms(f.latencies, q), f"ms p{q}"))
    return rows


def print_report(figures: Sequence[Figure], args: argparse.Namespace, warnings: Counter[str]) -> None:
    best = best_bare(figures)
    bare = best.per_second if best is not None else 0.0
    concurrency = WebhookSettings().concurrency
    print(
        f"\ncores: {os.cpu_count()}   python {sys.version.split()[0]}   aiohttp {aiohttp.__version__}   "
        f"dispatcher concurrency {concurrency} (the settings' default), claim limit {concurrency * WAVES} per round"
    )
    print(
        f"events: client.updated, ~{len(sample_body('whsec_AAAA')):,} bytes of body; {100 - 100 // NO_CLIENT_EVERY}% "
        f"spread at random over 1000 client ids, every 10th with no client (one event of a "
        "client per round: per-client order)"
    )
    print("the receiver (aiohttp, 204 to every POST) runs in a child process; the hub alone in this one")
    header = (
        f"{'figure':<40}{'backend':<12}{'events':>7}{'seconds':>9}{'deliv/s':>9}{'of bare':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'hub cpu':>9}{'recv cpu':>9}{'load1':>6}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        ratio = share_of_bare(f, best)
        share = f"{ratio:>9.1%}" if ratio is not None else f"{'':>9}"
        if f.latencies:
            quantiles = "".join(f"{percentile_ms(f.latencies, q):>8.1f}" for q in (50, 99, 100))
        else:
            quantiles = f"{'':>8}{'':>8}{'':>8}"
        cpu_label = f"{f.bench_cpu:>9.0%}"
        print(
            f"{f.label:<40}{f.backend:<12}{f.events:>7}{f.seconds:>9.2f}{f.per_second:>9,.0f}{share}{quantiles}"
            f"{cpu_label}{f.receiver_cpu:>9.0%}{f.load1:>6.1f}{'  TIMED OUT' if f.timed_out else ''}"
        )
    print(
        "\nbare: a plain aiohttp ClientSession loop in this process, the same pre-built body and signed headers, "
        f"{concurrency} requests at a time; 'of bare' is the share of the better bare pass ({bare:,.0f} requests/s)"
    )
    print(
        "backlog: seconds from Dispatcher.start() to the commit of the round that recorded the last delivery; "
        "live: from the first publishing transaction's start to the last event's arrival at the receiver"
    )
    print(
        "hub cpu: this process's CPU time over the figure's wall time (100% = one core; for bare it is the bare "
        "client's, for live it includes the publishing); recv cpu: the child's; load1 as the figure ended "
        f"(above {os.cpu_count()}: the machine was shared)"
    )
    if args.quick:
        print("--quick: a smoke run with few events; the figures are rough")
    for f in figures:
        print(f"\n{f.label} [{f.backend}]")
        for note in f.notes:
            print(f"  {note}")
        for problem in f.problems:
            print(f"  PROBLEM: {problem}")
    if warnings:
        print("\nwarnings the hub logged during the runs:")
        for text, count in warnings.most_common():
            print(f"  {count:>6} x {text}")


def print_profile(path: str, backend: str) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(f"{path}.{backend}", stream=out)
        stats.sort_stats(order).print_stats(25)
        print(f"\nprofile of the backlog figure on {backend} (this process's main thread, by {order}):")
        print(out.getvalue())


# -- the command ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--events", type=int, default=5000, help="events of the backlog figure and the bare passes")
    parser.add_argument(
        "--live-events",
        type=int,
        help=f"events of the live figure (default: --events / 2, or what the rate offers in {LIVE_SECONDS} s if fewer,"
        " but at least 100)",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="live figure: events/s offered (default: half the backlog rate)"
    )
    parser.add_argument("--live-batch", type=int, default=LIVE_BATCH, help="live figure: events per transaction")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a figure may take")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 20 seconds")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the backlog figure into PATH.<backend>")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped",
    )
    parser.add_argument("--seed", type=int, default=1)
    add_summary_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.timeout = 1000, 120.0
    if (
        args.events < 1
        or (args.live_events is not None and args.live_events < 1)
        or args.live_batch < 1
        or args.rate < 0
    ):
        parser.error("--events, --live-events and --live-batch must be positive, --rate not negative")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tally = configure_logs()
    concurrency = WebhookSettings().concurrency
    receiver = ReceiverProcess()
    figures: list[Figure] = []
    failures: list[str] = []
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    await receiver.start()
    try:
        figures.append(await bare_pass(receiver, "bare receiver capacity (before)", args.events, concurrency, 120))
        print(f"bare receiver: {figures[-1].per_second:,.0f} requests/s", flush=True)
        for backend in backends:
            bare = statistics.fmean(f.per_second for f in figures if f.backend == "-")
            try:
                database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
                async with database as url:
                    await run_backend(backend, url, receiver, bare, args, figures)
            except Exception as exc:  # report what was measured, and why the rest was not
                failures.append(f"{backend}: the figures stopped: {type(exc).__name__}: {exc}")
                print(failures[-1], flush=True)
        figures.append(await bare_pass(receiver, "bare receiver capacity (after)", args.events, concurrency, 120))
    finally:
        await receiver.stop()
    print_report(figures, args, tally.seen)
    write_summary(args.summary, summary_rows(figures))
    for failure in failures:
        print(failure)
    if args.profile:
        for backend in backends:
            if Path(f"{args.profile}.{backend}").exists():
                print_profile(args.profile, backend)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
