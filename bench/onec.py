"""1C sync: counterparties/s of a full sync and the time of an incremental one, beside bare paging.

Issue #6.  Three syncs of one ``[[onec]]`` connection, each timed around ``OnecSync.run`` (the
real engine and OData client, the hub's own database made by its migrations):

- full: an empty hub and N counterparties in 1C (100,000 by default): counterparties/s;
- incremental: 100 of the N edited in 1C as a 1C user would (a new name or a new phone);
- nothing changed: the same again with no edit (the floor of every scheduled sync).

Beside them, in the same run, a bare aiohttp loop pages through the fake's catalogue with
``$top``/``$skip`` and Basic auth, one request after another: whole entries at the engine's page
size (the full sync's baseline), and the cheap ``Ref_Key,DataVersion,DeletionMark`` list at the
engine's page for it (the incremental's floor).  Both are run before and after the hub's syncs and
averaged, since the machine drifts.

Target: the incremental sync takes under 5 s for 100 changes among 100,000, and reads only the
cheap list besides the changed records.  What each sync asked 1C is not guessed: the fake records
every request, and they are sorted here into the cheap list's pages, whole pages, and records read
by key (``$filter=Ref_Key eq guid'...' or ...`` chains, or ``Set(guid'...')``).

The fake 1C (``tests.fake_onec``, seeded as its standalone mode is) runs in a child process, so
that its CPU does not share the hub's event loop; edits and request records go through its
``/_fake/`` control endpoints.

    .venv/bin/python -m bench.onec                          # SQLite, 100,000 counterparties
    .venv/bin/python -m bench.onec --count 5000             # a quick run
    .venv/bin/python -m bench.onec --backend both --count 20000
    .venv/bin/python -m bench.onec --count 5000 --profile /tmp/onec.prof   # where the incremental's time goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

if __package__ in (None, ""):  # run as a script: make the repository's packages (tests, bench) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy import func, select

from bench.child import ChildProcess
from bench.hub_logs import configure_logs
from bench.lookup import postgresql_database, sqlite_database
from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from connectors.onec.counterparties import VERSIONS_PAGE
from crm_core.models import Client
from crm_core.onec.engine import RunReport
from hub.config import OnecSettings, Settings
from hub.context import HubContext
from hub.onec import OnecSync
from tests.fake_onec import COUNTERPARTIES, FakeOnec

TARGET_INCREMENTAL_SECONDS = 5.0
CONNECTION = "acc"
USER, PASSWORD = "Администратор", "секрет"  # Cyrillic, as in the tests: UTF-8 Basic auth on both sides
CHEAP_COLUMNS = frozenset({"Ref_Key", "DataVersion", "DeletionMark"})
TARGET = (  # as the report states it
    f"the incremental sync under {TARGET_INCREMENTAL_SECONDS:g} s, reading only the cheap list "
    f"({','.join(sorted(CHEAP_COLUMNS))}) and the changed records"
)
BARE_WHOLE = "bare paging, whole entries"
BARE_CHEAP = "bare paging, cheap list"
_BY_KEY = re.compile(r"Ref_Key eq guid'([0-9A-Fa-f-]{36})'")

# What a request to the catalogue was, as sorted by ``classify``.
COUNT, CHEAP, WHOLE, BY_KEY, FOLDERS, SEARCH, WRITES, OTHER_SETS = (
    "$count", "cheap pages", "whole pages", "by key", "folders", "searches", "writes", "other sets",
)  # fmt: skip
REQUEST_KINDS = (COUNT, CHEAP, WHOLE, BY_KEY, FOLDERS, SEARCH, WRITES, OTHER_SETS)


# -- the fake 1C, in a child process ----------------------------------------------------------


def _onec_process(conn: Connection) -> None:
    async def serve() -> None:
        fake = FakeOnec(user=USER, password=PASSWORD)
        conn.send(("ready", await fake.start()))
        try:
            while True:
                command, *args = await asyncio.to_thread(conn.recv)
                if command == "stop":
                    break
                if command == "seed":  # as the standalone mode seeds: in one go, then out of the GC's way
                    started = time.perf_counter()
                    total = fake.seed_counterparties(int(args[0]), int(args[1]))
                    gc.freeze()
                    conn.send({"total": total, "seconds": time.perf_counter() - started})
                elif command == "cpu":
                    conn.send(time.process_time())
                else:
                    conn.send(("error", f"unknown command {command!r}"))
        finally:
            await fake.stop()
        conn.send(("stopped",))

    asyncio.run(serve())


class FakeControl:
    """The fake's ``/_fake/`` endpoints (no auth, outside the publication)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.root = url.split("/base/")[0] + "/_fake/"

    async def edit(self, count: int, seed: int) -> list[str]:
        async with self.http.post(self.root + "edit", json={"count": count, "seed": seed}) as response:
            response.raise_for_status()
            return [str(key).lower() for key in (await response.json())["edited"]]

    async def mark(self) -> int:
        """How many requests the fake has recorded so far."""
        async with self.http.get(self.root + "stats") as response:
            response.raise_for_status()
            return int((await response.json())["requests"]["total"])

    async def requests(self, since: int) -> list[dict[str, Any]]:
        async with self.http.get(self.root + "requests", params={"since": str(since)}) as response:
            response.raise_for_status()
            return list((await response.json())["requests"])


