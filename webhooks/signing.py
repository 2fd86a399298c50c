"""Signing deliveries the way the Standard Webhooks specification describes (standardwebhooks.com).

``webhook-signature: v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">``, keyed with the
bytes the subscription's secret encodes (``whsec_<base64>``).  Receivers verify with any
Standard Webhooks library or the dozen lines in the README.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, message_id: str, timestamp: int, body: bytes, signature_header: str, now: int) -> bool:
    """True when one of the header's space-separated signatures is ours and the time is fresh."""
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split())
