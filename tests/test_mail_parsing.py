"""Parsing mail as it really arrives: every charset, broken MIME, hostile HTML; never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mail import charsets
from connectors.mail.html import for_display, sanitise
from connectors.mail.mime import UnreadableMessage, parse

LIMIT = 1_000_000
RUSSIAN = "Добрый день! Высылаем счёт на оплату и акт сверки за ноябрь."


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_any_bytes_parse_or_are_refused_with_a_reason(raw: bytes) -> None:
    try:
        parse(raw, max_attachment_bytes=LIMIT)
    except UnreadableMessage as exc:
        assert str(exc)


CODECS = ["utf-8", "cp1251", "koi8_r", "iso8859_5", "cp866"]


@given(st.sampled_from(CODECS), st.sampled_from([None, "declared", "utf-8"]))
def test_body_text_is_read_whatever_charset_was_claimed(real: str, claim: str | None) -> None:
    declared = real if claim == "declared" else claim
    assert charsets.decode(RUSSIAN.encode(real), declared)[0] == RUSSIAN


def test_misspelt_and_unknown_charset_names_are_understood() -> None:
    for name in ("win-1251", "cp-1251", "windows1251", "x-cp1251", None, "x-unknown"):
        assert charsets.decode(RUSSIAN.encode("cp1251"), name)[0] == RUSSIAN
    assert charsets.decode(RUSSIAN.encode("utf-8"), "utf8")[0] == RUSSIAN


def _message(headers: bytes, body: bytes) -> bytes:
    return headers.replace(b"\n", b"\r\n") + b"\r\n" + body


def test_eight_bit_headers_from_broken_clients_are_decoded() -> None:
    raw = _message(
        "From: Иван Петров <ivan@example.ru>\nTo: Отдел продаж <sales@example.ru>\nSubject: Счёт на оплату\n".encode(
            "cp1251"
        ),
        RUSSIAN.encode("cp1251"),
    )
    mail = parse(raw, max_attachment_bytes=LIMIT)
    assert mail.subject == "Счёт на оплату"
    assert mail.sender is not None and (mail.sender.name, mail.sender.address) == ("Иван Петров", "ivan@example.ru")
    assert mail.to[0].name == "Отдел продаж" and mail.text == RUSSIAN


def test_hostile_html_is_defused_and_remote_images_wait_for_the_user() -> None:
    hostile = (
        '<p onclick="steal()">Здравствуйте</p><script>alert(1)</script><a href="javascript:alert(1)">x</a>'
        '<img src="https://tracker.example/p.gif" onerror="x()"><iframe src="https://evil.example"></iframe>'
        '<a href="/api/users">inside</a><img src="cid:logo@x">'
    )
    stored = sanitise(hostile)
    for bad in ("onclick", "<script", "javascript:", "onerror", "<iframe", 'href="/api'):
        assert bad not in stored
    shown = for_display(stored, remote_images=False, inline_url=lambda cid: f"/api/messages/7/inline/{cid}")
    assert "tracker.example" not in shown and 'src="/api/messages/7/inline/logo@x"' in shown
    assert "tracker.example" in for_display(stored, remote_images=True, inline_url=lambda cid: None)


def test_dates_with_russian_month_names_and_threading_headers() -> None:
    raw = _message(
        b"From: a@example.ru\nDate: 1 \xd0\xb4\xd0\xb5\xd0\xba 2026 10:00:00 +0300\nMessage-ID: no-brackets@x\n"
        b"In-Reply-To: <first@x> (comment)\nReferences: <root@x>\n <first@x>\n",
        b"hi",
    )
    mail = parse(raw, max_attachment_bytes=LIMIT)
    assert mail.sent_at is not None and mail.sent_at.isoformat() == "2026-12-01T07:00:00+00:00"
    assert (mail.message_id, mail.in_reply_to, mail.references) == ("no-brackets@x", "first@x", ("root@x", "first@x"))


def test_attachment_over_the_limit_keeps_its_name_and_size_only() -> None:
    raw = _message(
        b'From: a@example.ru\nContent-Type: multipart/mixed; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="big.pdf"\r\n\r\n' + b"x" * 5000 + b"\r\n--b--\r\n",
    )
    mail = parse(raw, max_attachment_bytes=1000)
    [attachment] = mail.attachments
    assert (attachment.filename, attachment.data, attachment.size) == ("big.pdf", None, 5000)
    assert mail.text == "see attached"


def test_empty_and_headerless_bytes_are_refused_with_a_reason() -> None:
    for raw in (b"", b"\r\n\r\n", b"\x00\x01\x02 garbage without any header"):
        try:
            parse(raw, max_attachment_bytes=LIMIT)
        except UnreadableMessage as exc:
            assert str(exc)
        else:
            raise AssertionError(f"{raw!r} was accepted")