# -- what a sync asked 1C ---------------------------------------------------------------------


@dataclass
class Reads:
    kinds: Counter[str] = field(default_factory=Counter)
    by_key: list[str] = field(default_factory=list)  # one key per record read by key
    tops: dict[str, set[str]] = field(default_factory=dict)  # the $top of cheap and whole pages
    failed: int = 0  # answered with an error, or cut

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def classify(requests: Sequence[dict[str, Any]]) -> Reads:
    """Sort recorded requests: cheap list pages, whole pages, records read by key, and the rest."""
    reads = Reads()
    for r in requests:
        query: dict[str, str] = r["query"]
        kind = _kind_of(r, query)
        reads.kinds[kind] += 1
        reads.failed += not 200 <= r["status"] < 300
        if kind == BY_KEY:
            reads.by_key += [r["key"]] if r["kind"] == "entry" else _BY_KEY.findall(query.get("$filter", ""))
        elif kind in (CHEAP, WHOLE) and "$top" in query:
            reads.tops.setdefault(kind, set()).add(query["$top"])
    reads.by_key = [key.lower() for key in reads.by_key]
    return reads


def _kind_of(r: dict[str, Any], query: dict[str, str]) -> str:
    if r["entity_set"] != COUNTERPARTIES:
        return OTHER_SETS  # $metadata, the contact-information kinds
    if r["method"] != "GET":
        return WRITES
    if r["kind"] == "count":
        return COUNT
    if r["kind"] == "entry":
        return BY_KEY
    condition = query.get("$filter", "")
    if _BY_KEY.search(condition):
        return BY_KEY
    if "IsFolder eq true" in condition:
        return FOLDERS
    columns = {c.strip() for c in query.get("$select", "*").split(",")}
    if columns <= CHEAP_COLUMNS:
        return CHEAP
    return WHOLE if "$top" in query or "$skip" in query else SEARCH


# -- figures ----------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    backend: str
    units: int  # counterparties paged through, or compared by the sync
    seconds: float
    baseline: str = ""  # the label of the bare figure it is compared with
    hub_cpu: float | None = None
    onec_cpu: float | None = None
    target: str = ""  # the target's column in the report; "" when no target speaks of this figure
    met: bool | None = None  # what the target's checks found; None when no target speaks of this figure
    reads: Reads | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    @property
    def verdict(self) -> bool | None:
        """The report's verdict: the target's checks, and a problem fails the figure too."""
        return None if self.met is None else self.met and not self.problems


async def bare_paging(http: aiohttp.ClientSession, url: str, page: int, columns: Sequence[str] | None) -> Figure:
    """One page after another, as plainly as aiohttp does it: the fake's own paging throughput."""
    params = {"$format": "json", "$orderby": "Ref_Key", "$top": str(page)}
    if columns:
        params["$select"] = ",".join(columns)
    entries = skip = 0
    started = time.perf_counter()
    while True:
        async with http.get(url + quote(COUNTERPARTIES), params={**params, "$skip": str(skip)}) as response:
            if response.status != 200:
                raise RuntimeError(f"the fake answered a bare page with {response.status}")
            got = len((await response.json())["value"])
        entries, skip = entries + got, skip + page
        if got < page:
            break
    label = f"{BARE_CHEAP if columns else BARE_WHOLE} ($top={page})"
    return Figure(label, "-", entries, time.perf_counter() - started)


