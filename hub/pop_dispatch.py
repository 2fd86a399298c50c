"""Screen-pops in the order the PBX decided them, with the cards of the waiting pops read together.

A ringing phone must show its card at once, yet a busy PBX's event stream must not wait on
the database at every ring.  Pop requests and withdrawals go into one queue that one task
applies in order, so a pop never arrives after its own withdrawal; the cards of all the pops
waiting in the queue are read in one read-only unit of work (one statement for the callers'
numbers, four for all the cards), so under load a batch costs about what one pop costs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crm_core.card_summaries import card_summaries
from crm_core.clients import ClientBook, Lookup
from crm_core.telephony.events import CallKey
from hub.context import HubContext
from hub.screen_pop import PopRequest, Pops, pop_message

log = logging.getLogger("hub.screen_pop")
REMEMBERED_MATCHES = 10_000  # calls whose caller's card the call log may still ask for


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Take a call's pop off some phones (``extensions``), or off every phone (None)."""

    key: CallKey
    extensions: tuple[str, ...] | None
    reason: str
    by: str | None = None


Operation = PopRequest | Withdrawal


class PopDispatcher:
    def __init__(
        self, context: HubContext, pops: Pops, card_extras: Callable[[int], dict[str, Any]] | None = None
    ) -> None:
        """``card_extras`` adds to a popped card what another system knows (1C's documents) from a
        cache: it must not wait."""
        self.context = context
        self.pops = pops
        self.card_extras = card_extras
        self._queue: asyncio.Queue[Operation] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # The card each popped call's number matched, so the call log need not look it up again.
        self._matches: OrderedDict[CallKey, tuple[str, tuple[int, int | None]]] = OrderedDict()

    def submit(self, operation: Operation) -> None:
        self._queue.put_nowait(operation)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="screen-pops")

    async def stop(self) -> None:
        """Apply what is queued (the last withdrawals above all), then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def match_for(self, key: CallKey, number: str) -> tuple[int, int | None] | None:
        """(client id, contact id) the pop of this call found for ``number``, if it found one card."""
        remembered = self._matches.pop(key, None)
        return remembered[1] if remembered is not None and remembered[0] == number else None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._apply(batch)
            except Exception:  # a broken socket or a bug must not stop every later pop
                log.exception("screen-pops not applied", extra={"fields": {"operations": len(batch)}})
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _apply(self, batch: Sequence[Operation]) -> None:
        messages: dict[CallKey, dict[str, Any]] = {}
        to_look_up: dict[CallKey, PopRequest] = {}
        for op in batch:
            if isinstance(op, PopRequest) and op.key not in messages and op.key not in to_look_up:
                shown = self.pops.message_for(op.key)  # a ringall queue: the card is already out
                if shown is not None:
                    messages[op.key] = shown
                else:
                    to_look_up[op.key] = op
        if to_look_up:
            messages.update(await self._look_up(list(to_look_up.values())))
        for op in batch:
            try:
                await self._send(op, messages)
            except Exception:  # relayed to other nodes, one may fail: the withdrawals after it must not
                log.exception("screen-pop not sent", extra={"fields": {"call": str(op.key)}})

    async def _send(self, op: Operation, messages: dict[CallKey, dict[str, Any]]) -> None:
        if isinstance(op, PopRequest):
            message = {**messages[op.key], "extension": op.extension, "moment": op.moment}
            await self.pops.pop(op.key, op.extension, message)
        elif op.extensions is None:
            await self.pops.withdraw_all(op.key, op.reason)
        else:
            await self.pops.withdraw(op.key, op.extensions, op.reason, op.by)

    async def _look_up(self, requests: Sequence[PopRequest]) -> dict[CallKey, dict[str, Any]]:
        try:
            async with self.context.reading() as session:
                lookups = await ClientBook(session, self.context.rules).find_by_phones(
                    r.caller for r in requests if r.caller
                )
                owners = {owner[0] for lookup in lookups.values() if (owner := lookup.owner) is not None}
                cards = await card_summaries(session, owners)
        except Exception:  # the operator still sees who is calling
            log.exception("screen-pop lookup failed; pops go out without the card")
            return {r.key: pop_message(r, None, {}) for r in requests}
        messages = {}
        for r in requests:
            lookup = lookups[r.caller] if r.caller else Lookup("none")
            if r.caller and (owner := lookup.owner) is not None:
                self._remember(r.key, r.caller, owner)
            messages[r.key] = pop_message(r, lookup, cards)
            card = messages[r.key].get("client")
            if card is not None and self.card_extras is not None:
                card["onec"] = self.card_extras(card["id"])
        return messages

    def _remember(self, key: CallKey, number: str, owner: tuple[int, int | None]) -> None:
        self._matches[key] = (number, owner)
        self._matches.move_to_end(key)
        while len(self._matches) > REMEMBERED_MATCHES:
            self._matches.popitem(last=False)
