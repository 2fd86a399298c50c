"""The jobs of this node that only one node may do at a time, started while it holds their
lease and stopped when it loses it (``crm_core.leases``).

Every ``RENEW_EVERY`` seconds the keeper claims all its jobs' leases in one transaction: it
renews those it holds and takes those whose holder stopped renewing ``TTL`` seconds ago, so
another node takes over a dead node's jobs within ``TTL + RENEW_EVERY`` (8 s).  A node that
cannot reach the database stops its jobs before its leases can run out, so two nodes never do
one job; a node that stops gives its leases back at once.  On SQLite (one node) every lease is
this node's at the first round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from crm_core.leases import Leases
from hub.context import HubContext

log = logging.getLogger("hub.leases")
RENEW_EVERY = 2.0  # seconds between claims
TTL = 6.0  # seconds a lease lasts unless renewed
MARGIN = 1.0  # a node that could not renew stops its jobs this long before its leases run out


@dataclass
class Job:
    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    running: bool = False


def node_name() -> str:
    """This process among the hub's nodes: readable in the lease table and in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    def __init__(self, context: HubContext, node: str | None = None) -> None:
        self.context = context
        self.node = node or node_name()
        self._jobs: dict[str, Job] = {}
        self._valid_until = 0.0  # monotonic: until when the last successful claim holds
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._stopping = False

    def add(self, name: str, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        """A job to run while this node holds lease ``name``; claimed at the next round."""
        self._jobs[name] = Job(name, start, stop)
        self._changed.set()

    @property
    def jobs(self) -> list[str]:
        return sorted(self._jobs)

    def holds(self, name: str) -> bool:
        job = self._jobs.get(name)
        return job is not None and job.running

    async def start(self) -> None:
        """The first round now, so that a single node's jobs start with it; then one every
        ``RENEW_EVERY`` seconds."""
        await self._round()
        self._task = asyncio.create_task(self._run(), name="leases")

    async def stop(self) -> None:
        """Stop every job (all at once, while the renewals go on: draining one must not let
        another's lease run out), then stop renewing and give the leases back."""
        self._stopping = True
        held = [job for job in self._jobs.values() if job.running]
        await asyncio.gather(*(self._stop_job(job) for job in held))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            async with self.context.transaction() as session:
                await Leases(session).release([job.name for job in held], self.node)
        except Exception:
            log.exception("leases not given back; they expire by themselves", extra={"fields": {"node": self.node}})

    async def _run(self) -> None:
        while True:
            wait = RENEW_EVERY
            if any(job.running for job in self._jobs.values()):  # wake in time to stop them, if need be
                wait = min(wait, max(0.05, self._valid_until - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
            self._changed.clear()
            await self._expire()
            await self._round()

    async def _expire(self) -> None:
        """No claim succeeded for ``TTL - MARGIN``: the leases may be another node's soon."""
        if time.monotonic() < self._valid_until:
            return
        running = [job for job in self._jobs.values() if job.running]
        for job in running:
            log.error("leases not renewed in time; job stopping", extra={"fields": {"lease": job.name}})
        await asyncio.gather(*(self._stop_job(job) for job in running))

    async def _round(self) -> None:
        asked = time.monotonic()
        limit = RENEW_EVERY  # a claim that hangs must not outlast what this node still holds
        if any(job.running for job in self._jobs.values()):
            limit = max(0.05, min(limit, self._valid_until - asked))
        try:
            async with asyncio.timeout(limit), self.context.transaction() as session:
                held = await Leases(session).claim(list(self._jobs), self.node, TTL)
        except Exception:
            log.exception("leases could not be renewed", extra={"fields": {"node": self.node}})
            await self._expire()
            return
        self._valid_until = asked + TTL - MARGIN
        lost = [job for job in self._jobs.values() if job.name not in held and job.running]
        for job in lost:
            log.warning("lease lost to another node; job stopping", extra={"fields": {"lease": job.name}})
        await asyncio.gather(*(self._stop_job(job) for job in lost))
        for job in list(self._jobs.values()):
            if job.name in held and not job.running and not self._stopping:
                log.info("lease taken; job starting", extra={"fields": {"lease": job.name, "node": self.node}})
                job.running = True
                try:
                    await job.start()
                except Exception:
                    log.exception("job did not start; tried again next round", extra={"fields": {"lease": job.name}})
                    job.running = False

    async def _stop_job(self, job: Job) -> None:
        job.running = False
        try:
            await job.stop()
        except Exception:
            log.exception("job did not stop cleanly", extra={"fields": {"lease": job.name}})
