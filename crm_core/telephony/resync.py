"""Catching up after the AMI link was down: the PBX's list of live channels against what was known.

While the hub was not listening, calls ended, were answered, or began.  The PBX cannot replay
what happened, but it can list the channels that are up now (CoreShowChannels).  A call the
tracker followed that has no live channel left ended in the gap; it is finished with the best
verdict from what was known.  A live call the tracker never saw is taken up from its channels.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from crm_core.telephony.call_state import Call, Channel
from crm_core.telephony.channels import epoch_of, meaningful
from crm_core.telephony.events import CallKey, ChannelSnapshot, TrackerOutput

if TYPE_CHECKING:
    from crm_core.telephony.tracker import CallTracker


class Resync:
    """One reconciliation of one PBX's calls with its live channels at ``at``."""

    def __init__(self, tracker: CallTracker, pbx: str, at: datetime) -> None:
        self.tracker = tracker
        self.pbx = pbx
        self.at = at

    def run(self, channels: list[ChannelSnapshot]) -> list[TrackerOutput]:
        self._observe_clock(channels)
        by_call: dict[str, list[ChannelSnapshot]] = defaultdict(list)
        for snapshot in channels:
            if snapshot.linkedid and snapshot.uniqueid:
                by_call[snapshot.linkedid].append(snapshot)
        outputs: list[TrackerOutput] = []
        for call in self.tracker.calls_of(self.pbx):
            outputs += self._reconcile(call, by_call.pop(call.key.linkedid, []))
        for linkedid, snapshots in by_call.items():
            key = CallKey(self.pbx, linkedid)
            if not self.tracker.is_finished(key):
                outputs += self._adopt(key, snapshots)
        return outputs

    def _observe_clock(self, channels: list[ChannelSnapshot]) -> None:
        """A live channel's creation second plus its age (both truncated) is a lower bound of the PBX's clock."""
        readings = [
            epoch + max(0, snapshot.duration_seconds)
            for snapshot in channels
            if (epoch := epoch_of(snapshot.uniqueid)) is not None
        ]
        clock = self.tracker.clock(self.pbx)
        if readings and max(readings) > clock.to_pbx(self.at):
            clock.observe(self.at, float(max(readings)))

    def _reconcile(self, call: Call, snapshots: list[ChannelSnapshot]) -> list[TrackerOutput]:
        live = {snapshot.uniqueid for snapshot in snapshots}
        for channel in call.live_channels():
            if channel.uniqueid not in live:
                channel.hung_up = channel.leaving = True
        outputs = self._apply(call, snapshots)
        if not call.live_channels():
            outputs += self.tracker.finish(call, self.at, lost=True)
        return outputs

    def _adopt(self, key: CallKey, snapshots: list[ChannelSnapshot]) -> list[TrackerOutput]:
        call = self.tracker.start_call(key, self.at)
        # The leg that started the call first, so that it decides the direction.
        ordered = sorted(snapshots, key=lambda s: (s.uniqueid != key.linkedid, -s.duration_seconds))
        return self._apply(call, ordered)

    def _apply(self, call: Call, snapshots: list[ChannelSnapshot]) -> list[TrackerOutput]:
        legs: list[tuple[ChannelSnapshot, Channel]] = []
        for snapshot in snapshots:
            channel = call.channels.get(snapshot.uniqueid) or self.tracker.add_leg(
                call, snapshot.uniqueid, snapshot.channel, snapshot.context, snapshot.exten
            )
            if channel.hung_up:
                continue
            channel.state = snapshot.state or channel.state
            call.note_caller_id(channel, meaningful(snapshot.caller), None)
            if snapshot.application == "Queue" and not call.queue and snapshot.application_data:
                call.queue = snapshot.application_data.split(",", 1)[0]  # Queue(support,t,,,40)
            legs.append((snapshot, channel))
        outputs: list[TrackerOutput] = []
        if not call.answered:
            outputs += self._answered(call, legs)
        for snapshot, channel in legs:
            if snapshot.state == "Ringing" and channel.is_operator:
                outputs += call.ring(channel.extension, self.at)
        return outputs + self._silenced(call, legs)

    def _answered(self, call: Call, legs: list[tuple[ChannelSnapshot, Channel]]) -> list[TrackerOutput]:
        """A leg talking with the caller's leg: the call was answered while the hub was away."""
        callers = [(s, c) for s, c in legs if s.state == "Up" and call.is_caller_side(c)]
        if not callers:
            return []
        bridges = {s.bridge_id for s, _ in callers if s.bridge_id}
        for snapshot, channel in legs:
            if snapshot.state != "Up" or call.is_caller_side(channel):
                continue
            if bridges and snapshot.bridge_id not in bridges:
                continue
            # Not earlier than the answering leg was created: its age bounds the talk from above.
            epoch = epoch_of(snapshot.uniqueid)
            since = float(epoch) if epoch is not None else None
            if channel.is_operator and (call.inbound or channel.extension != call.operator):
                return call.connect_operator(channel.extension, self.at, since)
            if not channel.is_operator and not call.inbound:
                return call.connect_outside(self.at, since)
        return []

    def _silenced(self, call: Call, legs: list[tuple[ChannelSnapshot, Channel]]) -> list[TrackerOutput]:
        """Pops of phones that no live leg rings any more."""
        ringing = {c.extension for s, c in legs if s.state == "Ringing"}
        silent = [extension for extension in call.ringing if extension not in ringing]
        return [out for extension in silent for out in call.stop(extension, "ended", self.at)]
