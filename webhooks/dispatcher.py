"""Delivering outbox events to their subscribers: signed, retried, in order per client.

One task, owned by ``hub run``.  Each round it fans new outbox events out into deliveries,
claims what is due (leased until the round's attempts have surely ended), sends it a few at a
time, and records each outcome.  A delivery is only ever marked delivered after a 2xx, so a hub
killed at any moment sends it again once its lease runs out: at least once, with the same
``webhook-id`` for the receiver to deduplicate.  A commit that publishes events wakes the task at once;
otherwise it looks every ``idle_seconds`` (events committed by another node, retries due).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import utcnow
from crm_core.subscriptions import FIRST_RETRY, Due, Outcome, Subscriptions
from webhooks.signing import headers
from webhooks.targets import PublicOnlyResolver, TargetRefused, check_target

log = logging.getLogger("webhooks")
WAVES = 4  # a round claims up to this many times the concurrency: fewer rounds, one lease for all


class UnitsOfWork(Protocol):
    """What the dispatcher needs of the hub's database (``HubContext`` fits)."""

    publish_listeners: list[Callable[[], None]]

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


def body_of(due: Due) -> bytes:
    return json.dumps(
        {"id": due.event_id, "type": due.event_type, "timestamp": due.occurred_at.isoformat(), "data": due.payload},
        ensure_ascii=False,
        default=str,
    ).encode()


class Dispatcher:
    def __init__(
        self,
        context: UnitsOfWork,
        *,
        allow_private: bool = False,
        first_retry: timedelta = FIRST_RETRY,
        timeout: float = 10.0,
        concurrency: int = 8,
        idle_seconds: float = 1.0,
    ) -> None:
        self.context = context
        self.allow_private = allow_private
        self.timeout = timeout
        self.concurrency = concurrency
        self.idle_seconds = idle_seconds
        self.first_retry = first_retry
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0

    @property
    def claim_limit(self) -> int:
        return self.concurrency * WAVES

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is left alone: a round's last wave of attempts starts after
        at most ``WAVES - 1`` timeouts, so every attempt of the round has ended by then."""
        return timedelta(seconds=self.timeout * WAVES + 5)

    async def start(self) -> None:
        self.context.publish_listeners.append(self.wake)
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.context.publish_listeners.remove(self.wake)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Something was published: look now instead of at the next poll."""
        self._wake.set()

    async def run_once(self, session: aiohttp.ClientSession) -> int:
        """Fan out, then send what is due; returns how many deliveries were attempted."""
        async with self.context.transaction() as db:
            subscriptions = Subscriptions(db, self.first_retry)
            await subscriptions.fan_out()
            due = await subscriptions.claim(utcnow(), self.lease, limit=self.claim_limit)
        if not due:
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def attempt(item: Due) -> Outcome:
            async with limit:
                return Outcome(item.delivery_id, *await self._send(session, item))

        outcomes = await asyncio.gather(*(attempt(item) for item in due))
        async with self.context.transaction() as db:
            after = await Subscriptions(db, self.first_retry).record(outcomes)
            for item, outcome in zip(due, outcomes, strict=True):
                self._count(item, outcome, after[item.delivery_id])
        return len(due)

    # -- private -------------------------------------------------------------------

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(resolver=None if self.allow_private else PublicOnlyResolver(), limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    attempted = await self.run_once(session)
                except Exception:  # the database away, a bug: log, wait, try again; the outbox keeps all
                    log.exception("webhook round failed")
                    attempted = 0
                if attempted:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
                self._wake.clear()

    async def _send(self, session: aiohttp.ClientSession, item: Due) -> tuple[int | None, str | None, str | None]:
        """(HTTP status, response text, error) of one attempt."""
        body = body_of(item)
        try:
            await check_target(item.url, allow_private=self.allow_private)
            signed = headers(item.secret, item.event_id, int(time.time()), body)
            async with session.post(
                item.url, data=body, headers=signed, timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:  # fmt: skip
                return response.status, (await response.text(errors="replace"))[:2000], None
        except TargetRefused as exc:
            return None, None, f"refused target: {exc}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, None, f"{type(exc).__name__}: {exc}"

    def _count(self, item: Due, outcome: Outcome, after: str) -> None:
        fields: dict[str, Any] = {"event_id": item.event_id, "type": item.event_type, "status": outcome.status}
        if after == "delivered":
            self.delivered += 1
            log.info("webhook delivered", extra={"fields": fields})
        else:
            self.failed += 1
            log.warning("webhook not delivered", extra={"fields": {**fields, "error": outcome.error, "now": after}})
