"""One AMI connection: panoramisk's ``AMIProtocol`` with our framing and our failure rules.

What is kept from panoramisk: ``send`` (serialising an ``Action``, registering it by
ActionID) and ``handle_message`` (matching responses and ``EventList`` replies to the action
that asked for them, and telling single replies from lists, including ``Originate`` with
``Async: true`` whose list ends with the ``OriginateResponse`` event).

What is replaced, and why:
- ``data_received``: framing goes through ``FrameReader`` so malformed or oversize frames are
  logged and skipped (see ``frames.py``).
- ``close``/``connection_lost``: panoramisk moves unanswered actions to its manager's
  "awaiting" list and re-sends them after the next login.  For ``Originate`` that would ring a
  phone minutes later, after the operator gave up; here every unanswered action fails with
  ``AmiConnectionLost`` and nothing outlives its connection.
- events are not dispatched to callbacks as fire-and-forget tasks (no ordering between them)
  but queued in arrival order, with a receive timestamp, for one consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from connectors.ami.errors import AmiActionTimeout, AmiConnectionLost, AmiProtocolError
from connectors.ami.frames import Banner, Frame, FrameReader, Malformed, WireMessage

log = logging.getLogger("connectors.ami")

# Flow control once events stream live: stop reading the socket while this many events wait
# for the consumer, resume below the low mark.  TCP then pushes back on Asterisk, which
# buffers per session, instead of this process growing without bound.
HIGH_WATER = 20_000
LOW_WATER = 5_000

Reply = WireMessage | list[WireMessage]


class AmiProtocol(AMIProtocol):
    """The socket side of one session with one PBX."""

    def __init__(self, pbx: str, max_frame_bytes: int) -> None:
        super().__init__()
        self.transport: Any = None
        self.responses: dict[str, Action] = {}
        self.closed = False
        self.pbx = pbx
        self._reader = FrameReader(max_frame_bytes)
        self._events: deque[tuple[datetime, Frame]] = deque()
        self._received_at = datetime.now(UTC)
        self.last_heard = time.monotonic()  # when the peer last sent anything: it is alive then
        self._event_waiter: asyncio.Future[None] | None = None
        self._flow_control = False
        self.reading_paused = False
        self.lost_reason = ""
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # resets panoramisk's state
        self.factory = self  # handle_message() dispatches events to self.dispatch
        self.forgetable_actions = ()
        self.encoding = "utf-8"
        self.log = log

    def data_received(self, data: bytes) -> None:
        received_at = datetime.now(UTC)
        self.last_heard = time.monotonic()
        for item in self._reader.feed(data):
            if isinstance(item, Frame):
                if item.event and not item.action_id and not item.get("CommandID"):
                    # An event that answers no action (nearly all of them): queue it without
                    # panoramisk's per-message bookkeeping, which only matches ActionIDs.
                    self._queue_event(received_at, item)
                    if item.event.lower() == "shutdown":
                        self.close(f"PBX shutting down (restart={item.get('Restart')})")
                else:
                    self._received_at = received_at
                    self.handle_message(WireMessage(item))
            elif isinstance(item, Malformed):
                log.warning(
                    "malformed AMI frame skipped",
                    extra={
                        "fields": {"pbx": self.pbx, "reason": item.reason, "bytes": item.size, "preview": item.preview}
                    },
                )
            else:
                self._on_banner(item)

    def connection_lost(self, exc: Any) -> None:
        """Called by asyncio when the socket closes, and by panoramisk on a ``Shutdown`` event."""
        if self.lost.done():
            return
        if isinstance(exc, Mapping):  # panoramisk passes the Shutdown event itself
            reason = f"PBX shutting down ({exc.get('Shutdown', '')}, restart={exc.get('Restart', '')})"
        elif exc is None:
            reason = self.lost_reason or "closed by peer"
        else:
            reason = self.lost_reason or f"{type(exc).__name__}: {exc}"
        self.lost_reason = reason
        self.closed = True
        self.lost.set_result(None)
        error = AmiConnectionLost(self.pbx, f"connection lost before the answer ({reason})")
        for action in list(self.responses.values()):
            if not action.future.done():
                action.future.set_exception(error)
                action.future.exception()  # retrieved: a Ping nobody awaits any more must not warn
        self.responses.clear()
        if not self.banner.done():
            self.banner.set_exception(AmiConnectionLost(self.pbx, f"connection closed before the banner ({reason})"))
            self.banner.exception()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._wake_consumer()

    # -- panoramisk hooks --------------------------------------------------------------

    def dispatch(self, message: WireMessage) -> None:
        """An event with an ActionID that answers none of our actions (another client's)."""
        self._queue_event(self._received_at, message.frame)

    def _queue_event(self, received_at: datetime, frame: Frame) -> None:
        self._events.append((received_at, frame))
        if self._flow_control and not self.reading_paused and len(self._events) >= HIGH_WATER:
            self.transport.pause_reading()
            self.reading_paused = True
            log.warning("event consumer is slow; reading paused", extra={"fields": {"pbx": self.pbx}})
        self._wake_consumer()

    def close(self, reason: str = "closed by us") -> None:
        """Close gracefully; unanswered actions fail once the socket is actually gone."""
        if not self.lost_reason:
            self.lost_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection now, without flushing (a dead peer would never read it)."""
        if not self.lost_reason:
            self.lost_reason = reason
        if self.transport is not None:
            self.transport.abort()

    # -- used by the connector -----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self.lost.done() and self.transport is not None and not self.transport.is_closing()

    async def action(self, fields: dict[str, str | list[str]], timeout: float) -> Reply:
        """Send one action and wait for its whole answer (a message, or a list for EventList actions)."""
        if not self.is_open:
            raise AmiConnectionLost(self.pbx, f"{fields.get('Action')} not sent: connection is closing")
        action = Action(fields)
        future: asyncio.Future[Reply] = self.send(action)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.responses.pop(action.id, None)
            raise AmiActionTimeout(self.pbx, f"no answer to {fields.get('Action')} within {timeout:g}s") from None

    def send(self, data: Any, as_list: bool | None = None) -> asyncio.Future[Any]:
        # panoramisk swallows write errors; a closed transport must not take an action silently.
        if not self.is_open:
            raise AmiConnectionLost(self.pbx, "connection is closing")
        return super().send(data, as_list=as_list)

    def enable_flow_control(self) -> None:
        self._flow_control = True

    async def next_event(self) -> tuple[datetime, Frame] | None:
        """The next queued event; None once the connection is gone and the queue is empty."""
        while not self._events:
            if self.lost.done():
                return None
            self._event_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._event_waiter
            finally:
                self._event_waiter = None
        item = self._events.popleft()
        if self.reading_paused and len(self._events) <= LOW_WATER and self.is_open:
            self.transport.resume_reading()
            self.reading_paused = False
        return item

    def take_pending_events(self) -> list[tuple[datetime, Frame]]:
        items = list(self._events)
        self._events.clear()
        return items

    # -- private -------------------------------------------------------------------------

    def _on_banner(self, banner: Banner) -> None:
        if banner.version is None:
            error = AmiProtocolError(self.pbx, f"not an AMI banner: {banner.line!r}")
            if not self.banner.done():
                self.banner.set_exception(error)
                self.banner.exception()
            self.abort("not an AMI peer")
            return
        self.version = banner.version
        if not self.banner.done():
            self.banner.set_result(banner.version)

    def _wake_consumer(self) -> None:
        if self._event_waiter is not None and not self._event_waiter.done():
            self._event_waiter.set_result(None)
