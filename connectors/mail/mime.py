"""Raw RFC 5322 bytes -> ``ParsedMail``: headers decoded, text and HTML chosen, attachments cut out.

The standard library's ``email`` with ``policy.default`` does the MIME work.  What it leaves
to the caller is done here: 8-bit headers from broken clients (the parser keeps their bytes
as surrogates), body charsets that are missing, misspelt or wrong (``charsets.decode``),
Outlook's encoded-word file names, Russian month names in dates, and bodies that do not
decode.  Anything odd that could be read anyway is noted in ``defects``; a message nobody
could read (empty, no header at all, a crash of the parser) raises ``UnreadableMessage``
so that the caller quarantines it with its raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import html as html_entities
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import nh3

from connectors.mail import charsets
from connectors.mail.html import has_remote_images, sanitise
from crm_core.mail.events import Address, Attachment, ParsedMail

MAX_TEXT_CHARS = 1_000_000  # a body longer than this is cut (and the cut noted): the raw message keeps it all
_ID = re.compile(r"<([^<>\s]+)>")
_SURROGATES = re.compile(r"[\udc80-\udcff]")
_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?:\*[^?]*)?\?([bBqQ])\?")
_UNQUOTED_ENCODED_NAME = re.compile(r"\b(?:file)?name\s*=\s*(=\?[^\s;\"]+\?=)", re.IGNORECASE)
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_LOOSE_SOFT_BREAK = re.compile(rb"=[ \t]+(?=\r?\n)")
_RUSSIAN_MONTHS = {
    "янв": "Jan", "фев": "Feb", "мар": "Mar", "апр": "Apr", "мая": "May", "май": "May", "июн": "Jun",
    "июл": "Jul", "авг": "Aug", "сен": "Sep", "окт": "Oct", "ноя": "Nov", "дек": "Dec",
}  # fmt: skip
_MONTH_WORD = re.compile(r"\b([а-яё]{3})[а-яё]*\.?", re.IGNORECASE)
_BLOCK_END = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h[1-6])\b[^>]*>", re.IGNORECASE)
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


class UnreadableMessage(Exception):
    """The bytes are not a message anyone could read; keep them and say why."""


@dataclass
class _Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def parse(raw: bytes, *, max_attachment_bytes: int) -> ParsedMail:
    """Parse one message; raises ``UnreadableMessage`` for bytes that are no message at all."""
    if not raw.strip():
        raise UnreadableMessage("empty message")
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        return _read(msg, max_attachment_bytes)
    except UnreadableMessage:
        raise
    except Exception as exc:  # the stdlib parser has its own bugs on hostile input
        raise UnreadableMessage(f"the MIME parser failed: {type(exc).__name__}: {exc}") from exc


def _read(msg: EmailMessage, max_attachment_bytes: int) -> ParsedMail:
    names = {name.lower() for name in msg}
    if not names & {"from", "to", "subject", "date", "message-id", "received", "content-type"}:
        raise UnreadableMessage("no message headers found")
    body = _Body(defects=[type(d).__name__ for d in msg.defects])
    _collect(msg, body, max_attachment_bytes)
    html = sanitise("\n".join(body.html)) if body.html else None
    text = "\n\n".join(t for t in body.text if t.strip()) or (_text_of(html) if html else "")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        body.defects.append(f"text cut at {MAX_TEXT_CHARS} characters")
    attachments = tuple(_mark_inline(body.attachments, html))
    return ParsedMail(
        message_id=_first_id(_header_text(msg, "Message-ID")),
        in_reply_to=_first_id(_header_text(msg, "In-Reply-To")),
        references=tuple(_ids(_header_text(msg, "References"))),
        subject=(_header_text(msg, "Subject") or "").strip(),
        sender=next(iter(_addresses(msg, "From")), None),
        to=tuple(_addresses(msg, "To")),
        cc=tuple(_addresses(msg, "Cc")),
        sent_at=_date(_header_text(msg, "Date")),
        text=text,
        html=html,
        attachments=attachments,
        remote_images=bool(html) and has_remote_images(html or ""),
        defects=tuple(dict.fromkeys(body.defects)),
    )


# -- headers --------------------------------------------------------------------------------


def _raw_header(msg: Message, name: str) -> str | None:
    """The first such header as text, 8-bit bytes decoded the way the body's would be."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            text = str(value)
            if _SURROGATES.search(text):
                text = charsets.decode(text.encode("ascii", "surrogateescape"))[0]
            text = "".join(text.splitlines()).replace("\x00", "")  # NUL: no database stores it in text
            return _ENCODED_WORD_CHARSET.sub(_canonical_charset, text)
    return None


