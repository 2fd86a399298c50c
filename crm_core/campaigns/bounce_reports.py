"""Reading what comes back to the bounce mailbox: who could not be reached, how badly, and
which of our messages it was.

Three shapes are read.  A DSN (RFC 3464, ``multipart/report; report-type=delivery-status``)
names each failed recipient with an Action and a Status.  A complaint (ARF, RFC 5965) names
the person who pressed "spam".  Everything else that a mail server writes for people only
(Exim, qmail, Exchange, Mail.ru and Yandex in Russian) is read from its text: the addresses,
an SMTP code if there is one, and a few English and Russian phrases.  Auto-replies and
people's mail are not bounces.

Pure, and forgiving: any bytes give a report or None, never an exception, because a mailbox
holds whatever anyone sent to it.
"""

from __future__ import annotations

import email
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import Literal

Kind = Literal["hard", "soft", "complaint"]


_GRAVITY: dict[Kind, int] = {"soft": 0, "hard": 1, "complaint": 2}
MAX_DIAGNOSTIC = 1000
_MAX_REPORT_TEXT = 20_000  # the human part of a bounce is short; what follows is the returned copy

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)")
_SMTP_CODE = re.compile(r"(?<![\d.])([45])\d\d(?=[ -])")
_ID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_CAMPAIGN_LINE = re.compile(r"^\s*X-Hub-Campaign:\s*(\d{1,9})\s*$", re.IGNORECASE | re.MULTILINE)
_TYPE = re.compile(r"^[\w-]+\s*;\s*")  # a DSN field's type: "rfc822;", "smtp;"
_HUB_ID = re.compile(r"<c\d+\.r\d+\.[0-9a-f]+@[^<>\s]+>")
_SENDER_LINE = re.compile(r"^(?:from|sender|reply-to|return-path):(.*)$", re.IGNORECASE | re.MULTILINE)
_COPY_FOLLOWS = re.compile(
    r"^.*(?:this is a copy of the message|below this line is a copy of the message|original message (?:headers|follows)"
    r"|-{3,} ?original message|заголовки исходного|исходное (?:сообщение|письмо)).*$",
    re.IGNORECASE | re.MULTILINE,
)
_HARD_WORDS = re.compile(
    r"user unknown|unknown (?:user|recipient)|no such (?:user|mailbox|recipient|address)|no mailbox here"
    r"|mailbox (?:unavailable|not found|disabled)|does ?n[o']t exist|(?:user|recipient|address) not found"
    r"|recip ?not ?found|invalid (?:recipient|mailbox|address)|account (?:has been )?disabled|unrouteable address"
    r"|не существует|нет такого (?:пользователя|адресата|ящика)|(?:пользователь|адресат|ящик) не найден"
    r"|неверный адрес|ящик заблокирован",
    re.IGNORECASE,
)
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|quota|insufficient (?:system )?storage|storage allocation|temporar|try again later"
    r"|greylist|spam|blacklist|blocklist|переполнен|временно|превышен|спам|попробуйте (?:отправить )?позже",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (?:system|subsystem)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status notification|failure|failed|has failed|problem)|mail delivery failed"
    r"|returned mail|returning message|failure notice|не доставлен|недоставлен|не удалось доставить",
    re.IGNORECASE,
)
_BOUNCE_TEXT = re.compile(
    r"mail delivery software|qmail-send program|delivery has failed to these recipients"
    r"|could not be delivered to one or more|wasn't able to deliver your message"
    r"|не может быть доставлено|не удалось доставить|не было доставлено",
    re.IGNORECASE,
)
_AUTO_REPLY = re.compile(
    r"auto(?:matic)?[ -]?(?:reply|response|answer)|autoreply|out of (?:the )?office|abwesen|vacation"
    r"|автоответ|автоматический ответ|отсутств|в отпуске",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder")
_SERVICE_MAILBOXES = frozenset({"mailer-daemon", "postmaster", "abuse", "noreply", "no-reply"})
_COMPLAINTS = frozenset({"abuse", "fraud"})  # not "not-spam", "virus" or DMARC's "auth-failure"
# 5.x.x codes that say nothing about the address: mailbox full (x.2.2), the message too big
# (5.2.3, 5.3.4), its content (5.6.x) or a policy or spam block (5.7.x).  They do not suppress
# at once; they count as soft bounces.
_NOT_THE_ADDRESS = frozenset({("2", "2"), ("2", "3"), ("3", "4")})
_NOT_THE_ADDRESS_SUBJECTS = frozenset({"6", "7"})


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    address: str  # as the report writes it; compared lower-cased
    kind: Kind
    status: str | None = None  # the enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # the receiving server's words


@dataclass(frozen=True, slots=True)
class BounceReport:
    recipients: tuple[FailedRecipient, ...]  # never empty, each address once
    original_message_id: str | None = None  # of the message that bounced, with <>, as in its header
    campaign_id: int | None = None  # its X-Hub-Campaign, when the report shows it

    @property
    def kind(self) -> Kind:
        """The gravest of its recipients': a complaint, then a hard bounce, then a soft one."""
        return max((r.kind for r in self.recipients), key=_GRAVITY.__getitem__)


def read_report(raw: bytes) -> BounceReport | None:
    """The bounce or complaint ``raw`` is; None for anything else (an auto-reply, a person's
    mail, bytes nobody can read)."""
    try:
        return _read(email.message_from_bytes(raw, policy=policy.compat32))
    except Exception:  # the stdlib parser has its own bugs on hostile input; so may we
        return None


def _read(msg: Message) -> BounceReport | None:
    parts = list(_parts(msg))
    returned = next((r for r in map(_returned, parts) if r is not None), None)
    text = _text(parts)
    failed = _machine_readable(parts, returned)
    if failed is None:
        failed = _from_text(msg, text, returned)
    unique: dict[str, FailedRecipient] = {}
    for one in failed:
        unique.setdefault(one.address.lower(), one)
    if not unique:
        return None
    return BounceReport(tuple(unique.values()), _original_id(msg, returned, text), _campaign(returned, text))


# -- the machine-readable reports --------------------------------------------------------------


def _machine_readable(parts: list[Message], returned: Message | None) -> list[FailedRecipient] | None:
    """The failures a DSN or an ARF report names; None when there is no such report to read."""
    for part in parts:
        content_type = part.get_content_type()
        if content_type == "message/feedback-report":
            return _complaints(part, returned)
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            failed = _delivery_status(part)
            if failed is not None:
                return failed
    return None


def _delivery_status(part: Message) -> list[FailedRecipient] | None:
    """Recipients whose Action is failed or delayed; "delivered", "relayed" and "expanded" are
    no bounce.  None when the part has no recipient block at all (then the text is read)."""
    blocks = [b for b in _blocks(part) if b.get("Final-Recipient") or b.get("Original-Recipient")]
    if not blocks:
        return None
    failed = []
    for block in blocks:
        action = _field(block, "Action").lower()
        original, final = _field(block, "Original-Recipient"), _field(block, "Final-Recipient")
        address = _typed_address(original) or _typed_address(final)  # the one we wrote to, before forwarding
        if action not in ("failed", "delayed") or address is None:
            continue
        diagnostic = _TYPE.sub("", _field(block, "Diagnostic-Code"))  # "smtp; 550 ..." -> "550 ..."
        status = _status(_field(block, "Status")) or _status(diagnostic)
        kind: Kind = "soft" if action == "delayed" else _kind(status, diagnostic) or "hard"
        failed.append(_failed(address, kind, status, diagnostic))
    return failed


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part: ``[0]`` per message, then per recipient.

    The stdlib splits ``message/delivery-status`` itself; ``message/global-delivery-status``
    (RFC 6533) it parses as one message whose body holds the recipient blocks.
    """
    blocks: list[Message] = []
    for block in _list(part.get_payload()):
        blocks.append(block)
        rest = block.get_payload()
        if isinstance(rest, str) and rest.strip():
            blocks += [email.message_from_string(b) for b in re.split(r"\n\s*\n", rest) if b.strip()]
    return blocks


def _complaints(part: Message, returned: Message | None) -> list[FailedRecipient]:
    """The complaining address: Original-Rcpt-To, or the To of the returned message."""
    [report, *_] = _list(part.get_payload()) or [Message()]  # the stdlib parses the fields as headers
    feedback_type = _field(report, "Feedback-Type").lower()
    if feedback_type not in _COMPLAINTS:
        return []
    addresses = _addresses(report, "Original-Rcpt-To") or (_addresses(returned, "To") if returned else [])
    agent = _field(report, "User-Agent")
    diagnostic = f"Feedback-Type: {feedback_type}" + (f"; User-Agent: {agent}" if agent else "")
    return [_failed(address, "complaint", None, diagnostic) for address in addresses]


# -- bounces written for people ------------------------------------------------------------------


def _from_text(msg: Message, text: str, returned: Message | None) -> list[FailedRecipient]:
    sender, subject = _header(msg, "From"), _header(msg, "Subject")
    said_so = bool(_DAEMON.search(sender) or _BOUNCE_SUBJECT.search(subject))
    auto_reply = _AUTO_REPLY.search(subject) or any(msg.get(name) for name in _AUTO_REPLY_HEADERS)
    if auto_reply and not said_so:
        return []
    report, copy = _cut(text)
    flat = _clean(report)  # phrases as servers wrap them
    if not (said_so or _BOUNCE_TEXT.search(flat)):
        return []
    ids = {i.strip("<>").lower() for i in _ID_LINE.findall(text) + _HUB_ID.findall(text)}
    ours = _ours(msg, returned, copy) | ids
    named = _addresses(msg, "X-Failed-Recipients") or [m.group() for m in _ADDRESS.finditer(report)]
    addresses: dict[str, str] = {}
    for address in named:
        if _theirs(address, ours):
            addresses.setdefault(address.lower(), address)
    # Each address's words run from where it is first named to where the next one is.
    starts = sorted((_position(report, a), a) for a in addresses.values())
    failed = []
    for i, (start, address) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(report)
        said = report[start + len(address) : end] if start >= 0 else ""
        words = _clean(said).lstrip(">:;,. ") or flat
        status = _status(words)
        kind = _kind(status, words) or _kind(status, flat) or "soft"
        failed.append(_failed(address, kind, status, words))
    return failed


def _cut(text: str) -> tuple[str, str]:
    """The report and the returned copy that Exim and qmail append to it as text."""
    found = _COPY_FOLLOWS.search(text)
    report, copy = (text[: found.start()], text[found.start() :]) if found else (text, "")
    return report[:_MAX_REPORT_TEXT], copy


def _ours(msg: Message, returned: Message | None, copy: str) -> set[str]:
    """Addresses that are not the failed recipient: the bounce's own and our sender's."""
    found = [a for name in ("From", "To", "Cc", "Delivered-To", "X-Original-To") for a in _addresses(msg, name)]
    if returned is not None:
        found += [a for name in ("From", "Sender", "Reply-To", "Return-Path") for a in _addresses(returned, name)]
    found += [m.group() for line in _SENDER_LINE.findall(copy) for m in _ADDRESS.finditer(line)]
    return {a.lower() for a in found}


def _position(report: str, address: str) -> int:
    found = re.search(re.escape(address), report, re.IGNORECASE)
    return found.start() if found else -1


def _theirs(address: str, ours: set[str]) -> bool:
    lowered = address.lower()
    return lowered not in ours and lowered.partition("@")[0] not in _SERVICE_MAILBOXES


# -- classifying ---------------------------------------------------------------------------------


def _kind(status: str | None, text: str) -> Kind | None:
    """Hard or soft, from the status code when it is specific, else from the words, else from a
    bare SMTP code; None when nothing says."""
    if status is not None and not status.endswith(".0.0"):  # X.0.0 says only "failed"
        return _kind_of_status(status)
    if _HARD_WORDS.search(text):
        return "hard"
    if _SOFT_WORDS.search(text):
        return "soft"
    if status is not None:
        return _kind_of_status(status)
    code = _SMTP_CODE.search(text)
    if code is None:
        return None
    return "hard" if code[1] == "5" else "soft"


def _kind_of_status(status: str) -> Kind:
    klass, subject, detail = status.split(".")
    if klass != "5" or (subject, detail) in _NOT_THE_ADDRESS or subject in _NOT_THE_ADDRESS_SUBJECTS:
        return "soft"
    return "hard"


# -- which message it was ------------------------------------------------------------------------


def _original_id(msg: Message, returned: Message | None, text: str) -> str | None:
    """From the returned message, its headers quoted in the text, the bounce's own In-Reply-To
    or References, or one of our Message-IDs anywhere in the text."""
    candidates = [
        _field(returned, "Message-ID") if returned is not None else "",
        *_ID_LINE.findall(text)[:1],
        _field(msg, "In-Reply-To"),
        *_field(msg, "References").split()[-1:],
        *_HUB_ID.findall(text)[:1],
    ]
    for candidate in candidates:
        found = re.search(r"<?([^<>\s]+@[^<>\s]+)>?", candidate)
        if found:
            return f"<{found[1]}>"[:998]
    return None


def _campaign(returned: Message | None, text: str) -> int | None:
    value = _field(returned, "X-Hub-Campaign") if returned is not None else ""
    if re.fullmatch(r"\d{1,9}", value):
        return int(value)
    found = _CAMPAIGN_LINE.search(text)
    return int(found[1]) if found else None


# -- MIME ------------------------------------------------------------------------------------------


def _parts(msg: Message) -> Iterator[Message]:
    """Every part, without going into attached messages (the returned copy is not the report)."""
    yield msg
    if msg.get_content_maintype() == "multipart":
        for part in _list(msg.get_payload()):
            yield from _parts(part)


def _returned(part: Message) -> Message | None:
    """The message that bounced, or its headers."""
    content_type = part.get_content_type()
    if content_type in ("message/rfc822", "message/global", "message/rfc822-headers", "message/global-headers"):
        return next(iter(_list(part.get_payload())), None)
    if content_type == "text/rfc822-headers":
        return email.message_from_string(_decoded(part))
    return None


def _text(parts: Iterable[Message]) -> str:
    """The human-readable text: the plain parts, or the HTML ones without their tags."""
    plain = [_decoded(p) for p in parts if p.get_content_type() == "text/plain"]
    if plain:
        return "\n".join(plain)
    markup = "\n".join(_decoded(p) for p in parts if p.get_content_type() == "text/html")
    return html.unescape(re.sub(r"<[^>]*>", " ", markup))


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    # Undeclared or misdeclared Russian text is most often Windows-1251.
    for charset in (part.get_content_charset(), "utf-8", "cp1251"):
        if charset:
            try:
                return data.decode(charset)
            except (LookupError, UnicodeError):
                continue
    return data.decode("utf-8", "replace")


def _list(payload: object) -> list[Message]:
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _header(msg: Message, name: str) -> str:
    """A header's value with its encoded words decoded, unfolded; "" when absent."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return _clean(str(make_header(decode_header(str(value)))))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return _clean(str(value))


def _field(msg: Message, name: str) -> str:
    """A report field, unfolded."""
    return _clean(str(msg.get(name) or ""))


def _addresses(msg: Message, name: str) -> list[str]:
    values = [str(v) for v in msg.get_all(name) or []]
    return [m.group() for _, address in getaddresses(values) for m in [_ADDRESS.search(address)] if m]


def _typed_address(value: str) -> str | None:
    """``rfc822; someone@example.com`` -> the address."""
    found = _ADDRESS.search(_TYPE.sub("", value))
    return found.group() if found else None


def _status(text: str) -> str | None:
    found = _STATUS.search(text)
    return found[1] if found else None


def _clean(text: str) -> str:
    return " ".join(text.replace("\x00", "").split())


def _failed(address: str, kind: Kind, status: str | None, diagnostic: str) -> FailedRecipient:
    return FailedRecipient(address[:320], kind, status, _clean(diagnostic)[:MAX_DIAGNOSTIC])
