"""Mailing throughput, each figure beside a baseline measured in the same run.

Sending: personalised, tracked messages per second from a started campaign into an aiosmtpd
sink (the real ``CampaignSender``: claims committed, copies rendered from the card with every
link turned into a signed redirect and the pixel added, List-Unsubscribe headers, answers
recorded), beside a bare aiosmtplib loop sending pre-rendered messages over one connection (the
issue's baseline), and beside the same over as many connections as the hub uses (like for like:
printed, so the reader sees both).  Target: at least 70% of the bare loop and at least 300/s.

Tracking: pixel hits per second served by the hub's own app (token checked, hit queued,
stored in batches by the recorder process), beside a bare aiohttp handler returning the same
GIF; both after ``WARM_UP`` requests (connections made, the recorder process started).  The
figure's time runs until every answered hit is in the database.  Target: at least 60% of the
bare handler.  A crash loses at most about the last second of hits (``hub.hit_log``, README).

The sink and the load generator run in child processes, so that the hub's process has its
own core as in production (the machine's cores are printed: on two cores the children share).

    .venv/bin/python -m bench.mailing [--backend sqlite|postgresql|both] [--messages N] [--hits N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
from aiohttp import web
from sqlalchemy import func, select

from bench.child import ChildProcess
from bench.hub_logs import configure_logs
from bench.lookup import postgresql_database, sqlite_database
from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from connectors.mail.compose import Outgoing, compose
from crm_core.audit import SYSTEM
from crm_core.campaigns.book import CampaignIn, Campaigns, SegmentIn, Segments
from crm_core.campaigns.models import CampaignStatus, Recipient, TrackingHit
from crm_core.campaigns.segments import SegmentRules
from crm_core.campaigns.tokens import Purpose, make_token, tracking_key
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import Address
from hub.campaign_sender import CampaignSender
from hub.config import CampaignSettings, Settings, SmtpSettings
from hub.context import HubContext
from hub.web.app import make_app
from hub.web.tracking import HITS, PIXEL

CONCURRENCY = CampaignSettings().concurrency
WARM_UP = 500  # pixel requests before each pixel figure is timed: connections made, the recorder started
BARE_SMTP = "bare aiosmtplib, pre-rendered"
BARE_LOOP = "bare aiosmtplib loop, pre-rendered"  # one connection: the issue's baseline
BARE_PIXEL = "bare aiohttp pixel handler"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
HTML = """<html><body style="font-family: Arial, sans-serif">
<h1>Здравствуйте, {{ contact.first_name or client.name }}!</h1>
<p>Для {{ client.name }} в декабре скидка {{ client.custom.discount or "10" }}% на весь каталог.
Предложение действует до конца месяца; заказы принимаем по телефону и на сайте.</p>
<p><a href="https://shop.example.com/catalog?utm_source=mail&amp;c={{ client.id }}">Каталог</a> ·
<a href="https://shop.example.com/sale">Распродажа</a> ·
<a href="https://shop.example.com/contacts">Контакты</a></p>
<p style="color:#888">Вы получили это письмо как клиент магазина.
<a href="{{ unsubscribe_url }}">Отписаться</a></p>
</body></html>"""


# -- the children: an SMTP sink and an HTTP load generator -----------------------------------


class _Sink:
    """aiosmtpd, counting each address's messages (so "exactly once" is checked, not assumed)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  (aiosmtpd's name)
        self.received.update(envelope.rcpt_tos)
        self.bytes += len(envelope.original_content or b"")
        return "250 2.0.0 Ok"


def _sink_process(conn: Connection) -> None:
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        sink = _Sink()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", 0)
        conn.send(("ready", server.sockets[0].getsockname()[1]))
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command[0] == "stop":
                conn.send(("stopped",))
                return
            if command[0] == "reset":
                sink.received.clear()
                sink.bytes = 0
                conn.send(("reset",))
            elif command[0] == "collect":
                counts = sink.received
                conn.send({"messages": sum(counts.values()), "addresses": len(counts), "bytes": sink.bytes,
                           "twice": sum(1 for n in counts.values() if n > 1)})  # fmt: skip

    asyncio.run(serve())


