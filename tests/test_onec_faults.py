"""A 1C sync disturbed at every step ends where an undisturbed one does.

Each test builds the same two worlds (1C and the hub, partly overlapping), runs a first sync,
changes both sides, and runs a second one, with one fault injected into one step: the
``$metadata`` check, the cheap version list, the full pages, the reads by key, the POSTs and
the PATCHes; answered with 500s and 502s, cut before or after 1C committed, or too slow.
Syncs are run again until one succeeds; both sides must then hold exactly what an
undisturbed pair of syncs gives (computed once, on SQLite), with no duplicates anywhere.
The last test kills a real `hub sync 1c` with `kill -9`, twice, at different steps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.onec.counterparties import KIND_NAMES
from crm_core.audit import Actor
from crm_core.clients import ClientBook
from crm_core.models import Client
from crm_core.onec.records import email_key, phone_key
from hub.context import HubContext
from hub.onec import OnecSync
from tests.conftest import open_context
from tests.fake_onec import COUNTERPARTIES, FakeOnec, Fault, generate_counterparties
from tests.hub_process import HUB, WAIT, Hub, free_port, write_config
from tests.onec_world import PASSWORD, USER, hub_with_onec, seed_hub, seed_onec, split_worlds

ONEC, HUB_ONLY, COMMON = 60, 40, 20
EDITS = 8
TESTER = Actor(user_id=None, username="tester")
State = frozenset[tuple[Any, ...]]


@dataclass(frozen=True)
class Disturbance:
    """A fault and the sync (1 or 2) it is injected into."""

    fault: Fault
    sync: int


DISTURBANCES = {
    "metadata 503": Disturbance(Fault("status", method="GET", path="$metadata", status=503, times=4), 1),
    "version list 500": Disturbance(Fault("status", path="$select=Ref_Key,DataVersion,DeletionMark&", times=4), 2),
    "full pages cut": Disturbance(Fault("drop", path="DataVersion,DeletionMark,Parent_Key", times=3), 1),
    "full pages slow": Disturbance(Fault("delay", path="$skip=0", seconds=1.5, times=3), 1),
    "reads by key 502": Disturbance(Fault("status", path="Ref_Key eq guid", status=502, times=4), 2),
    "reads by key slow": Disturbance(Fault("delay", path="Ref_Key eq guid", seconds=1.5, times=3), 2),
    "POST cut before 1C": Disturbance(Fault("drop", method="POST", skip=10, times=3), 1),
    "POST cut after 1C committed": Disturbance(Fault("drop_after_commit", method="POST", skip=10, times=3), 1),
    "POST 500": Disturbance(Fault("status", method="POST", skip=2, times=2), 2),
    "PATCH cut before 1C": Disturbance(Fault("drop", method="PATCH", skip=2, times=3), 2),
    "PATCH cut after 1C committed": Disturbance(Fault("drop_after_commit", method="PATCH", skip=2, times=3), 2),
    "PATCH 500": Disturbance(Fault("status", method="PATCH", skip=1, times=3), 2),
}  # fmt: skip

_reference: dict[str, tuple[State, State]] = {}


# -- the two worlds and their changes ------------------------------------------------------------


async def _first_worlds(fake: FakeOnec, context: HubContext) -> None:
    onec_entries, hub_entries = split_worlds(fake, ONEC, HUB_ONLY, COMMON, seed=11)
    seed_onec(fake, onec_entries)
    await seed_hub(context, hub_entries)


async def _change_both_sides(fake: FakeOnec, context: HubContext) -> None:
    """The same edits in every world: chosen by requisites, never by the random keys."""
    entries = sorted(fake.entries(COUNTERPARTIES), key=lambda e: (e["ИНН"], e["КПП"]))
    for entry in entries[:EDITS]:
        fake.edit(COUNTERPARTIES, entry["Ref_Key"], {"Description": entry["Description"] + " (1C)"})
    fake.edit(COUNTERPARTIES, entries[EDITS]["Ref_Key"], {"DeletionMark": True})
    kinds = {name: fake.kind_key(name) for name in KIND_NAMES.values()}
    taken = {(e["ИНН"], e["КПП"]) for e in entries}
    seed_onec(fake, generate_counterparties(5, 101, kinds, taken))
    async with context.transaction() as session:
        book = ClientBook(session)
        cards = (await session.scalars(select(Client).order_by(Client.inn.desc(), Client.kpp.desc()))).all()
        for i, card in enumerate(cards[:EDITS]):
            changes: dict[str, Any] = {"name": card.name + " (hub)"}
            if i % 2:
                changes["phones"] = [{"number": p.raw} for p in card.phones] + [{"number": f"+7 812 555-10-{i:02d}"}]
            await book.update(card.id, changes, TESTER)
    await seed_hub(context, generate_counterparties(5, 202, kinds, taken))


# -- each side's state, comparable across worlds ---------------------------------------------------


async def _hub_state(context: HubContext) -> State:
    async with context.reading() as session:
        cards = (await session.scalars(select(Client))).all()
        return frozenset(
            (
                c.name, c.inn or "", c.kpp or "", c.deleted_at is not None,
                frozenset(phone_key(p.raw, "RU") for p in c.phones if p.contact_id is None),
                frozenset(e.address_lower for e in c.emails if e.contact_id is None),
            )
            for c in cards
        )  # fmt: skip


def _onec_state(fake: FakeOnec) -> State:
    def of_type(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        return [row for row in entry["КонтактнаяИнформация"] if row["Тип"] == kind]

    return frozenset(
        (
            e["Description"], e["ИНН"], e["КПП"], e["DeletionMark"],
            frozenset(phone_key(r["Представление"], "RU") for r in of_type(e, "Телефон")),
            frozenset(email_key(r["АдресЭП"] or r["Представление"]) for r in of_type(e, "АдресЭлектроннойПочты")),
        )
        for e in fake.entries(COUNTERPARTIES)
        if not e["IsFolder"]
    )  # fmt: skip


def _assert_one_set(hub: State, onec: State) -> None:
    assert hub == onec, f"only in the hub: {sorted(hub - onec)[:3]}; only in 1C: {sorted(onec - hub)[:3]}"
    assert len(hub) == ONEC + HUB_ONLY + 10  # everyone once: no duplicate on either side


async def _undisturbed(tmp_path: Path) -> tuple[State, State]:
    """Both sides after two plain syncs: what every disturbed run must end in."""
    if "state" not in _reference:
        fake = FakeOnec()
        await fake.start()
        try:
            url = f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}"
            async with hub_with_onec(url, tmp_path / "reference", fake) as sync:
                await _first_worlds(fake, sync.context)
                assert (await sync.run("acc", "test")).ok
                await _change_both_sides(fake, sync.context)
                assert (await sync.run("acc", "test")).ok
                _reference["state"] = (await _hub_state(sync.context), _onec_state(fake))
        finally:
            await fake.stop()
    hub, onec = _reference["state"]
    _assert_one_set(hub, onec)
    return hub, onec


# -- in-process faults ------------------------------------------------------------------------------


async def _sync_until_ok(sync: OnecSync, attempts: int = 8) -> int:
    """Runs the sync until one ends with no failure, as the schedule would; the number of runs before."""
    for failed in range(attempts):
        report = await sync.run("acc", "test")
        if report.ok and not report.counts.get("failed"):
            return failed
        assert report.error or report.counts.get("failed"), "a failed run says why"
    raise AssertionError(f"no clean sync in {attempts} runs")


def _bit(fake: FakeOnec, fault: Fault, failed_runs: int) -> bool:
    """Whether the fault reached the hub (a failed run, or requests answered with it)."""
    method = fault.method or "GET"
    hits = [r for r in fake.requests if r.method == method]
    if fault.kind == "status":
        return failed_runs > 0 or any(r.status == fault.status for r in hits)
    if fault.kind in ("drop", "drop_after_commit"):
        return any(r.status == 0 for r in hits)
    return failed_runs > 0 or len(hits) > fault.times  # delays: the slow answers were asked again


@pytest.mark.parametrize("name", list(DISTURBANCES))
async def test_a_disturbed_sync_resumes_and_ends_as_an_undisturbed_one(
    name: str, database_url: str, tmp_path: Path, fake: FakeOnec
) -> None:
    expected = await _undisturbed(tmp_path)
    disturbance = DISTURBANCES[name]
    async with hub_with_onec(database_url, tmp_path / "data", fake, timeout_seconds=1.0, retries=2) as sync:
        await _first_worlds(fake, sync.context)
        failed = 0
        for number in (1, 2):
            if number == 2:
                await _change_both_sides(fake, sync.context)
            if disturbance.sync == number:
                fake.inject(disturbance.fault)
            failed += await _sync_until_ok(sync)
        assert _bit(fake, disturbance.fault, failed), f"the fault {name!r} never reached the hub"
        fake.clear_faults()
        assert set((await sync.run("acc", "test")).counts) <= {"unchanged"}  # settled: nothing left to do
        hub, onec = await _hub_state(sync.context), _onec_state(fake)
    _assert_one_set(hub, onec)
    assert (hub, onec) == expected


# -- kill -9 ------------------------------------------------------------------------------------------


def _sections(fake: FakeOnec) -> str:
    return f"""
