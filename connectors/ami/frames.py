"""Cutting the AMI byte stream into frames, and refusing the ones that are not AMI.

Why not panoramisk's own ``AMIProtocol.data_received``: it decodes with ``errors="ignore"``,
keeps whatever lines of a frame happen to contain ``": "`` and silently drops the rest, and
buffers without a bound while waiting for a blank line.  Here a frame is all or nothing: every
line must be ``Key: value``, the frame must carry ``Event`` or ``Response``, it must fit in
``max_frame_bytes``; anything else is reported as ``Malformed`` (so it can be logged) and the
stream resynchronises on the next blank line.  Responses become panoramisk ``Message`` objects
so its action/response bookkeeping works unchanged.

Every event of every call crosses this module, so the common path is kept to a few C-level
operations: what one read brought is decoded once and split on blank lines, a frame is checked
by one regular-expression match, and its headers go straight into the one dict the domain gets.
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
# A whole well-formed frame: "Key: value" lines ("Key:" when empty).
_WELL_FORMED = re.compile(r"(?:[!-9;-~]+:(?: [^\r\n]*)?\r\n)*[!-9;-~]+:(?: [^\r\n]*)?")
_PREVIEW_CHARS = 80
_MAX_UTF8_BYTES_PER_CHAR = 4


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
    """One well-formed frame: header name -> value, in wire order.

    A repeated header's values are joined with ``\\n``: AMI values never contain a line
    break, so the join is unambiguous (it happens for ``ChanVariable`` when several channel
    variables are configured).
    """

    fields: dict[str, str]
    # lower-cased name -> first value; built on the first lookup the exact spelling misses
    _folded: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def get(self, key: str, default: str = "") -> str:
        """A header's value; matched case-insensitively (as Asterisk's clients do) when
        the frame does not use Asterisk's own spelling."""
        value = self.fields.get(key)
        if value is not None:
            return value
        folded = self._folded
        if folded is None:
            folded = {name.lower(): v for name, v in reversed(self.fields.items())}
            object.__setattr__(self, "_folded", folded)
        return folded.get(key.lower(), default)

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    @property
    def event(self) -> str:
        return self.get("Event")


class WireMessage(Message):
    """panoramisk's ``Message`` (case-insensitive headers, ``.success``, action ids) plus the
    ``Frame`` it was parsed from, so events keep their exact header names and order."""

    def __init__(self, frame: Frame) -> None:
        headers: dict[str, str | list[str]] = {}
        canonical: dict[str, str] = {}
        for name, joined in frame.fields.items():
            key = canonical.setdefault(name.lower(), name)
            for value in joined.split("\n"):
                if key not in headers:
                    headers[key] = value
                else:
                    previous = headers[key]
                    headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        super().__init__(headers)
        self.frame = frame


def parse_frame(text: str) -> Frame | Malformed | None:
    """One frame's text (without the blank line) -> Frame, Malformed, or None if only blank lines."""
    text = text.strip("\r\n")
    if not text:
        return None
    if "\x00" in text:
        return _malformed("binary data (NUL byte)", text)
    if not _WELL_FORMED.fullmatch(text):
        return _malformed(_what_is_wrong(text), text)
    lines = text.split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines) if ":\r\n" not in text and text[-1] != ":" else None
    if fields is None or len(fields) != len(lines):  # an empty or a repeated header: the careful way
        fields = {}
        for line in lines:
            name, sep, value = line.partition(": ")
            if not sep:  # "Key:" with nothing after it
                name, value = line[:-1], ""
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value
    frame = Frame(fields)
    if not frame.get("Event") and not frame.get("Response"):
        return _malformed("neither Event nor Response", text)
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


def _malformed(reason: str, text: str, size: int | None = None) -> Malformed:
    preview = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:_PREVIEW_CHARS])
    return Malformed(reason, len(text.encode()) if size is None else size, preview)


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
        end = self._buffer.rfind(_SEPARATOR, max(0, self._scanned - len(_SEPARATOR) + 1))
        if end >= 0:
            # Every frame this read completed, decoded at once ("replace" never eats the ASCII
            # separator, so splitting the text splits exactly where the bytes would).
            pieces = self._buffer[:end].decode("utf-8", "replace").split("\r\n\r\n")
            del self._buffer[: end + len(_SEPARATOR)]
            if self._discarding:  # the first piece is the rest of a frame already reported
                del pieces[0]
                self._discarding = False
            for piece in pieces:
                if self._too_big(piece):
                    out.append(_malformed(f"frame over {self.max_frame_bytes} bytes", piece))
                elif (parsed := parse_frame(piece)) is not None:
                    out.append(parsed)
        self._scanned = len(self._buffer)
        if len(self._buffer) > self.max_frame_bytes:
            if not self._discarding:
                head = self._buffer[: _PREVIEW_CHARS * _MAX_UTF8_BYTES_PER_CHAR].decode("utf-8", "replace")
                out.append(_malformed(f"frame over {self.max_frame_bytes} bytes", head, len(self._buffer)))
                self._discarding = True
            keep = len(_SEPARATOR) - 1  # a separator may straddle this chunk and the next
            del self._buffer[:-keep]
            self._scanned = len(self._buffer)
        return out

    def _too_big(self, piece: str) -> bool:
        if len(piece) * _MAX_UTF8_BYTES_PER_CHAR <= self.max_frame_bytes:
            return False  # the common case, decided without encoding
        return len(piece.encode()) > self.max_frame_bytes

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
