"""Cutting the AMI byte stream into frames, and refusing the ones that are not AMI.

Why not panoramisk's own ``AMIProtocol.data_received``: it decodes with ``errors="ignore"``,
keeps whatever lines of a frame happen to contain ``": "`` and silently drops the rest, and
buffers without a bound while waiting for a blank line.  Here a frame is all or nothing: every
line must be ``Key: value``, the frame must carry ``Event`` or ``Response``, it must fit in
``max_frame_bytes``; anything else is reported as ``Malformed`` (so it can be logged) and the
stream resynchronises on the next blank line.  Good frames become panoramisk ``Message``
objects so its action/response bookkeeping works unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from panoramisk.message import Message

BANNER_PREFIX = "Asterisk Call Manager/"
_EOL = b"\r\n"
_SEPARATOR = b"\r\n\r\n"
# A header name: printable ASCII without spaces or colons ("ChanVariable(SIP/x)" included).
_HEADER_NAME = re.compile(r"[!-9;-~]+")
# A whole well-formed frame: "Key: value" lines ("Key:" when empty).  One C-level match per
# frame keeps the check cheap at thousands of events per second.
_WELL_FORMED = re.compile(r"(?:[!-9;-~]+:(?: [^\r\n]*)?\r\n)*[!-9;-~]+:(?: [^\r\n]*)?")
_PREVIEW_CHARS = 80


@dataclass(frozen=True, slots=True)
class Banner:
    """The first line of the connection; ``version`` is None when it is not an AMI banner."""

    line: str

    @property
    def version(self) -> str | None:
        if not self.line.startswith(BANNER_PREFIX):
            return None
        return self.line[len(BANNER_PREFIX) :].strip()


@dataclass(frozen=True, slots=True)
class Malformed:
    """Bytes that were skipped, and why; for the log line."""

    reason: str
    size: int
    preview: str


@dataclass(frozen=True, slots=True)
class Frame:
    """One well-formed frame: its headers in wire order, repeated names kept."""

    headers: tuple[tuple[str, str], ...]
    # lower-cased name -> first value, for case-insensitive lookups
    index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {name.lower(): value for name, value in reversed(self.headers)})

    def get(self, key: str, default: str = "") -> str:
        """The first value of a header, matched case-insensitively (as Asterisk's clients do)."""
        return self.index.get(key.lower(), default)

    @property
    def action_id(self) -> str:
        return self.index.get("actionid", "")

    @property
    def event(self) -> str:
        return self.get("Event")

    def fields(self) -> dict[str, str]:
        """All headers as one mapping; a repeated header's values are joined with ``\\n``.

        AMI values never contain a line break, so the join is unambiguous (it happens for
        ``ChanVariable`` when several channel variables are configured).
        """
        result: dict[str, str] = {}
        for name, value in self.headers:
            result[name] = f"{result[name]}\n{value}" if name in result else value
        return result


class WireMessage(Message):
    """panoramisk's ``Message`` (case-insensitive headers, ``.success``, action ids) plus the
    ``Frame`` it was parsed from, so events keep their exact header names and order."""

    def __init__(self, frame: Frame) -> None:
        headers: dict[str, str | list[str]] = {}
        canonical: dict[str, str] = {}
        for name, value in frame.headers:
            key = canonical.setdefault(name.lower(), name)
            if key not in headers:
                headers[key] = value
            else:
                previous = headers[key]
                headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        super().__init__(headers)
        self.frame = frame


def parse_frame(raw: bytes) -> Frame | Malformed | None:
    """One frame's bytes (without the blank line) -> Frame, Malformed, or None if only blank lines."""
    if b"\x00" in raw:
        return _malformed("binary data (NUL byte)", raw)
    text = raw.decode("utf-8", "replace").strip("\r\n")
    if not text:
        return None
    if not _WELL_FORMED.fullmatch(text):
        return _malformed(_what_is_wrong(text), raw)
    headers = []
    for line in text.split("\r\n"):
        name, sep, value = line.partition(": ")
        headers.append((name, value) if sep else (line[:-1], ""))  # "Key:" with nothing after it
    frame = Frame(tuple(headers))
    if not frame.get("Event") and not frame.get("Response"):
        return _malformed("neither Event nor Response", raw)
    return frame


def _what_is_wrong(text: str) -> str:
    """Why a frame failed the fast check, for the log (only runs on bad frames)."""
    for line in text.split("\r\n"):
        name, sep, _value = line.partition(": ")
        if not sep:
            if not line.endswith(":"):
                return "header line without ': '"
            name = line[:-1]
        if not _HEADER_NAME.fullmatch(name):
            return "invalid header name"
    return "stray CR or LF inside a line"


def _malformed(reason: str, raw: bytes | bytearray) -> Malformed:
    preview = bytes(raw[:_PREVIEW_CHARS]).decode("utf-8", "backslashreplace")
    return Malformed(reason, len(raw), preview)


class FrameReader:
    """Incremental reader: feed it what the socket gave, get banner, frames and rejects back.

    The first line of a connection is the banner (no blank line after it); after that frames
    end with an empty line.  Memory is bounded by ``max_frame_bytes``: a frame that grows past
    it is reported once and the bytes up to the next blank line are discarded.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already searched for a separator
        self._banner_seen = False
        self._discarding = False

    def feed(self, data: bytes) -> list[Banner | Frame | Malformed]:
        self._buffer += data
        out: list[Banner | Frame | Malformed] = []
        if not self._banner_seen and not self._read_banner(out):
            return out
        start = 0
        while True:
            end = self._buffer.find(_SEPARATOR, max(start, self._scanned - len(_SEPARATOR) + 1))
            if end < 0:
                break
            self._scanned = 0
            if self._discarding:
                self._discarding = False
            elif end - start > self.max_frame_bytes:
                out.append(_malformed(f"frame over {self.max_frame_bytes} bytes", self._buffer[start:end]))
            else:
                parsed = parse_frame(bytes(self._buffer[start:end]))
                if parsed is not None:
                    out.append(parsed)
            start = end + len(_SEPARATOR)
        del self._buffer[:start]
        self._scanned = len(self._buffer)
        if len(self._buffer) > self.max_frame_bytes:
            if not self._discarding:
                out.append(_malformed(f"frame over {self.max_frame_bytes} bytes", self._buffer))
                self._discarding = True
            keep = len(_SEPARATOR) - 1  # a separator may straddle this chunk and the next
            del self._buffer[:-keep]
            self._scanned = len(self._buffer)
        return out

    def _read_banner(self, out: list[Banner | Frame | Malformed]) -> bool:
        end = self._buffer.find(_EOL)
        if end < 0:
            if len(self._buffer) > self.max_frame_bytes:
                out.append(Banner(bytes(self._buffer[:_PREVIEW_CHARS]).decode("utf-8", "replace")))
                self._banner_seen = True
                self._buffer.clear()
            return False
        out.append(Banner(bytes(self._buffer[:end]).decode("utf-8", "replace")))
        del self._buffer[: end + len(_EOL)]
        self._banner_seen = True
        return True