[[onec]]
name = "acc"
url = "{fake.url.split("/odata/")[0]}"
user = "{USER}"
password = "{PASSWORD}"
interval_minutes = 0
timeout_seconds = 2.0
retries = 2
"""


async def _kill_when(what: str, proc: asyncio.subprocess.Process, reached: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not await reached():
        assert proc.returncode is None, f"`hub sync 1c` ended before {what}: {proc.returncode}"
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.005)
    proc.kill()
    assert await proc.wait() == -9


async def test_a_sync_killed_twice_with_kill_9_resumes_without_duplicates(
    hub_database_url: str, tmp_path: Path, fake: FakeOnec
) -> None:
    expected = await _undisturbed(tmp_path)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = hub_database_url or f"sqlite+aiosqlite:///{data_dir / 'hub.db'}"
    config = write_config(tmp_path / "hub.toml", data_dir, url, free_port(), _sections(fake))
    cli = Hub(config, 0, tmp_path)
    context = await open_context(url, data_dir)
    try:
        await _first_worlds(fake, context)
    finally:
        await context.close()
    await cli.cli("sync", "1c")

    context = await open_context(url, data_dir)
    try:
        await _change_both_sides(fake, context)
        cards = await _count_cards(context)
    finally:
        await context.close()
    fake.inject(Fault("delay", method="POST", seconds=0.05, times=1000))  # creations slow enough to be cut

    async def run_and_kill(what: str, reached: Any) -> None:
        proc = await asyncio.create_subprocess_exec(
            *HUB, "sync", "1c", "--config", str(config), env=cli.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await _kill_when(what, proc, reached)

    async def applying_1c_changes() -> bool:  # the hub has written some of 1C's news
        return any(r.method == "GET" and "Ref_Key eq guid" in r.query.get("$filter", "") for r in fake.requests)

    async def creating_in_1c() -> bool:  # two of the five new cards are in 1C, the rest in flight
        return sum(1 for r in fake.writes() if r.method == "POST") >= 2

    await run_and_kill("1C's changes read", applying_1c_changes)
    await run_and_kill("creating in 1C", creating_in_1c)
    fake.clear_faults()
    await cli.cli("sync", "1c")
    posts_before = sum(1 for r in fake.writes() if r.method == "POST")
    await cli.cli("sync", "1c")
    assert sum(1 for r in fake.writes() if r.method == "POST") == posts_before  # settled

    context = await open_context(url, data_dir)
    try:
        hub = await _hub_state(context)
        assert await _count_cards(context) == cards + 5  # 1C's five new ones, once each
    finally:
        await context.close()
    onec = _onec_state(fake)
    _assert_one_set(hub, onec)
    assert (hub, onec) == expected


async def _count_cards(context: HubContext) -> int:
    async with context.reading() as session:
        return len((await session.scalars(select(Client.id))).all())
