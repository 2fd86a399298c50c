"""Turning a ``CoreShowChannels`` answer into the domain's ``ChannelSnapshot`` list.

After a reconnect the connector has missed events; the live channels are what lets the call
tracker close calls that ended during the outage and adopt the ones still up.
"""

from __future__ import annotations

from collections.abc import Iterable

from panoramisk.message import Message

from crm_core.telephony.events import ChannelSnapshot


def channel_snapshots(replies: Iterable[Message]) -> list[ChannelSnapshot]:
    """The ``CoreShowChannel`` events of a CoreShowChannels reply (the response and the
    ``CoreShowChannelsComplete`` marker are skipped)."""
    return [to_snapshot(m) for m in replies if m.get("Event", "").lower() == "coreshowchannel"]


def to_snapshot(event: Message) -> ChannelSnapshot:
    return ChannelSnapshot(
        channel=event.get("Channel", ""),
        uniqueid=event.get("Uniqueid", ""),
        linkedid=event.get("Linkedid", ""),
        state=event.get("ChannelStateDesc", ""),
        caller=event.get("CallerIDNum", ""),
        connected=event.get("ConnectedLineNum", ""),
        context=event.get("Context", ""),
        exten=event.get("Exten", ""),
        application=event.get("Application", ""),
        application_data=event.get("ApplicationData", ""),
        duration_seconds=parse_duration(event.get("Duration", "")),
        bridge_id=event.get("BridgeId", "") or event.get("BridgedUniqueid", ""),
    )


def parse_duration(text: str) -> int:
    """``HH:MM:SS`` (hours may exceed 24) -> seconds; anything unreadable is 0."""
    parts = text.strip().split(":")
    if not parts or not all(p.isdigit() for p in parts):
        return 0
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds
