"""Reading what Asterisk writes into names, ids and timestamps, whatever the channel technology.

A channel is ``Local/101@agents-00000001;1`` on a FreePBX-style system, ``PJSIP/101-0000000a``
or ``SIP/101-...`` on others; a queue member is ``Local/101@agents/n`` or ``PJSIP/101``.  The
extension is the resource: the part before ``@``, or before the channel's unique ``-suffix``.
Uniqueids and Linkedids are ``<epoch seconds>.<n>``, so every channel tells the PBX's clock at
the moment it was created.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Extensions are short digit strings; longer ones are phone numbers (DIDs, PSTN callees).
_EXTENSION = re.compile(r"\d{1,6}")
# The per-channel suffix Asterisk appends: "-0000000a" (PJSIP, SIP, Local), "-1" (DAHDI).
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+$")
_PLACEHOLDERS = {"", "<unknown>", "unknown", "<none>"}
_CDR_TIME = "%Y-%m-%d %H:%M:%S"
# Before this the "epoch" in a Uniqueid is not a clock (a custom ChannelId, or garbage).
_EARLIEST_EPOCH = 946684800  # 2000-01-01


def resource_of(name: str) -> str:
    """The resource part of a channel or interface name, without technology, context and suffix."""
    text = name.strip()
    if "/" in text:
        text = text.split("/", 1)[1]
    if "@" in text:
        return text.split("@", 1)[0]
    text = text.split(";", 1)[0].split("/", 1)[0]
    return text


def extension_of(channel: str) -> str:
    """``Local/101@agents-00000001;1``, ``PJSIP/101-0000000a``, ``Local/101@agents/n`` -> ``101``."""
    resource = resource_of(channel)
    if "@" in channel or "-" not in resource:
        return resource
    return _CHANNEL_SUFFIX.sub("", resource) or resource


def interface_extension(interface: str) -> str:
    """A queue member interface has no channel suffix: ``PJSIP/101``, ``Local/101@agents/n``."""
    return resource_of(interface)


def is_extension(text: str | None) -> bool:
    """An operator's extension, as opposed to a phone number or a trunk's name."""
    return bool(text) and _EXTENSION.fullmatch(text or "") is not None


def meaningful(value: str | None) -> str | None:
    """A caller-id header's value, or None for the placeholders Asterisk sends when it has none."""
    if value is None:
        return None
    text = value.strip()
    return None if text.lower() in _PLACEHOLDERS else text


def epoch_of(uniqueid: str | None) -> int | None:
    """The PBX's clock (whole seconds) when the channel with this Uniqueid or Linkedid was created."""
    if not uniqueid:
        return None
    head = uniqueid.strip().split(".", 1)[0]
    if not head.isascii() or not head.isdigit() or len(head) > 12:
        return None
    seconds = int(head)
    return seconds if seconds >= _EARLIEST_EPOCH else None


def parse_pbx_time(text: str | None) -> float | None:
    """A Cdr time (``2026-11-23 23:27:50``, the PBX's clock, read as UTC) as epoch seconds."""
    if not text or not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), _CDR_TIME).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
