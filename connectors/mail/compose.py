"""An outgoing message as RFC 5322 bytes: what the SMTP connector sends and IMAP APPENDs to Sent.

The standard library's ``EmailMessage`` builds the MIME tree (text, text + HTML as
``multipart/alternative``, inline images in ``multipart/related``, attachments in
``multipart/mixed``, RFC 2231 file names, quoted-printable or base64 bodies).  The header
lines are written here, because Python 3.11's folder gets them wrong in ways that matter:

- it writes empty encoded words (``=?utf-8?q??=``, CPython gh-136052) into subjects that
  mix ASCII and Cyrillic, which strict servers reject;
- it folds Message-IDs and long URLs (``In-Reply-To``, ``References``, ``List-Unsubscribe``)
  into encoded words, which no client matches or follows;
- it refuses CR/LF in some places and not others (a display name may carry U+2028).

So: text that needs encoding becomes whole base64 encoded words of at most 60 characters
(split between characters, preferably before a space); other text is folded at spaces
only; every header value, name and address is checked for line breaks, so header injection
always ends in the same ``ValueError``.  The result is 7-bit (domains in IDNA), so any server
accepts it and what is sent is exactly what is stored in Sent.
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid

from crm_core.mail.events import Address, Attachment
from crm_core.mail.html_text import html_to_text

MAX_REFERENCES = 20  # a long thread's References is cut to its root and the newest ids
MAX_LINE = 998  # RFC 5322 section 2.1.1: no line may be longer, folded or not
_POLICY = policy.SMTP.clone(cte_type="7bit", refold_source="none")  # "none": set_raw() lines stay as written
_FOLD_AT = 76  # RFC 2047 section 2: a line with encoded words is at most 76 characters
_WORD_BYTES = 36  # UTF-8 bytes per encoded word: 12 + 48 base64 characters = 60, so "Subject: " + one fits
# Everything str.splitlines() breaks at, NUL included: one of these in a header would end it.
_LINE_BREAK = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")  # RFC 5322 section 3.6.8: printable ASCII but ':'
_MESSAGE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+$")  # printable ASCII without '<', '>' or space
_REPLY_PREFIX = re.compile(r"^\s*(?:re|отв)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_PLAIN_TEXT = re.compile(r"^[\x20-\x7e\t]*$")  # written as it is, unless it looks like an encoded word
_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")  # atoms and spaces: a display name without quotes
_ADDRESS_HEADERS = frozenset({"reply-to", "sender", "resent-from", "resent-to", "resent-cc"})
_OWN_HEADERS = frozenset(
    {
        "from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send, in the domain's terms; ``compose`` turns it into bytes."""

    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    subject: str = ""
    text: str = ""
    html: str | None = None  # with it: multipart/alternative; an empty ``text`` is then derived from it
    in_reply_to: str | None = None  # a Message-ID without <>
    references: tuple[str, ...] = ()  # Message-IDs without <>
    attachments: tuple[Attachment, ...] = ()  # inline ones with a content_id go next to the HTML
    message_id: str | None = None  # without <>; made from the sender's domain when None
    date: datetime | None = None  # timezone-aware; now (UTC) when None
    headers: tuple[tuple[str, str], ...] = ()  # extra headers, e.g. List-Unsubscribe


def compose(message: Outgoing) -> tuple[str, bytes]:
    """``(Message-ID without <>, the message's bytes with CRLF line ends)``.

    Raises ``ValueError`` for anything that cannot be sent as given: a line break in a
    header, an address that is no address, an attachment kept without its bytes.
    """
    if not message.to and not message.cc:
        raise ValueError("a message needs at least one recipient in To or Cc")
    msg = EmailMessage(policy=_POLICY)
    _set(msg, "From", _address_tokens([message.sender], "From"))
    if message.to:
        _set(msg, "To", _address_tokens(message.to, "To"))
    if message.cc:
        _set(msg, "Cc", _address_tokens(message.cc, "Cc"))
    _set(msg, "Subject", _text_tokens("Subject", message.subject))
    _set(msg, "Date", [format_datetime(_date(message.date))])
    domain = ascii_address(message.sender.address).rpartition("@")[2]
    message_id = _message_id(message.message_id, "Message-ID") if message.message_id else _new_id(domain)
    _set(msg, "Message-ID", [f"<{message_id}>"])
    if message.in_reply_to:
        _set(msg, "In-Reply-To", [f"<{_message_id(message.in_reply_to, 'In-Reply-To')}>"])
    references = [_message_id(i, "References") for i in message.references]
    if references:
        _set(msg, "References", [f"<{i}>" for i in dict.fromkeys(references)])
    for name, value in message.headers:
        _add_extra(msg, name, value)
    if not message.attachments:  # text, or text and HTML: written here, ten times faster (mailings)
        return message_id, _with_simple_body(msg, message)
    _set_body(msg, message)
    for part in msg.walk():  # the library repeats MIME-Version in every part it creates
        if part is not msg:
            del part["MIME-Version"]
    return message_id, msg.as_bytes()


