"""Sending mail: what compose() builds arrives at a real SMTP server (aiosmtpd) exactly as built,
and what the server says (refusals, 451, dropped connections, timeouts) reaches the caller as
the right error, without a message lost or sent twice."""

from __future__ import annotations

import asyncio
import email
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.mail.compose import MAX_REFERENCES, Outgoing, compose, html_to_text, reply_headers, reply_subject
from connectors.mail.mime import parse
from connectors.smtp import (
    SmtpAuthenticationFailed,
    SmtpOutcomeUnknown,
    SmtpPermanentFailure,
    SmtpRecipientsRefused,
    SmtpSecurityFailure,
    SmtpSender,
    SmtpSettings,
    SmtpTemporaryFailure,
)
from crm_core.mail.events import Address, Attachment, ParsedMail
from tests import smtp_server as _server
from tests.smtp_server import SmtpTestServer, server_tls_context

# The real SMTP servers' fixtures, used here by name.
smtp_server = _server.smtp_server
smtps_server = _server.smtps_server
tls_files = _server.tls_files

SALES = Address("sales@example.ru", 'ООО "Ромашка", отдел продаж')
CLIENT = Address("ivanov@client.example", "Иванов, Иван")
BOSS = Address("boss@client.example", 'Smith, John "JJ"')
INVOICE = "Счёт на оплату №42 от 01.05.2024.pdf"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"

Senders = Callable[..., SmtpSender]


@pytest.fixture
async def senders() -> AsyncIterator[Senders]:
    """``senders(server, **settings)``: a sender for that server, closed after the test."""
    made: list[SmtpSender] = []

    def make(server: SmtpTestServer, **overrides: Any) -> SmtpSender:
        options: dict[str, Any] = {"security": "none", "timeout": 5.0} | overrides
        sender = SmtpSender(SmtpSettings(name="sales", host=server.host, port=server.port, **options))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.close()


def letter(**changes: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "sender": SALES,
        "to": (CLIENT,),
        "cc": (BOSS,),
        "subject": "Счёт № 42 — оплата до пятницы",
        "text": "Добрый день, Иван!\n\nСчёт во вложении.\n.Строка с точкой в начале.\n",
        "html": "<p>Добрый день, Иван!</p><p>Счёт <b>во вложении</b>.</p>",
        "attachments": (Attachment(INVOICE, "application/pdf", PDF, len(PDF)),),
        "date": datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
    }
    return Outgoing(**(fields | changes))


def arrived(raw: bytes) -> ParsedMail:
    return parse(raw, max_attachment_bytes=10**7)


