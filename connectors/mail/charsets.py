"""Turning the bytes of a text part or a header into text, whatever the sender's client claimed.

Mail in Russia arrives in UTF-8, windows-1251, KOI8-R, ISO-8859-5 and now and then CP866,
often with the charset missing, misspelt or wrong.  UTF-8 that decodes (but for a stray
byte or a cut end) is believed over any claim (no other text decodes so); a declared charset
is believed when its text has no characters Russian or Latin text never contains; otherwise the Cyrillic single-byte
codecs are tried and the one that reads most like Russian wins (very short words can be
read several ways: then the more common codec wins).
"""

from __future__ import annotations

import codecs
import re

# Spellings clients really send, and what they mean.
_ALIASES = {
    "win-1251": "cp1251",
    "cp-1251": "cp1251",
    "windows1251": "cp1251",
    "x-cp1251": "cp1251",
    "x-win-1251": "cp1251",
    "win1251": "cp1251",
    "utf8": "utf-8",
    "x-utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "koi8r": "koi8_r",
    "x-koi8-r": "koi8_r",
    "ibm866": "cp866",
    "x-mac-cyrillic": "mac_cyrillic",
    "us-ascii": "ascii",
    "iso-8859-1": "cp1252",  # as browsers do: the C1 range of "Latin-1" mail is Windows' in practice
}
SINGLE_BYTE_CYRILLIC = ("cp1251", "koi8_r", "iso8859_5", "cp866")  # in order of how common they are
_LOWER = re.compile(r"[а-яё]")
_UPPER = re.compile(r"[А-ЯЁ]")
# Anything but ASCII text, Russian letters and the typography Russian text uses.
_ODD = re.compile(r"[^\t\n\r\x20-\x7eА-Яа-яЁё«»—–…№„“”‘’•·§©®°±€\xa0]")


def codec_for(declared: str | None) -> str | None:
    """The Python codec a declared charset names, or None when it names none."""
    if not declared:
        return None
    name = declared.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """(text, codec used); never raises.  Undecodable bytes become U+FFFD only as a last resort."""
    codec = codec_for(declared)
    if data.isascii():
        return data.decode("ascii"), codec or "ascii"
    text = data.decode("utf-8", "replace")
    if _mostly_utf8(text):  # UTF-8 with 8-bit bytes is no accident, whatever was declared
        return text, "utf-8"
    if codec is not None and codec not in ("utf-8", "ascii"):
        claimed = _strictly(data, codec)
        if claimed is not None and not _ODD.search(claimed):  # a claim the bytes bear out is believed
            return claimed, codec
    text, guessed, _ = _best_single_byte(data)
    if guessed:
        return text, guessed
    return data.decode("utf-8", "replace"), "utf-8"


def _strictly(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _mostly_utf8(text: str) -> bool:
    """Valid UTF-8 but for a few bytes (a message cut mid-character, one stray byte): still
    UTF-8.  Single-byte text read as UTF-8 breaks at nearly every letter instead."""
    broken = text.count("\ufffd")
    if broken == 0:
        return True
    readable = len(text) - len(text.encode("ascii", "ignore")) - broken
    return broken * 20 <= readable


def _best_single_byte(data: bytes) -> tuple[str, str, float]:
    best = ("", "", float("-inf"))
    for codec in SINGLE_BYTE_CYRILLIC:
        text = data.decode(codec, "replace")
        score = _score(text)
        if score > best[2]:
            best = (text, codec, score)
    return best


def _score(text: str) -> float:
    """How much ``text`` reads like Russian: lower-case letters dominate real text, while the
    wrong codec turns them into capitals, box drawing or rare letters."""
    return len(_LOWER.findall(text)) - 0.5 * len(_UPPER.findall(text)) - 3 * len(_ODD.findall(text))
