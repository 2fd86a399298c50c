"""What a PBX connector hands to the domain, and what the call tracker decides from it.

The connector knows the wire protocol; the tracker knows what a queue, a transfer or an
abandoned caller is.  ``PbxEvent`` is the boundary: one AMI event as plain data, with the
PBX it came from.  The tracker answers with the frozen call-level events below, which the
hub turns into screen-pops, call-log rows and webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PbxEvent:
    """One event as the PBX sent it: its name and headers, untouched."""

    pbx: str
    name: str  # the AMI "Event" header, e.g. "Newchannel"
    fields: Mapping[str, str]
    received_at: datetime  # UTC, when the connector read it off the socket

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """One live channel as a resynchronisation (CoreShowChannels) reports it."""

    channel: str
    uniqueid: str
    linkedid: str
    state: str  # ChannelStateDesc: Ring, Ringing, Up, Busy, ...
    caller: str
    connected: str
    context: str
    exten: str
    application: str
    duration_seconds: int
    bridge_id: str = ""
    application_data: str = ""  # e.g. "support,t,,,40" for a caller waiting in queue support


@dataclass(frozen=True, slots=True)
class CallKey:
    """A call is one Linkedid on one PBX: every leg, transfer and queue attempt shares it."""

    pbx: str
    linkedid: str

    def __str__(self) -> str:
        return f"{self.pbx}/{self.linkedid}"


@dataclass(frozen=True, slots=True)
class Ringing:
    """An operator's phone started ringing for this call: pop the card now."""

    key: CallKey
    extension: str
    caller: str | None  # E.164, or None for anonymous
    caller_name: str | None
    did: str | None
    queue: str | None
    direction: str  # inbound, outbound, internal
    at: datetime


@dataclass(frozen=True, slots=True)
class Answered:
    """An operator picked up (pop-on-answer queues pop now)."""

    key: CallKey
    extension: str
    caller: str | None
    queue: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RingingStopped:
    """An operator's phone stopped ringing; ``reason`` says why, for withdrawing the pop."""

    key: CallKey
    extension: str
    reason: str  # "answered_elsewhere", "answered", "caller_hung_up", "no_answer", "ended"
    by: str | None  # the extension that answered, when another one did
    at: datetime


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished call as it goes to the call log; fields named as in expected.json."""

    key: CallKey
    direction: str  # inbound, outbound, internal
    caller: str | None
    caller_name: str | None
    did: str | None
    queue: str | None
    status: str  # answered, missed
    reason: str | None  # for missed: abandoned, busy, no_answer
    rang: list[str] = field(default_factory=list)
    answered_by: str | None = None
    transferred_to: str | None = None
    final_operator: str | None = None
    talk_seconds: int = 0
    operator: str | None = None  # outbound and internal: who placed the call
    callee: str | None = None  # outbound and internal: who was called
    originate_id: str | None = None  # HUB_ORIGINATE_ID of a click-to-call
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: str | None = None
    recording_file: str | None = None


@dataclass(frozen=True, slots=True)
class CallFinished:
    record: CallRecord


TrackerOutput = Ringing | Answered | RingingStopped | CallFinished
