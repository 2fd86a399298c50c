"""Screen-pops decided by the node that follows a PBX, shown by every node: an operator's
browser may be connected to any of them.

Each pop and withdrawal goes out as a PostgreSQL ``NOTIFY`` on ``CHANNEL``; every node (this
one too) ``LISTEN``s on a connection of its own and applies them, in the order they were sent,
to its own ``PopHub``.  A notification's payload is limited to 8,000 bytes: a large card is sent
compressed, and one still too large loses its oldest history lines rather than the pop.  While a
node's listening connection is down its operators miss pops; it reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import zlib
from collections.abc import Iterable
from typing import Any

import asyncpg
from sqlalchemy import func, select

from connectors.backoff import Backoff
from crm_core.telephony.events import CallKey
from hub.context import HubContext
from hub.screen_pop import PopHub

log = logging.getLogger("hub.screen_pop")
CHANNEL = "hub_pops"
MAX_PAYLOAD = 7_900  # bytes; PostgreSQL refuses a NOTIFY payload of 8,000 or more
CHECK_EVERY = 5.0  # seconds between checks that the listening connection still works
TRIMMABLE = ("candidates", "last_calls", "last_emails")  # lists a pop can show fewer of


class PopRelay:
    def __init__(self, context: HubContext, pops: PopHub) -> None:
        self.context = context
        self.pops = pops
        self.listening = False
        self._received: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Returns once this node listens (or has failed to once: it keeps trying)."""
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="pops:listen"),
            asyncio.create_task(self._apply(), name="pops:apply"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def message_for(self, key: CallKey) -> dict[str, Any] | None:
        return self.pops.message_for(key)

    async def pop(self, key: CallKey, extension: str, message: dict[str, Any]) -> None:
        await self._send({"op": "pop", "key": [key.pbx, key.linkedid], "extension": extension, "message": message})

    async def withdraw(self, key: CallKey, extensions: Iterable[str], reason: str, by: str | None = None) -> None:
        await self._send(
            {"op": "withdraw", "key": [key.pbx, key.linkedid], "extensions": sorted(extensions), "reason": reason,
             "by": by}
        )  # fmt: skip

    async def withdraw_all(self, key: CallKey, reason: str) -> None:
        await self._send({"op": "withdraw", "key": [key.pbx, key.linkedid], "extensions": None, "reason": reason})

    async def _send(self, operation: dict[str, Any]) -> None:
        payload = encode(operation)
        async with self.context.engine.connect() as conn:
            await conn.execute(select(func.pg_notify(CHANNEL, payload)))
            await conn.commit()  # delivered at commit, in commit order

    async def _listen(self, ready: asyncio.Event) -> None:
        url = self.context.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                conn = await asyncpg.connect(url)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("pop relay cannot listen; retrying", extra={"fields": {"error": str(exc)}})
                ready.set()
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            try:
                await self._session(conn, ready)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    async def _session(self, conn: asyncpg.Connection, ready: asyncio.Event) -> None:
        """Listen on one connection until it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: self._received.put_nowait(payload))
        self.listening = True
        ready.set()
        log.info("pop relay listening")
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_EVERY)
                break
            try:  # a connection cut without a word is noticed only by using it
                await conn.fetchval("SELECT 1", timeout=CHECK_EVERY)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                break
        log.warning("pop relay lost its connection; reconnecting")

    async def _apply(self) -> None:
        while True:
            payload = await self._received.get()
            try:
                operation = decode(payload)
                key = CallKey(*operation["key"])
                if operation["op"] == "pop":
                    await self.pops.pop(key, operation["extension"], operation["message"])
                elif operation["extensions"] is None:
                    await self.pops.withdraw_all(key, operation["reason"])
                else:
                    await self.pops.withdraw(key, operation["extensions"], operation["reason"], operation.get("by"))
            except Exception:  # one bad notification must not stop the others
                log.exception("relayed pop not applied")


def encode(operation: dict[str, Any]) -> str:
    """JSON, compressed when long, its history trimmed when even that is too long."""
    text = json.dumps(operation, ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text.encode()) <= MAX_PAYLOAD:
        return text
    packed = "z" + base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
    if len(packed) <= MAX_PAYLOAD:
        return packed
    operation = json.loads(text)  # a copy: the caller's message may be shared with other pops
    message = operation.get("message")
    trimmable = [m for m in (message, (message or {}).get("client")) if isinstance(m, dict)]
    lists = [(m, name) for m in trimmable for name in TRIMMABLE if isinstance(m.get(name), list) and m[name]]
    if not lists:
        raise ValueError(f"a pop of {len(text)} bytes cannot be relayed")
    for holder, name in lists:
        holder[name] = holder[name][: len(holder[name]) // 2]
    log.warning("a large pop was relayed with part of its history", extra={"fields": {"bytes": len(text)}})
    return encode(operation)


def decode(payload: str) -> dict[str, Any]:
    if payload.startswith("z"):
        payload = zlib.decompress(base64.b64decode(payload[1:])).decode()
    result: dict[str, Any] = json.loads(payload)
    return result
