"""Sending campaigns into a real SMTP server (aiosmtpd): each address once, with its own
Message-ID and unsubscribe headers, at the configured pace; refusals, pauses and a crash's
in-flight recipients handled as the marketer would expect."""

from __future__ import annotations

import asyncio
import base64
import email
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import select

from crm_core.audit import SYSTEM
from crm_core.campaigns.book import CampaignIn, Campaigns, SegmentIn, Segments
from crm_core.campaigns.models import CampaignStatus, Recipient, RecipientStatus
from crm_core.campaigns.segments import SegmentRules
from crm_core.campaigns.send_queue import Outcome, Result, SendQueue
from crm_core.campaigns.tokens import Purpose, read_token, tracking_key
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import utcnow
from hub.campaign_sender import CampaignSender
from hub.context import HubContext
from tests.conftest import open_context
from tests.smtp_server import SmtpTestServer

HTML = (
    "<html><body><p>Здравствуйте, {{ contact.first_name or client.name }}!</p>"
    '<a href="https://shop.example.com/sale?c={{ client.id }}">Скидки</a>'
    '<a href="https://shop.example.com/">Магазин</a></body></html>'
)


@pytest.fixture
async def sending(database_url: str, tmp_path: Path, smtp_server: SmtpTestServer) -> AsyncIterator[Callable[..., Any]]:
    """``await sending(**campaign_settings)``: a context whose campaigns go to the test server."""
    contexts: list[HubContext] = []

    async def make(**changes: Any) -> HubContext:
        campaigns = {"smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
                     "concurrency": 3, "tracking_url": "https://hub.example.com", **changes}  # fmt: skip
        context = await open_context(database_url, tmp_path / "data", campaigns=campaigns)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def _campaign(context: HubContext, count: int, **changes: Any) -> int:
    async with context.transaction() as session:
        book = ClientBook(session)
        for n in range(count):
            card = {"name": f"Клиент {n}", "tags": ["рассылка"], "emails": [{"address": f"c{n}@clients.example"}]}
            await book.create(ClientIn.model_validate(card), SYSTEM)
        segment = await Segments(session).create(SegmentIn(name="Все", rules=SegmentRules(tags_any=["рассылка"])))
        values = {
            "name": "Декабрь",
            "from_address": "news@shop.example.com",
            "from_name": "Магазин",
            "subject": "Скидки для {{ client.name }}",
            "html": HTML,
            "segment_id": segment.id,
            **changes,
        }
        campaign = await Campaigns(session).create(CampaignIn.model_validate(values), None)
        await Campaigns(session).start(campaign.id)
        return campaign.id


async def _counts(context: HubContext, campaign_id: int) -> dict[str, int]:
    async with context.reading() as session:
        return await Campaigns(session).recipient_counts(campaign_id)


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.05)


async def _send_all(context: HubContext, campaign_id: int) -> None:
    """Run a sender until the campaign is finished."""
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _finished(context, campaign_id))
    finally:
        await sender.stop()