def _canonical_charset(match: re.Match[str]) -> str:
    """``=?win-1251?B?`` -> ``=?cp1251?B?``: the stdlib knows only the charsets' proper names."""
    codec = charsets.codec_for(match[1])
    return f"=?{codec or match[1]}?{match[2]}?"


def _parsed_header(msg: Message, name: str) -> Any:
    raw = _raw_header(msg, name)
    if raw is None:
        return None
    try:
        return policy.default.header_factory(name, raw)
    except Exception:  # a header the stdlib cannot parse is still worth its raw text
        return raw


def _header_text(msg: Message, name: str) -> str | None:
    value = _parsed_header(msg, name)
    return None if value is None else str(value)


def _addresses(msg: Message, name: str) -> Iterator[Address]:
    """Addresses of a header, display names decoded by RFC 2047 proper: the stdlib's address
    parser keeps the space between adjacent encoded words, which splits names mid-word."""
    raw = _raw_header(msg, name)
    if raw is None:
        return
    seen: set[str] = set()
    for display, spec in getaddresses([raw]):
        spec = spec.strip()
        if "@" not in spec or spec.lower() in seen:
            continue
        seen.add(spec.lower())
        if "=?" in display:
            with contextlib.suppress(Exception):  # not valid encoded words: keep the text as written
                display = str(make_header(decode_header(display)))
        yield Address(spec, " ".join(display.split()))


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = _ID.findall(value)
    if found:
        return list(dict.fromkeys(found))
    return [token for token in value.split() if "@" in token]


def _first_id(value: str | None) -> str | None:
    ids = _ids(value)
    if ids:
        return ids[0]
    return value.strip() or None if value else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    text = _MONTH_WORD.sub(lambda m: _RUSSIAN_MONTHS.get(m[1].lower(), m[0]), value)
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


# -- body -----------------------------------------------------------------------------------


def _collect(part: Message, body: _Body, max_attachment_bytes: int, *, alternative: bool = False) -> None:
    content_type = part.get_content_type()
    disposition = part.get_content_disposition()
    filename = _filename(part)
    if content_type == "message/rfc822":  # a forwarded message stays one piece: an .eml attachment
        inner = part.get_payload(0) if part.is_multipart() else None
        data = inner.as_bytes(policy=policy.compat32) if isinstance(inner, Message) else _payload(part, body)
        subject = _header_text(inner, "Subject") if isinstance(inner, Message) else None
        name = filename or f"{subject or 'message'}.eml"
        body.attachments.append(_attachment(name, part, data, max_attachment_bytes))
    elif part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _collect(sub, body, max_attachment_bytes, alternative=content_type == "multipart/alternative")
    elif content_type.startswith("multipart/"):  # its boundary never appears: what there is, is the text
        body.text.append(_decoded_text(part, body))
    elif content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _decoded_text(part, body)
        (body.html if content_type == "text/html" else body.text).append(text)
    elif alternative and disposition != "attachment":
        pass  # another form of the same body (a text/calendar invitation, say): not an attachment
    else:
        data = _payload(part, body)
        name = filename or _default_name(content_type, len(body.attachments) + 1)
        body.attachments.append(_attachment(name, part, data, max_attachment_bytes))


