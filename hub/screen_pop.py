"""Screen-pops: which operator's browser shows which caller's card, and when it is withdrawn.

Operators are reached by their extension: every WebSocket of a logged-in user with that
extension gets the pop.  Pops still showing are remembered per call, so a page opened
(or reloaded) while the phone rings shows them too, and so every one is withdrawn when
another operator answers or the call ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm_core.card_summaries import CardSummary
from crm_core.clients import Lookup
from crm_core.telephony.events import CallKey

log = logging.getLogger("hub.screen_pop")


class PopSocket(Protocol):
    """What the hub needs of a browser connection (aiohttp's WebSocketResponse fits)."""

    async def send_str(self, data: str) -> None: ...


class Pops(Protocol):
    """Where pops are sent: this node's ``PopHub``, or every node's (``hub.pop_relay``)."""

    def message_for(self, key: CallKey) -> dict[str, Any] | None: ...
    async def pop(self, key: CallKey, extension: str, message: dict[str, Any]) -> None: ...
    async def withdraw(self, key: CallKey, extensions: Iterable[str], reason: str, by: str | None = None) -> None: ...
    async def withdraw_all(self, key: CallKey, reason: str) -> None: ...


@dataclass
class _ShownPop:
    message: dict[str, Any]
    extensions: set[str] = field(default_factory=set)


class PopHub:
    """Live pops per call and the sockets of each extension; all in memory, per node."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[PopSocket]] = defaultdict(set)
        self._shown: dict[CallKey, _ShownPop] = {}
        self.sent = 0  # pops pushed, for /metrics

    def attach(self, extension: str, socket: PopSocket) -> list[dict[str, Any]]:
        """Register a socket; returns the pops already showing for that extension."""
        self._sockets[extension].add(socket)
        return [pop.message for pop in self._shown.values() if extension in pop.extensions]

    def detach(self, extension: str, socket: PopSocket) -> None:
        sockets = self._sockets.get(extension)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[extension]

    def message_for(self, key: CallKey) -> dict[str, Any] | None:
        """The pop already showing for this call on some phone, to reuse for another."""
        shown = self._shown.get(key)
        return shown.message if shown else None

    def showing(self, key: CallKey) -> set[str]:
        pop = self._shown.get(key)
        return set(pop.extensions) if pop else set()

    async def pop(self, key: CallKey, extension: str, message: dict[str, Any]) -> None:
        shown = self._shown.setdefault(key, _ShownPop(message))
        shown.message = message
        shown.extensions.add(extension)
        self.sent += 1
        await self._send([extension], message)

    async def withdraw(self, key: CallKey, extensions: Iterable[str], reason: str, by: str | None = None) -> None:
        shown = self._shown.get(key)
        if shown is None:
            return
        targets = [ext for ext in extensions if ext in shown.extensions]
        shown.extensions.difference_update(targets)
        if not shown.extensions:
            del self._shown[key]
        if targets:
            await self._send(targets, {"type": "withdraw", "call_id": str(key), "reason": reason, "by": by})

    async def withdraw_all(self, key: CallKey, reason: str) -> None:
        await self.withdraw(key, self.showing(key), reason)

    async def _send(self, extensions: Iterable[str], message: dict[str, Any]) -> None:
        text = json.dumps(message, ensure_ascii=False, default=str)
        sockets = [s for ext in extensions for s in self._sockets.get(ext, ())]
        results = await asyncio.gather(*(s.send_str(text) for s in sockets), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.info("pop not delivered", extra={"fields": {"error": type(result).__name__}})


@dataclass(frozen=True, slots=True)
class PopRequest:
    """A phone rang (or was answered, for pop-on-answer queues): show it the caller's card."""

    key: CallKey
    extension: str
    caller: str | None
    caller_name: str | None
    queue: str | None
    did: str | None
    moment: str  # "ring" or "answer"


def pop_message(request: PopRequest, lookup: Lookup | None, cards: Mapping[int, CardSummary]) -> dict[str, Any]:
    """What the operator sees: the matched card, every candidate, or "unknown number".

    ``lookup`` is None when the card could not be looked up (the database failed): the
    caller's number is still shown, without pretending the number is unknown.
    """
    message: dict[str, Any] = {
        "type": "pop",
        "call_id": str(request.key),
        "caller": request.caller,
        "caller_name": request.caller_name,
        "queue": request.queue,
        "did": request.did,
        "moment": request.moment,
        "match": lookup.match if lookup is not None else "unavailable",
    }
    if lookup is None:
        return message
    owner = lookup.owner
    if owner is not None and owner[0] in cards:
        contacts = [c.contact_name for c in lookup.candidates if c.contact_name]
        message["client"] = _card(cards[owner[0]], contacts[0] if contacts else None)
    elif lookup.client_ids:
        message["candidates"] = [
            {"client_id": c.client_id, "client_name": c.client_name, "contact_name": c.contact_name}
            for c in lookup.candidates
        ]
    else:
        message["unknown"] = True
        message["quick_create"] = {"phones": [{"number": request.caller}] if request.caller else []}
    return message


def _card(card: CardSummary, contact: str | None) -> dict[str, Any]:
    return {
        "id": card.id,
        "name": card.name,
        "company": card.full_name or card.name,
        "contact": contact,
        "inn": card.inn,
        "tags": card.tags,
        "owner": card.owner,
        "last_calls": [
            {
                "id": c.id,
                "direction": c.direction,
                "status": c.status,
                "started_at": c.started_at.isoformat() if c.started_at else None,
                "talk_seconds": c.talk_seconds,
                "final_operator": c.final_operator,
            }
            for c in card.recent_calls
        ],
        "last_emails": [
            {
                "id": m.id,
                "direction": m.direction,
                "subject": m.subject,
                "from": m.sender,
                "at": m.at.isoformat(),
                "url": f"/api/messages/{m.id}",
            }
            for m in card.recent_emails
        ],
        "url": f"/api/clients/{card.id}",
    }
