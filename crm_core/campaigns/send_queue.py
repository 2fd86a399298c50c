"""Each recipient's sending state, moved in small committed steps so that a crash never sends a
message twice and never skips one silently.

    queued --claim--> sending --SMTP answer--> sent | failed | queued (4xx: later) | review

A claim is committed before its SMTP transactions start.  A recipient still ``sending`` when
the hub starts was in flight when it stopped: the server may or may not have taken the message,
and nothing here can ask it.  Such a recipient goes to ``review``, where a person either counts
it as sent or sends it again; it is never resent on its own.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.book import Campaigns
from crm_core.campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from crm_core.errors import Conflict, InvalidInput
from crm_core.models import utcnow
from crm_core.outbox import Event, publish

MAX_ATTEMPTS = 5  # temporary refusals before a recipient counts as failed
RETRY_AFTER = (60, 300, 900, 3600)  # seconds before the 2nd, 3rd... attempt
NOT_SENT_PAUSE = 5  # seconds before a message the server could not take is claimed again
RECIPIENTS = cast(Table, Recipient.__table__)
INTERRUPTED = "the hub stopped while this message was being sent: it may or may not have gone"


class Result(enum.StrEnum):
    sent = "sent"
    failed = "failed"  # refused for good
    retry = "retry"  # refused for now (4xx): try again later, one attempt spent
    not_sent = "not_sent"  # never handed over (the server is away): queued again, no attempt spent
    unknown = "unknown"  # the connection broke during DATA: it may have gone


@dataclass(frozen=True, slots=True)
class Claimed:
    recipient_id: int
    campaign_id: int
    client_id: int | None
    contact_id: int | None
    address: str
    message_id: str  # with <>, as in the header
    attempts: int  # this one included


@dataclass(frozen=True, slots=True)
class Outcome:
    claimed: Claimed
    result: Result
    at: datetime
    error: str | None = None


class SendQueue:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def interrupted(self) -> int:
        """Recipients in flight when the hub last stopped go to review; how many did."""
        result = await self.session.execute(
            update(Recipient)
            .where(Recipient.status == RecipientStatus.sending)
            .values(status=RecipientStatus.review, last_error=INTERRUPTED)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def start_due(self, now: datetime) -> list[tuple[int, str | None]]:
        """Start the scheduled campaigns whose time has come: ``(id, problem or None)``.

        One that cannot start (its segment now chooses nobody, a card breaks its template)
        goes back to draft with the reason, instead of being tried again every second."""
        due = (
            await self.session.scalars(
                select(Campaign.id).where(Campaign.status == CampaignStatus.scheduled, Campaign.scheduled_at <= now)
            )
        ).all()
        started: list[tuple[int, str | None]] = []
        campaigns = Campaigns(self.session)
        for campaign_id in due:
            try:
                async with self.session.begin_nested():
                    await campaigns.start(campaign_id)
                started.append((campaign_id, None))
            except (InvalidInput, Conflict) as exc:
                campaign = await campaigns.get(campaign_id)
                campaign.status = CampaignStatus.draft
                started.append((campaign_id, str(exc)))
        return started

    async def claim(self, limit: int, now: datetime) -> list[Claimed]:
        """The next queued recipients of sending campaigns (oldest campaign first), now ``sending``.

        Core statements, not ORM objects: this and ``record`` are the sender's whole database cost."""
        query = (
            select(RECIPIENTS.c.id, RECIPIENTS.c.campaign_id, RECIPIENTS.c.client_id, RECIPIENTS.c.contact_id,
                   RECIPIENTS.c.address, RECIPIENTS.c.message_id, RECIPIENTS.c.attempts, Campaign.from_address)
            .join(Campaign, Campaign.id == RECIPIENTS.c.campaign_id)
            .where(
                Campaign.status == CampaignStatus.sending,
                RECIPIENTS.c.status == RecipientStatus.queued,
                (RECIPIENTS.c.not_before.is_(None)) | (RECIPIENTS.c.not_before <= now),
            )
            .order_by(Campaign.started_at, Campaign.id, RECIPIENTS.c.id)
            .limit(limit)
            .with_for_update(of=RECIPIENTS, skip_locked=True)
        )  # fmt: skip
        claimed = []
        for rid, cid, client_id, contact_id, address, message_id, attempts, from_address in await self.session.execute(
            query
        ):
            if message_id is None:
                domain = from_address.rpartition("@")[2] or "hub.invalid"
                message_id = f"<c{cid}.r{rid}.{secrets.token_hex(6)}@{domain}>"
            claimed.append(Claimed(rid, cid, client_id, contact_id, address, message_id, attempts + 1))
        if claimed:
            await self.session.execute(
                update(RECIPIENTS).where(RECIPIENTS.c.id == bindparam("rid")),
                [{"rid": c.recipient_id, "status": RecipientStatus.sending, "attempts": c.attempts,
                  "message_id": c.message_id} for c in claimed],
            )  # fmt: skip
        return claimed

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store SMTP answers and publish ``mailing.sent``."""
        if not outcomes:
            return
        rows = [_row(outcome) for outcome in outcomes]
        await self.session.execute(update(RECIPIENTS).where(RECIPIENTS.c.id == bindparam("rid"), _in_flight()), rows)
        await publish(self.session, *(_sent_event(o) for o in outcomes if o.result is Result.sent))

    async def finish(self, campaign_ids: Iterable[int]) -> list[int]:
        """Of these campaigns, those with nobody left to send, now finished."""
        campaigns = Campaigns(self.session)
        return [cid for cid in sorted(set(campaign_ids)) if await campaigns.finish_if_done(cid)]

    async def returned(self, recipient_ids: Sequence[int]) -> None:
        """Claimed but never handed to a connection (the hub is stopping, the campaign was paused
        or cancelled meanwhile): queued again as they were, or cancelled with their campaign."""
        if not recipient_ids:
            return
        cancelled = select(Campaign.id).where(Campaign.status == CampaignStatus.cancelled)
        claimed = (Recipient.id.in_(recipient_ids), _in_flight())
        await self.session.execute(
            update(Recipient)
            .where(*claimed, Recipient.campaign_id.in_(cancelled))
            .values(status=RecipientStatus.cancelled, attempts=Recipient.attempts - 1)
        )
        await self.session.execute(
            update(Recipient).where(*claimed).values(status=RecipientStatus.queued, attempts=Recipient.attempts - 1)
        )

    async def halted(self, campaign_ids: Sequence[int]) -> set[int]:
        """Which of these campaigns are no longer sending (paused or cancelled since their claim)."""
        if not campaign_ids:
            return set()
        rows = await self.session.scalars(
            select(Campaign.id).where(Campaign.id.in_(campaign_ids), Campaign.status != CampaignStatus.sending)
        )
        return set(rows.all())

    async def resolve_review(self, campaign_id: int, recipient_ids: Sequence[int] | None, send_again: bool) -> int:
        """A person's answer for recipients in review: send again, or count as sent."""
        query = update(Recipient).where(
            Recipient.campaign_id == campaign_id, Recipient.status == RecipientStatus.review
        )
        if recipient_ids is not None:
            query = query.where(Recipient.id.in_(recipient_ids))
        values: dict[str, Any] = {"status": RecipientStatus.queued, "not_before": None}
        if not send_again:
            values = {"status": RecipientStatus.sent, "sent_at": func.coalesce(Recipient.sent_at, utcnow())}
        result = await self.session.execute(query.values(**values))
        campaign = await Campaigns(self.session).get(campaign_id)
        if send_again and campaign.status is CampaignStatus.finished:
            campaign.status, campaign.finished_at = CampaignStatus.sending, None
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def sent_since(self, since: datetime) -> list[datetime]:
        """When messages went out since ``since``, for pacing after a restart."""
        rows = await self.session.scalars(
            select(Recipient.sent_at).where(Recipient.sent_at >= since).order_by(Recipient.sent_at)
        )
        return [at for at in rows.all() if at is not None]


