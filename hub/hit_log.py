"""Opens and clicks recorded in batches: a tracking request is answered at once, and its hit is
stored with the others of the same fifth of a second in one transaction.

A pixel must come back in a few milliseconds, and a mailing's opens arrive in bursts; one
transaction per hit would make the database the limit.  The cost is stated in the README: if
the hub dies, the hits of the last moments (at most ``FLUSH_EVERY`` plus one transaction)
are lost.  A failing database keeps hits in memory, up to ``MAX_WAITING``, and tries again.
Unsubscribes are not batched: they are stored before they are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from crm_core.campaigns.machines import MachineRules
from crm_core.campaigns.tracking import PendingHit, Tracking
from hub.context import HubContext

log = logging.getLogger("hub.tracking")
FLUSH_EVERY = 0.2  # seconds
MAX_WAITING = 200_000  # hits kept while the database is away; older ones are dropped beyond that


class HitLog:
    def __init__(self, context: HubContext, rules: MachineRules) -> None:
        self.context = context
        self.rules = rules
        self.recorded = 0
        self.dropped = 0
        self._waiting: list[PendingHit] = []
        self._arrived = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def add(self, hit: PendingHit) -> None:
        if len(self._waiting) >= MAX_WAITING:
            self._waiting.pop(0)
            self.dropped += 1
        self._waiting.append(hit)
        self._arrived.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tracking:hits")

    async def stop(self) -> None:
        """Store what is waiting, then stop."""
        self._stopping = True
        self._arrived.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self) -> None:
        hits, self._waiting = self._waiting, []
        if not hits:
            return
        try:
            async with self.context.transaction() as session:
                self.recorded += await Tracking(session, self.rules).record(hits)
        except Exception:
            self._waiting[:0] = hits
            raise

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if not self._stopping:
                await asyncio.sleep(FLUSH_EVERY)
            self._arrived.clear()
            try:
                await self.flush()
            except Exception:
                if self._stopping:
                    log.exception("tracking hits could not be stored at shutdown", extra={"fields": {
                        "lost": len(self._waiting)}})  # fmt: skip
                    return
                log.exception("recording tracking hits failed; they are kept and tried again")
                await asyncio.sleep(1.0)
                self._arrived.set()
            if self._stopping and not self._waiting:  # hits that came during the last flush go too
                return
            if self._waiting:
                self._arrived.set()
