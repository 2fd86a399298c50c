"""The PBX's clock, reconstructed from the times the PBX itself stamps on what it sends.

Durations in the call log must be the PBX's, not the hub's: a replayed or buffered stream
arrives faster or slower than it happened, and the hub's clock may be off.  The PBX does not
stamp AMI events (unless ``timestampevents`` is on), but every new channel's Uniqueid carries
the PBX's epoch second of its creation, and Cdr events carry answer and end times.  Those are
anchors: a moment the hub received something is placed on the PBX's clock by interpolating
between the anchors around it, which stays right however the stream was stretched or squeezed.
Without anchors the hub's own clock is all there is, and it is used as is.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime


class PbxClock:
    """Maps a receive time on the hub to the PBX's clock (epoch seconds) for one PBX."""

    def __init__(self, max_anchors: int = 20_000) -> None:
        self._max = max_anchors
        # Parallel and non-decreasing; one anchor per PBX second (its first, most precise, sighting).
        self._received: list[float] = []
        self._pbx: list[float] = []

    def observe(self, received: datetime, pbx_seconds: float) -> None:
        """The PBX's clock read ``pbx_seconds`` (truncated) when the hub received something at ``received``."""
        at = received.timestamp()
        if self._pbx and (pbx_seconds <= self._pbx[-1] or at < self._received[-1]):
            return
        self._received.append(at)
        self._pbx.append(pbx_seconds)
        if len(self._received) > 2 * self._max:
            del self._received[: self._max]
            del self._pbx[: self._max]

    def reading_before(self, received: datetime) -> float | None:
        """The latest anchor's PBX time at or before ``received``: a floor for any later PBX stamp."""
        index = bisect_right(self._received, received.timestamp())
        return self._pbx[index - 1] if index else None

    def to_pbx(self, received: datetime, end: tuple[datetime, float] | None = None) -> float:
        """The PBX's clock at ``received``; ``end`` is one more anchor known only now (a call's Cdr end)."""
        at = received.timestamp()
        index = bisect_right(self._received, at)
        if not self._received:
            return at if end is None else end[1] - (end[0].timestamp() - at)
        if index == 0:
            return self._pbx[0] - (self._received[0] - at)
        if index < len(self._received):
            before, after = index - 1, index
            return _between(self._received[before], self._received[after], self._pbx[before], self._pbx[after], at)
        last_at, last_pbx = self._received[-1], self._pbx[-1]
        if end is not None and end[0].timestamp() > last_at and end[1] >= last_pbx:
            return _between(last_at, end[0].timestamp(), last_pbx, end[1], min(at, end[0].timestamp()))
        return last_pbx + (at - last_at)


def _between(r0: float, r1: float, p0: float, p1: float, at: float) -> float:
    if r1 <= r0:
        return p1
    return p0 + (at - r0) * (p1 - p0) / (r1 - r0)
