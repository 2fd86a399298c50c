"""How fast is "who is calling?" with a million stored numbers?

Every ringing call asks ``ClientBook.find_by_phone`` before the operator's browser can pop
a card, so its latency is on the path of every call.  The targets: p99 under 2 ms, and
no more than 3x a bare indexed ``SELECT ... WHERE e164 = :e`` through the same engine, so
that normalising, the suffix match, the joins and the ORM cost at most a small multiple
of the cheapest lookup the database can do.

The database is made the way production makes it (Alembic migrations, ``make_engine``),
filled with realistic Russian numbers (mobiles, Moscow and regional landlines, numbers
typed by people, legacy entries no parser accepts), and both lookups are timed in the
same run, alternating call by call, so that a noisy neighbour hurts both alike.

    .venv/bin/python bench/lookup.py --rows 100000 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository's packages (bench) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from crm_core import phones
from crm_core.clients import ClientBook, Lookup, MatchRules, search_text
from crm_core.db import make_engine, make_sessionmaker
from crm_core.migrate import upgrade

TARGET_P99_MS = 2.0
TARGET_RATIO = 3.0
TARGET = f"find_by_phone p99 < {TARGET_P99_MS} ms and within {TARGET_RATIO:.0f}x of the bare query"
RULES = MatchRules(region="RU", suffix_digits=10)
BARE_QUERY = text("SELECT client_id FROM phones WHERE e164 = :e")

# Where the numbers come from: (three-digit code, weight).  Mobiles dominate a call
# centre's book; Moscow and a few big regional cities supply the office lines.
MOBILE_CODES = [(c, 1.0) for c in range(900, 1000)]
LANDLINE_CODES = [
    (495, 30.0),
    (499, 15.0),
    (812, 10.0),
    (343, 3.0),
    (383, 3.0),
    (846, 2.0),
    (861, 2.0),
    (863, 2.0),
    (831, 2.0),
    (843, 2.0),
    (473, 1.0),
    (351, 1.0),
]
MOBILE_SHARE = 0.7
SHARED_SHARE = 0.01  # an office switchboard written on several cards
LEGACY_SHARE = 0.06  # imported as typed, no E.164: only the suffix match finds these
PROBE_KINDS = ("exact", "suffix", "none")  # what a probe should find, and how often
PROBE_WEIGHTS = (0.45, 0.20, 0.35)

COMPANY_WORDS = [
    "Ромашка",
    "Север",
    "Вектор",
    "Альянс",
    "Гранит",
    "Меридиан",
    "Техно",
    "Волга",
    "Урал",
    "Сибирь",
    "Феникс",
    "Капитал",
    "Стройинвест",
    "Логистик",
    "Агро",
    "Профи",
]
FORMS = ["ООО", "АО", "ИП", "ПАО", "ЗАО"]
FIRST = ["Иван", "Пётр", "Анна", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "Наталья"]
MIDDLE = ["Иванович", "Петровна", "Сергеевич", "Алексеевна", "Дмитриевич", "Олеговна"]
LAST = ["Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Новикова"]
LABELS = ["", "", "mobile", "work", "office", "reception"]


# -- the data set -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dataset:
    """Rows ready for bulk insert, in column order, plus the numbers the probes draw on."""

    clients: list[tuple[object, ...]]
    contacts: list[tuple[object, ...]]
    phones: list[tuple[object, ...]]
    exact_numbers: list[str]  # national 10 digits stored with an E.164 form
    legacy_numbers: list[str]  # national 10 digits stored only as typed, without E.164
    taken: set[str]


CLIENT_COLUMNS = (
    "id",
    "kind",
    "name",
    "full_name",
    "search_name",
    "inn",
    "addresses",
    "status",
    "custom_fields",
    "created_at",
    "updated_at",
    "version",
)
CONTACT_COLUMNS = ("id", "client_id", "first_name", "middle_name", "last_name", "position", "note")
PHONE_COLUMNS = ("id", "client_id", "contact_id", "raw", "e164", "extension", "digits_rev", "label")


def _pick_code(rng: random.Random) -> int:
    codes = MOBILE_CODES if rng.random() < MOBILE_SHARE else LANDLINE_CODES
    return rng.choices([c for c, _ in codes], weights=[w for _, w in codes])[0]


def _fresh_national(rng: random.Random, taken: set[str]) -> str:
    """Ten national digits (code + seven) not used before in this data set."""
    while True:
        number = f"{_pick_code(rng)}{rng.randrange(10_000_000):07d}"
        if number not in taken:
            taken.add(number)
            return number


def human(national: str, style: int) -> str:
    """A number as people write it: 8 (495) 123-45-67, +7 (495) 123-45-67, +74951234567, 4951234567."""
    code, a, b, c = national[:3], national[3:6], national[6:8], national[8:]
    return [f"8 ({code}) {a}-{b}-{c}", f"+7 ({code}) {a}-{b}-{c}", f"+7{national}", national][style % 4]


StoredPhone = tuple[str, str | None, str | None, str]  # raw, e164, extension, digits
Outcomes = Counter[tuple[str, str]]  # (expected match, match found) -> lookups


def _stored(national: str, rng: random.Random) -> StoredPhone:
    """(raw, e164, extension, digits) as ClientBook would store a typed number."""
    roll = rng.random()
    if roll < 0.6:
        raw, extension = f"+7{national}", None
    elif roll < 0.95:
        raw, extension = human(national, rng.randrange(2)), None
    else:
        extension = str(rng.randrange(100, 1000))
        raw = f"{human(national, 0)} доб. {extension}"
    return raw, f"+7{national}", extension, f"7{national}"


def _legacy(national: str, rng: random.Random) -> StoredPhone:
    """A number kept exactly as typed: libphonenumber refuses it, so there is no E.164."""
    code, rest = national[:3], national[3:]
    raw = [
        f"{code}-{rest[:3]}-{rest[3:5]}-{rest[5:]} моб",
        f"тел 8{code} {rest} ({rng.choice(FIRST)})",
        f"007 {code} {rest[:3]} {rest[3:5]} {rest[5:]}",
    ][rng.randrange(3)]
    return raw, None, None, "".join(ch for ch in raw if ch.isdigit())


def _next_phone(rng: random.Random, exact: list[str], legacy: list[str], taken: set[str]) -> StoredPhone:
    """A new number (noted in ``exact`` or ``legacy``), or now and then a shared one."""
    if exact and rng.random() < SHARED_SHARE:
        return _stored(rng.choice(exact), rng)
    national = _fresh_national(rng, taken)
    if rng.random() < LEGACY_SHARE:
        legacy.append(national)
        return _legacy(national, rng)
    exact.append(national)
    return _stored(national, rng)


def make_dataset(rows: int, rng: random.Random) -> Dataset:
    """About two numbers per client, half the clients with a contact person who owns one."""
    now = datetime.now(UTC)
    clients: list[tuple[object, ...]] = []
    contacts: list[tuple[object, ...]] = []
    phone_rows: list[tuple[object, ...]] = []
    exact: list[str] = []
    legacy: list[str] = []
    taken: set[str] = set()
    client_id = 0
    while len(phone_rows) < rows:
        client_id += 1
        name = f"{rng.choice(FORMS)} «{rng.choice(COMPANY_WORDS)} {client_id}»"
        clients.append(
            (
                client_id,
                "legal_entity",
                name,
                "",
                search_text(name, ""),
                f"{rng.randrange(10**9, 10**10)}",
                "[]",
                "active",
                "{}",
                now,
                now,
                1,
            )
        )
        contact_id = None
        if client_id % 2 == 0:
            contact_id = len(contacts) + 1
            contacts.append(
                (contact_id, client_id, rng.choice(FIRST), rng.choice(MIDDLE), rng.choice(LAST), "менеджер", "")
            )
        for n in range(min(rng.choice((1, 2, 2, 3)), rows - len(phone_rows))):
            raw, e164, ext, digits = _next_phone(rng, exact, legacy, taken)
            owner = contact_id if n == 1 else None
            phone_rows.append((len(phone_rows) + 1, client_id, owner, raw, e164, ext, digits[::-1], rng.choice(LABELS)))
    _check_against_normaliser(phone_rows, rng)
    return Dataset(clients, contacts, phone_rows, exact, legacy, taken)


def _check_against_normaliser(phone_rows: Sequence[tuple[object, ...]], rng: random.Random) -> None:
    """The rows are built without libphonenumber (a million parses take half a minute),
    so a sample is checked against ``phones.normalise`` to keep them honest."""
    for row in rng.sample(list(phone_rows), min(3000, len(phone_rows))):
        raw, e164, extension, digits_rev = row[3], row[4], row[5], row[6]
        key = phones.normalise(str(raw), RULES.region)
        if (key.e164, key.extension, key.digits_reversed) != (e164, extension, digits_rev):
            raise RuntimeError(f"generated row disagrees with phones.normalise: {row!r} vs {key!r}")


# -- the probes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One incoming number: as the PBX or an operator typed it, and what it should find."""

    typed: str
    e164: str
    expect: str  # "exact", "suffix" or "none"


