"""Reading the bounce mailbox: DSNs, complaints and the bounces servers write for people, each
read as who failed, how badly and which message of ours it was; auto-replies and people's
mail are no bounce, and no bytes at all make the parser raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.campaigns.bounce_reports import BounceReport, FailedRecipient, read_report

SAMPLES = Path(__file__).parent / "bounces"


def _raw(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def _report(raw: bytes) -> BounceReport:
    report = read_report(raw)
    assert report is not None
    return report


def test_postfix_user_unknown_is_a_hard_bounce_of_the_returned_message() -> None:
    report = _report(_raw("postfix_user_unknown"))
    [failed] = report.recipients
    assert (failed.address, failed.kind, failed.status) == ("ivanov@romashka.ru", "hard", "5.1.1")
    assert failed.diagnostic == (
        "550 5.1.1 <ivanov@romashka.ru>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert (report.kind, report.original_message_id, report.campaign_id) == ("hard", "<c1.r2.abc@hub.example>", 1)


def test_postfix_delay_warning_for_a_full_mailbox_is_soft() -> None:
    report = _report(_raw("postfix_mailbox_full_delayed"))
    assert report.recipients == (
        FailedRecipient("Petrova@Lyutik.ru", "soft", "4.2.2", "452 4.2.2 <petrova@lyutik.ru>: Mailbox full"),
    )
    assert (report.original_message_id, report.campaign_id) == ("<c1.r3.f00d@hub.example>", 1)


def test_a_dsn_names_each_failed_recipient_with_its_own_kind() -> None:
    report = _report(_raw("postfix_two_recipients"))
    assert [(r.address, r.kind, r.status) for r in report.recipients] == [
        ("old.manager@gmail.com", "hard", "5.1.1"),
        ("buh.romashka@gmail.com", "soft", "5.2.2"),  # an inbox out of space is no bad address, even with a 5
    ]  # director@romashka.ru was delivered: not a bounce
    assert report.recipients[1].diagnostic.startswith("552-5.2.2 The recipient's inbox is out of storage space.")
    assert (report.kind, report.original_message_id, report.campaign_id) == (
        "hard",
        "<c2.r5.0a1b2c3d4e5f@hub.example>",
        2,
    )


def test_exim_bounce_without_a_dsn_is_read_from_its_text() -> None:
    raw = _raw("exim_no_such_user")
    without_header = raw.replace(b"X-Failed-Recipients: petrov@lyutik.ru\n", b"")
    assert without_header != raw
    for sample in (raw, without_header):
        report = _report(sample)
        [failed] = report.recipients
        assert (failed.address, failed.kind, failed.status) == ("petrov@lyutik.ru", "hard", None)
        assert failed.diagnostic.endswith("RCPT TO:<petrov@lyutik.ru>: 550 No such user here")
        assert (report.original_message_id, report.campaign_id) == ("<c3.r7.5f1e2d@hub.example>", 3)


def test_qmail_bounce_takes_its_status_from_the_text() -> None:
    report = _report(_raw("qmail_no_mailbox"))
    assert report.recipients == (
        FailedRecipient("sidorov@vasilek.ru", "hard", "5.1.1", "Sorry, no mailbox here by that name. (#5.1.1)"),
    )
    assert (report.original_message_id, report.campaign_id) == ("<c4.r11.9a8b7c@hub.example>", 4)


def test_exchange_recipient_not_found_is_hard() -> None:
    report = _report(_raw("exchange_recipient_not_found"))
    [failed] = report.recipients
    assert (failed.address, failed.kind, failed.status) == ("smirnov@corp.example", "hard", "5.1.10")
    assert "RESOLVER.ADR.RecipientNotFound" in failed.diagnostic and not failed.diagnostic.startswith("smtp;")
    assert (report.original_message_id, report.campaign_id) == ("<c5.r12.beef01@hub.example>", 5)


def test_a_russian_bounce_in_windows_1251_is_hard() -> None:
    report = _report(_raw("mailru_cp1251_no_mailbox"))
    [failed] = report.recipients
    assert (failed.address, failed.kind, failed.status) == ("kuznetsov@mail.ru", "hard", None)
    assert failed.diagnostic.startswith("Почтовый ящик не существует.")
    assert (report.original_message_id, report.campaign_id) == ("<c5.r14.77aa00@hub.example>", 5)


def test_a_russian_bounce_in_koi8r_for_a_full_mailbox_is_soft_and_finds_the_inline_copy() -> None:
    report = _report(_raw("yandex_koi8r_mailbox_full"))
    [failed] = report.recipients
    assert (failed.address, failed.kind, failed.status) == ("smirnova@yandex.ru", "soft", None)
    assert failed.diagnostic.startswith("почтовый ящик переполнен.")
    assert (report.original_message_id, report.campaign_id) == ("<c7.r30.1234abcd@hub.example>", 7)


def test_an_arf_complaint_names_the_original_recipient() -> None:
    raw = _raw("arf_complaint")
    report = _report(raw)
    assert report.recipients == (
        FailedRecipient("volkova@mail.ru", "complaint", None, "Feedback-Type: abuse; User-Agent: Mail.Ru-FBL/1.0"),
    )
    assert (report.kind, report.original_message_id, report.campaign_id) == (
        "complaint",
        "<c6.r21.d00d@hub.example>",
        6,
    )
    # Without Original-Rcpt-To the complaint is about the returned message's To.
    anonymous = _report(raw.replace(b"Original-Rcpt-To: <volkova@mail.ru>\n", b""))
    assert [r.address for r in anonymous.recipients] == ["Volkova@Mail.ru"]
    assert read_report(raw.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")) is None


def test_an_out_of_office_reply_is_no_bounce() -> None:
    # It answers one of our messages, names an address and even says "не может быть доставлено".
    assert read_report(_raw("out_of_office")) is None


def test_a_persons_reply_is_no_bounce() -> None:
    assert read_report(_raw("plain_reply")) is None


def test_a_broken_message_gives_none_without_raising() -> None:
    assert read_report(_raw("broken")) is None
    assert read_report(b"") is None
    assert read_report(b"\x00\xff" * 1000) is None


def test_a_bounce_naming_two_addresses_gives_each_its_own_reason() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"To: bounces@hub.example\n"
        b"Subject: Mail delivery failed: returning message to sender\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"A message that you sent from <news@hub.example> could not be delivered\n"
        b"to one or more of its recipients.\n\n"
        b"  gone@example.org\n"
        b"    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\n"
        b"    550 5.1.1 User unknown\n"
        b"  full@example.org\n"
        b"    SMTP error from remote mail server after end of data:\n"
        b"    552 Mailbox full\n\n"
        b"------ This is a copy of the message, including all the headers. ------\n\n"
        b"From: news@hub.example\nTo: gone@example.org\nMessage-ID: <c9.r1.00ff@hub.example>\n\nHello\n"
    )
    report = _report(raw)
    assert [(r.address, r.kind, r.status) for r in report.recipients] == [
        ("gone@example.org", "hard", "5.1.1"),
        ("full@example.org", "soft", None),
    ]
    assert (report.original_message_id, report.campaign_id) == ("<c9.r1.00ff@hub.example>", None)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Почтовый ящик не существует.", "hard"),
        ("Нет такого пользователя.", "hard"),
        ("The mailbox you wrote to does not\n    exist.", "hard"),
        ("Ящик получателя переполнен, попробуйте позже.", "soft"),
        ("The recipient's mailbox is\n    full.", "soft"),
        ("Host mx.example.org not responding, giving up.", "soft"),  # nothing says the address is bad
        ("Remote host said: 550 rejected", "hard"),  # a bare SMTP code, when no word says more
        ("Remote host said: 451 local error", "soft"),
    ],
)
def test_a_bounce_without_a_status_code_is_classified_by_its_words(reason: str, kind: str) -> None:
    # Only the text says it is a bounce, wrapped where a server wrapped it.
    raw = (
        "From: root@mx.example.org\nTo: bounces@hub.example\nSubject: Message from mx.example.org\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        f"Hi. This is the qmail-send\nprogram at mx.example.org.\n\n<someone@example.org>:\n{reason}\n"
    ).encode()
    [failed] = _report(raw).recipients
    assert (failed.address, failed.kind, failed.status) == ("someone@example.org", kind, None)


def _dsn(action: str, status: str, diagnostic: str, original: str = "", part: str = "delivery-status") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        "Subject: Delivery Status Notification\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nSee below.\n"
        f"--b\nContent-Type: message/{part}\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        f"{original}Final-Recipient: rfc822; someone@example.org\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
        "--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "kind"),
    [
        ("failed", "5.1.1", "550 5.1.1 mailbox full", "hard"),  # a specific code outweighs the words
        ("failed", "5.2.1", "550 5.2.1 account disabled", "hard"),
        ("failed", "5.4.4", "550 5.4.4 unable to route", "hard"),
        ("failed", "5.2.2", "552 5.2.2 over quota", "soft"),
        ("failed", "5.7.1", "554 5.7.1 rejected as spam", "soft"),  # a policy block: the address may be fine
        ("failed", "5.3.4", "552 5.3.4 message too big", "soft"),
        ("failed", "4.4.7", "delivery time expired", "soft"),
        ("failed", "5.0.0", "550 Mailbox is full", "soft"),  # X.0.0 says only "failed": the words decide
        ("failed", "5.0.0", "550 User unknown", "hard"),
        ("failed", "5.0.0", "550 rejected", "hard"),
        ("delayed", "5.1.1", "will retry", "soft"),
        ("failed", "", "smtp; 550 5.1.1 no such user", "hard"),  # no Status: the code in the diagnostic
    ],
)
def test_dsn_status_codes_are_classified(action: str, status: str, diagnostic: str, kind: str) -> None:
    [failed] = _report(_dsn(action, status, diagnostic)).recipients
    assert failed.kind == kind


def test_a_forwarded_address_bounces_as_the_address_we_wrote_to() -> None:
    raw = _dsn("failed", "5.1.1", "550 5.1.1 User unknown", original="Original-Recipient: rfc822;info@romashka.ru\n")
    assert [r.address for r in _report(raw).recipients] == ["info@romashka.ru"]


def test_a_dsn_for_an_smtputf8_message_is_read_too() -> None:
    raw = _dsn("failed", "5.1.1", "550 5.1.1 User unknown", part="global-delivery-status")  # RFC 6533
    assert [(r.address, r.kind, r.status) for r in _report(raw).recipients] == [
        ("someone@example.org", "hard", "5.1.1")
    ]


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_dsn_of_delivery_is_no_bounce(action: str) -> None:
    assert read_report(_dsn(action, "2.0.0", "250 2.0.0 OK")) is None


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000))
def test_any_bytes_give_a_report_or_none(data: bytes) -> None:
    assert read_report(data) is None or isinstance(read_report(data), BounceReport)


SAMPLE_BYTES = [path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))]


@settings(max_examples=300, deadline=None)
@given(sample=st.sampled_from(SAMPLE_BYTES), cut=st.integers(0, 10_000), junk=st.binary(max_size=40))
def test_damaged_samples_give_a_report_or_none(sample: bytes, cut: int, junk: bytes) -> None:
    damaged = sample[: cut % (len(sample) + 1)] + junk + sample[cut % (len(sample) + 1) + len(junk) :]
    result = read_report(damaged)
    assert result is None or all(r.address and r.kind in ("hard", "soft", "complaint") for r in result.recipients)