def _in_flight() -> ColumnElement[bool]:
    """A recipient this node claimed: ``sending``, or sent to review as interrupted by another
    node that took the campaign over while this one was still draining (its lease ran out during
    a database outage).  The answer this node has is better than a person's guess; a recipient
    a person has already settled is left alone."""
    return (RECIPIENTS.c.status == RecipientStatus.sending) | (
        (RECIPIENTS.c.status == RecipientStatus.review) & (RECIPIENTS.c.last_error == INTERRUPTED)
    )


def _row(outcome: Outcome) -> dict[str, Any]:
    """The recipient's columns after this answer (every key in every row: one executemany)."""
    claimed = outcome.claimed
    row: dict[str, Any] = {"rid": claimed.recipient_id, "status": RecipientStatus.failed, "sent_at": None,
                           "not_before": None, "attempts": claimed.attempts, "last_error": outcome.error}  # fmt: skip
    if outcome.result is Result.sent:
        row |= {"status": RecipientStatus.sent, "sent_at": outcome.at}
    elif outcome.result is Result.retry and claimed.attempts < MAX_ATTEMPTS:
        delay = RETRY_AFTER[min(claimed.attempts, len(RETRY_AFTER)) - 1]
        row |= {"status": RecipientStatus.queued, "not_before": outcome.at + timedelta(seconds=delay)}
    elif outcome.result is Result.not_sent:
        row |= {"status": RecipientStatus.queued, "attempts": claimed.attempts - 1,
                "not_before": outcome.at + timedelta(seconds=NOT_SENT_PAUSE)}  # fmt: skip
    elif outcome.result is Result.unknown:
        row["status"] = RecipientStatus.review
    return row


def _sent_event(outcome: Outcome) -> Event:
    claimed = outcome.claimed
    payload = {
        "campaign_id": claimed.campaign_id,
        "recipient_id": claimed.recipient_id,
        "client_id": claimed.client_id,
        "contact_id": claimed.contact_id,
        "address": claimed.address,
        "at": outcome.at,
        "message_id": claimed.message_id,
    }
    return Event("mailing.sent", payload, claimed.client_id)
