"""Short signed tokens for the tracking URLs: ``/t/o/<token>``, ``/t/c/<token>``, ``/u/<token>``.

A token carries the recipient's id (and, for a click, the link's number) and a 64-bit HMAC-SHA256
tag over a purpose byte and those numbers: an open's token cannot be used to unsubscribe, and a
forged or altered token is refused before the database is asked anything.  The URL a click goes
to is never in the token: it is looked up by the link's number, so no redirect can be steered.

    body  = varint(recipient id) [+ varint(link number), clicks only]
    token = base64url(body + HMAC-SHA256(key, purpose + body)[:8])    # 15-20 characters
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from enum import IntEnum

TAG_BYTES = 8
MAX_TOKEN_CHARS = 40


class Purpose(IntEnum):
    open = 1
    click = 2
    unsubscribe = 3


def tracking_key(signing_key: bytes) -> bytes:
    """A key of its own for tracking tokens, derived from the hub's signing key."""
    return hmac.new(signing_key, b"hub campaign tracking", hashlib.sha256).digest()


def make_token(key: bytes, purpose: Purpose, recipient_id: int, link: int | None = None) -> str:
    body = _varint(recipient_id) + (_varint(link) if purpose is Purpose.click and link is not None else b"")
    tag = hmac.digest(key, bytes([purpose]) + body, "sha256")[:TAG_BYTES]
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")


def read_token(key: bytes, purpose: Purpose, token: str) -> tuple[int, int | None] | None:
    """(recipient id, link number or None); None for anything not made by ``make_token``."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None  # the last character's spare bits changed: the same bytes, another token
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not body:
        return None
    expected = hmac.digest(key, bytes([purpose]) + body, "sha256")[:TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        return None
    numbers = _read_varints(body)
    wanted = 2 if purpose is Purpose.click else 1
    if numbers is None or len(numbers) != wanted:
        return None
    return numbers[0], (numbers[1] if purpose is Purpose.click else None)


def _varint(number: int) -> bytes:
    if number < 0:
        raise ValueError("tokens carry non-negative numbers")
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varints(data: bytes) -> list[int] | None:
    numbers: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if shift > 63:
            return None
        if not byte & 0x80:
            numbers.append(value)
            value = shift = 0
    return numbers if shift == 0 else None
