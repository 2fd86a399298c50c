"""Leases: one holder at a time, taken over when the holder stops renewing, given back on stop;
the keeper starts a node's jobs while it holds their leases and stops them before they could
be another node's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from crm_core.leases import Leases
from hub import leases as keeper_module
from hub.context import HubContext
from hub.leases import RENEW_EVERY, TTL, LeaseKeeper


async def _claim(
    context: HubContext, holder: str, ttl: float = 5.0, names: tuple[str, ...] = ("ami:office",)
) -> set[str]:
    async with context.transaction() as session:
        return await Leases(session).claim(names, holder, ttl)


async def test_one_holder_at_a_time_and_another_takes_an_expired_lease(hub_context: HubContext) -> None:
    assert await _claim(hub_context, "a", names=("ami:office", "imap:sales")) == {"ami:office", "imap:sales"}
    assert await _claim(hub_context, "b", names=("ami:office", "onec:acc")) == {"onec:acc"}
    async with hub_context.reading() as session:
        taken = (await Leases(session).holders())["ami:office"]
    assert await _claim(hub_context, "a", ttl=0.3) == {"ami:office"}  # renewed, for less time
    async with hub_context.reading() as session:
        renewed = (await Leases(session).holders())["ami:office"]
    assert renewed[0] == "a" and renewed[1] < taken[1]
    await asyncio.sleep(0.4)
    assert await _claim(hub_context, "b") == {"ami:office"}  # a stopped renewing
    assert await _claim(hub_context, "a") == set()
    async with hub_context.transaction() as session:
        await Leases(session).release(["ami:office"], "a")  # not a's to give back: nothing happens
        assert (await Leases(session).holders("ami:"))["ami:office"][0] == "b"
        await Leases(session).release(["ami:office"], "b")
    assert await _claim(hub_context, "a") == {"ami:office"}  # free at once, no expiry to wait for


class _Jobs:
    def __init__(self) -> None:
        self.running: dict[str, bool] = {}
        self.started_at: dict[str, float] = {}

    def keeper(self, context: HubContext, node: str) -> LeaseKeeper:
        keeper = LeaseKeeper(context, node)

        async def start() -> None:
            self.running[node] = True
            self.started_at[node] = time.monotonic()

        async def stop() -> None:
            self.running[node] = False

        keeper.add("ami:office", start, stop)
        return keeper


async def test_another_node_takes_over_within_ten_seconds_of_the_holders_death(hub_context: HubContext) -> None:
    jobs = _Jobs()
    first, second = jobs.keeper(hub_context, "first"), jobs.keeper(hub_context, "second")
    await first.start()
    await second.start()
    try:
        assert jobs.running == {"first": True} and first.holds("ami:office") and not second.holds("ami:office")
        await asyncio.sleep(RENEW_EVERY * 2)  # renewals keep it first's
        assert jobs.running == {"first": True}
        assert first._task is not None
        first._task.cancel()  # first dies: it renews nothing and gives nothing back
        died = time.monotonic()
        while not jobs.running.get("second") and time.monotonic() - died < 15:
            await asyncio.sleep(0.1)
        taken_after = jobs.started_at["second"] - died
        assert taken_after <= TTL + RENEW_EVERY + 0.5 < 10, f"taken over after {taken_after:.1f} s"
    finally:
        await second.stop()
        await first.stop()
    assert jobs.running == {"first": False, "second": False}
    assert await _claim(hub_context, "third") == {"ami:office"}  # stopping gave it back


async def test_a_node_that_cannot_renew_stops_its_jobs_before_its_leases_run_out(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = _Jobs()
    keeper = jobs.keeper(hub_context, "alone")
    await keeper.start()
    claimed = time.monotonic()
    try:
        assert jobs.running == {"alone": True}

        async def unreachable(*args: Any, **kwargs: Any) -> set[str]:
            raise ConnectionError("the database went away")

        monkeypatch.setattr(keeper_module.Leases, "claim", unreachable)
        while jobs.running["alone"] and time.monotonic() - claimed < TTL * 2:
            await asyncio.sleep(0.05)
        stopped_after = time.monotonic() - claimed
        assert not jobs.running["alone"] and stopped_after < TTL, f"stopped after {stopped_after:.1f} s"
        monkeypatch.undo()
        while not jobs.running["alone"] and time.monotonic() - claimed < TTL * 3:
            await asyncio.sleep(0.05)
        assert jobs.running["alone"]  # back with the database
    finally:
        await keeper.stop()