def make_probes(data: Dataset, count: int, rng: random.Random) -> list[Probe]:
    probes = []
    for i in range(count):
        expect = rng.choices(PROBE_KINDS, weights=PROBE_WEIGHTS)[0]
        if expect == "exact":
            national = rng.choice(data.exact_numbers)
        elif expect == "suffix":
            national = rng.choice(data.legacy_numbers)
        else:
            national = _fresh_national(rng, data.taken)
        style = (0, 2, 3)[i % 3]  # 8 (495) ..., +7..., ten digits
        probes.append(Probe(human(national, style), f"+7{national}", expect))
    return probes


# -- the databases ------------------------------------------------------------------


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="hub_bench_") as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"


@asynccontextmanager
async def postgresql_database(admin_dsn: str) -> AsyncIterator[str]:
    """A throw-away database, dropped afterwards even when the run fails."""
    name = f"hub_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield (
            make_url(admin_dsn)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _sqlite_time(moment: object) -> object:
    # SQLAlchemy's SQLite DateTime keeps UTC as naive ISO text; store what it would.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(moment, datetime) else moment


def _batches(rows: Sequence[tuple[object, ...]], size: int) -> Iterator[Sequence[tuple[object, ...]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def load_sqlite_sync(path: str, data: Dataset) -> None:
    """One transaction, executemany in 50k-row batches; plain sqlite3, no ORM on the way."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN")
        clients = [tuple(_sqlite_time(v) for v in row) for row in data.clients]
        for table, columns, rows in (
            ("clients", CLIENT_COLUMNS, clients),
            ("contacts", CONTACT_COLUMNS, data.contacts),
            ("phones", PHONE_COLUMNS, data.phones),
        ):
            for batch in _batches(rows, 50_000):
                conn.executemany(_insert_sql(table, columns), batch)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def load_sqlite(url: str, data: Dataset) -> None:
    await asyncio.to_thread(load_sqlite_sync, make_url(url).database or "", data)


async def load_postgresql(url: str, data: Dataset) -> None:
    """COPY in binary, then VACUUM ANALYZE so autovacuum does not wake up mid-measurement."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for table, columns, rows in (
            ("clients", CLIENT_COLUMNS, data.clients),
            ("contacts", CONTACT_COLUMNS, data.contacts),
            ("phones", PHONE_COLUMNS, data.phones),
        ):
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


LOADERS: dict[str, Callable[[str, Dataset], Awaitable[None]]] = {
    "sqlite": load_sqlite,
    "postgresql": load_postgresql,
}


# -- the measurement ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    mode: str
    rows: int
    load_seconds: float
    find_ns: list[int]
    bare_ns: list[int]
    outcomes: Outcomes
    load_average: float  # the machine's 1-minute load when the measurement ended

    def find_ms(self, q: float) -> float:
        return percentile_ms(self.find_ns, q)

    def bare_ms(self, q: float) -> float:
        return percentile_ms(self.bare_ns, q)

    def times_bare(self, q: float) -> float:
        """find_by_phone's percentile over the bare query's."""
        return self.find_ms(q) / self.bare_ms(q)


@dataclass
class Samples:
    mode: str
    find_ns: list[int] = field(default_factory=list)
    bare_ns: list[int] = field(default_factory=list)
    outcomes: Outcomes = field(default_factory=Counter)

    def add(self, keep: bool, probe: Probe, find: tuple[int, object], bare: tuple[int, object]) -> None:
        if keep:
            self.find_ns.append(find[0])
            self.bare_ns.append(bare[0])
            found = find[1]
            assert isinstance(found, Lookup)
            self.outcomes[(probe.expect, found.match)] += 1


async def _timed(call: Callable[[], Awaitable[object]]) -> tuple[int, object]:
    start = time.perf_counter_ns()
    value = await call()
    return time.perf_counter_ns() - start, value


async def measure_open(engine: AsyncEngine, probes: Sequence[Probe], warmup: int) -> Samples:
    """Inside a unit of work: both lookups on one session's connection and transaction.

    This is the lookup itself, as a connector's event handler runs it in the transaction
    it already holds.
    """
    samples = Samples("in a transaction")
    async with make_sessionmaker(engine)() as session:
        conn = await session.connection()
        book = ClientBook(session, RULES)
        for i, probe in enumerate(probes):
            find = _timed(lambda p=probe: book.find_by_phone(p.typed))
            bare = _timed(lambda p=probe: _bare(conn, p))
            samples.add(i >= warmup, probe, *await _alternate(i, find, bare))
    return samples


async def measure_pooled(engine: AsyncEngine, probes: Sequence[Probe], warmup: int) -> Samples:
    """Each call checks a connection out of the pool (with its pre-ping) and back in."""
    samples = Samples("pool checkout per call")
    sessions = make_sessionmaker(engine)

    async def find(probe: Probe) -> object:
        async with sessions() as session:
            return await ClientBook(session, RULES).find_by_phone(probe.typed)

    async def bare(probe: Probe) -> object:
        async with engine.connect() as conn:
            return await _bare(conn, probe)

    for i, probe in enumerate(probes):
        samples.add(
            i >= warmup, probe, *await _alternate(i, _timed(lambda p=probe: find(p)), _timed(lambda p=probe: bare(p)))
        )
    return samples


async def _bare(conn: AsyncConnection, probe: Probe) -> object:
    return (await conn.execute(BARE_QUERY, {"e": probe.e164})).all()


async def _alternate(
    i: int, find: Awaitable[tuple[int, object]], bare: Awaitable[tuple[int, object]]
) -> tuple[tuple[int, object], tuple[int, object]]:
    """Swap which of the two goes first on every call, so neither always runs warm."""
    if i % 2:
        bare_result = await bare
        return await find, bare_result
    find_result = await find
    return find_result, await bare


async def run_backend(backend: str, url: str, data: Dataset, probes: Sequence[Probe], warmup: int) -> list[Result]:
    await upgrade(url)
    started = time.perf_counter()
    await LOADERS[backend](url, data)
    load_seconds = time.perf_counter() - started
    engine = make_engine(url)
    results = []
    try:
        for measure in (measure_open, measure_pooled):
            samples = await measure(engine, probes, warmup)
            results.append(
                Result(
                    backend,
                    samples.mode,
                    len(data.phones),
                    load_seconds,
                    samples.find_ns,
                    samples.bare_ns,
                    samples.outcomes,
                    os.getloadavg()[0],
                )
            )
    finally:
        await engine.dispose()
    return results


# -- the report ---------------------------------------------------------------------


def percentile_ms(samples: Sequence[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1] / 1e6


def verdict(result: Result) -> tuple[bool, list[str]]:
    misses = []
    if result.find_ms(99) >= TARGET_P99_MS:
        misses.append(f"find_by_phone p99 {result.find_ms(99):.3f} ms is not under {TARGET_P99_MS} ms")
    for label, ratio in (("p50", result.times_bare(50)), ("p99", result.times_bare(99))):
        if ratio > TARGET_RATIO:
            misses.append(f"find_by_phone {label} is {ratio:.1f}x the bare query (target {TARGET_RATIO:.0f}x)")
    wrong = sum(n for (expect, got), n in result.outcomes.items() if expect != got)
    if wrong:
        misses.append(f"{wrong} lookups did not return the expected match kind")
    return not misses, misses


def summary_rows(results: Sequence[Result]) -> list[Row]:
    """Each measurement's bare query p99 (the baseline), and find_by_phone's p99 against it and the target."""
    rows = []
    for r in results:
        bare = f"bare SELECT by e164, {r.mode}"
        rows.append(Row("lookup", bare, r.backend, r.bare_ms(99), "ms p99"))
        rows.append(Row("lookup", f"find_by_phone, {r.mode}", r.backend, r.find_ms(99), "ms p99", r.bare_ms(99), bare,
                        TARGET, verdict(r)[0]))  # fmt: skip
    return rows


def print_report(results: Sequence[Result], queries: int, warmup: int) -> None:
    header = (
        f"{'backend':<11}{'lookups':<24}{'rows':>9}{'load s':>8}{'find p50':>10}{'find p99':>10}"
        f"{'bare p50':>10}{'bare p99':>10}{'x p50':>7}{'x p99':>7}{'load1':>7}  verdict"
    )
    print(
        f"\ncores: {os.cpu_count()}   queries: {queries} timed per lookup (+{warmup} warm-up), "
        f"interleaved; latencies in ms"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ok, _ = verdict(r)
        print(
            f"{r.backend:<11}{r.mode:<24}{r.rows:>9}{r.load_seconds:>8.1f}{r.find_ms(50):>10.3f}{r.find_ms(99):>10.3f}"
            f"{r.bare_ms(50):>10.3f}{r.bare_ms(99):>10.3f}{r.times_bare(50):>7.1f}{r.times_bare(99):>7.1f}"
            f"{r.load_average:>7.1f}  {'PASS' if ok else 'FAIL'}"
        )
    print(
        f"load1: the 1-minute load average as measuring ended; above {os.cpu_count()} the CPUs were "
        "shared with other work and the tails say as much about that as about the code"
    )
    print(f"\ntargets: {TARGET}")
    for r in results:
        ok, misses = verdict(r)
        kinds = ", ".join(f"{e}->{g}: {n}" for (e, g), n in sorted(r.outcomes.items()))
        print(f"{r.backend}, {r.mode}: {'PASS' if ok else 'FAIL'}; outcomes {kinds}")
        for miss in misses:
            print(f"  - {miss}")


# -- the command --------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="phone rows to load")
    parser.add_argument("--queries", type=int, default=5000, help="timed lookups of each kind")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped",
    )
    parser.add_argument("--seed", type=int, default=1)
    add_summary_option(parser)
    args = parser.parse_args(argv)
    if args.rows < 100 or args.queries < 1:
        parser.error("--rows must be at least 100 and --queries at least 1")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    data = make_dataset(args.rows, rng)
    warmup = min(1000, max(100, args.queries // 5))
    probes = make_probes(data, args.queries + warmup, rng)
    # The generated rows stay alive for the next backend; frozen, the collector no longer
    # walks them (a full pass over them takes a fifth of a second, which the service never pays).
    gc.freeze()
    print(
        f"generated {len(data.phones)} phones, {len(data.clients)} clients, {len(data.contacts)} contacts "
        f"in {time.perf_counter() - started:.1f} s"
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
        async with database as url:
            results.extend(await run_backend(backend, url, data, probes, warmup))
            print(f"{backend}: loaded in {results[-1].load_seconds:.1f} s, measured", flush=True)
    print_report(results, args.queries, warmup)
    write_summary(args.summary, summary_rows(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