class Timed:
    """One ``OnecSync.run``: wall time, both processes' CPU, the phases as the engine reports them."""

    def __init__(self, label: str, backend: str) -> None:
        self.label, self.backend = label, backend
        self.phases: dict[str, float] = {}
        self.started = self._shown = 0.0

    def progress(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase not in self.phases:
            self.phases[phase] = now
            print(f"  {self.backend}, {self.label}: {phase} (at {now - self.started:.1f} s)", flush=True)
        elif total and now - self._shown > 30:  # a long phase: say how far it got
            print(f"  {self.backend}, {self.label}: {phase} {done:,}/{total:,} (at {now - self.started:.0f} s)",
                  flush=True)  # fmt: skip
        else:
            return
        self._shown = now

    def phase_note(self, ended: float) -> str:
        marks = sorted(self.phases.items(), key=lambda item: item[1])
        spans = [(name, (marks[i + 1][1] if i + 1 < len(marks) else ended) - at) for i, (name, at) in enumerate(marks)]
        shown = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in spans)
        return f"phases, each from its first progress report to the next one's: {shown}"


async def timed_sync(
    sync: OnecSync, onec: ChildProcess, control: FakeControl, figure: Figure, profile: cProfile.Profile | None = None
) -> tuple[Figure, RunReport]:
    timer = Timed(figure.label, figure.backend)
    mark = await control.mark()
    onec_cpu = await onec.ask("cpu")
    cpu = time.process_time()
    timer.started = started = time.perf_counter()
    if profile is not None:
        profile.enable()
    try:
        report = await sync.run(CONNECTION, "bench", timer.progress)
    finally:
        if profile is not None:
            profile.disable()
    ended = time.perf_counter()
    figure.seconds = ended - started
    figure.hub_cpu = (time.process_time() - cpu) / figure.seconds
    figure.onec_cpu = (await onec.ask("cpu") - onec_cpu) / figure.seconds
    figure.reads = classify(await control.requests(mark))
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report.counts.items())) or "nothing"
    figure.notes += [f"run {report.run_id}: {counts}", timer.phase_note(ended)]
    if not report.ok:
        figure.problems.append(f"the run failed: {report.error}")
    if figure.reads.failed:
        figure.problems.append(f"{figure.reads.failed} requests to 1C failed (answered with an error, or cut)")
    return figure, report


async def _cards(context: HubContext) -> int:
    async with context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(Client)) or 0)


def judge_incremental(figure: Figure, report: RunReport, edited: Sequence[str]) -> None:
    reads = figure.reads
    assert reads is not None
    changed, read = set(edited), set(reads.by_key)
    misses = []
    if figure.seconds >= TARGET_INCREMENTAL_SECONDS:
        misses.append(f"took {figure.seconds:.2f} s, not under {TARGET_INCREMENTAL_SECONDS:g} s")
    if reads.kinds[WHOLE]:
        misses.append(f"read {reads.kinds[WHOLE]} whole pages of the catalogue")
    if read - changed:
        misses.append(f"read {len(read - changed)} unchanged records by key")
    if reads.kinds[SEARCH]:
        misses.append(f"made {reads.kinds[SEARCH]} other filtered reads of the catalogue")
    if changed - read:
        misses.append(f"never read {len(changed - read)} of the {len(changed)} changed records")
    figure.met = not misses
    figure.target = ("FAIL: " + "; ".join(misses)) if misses else "PASS"
    figure.notes.append(
        f"{len(reads.by_key)} records read by key in {reads.kinds[BY_KEY]} requests "
        f"({len(read)} distinct, {len(read & changed)} of the {len(changed)} changed); "
        f"{reads.kinds[CHEAP]} cheap list pages, {reads.kinds[WHOLE]} whole pages, {reads.kinds[WRITES]} writes"
    )
    if report.counts.get("updated_hub", 0) != len(changed):
        figure.problems.append(f"{report.counts.get('updated_hub', 0)} cards updated, {len(changed)} edited in 1C")


