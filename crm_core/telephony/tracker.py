"""The call tracker: AMI events in, screen-pop moments and finished calls out.

Asterisk speaks in legs and applications: a channel is created, a Dial begins, a queue calls a
member, two channels enter a bridge, a leg hangs up.  Operators and the call log need calls:
"101's phone rings for +74951234567", "102 answered", "the caller gave up after 40 s".  The
tracker follows each (PBX, Linkedid) through its legs and says so, once each, even when the
connector replays events after a reconnect, and it reconciles with the PBX's list of live
channels when the link comes back.  It is pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime

from crm_core.telephony.bridges import Bridges
from crm_core.telephony.call_state import Call, Channel
from crm_core.telephony.channels import (
    epoch_of,
    extension_of,
    interface_extension,
    is_extension,
    meaningful,
    parse_pbx_time,
)
from crm_core.telephony.events import CallFinished, CallKey, ChannelSnapshot, PbxEvent, TrackerOutput
from crm_core.telephony.pbx_clock import PbxClock
from crm_core.telephony.resync import Resync

log = logging.getLogger("crm_core.telephony.tracker")

DEFAULT_TRUNK_CONTEXTS = ("from-trunk", "from-pstn", "from-external", "from-did")
_FAILED_DIAL = {"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION"}

Handler = Callable[[PbxEvent], list[TrackerOutput]]


class CallTracker:
    """Follows every call on every PBX; one instance is shared by all connectors of the hub.

    Why a state machine of its own: no single AMI event says "this call was missed" or "102
    answered it"; it takes the legs, the queue's and the Dial's reports together.  Keeping that
    here, as plain data, lets it be tested with recorded traces and replayed at any speed.
    """

    def __init__(
        self,
        region: str = "RU",
        *,
        trunk_contexts: Iterable[str] = DEFAULT_TRUNK_CONTEXTS,
        remember_finished: int = 100_000,
    ) -> None:
        self.region = region
        self._trunk_contexts = tuple(trunk_contexts)
        self._remember_finished = remember_finished
        self._calls: dict[CallKey, Call] = {}
        self._finished: OrderedDict[CallKey, None] = OrderedDict()
        self._legs: dict[tuple[str, str], CallKey] = {}  # (pbx, Uniqueid) -> call
        self._bridges = Bridges()
        self._clocks: dict[str, PbxClock] = {}
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "NewCallerid": self._on_channel_update,
            "NewConnectedLine": self._on_channel_update,
            "DialBegin": self._on_dial_begin,
            "DialState": self._on_dial_state,
            "DialEnd": self._on_dial_end,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerLeave": self._on_queue_leave,
            "QueueCallerAbandon": self._on_queue_abandon,
            "AgentCalled": self._on_agent_called,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_channel_update,
            "AgentRingNoAnswer": self._on_agent_ring_no_answer,
            "BridgeEnter": self._on_bridge_enter,
            "BridgeLeave": self._on_bridge_leave,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "LocalBridge": self._on_local_bridge,
            "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
            "VarSet": self._on_varset,
            "Cdr": self._on_cdr,
            "OriginateResponse": self._on_originate_response,
        }

    # -- the API -----------------------------------------------------------------------

    def feed(self, event: PbxEvent) -> list[TrackerOutput]:
        """What this event changes for operators and the log; odd or unknown events change nothing."""
        handler = self._handlers.get(event.name)
        if handler is None:
            return []
        try:
            return handler(event)
        except Exception:  # one malformed event must not stop a PBX's stream
            log.exception("tracker skipped an event", extra={"fields": _context(event)})
            return []

    def resync(self, pbx: str, channels: list[ChannelSnapshot], at: datetime) -> list[TrackerOutput]:
        """Reconcile with the live channels the PBX lists after a reconnect (CoreShowChannels)."""
        try:
            return Resync(self, pbx, at).run(channels)
        except Exception:
            log.exception("tracker resync failed", extra={"fields": {"pbx": pbx}})
            return []

    def active_calls(self, pbx: str | None = None) -> list[CallKey]:
        return [key for key in self._calls if pbx is None or key.pbx == pbx]

    # -- shared with the resync --------------------------------------------------------

    def clock(self, pbx: str) -> PbxClock:
        return self._clocks.setdefault(pbx, PbxClock())

    def is_finished(self, key: CallKey) -> bool:
        return key in self._finished

    def calls_of(self, pbx: str) -> list[Call]:
        return [call for key, call in self._calls.items() if key.pbx == pbx]

    def start_call(self, key: CallKey, at: datetime) -> Call:
        call = Call(key=key, region=self.region, first_seen=at)
        self._calls[key] = call
        return call

    def add_leg(self, call: Call, uniqueid: str, name: str, context: str, exten: str) -> Channel:
        channel = Channel(
            uniqueid=uniqueid, name=name, extension=extension_of(name), is_trunk=self._is_trunk_context(context)
        )
        call.add_channel(channel, exten)
        self._legs[(call.key.pbx, uniqueid)] = call.key
        return channel

    def finish(self, call: Call, at: datetime, *, lost: bool = False) -> list[TrackerOutput]:
        """The last leg is gone: withdraw what still pops, log the call, and never finish it again."""
        outputs = call.stop_all("ended", at)
        record = call.record(self.clock(call.key.pbx), at, lost=lost)
        outputs.append(CallFinished(record))
        self._forget(call)
        log.info(
            "call finished",
            extra={"fields": {"pbx": call.key.pbx, "linkedid": call.key.linkedid, "status": record.status}},
        )
        return outputs

    # -- finding calls and legs --------------------------------------------------------

    def _is_trunk_context(self, context: str) -> bool:
        return any(context == c or context.startswith(c + "-") for c in self._trunk_contexts)

    def _call(self, event: PbxEvent, *linkedid_headers: str) -> Call | None:
        for header in linkedid_headers or ("Linkedid",):
            linkedid = event.get(header)
            if linkedid:
                return self._calls.get(CallKey(event.pbx, linkedid))
        return None

    def _call_of_leg(self, pbx: str, uniqueid: str) -> Call | None:
        key = self._legs.get((pbx, uniqueid))
        return self._calls.get(key) if key is not None else None

    def _leg(self, call: Call, event: PbxEvent, prefix: str = "") -> Channel | None:
        """The leg this event's ``prefix`` headers describe, registered on first sight and kept current."""
        uniqueid = event.get(prefix + "Uniqueid")
        if not uniqueid:
            return None
        linkedid = event.get(prefix + "Linkedid")
        if linkedid and linkedid != call.key.linkedid:
            return None
        channel = call.channels.get(uniqueid)
        if channel is None:
            name = event.get(prefix + "Channel")
            channel = self.add_leg(call, uniqueid, name, event.get(prefix + "Context"), event.get(prefix + "Exten"))
        if channel.hung_up:
            return channel
        state = event.get(prefix + "ChannelStateDesc")
        if state:
            channel.state = state
        number = meaningful(event.get(prefix + "CallerIDNum"))
        caller_name = meaningful(event.get(prefix + "CallerIDName"))
        call.note_caller_id(channel, number, caller_name)
        return channel

    # -- legs ----------------------------------------------------------------------------

    def _on_newchannel(self, event: PbxEvent) -> list[TrackerOutput]:
        linkedid, uniqueid = event.get("Linkedid"), event.get("Uniqueid")
        if not linkedid or not uniqueid:
            return []
        key = CallKey(event.pbx, linkedid)
        if key in self._finished:
            return []
        epoch = epoch_of(uniqueid)
        if epoch is not None:
            self.clock(event.pbx).observe(event.received_at, float(epoch))
        call = self._calls.get(key) or self.start_call(key, event.received_at)
        channel = self._leg(call, event)
        return self._ring_if_ringing(call, channel, event.received_at)

    def _on_newstate(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event)
        if call is None:
            return []
        return self._ring_if_ringing(call, self._leg(call, event), event.received_at)

    def _ring_if_ringing(self, call: Call, channel: Channel | None, at: datetime) -> list[TrackerOutput]:
        if channel is None or channel.hung_up or channel.state != "Ringing" or not channel.is_operator:
            return []
        return call.ring(channel.extension, at)

    def _on_channel_update(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event)
        if call is not None:
            self._leg(call, event)
        return []

    def _on_local_bridge(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "LocalOneLinkedid", "LocalTwoLinkedid")
        if call is not None:
            self._leg(call, event, "LocalOne")
            self._leg(call, event, "LocalTwo")
        return []

    def _on_varset(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event)
        if call is None:
            return []
        self._leg(call, event)
        variable, value = event.get("Variable"), event.get("Value")
        if variable == "MIXMONITOR_FILENAME" and value:
            call.recording_file = value
        elif variable == "HUB_ORIGINATE_ID" and value:
            call.originate_id = value
        return []

    # -- dialling ------------------------------------------------------------------------

    def _on_dial_begin(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "Linkedid", "DestLinkedid")
        if call is None:
            return []
        source = self._leg(call, event)
        target = self._leg(call, event, "Dest")
        if source is None or target is None or call.inbound or not call.is_caller_side(source):
            return []
        if call.callee is None:
            if target.is_operator:
                call.callee = target.extension if target.extension != call.operator else None
            else:
                call.callee = call.party(event.get("Exten") or event.get("DestExten"))
        return []

    def _on_dial_state(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "Linkedid", "DestLinkedid")
        if call is None:
            return []
        self._leg(call, event)
        target = self._leg(call, event, "Dest")
        if target is None or event.get("DialStatus") != "RINGING" or not target.is_operator:
            return []
        return call.ring(target.extension, event.received_at)

    def _on_dial_end(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "Linkedid", "DestLinkedid")
        if call is None:
            return []
        self._leg(call, event)
        target = self._leg(call, event, "Dest")
        status, at = event.get("DialStatus"), event.received_at
        if target is None or not status or (call.inbound and target.is_trunk):
            return []  # no target, or the outside party's own leg being set up
        if status == "ANSWER":
            return self._dial_answered(call, target, at)
        call.dial_outcome = status
        if not target.is_operator:
            return []
        if status in _FAILED_DIAL:
            return call.stop(target.extension, "no_answer", at)
        if status == "CANCEL":
            return call.dial_cancelled(target.extension, at)
        return []

    def _dial_answered(self, call: Call, target: Channel, at: datetime) -> list[TrackerOutput]:
        if not target.is_operator:
            return call.connect_outside(at)
        if not call.inbound and target.extension == call.operator:
            return call.operator_picked_up(target.extension, at)
        return call.connect_operator(target.extension, at)

    # -- queues ----------------------------------------------------------------------------

    def _queue_call(self, event: PbxEvent) -> Call | None:
        call = self._call(event)
        if call is not None:
            self._leg(call, event)
            call.queue = event.get("Queue") or call.queue
        return call

    def _member(self, call: Call, event: PbxEvent) -> str | None:
        target = self._leg(call, event, "Dest")
        interface = meaningful(event.get("Interface"))
        extension = interface_extension(interface) if interface else (target.extension if target else "")
        return extension if is_extension(extension) else None

    def _on_queue_join(self, event: PbxEvent) -> list[TrackerOutput]:
        self._queue_call(event)
        return []

    def _on_queue_leave(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._queue_call(event)
        if call is None or call.answered or call.abandoned:
            return []
        call.left_queue = True
        return call.queue_gave_up(event.received_at)

    def _on_queue_abandon(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._queue_call(event)
        if call is None:
            return []
        call.abandoned = True
        return call.stop_all("caller_hung_up", event.received_at)

    def _on_agent_called(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._queue_call(event)
        member = self._member(call, event) if call else None
        return call.ring(member, event.received_at) if call and member else []

    def _on_agent_connect(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._queue_call(event)
        member = self._member(call, event) if call else None
        return call.connect_operator(member, event.received_at) if call and member else []

    def _on_agent_ring_no_answer(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._queue_call(event)
        member = self._member(call, event) if call else None
        return call.stop(member, "no_answer", event.received_at) if call and member else []

    # -- bridges and transfers ---------------------------------------------------------------

    def _on_bridge_enter(self, event: PbxEvent) -> list[TrackerOutput]:
        """Two legs now talk: an answer the Dial or the queue did not report (a pickup, a transfer)."""
        call = self._call(event)
        bridge = event.get("BridgeUniqueid")
        channel = self._leg(call, event) if call else None
        if call is None or channel is None or channel.hung_up or not bridge:
            return []
        outputs: list[TrackerOutput] = []
        for uniqueid in self._bridges.enter(event.pbx, bridge, channel.uniqueid):
            other_call = self._call_of_leg(event.pbx, uniqueid)
            other = other_call.channels.get(uniqueid) if other_call else None
            if other_call is not None and other is not None:
                outputs += call.talks_with(channel, other, other_call is call, event.received_at)
                outputs += other_call.talks_with(other, channel, other_call is call, event.received_at)
        return outputs

    def _on_bridge_leave(self, event: PbxEvent) -> list[TrackerOutput]:
        self._bridges.leave(event.pbx, event.get("BridgeUniqueid"), event.get("Uniqueid"))
        return []

    def _on_blind_transfer(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "TransfereeLinkedid", "TransfererLinkedid")
        target = event.get("Extension")
        if call is not None and target and event.get("Result", "Success") == "Success":
            call.transferred_to = call.party(target)
        return []

    def _on_attended_transfer(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event, "TransfereeLinkedid", "OrigTransfererLinkedid")
        if call is None or event.get("Result", "Success") != "Success":
            return []
        target = extension_of(event.get("TransferTargetChannel"))
        if not is_extension(target):
            target = meaningful(event.get("SecondTransfererConnectedLineNum")) or ""
        if target:
            call.transferred_to = call.party(target)
        return []

    # -- the end -------------------------------------------------------------------------------

    def _on_hangup_request(self, event: PbxEvent) -> list[TrackerOutput]:
        """The far end hung up (a BYE from the trunk): dials are about to be cancelled because of it."""
        call = self._call(event)
        channel = self._leg(call, event) if call else None
        if call is None or channel is None:
            return []
        channel.leaving = True
        return call.stop_all("caller_hung_up", event.received_at) if call.is_caller_side(channel) else []

    def _on_hangup(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call(event)
        channel = self._leg(call, event) if call else None
        if call is None or channel is None or channel.hung_up:
            return []
        channel.hung_up = channel.leaving = True
        self._bridges.forget(event.pbx, channel.uniqueid)
        outputs: list[TrackerOutput] = []
        if call.is_caller_side(channel):
            call.hangup_cause = call.hangup_cause or meaningful(event.get("Cause-txt"))
            outputs += call.stop_all("caller_hung_up", event.received_at)
        if not call.live_channels():
            outputs += self.finish(call, event.received_at)
        return outputs

    def _on_cdr(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call_of_leg(event.pbx, event.get("UniqueID"))
        end = parse_pbx_time(event.get("EndTime"))
        if call is not None and end is not None:
            call.cdr_end = end if call.cdr_end is None else max(call.cdr_end, end)
        answer = parse_pbx_time(event.get("AnswerTime"))
        if (
            call is not None
            and answer is not None
            and event.get("Disposition") == "ANSWERED"
            and event.get("DestinationChannel")
        ):
            call.cdr_answer = answer if call.cdr_answer is None else min(call.cdr_answer, answer)
        return []

    def _on_originate_response(self, event: PbxEvent) -> list[TrackerOutput]:
        call = self._call_of_leg(event.pbx, event.get("Uniqueid"))
        exten = event.get("Exten")
        if call is None or call.inbound or event.get("Response") != "Success" or not exten:
            return []
        if call.callee is None and exten != call.operator:
            call.callee = call.party(exten)
        return []

    def _forget(self, call: Call) -> None:
        key = call.key
        self._calls.pop(key, None)
        self._finished[key] = None
        while len(self._finished) > self._remember_finished:
            self._finished.popitem(last=False)
        for uniqueid in call.channels:
            self._legs.pop((key.pbx, uniqueid), None)
            self._bridges.forget(key.pbx, uniqueid)


def _context(event: PbxEvent) -> dict[str, str]:
    return {"pbx": event.pbx, "event": event.name, "linkedid": event.get("Linkedid")}