async def _finished(context: HubContext, campaign_id: int) -> bool:
    async with context.reading() as session:
        return (await Campaigns(session).get(campaign_id)).status is CampaignStatus.finished


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_each_address_gets_its_own_tracked_copy_once(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    context = await sending()
    campaign_id = await _campaign(context, 25)
    await _send_all(context, campaign_id)
    addresses = [m.rcpt_tos[0] for m in smtp_server.messages]
    assert sorted(addresses) == sorted(f"c{n}@clients.example" for n in range(25))
    async with context.reading() as session:
        rows = (
            await session.execute(select(Recipient.address, Recipient.id, Recipient.message_id, Recipient.status))
        ).all()
    recipients = {address: (rid, message_id) for address, rid, message_id, _ in rows}
    assert {status for *_, status in rows} == {RecipientStatus.sent}
    key = tracking_key(context.signing_key)
    for received in smtp_server.messages:
        message = _parsed(received.raw)
        recipient_id, message_id = recipients[received.rcpt_tos[0]]
        assert message["Message-ID"] == message_id
        assert received.mail_from == "news@shop.example.com"
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith("<mailto:news@shop.example.com?subject=unsubscribe%20")
        assert "<https://hub.example.com/u/" in unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "shop.example.com" not in html  # every link goes through its redirect
        clicks = [part.split('"')[0] for part in html.split('href="https://hub.example.com/t/c/')[1:]]
        assert [read_token(key, Purpose.click, t) for t in clicks] == [(recipient_id, 1), (recipient_id, 2)]
        pixel = html.split('src="https://hub.example.com/t/o/')[1].split('"')[0]
        assert read_token(key, Purpose.open, pixel) == (recipient_id, None)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Здравствуйте" in text and "(https://hub.example.com/t/c/" in text  # made from the HTML, tracked


async def test_without_tracking_links_go_straight_to_their_urls(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    context = await sending()
    campaign_id = await _campaign(context, 2, tracking=False)
    await _send_all(context, campaign_id)
    html = _parsed(smtp_server.messages[0].raw).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/t/c/" not in html and "/t/o/" not in html and 'href="https://shop.example.com/"' in html


async def test_refusals_fail_or_wait_and_the_campaign_still_finishes(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    smtp_server.refuse("c1@clients.example")
    smtp_server.refuse("c2@clients.example", reply="452 4.2.2 Mailbox full")
    context = await sending()
    campaign_id = await _campaign(context, 5)
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _has(context, campaign_id, sent=3, failed=1, queued=1))
    finally:
        await sender.stop()
    async with context.reading() as session:
        rows = {r[0]: r[1:] for r in await session.execute(
            select(Recipient.address, Recipient.last_error, Recipient.attempts, Recipient.not_before))}  # fmt: skip
    assert "550 5.1.1" in (rows["c1@clients.example"][0] or "")
    error, attempts, not_before = rows["c2@clients.example"]
    assert attempts == 1 and not_before is not None and "452" in (error or "")


async def _has(context: HubContext, campaign_id: int, **expected: int) -> bool:
    counts = await _counts(context, campaign_id)
    return all(counts[name] == n for name, n in expected.items())


async def test_the_rate_per_second_holds(sending: Callable[..., Any], smtp_server: SmtpTestServer) -> None:
    context = await sending(rate_per_second=20)
    campaign_id = await _campaign(context, 60)
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    started = time.monotonic()
    await sender.start()
    try:
        await _until(lambda: _finished(context, campaign_id))
    finally:
        await sender.stop()
    took = time.monotonic() - started
    assert len(smtp_server.messages) == 60
    assert 2.0 <= took < 4.5, took  # 20 at once, then 20 a second: just over 2 s
    async with context.reading() as session:
        times = sorted(t for t in await session.scalars(select(Recipient.sent_at)) if t is not None)
    busiest = max(sum(1 for t in times[i:] if (t - start).total_seconds() < 1.0) for i, start in enumerate(times))
    assert busiest <= 20 + 3  # sent_at is taken after the answer, so a window may catch a few in flight


async def test_a_pause_stops_sending_within_a_few_messages_and_resume_finishes(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    context = await sending(rate_per_second=30)
    campaign_id = await _campaign(context, 60)
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _at_least(smtp_server, 10))
        async with context.transaction() as session:
            await Campaigns(session).pause(campaign_id)
        await asyncio.sleep(1.0)
        paused_at = len(smtp_server.messages)
        await asyncio.sleep(0.5)
        assert len(smtp_server.messages) == paused_at < 60
        async with context.transaction() as session:
            await Campaigns(session).resume(campaign_id)
        sender.wake()
        await _until(lambda: _finished(context, campaign_id))
    finally:
        await sender.stop()
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(f"c{n}@clients.example" for n in range(60))


async def _at_least(server: SmtpTestServer, count: int) -> bool:
    return len(server.messages) >= count


async def test_recipients_in_flight_at_a_crash_wait_for_review_and_are_never_resent_alone(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    context = await sending()
    campaign_id = await _campaign(context, 6)
    async with context.transaction() as session:  # as a kill -9 leaves them
        claimed = await SendQueue(session).claim(2, utcnow())
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _has(context, campaign_id, sent=4, review=2))
        assert await _finished(context, campaign_id)
        async with context.transaction() as session:
            resent = await SendQueue(session).resolve_review(campaign_id, [claimed[0].recipient_id], send_again=True)
            counted = await SendQueue(session).resolve_review(campaign_id, None, send_again=False)
        assert (resent, counted) == (1, 1)
        sender.wake()
        await _until(lambda: _has(context, campaign_id, sent=6))
        await _until(lambda: _finished(context, campaign_id))
    finally:
        await sender.stop()
    assert len(smtp_server.messages) == 5  # the one counted as sent was not sent again
    assert claimed[1].address not in [m.rcpt_tos[0] for m in smtp_server.messages]


async def test_a_node_still_draining_when_another_took_over_keeps_its_answers(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    """The old holder's lease ran out while it was still sending; the new holder sent its
    in-flight recipients to review.  The old node's answers then still land: a message it saw
    accepted counts as sent, one it never handed over is queued again, and a recipient a person
    has settled meanwhile is left as they settled it."""
    context = await sending()
    campaign_id = await _campaign(context, 4)
    async with context.transaction() as session:
        old_node = await SendQueue(session).claim(4, utcnow())
    async with context.transaction() as session:
        assert await SendQueue(session).interrupted() == 4  # the new holder's start
    async with context.transaction() as session:
        await SendQueue(session).resolve_review(campaign_id, [old_node[3].recipient_id], send_again=False)
    async with context.transaction() as session:
        queue = SendQueue(session)
        await queue.record([Outcome(old_node[0], Result.sent, utcnow()), Outcome(old_node[3], Result.failed, utcnow())])
        await queue.returned([old_node[1].recipient_id])
    async with context.reading() as session:
        rows = await session.execute(select(Recipient.id, Recipient.status).where(Recipient.campaign_id == campaign_id))
        status = {row.id: row.status for row in rows}
    assert [status[c.recipient_id] for c in old_node] == [
        RecipientStatus.sent,  # the old node's answer
        RecipientStatus.queued,  # never handed over: goes out once, from the queue
        RecipientStatus.review,  # no answer from anyone yet: a person decides
        RecipientStatus.sent,  # settled by a person before the late answer: unchanged
    ]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a key")
@pytest.mark.parametrize("processes", [0, 1], ids=["thread", "worker-process"])
async def test_a_configured_dkim_key_signs_every_message(
    sending: Callable[..., Any], smtp_server: SmtpTestServer, tmp_path: Path, processes: int
) -> None:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    dkim_settings = {"domain": "shop.example.com", "selector": "hub", "private_key_file": str(key)}
    context = await sending(dkim=dkim_settings, copy_processes=processes)
    campaign_id = await _campaign(context, 5)
    await _send_all(context, campaign_id)
    for received in smtp_server.messages:
        assert received.raw.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.raw, dnsfunc=lambda name, timeout=5: record)
        headers = received.raw.split(b"\r\n\r\n", 1)[0].decode()
        signed = headers.split(" h=", 1)[1].split(";", 1)[0].replace("\r\n", "").replace(" ", "")
        assert signed.lower().count("list-unsubscribe:") == 2  # over-signed: nobody can add another


async def test_a_scheduled_campaign_starts_when_due_and_one_that_cannot_goes_back_to_draft(
    sending: Callable[..., Any], smtp_server: SmtpTestServer
) -> None:
    context = await sending()
    async with context.transaction() as session:
        book = ClientBook(session)
        await book.create(ClientIn.model_validate({"name": "Ромашка", "tags": ["опт"],
                                                   "emails": [{"address": "info@romashka.ru"}]}), SYSTEM)  # fmt: skip
        segments = Segments(session)
        wholesale = await segments.create(SegmentIn(name="Опт", rules=SegmentRules(tags_any=["опт"])))
        nobody = await segments.create(SegmentIn(name="Никто", rules=SegmentRules(tags_any=["нет такого"])))
        campaigns = Campaigns(session)
        values = {"name": "Декабрь", "from_address": "news@shop.example.com", "subject": "Скидки", "html": HTML}
        due = await campaigns.create(CampaignIn.model_validate({**values, "segment_id": wholesale.id}), None)
        empty = await campaigns.create(CampaignIn.model_validate({**values, "segment_id": nobody.id}), None)
        later = await campaigns.create(CampaignIn.model_validate({**values, "segment_id": wholesale.id}), None)
        await campaigns.schedule(due.id, utcnow() - timedelta(minutes=1))
        await campaigns.schedule(empty.id, utcnow() - timedelta(minutes=1))
        await campaigns.schedule(later.id, utcnow() + timedelta(days=1))
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _finished(context, due.id))
    finally:
        await sender.stop()
    assert [m.rcpt_tos for m in smtp_server.messages] == [("info@romashka.ru",)]
    async with context.reading() as session:
        statuses = {c.id: c.status for c in await Campaigns(session).all()}
    assert statuses == {due.id: CampaignStatus.finished, empty.id: CampaignStatus.draft,
                        later.id: CampaignStatus.scheduled}  # fmt: skip


async def test_two_campaigns_sent_at_once_both_finish(sending: Callable[..., Any], smtp_server: SmtpTestServer) -> None:
    """The first campaign's last answers are stored while the second's recipients fill whole
    claims: it must still be seen to have finished."""
    context = await sending()
    first = await _campaign(context, 20)
    async with context.transaction() as session:
        book = ClientBook(session)
        for n in range(60):
            card = {"name": f"Опт {n}", "tags": ["опт"], "emails": [{"address": f"w{n}@wholesale.example"}]}
            await book.create(ClientIn.model_validate(card), SYSTEM)
        segment = await Segments(session).create(SegmentIn(name="Опт", rules=SegmentRules(tags_any=["опт"])))
        values = {"name": "Опт", "from_address": "news@shop.example.com", "subject": "Опт", "html": HTML,
                  "segment_id": segment.id}  # fmt: skip
        second = (await Campaigns(session).create(CampaignIn.model_validate(values), None)).id
        await Campaigns(session).start(second)
    sender = CampaignSender(context, "http://127.0.0.1:8080")
    await sender.start()
    try:
        await _until(lambda: _finished(context, second))
        await _until(lambda: _finished(context, first), timeout=3)
    finally:
        await sender.stop()
    assert len(smtp_server.messages) == 80
