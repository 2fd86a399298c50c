"""Text to records: which delimiter the file uses, and the cells of each record with its line."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from crm_core.client_csv.errors import CsvError

DELIMITERS = ";,\t|"

_SEP_LINE = re.compile(r'^"?sep=(.)"?[ \t]*(\r\n|\r|\n|$)')


def records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line where the record starts, cells); quoted line breaks are counted."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvError(f"line {start}: cannot read the record ({exc}); is a quote left open?") from None
        yield start, cells


def delimiters(text: str) -> tuple[str, list[str]]:
    """The text and the delimiters to try, likeliest first.

    Excel's ``sep=;`` first line decides alone; its content is dropped but the line is
    kept, so that line numbers stay physical.
    """
    sep = _SEP_LINE.match(text)
    if sep and sep.group(1) in DELIMITERS:
        return sep.group(2) + text[sep.end() :], [sep.group(1)]
    return text, _delimiter_candidates(text)


def _delimiter_candidates(text: str) -> list[str]:
    """The Sniffer's guess if the header has it, then the header's commonest, then the rest.

    A one-column file (no delimiter in the header) gets the delimiter that occurs least,
    so that a name with a comma is not split.
    """
    counts = _count_in_first_line(text)
    sniffed = _sniff(text)
    if not any(counts.values()):
        return sorted(DELIMITERS, key=text.count)
    ordered = [sniffed] if sniffed and counts[sniffed] else []
    ordered += sorted(DELIMITERS, key=lambda d: -counts[d])
    return list(dict.fromkeys(ordered))


def _sniff(text: str) -> str | None:
    try:
        found = csv.Sniffer().sniff(text[:16_384], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return None
    return found if found in DELIMITERS else None


def _count_in_first_line(text: str) -> dict[str, int]:
    """How often each delimiter occurs outside quotes in the first non-blank line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = seen_text = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "\r\n":
            if seen_text:
                break
        elif not quoted and ch in counts:
            counts[ch] += 1
        seen_text = seen_text or not ch.isspace()
    return counts
