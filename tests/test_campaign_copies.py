"""Copies made by worker processes: the same messages as in the hub's own process, a recipient
whose card breaks a template fails alone, a worker that dies is replaced, and a worker whose hub
was killed with ``kill -9`` exits instead of waiting forever."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from crm_core.campaigns.copies import CopyMaker, TrackingUrls
from crm_core.campaigns.templates import Card, Person
from crm_core.mail.events import Address
from hub.campaign_copies import CopyFactory, CopyJob, CopySpec, CopyWorkers

URLS = TrackingUrls("https://hub.example.com", b"k" * 32)
HTML = '<p>{{ client.custom.region.upper() }}, {{ 100 // client.custom.share }}%</p><a href="https://shop.example.com/">М</a>'
SPEC = CopySpec(
    campaign_id=7, version=datetime(2026, 12, 1, tzinfo=UTC), name="Декабрь", subject="Скидки для {{ client.name }}",
    html=HTML, text="", tracked=True, sender=Address("news@shop.example.com", "Магазин"), reply_to=None,
    envelope_from="bounces@shop.example.com", mailto="bounces@shop.example.com", pool="",
)  # fmt: skip


def _jobs(count: int, broken: set[int] = frozenset()) -> list[CopyJob]:  # type: ignore[assignment]
    maker = CopyMaker(SPEC, URLS, tracked=True)
    jobs = []
    for n in range(1, count + 1):
        custom: dict[str, Any] = {} if n in broken else {"region": f"регион {n}", "share": 4}
        card = Card(n, f"Клиент {n}", "", "company", "", "", "", "active", (), custom)
        address = f"c{n}@clients.example"
        jobs.append(CopyJob(n, address, f"<c7.r{n}@shop.example.com>", maker.variables(n, address, card, Person())))
    return jobs


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _essence(raw: bytes) -> tuple[str, str, str, str]:
    message = _parsed(raw)
    html = message.get_body(("html",))
    assert html is not None
    return message["Subject"], message["Message-ID"], message["List-Unsubscribe"], html.get_content()


async def test_worker_processes_make_the_same_messages_as_the_hub_itself() -> None:
    jobs = _jobs(9)
    workers = CopyWorkers(CopyFactory(URLS, None), processes=2)
    try:
        made = await workers.build(SPEC, jobs)
    finally:
        workers.close()
    here = CopyFactory(URLS, None).build(SPEC, jobs)
    assert all(isinstance(m, bytes) for m in made)
    assert [_essence(m) for m in made] == [_essence(m) for m in here]  # type: ignore[arg-type]
    first = _essence(made[0])  # type: ignore[arg-type]
    assert first[0] == "Скидки для Клиент 1" and first[1] == "<c7.r1@shop.example.com>"
    assert "РЕГИОН 1, 25%" in first[3] and "/t/c/" in first[3] and "/t/o/" in first[3]


async def test_a_card_that_breaks_the_template_fails_alone() -> None:
    workers = CopyWorkers(CopyFactory(URLS, None), processes=1)
    try:
        made = await workers.build(SPEC, _jobs(4, broken={2}))
    finally:
        workers.close()
    assert [isinstance(m, bytes) for m in made] == [True, False, True, True]
    assert "html, line 1" in str(made[1]) and "c2@clients.example" in str(made[1])


async def test_a_dead_worker_fails_its_batch_and_the_next_batch_gets_a_new_one() -> None:
    workers = CopyWorkers(CopyFactory(URLS, None), processes=1)
    try:
        await workers.build(SPEC, _jobs(1))
        pool = workers._pool
        assert pool is not None
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await workers.build(SPEC, _jobs(2))
        assert all(isinstance(m, bytes) for m in await workers.build(SPEC, _jobs(3)))
    finally:
        workers.close()


def test_a_worker_whose_hub_was_killed_exits(tmp_path: Path) -> None:
    script = tmp_path / "hub_like.py"
    script.write_text(
        textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_campaign_copies import SPEC, URLS, _jobs
        from hub.campaign_copies import CopyFactory, CopyWorkers

        async def main():
            workers = CopyWorkers(CopyFactory(URLS, None), processes=1)
            await workers.build(SPEC, _jobs(1))
            print(*workers._pool._processes, flush=True)
            await asyncio.sleep(60)

        if __name__ == "__main__":
            asyncio.run(main())
    """)
    )
    hub = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert hub.stdout is not None
        worker = int(hub.stdout.readline())
        os.kill(hub.pid, signal.SIGKILL)
        hub.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its hub by 10 s"
            time.sleep(0.1)
    finally:
        if hub.poll() is None:
            hub.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ", 1)[1].startswith("Z"))  # a zombie is gone