def reply_headers(
    parent_message_id: str | None, parent_references: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """``(In-Reply-To, References)`` for a reply, as RFC 5322 section 3.6.4 says.

    References is the parent's References followed by the parent's Message-ID, each id once,
    in order; a thread longer than ``MAX_REFERENCES`` keeps its root and the newest ids.
    Ids that could not be written back (spaces, non-ASCII: a broken sender's) are left out,
    so that a reply never fails because of its parent.  Where the parent has no References
    but one In-Reply-To, pass that as its references.
    """
    in_reply_to = _usable_id(parent_message_id)
    ids = [_usable_id(i) for i in parent_references] + [in_reply_to]
    unique = list(dict.fromkeys(i for i in ids if i))
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return in_reply_to, tuple(unique)


def reply_subject(subject: str) -> str:
    """``"Re: "`` in front, unless the subject already starts with Re:, RE: or Отв: (Outlook's Russian)."""
    subject = subject.strip()
    if _REPLY_PREFIX.match(subject):
        return subject
    return f"Re: {subject}".rstrip()


def ascii_address(address: str) -> str:
    """The addr-spec as it can go on the wire without SMTPUTF8: the domain in IDNA (``xn--``).

    A non-ASCII local part cannot be written that way and raises ``ValueError``.
    """
    _checked("address", address)
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address.strip()):
        raise ValueError(f"not an e-mail address: {address!r}")
    if not local.isascii():
        raise ValueError(f"a non-ASCII local part needs SMTPUTF8, which the hub does not send: {address!r}")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain in {address!r}: {exc}") from exc
    return f"{local}@{domain}"


# -- private --------------------------------------------------------------------------------


def _checked(field: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise ValueError(f"{field}: line breaks are not allowed in a header: {value!r}")
    return value


def _address_tokens(addresses: Sequence[Address], field: str) -> list[str]:
    """``Name <addr>, ...`` as foldable tokens; a name needing encoding becomes encoded words."""
    tokens: list[str] = []
    for address in addresses:
        if tokens:
            tokens[-1] += ","
        tokens.extend(_mailbox_tokens(address, field))
    return tokens


@functools.lru_cache(maxsize=1024)
def _mailbox_tokens(address: Address, field: str) -> tuple[str, ...]:
    """One address's tokens, kept: a mailing's From is the same on every copy, and the library's
    parser that checks it costs a tenth of a millisecond (a ValueError is not kept)."""
    _checked(f"{field} display name", address.name)
    _checked(f"{field} address", address.address)
    spec = ascii_address(address.address)
    try:  # the library's addr-spec parser, as a check: it raises ValueError, IndexError, HeaderParseError
        spec = HeaderAddress(addr_spec=spec).addr_spec
    except Exception as exc:
        raise ValueError(f"{field}: not an e-mail address: {address.address!r}") from exc
    name = " ".join(address.name.split())
    if not name:
        return (spec,)
    if _needs_encoding(name):
        return (*_encoded_words(name), f"<{spec}>")
    if _PHRASE.match(name):
        return (name, f"<{spec}>")
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return (f'"{quoted}"', f"<{spec}>")


def _text_tokens(field: str, value: str) -> list[str]:
    """Free text as tokens: encoded words if it needs them, else its own words (spaces kept exactly)."""
    _checked(field, value)
    return _encoded_words(value) if _needs_encoding(value) else value.split(" ")


def _needs_encoding(text: str) -> bool:
    return not _PLAIN_TEXT.match(text) or "=?" in text


def _encoded_words(text: str) -> list[str]:
    """``text`` as base64 UTF-8 encoded words, split between characters.

    A split goes before a space where one is near (the space starts the next word): decoders
    drop the gap between two encoded words, as RFC 2047 says, but Python 3.11's address parser
    keeps it (CPython gh-128110), and a kept gap next to a space is better than one inside a word.
    """
    chunks: list[str] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode()) <= _WORD_BYTES:
            chunk += char
            continue
        cut = chunk.rfind(" ")
        if cut > len(chunk) // 2:
            chunks.append(chunk[:cut])
            chunk = chunk[cut:] + char
        else:
            chunks.append(chunk)
            chunk = char
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c.encode()).decode('ascii')}?=" for c in chunks if c]


