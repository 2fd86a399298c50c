"""The mail log: once per message, filed under every client it concerns, threaded, never lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import Address, Attachment, Location, ParsedMail
from crm_core.mail.mail_log import Incoming, MailLog, MailRules, subject_key
from crm_core.mail.models import MailCopy, MailLink, MailMessage, MailThread

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RULES = MailRules(own_domains=frozenset({"hub.example"}), thread_window=timedelta(days=7))
INBOX = Location("sales", "INBOX", 1, 1)


def _mail(message_id: str | None = "m1@client.example", **changes: object) -> ParsedMail:
    mail = ParsedMail(
        message_id=message_id,
        in_reply_to=None,
        references=(),
        subject="Счёт на оплату",
        sender=Address("Ivan@Client.example", "Иван"),
        to=(Address("sales@hub.example", "Продажи"),),
        cc=(Address("buh@client.example"),),
        sent_at=T0,
        text="Добрый день",
        html=None,
    )
    return replace(mail, **changes)  # type: ignore[arg-type]


async def _file(log: MailLog, mail: ParsedMail, location: Location | None = INBOX, sha: str = "a" * 64) -> int:
    filed = await log.file(
        mail,
        raw_sha256=sha,
        raw_size=100,
        attachment_digests=[None] * len(mail.attachments),
        location=location,
    )
    return filed.id


async def test_a_message_is_filed_under_every_client_and_contact_whose_address_it_names(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(
        ClientIn(name="Ромашка", contacts=[{"first_name": "Иван", "emails": [{"address": "ivan@client.example"}]}]),
        SYSTEM,
    )
    accounts = await book.create(ClientIn(name="Бухгалтерия", emails=[{"address": "BUH@client.example"}]), SYSTEM)
    await book.create(ClientIn(name="Мы сами", emails=[{"address": "sales@hub.example"}]), SYSTEM)  # own domain
    log = MailLog(session, RULES)
    filed = await log.file(
        _mail(attachments=(Attachment("счёт.pdf", "application/pdf", b"%PDF", 4),)),
        raw_sha256="a" * 64,
        raw_size=100,
        attachment_digests=["b" * 64],
        location=INBOX,
    )
    assert not filed.duplicate and set(filed.client_ids) == {client.id, accounts.id}
    links = (await session.scalars(select(MailLink).where(MailLink.message_id == filed.id))).all()
    assert {(link.client_id, link.contact_id) for link in links} == {
        (client.id, client.contacts[0].id),
        (accounts.id, None),
    }
    message = await session.get(MailMessage, filed.id)
    assert message is not None and message.direction == "in" and not message.awaiting_triage


async def test_unknown_senders_wait_for_triage_and_own_mail_is_outgoing(session: AsyncSession) -> None:
    log = MailLog(session, RULES)
    unknown = await _file(log, _mail())
    ours = await _file(log, _mail("m2@hub.example", sender=Address("sales@hub.example"), to=(), cc=()))
    assert (await session.get(MailMessage, unknown)).awaiting_triage  # type: ignore[union-attr]
    assert (await session.get(MailMessage, ours)).direction == "out"  # type: ignore[union-attr]


async def test_the_same_message_in_two_mailboxes_is_stored_once_with_both_copies(session: AsyncSession) -> None:
    log = MailLog(session, RULES)
    first = await log.file(_mail(), raw_sha256="a" * 64, raw_size=1, attachment_digests=[], location=INBOX)
    personal = Location("ivanov", "INBOX", 7, 42)
    second = await log.file(_mail(), raw_sha256="a" * 64, raw_size=1, attachment_digests=[], location=personal)
    assert second.duplicate and second.id == first.id
    assert await log.already_read(personal) and await log.already_read(INBOX)
    assert not await log.already_read(Location("sales", "INBOX", 2, 1))  # a new UIDVALIDITY is another copy
    assert await session.scalar(select(func.count()).select_from(MailCopy)) == 2
    assert await session.scalar(select(func.count()).select_from(MailMessage)) == 1


async def test_without_a_message_id_the_bytes_decide(session: AsyncSession) -> None:
    log = MailLog(session, RULES)
    a = await _file(log, _mail(None), Location("sales", "INBOX", 1, 1), sha="c" * 64)
    b = await _file(log, _mail(None), Location("sales", "INBOX", 1, 2), sha="c" * 64)
    c = await _file(log, _mail(None), Location("sales", "INBOX", 1, 3), sha="d" * 64)
    assert a == b != c


async def test_replies_join_the_thread_by_headers_then_by_subject_within_the_window(session: AsyncSession) -> None:
    log = MailLog(session, RULES)

    async def thread_of(mail: ParsedMail, uid: int) -> int:
        message = await session.get(MailMessage, await _file(log, mail, Location("sales", "INBOX", 1, uid)))
        assert message is not None
        return message.thread_id

    root = await thread_of(_mail("root@x", subject="Договор поставки"), 1)
    by_header = await thread_of(_mail("r1@x", subject="Другое", in_reply_to="root@x"), 2)
    by_subject = await thread_of(
        _mail("r2@x", subject="RE[2]: Fwd: Договор  ПОСТАВКИ", sent_at=T0 + timedelta(days=3)), 3
    )
    too_late = await thread_of(_mail("r3@x", subject="Re: Договор поставки", sent_at=T0 + timedelta(days=30)), 4)
    assert root == by_header == by_subject != too_late
    early_reply = await thread_of(_mail("child@x", subject="Ответ", in_reply_to="parent@x"), 5)
    late_parent = await thread_of(_mail("parent@x", subject="Вопрос"), 6)
    assert early_reply == late_parent
    assert await session.scalar(select(func.count()).select_from(MailThread)) == 3


def test_subject_keys_ignore_prefixes_tags_case_and_spacing() -> None:
    assert subject_key("Re: Отв: [Продажи] FWD:  Счёт   на оплату") == "счёт на оплату"
    assert subject_key("Пересл.: Счёт на оплату") == "счёт на оплату"
    assert subject_key("Re:") == ""


async def test_quarantine_keeps_the_place_once(session: AsyncSession) -> None:
    log = MailLog(session, RULES)
    where = Location("sales", "INBOX", 1, 99)
    await log.quarantine(where, raw_sha256="e" * 64, raw_size=5, error="empty message")
    await log.quarantine(where, raw_sha256="e" * 64, raw_size=5, error="empty message")
    assert await log.already_read(where)


async def test_many_addresses_at_once_find_what_one_at_a_time_finds(session: AsyncSession) -> None:
    book = ClientBook(session)
    await book.create(ClientIn(name="A", emails=[{"address": "Shared@Example.ru"}]), SYSTEM)
    await book.create(
        ClientIn(name="B", contacts=[{"first_name": "Олег", "emails": [{"address": "shared@example.ru"}]}]), SYSTEM
    )
    addresses = ["shared@example.ru", "SHARED@example.RU", "nobody@example.ru", *(f"x{i}@e.ru" for i in range(600))]
    one_by_one = {a: await book.find_by_email(a) for a in addresses}
    assert await book.find_by_emails(addresses) == one_by_one
    assert len(one_by_one["SHARED@example.RU"].client_ids) == 2


async def test_a_batch_files_in_a_few_statements_and_threads_within_itself(session: AsyncSession) -> None:
    """A mailbox's first sync brings thousands: the lookups are per batch, not per message."""
    await ClientBook(session).create(ClientIn(name="Ромашка", emails=[{"address": "ivan@client.example"}]), SYSTEM)
    log = MailLog(session, RULES)
    await _file(log, _mail("known@x"), Location("sales", "INBOX", 1, 1))
    question = _mail("q@x", subject="Когда отгрузка?")
    batch = [
        Incoming(_mail(f"m{i}@x", subject=f"Тема {i}"), "b" * 64, 1, (), Location("sales", "INBOX", 1, 10 + i))
        for i in range(20)
    ] + [
        Incoming(question, "c" * 64, 1, (), Location("sales", "INBOX", 1, 40)),
        Incoming(_mail("a@x", subject="Re: Когда отгрузка?", in_reply_to="q@x"), "d" * 64, 1, (), None),
        Incoming(question, "c" * 64, 1, (), Location("ivanov", "INBOX", 3, 1)),  # the same, another mailbox
        Incoming(_mail("known@x"), "a" * 64, 1, (), Location("sales", "INBOX", 1, 1)),  # read before
    ]
    statements: list[str] = []
    connection = await session.connection()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(connection.sync_engine, "before_cursor_execute", listener)
    try:
        filed = await log.file_many(batch)
    finally:
        event.remove(connection.sync_engine, "before_cursor_execute", listener)
    assert [f.duplicate for f in filed[20:]] == [False, False, True, True]
    assert filed[22].id == filed[20].id and all(f.client_ids for f in filed[:22])
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(lookups) <= 10, "\n".join(s.split("\n")[0][:70] for s in lookups)  # whatever the batch's size
    question_row, answer_row = (
        (await session.get(MailMessage, filed[20].id)),
        await session.get(MailMessage, filed[21].id),
    )
    assert question_row is not None and answer_row is not None and question_row.thread_id == answer_row.thread_id
    assert await session.scalar(select(func.count()).select_from(MailCopy)) == 1 + 20 + 2
