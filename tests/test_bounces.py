"""Bounces of tracked mailings: a bad address (a hard bounce), an unwanted mailing (a complaint)
or an address that keeps failing (soft bounces up to the limit) is suppressed, announced as
``mailing.bounced``, and left out of the next campaign; from a real bounce mailbox on Dovecot
too, where nothing is counted twice and no message holds up the folder."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import hub.bounce_ingest
from connectors.imap import ImapConnector, MailboxSettings
from crm_core.audit import SYSTEM
from crm_core.campaigns.bounce_reports import BounceReport, FailedRecipient
from crm_core.campaigns.bounces import Bounces
from crm_core.campaigns.models import (
    Bounce,
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    Suppression,
    SuppressionReason,
)
from crm_core.campaigns.segments import SegmentRules, candidates
from crm_core.campaigns.tokens import Purpose, make_token, tracking_key
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.checkpoints import Checkpoints
from crm_core.mail.events import FetchedMessage, Location
from crm_core.outbox import OutboxEvent
from hub.bounce_ingest import BounceIngest
from hub.context import HubContext
from tests.dovecot import Dovecot, MailUser

SAMPLES = Path(__file__).parent / "bounces"
AT = datetime(2024, 12, 3, 7, 15, 2, tzinfo=UTC)
SENT = AT - timedelta(hours=1)
MESSAGE_ID = "<c1.r2.abc@hub.example>"  # what postfix_user_unknown.eml returns


def _sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _hard(address: str = "Ivanov@Romashka.ru", message_id: str | None = MESSAGE_ID) -> BounceReport:
    failed = FailedRecipient(address, "hard", "5.1.1", "550 5.1.1 User unknown")
    return BounceReport((failed,), message_id)


def _soft(address: str = "ivanov@romashka.ru") -> BounceReport:
    return BounceReport((FailedRecipient(address, "soft", "4.2.2", "452 4.2.2 Mailbox full"),))


async def _card(session: AsyncSession) -> int:
    card = ClientIn.model_validate(
        {"name": "Ромашка", "emails": [{"address": "ivanov@romashka.ru"}, {"address": "info@romashka.ru"}]}
    )
    return (await ClientBook(session).create(card, SYSTEM)).id


async def _sent(
    session: AsyncSession,
    address: str,
    client_id: int | None,
    message_id: str | None,
    sent_at: datetime | None = SENT,
) -> Recipient:
    """A campaign that went to ``address``."""
    campaign = Campaign(name=f"Рассылка {message_id}", from_address="news@hub.example", subject="Скидки",
                        status=CampaignStatus.finished)  # fmt: skip
    session.add(campaign)
    await session.flush()
    recipient = Recipient(campaign_id=campaign.id, client_id=client_id, address=address, address_key=address.lower(),
                          status=RecipientStatus.sent, message_id=message_id, sent_at=sent_at)  # fmt: skip
    session.add(recipient)
    await session.flush()
    return recipient


async def _all(context: HubContext, entity: Any) -> list[Any]:
    async with context.reading() as session:
        rows = list((await session.scalars(select(entity).order_by(entity.id))).all())
        session.expunge_all()  # readable after the read-only transaction rolls back
        return rows


async def _events(context: HubContext) -> list[OutboxEvent]:
    return [e for e in await _all(context, OutboxEvent) if e.type == "mailing.bounced"]


async def test_a_hard_bounce_suppresses_the_address_and_publishes_mailing_bounced(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        client_id = await _card(session)
        recipient = await _sent(session, "ivanov@romashka.ru", client_id, MESSAGE_ID)
        recorded = await Bounces(session, soft_limit=3).record(_hard(), AT)
    assert [(b.address_key, b.recipient_id, b.kind, b.status) for b in recorded] == [
        ("ivanov@romashka.ru", recipient.id, "hard", "5.1.1")
    ]
    [suppression] = await _all(hub_context, Suppression)
    assert (suppression.address_key, suppression.reason, suppression.campaign_id) == (
        "ivanov@romashka.ru",
        SuppressionReason.hard_bounce,
        recipient.campaign_id,
    )
    assert suppression.detail == "5.1.1 550 5.1.1 User unknown"
    [event] = await _events(hub_context)
    assert event.client_id == client_id
    assert event.payload == {
        "campaign_id": recipient.campaign_id,
        "recipient_id": recipient.id,
        "client_id": client_id,
        "contact_id": None,
        "address": "ivanov@romashka.ru",
        "at": AT.isoformat(),
        "kind": "hard",
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 User unknown",
    }
    async with hub_context.reading() as session:
        chosen, suppressed = await candidates(session, SegmentRules())
    assert ([c.address for c in chosen], suppressed) == (["info@romashka.ru"], 1)


async def test_soft_bounces_suppress_only_at_the_limit(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        await _sent(session, "ivanov@romashka.ru", None, MESSAGE_ID)
    for day in range(4):
        async with hub_context.transaction() as session:
            await Bounces(session, soft_limit=3).record(_soft(), AT + timedelta(days=day))
        suppressions = await _all(hub_context, Suppression)
        assert len(suppressions) == (0 if day < 2 else 1), f"after {day + 1} soft bounces"
    assert suppressions[0].reason is SuppressionReason.soft_bounces
    assert len(await _all(hub_context, Bounce)) == 4
    assert [e.payload["kind"] for e in await _events(hub_context)] == ["soft"] * 4


async def test_the_same_bounce_recorded_twice_counts_once(hub_context: HubContext) -> None:
    for _ in range(2):
        async with hub_context.transaction() as session:
            recorded = await Bounces(session, soft_limit=2).record(_soft(), AT)
    assert recorded == []
    assert len(await _all(hub_context, Bounce)) == 1
    assert await _all(hub_context, Suppression) == []


async def test_a_complaint_suppresses_the_address(hub_context: HubContext) -> None:
    complaint = FailedRecipient("volkova@mail.ru", "complaint", None, "Feedback-Type: abuse")
    async with hub_context.transaction() as session:
        recipient = await _sent(session, "volkova@mail.ru", None, "<c6.r21.d00d@hub.example>")
        await Bounces(session, soft_limit=3).record(BounceReport((complaint,), "<c6.r21.d00d@hub.example>", 6), AT)
    [suppression] = await _all(hub_context, Suppression)
    assert (suppression.reason, suppression.campaign_id) == (SuppressionReason.complaint, recipient.campaign_id)
    [event] = await _events(hub_context)
    assert (event.payload["kind"], event.payload["recipient_id"]) == ("complaint", recipient.id)


async def test_a_bounce_goes_to_the_copy_it_returns_else_to_the_latest_sent(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        older = await _sent(session, "ivanov@romashka.ru", None, "<c1.r1.aa@hub.example>", SENT - timedelta(days=30))
        newer = await _sent(session, "ivanov@romashka.ru", None, "<c2.r2.bb@hub.example>", SENT)
        await _sent(session, "ivanov@romashka.ru", None, None, sent_at=None)  # queued, not sent yet
        bounces = Bounces(session, soft_limit=10)
        failed = _soft().recipients
        by_id = await bounces.record(BounceReport(failed, "<c1.r1.aa@hub.example>"), AT)
        by_campaign = await bounces.record(BounceReport(failed, None, older.campaign_id), AT + timedelta(seconds=1))
        latest = await bounces.record(BounceReport(failed), AT + timedelta(seconds=2))
    assert [b.recipient_id for b in by_id + by_campaign + latest] == [older.id, older.id, newer.id]


async def test_a_hard_bounce_of_an_address_nobody_was_sent_suppresses_it_quietly(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        [bounce] = await Bounces(session, soft_limit=3).record(_hard("stranger@example.org", None), AT)
    assert bounce.recipient_id is None
    [suppression] = await _all(hub_context, Suppression)
    assert (suppression.address_key, suppression.campaign_id) == ("stranger@example.org", None)
    assert await _events(hub_context) == []


async def test_an_unsubscribed_address_that_bounces_keeps_its_reason(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        session.add(Suppression(address_key="ivanov@romashka.ru", reason=SuppressionReason.unsubscribed))
    async with hub_context.transaction() as session:
        await Bounces(session, soft_limit=3).record(_hard(), AT)
    [suppression] = await _all(hub_context, Suppression)
    assert suppression.reason is SuppressionReason.unsubscribed
    assert len(await _all(hub_context, Bounce)) == 1


# -- the bounce mailbox ---------------------------------------------------------------------------


def _fetched(uid: int, name: str, uidvalidity: int = 1) -> FetchedMessage:
    return FetchedMessage(Location("bounces", "INBOX", uidvalidity, uid), _sample(name), AT + timedelta(minutes=uid))


async def test_the_ingest_records_bounces_ignores_replies_and_skips_what_the_database_refuses(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Bounces.record

    async def refusing(self: Bounces, report: BounceReport, at: datetime) -> list[Bounce]:
        if report.recipients[0].address == "petrov@lyutik.ru":
            self.session.add(Bounce(address_key=None, kind="hard"))  # NOT NULL: the database says no
            await self.session.flush()
        return await real(self, report, at)

    monkeypatch.setattr(Bounces, "record", refusing)
    async with hub_context.transaction() as session:
        await _sent(session, "ivanov@romashka.ru", None, MESSAGE_ID)
    ingest = BounceIngest(hub_context, soft_limit=3)
    names = ["postfix_user_unknown", "out_of_office", "exim_no_such_user", "qmail_no_mailbox", "plain_reply"]
    results = await ingest.deliver(False, [_fetched(uid, name) for uid, name in enumerate(names, 1)])
    assert [r is not None for r in results] == [True, False, False, True, False]
    assert (ingest.filed, ingest.ignored, ingest.unreadable) == (2, 2, 1)
    assert [(b.address_key, b.at) for b in await _all(hub_context, Bounce)] == [
        ("ivanov@romashka.ru", AT + timedelta(minutes=1)),
        ("sidorov@vasilek.ru", AT + timedelta(minutes=4)),
    ]
    assert {s.address_key for s in await _all(hub_context, Suppression)} == {"ivanov@romashka.ru", "sidorov@vasilek.ru"}
    async with hub_context.reading() as session:
        checkpoint = await Checkpoints(session).get("bounces", "INBOX")
    assert checkpoint is not None and checkpoint.last_uid == 5


async def test_a_message_that_breaks_the_parser_does_not_stall_the_folder(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.bounce_ingest

    real = hub.bounce_ingest.read_report

    def crashing(raw: bytes) -> BounceReport | None:
        if b"qmail" in raw:
            raise RecursionError("a bug")
        return real(raw)

    monkeypatch.setattr(hub.bounce_ingest, "read_report", crashing)
    ingest = BounceIngest(hub_context, soft_limit=3)
    await ingest.deliver(False, [_fetched(1, "qmail_no_mailbox"), _fetched(2, "exim_no_such_user")])
    assert (ingest.filed, ingest.ignored, ingest.unreadable) == (1, 0, 1)
    assert [b.address_key for b in await _all(hub_context, Bounce)] == ["petrov@lyutik.ru"]


async def test_a_folder_read_again_counts_no_bounce_twice(hub_context: HubContext) -> None:
    ingest = BounceIngest(hub_context, soft_limit=2)
    await ingest.deliver(False, [_fetched(1, "postfix_mailbox_full_delayed")])
    await ingest.deliver(False, [_fetched(1, "postfix_mailbox_full_delayed", uidvalidity=2)])  # a new UIDVALIDITY
    assert len(await _all(hub_context, Bounce)) == 1
    assert await _all(hub_context, Suppression) == []  # one soft bounce, not the two of the limit


async def test_the_sent_folder_holds_no_bounce(hub_context: HubContext) -> None:
    ingest = BounceIngest(hub_context, soft_limit=3)
    assert await ingest.deliver(True, [_fetched(7, "qmail_no_mailbox")]) == [None]
    assert (ingest.filed, ingest.ignored) == (0, 1)
    assert await _all(hub_context, Bounce) == []
    async with hub_context.reading() as session:
        checkpoint = await Checkpoints(session).get("bounces", "INBOX")
    assert checkpoint is not None and checkpoint.last_uid == 7


async def test_a_database_that_is_away_loses_nothing(hub_context: HubContext, monkeypatch: pytest.MonkeyPatch) -> None:
    @asynccontextmanager
    async def away() -> AsyncIterator[AsyncSession]:
        raise ConnectionRefusedError("database down")
        yield

    ingest = BounceIngest(hub_context, soft_limit=3)
    monkeypatch.setattr(hub_context, "transaction", away)
    with pytest.raises(ConnectionRefusedError):  # the connector reads the batch again later
        await ingest.deliver(False, [_fetched(1, "qmail_no_mailbox")])
    assert (ingest.filed, ingest.unreadable) == (0, 0)


# -- end to end ------------------------------------------------------------------------------------


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.05)


async def test_a_dsn_in_the_bounce_mailbox_suppresses_the_address_before_the_next_campaign(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    async with hub_context.transaction() as session:
        client_id = await _card(session)
        recipient = await _sent(session, "ivanov@romashka.ru", client_id, MESSAGE_ID)
    settings = MailboxSettings(name="bounces", host=dovecot.host, port=dovecot.port, username=dovecot_user.name,
                               password=dovecot_user.password, security="none", folders=("INBOX",), timeout=5.0,
                               backoff_initial=0.05, backoff_max=0.5)  # fmt: skip
    ingest = BounceIngest(hub_context, soft_limit=3)
    connector = ImapConnector(settings, ingest)
    task = asyncio.create_task(connector.run())
    try:
        await asyncio.to_thread(dovecot.append, dovecot_user.name, "INBOX", _sample("out_of_office"))
        await asyncio.to_thread(dovecot.append, dovecot_user.name, "INBOX", _sample("postfix_user_unknown"))

        async def suppressed() -> bool:
            return bool(await _all(hub_context, Suppression))

        await _eventually(suppressed)
    finally:
        await connector.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    [suppression] = await _all(hub_context, Suppression)
    assert (suppression.address_key, suppression.reason) == ("ivanov@romashka.ru", SuppressionReason.hard_bounce)
    [bounce] = await _all(hub_context, Bounce)
    assert (bounce.recipient_id, bounce.status) == (recipient.id, "5.1.1")
    assert [e.payload["recipient_id"] for e in await _events(hub_context)] == [recipient.id]
    assert (ingest.filed, ingest.ignored, ingest.unreadable) == (1, 1, 0)
    async with hub_context.reading() as session:
        chosen, suppressed_count = await candidates(session, SegmentRules())
    assert ([c.address for c in chosen], suppressed_count) == (["info@romashka.ru"], 1)


async def test_a_mail_to_the_unsubscribe_address_unsubscribes_only_with_a_valid_token(
    hub_context: HubContext,
) -> None:
    async with hub_context.transaction() as session:
        recipient = await _sent(session, "ivanov@romashka.ru", await _card(session), MESSAGE_ID)
    token = make_token(tracking_key(hub_context.signing_key), Purpose.unsubscribe, recipient.id)

    def request(uid: int, subject: str) -> FetchedMessage:
        raw = (f"From: Ivanov <ivanov@romashka.ru>\r\nTo: bounces@hub.example\r\nSubject: {subject}\r\n"
               "Message-ID: <u{uid}@romashka.ru>\r\n\r\n\r\n").encode()  # fmt: skip
        return FetchedMessage(Location("bounces", "INBOX", 1, uid), raw, AT)

    ingest = BounceIngest(hub_context, soft_limit=3)
    forged = make_token(b"another key" * 3, Purpose.unsubscribe, recipient.id)
    await ingest.deliver(False, [request(1, f"unsubscribe {forged}"), request(2, f"unsubscribe {token[:-1]}")])
    assert await _all(hub_context, Suppression) == [] and ingest.unsubscribed == 0
    encoded = base64.b64encode(f"unsubscribe {token}".encode()).decode()
    await ingest.deliver(False, [request(3, f"=?utf-8?b?{encoded}?=")])  # as some programs encode it
    assert [(s.address_key, s.detail) for s in await _all(hub_context, Suppression)] == [
        ("ivanov@romashka.ru", "mailto")
    ]
    assert ingest.unsubscribed == 1


def test_an_unsubscribe_token_ending_in_a_dash_or_underscore_is_read_whole() -> None:
    key = b"k" * 32
    for ending in "-_":
        # ids of 2**21 and up make 12-byte tokens: their last character has no spare bits, any may end one
        rid = next(n for n in range(2**21, 2**22) if make_token(key, Purpose.unsubscribe, n).endswith(ending))
        token = make_token(key, Purpose.unsubscribe, rid)
        raw = f"From: a@b.ru\r\nSubject: unsubscribe {token}\r\n\r\n".encode()
        assert hub.bounce_ingest._unsubscribe_request(raw, key) == rid
