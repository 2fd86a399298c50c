"""Messages between the hub's nodes on one PostgreSQL: ``NOTIFY`` to send, ``LISTEN`` on a
connection of its own to receive.

Every node receives every message of the channels it subscribed to, its own included, in the
order they were committed; each channel's handler runs one message at a time.  A payload is
limited to 8,000 bytes: a long one is sent compressed, and one still too long raises
``TooLarge``.  While the listening connection is down nothing is received (messages are not
kept for a node that was away); it reconnects with backoff and checks every few seconds that
a quiet connection still works.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import func, select

from connectors.backoff import Backoff
from hub.context import HubContext

log = logging.getLogger("hub.nodes")
MAX_PAYLOAD = 7_900  # bytes; PostgreSQL refuses a NOTIFY payload of 8,000 or more
CHECK_EVERY = 5.0  # seconds between checks that the listening connection still works
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class TooLarge(ValueError):
    """A message that does not fit a notification even compressed."""


class NodeBus:
    def __init__(self, context: HubContext) -> None:
        self.context = context
        self._handlers: dict[str, Handler] = {}
        self._received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Before ``start``: ``handler`` gets each message of ``channel``."""
        self._handlers[channel] = handler

    async def start(self) -> None:
        """Returns once this node listens (or failed to once: it keeps trying)."""
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="nodes:listen"),
            asyncio.create_task(self._apply(), name="nodes:apply"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        payload = encode(message)
        async with self.context.engine.connect() as conn:
            await conn.execute(select(func.pg_notify(channel, payload)))
            await conn.commit()  # delivered at commit, in commit order

    async def _listen(self, ready: asyncio.Event) -> None:
        url = self.context.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                conn = await asyncpg.connect(url)
            except Exception as exc:  # whatever it is, this node must keep trying to hear the others
                log.warning("cannot listen to the other nodes; retrying", extra={"fields": {"error": str(exc)}})
                ready.set()
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                await self._session(conn, ready)
                backoff.reset()
            except Exception:
                log.exception("listening to the other nodes failed; reconnecting")
                await asyncio.sleep(backoff.next_delay())
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    async def _session(self, conn: asyncpg.Connection, ready: asyncio.Event) -> None:
        """Listen on one connection until it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        for channel in self._handlers:
            await conn.add_listener(channel, lambda _conn, _pid, ch, payload: self._received.put_nowait((ch, payload)))
        ready.set()
        log.info("listening to the other nodes", extra={"fields": {"channels": ",".join(self._handlers)}})
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_EVERY)
                break
            try:  # a connection cut without a word is noticed only by using it
                await conn.fetchval("SELECT 1", timeout=CHECK_EVERY)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                break
        log.warning("lost the connection to the other nodes; reconnecting")

    async def _apply(self) -> None:
        while True:
            channel, payload = await self._received.get()
            try:
                await self._handlers[channel](decode(payload))
            except Exception:  # one bad message must not stop the others
                log.exception("a message from another node was not handled", extra={"fields": {"channel": channel}})


def encode(message: dict[str, Any]) -> str:
    """JSON, compressed when long."""
    text = json.dumps(message, ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text.encode()) <= MAX_PAYLOAD:
        return text
    packed = "z" + base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
    if len(packed) > MAX_PAYLOAD:
        raise TooLarge(f"a message of {len(text)} bytes does not fit a notification")
    return packed


def decode(payload: str) -> dict[str, Any]:
    if payload.startswith("z"):  # JSON text starts with "{"
        payload = zlib.decompress(base64.b64decode(payload[1:])).decode()
    result: dict[str, Any] = json.loads(payload)
    return result
