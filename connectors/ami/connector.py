"""Following one Asterisk over AMI: stay logged in, resynchronise, stream every event in order.

Why our own supervision instead of panoramisk's ``Manager``: the Manager reconnects after a
fixed delay (no backoff, no jitter), sends Pings without ever noticing that no Pong came back,
reports a rejected login only as ``authenticated = False``, runs event callbacks as
independent tasks (so two events can be handled out of order), and re-sends unanswered
actions after a reconnect (an Originate would ring a phone long after the operator clicked).
The connector below keeps panoramisk's protocol layer (see ``protocol.py``) and owns the
session lifecycle itself:

    connect -> banner -> Login -> CoreShowChannels + QueueStatus -> on_resync
            -> stream events (Ping keeps watch) -> connection lost -> backoff -> connect ...

Events that arrive while the resync is running are held and delivered after ``on_resync``;
events still queued when a connection drops are delivered before the next connection's
``on_resync``.  So ``on_event`` sees every event that was read, once, in wire order, and a
resync always comes before the events that follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from connectors.ami.errors import AmiActionFailed, AmiActionTimeout, AmiError, AmiLoginRejected, AmiNotConnected
from connectors.ami.frames import Frame, WireMessage
from connectors.ami.originate import OriginateResult, originate_action
from connectors.ami.protocol import AmiProtocol, Reply
from connectors.ami.settings import PbxSettings
from connectors.ami.snapshot import channel_snapshots
from connectors.backoff import Backoff
from crm_core.telephony.events import ChannelSnapshot, PbxEvent

log = logging.getLogger("connectors.ami")

EventHandler = Callable[[PbxEvent], Awaitable[None]]
ResyncHandler = Callable[[str, list[ChannelSnapshot], datetime], Awaitable[None]]


class AmiConnector:
    """One PBX's AMI session, kept alive until ``stop()``.

    ``on_event`` gets every AMI event (not the replies to the connector's own actions, except
    the QueueStatus list, which is streamed right after ``on_resync`` as the queue part of the
    snapshot: queue members and waiting callers).  Handler exceptions are logged and the stream
    goes on: one bad event must not stop a PBX.
    """

    def __init__(self, settings: PbxSettings, on_event: EventHandler, on_resync: ResyncHandler) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_resync = on_resync
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._protocol: AmiProtocol | None = None  # the current connection, logged in or not
        self._logged_in = False
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        self.last_error: BaseException | None = None  # why the last attempt or session ended
        self.connects = 0  # successful logins so far, for health pages and tests

    # -- public ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def connected(self) -> bool:
        """Logged in on a connection that is still open: actions can be sent."""
        return self._logged_in and self._protocol is not None and self._protocol.is_open

    async def run(self) -> None:
        """Connect and reconnect until ``stop()``; returns after the last connection is closed.

        A stopped connector stays stopped: build a new one to follow the PBX again.
        """
        if self._running:
            raise RuntimeError(f"AmiConnector {self.name} is already running")
        self._running = True
        self._finished.clear()
        try:
            while not self._stopping.is_set():
                try:
                    await self._session()
                except AmiLoginRejected as exc:
                    self.last_error = exc
                    log.error("AMI login rejected", extra={"fields": self._fields(error=str(exc))})
                except (OSError, AmiError) as exc:
                    if self._stopping.is_set():
                        break
                    self.last_error = exc
                    log.warning(
                        "AMI connection failed", extra={"fields": self._fields(error=f"{type(exc).__name__}: {exc}")}
                    )
                except Exception as exc:  # a bug must not end the PBX link for good: log, back off, retry
                    self.last_error = exc
                    log.exception("AMI session crashed", extra={"fields": self._fields()})
                if self._stopping.is_set():
                    break
                delay = self._backoff.next_delay()
                log.info("AMI reconnecting", extra={"fields": self._fields(delay=f"{delay:.2f}")})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            self._running = False
            self._finished.set()
            log.info("AMI connector stopped", extra={"fields": self._fields()})

    async def stop(self) -> None:
        """Log off politely, close the connection and wait (bounded) for ``run()`` to return."""
        self._stopping.set()
        protocol = self._protocol
        if protocol is not None and protocol.is_open:
            if self._logged_in:
                try:
                    await protocol.action({"Action": "Logoff"}, self.settings.ping_timeout)
                except AmiError as exc:
                    log.info("AMI logoff unanswered", extra={"fields": self._fields(error=str(exc))})
            protocol.close("stopped")
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), self.settings.action_timeout)

    async def originate(
        self,
        channel: str,
        exten: str,
        context: str,
        caller_id: str,
        variables: dict[str, str],
        timeout: float,
        *,
        priority: int = 1,
    ) -> OriginateResult:
        """Ring ``channel`` (the operator's phone), then dial ``exten`` in ``context`` from it.

        ``timeout`` is how long the first leg may ring (seconds).  Returns the
        ``OriginateResponse`` (Success once the first leg answered, Failure with its reason);
        raises ``AmiNotConnected`` when there is no session (the action is dropped, never
        queued for later), ``AmiConnectionLost`` when the session died before the answer,
        ``AmiActionFailed`` when Asterisk refused the action outright.
        """
        protocol = self._protocol
        if not self.connected or protocol is None:
            log.warning("originate refused: not connected", extra={"fields": self._fields(channel=channel)})
            raise AmiNotConnected(self.name, "not connected; Originate not sent")
        action_id = f"hub-{uuid.uuid4().hex}"
        fields = originate_action(action_id, channel, exten, context, caller_id, variables, timeout, priority)
        log.info(
            "originate sent",
            extra={
                "fields": self._fields(action_id=action_id, channel=channel, exten=exten, variables=",".join(variables))
            },
        )
        reply = await protocol.action(fields, timeout + self.settings.action_timeout)
        messages = reply if isinstance(reply, list) else [reply]
        if not messages[0].success:
            raise AmiActionFailed(self.name, "Originate", messages[0].get("Message", messages[0].get("Response")))
        final = messages[-1].frame
        result = OriginateResult(
            action_id=action_id,
            response=final.get("Response"),
            reason=final.get("Reason"),
            channel=final.get("Channel"),
            uniqueid=final.get("Uniqueid"),
            fields=final.fields,
        )
        log.info(
            "originate answered",
            extra={"fields": self._fields(action_id=action_id, response=result.response, reason=result.reason_text)},
        )
        return result

    # -- one connection ----------------------------------------------------------------

    async def _session(self) -> None:
        """One connection from connect to close; raises why it could not be established."""
        s = self.settings
        loop = asyncio.get_running_loop()
        try:
            _transport, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: AmiProtocol(s.name, s.max_frame_bytes), s.host, s.port),
                s.connect_timeout,
            )
        except TimeoutError:
            raise AmiNotConnected(self.name, f"TCP connect to {s.host}:{s.port} timed out") from None
        self._protocol = protocol
        keepalive: asyncio.Task[None] | None = None
        try:
            try:
                version = await asyncio.wait_for(protocol.banner, s.action_timeout)
            except TimeoutError:
                raise AmiActionTimeout(self.name, f"no AMI banner within {s.action_timeout:g}s") from None
            if self._stopping.is_set():
                return
            await self._login(protocol)
            self._logged_in = True
            self.connects += 1
            self._backoff.reset()
            self.last_error = None
            log.info("AMI logged in", extra={"fields": self._fields(host=s.host, port=s.port, version=version)})
            keepalive = asyncio.create_task(self._keepalive(protocol), name=f"ami-ping:{self.name}")
            await self._resync(protocol)
            protocol.enable_flow_control()
            while (item := await protocol.next_event()) is not None:
                await self._deliver(*item)
            if not self._stopping.is_set():
                self.last_error = AmiNotConnected(self.name, protocol.lost_reason)
                log.warning("AMI connection lost", extra={"fields": self._fields(reason=protocol.lost_reason)})
        except (OSError, AmiError, TimeoutError):
            # Whatever was read before the failure still happened: deliver it, in order,
            # before the next connection's resync.
            for received_at, frame in protocol.take_pending_events():
                await self._deliver(received_at, frame)
            raise
        finally:
            self._logged_in = False
            self._protocol = None
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            protocol.abort("session ended")

    async def _login(self, protocol: AmiProtocol) -> None:
        reply = await protocol.action(
            {"Action": "Login", "Username": self.settings.username, "Secret": self.settings.secret, "Events": "on"},
            self.settings.action_timeout,
        )
        message = _single(reply)
        if not message.success:
            raise AmiLoginRejected(
                self.name, f"login as {self.settings.username!r} rejected: {message.get('Message', 'no reason given')}"
            )

    async def _resync(self, protocol: AmiProtocol) -> None:
        """Ask what is live now, hand it to ``on_resync``, then stream the queue snapshot."""
        timeout = self.settings.action_timeout
        replies = _many(await protocol.action({"Action": "CoreShowChannels"}, timeout))
        at = datetime.now(UTC)
        queues = _many(await protocol.action({"Action": "QueueStatus"}, timeout))
        if not replies[0].success:
            # An empty list would tell the tracker every call ended; better no resync at all.
            reason = replies[0].get("Message", "refused")
            log.error(
                "CoreShowChannels refused; no resync (does the AMI user have read=reporting?)",
                extra={"fields": self._fields(reason=reason)},
            )
        else:
            channels = channel_snapshots(replies)
            log.info("AMI resync", extra={"fields": self._fields(channels=len(channels))})
            try:
                await self._on_resync(self.name, channels, at)
            except Exception:
                log.exception("resync handler failed", extra={"fields": self._fields()})
        for message in queues[1:]:
            await self._deliver(at, message.frame)

    async def _keepalive(self, protocol: AmiProtocol) -> None:
        """Ping every ``ping_interval``; no answer within ``ping_timeout`` means the peer is dead,
        unless it sent something meanwhile: then the Pong is queued behind events not read yet
        (a burst), and dropping a busy connection would lose exactly those events."""
        s = self.settings
        while protocol.is_open:
            await asyncio.sleep(s.ping_interval)
            if protocol.reading_paused:
                continue  # the Pong is stuck behind events we are not reading yet
            sent_at = time.monotonic()
            try:
                await protocol.action({"Action": "Ping"}, s.ping_timeout)
            except AmiNotConnected:
                return
            except AmiError:
                if protocol.reading_paused or protocol.last_heard > sent_at:
                    continue
                log.warning(
                    "AMI peer not answering Ping; reconnecting", extra={"fields": self._fields(timeout=s.ping_timeout)}
                )
                protocol.abort(f"no Pong within {s.ping_timeout:g}s")
                return

    async def _deliver(self, received_at: datetime, frame: Frame) -> None:
        event = PbxEvent(pbx=self.name, name=frame.event, fields=frame.fields, received_at=received_at)
        try:
            await self._on_event(event)
        except Exception:
            log.exception(
                "event handler failed", extra={"fields": self._fields(event=event.name, linkedid=event.get("Linkedid"))}
            )

    def _fields(self, **extra: object) -> dict[str, object]:
        return {"pbx": self.name, **extra}


def _single(reply: Reply) -> WireMessage:
    return reply[0] if isinstance(reply, list) else reply


def _many(reply: Reply) -> list[WireMessage]:
    return reply if isinstance(reply, list) else [reply]
