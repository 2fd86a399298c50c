"""Bytes to text: byte-order marks, UTF-8, and the Cyrillic code pages 1C and Excel write."""

from __future__ import annotations

import codecs
import contextlib
import re

from charset_normalizer import from_bytes

from crm_core.client_csv.errors import CsvError

CYRILLIC_ENCODINGS = ("cp1251", "koi8_r", "cp866", "iso8859_5")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WORKBOOKS = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
)
_SAVE_AS = "save it from Excel as 'CSV (разделители - точка с запятой)' or 'CSV UTF-8'"
_NOT_TEXT = f"the file is not text (binary data, or UTF-16 without a byte-order mark): {_SAVE_AS}"
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_FREQUENT_RUSSIAN = re.compile("[оеаинтсрвлкмдпуяыьгзбч]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text and the name of its encoding (the likeliest reading); ``CsvError`` for non-text."""
    return readings(data)[0]


def readings(data: bytes) -> list[tuple[str, str]]:
    """Every plausible (text, encoding), likeliest first; ``CsvError`` when there is none.

    Single-byte Cyrillic encodings all decode almost any bytes, so the parser takes the
    first reading whose header has a name column.
    """
    if not data:
        raise CsvError("the file is empty")
    for magic, what in _WORKBOOKS:
        if data.startswith(magic):
            raise CsvError(f"this is {what}, not CSV: {_SAVE_AS}")
    wide = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE))
    if b"\x00" in data and not wide:
        raise CsvError(_NOT_TEXT)
    found = [(text.lstrip("\ufeff").rstrip("\x1a"), encoding) for text, encoding in _decodings(data)]
    if not found[0][0].strip():
        raise CsvError("the file is empty")
    found = [(text, encoding) for text, encoding in found if not _looks_binary(text)]
    if not found:
        raise CsvError(_NOT_TEXT)
    return found


def _decodings(data: bytes) -> list[tuple[str, str]]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return [(data.decode(encoding), codecs.lookup(encoding).name)]
            except UnicodeDecodeError as exc:
                raise CsvError(
                    f"the file starts with a {encoding} byte-order mark but is not {encoding}: {exc.reason}"
                ) from None
    with contextlib.suppress(UnicodeDecodeError):  # not UTF-8: look among the Cyrillic code pages
        return [(data.decode("utf-8"), "utf-8")]
    found: dict[str, str] = {}  # codec name -> text, in order of preference
    for match in from_bytes(data, cp_isolation=list(CYRILLIC_ENCODINGS)):
        try:
            found.setdefault(codecs.lookup(match.encoding).name, data.decode(match.encoding))
        except (UnicodeDecodeError, LookupError):
            continue
    # charset-normalizer gives up on short or repetitive text: letter frequencies decide the rest.
    others = []
    for encoding in CYRILLIC_ENCODINGS:
        name = codecs.lookup(encoding).name
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = _russian_score(text[:65_536])
        if name not in found and (found or score >= 0.5):
            others.append((score, name, text))
    for _, name, text in sorted(others, key=lambda o: -o[0]):
        found[name] = text
    if not found:
        raise CsvError(
            "cannot tell the file's encoding: it is not UTF-8 and does not read as Russian text in "
            f"Windows-1251, KOI8-R, CP866 or ISO 8859-5; {_SAVE_AS}"
        )
    return [(text, name) for name, text in found.items()]


def _russian_score(text: str) -> float:
    """Share of Cyrillic letters that are common lower-case Russian ones (about 0.9 in real text)."""
    cyrillic = len(_CYRILLIC.findall(text))
    return len(_FREQUENT_RUSSIAN.findall(text)) / cyrillic if cyrillic else 0.0


def _looks_binary(text: str) -> bool:
    return "\x00" in text or len(_CONTROL.findall(text)) > max(2, len(text) // 100)