def _set(msg: EmailMessage, name: str, tokens: Sequence[str]) -> None:
    """Add the header as written: tokens joined by spaces, a line folded before one that would
    pass 76 columns (so folding only ever turns an existing space into CRLF + space)."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if token and len(line) + 1 + len(token) > _FOLD_AT and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {token}"
        if len(line) > MAX_LINE:
            raise ValueError(f"{name}: a word longer than {MAX_LINE} characters cannot be sent: {token[:40]!r}...")
    lines.append(line)
    msg.set_raw(name, "\n".join(lines).removeprefix(f"{name}: ").removeprefix(f"{name}:"))


def _bare_id(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">").strip()


def _usable_id(value: str | None) -> str | None:
    bare = _bare_id(value) if value else ""
    return bare if _MESSAGE_ID.match(bare) and len(bare) <= MAX_LINE - 20 else None


def _message_id(value: str, field: str) -> str:
    _checked(field, value)
    bare = _bare_id(value)
    if not _MESSAGE_ID.match(bare) or len(bare) > MAX_LINE - 20:
        raise ValueError(f"{field}: not a Message-ID (expected id@domain without <>): {value!r}")
    return bare


def _new_id(domain: str) -> str:
    return make_msgid(domain=domain or None).strip("<>")


def _date(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    if value.tzinfo is None:
        raise ValueError("Date: a naive datetime is ambiguous; give it a timezone")
    return value


def _add_extra(msg: EmailMessage, name: str, value: str) -> None:
    if not _FIELD_NAME.match(name):
        raise ValueError(f"not a header name: {name!r}")
    if name.lower() == "bcc":
        raise ValueError("Bcc in the header would show those addresses to every recipient; give them to send() only")
    if name.lower() in _OWN_HEADERS:
        raise ValueError(f"{name} is written by compose() itself and cannot be given as an extra header")
    _checked(name, value)
    if name.lower() in _ADDRESS_HEADERS:
        pairs = getaddresses([value])
        if not pairs or any("@" not in spec for _, spec in pairs):
            raise ValueError(f"{name}: not a list of e-mail addresses: {value!r}")
        _set(msg, name, _address_tokens([Address(spec, display) for display, spec in pairs], name))
    else:  # ASCII as written (URLs must stay readable), anything else as encoded words
        _set(msg, name, _text_tokens(name, value))


def _with_simple_body(msg: EmailMessage, message: Outgoing) -> bytes:
    """The headers already set, then a text part, or text and HTML as multipart/alternative,
    written directly: what ``set_content`` would make, without its header parsing."""
    text = message.text or (html_to_text(message.html) if message.html else "")
    lines = [f"{name}: {value}" for name, value in msg.raw_items()]
    lines.append("MIME-Version: 1.0")
    if message.html is None:
        lines.extend(_text_part("plain", text))
    else:
        boundary = f"=_{secrets.token_hex(12)}"
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        lines.extend(["", f"--{boundary}", *_text_part("plain", text), f"--{boundary}",
                      *_text_part("html", message.html), f"--{boundary}--"])  # fmt: skip
    return ("\r\n".join(lines).replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n").encode("ascii")


def _text_part(subtype: str, text: str) -> list[str]:
    """Header lines, a blank line and the body: 7bit when it is short-lined ASCII, else base64."""
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if body.isascii() and all(len(line) <= MAX_LINE for line in body.split("\n")):
        encoding, encoded = "7bit", body.rstrip("\n")
    else:
        encoding, encoded = "base64", base64.encodebytes(body.encode("utf-8")).decode("ascii").rstrip("\n")
    return [f'Content-Type: text/{subtype}; charset="utf-8"', f"Content-Transfer-Encoding: {encoding}", "", encoded]


def _set_body(msg: EmailMessage, message: Outgoing) -> None:
    text = message.text or (html_to_text(message.html) if message.html else "")
    msg.set_content(text)
    inline = [a for a in message.attachments if a.inline and a.content_id and message.html is not None]
    if message.html is not None:
        msg.add_alternative(message.html, subtype="html")
        parts = msg.get_payload()
        assert isinstance(parts, list)  # add_alternative made the message multipart
        html_part = parts[1]
        assert isinstance(html_part, EmailMessage)
        for attachment in inline:
            maintype, subtype = _content_type(attachment)
            html_part.add_related(
                _data(attachment),
                maintype=maintype,
                subtype=subtype,
                disposition="inline",
                filename=_file_name(attachment),
                cid=f"<{_message_id(attachment.content_id or '', 'Content-ID')}>",
                params=_name_param(attachment),
            )
    for attachment in message.attachments:
        if any(attachment is shown for shown in inline):
            continue
        maintype, subtype = _content_type(attachment)
        cid = f"<{_message_id(attachment.content_id, 'Content-ID')}>" if attachment.content_id else None
        msg.add_attachment(
            _data(attachment),
            maintype=maintype,
            subtype=subtype,
            filename=_file_name(attachment),
            cid=cid,
            params=_name_param(attachment),
        )


def _data(attachment: Attachment) -> bytes:
    if attachment.data is None:
        raise ValueError(f"attachment {attachment.filename!r} was kept without its bytes (over the size limit)")
    return attachment.data


def _content_type(attachment: Attachment) -> tuple[str, str]:
    """The attachment's type; ``message/*`` and ``multipart/*`` go as octet-stream: RFC 2046
    forbids base64 for them, and their bytes are sent as they are."""
    maintype, _, subtype = attachment.content_type.strip().lower().partition("/")
    if maintype in ("message", "multipart") or not _FIELD_NAME.match(maintype) or not _FIELD_NAME.match(subtype):
        return "application", "octet-stream"
    return maintype, subtype


def _file_name(attachment: Attachment) -> str | None:
    return _checked("attachment file name", attachment.filename).strip() or None


def _name_param(attachment: Attachment) -> dict[str, str] | None:
    """The file name also where older clients look for it: ``name`` on Content-Type (RFC 2231 too)."""
    name = _file_name(attachment)
    return {"name": name} if name else None