async def run_backend(
    backend: str, url: str, onec_url: str, onec: ChildProcess, control: FakeControl, args: argparse.Namespace, seed: int
) -> list[Figure]:
    settings = OnecSettings(name=CONNECTION, url=onec_url.split("/odata/")[0], user=USER, password=PASSWORD,
                            interval_minutes=0)  # fmt: skip
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="hub_bench_onec_") as data_dir:
        context = await HubContext.open(
            Settings(database_url=url, data_dir=Path(data_dir), onec=[settings]), upgrade=True
        )
        sync = OnecSync(context)
        try:
            full, report = await timed_sync(sync, onec, control, Figure(
                "full sync into an empty hub", backend, args.count, 0.0, BARE_WHOLE))  # fmt: skip
            figures.append(full)
            cards = await _cards(context)
            full.notes.append(f"{cards:,} cards in the hub afterwards; the engine reads {settings.concurrency} pages "
                              "at once, the bare loop one")  # fmt: skip
            if cards != args.count or report.counts.get("created_hub", 0) != args.count:
                full.problems.append(f"{cards:,} cards, {report.counts.get('created_hub', 0):,} created; "
                                     f"{args.count:,} expected")  # fmt: skip
            print(f"{backend}: full sync {full.seconds:.1f} s ({full.per_second:,.0f} counterparties/s)", flush=True)

            edited = await control.edit(args.changes, seed)
            profile = cProfile.Profile() if args.profile else None
            incremental, report = await timed_sync(sync, onec, control, Figure(
                f"incremental sync, {len(edited)} changed", backend, args.count, 0.0, BARE_CHEAP), profile)  # fmt: skip
            if profile is not None:
                profile.dump_stats(f"{args.profile}.{backend}")
            judge_incremental(incremental, report, edited)
            figures.append(incremental)
            print(f"{backend}: incremental sync {incremental.seconds:.2f} s: {incremental.target}", flush=True)

            unchanged, report = await timed_sync(sync, onec, control, Figure(
                "sync with nothing changed", backend, args.count, 0.0, BARE_CHEAP))  # fmt: skip
            assert unchanged.reads is not None
            extra = unchanged.reads.kinds[WHOLE] + len(unchanged.reads.by_key) + unchanged.reads.kinds[SEARCH]
            unchanged.target = "(none) cheap list only" if not extra else "(none) read more than the cheap list"
            figures.append(unchanged)
            print(f"{backend}: unchanged sync {unchanged.seconds:.2f} s", flush=True)
        finally:
            await sync.close()
            await context.close()
    return figures


# -- the report -------------------------------------------------------------------------------


def _bare(figures: Sequence[Figure]) -> dict[str, float]:
    """Each bare loop's counterparties/s, the mean of its runs before and after the syncs (the machine drifts)."""
    runs: dict[str, list[float]] = {}
    for f in figures:
        if f.backend == "-":
            runs.setdefault(f.label.split(" ($top")[0], []).append(f.per_second)
    return {label: sum(values) / len(values) for label, values in runs.items()}


def summary_rows(figures: Sequence[Figure]) -> list[Row]:
    """The bare loops (their means, counterparties/s); the full sync against whole pages (counterparties/s);
    the incremental and unchanged syncs in seconds, against the time the cheap list's bare loop takes for as
    many counterparties (the incremental's floor)."""
    bare = _bare(figures)
    rows = [Row("onec", label, "-", value, "counterparties/s") for label, value in bare.items()]
    for f in figures:
        if not f.baseline:
            continue
        base = bare.get(f.baseline, 0.0)
        target = TARGET if f.met is not None else ""
        if f.baseline == BARE_WHOLE:
            rows.append(Row("onec", f.label, f.backend, f.per_second, "counterparties/s", base, f.baseline, target,
                            f.verdict))  # fmt: skip
        else:
            floor = f.units / base if base else 0.0
            rows.append(Row("onec", f.label, f.backend, f.seconds, "s", floor, f"{f.baseline}, its time for as many",
                            target, f.verdict))  # fmt: skip
    return rows