def _payload(part: Message, body: _Body) -> bytes:
    """The part's bytes, decoded leniently: base64 with junk or a cut end, quoted-printable
    with spaces before its soft line breaks (both are common and readable)."""
    # The payload as the parser kept it (8-bit bytes as surrogates); get_payload() without
    # decoding would already have decoded those bytes with the declared charset, lossily.
    raw = getattr(part, "_payload", None)
    if not isinstance(raw, str):
        return b""
    data = raw.encode("ascii", "surrogateescape")
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        return _lenient_base64(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(_LOOSE_SOFT_BREAK.sub(b"=", data))
    if encoding in ("", "7bit", "8bit", "binary"):
        return data
    try:
        decoded = part.get_payload(decode=True)
    except Exception as exc:
        body.defects.append(f"undecodable part: {type(exc).__name__}")
        return data
    return decoded if isinstance(decoded, bytes) else data


def _lenient_base64(data: bytes) -> bytes:
    letters = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
    if len(letters) % 4 == 1:  # one dangling character carries no whole byte
        letters = letters[:-1]
    return base64.b64decode(letters + b"=" * (-len(letters) % 4))


def _decoded_text(part: Message, body: _Body) -> str:
    data = _payload(part, body)
    declared = part.get_param("charset")
    text, used = charsets.decode(data, declared if isinstance(declared, str) else None)
    if isinstance(declared, str) and charsets.codec_for(declared) not in (used, None) and not data.isascii():
        body.defects.append(f"charset {declared!r} declared, {used} found")
    elif isinstance(declared, str) and charsets.codec_for(declared) is None:
        body.defects.append(f"unknown charset {declared!r}, read as {used}")
    return text.replace("\x00", "")


def _filename(part: Message) -> str | None:
    """The part's file name: RFC 2231 and RFC 2047 (even unquoted, as 1C writes it) decoded,
    raw 8-bit names read like 8-bit headers, and nothing that could climb out of a folder."""
    name = None
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue
        parsed = _parsed_header(part, header)
        params = getattr(parsed, "params", None)
        name = params.get(param) if isinstance(params, Mapping) else None
        if not name and (unquoted := _UNQUOTED_ENCODED_NAME.search(raw)):
            name = unquoted[1]
        if name:
            break
    if not name:
        return None
    name = str(name)
    if "=?" in name:  # Outlook puts RFC 2047 encoded words in name= and filename=
        with contextlib.suppress(Exception):  # not valid encoded words after all: keep the text
            name = str(make_header(decode_header(_ENCODED_WORD_CHARSET.sub(_canonical_charset, name))))
    name = _UNSAFE_FILENAME.sub("_", name).strip(" .")
    return name[:255] or None


def _default_name(content_type: str, number: int) -> str:
    return f"attachment-{number}{mimetypes.guess_extension(content_type) or '.bin'}"


def _attachment(name: str, part: Message, data: bytes, max_bytes: int) -> Attachment:
    content_id = part.get("Content-ID")
    cid = _first_id(str(content_id)) if content_id else None
    return Attachment(
        filename=name,
        content_type=part.get_content_type(),
        data=data if len(data) <= max_bytes else None,
        size=len(data),
        content_id=cid,
    )


def _mark_inline(attachments: list[Attachment], html: str | None) -> Iterator[Attachment]:
    """Parts the HTML shows through ``cid:`` are inline images, not attachments to list."""
    for attachment in attachments:
        cid = attachment.content_id
        if cid and html and f"cid:{cid}".lower() in html.lower():
            yield Attachment(attachment.filename, attachment.content_type, attachment.data, attachment.size, cid, True)
        else:
            yield attachment


def _text_of(html: str) -> str:
    """Plain text of an HTML-only message, for search and previews."""
    spaced = _BLOCK_END.sub("\n", html)
    return html_entities.unescape(nh3.clean(spaced, tags=set())).strip()
