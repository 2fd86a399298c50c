"""Wiring the PBXes to the domain: AMI events in, pops out to browsers, calls into the log.

One connector and one call tracker per configured PBX (numbers read in that PBX's region); what a tracker decides
is dispatched here: ringing pops the card, answering elsewhere or hanging up withdraws
it, a finished call is written to the log.  Events of one PBX are handled in order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import phonenumbers

from connectors.ami import AmiConnector, OriginateResult
from connectors.ami import PbxSettings as AmiSettings
from crm_core.models import User
from crm_core.telephony.call_log import CallLog, Owner, outside_number
from crm_core.telephony.events import (
    Answered,
    CallFinished,
    CallRecord,
    ChannelSnapshot,
    PbxEvent,
    Ringing,
    RingingStopped,
    TrackerOutput,
)
from crm_core.telephony.tracker import CallTracker
from hub.config import PbxSettings
from hub.context import HubContext
from hub.pop_dispatch import PopDispatcher, Withdrawal
from hub.screen_pop import PopRequest, Pops

log = logging.getLogger("hub.telephony")
ELSEWHERE_MARGIN = 10.0  # seconds beyond the originate timeout to wait for the node that follows the PBX
LOG_BATCH = 200  # calls written in one transaction when a backlog has built up
Progress = Ringing | Answered | CallFinished


class Connector(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    async def originate(
        self, channel: str, exten: str, context: str, caller_id: str, variables: dict[str, str], timeout: float
    ) -> OriginateResult: ...


ConnectorFactory = Callable[..., Connector]


class Elsewhere(Protocol):
    async def __call__(
        self, user: User, number: str, *, pbx: str, client_id: int | None, contact_id: int | None, timeout: float
    ) -> ClickToCall: ...


class NoPbx(Exception):
    """Click-to-call asked of a hub with no PBX configured, or of an unknown one."""


class PbxElsewhere(Exception):
    """Click-to-call asked of a node that does not follow that PBX (several nodes)."""


@dataclass(frozen=True, slots=True)
class ClickToCall:
    originate_id: str
    pbx: str
    result: OriginateResult


class Telephony:
    """Owns the AMI connectors' tasks, their trackers and the dispatch of what they decide."""

    def __init__(
        self,
        context: HubContext,
        pops: Pops,
        connector_factory: ConnectorFactory = AmiConnector,
        card_extras: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.context = context
        self.pops = pops
        self.popper = PopDispatcher(context, pops, card_extras)
        self._trackers = {p.name: CallTracker(region=p.region) for p in context.settings.pbx}
        self._pbx: dict[str, PbxSettings] = {p.name: p for p in context.settings.pbx}
        self._factory = connector_factory
        # The PBXes this node follows now (all of them, unless several nodes share the work).
        self._connectors: dict[str, Connector] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # What goes to the database, in the order it happened: calls in progress (announced
        # as events) and finished calls (logged).
        self._to_write: asyncio.Queue[Progress] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # Click-to-call placed for a chosen client: the call is filed under that client.
        self._originated_for: dict[str, Owner] = {}
        self.events_seen = 0
        self.calls_logged: dict[str, int] = {}
        # Several nodes: click-to-call for a PBX another node follows is asked of it (hub.call_relay).
        self.elsewhere: Elsewhere | None = None

    @property
    def pbx_names(self) -> list[str]:
        return list(self._pbx)

    async def start(self, *, follow_all: bool = True) -> None:
        """Start writing and popping; follow every PBX, unless each is to be followed by the
        node holding its lease (``follow``, ``unfollow``: several nodes, ``hub.leases``)."""
        self.popper.start()
        self._writer = asyncio.create_task(self._write_log(), name="call-log-writer")
        if follow_all:
            for name in self._pbx:
                await self.follow(name)

    async def follow(self, name: str) -> None:
        """Listen to this PBX: a new connector, whose first login resyncs the calls in progress."""
        if name in self._connectors:
            return
        connector = self._factory(connector_settings(self._pbx[name]), self.handle_event, self.handle_resync)
        self._connectors[name] = connector
        self._tasks[name] = asyncio.create_task(connector.run(), name=f"ami:{name}")

    async def unfollow(self, name: str) -> None:
        """Stop listening to this PBX (another node follows it now): its calls in progress are
        forgotten here, and that node's resync takes them up."""
        connector, task = self._connectors.pop(name, None), self._tasks.pop(name, None)
        if connector is not None:
            await connector.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._trackers[name] = CallTracker(region=self._pbx[name].region)

    async def stop(self) -> None:
        """Stop listening, then write every call already finished before returning."""
        await asyncio.gather(*(c.stop() for c in self._connectors.values()), return_exceptions=True)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        self._connectors.clear()
        if self._writer is not None:
            await self._to_write.join()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        await self.popper.stop()

    async def _write_log(self) -> None:
        """Calls are written by this one task, in the order things happened, off the event path,
        so a ringing phone's pop never waits behind a log write; a backlog goes in one transaction."""
        while True:
            batch = [await self._to_write.get()]
            while len(batch) < LOG_BATCH and not self._to_write.empty():
                batch.append(self._to_write.get_nowait())
            try:
                await self._log(batch)
            except Exception:  # one bad call must not cost the others their row: retry them singly
                for item in batch:
                    try:
                        await self._log([item])
                    except Exception:
                        key = item.record.key if isinstance(item, CallFinished) else item.key
                        log.exception("call not logged", extra={"fields": {"linkedid": key.linkedid}})
            finally:
                for _ in batch:
                    self._to_write.task_done()

    def calls_in_progress(self) -> int:
        return sum(len(tracker.active_calls()) for tracker in self._trackers.values())

    def follows(self, name: str) -> bool:
        return name in self._connectors

    def connected(self) -> dict[str, bool]:
        """Each PBX this node follows: whether its AMI session is up."""
        return {name: c.connected for name, c in self._connectors.items()}

    # -- from the PBX --------------------------------------------------------------

    async def handle_event(self, event: PbxEvent) -> None:
        self.events_seen += 1
        await self.dispatch(self._trackers[event.pbx].feed(event))

    async def handle_resync(self, pbx: str, channels: list[ChannelSnapshot], at: datetime) -> None:
        await self.dispatch(self._trackers[pbx].resync(pbx, channels, at))

    async def dispatch(self, outputs: list[TrackerOutput]) -> None:
        """Never waits on the database: pops go to their dispatcher, finished calls to the writer."""
        screen_pop = self.context.settings.screen_pop
        for output in outputs:
            if isinstance(output, Ringing | Answered):
                self._to_write.put_nowait(output)  # announced to webhooks, in order with the call's end
            match output:
                case Ringing() if screen_pop.moment_for(output.queue) == "ring":
                    self.popper.submit(
                        PopRequest(
                            output.key,
                            output.extension,
                            output.caller,
                            output.caller_name,
                            output.queue,
                            output.did,
                            "ring",
                        )
                    )
                case Answered() if screen_pop.moment_for(output.queue) == "answer":
                    self.popper.submit(
                        PopRequest(output.key, output.extension, output.caller, None, output.queue, None, "answer")
                    )
                case RingingStopped() if output.reason != "answered":
                    self.popper.submit(Withdrawal(output.key, (output.extension,), output.reason, output.by))
                case CallFinished():
                    self.popper.submit(Withdrawal(output.record.key, None, "ended"))
                    self._to_write.put_nowait(output)

    async def _log(self, batch: list[Progress]) -> None:
        """One transaction; runs of moments and of finished calls are written in turn, so the
        events they publish keep the order things happened in."""
        records: list[CallRecord] = []
        ids: list[int | None] = []
        async with self.context.transaction() as session:
            call_log = CallLog(session, self.context.rules)
            for finished, run in itertools.groupby(batch, key=lambda item: isinstance(item, CallFinished)):
                items = list(run)
                if not finished:
                    await call_log.announce([i for i in items if not isinstance(i, CallFinished)])
                    continue
                done = [i.record for i in items if isinstance(i, CallFinished)]
                ids += await call_log.record_many([(r, self._owner(r)) for r in done])
                records += done
        for record, call_id in zip(records, ids, strict=True):
            if record.originate_id:
                self._originated_for.pop(record.originate_id, None)
            if call_id is None:
                continue
            self.calls_logged[record.status] = self.calls_logged.get(record.status, 0) + 1
            log.info(
                "call logged",
                extra={
                    "fields": {
                        "linkedid": record.key.linkedid,
                        "pbx": record.key.pbx,
                        "status": record.status,
                        "call_id": call_id,
                    }
                },
            )

    def _owner(self, record: CallRecord) -> Owner | None:
        """The card a call belongs to when already known: the one a click-to-call was placed
        from, or the one its pop found for the same number."""
        if record.originate_id and record.originate_id in self._originated_for:
            return self._originated_for[record.originate_id]
        number = outside_number(record)
        return self.popper.match_for(record.key, number) if number else None

    # -- to the PBX ------------------------------------------------------------------

    async def click_to_call(
        self,
        user: User,
        number: str,
        *,
        pbx: str | None = None,
        client_id: int | None = None,
        contact_id: int | None = None,
    ) -> ClickToCall:
        """Ring the operator's phone, then dial ``number`` (E.164) from it."""
        name = pbx or next(iter(self._pbx), None)
        if name is None or name not in self._pbx:
            raise NoPbx("no PBX is configured" if name is None else f"no PBX named {name!r}")
        settings = self._pbx[name]
        connector = self._connectors.get(name)
        if connector is None:
            if self.elsewhere is None:
                raise PbxElsewhere(f"PBX {name!r} is followed by another hub node; ask that node")
            return await self.elsewhere(user, number, pbx=name, client_id=client_id, contact_id=contact_id,
                                        timeout=settings.originate_timeout_seconds + ELSEWHERE_MARGIN)  # fmt: skip
        originate_id = f"c2c-{uuid.uuid4().hex[:16]}"
        self._originated_for[originate_id] = (client_id, contact_id)
        try:
            result = await connector.originate(
                channel=settings.operator_channel.format(extension=user.extension),
                exten=dial_string(number, settings.dial_format),
                context=settings.originate_context,
                caller_id=f'"{user.full_name or user.username}" <{user.extension}>',
                variables={"HUB_ORIGINATE_ID": originate_id},
                timeout=settings.originate_timeout_seconds,
            )
        except BaseException:
            self._originated_for.pop(originate_id, None)
            raise
        if not result.success:
            self._originated_for.pop(originate_id, None)
        return ClickToCall(originate_id, name, result)


def dial_string(e164: str, dial_format: str) -> str:
    """How the PBX's outbound routes want the number: digits (74951234567), +E.164, or 8-prefixed."""
    if dial_format == "e164":
        return e164
    parsed = phonenumbers.parse(e164)
    if dial_format == "national" and parsed.country_code == 7:
        return "8" + str(parsed.national_number)
    return e164.lstrip("+")


def connector_settings(pbx: PbxSettings) -> AmiSettings:
    return AmiSettings(
        name=pbx.name,
        host=pbx.host,
        port=pbx.port,
        username=pbx.username,
        secret=pbx.secret.get_secret_value(),
        region=pbx.region,
    )
