"""Where a batch of opens and clicks is written: in the hub's own process, or in a recorder
process beside it.

Storing a hit costs several times what answering its request does (the recipient read, the hit
row, the ``mailing.opened`` event, the commit), and Python runs one thread at a time: in the
hub's process that work takes the time the pixel requests need.  The recorder process does it
on another core; the hub hands it each batch over a pipe as plain tuples and waits for its
answer before it counts the batch as stored.

Lifetimes: the process is started at the first batch (a hub that serves no pixel starts none),
and started again at the next batch if it died; the batch it had is given back to the caller,
which tries again.  A recorder whose hub was killed reads the end of the pipe, stores the batch
it already has, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from crm_core.campaigns.machines import MachineRules
from crm_core.campaigns.tracking import PendingHit, Tracking, Visit
from crm_core.db import make_engine, make_sessionmaker
from hub.context import HubContext
from hub.logs import configure as configure_logs

log = logging.getLogger("hub.tracking")
NICENESS = 10  # below the hub's requests: a batch can wait a moment, a pixel's answer should not
START_TIMEOUT = 60.0  # seconds a new recorder process may take to import and connect
Row = tuple[str, int, int | None, str | None, datetime, str, str | None, str | None, bool]


class HitRecorder(Protocol):
    async def record(self, hits: Sequence[PendingHit]) -> int:
        """Store the hits in one transaction; how many were recorded.  Raises when they were not."""
        ...

    async def close(self) -> None: ...


class LocalRecorder:
    """Stores the hits in this process, with the hub's own sessions."""

    def __init__(self, context: HubContext, rules: MachineRules) -> None:
        self.context = context
        self.rules = rules

    async def record(self, hits: Sequence[PendingHit]) -> int:
        async with self.context.transaction() as session:
            return await Tracking(session, self.rules).record(hits)

    async def close(self) -> None:
        return None


class RecorderError(Exception):
    """The recorder process could not store a batch (its database failed, or it died)."""


class ProcessRecorder:
    """Stores the hits in a recorder process of its own; one batch at a time."""

    def __init__(
        self,
        database_url: str,
        rules: MachineRules,
        logs: tuple[str, str] = ("INFO", "text"),
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.rules = rules
        self.logs = logs  # the hub's log level and format: the recorder's lines read like the hub's
        self.on_stored = on_stored  # the commit published events: wake whatever delivers them
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The recorder process's id while one runs."""
        return self._process.pid if self._process is not None else None

    async def record(self, hits: Sequence[PendingHit]) -> int:
        # Shielded: a batch handed over is answered even if the caller is cancelled, so the
        # next batch never reads this one's answer, and nothing is handed over twice.
        kind, said = await asyncio.shield(self._exchange([_row(hit) for hit in hits]))
        if kind != "stored" or not isinstance(said, int):
            raise RecorderError(f"the tracking recorder could not store a batch: {said}")
        if said and self.on_stored is not None:
            self.on_stored()
        return said

    async def _exchange(self, rows: list[Row]) -> tuple[str, object]:
        async with self._lock:
            conn = await self._started()
            try:
                await asyncio.to_thread(conn.send, rows)
                answer: tuple[str, object] = await asyncio.to_thread(conn.recv)
            except (EOFError, OSError) as exc:
                await self._forget("the tracking recorder process died")
                raise RecorderError("the tracking recorder process died with a batch") from exc
            return answer

    async def close(self) -> None:
        """Let the recorder finish its batch and exit."""
        async with self._lock:
            await self._forget(None)

    async def _started(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        if self._process is not None:
            await self._forget("the tracking recorder process died; starting a new one")
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and sockets
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=_serve,
            args=(theirs, self.database_url, self.rules, self.logs),
            name="hub: tracking recorder",
            daemon=True,
        )
        process.start()
        theirs.close()  # only the recorder holds its end: the hub's death is the end of its pipe
        self._process, self._conn = process, ours
        ready = await asyncio.to_thread(ours.poll, START_TIMEOUT)
        answer = await asyncio.to_thread(ours.recv) if ready else ("failed", "did not start in time")
        if answer[0] != "ready":
            await self._forget(None)
            raise RecorderError(f"the tracking recorder process could not start: {answer[1]}")
        log.info("tracking recorder process started", extra={"fields": {"pid": process.pid}})
        return ours

    async def _forget(self, why: str | None) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if why is not None:
            log.error(why)
        if conn is not None:
            conn.close()  # the recorder reads the end of its pipe and exits
        if process is not None:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


def _row(hit: PendingHit) -> Row:
    """A hit as a tuple: the pipe carries a batch of tuples several times faster than dataclasses."""
    v = hit.visit
    return (hit.kind, hit.recipient_id, hit.link, hit.url, v.at, v.method, v.user_agent, v.ip, v.has_accept_language)


def _hit(row: Row) -> PendingHit:
    kind, recipient_id, link, url, at, method, user_agent, ip, has_accept_language = row
    return PendingHit(kind, recipient_id, Visit(at, method, user_agent, ip, has_accept_language), link, url)


# -- in the recorder process -------------------------------------------------------------------


def _serve(conn: Connection, database_url: str, rules: MachineRules, logs: tuple[str, str]) -> None:
    configure_logs(*logs)
    os.nice(NICENESS)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group; the hub stops us
        asyncio.run(_serve_batches(conn, database_url, rules))


async def _serve_batches(conn: Connection, database_url: str, rules: MachineRules) -> None:
    try:
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            try:
                rows: list[Row] = await asyncio.to_thread(conn.recv)
            except (EOFError, OSError):  # the hub closed the pipe, or died
                return
            try:
                async with sessions() as session, session.begin():
                    recorded = await Tracking(session, rules).record([_hit(row) for row in rows])
            except Exception as exc:
                log.exception("tracking hits could not be stored")
                answer: tuple[str, object] = ("failed", f"{type(exc).__name__}: {exc}")
            else:
                answer = ("stored", recorded)
            with contextlib.suppress(OSError):  # a hub that died gets no answer; its batch is stored
                conn.send(answer)
    finally:
        await engine.dispose()
