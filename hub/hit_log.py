"""Opens and clicks recorded in batches: a tracking request is answered at once, and its hit is
handed, with the others of the same tenth of a second, to a recorder that stores the batch in
one transaction (``hub.hit_recorder``: by default a process of its own).

A pixel must come back in a few milliseconds, and a mailing's opens arrive in bursts; one
transaction per hit would make the database the limit.  The cost is stated in the README: if
the hub dies, the hits not yet handed over are lost, and ``admit`` keeps those to about the
last second: when the oldest of them has waited ``MAX_LAG`` (the recorder is behind), new
requests wait for the batch in hand to be stored before they are answered.  A failing database
is the exception: hits are then kept in memory, up to ``MAX_WAITING``, tried again every
second, and requests are still answered at once.  Unsubscribes are not batched: they are
stored before they are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from crm_core.campaigns.tracking import PendingHit
from hub.hit_recorder import HitRecorder

log = logging.getLogger("hub.tracking")
FLUSH_EVERY = 0.1  # seconds a hit may wait for others before its batch is handed over
MAX_LAG = 0.3  # seconds the oldest waiting hit may wait before new requests wait for the recorder
STALLED = 1.0  # seconds an answer waits for the recorder at most: then it is answered anyway
MAX_WAITING = 200_000  # hits kept while the database is away; older ones are dropped beyond that


class HitLog:
    def __init__(self, recorder: HitRecorder) -> None:
        self.recorder = recorder
        self.recorded = 0
        self.dropped = 0
        self._waiting: list[PendingHit] = []
        self._since = 0.0  # when the oldest waiting hit arrived (monotonic)
        self._arrived = asyncio.Event()
        self._stored = asyncio.Event()  # set (and replaced) each time a batch is stored
        self._failing = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def admit(self, hit: PendingHit) -> None:
        """Take a hit; returns at once, unless the recorder has fallen behind (see the module)."""
        while self._waiting and not self._failing and time.monotonic() - self._since > MAX_LAG:
            try:
                await asyncio.wait_for(self._stored.wait(), STALLED)
            except TimeoutError:  # a database that hangs rather than fails: answer, as when it is away
                break
        self.add(hit)

    def add(self, hit: PendingHit) -> None:
        if not self._waiting:
            self._since = time.monotonic()
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
        await self.recorder.close()

    async def flush(self) -> None:
        hits, self._waiting = self._waiting, []
        if not hits:
            return
        try:
            self.recorded += await self.recorder.record(hits)
        except Exception:
            self._waiting[:0] = hits
            self._since = time.monotonic()
            raise
        finally:
            self._stored.set()
            self._stored = asyncio.Event()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if not self._stopping:  # the batch is handed over when its oldest hit has waited FLUSH_EVERY
                await asyncio.sleep(max(0.0, self._since + FLUSH_EVERY - time.monotonic()))
            self._arrived.clear()
            try:
                await self.flush()
                self._failing = False
            except Exception:
                if self._stopping:
                    log.exception("tracking hits could not be stored at shutdown", extra={"fields": {
                        "lost": len(self._waiting)}})  # fmt: skip
                    return
                self._failing = True
                log.exception("recording tracking hits failed; they are kept and tried again")
                await asyncio.sleep(1.0)
                self._arrived.set()
            if self._stopping and not self._waiting:  # hits that came during the last flush go too
                return
            if self._waiting:
                self._arrived.set()