def _load_process(conn: Connection) -> None:
    async def run(urls: list[str], concurrency: int) -> dict[str, Any]:
        statuses: Counter[int] = Counter()
        shared = iter(urls)
        headers = {"User-Agent": BROWSER, "Accept-Language": "ru-RU,ru;q=0.9"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def worker() -> None:
                for url in shared:
                    async with session.get(url, allow_redirects=False) as response:
                        await response.read()
                        statuses[response.status] += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return {"seconds": time.perf_counter() - started, "statuses": dict(statuses)}

    conn.send(("ready", None))
    while True:
        command = conn.recv()
        if command[0] == "stop":
            conn.send(("stopped",))
            return
        conn.send(asyncio.run(run(command[1], command[2])))


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    backend: str
    units: int
    seconds: float
    baseline: str = ""  # the label of the figure it is compared with
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0


async def bare_smtp(sink: ChildProcess, port: int, messages: int, connections: int) -> Figure:
    """Pre-rendered messages through aiosmtplib connections, one message at a time each: one
    connection is the issue's "bare loop"; the hub's own concurrency is the like-for-like one."""
    raws = [
        compose(Outgoing(sender=Address("news@shop.example.com", "Магазин"), to=(Address(f"b{n}@clients.example"),),
                         subject=f"Скидки для клиента {n}", html=HTML.replace("{{", "{").replace("}}", "}")))[1]
        for n in range(messages)
    ]  # fmt: skip
    await sink.ask("reset")
    shared = iter(enumerate(raws))

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
        await smtp.connect()
        for n, raw in shared:
            await smtp.sendmail("news@shop.example.com", [f"b{n}@clients.example"], raw)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    label = BARE_LOOP if connections == 1 else f"{BARE_SMTP}, {connections} connections"
    figure = Figure(label, "-", messages, time.perf_counter() - started)
    received = await sink.ask("collect")
    figure.notes.append(f"{received['bytes'] // max(1, received['messages']):,} bytes a message")
    if received["messages"] != messages:
        figure.problems.append(f"the sink got {received['messages']} of {messages}")
    return figure


async def _clients(context: HubContext, count: int) -> None:
    for start in range(0, count, 500):
        async with context.transaction() as session:
            book = ClientBook(session)
            for n in range(start, min(count, start + 500)):
                card = {"name": f"ООО Клиент {n}", "tags": ["рассылка"], "custom_fields": {"discount": str(5 + n % 20)},
                        "emails": [{"address": f"c{n}@clients.example"}],
                        "contacts": [{"first_name": "Анна", "last_name": f"Иванова {n}"}]}  # fmt: skip
                await book.create(ClientIn.model_validate(card), SYSTEM)


async def hub_sending(context: HubContext, sink: ChildProcess, backend: str, messages: int, timeout: float) -> Figure:
    async with context.transaction() as session:
        segment = await Segments(session).create(SegmentIn(name="bench", rules=SegmentRules(tags_any=["рассылка"])))
        campaign = await Campaigns(session).create(
            CampaignIn(name="bench", from_address="news@shop.example.com", from_name="Магазин",
                       subject="Скидки для {{ client.name }}", html=HTML, segment_id=segment.id), None)  # fmt: skip
        await Campaigns(session).start(campaign.id)
    await sink.ask("reset")
    sender = CampaignSender(context, "https://hub.example.com")
    cpu, started = time.process_time(), time.perf_counter()
    await sender.start()
    try:
        deadline = started + timeout
        while time.perf_counter() < deadline and (await sink.ask("collect"))["messages"] < messages:
            await asyncio.sleep(0.05)  # the sink is asked, not the database, so as not to slow the hub
        while time.perf_counter() < deadline:
            async with context.reading() as session:
                if (await Campaigns(session).get(campaign.id)).status is CampaignStatus.finished:
                    break
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu = (time.process_time() - cpu) / seconds
    finally:
        await sender.stop()
    figure = Figure("hub campaign, personalised + tracked", backend, messages, seconds, BARE_LOOP)
    received = await sink.ask("collect")
    figure.notes.append(
        f"{CONCURRENCY} connections; from CampaignSender.start() to the campaign finished (answers recorded); "
        f"{received['bytes'] // max(1, received['messages']):,} bytes a message; the hub's process used {cpu:.0%} "
        "of a core (all its threads)"
    )
    if received["messages"] != messages or received["twice"]:
        figure.problems.append(f"the sink got {received['messages']} of {messages}, {received['twice']} twice")
    return figure


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def bare_pixel(load: ChildProcess, hits: int, concurrency: int) -> Figure:
    async def pixel(request: web.Request) -> web.Response:
        return web.Response(body=PIXEL, content_type="image/gif", headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/t/o/{token}", pixel)
    runner, port = await _serve(app)
    try:
        await load.ask("run", [f"http://127.0.0.1:{port}/t/o/w{n}" for n in range(WARM_UP)], concurrency)
        urls = [f"http://127.0.0.1:{port}/t/o/x{n}" for n in range(hits)]
        started = time.perf_counter()  # timed here, as the hub's figure is, the hand-over to the child included
        result = await load.ask("run", urls, concurrency, timeout=600)
        seconds = time.perf_counter() - started
    finally:
        await runner.cleanup()
    figure = Figure(BARE_PIXEL, "-", hits, seconds)
    if result["statuses"] != {200: hits}:
        figure.problems.append(f"answers: {result['statuses']}")
    return figure


async def hub_pixel(context: HubContext, load: ChildProcess, backend: str, hits: int, concurrency: int) -> Figure:
    async with context.reading() as session:
        recipients = list((await session.scalars(select(Recipient.id).order_by(Recipient.id))).all())
    key = tracking_key(context.signing_key)
    app = make_app(context)
    runner, port = await _serve(app)
    try:
        urls = [
            f"http://127.0.0.1:{port}/t/o/{make_token(key, Purpose.open, recipients[n % len(recipients)])}"
            for n in range(hits + WARM_UP)
        ]
        await load.ask("run", urls[:WARM_UP], concurrency)  # the recorder process starts at the first hit
        await app[HITS].flush()
        urls = urls[WARM_UP:]
        started = time.perf_counter()
        result = await load.ask("run", urls, concurrency, timeout=600)
        answered = time.perf_counter() - started
        await app[HITS].flush()  # after the batch in hand: the figure counts until every hit is in the database
        seconds = time.perf_counter() - started
    finally:
        await runner.cleanup()
    figure = Figure("hub pixel: token checked, hit recorded", backend, hits, seconds, BARE_PIXEL)
    async with context.reading() as session:
        recorded = int(await session.scalar(select(func.count()).select_from(TrackingHit)) or 0) - WARM_UP
    figure.notes.append(
        f"{concurrency} requests at a time; all answered after {answered:.2f} s, all {recorded:,} in the database "
        f"after {seconds:.2f} s (the figure's time)"
    )
    if result["statuses"] != {200: hits} or recorded != hits:
        figure.problems.append(f"answers: {result['statuses']}, recorded {recorded} of {hits}")
    return figure


async def run_backend(
    backend: str, url: str, sink: ChildProcess, sink_port: int, load: ChildProcess, args: argparse.Namespace
) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="hub_bench_mailing_") as data_dir:
        smtp = SmtpSettings(host="127.0.0.1", port=sink_port, security="none")
        settings = Settings(database_url=url, data_dir=Path(data_dir), campaigns=CampaignSettings(smtp=smtp))
        context = await HubContext.open(settings, upgrade=True)
        try:
            await _clients(context, args.messages)
            print(f"{backend}: {args.messages:,} cards made", flush=True)
            sending = await hub_sending(context, sink, backend, args.messages, args.timeout)
            print(f"{backend}: sending measured ({sending.per_second:,.0f} messages/s)", flush=True)
            tracking = await hub_pixel(context, load, backend, args.hits, args.http_concurrency)
            print(f"{backend}: tracking measured ({tracking.per_second:,.0f} hits/s)", flush=True)
            return [sending, tracking]
        finally:
            await context.close()


def _bare(figures: Sequence[Figure]) -> dict[str, float]:
    """Each baseline's mean over its runs before and after the hub's (the machine drifts)."""
    runs: dict[str, list[float]] = {}
    for f in figures:
        if f.backend == "-":
            runs.setdefault(f.label, []).append(f.per_second)
    return {label: sum(values) / len(values) for label, values in runs.items()}


def summary_rows(figures: Sequence[Figure]) -> list[Row]:
    """The baselines (their means) and each hub figure against its baseline and target."""
    bare = _bare(figures)
    rows = [Row("mailing", label, "-", value, _unit(label)) for label, value in bare.items()]
    for f in figures:
        if not f.baseline:
            continue
        base = bare.get(f.baseline, 0.0)
        ratio = f.per_second / base if base else 0.0
        if f.baseline == BARE_LOOP:
            target, met = ">= 70% of the loop and >= 300/s", ratio >= 0.70 and f.per_second >= 300
        else:
            target, met = ">= 60% of bare", ratio >= 0.60
        rows.append(Row("mailing", f.label, f.backend, f.per_second, _unit(f.label), base, f.baseline, target,
                        met and not f.problems))  # fmt: skip
    return rows


def _unit(label: str) -> str:
    return "hits/s" if "pixel" in label else "messages/s"


def print_report(figures: Sequence[Figure]) -> None:
    judged = {(r.figure, r.backend): r for r in summary_rows(figures) if r.baseline is not None}
    alike = [f.per_second for f in figures if f.label.startswith(f"{BARE_SMTP}, ")]
    print(f"\ncores: {os.cpu_count()}   python {sys.version.split()[0]}   load1 {os.getloadavg()[0]:.1f}")
    header = f"{'figure':<48}{'backend':<12}{'units':>8}{'seconds':>9}{'per s':>9}{'of bare':>9}  target"
    print(header)
    print("-" * (len(header) + 20))
    for f in figures:
        share, target = "", ""
        row = judged.get((f.label, f.backend))
        if row is not None and row.ratio is not None:
            share = f"{row.ratio:.1%}"
            target = f"{'PASS' if row.met else 'FAIL'} ({row.target})"
            if f.baseline == BARE_LOOP and alike:
                target += f"; {f.per_second / (sum(alike) / len(alike)):.1%} of {CONCURRENCY} bare connections"
            if f.problems:
                target = "FAIL (see problems)"
        print(f"{f.label:<48}{f.backend:<12}{f.units:>8,}{f.seconds:>9.2f}{f.per_second:>9,.0f}{share:>9}  {target}")
    print("'of bare': against the mean of the bare runs before and after the hub's (the machine drifts)")
    for f in figures:
        for note in f.notes:
            print(f"  {f.label} [{f.backend}]: {note}")
        for problem in f.problems:
            print(f"  PROBLEM {f.label} [{f.backend}]: {problem}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--messages", type=int, default=3000, help="recipients of the campaign, and bare messages")
    parser.add_argument("--hits", type=int, default=60000, help="pixel requests of each tracking figure")
    parser.add_argument("--http-concurrency", type=int, default=32, help="pixel requests in flight at once")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the campaign may take")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped",
    )
    add_summary_option(parser)
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logs()
    sink = ChildProcess(_sink_process, "the SMTP sink")
    load = ChildProcess(_load_process, "the load generator")
    _, sink_port = await sink.start()
    await load.start()
    figures: list[Figure] = []
    failures: list[str] = []
    try:
        for connections in (1, CONCURRENCY):
            figures.append(await bare_smtp(sink, sink_port, args.messages, connections))
            print(f"{figures[-1].label}: {figures[-1].per_second:,.0f} messages/s", flush=True)
        figures.append(await bare_pixel(load, args.hits, args.http_concurrency))
        print(f"bare pixel: {figures[-1].per_second:,.0f} requests/s", flush=True)
        for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
            try:
                database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
                async with database as url:
                    figures.extend(await run_backend(backend, url, sink, sink_port, load, args))
            except Exception as exc:  # report what was measured, and why the rest was not
                failures.append(f"{backend}: the figures stopped: {type(exc).__name__}: {exc}")
                print(failures[-1], flush=True)
        figures.append(await bare_pixel(load, args.hits, args.http_concurrency))  # the machine may have changed
        figures.append(await bare_smtp(sink, sink_port, args.messages, 1))
        figures.append(await bare_smtp(sink, sink_port, args.messages, CONCURRENCY))
    finally:
        await sink.stop()
        await load.stop()
    print_report(figures)
    write_summary(args.summary, summary_rows(figures))
    for failure in failures:
        print(failure)
    return 1 if failures or any(f.problems for f in figures) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
