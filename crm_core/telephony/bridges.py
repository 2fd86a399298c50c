"""Which legs share which bridge: talking parties, even across calls after a transfer.

A bridge is where two (or more) legs talk.  Its members may belong to different Linkedids
(an attended transfer joins the caller with the consultation call's target), so membership
is kept per PBX, outside any one call.
"""

from __future__ import annotations


class Bridges:
    """Bridge membership of one hub's PBXes, in the order legs entered."""

    def __init__(self) -> None:
        self._members: dict[tuple[str, str], dict[str, None]] = {}  # (pbx, bridge) -> Uniqueids
        self._bridges_of: dict[tuple[str, str], dict[str, None]] = {}  # (pbx, Uniqueid) -> bridges

    def enter(self, pbx: str, bridge: str, uniqueid: str) -> list[str]:
        """Add a leg; the legs already there, which it now talks with."""
        members = self._members.setdefault((pbx, bridge), {})
        others = [member for member in members if member != uniqueid]
        members[uniqueid] = None
        self._bridges_of.setdefault((pbx, uniqueid), {})[bridge] = None
        return others

    def leave(self, pbx: str, bridge: str, uniqueid: str) -> None:
        members = self._members.get((pbx, bridge))
        if members is not None:
            members.pop(uniqueid, None)
            if not members:
                del self._members[(pbx, bridge)]
        bridges = self._bridges_of.get((pbx, uniqueid))
        if bridges is not None:
            bridges.pop(bridge, None)
            if not bridges:
                del self._bridges_of[(pbx, uniqueid)]

    def forget(self, pbx: str, uniqueid: str) -> None:
        """The leg is gone: out of every bridge."""
        for bridge in list(self._bridges_of.get((pbx, uniqueid), {})):
            self.leave(pbx, bridge, uniqueid)
