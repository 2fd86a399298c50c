"""Phone numbers as people type them, and the E.164 form the hub matches on.

The raw text is always kept; ``phonenumbers`` (Google's libphonenumber) decides the
E.164 form, so Russian trunk prefixes (``8 495 ...``), spaces, dashes, brackets and
extensions all land on one canonical number.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
# libphonenumber knows "доб." and "ext."; Russian offices also write these.
_EXTENSION_WORDS = re.compile(r"(?i)(?:\bдобавочный|\bдоб\.?\s*№|\bвнутр(?:енний)?\.?|\bвн\.)\s*")


@dataclass(frozen=True, slots=True)
class NormalisedPhone:
    raw: str
    e164: str | None  # None when the text is not a valid number in any reading
    extension: str | None
    digits: str  # the significant digits used for suffix matching

    @property
    def digits_reversed(self) -> str:
        """Stored reversed so that "ends with N digits" is an indexed prefix range."""
        return self.digits[::-1]


@functools.lru_cache(maxsize=16384)
def normalise(raw: str, region: str = "RU") -> NormalisedPhone:
    """Parse ``raw`` in ``region``; never raises, since bad numbers are still kept as typed.

    Cached: the call tracker sees the same caller's number on every event of a call.
    """
    text = raw.strip()
    e164: str | None = None
    extension: str | None = None
    try:
        parsed = phonenumbers.parse(_EXTENSION_WORDS.sub("доб. ", text), region)
    except phonenumbers.NumberParseException:
        parsed = None
    # Possible in full, not only locally: "123-45-67" without an area code is no E.164
    # number and is left to the suffix match.  Not "valid": new number ranges reach
    # customers before they reach libphonenumber's metadata.
    if parsed is not None and phonenumbers.is_possible_number_with_reason(parsed) == _POSSIBLE:
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        extension = parsed.extension or None
    # normalize_digits_only folds every script's digits to ASCII, which the range scan needs.
    digits = e164[1:] if e164 else phonenumbers.normalize_digits_only(text)
    return NormalisedPhone(raw=text, e164=e164, extension=extension, digits=digits)


def suffix_of(digits: str, length: int) -> str:
    """The last ``length`` digits, reversed, as a prefix to search ``digits_reversed`` by."""
    return digits[-length:][::-1]
