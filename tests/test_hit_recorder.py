"""The tracking recorder process: it stores what it is handed, is replaced when it dies without
storing anything twice, outlives a killed hub only to store the batch it has, and the pixel's
answers wait for it when it falls behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from crm_core.campaigns.machines import MachineRules
from crm_core.campaigns.models import TrackingHit
from crm_core.campaigns.tokens import Purpose, make_token, tracking_key
from crm_core.campaigns.tracking import PendingHit, Tracking, Visit
from crm_core.models import utcnow
from crm_core.outbox import OutboxEvent
from hub.context import HubContext
from hub.hit_log import MAX_LAG, HitLog
from hub.hit_recorder import LocalRecorder, ProcessRecorder
from tests.conftest import open_context
from tests.hub_process import WAIT, Hub, free_port, write_config
from tests.test_tracking import BROWSER, _sent


async def _recipient(hub_context: HubContext) -> int:
    async with hub_context.transaction() as session:
        recipient, _ = await _sent(session)
        return recipient.id


def _opens(recipient_id: int, count: int) -> list[PendingHit]:
    return [PendingHit("open", recipient_id, Visit(utcnow(), user_agent=BROWSER)) for _ in range(count)]


async def _count(hub_context: HubContext, what: Any = TrackingHit) -> int:
    async with hub_context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(what)) or 0)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie has exited; only its parent has not read its status yet
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_the_recorder_process_stores_a_batch_with_its_events(hub_context: HubContext) -> None:
    recipient_id = await _recipient(hub_context)
    woken: list[bool] = []
    recorder = ProcessRecorder(
        hub_context.settings.effective_database_url, MachineRules(), on_stored=lambda: woken.append(True)
    )
    try:
        unknown = PendingHit("open", recipient_id + 1000, Visit(utcnow(), user_agent=BROWSER))
        assert await recorder.record([*_opens(recipient_id, 3), unknown]) == 3  # a recipient gone records nothing
        pid = recorder.pid
        assert pid is not None and pid != os.getpid()
    finally:
        await recorder.close()
    assert _gone(pid)
    assert await _count(hub_context) == 3
    async with hub_context.reading() as session:
        types = (await session.scalars(select(OutboxEvent.type))).all()
    assert [t for t in types if t == "mailing.opened"] == ["mailing.opened"] * 3
    assert woken == [True]  # the webhook dispatcher of the hub's process is told


async def test_a_recorder_killed_between_batches_is_replaced_and_nothing_is_stored_twice(
    hub_context: HubContext,
) -> None:
    recipient_id = await _recipient(hub_context)
    recorder = ProcessRecorder(hub_context.settings.effective_database_url, MachineRules())
    log = HitLog(recorder)
    log.start()
    try:
        for hit in _opens(recipient_id, 5):
            await log.admit(hit)
        await log.flush()
        first = recorder.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for hit in _opens(recipient_id, 7):
            await log.admit(hit)
        deadline = time.monotonic() + WAIT
        while log.recorded < 12 and time.monotonic() < deadline:  # the failed batch is tried again
            await asyncio.sleep(0.05)
        assert recorder.pid not in (None, first)
    finally:
        await log.stop()
    assert log.recorded == 12 and await _count(hub_context) == 12


async def test_answers_wait_for_the_recorder_when_it_falls_behind(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipient_id = await _recipient(hub_context)
    real = Tracking.record
    storing = asyncio.Event()

    async def slow(self: Tracking, hits: Any) -> int:
        storing.set()
        await asyncio.sleep(MAX_LAG * 3)  # a database much slower than the hits coming
        return await real(self, hits)

    monkeypatch.setattr(Tracking, "record", slow)
    log = HitLog(LocalRecorder(hub_context, MachineRules()))
    log.start()
    try:
        await log.admit(_opens(recipient_id, 1)[0])
        await storing.wait()  # the first batch is in hand
        await log.admit(_opens(recipient_id, 1)[0])  # the next one waits in memory, answered at once
        await asyncio.sleep(MAX_LAG * 1.2)
        started = time.monotonic()
        await log.admit(_opens(recipient_id, 1)[0])  # its oldest has waited too long: this one waits
        assert log.recorded >= 1 and time.monotonic() - started > MAX_LAG  # until the batch in hand was stored
    finally:
        await log.stop()
    assert await _count(hub_context) == 3


def _recorders(hub_pid: int) -> list[int]:
    children = Path(f"/proc/{hub_pid}/task/{hub_pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def test_hits_answered_a_second_before_a_kill_9_are_stored_and_the_recorder_exits(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    context = await open_context(database_url, data_dir)
    try:
        recipient_id = await _recipient(context)
        token = make_token(tracking_key(context.signing_key), Purpose.open, recipient_id)
        port = free_port()
        hub = Hub(write_config(tmp_path / "hub.toml", data_dir, database_url, port, ""), port, tmp_path)
        try:
            await hub.start()
            async with aiohttp.ClientSession(headers={"User-Agent": BROWSER}) as http:
                # The recorder starts at the first hit; a loaded machine may take seconds to spawn
                # it, and the promise is about a recorder at work: wait until the first is stored.
                async with http.get(f"{hub.url}/t/o/{token}") as response:
                    assert response.status == 200
                deadline = time.monotonic() + WAIT
                while await _count(context) < 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                for _ in range(199):
                    async with http.get(f"{hub.url}/t/o/{token}") as response:
                        assert response.status == 200
            await asyncio.sleep(1.0)  # README: a crash loses at most about the last second
            assert hub.proc is not None
            recorders = _recorders(hub.proc.pid)
            assert len(recorders) == 1, hub.log()
            hub.kill9()
            deadline = time.monotonic() + WAIT
            while not _gone(recorders[0]) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert _gone(recorders[0]), "the recorder outlived its hub"
        finally:
            hub.stop()
        assert await _count(context) == 200
    finally:
        await context.close()
