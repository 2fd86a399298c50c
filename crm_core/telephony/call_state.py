"""One call as the tracker follows it: its legs, who rang, who answered, and the verdict at the end.

Asterisk reports legs (channels) and applications (Dial, Queue); a call is every leg sharing a
Linkedid.  ``Call`` keeps what the legs have told so far and turns each decisive moment (a phone
rings, an operator connects, the caller gives up) into the tracker's outputs, so that every pop
is opened once and withdrawn once, and the record at the end says what the call was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from crm_core.phones import normalise
from crm_core.telephony.channels import epoch_of, is_extension, utc
from crm_core.telephony.events import (
    Answered,
    CallKey,
    CallRecord,
    Ringing,
    RingingStopped,
    TrackerOutput,
)
from crm_core.telephony.pbx_clock import PbxClock

_BUSY = {"BUSY", "CONGESTION"}
_NOT_ANSWERED = {"NOANSWER", "CHANUNAVAIL"}


@dataclass(slots=True)
class Channel:
    """One leg of a call, as first seen (its context then says whether it came from a trunk)."""

    uniqueid: str
    name: str
    extension: str  # the resource of its name: "101" for PJSIP/101-0000000a or Local/101@agents-...;1
    is_trunk: bool  # created in a trunk context: the outside party of an inbound call
    state: str = ""
    hung_up: bool = False
    leaving: bool = False  # its hang-up was requested or done

    @property
    def is_operator(self) -> bool:
        return not self.is_trunk and is_extension(self.extension)


@dataclass(slots=True)
class Call:
    """Everything known about one (PBX, Linkedid) while it lasts."""

    key: CallKey
    region: str
    first_seen: datetime
    channels: dict[str, Channel] = field(default_factory=dict)
    origin: str | None = None  # the Uniqueid of the leg that started the call
    inbound: bool = False
    caller: str | None = None
    caller_name: str | None = None
    did: str | None = None
    queue: str | None = None
    operator: str | None = None  # outbound and internal: who placed the call
    callee: str | None = None
    originate_id: str | None = None
    rang: list[str] = field(default_factory=list)
    ringing: dict[str, bool] = field(default_factory=dict)  # extension -> its dial was already cancelled
    answered_extensions: set[str] = field(default_factory=set)
    answered_by: str | None = None
    transferred_to: str | None = None
    final_operator: str | None = None
    talk_from: datetime | None = None  # received time of the answer
    talk_from_pbx: float | None = None  # the answer on the PBX's clock, when known directly
    abandoned: bool = False
    left_queue: bool = False
    dial_outcome: str | None = None  # the last non-answer DialStatus towards a callee
    cdr_end: float | None = None  # the latest Cdr EndTime of any leg, PBX clock
    # The earliest answer the PBX recorded for a leg it dialled (a Cdr with a destination):
    # for an inbound call, the moment an operator picked up, to the second, at any replay speed.
    cdr_answer: float | None = None
    hangup_cause: str | None = None
    recording_file: str | None = None

    # -- legs ------------------------------------------------------------------------

    def add_channel(self, channel: Channel, exten: str) -> None:
        """Register a leg; the leg whose Uniqueid is the Linkedid (or the first one seen) started the call."""
        self.channels[channel.uniqueid] = channel
        if self.origin is not None and channel.uniqueid != self.key.linkedid:
            return
        self.origin = channel.uniqueid
        self.inbound = channel.is_trunk
        if self.inbound:
            self.did = exten if exten and exten != "s" else self.did
        else:
            self.operator = channel.extension if channel.is_operator else self.operator
            if exten and exten not in ("s", self.operator):
                self.callee = self.party(exten)

    def live_channels(self) -> list[Channel]:
        return [c for c in self.channels.values() if not c.hung_up]

    def is_caller_side(self, channel: Channel) -> bool:
        """The party that placed the call: the trunk leg of an inbound call, the operator's leg otherwise."""
        if self.inbound:
            return channel.is_trunk
        if channel.uniqueid == self.origin:
            return True
        return self.operator is not None and channel.is_operator and channel.extension == self.operator

    def caller_leaving(self) -> bool:
        return any(c.leaving for c in self.channels.values() if self.is_caller_side(c))

    def note_caller_id(self, channel: Channel, number: str | None, name: str | None) -> None:
        if not self.is_caller_side(channel):
            return
        if self.inbound and number:
            self.caller = self.party(number)
        if name and (self.inbound or self.caller_name is None):
            self.caller_name = name

    def party(self, raw: str) -> str | None:
        """An extension as is, a phone number in E.164 (or as sent when it is none), anonymous as None."""
        text = raw.strip()
        if is_extension(text):
            return text
        e164 = normalise(text, self.region).e164
        if e164:
            return e164
        return text if any(ch.isdigit() for ch in text) else None

    @property
    def direction(self) -> str:
        if self.inbound:
            return "inbound"
        if self.callee is not None:
            return "internal" if is_extension(self.callee) else "outbound"
        return "outbound" if self.originate_id else "internal"

    @property
    def answered(self) -> bool:
        return self.talk_from is not None

    @property
    def outside_party(self) -> str | None:
        """Whom a pop should show: the caller of an inbound call, the callee of an outbound one."""
        if self.inbound:
            return self.caller
        return self.callee if self.direction == "outbound" else None

    # -- decisive moments --------------------------------------------------------------

    def ring(self, extension: str, at: datetime) -> list[TrackerOutput]:
        """An operator's phone rings: one pop per (call, extension), however many events say so."""
        if extension in self.rang:
            return []
        self.rang.append(extension)
        self.ringing[extension] = False
        return [
            Ringing(
                key=self.key,
                extension=extension,
                caller=self.outside_party,
                caller_name=self.caller_name,
                did=self.did,
                queue=self.queue,
                direction=self.direction,
                at=at,
            )
        ]

    def stop(self, extension: str, reason: str, at: datetime, by: str | None = None) -> list[TrackerOutput]:
        if self.ringing.pop(extension, None) is None:
            return []
        return [RingingStopped(key=self.key, extension=extension, reason=reason, by=by, at=at)]

    def stop_all(self, reason: str, at: datetime, by: str | None = None) -> list[TrackerOutput]:
        return [out for extension in list(self.ringing) for out in self.stop(extension, reason, at, by)]

    def dial_cancelled(self, extension: str, at: datetime) -> list[TrackerOutput]:
        """A dial was cancelled: answered elsewhere, the caller left, or (decided later) the queue gave up."""
        if self.answered:
            return self.stop(extension, "answered_elsewhere", at, self.final_operator or self.answered_by)
        if self.caller_leaving():
            return self.stop(extension, "caller_hung_up", at)
        if extension in self.ringing:
            self.ringing[extension] = True
        return []

    def queue_gave_up(self, at: datetime) -> list[TrackerOutput]:
        """The caller left the queue unanswered without hanging up (timeout, exit key)."""
        cancelled = [extension for extension, done in self.ringing.items() if done]
        return [out for extension in cancelled for out in self.stop(extension, "no_answer", at)]

    def connect_operator(self, extension: str, at: datetime, pbx_time: float | None = None) -> list[TrackerOutput]:
        """An operator is now talking with the caller (or, for an internal call, the callee picked up)."""
        if self.talk_from is None:
            self.talk_from = at
            self.talk_from_pbx = pbx_time
            self.answered_by = extension
        if not self.inbound and self.callee is None:
            self.callee = extension
        self.final_operator = extension
        outputs = self.stop(extension, "answered", at)
        for other in list(self.ringing):
            outputs += self.stop(other, "answered_elsewhere", at, extension)
        return outputs + self._answered(extension, at)

    def connect_outside(self, at: datetime, pbx_time: float | None = None) -> list[TrackerOutput]:
        """The outside party picked up: an outbound call's callee, or an inbound call forwarded out."""
        if self.talk_from is None:
            self.talk_from = at
            self.talk_from_pbx = pbx_time
        if not self.inbound and self.final_operator is None:
            self.final_operator = self.operator
        return self.stop_all("answered_elsewhere", at)

    def talks_with(self, leg: Channel, other: Channel, same_call: bool, at: datetime) -> list[TrackerOutput]:
        """``leg`` now shares a bridge with ``other`` (of this call, or of another one after a transfer)."""
        if not self.is_caller_side(leg) or (same_call and self.is_caller_side(other)):
            return []
        if other.is_operator:
            if self.inbound or other.extension != self.operator:
                return self.connect_operator(other.extension, at)
            return []
        return [] if self.inbound else self.connect_outside(at)

    def operator_picked_up(self, extension: str, at: datetime) -> list[TrackerOutput]:
        """The operator answered their own leg of a click-to-call; the call itself is not answered yet."""
        return self.stop(extension, "answered", at) + self._answered(extension, at)

    def _answered(self, extension: str, at: datetime) -> list[TrackerOutput]:
        if extension in self.answered_extensions:
            return []
        self.answered_extensions.add(extension)
        return [Answered(key=self.key, extension=extension, caller=self.outside_party, queue=self.queue, at=at)]

    # -- the verdict -------------------------------------------------------------------

    def verdict(self, lost: bool) -> tuple[str, str | None]:
        """Answered or missed, and why; ``lost`` when the call ended unseen (the AMI link was down)."""
        if self.answered:
            return "answered", None
        if lost:
            return "missed", "abandoned" if self.queue else "no_answer"
        if self.abandoned:
            return "missed", "abandoned"
        if self.dial_outcome in _BUSY:
            return "missed", "busy"
        if self.dial_outcome in _NOT_ANSWERED or self.left_queue:
            return "missed", "no_answer"
        if self.dial_outcome == "CANCEL" or self.inbound:
            return "missed", "abandoned"
        return "missed", "no_answer"

    def record(self, clock: PbxClock, ended: datetime, *, lost: bool = False) -> CallRecord:
        """The call log's row; times on the PBX's clock, which Cdr events and Uniqueids give away."""
        status, reason = self.verdict(lost)
        end_pbx = clock.to_pbx(ended)
        floor = clock.reading_before(ended)
        if self.cdr_end is not None and not lost and (floor is None or self.cdr_end >= floor):
            end_pbx = self.cdr_end  # the PBX's own word, unless it is older than what came before the end
        answer_pbx: float | None = None
        if status == "answered":
            answer_pbx = self.talk_from_pbx
            if self.inbound and self.cdr_answer is not None and self.cdr_end is not None and not lost:
                answer_pbx = self.cdr_answer
            elif answer_pbx is None and self.talk_from is not None:
                answer_pbx = clock.to_pbx(self.talk_from, end=(ended, end_pbx))
        start = epoch_of(self.key.linkedid)
        start_pbx = float(start) if start is not None else clock.to_pbx(self.first_seen)
        talk = max(0, math.floor(end_pbx - answer_pbx)) if answer_pbx is not None else 0
        direction = self.direction
        return CallRecord(
            key=self.key,
            direction=direction,
            caller=self.caller if self.inbound else None,
            caller_name=self.caller_name,
            did=self.did,
            queue=self.queue,
            status=status,
            reason=reason,
            rang=list(self.rang),
            answered_by=self.answered_by,
            transferred_to=self.transferred_to,
            final_operator=self.final_operator,
            talk_seconds=talk,
            operator=None if self.inbound else self.operator,
            callee=None if self.inbound else self.callee,
            originate_id=self.originate_id,
            started_at=utc(min(start_pbx, end_pbx)),
            answered_at=utc(answer_pbx) if answer_pbx is not None else None,
            ended_at=utc(end_pbx),
            hangup_cause=self.hangup_cause,
            recording_file=self.recording_file,
        )