def lines(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def collapsed(name: str) -> str:
    """A display name with its spaces collapsed.  Python 3.11's address parser (which mime.parse
    uses) keeps the gap between two encoded words, against RFC 2047 (CPython gh-128110), so a
    long name comes back with a doubled space where compose() split it."""
    return " ".join(name.split())


def rfc2047(raw: bytes, header: str) -> str:
    """The header as an RFC 2047 decoder shows it (the gap between encoded words dropped)."""
    value = email.message_from_bytes(raw, policy=policy.compat32)[header]
    return str(make_header(decode_header(value)))


# -- what arrives -----------------------------------------------------------------------------


async def test_composed_message_arrives_exactly_as_composed(smtp_server: SmtpTestServer, senders: Senders) -> None:
    message_id, raw = compose(letter())
    sender = senders(smtp_server)

    refused = await sender.send(SALES.address, [CLIENT.address, BOSS.address, "archive@example.ru"], raw)

    assert refused == {}
    [got] = smtp_server.messages
    assert got.raw == raw
    assert got.mail_from == SALES.address
    assert got.rcpt_tos == (CLIENT.address, BOSS.address, "archive@example.ru")
    mail = arrived(got.raw)
    assert mail.message_id == message_id
    assert mail.subject == "Счёт № 42 — оплата до пятницы"
    assert mail.sender is not None and mail.sender.address == SALES.address
    assert collapsed(mail.sender.name) == SALES.name
    assert rfc2047(got.raw, "From") == f"{SALES.name} <{SALES.address}>"
    assert mail.to == (CLIENT,)
    assert mail.cc == (BOSS,)  # the Bcc-like archive copy is in the envelope only
    assert "archive" not in got.raw.decode("ascii")
    assert mail.sent_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert lines(mail.text) == lines(letter().text)
    assert mail.html is not None and "во вложении" in mail.html
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [(INVOICE, "application/pdf", PDF)]


async def test_lines_that_start_with_a_dot_survive_the_transfer(smtp_server: SmtpTestServer, senders: Senders) -> None:
    text = "Plain ASCII body.\n.\n..two dots\n.hidden line\nend\n"
    _, raw = compose(letter(text=text, html=None, attachments=()))
    assert b"\r\n.\r\n" in raw  # a lone dot would end DATA unless the client doubles it

    await senders(smtp_server).send(SALES.address, [CLIENT.address], raw)

    [got] = smtp_server.messages
    assert got.raw == raw
    assert lines(arrived(got.raw).text) == text.strip()


def test_composed_bytes_are_7bit_with_crlf_line_ends() -> None:
    _, raw = compose(letter())

    assert raw.isascii()
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"filename*" in raw  # the Cyrillic file name as RFC 2231 parameters


def test_text_is_derived_from_html_when_only_html_is_given() -> None:
    html = (
        "<html><head><style>p {color: red}</style></head><body><p>Здравствуйте,&nbsp;Иван &amp; Мария!</p>"
        '<p>Строка 1<br>Строка 2</p><p><a href="https://example.ru/pay">Оплатить</a></p></body></html>'
    )
    _, raw = compose(letter(text="", html=html, attachments=()))

    mail = arrived(raw)

    assert lines(mail.text) == (
        "Здравствуйте,\xa0Иван & Мария!\n\nСтрока 1\nСтрока 2\n\nОплатить (https://example.ru/pay)"
    )
    assert html_to_text("<ul><li>один</li><li>два</li></ul>") == "- один\n- два"


def test_message_id_is_made_from_the_senders_domain_unless_given() -> None:
    made, raw = compose(letter())
    given, _ = compose(letter(message_id="order-42@crm.example.ru"))

    assert made.endswith("@example.ru") and "<" not in made
    assert arrived(raw).message_id == made
    assert given == "order-42@crm.example.ru"


def test_display_names_with_commas_quotes_and_cyrillic_round_trip() -> None:
    names = ['Smith, John "JJ"', "Иванов, Иван", 'ООО "Ромашка"', "O'Brien (sales)", "Пётр"]
    to = tuple(Address(f"user{i}@example.org", name) for i, name in enumerate(names))
    _, raw = compose(letter(to=to, cc=()))

    assert arrived(raw).to == to


_HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120).filter(
    lambda t: not re.search(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", t)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_HEADER_TEXT, name=_HEADER_TEXT)
def test_any_subject_and_display_name_round_trip(subject: str, name: str) -> None:
    _, raw = compose(letter(sender=Address("sales@example.ru", name), subject=subject, attachments=()))

    mail = arrived(raw)

    assert raw.isascii()
    assert all(len(line) <= 76 for line in raw.split(b"\r\n") if b"=?" in line)  # RFC 2047 section 2
    assert mail.subject == subject.strip()
    assert mail.sender is not None and mail.sender.address == "sales@example.ru"
    assert "".join(mail.sender.name.split()) == "".join(name.split())  # gaps: see collapsed()
    if collapsed(name):
        decoded = rfc2047(raw, "From").replace('\\"', '"').replace("\\\\", "\\")
        assert collapsed(name) in decoded


def test_inline_image_goes_next_to_the_html() -> None:
    logo = Attachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n", 8, content_id="logo@crm", inline=True)
    _, raw = compose(letter(html='<p>Привет</p><img src="cid:logo@crm">', attachments=(logo,)))

    mail = arrived(raw)

    assert b"multipart/related" in raw
    assert [(a.filename, a.inline, a.data) for a in mail.attachments] == [("logo.png", True, logo.data)]


async def test_idn_domains_go_out_as_punycode(smtp_server: SmtpTestServer, senders: Senders) -> None:
    _, raw = compose(letter(to=(Address("info@пример.рф", "Пример"),), cc=()))

    await senders(smtp_server).send(SALES.address, ["info@пример.рф"], raw)

    [got] = smtp_server.messages
    assert got.rcpt_tos == ("info@xn--e1afmkfd.xn--p1ai",)
    assert arrived(got.raw).to == (Address("info@xn--e1afmkfd.xn--p1ai", "Пример"),)


# -- replies ----------------------------------------------------------------------------------


async def test_reply_is_threaded_under_its_parent(smtp_server: SmtpTestServer, senders: Senders) -> None:
    parent_id, parent_raw = compose(
        letter(sender=CLIENT, to=(SALES,), cc=(), references=("root@client.example", "second@example.ru"))
    )
    parent = arrived(parent_raw)
    in_reply_to, references = reply_headers(parent.message_id, parent.references)
    _, raw = compose(
        letter(
            to=(CLIENT,),
            subject=reply_subject(parent.subject),
            in_reply_to=in_reply_to,
            references=references,
        )
    )

    await senders(smtp_server).send(SALES.address, [CLIENT.address], raw)

    reply = arrived(smtp_server.messages[0].raw)
    assert reply.in_reply_to == parent_id
    assert reply.references == ("root@client.example", "second@example.ru", parent_id)
    assert reply.subject == "Re: Счёт № 42 — оплата до пятницы"


def test_reply_headers_follow_rfc_5322() -> None:
    assert reply_headers("p@x", ["a@x", "<b@x>", "a@x"]) == ("p@x", ("a@x", "b@x", "p@x"))
    assert reply_headers("<p@x>", []) == ("p@x", ("p@x",))
    assert reply_headers(None, ["a@x"]) == (None, ("a@x",))
    assert reply_headers(None, []) == (None, ())
    assert reply_headers("p@x", ["a b@x", "ё@x", "a@x"]) == ("p@x", ("a@x", "p@x"))  # unusable ids left out


def test_long_threads_keep_their_root_and_newest_references() -> None:
    thread = [f"m{i}@x" for i in range(30)]

    _, references = reply_headers("last@x", thread)

    assert len(references) == MAX_REFERENCES
    assert references[0] == "m0@x"
    assert references[-2:] == ("m29@x", "last@x")
    assert references[1] == f"m{30 - MAX_REFERENCES + 2}@x"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Счёт", "Re: Счёт"),
        ("Re: Счёт", "Re: Счёт"),
        ("RE: Счёт", "RE: Счёт"),
        ("re:Счёт", "re:Счёт"),
        ("Отв: Счёт", "Отв: Счёт"),
        ("ОТВ: Счёт", "ОТВ: Счёт"),
        ("Fwd: Счёт", "Re: Fwd: Счёт"),
        ("Reply needed", "Re: Reply needed"),
    ],
)
def test_reply_subject_is_prefixed_once(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_message_ids_and_long_urls_are_folded_not_encoded() -> None:
    long_id = "x" * 90 + "@example.org"
    url = "https://example.ru/unsubscribe?token=" + "t" * 90
    _, raw = compose(
        letter(
            in_reply_to=long_id,
            references=("root@example.org", long_id),
            headers=(("List-Unsubscribe", f"<mailto:unsubscribe@example.ru>, <{url}>"),),
        )
    )

    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"<{long_id}>" in head and f"<{url}>" in head
    assert "=?" not in head.split("References:", 1)[1].split("\r\nMIME-Version", 1)[0]
    assert arrived(raw).references == ("root@example.org", long_id)


# -- header injection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Счёт\r\nBcc: victim@example.org"},
        {"subject": "Счёт\nBcc: victim@example.org"},
        {"to": (Address("ivanov@client.example", "Иван\r\nBcc: victim@example.org"),)},
        {"to": (Address("ivanov@client.example\r\nBcc: victim@example.org"),)},
        {"to": (Address("ivanov@client.example", "Иван\u2028Bcc: victim@example.org"),)},
        {"sender": Address("sales@example.ru", "Продажи\rBcc: victim@example.org")},
        {"cc": (Address("boss@client.example", "x\n"),)},
        {"in_reply_to": "p@x\r\nBcc: victim@example.org"},
        {"references": ("a@x", "b@x\r\nBcc: victim@example.org")},
        {"message_id": "m@x\nBcc: victim@example.org"},
        {"headers": (("X-Campaign", "7\r\nBcc: victim@example.org"),)},
        {"headers": (("X-Campaign\r\nBcc", "victim@example.org"),)},
        {"attachments": (Attachment("a.pdf\r\nBcc: victim@example.org", "application/pdf", b"x", 1),)},
    ],
)
def test_line_breaks_in_any_header_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="line break|not a header name"):
        compose(letter(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"to": (Address("not-an-address"),), "cc": ()},
        {"to": (), "cc": ()},
        {"headers": (("Bcc", "victim@example.org"),)},
        {"headers": (("Subject", "another"),)},
        {"references": ("no id here",)},
        {"attachments": (Attachment("big.zip", "application/zip", None, 10**9),)},
        {"date": datetime(2024, 5, 1, 9, 30)},
    ],
)
def test_what_cannot_be_sent_is_refused_by_compose(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compose(letter(**changes))


async def test_line_breaks_in_envelope_addresses_are_refused_before_connecting(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    _, raw = compose(letter())
    sender = senders(smtp_server)

    with pytest.raises(ValueError, match="line break"):
        await sender.send(SALES.address, ["ivanov@client.example\r\nRCPT TO:<victim@example.org>"], raw)
    with pytest.raises(ValueError, match="line break"):
        await sender.send("sales@example.ru>\r\nRSET", [CLIENT.address], raw)

    assert smtp_server.connections == 0
    assert smtp_server.messages == []


# -- AUTH and TLS -----------------------------------------------------------------------------


async def test_login_with_the_right_password_sends(smtp_server: SmtpTestServer, senders: Senders) -> None:
    smtp_server.require_auth("sales@example.ru", "пароль-1")
    _, raw = compose(letter())

    await senders(smtp_server, username="sales@example.ru", password="пароль-1").send(
        SALES.address, [CLIENT.address], raw
    )

    [got] = smtp_server.messages
    assert got.login == "sales@example.ru"


async def test_wrong_password_raises_authentication_failed_and_nothing_is_sent(
    smtp_server: SmtpTestServer, senders: Senders, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.require_auth("sales@example.ru", "right")
    _, raw = compose(letter())
    sender = senders(smtp_server, username="sales@example.ru", password="wrong-secret")

    with caplog.at_level(logging.DEBUG, logger="connectors.smtp"), pytest.raises(SmtpAuthenticationFailed) as err:
        await sender.send(SALES.address, [CLIENT.address], raw)

    assert err.value.code == 535
    assert smtp_server.messages == []
    assert "MAIL" not in smtp_server.commands
    assert "wrong-secret" not in repr(sender.settings)
    logged = [f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records]
    assert logged and not any("wrong-secret" in line for line in logged)


async def test_starttls_required_but_not_offered_sends_nothing(smtp_server: SmtpTestServer, senders: Senders) -> None:
    _, raw = compose(letter())

    with pytest.raises(SmtpSecurityFailure, match="STARTTLS"):
        await senders(smtp_server, security="starttls").send(SALES.address, [CLIENT.address], raw)

    assert "MAIL" not in smtp_server.commands
    assert smtp_server.messages == []


async def test_starttls_encrypts_the_session_before_auth(
    smtp_server: SmtpTestServer, senders: Senders, tls_files: tuple[Path, Path]
) -> None:
    smtp_server.offer_starttls(server_tls_context(*tls_files))
    smtp_server.require_auth("sales@example.ru", "secret")
    _, raw = compose(letter())

    await senders(
        smtp_server, security="starttls", verify_tls=False, username="sales@example.ru", password="secret"
    ).send(SALES.address, [CLIENT.address], raw)

    [got] = smtp_server.messages
    assert got.tls and got.login == "sales@example.ru" and got.raw == raw


async def test_untrusted_certificate_is_refused_when_verifying(
    smtp_server: SmtpTestServer, senders: Senders, tls_files: tuple[Path, Path]
) -> None:
    smtp_server.offer_starttls(server_tls_context(*tls_files))
    _, raw = compose(letter())

    with pytest.raises(SmtpSecurityFailure, match="certificate"):
        await senders(smtp_server, security="starttls").send(SALES.address, [CLIENT.address], raw)

    assert smtp_server.messages == []


async def test_implicit_tls(smtps_server: SmtpTestServer, senders: Senders) -> None:
    _, raw = compose(letter())

    await senders(smtps_server, security="tls", verify_tls=False).send(SALES.address, [CLIENT.address], raw)

    [got] = smtps_server.messages
    assert got.tls and got.raw == raw


# -- refusals ---------------------------------------------------------------------------------


async def test_one_refused_recipient_is_reported_and_the_other_gets_the_message(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    smtp_server.refuse("gone@client.example")
    _, raw = compose(letter())

    refused = await senders(smtp_server).send(SALES.address, ["gone@client.example", CLIENT.address], raw)

    assert refused == {"gone@client.example": "550 5.1.1 No such user here"}
    [got] = smtp_server.messages
    assert got.rcpt_tos == (CLIENT.address,)


async def test_all_recipients_refused_raises_and_the_connection_stays_usable(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    smtp_server.refuse("gone@client.example")
    smtp_server.refuse("full@client.example", reply="452 4.2.2 Mailbox full")
    _, raw = compose(letter())
    sender = senders(smtp_server)

    with pytest.raises(SmtpRecipientsRefused) as err:
        await sender.send(SALES.address, ["gone@client.example", "full@client.example"], raw)
    await sender.send(SALES.address, [CLIENT.address], raw)

    assert err.value.refused == {
        "gone@client.example": "550 5.1.1 No such user here",
        "full@client.example": "452 4.2.2 Mailbox full",
    }
    assert not err.value.temporary
    assert [m.rcpt_tos for m in smtp_server.messages] == [(CLIENT.address,)]
    assert smtp_server.connections == 1
    assert "RSET" in smtp_server.commands


async def test_451_to_data_is_a_temporary_failure_and_nothing_is_resent(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    smtp_server.fail_data(1)
    _, raw = compose(letter())
    sender = senders(smtp_server)

    with pytest.raises(SmtpTemporaryFailure) as err:
        await sender.send(SALES.address, [CLIENT.address], raw)

    assert err.value.code == 451
    assert not isinstance(err.value, SmtpOutcomeUnknown)  # the server answered: it did not take it
    assert smtp_server.messages == []
    assert smtp_server.commands.count("DATA") == 1
    await sender.send(SALES.address, [CLIENT.address], raw)  # a later try, same connection
    assert len(smtp_server.messages) == 1 and smtp_server.connections == 1


async def test_5xx_to_data_is_a_permanent_failure(smtp_server: SmtpTestServer, senders: Senders) -> None:
    smtp_server.fail_data(1, reply="554 5.7.1 Message rejected as spam")
    _, raw = compose(letter())

    with pytest.raises(SmtpPermanentFailure, match="spam") as err:
        await senders(smtp_server).send(SALES.address, [CLIENT.address], raw)

    assert err.value.code == 554
    assert smtp_server.messages == []


# -- connections ------------------------------------------------------------------------------


async def test_one_connection_carries_many_messages(smtp_server: SmtpTestServer, senders: Senders) -> None:
    sender = senders(smtp_server)
    ids = []
    for n in range(3):
        message_id, raw = compose(letter(subject=f"Письмо {n}"))
        ids.append(message_id)
        await sender.send(SALES.address, [CLIENT.address], raw)

    assert [arrived(m.raw).message_id for m in smtp_server.messages] == ids
    assert smtp_server.connections == 1


async def test_concurrent_sends_share_the_connection_one_at_a_time(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    sender = senders(smtp_server)
    raws = [compose(letter(subject=f"Письмо {n}"))[1] for n in range(5)]

    await asyncio.gather(*(sender.send(SALES.address, [CLIENT.address], raw) for raw in raws))

    assert sorted(m.raw for m in smtp_server.messages) == sorted(raws)
    assert smtp_server.connections == 1


async def test_connection_dropped_between_messages_is_reopened_and_both_arrive_once(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    smtp_server.drop_after(1)
    sender = senders(smtp_server)
    first_id, first = compose(letter(subject="Первое"))
    second_id, second = compose(letter(subject="Второе"))

    await sender.send(SALES.address, [CLIENT.address], first)
    await sender.send(SALES.address, [CLIENT.address], second)

    assert [arrived(m.raw).message_id for m in smtp_server.messages] == [first_id, second_id]
    assert [m.connection for m in smtp_server.messages] == [1, 2]
    assert smtp_server.commands.count("MAIL") == 3  # the second MAIL FROM met the closed connection


async def test_connection_lost_before_data_twice_is_a_temporary_failure(
    smtp_server: SmtpTestServer, senders: Senders
) -> None:
    smtp_server.drop_after(0)
    _, raw = compose(letter())

    with pytest.raises(SmtpTemporaryFailure, match="not sent") as err:
        await senders(smtp_server).send(SALES.address, [CLIENT.address], raw)

    assert not isinstance(err.value, SmtpOutcomeUnknown)
    assert smtp_server.connections == 2
    assert smtp_server.messages == []


async def test_timeout_during_data_is_never_resent(smtp_server: SmtpTestServer, senders: Senders) -> None:
    smtp_server.delay_data(1.5)
    _, raw = compose(letter())
    sender = senders(smtp_server, timeout=0.5)

    with pytest.raises(SmtpOutcomeUnknown, match="may have accepted"):
        await sender.send(SALES.address, [CLIENT.address], raw)

    assert isinstance(SmtpOutcomeUnknown("sales", "x"), SmtpTemporaryFailure)
    assert [m.raw for m in smtp_server.delayed] == [raw]  # the server had the message
    assert smtp_server.commands.count("MAIL") == 1  # and it was not sent again
    smtp_server.delay_data(0)
    await sender.send(SALES.address, [CLIENT.address], raw)  # the next message gets a new connection
    assert smtp_server.connections == 2


async def test_unreachable_server_is_a_temporary_failure(smtp_server: SmtpTestServer, senders: Senders) -> None:
    sender = senders(smtp_server)
    smtp_server.stop()
    _, raw = compose(letter())

    with pytest.raises(SmtpTemporaryFailure, match="not sent"):
        await sender.send(SALES.address, [CLIENT.address], raw)


async def test_close_quits_politely_and_never_raises(smtp_server: SmtpTestServer, senders: Senders) -> None:
    idle = senders(smtp_server)
    await idle.close()  # never connected
    sender = senders(smtp_server)
    _, raw = compose(letter())
    await sender.send(SALES.address, [CLIENT.address], raw)

    await sender.close()
    await sender.close()

    assert smtp_server.commands[-1] == "QUIT"
    gone = senders(smtp_server)
    await gone.send(SALES.address, [CLIENT.address], raw)
    smtp_server.stop()
    await gone.close()  # the server is gone: still no exception
