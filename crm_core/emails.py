"""E-mail addresses: what counts as "the same address" when matching mail to clients."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Deliberately permissive: one @, something on each side, a dot in the domain, no spaces.
_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class NormalisedEmail:
    address: str  # as typed, trimmed
    lowered: str  # case-insensitive identity
    folded: str  # lowered, with "+tag" removed from the local part


def is_plausible(address: str) -> bool:
    return bool(_SHAPE.match(address.strip()))


def normalise(address: str) -> NormalisedEmail:
    text = address.strip()
    lowered = text.lower()
    local, _, domain = lowered.rpartition("@")
    folded = f"{local.split('+', 1)[0]}@{domain}" if local else lowered
    return NormalisedEmail(address=text, lowered=lowered, folded=folded)