def print_report(figures: Sequence[Figure], args: argparse.Namespace, seeded: dict[str, Any]) -> None:
    bare = _bare(figures)
    print(
        f"\ncores: {os.cpu_count()}   python {sys.version.split()[0]}   load1 {os.getloadavg()[0]:.1f}   "
        f"1C: {seeded['total']:,} counterparties (seeded in {seeded['seconds']:.1f} s), in a child process"
    )
    header = (
        f"{'figure':<42}{'backend':<12}{'entries':>9}{'seconds':>9}{'per s':>9}{'of bare':>9}"
        f"{'hub cpu':>9}{'1C cpu':>8}  target"
    )
    print(header)
    print("-" * (len(header) + 40))
    for f in figures:
        base = bare.get(f.baseline, 0.0)
        share = f"{f.per_second / base:.1%}" if f.baseline and base else ""
        hub_cpu = f"{f.hub_cpu:.0%}" if f.hub_cpu is not None else ""
        onec_cpu = f"{f.onec_cpu:.0%}" if f.onec_cpu is not None else ""
        target = "FAIL (see problems)" if f.problems and f.met else f.target or "-"
        print(
            f"{f.label:<42}{f.backend:<12}{f.units:>9,}{f.seconds:>9.2f}{f.per_second:>9,.0f}{share:>9}"
            f"{hub_cpu:>9}{onec_cpu:>8}  {target}"
        )
    print(
        "'per s': counterparties paged through, or compared, per second; 'of bare': against the mean of the bare "
        "runs before and after the syncs (the full sync against whole pages, the others against the cheap list); "
        "cpu: the process's CPU time over the wall time (100% = one core)"
    )
    print(f"target: {TARGET}")

    synced = [f for f in figures if f.reads is not None]
    print(f"\nrequests each sync made to 1C (recorded by the fake; '{BY_KEY}': requests, and records read in them)")
    head = f"{'sync':<42}{'backend':<12}" + "".join(f"{k:>13}" for k in REQUEST_KINDS) + f"{'total':>8}"
    print(head)
    print("-" * len(head))
    for f in synced:
        assert f.reads is not None
        cells = [
            f"{f.reads.kinds[k]} ({len(f.reads.by_key)})" if k == BY_KEY else str(f.reads.kinds[k])
            for k in REQUEST_KINDS
        ]
        print(f"{f.label:<42}{f.backend:<12}" + "".join(f"{c:>13}" for c in cells) + f"{f.reads.total:>8}")
    tops = {kind: sorted({t for f in synced if f.reads for t in f.reads.tops.get(kind, ())}) for kind in (CHEAP, WHOLE)}
    print(f"the engine's page sizes: cheap list $top={','.join(tops[CHEAP]) or '-'}, whole pages "
          f"$top={','.join(tops[WHOLE]) or '-'}; the bare loop used {VERSIONS_PAGE} and {args.page_size}")  # fmt: skip
    print()
    for f in figures:
        for note in f.notes:
            print(f"  {f.label} [{f.backend}]: {note}")
        for problem in f.problems:
            print(f"  PROBLEM {f.label} [{f.backend}]: {problem}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--count", type=int, default=100_000, help="counterparties in 1C")
    parser.add_argument("--changes", type=int, default=100, help="counterparties edited before the incremental sync")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped",
    )
    parser.add_argument("--profile", metavar="PATH", help="cProfile the incremental sync into PATH.<backend>")
    add_summary_option(parser)
    args = parser.parse_args(argv)
    if args.count < 1 or not 0 < args.changes <= args.count:
        parser.error("--count must be positive and --changes between 1 and --count")
    args.page_size = OnecSettings(name=CONNECTION, url="http://1c.invalid/base", user=USER).page_size
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tally = configure_logs()
    onec = ChildProcess(_onec_process, "the fake 1C")
    _, onec_url = await onec.start()
    figures: list[Figure] = []
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=600)
    basic = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD, encoding="utf-8")}  # as the hub's client
    try:
        seeded = await onec.ask("seed", args.count, args.seed, timeout=600)
        print(f"1C: {seeded['total']:,} counterparties seeded in {seeded['seconds']:.1f} s", flush=True)
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=basic) as http,
            aiohttp.ClientSession(timeout=timeout) as anonymous,
        ):
            control = FakeControl(anonymous, onec_url)

            async def bare_pair() -> None:
                figures.append(await bare_paging(http, onec_url, args.page_size, None))
                figures.append(await bare_paging(http, onec_url, VERSIONS_PAGE, sorted(CHEAP_COLUMNS)))
                for f in figures[-2:]:
                    print(f"{f.label}: {f.seconds:.2f} s, {f.per_second:,.0f} counterparties/s", flush=True)

            await bare_pair()
            for n, backend in enumerate(["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
                try:
                    database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
                    async with database as url:
                        figures += await run_backend(backend, url, onec_url, onec, control, args, args.seed + n)
                except Exception as exc:  # report what was measured, and why the rest was not
                    failures.append(f"{backend}: the figures stopped: {type(exc).__name__}: {exc}")
                    print(failures[-1], flush=True)
            await bare_pair()  # the machine may have changed meanwhile
    finally:
        await onec.stop()
    print_report(figures, args, seeded)
    write_summary(args.summary, summary_rows(figures))
    if tally.seen:
        print("\nwarnings the hub logged during the runs:")
        for text, count in tally.seen.most_common():
            print(f"  {count:>6} x {text}")
    for failure in failures:
        print(failure)
    for backend in ["sqlite", "postgresql"] if args.profile else []:
        if Path(f"{args.profile}.{backend}").exists():
            out = io.StringIO()
            pstats.Stats(f"{args.profile}.{backend}", stream=out).sort_stats("cumulative").print_stats(40)
            print(f"\nprofile of the incremental sync on {backend} (this process's main thread, cumulative):")
            print(out.getvalue())
    failed = failures or any(f.problems or f.verdict is False for f in figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
