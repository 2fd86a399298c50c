"""What an operator of the service watches that only the database knows: mail waiting to go,
webhook deliveries waiting, the age of each 1C connection's last good sync.  Read at each
``/metrics`` scrape, in one read-only unit of work; the same on every node."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from crm_core.onec.models import OnecRun, RunStatus
from crm_core.outbox import OutboxEvent
from crm_core.subscriptions import WebhookDelivery

ACTIVE = (CampaignStatus.sending, CampaignStatus.paused, CampaignStatus.scheduled)
WAITING = (RecipientStatus.queued, RecipientStatus.sending, RecipientStatus.review)


@dataclass(frozen=True)
class Figures:
    recipients: dict[str, int] = field(default_factory=dict)  # of unfinished campaigns, by status
    deliveries_pending: int = 0
    events_not_fanned_out: int = 0
    last_good_sync: dict[str, datetime] = field(default_factory=dict)  # 1C connection -> finished at


async def read_figures(session: AsyncSession) -> Figures:
    recipients = await session.execute(
        select(Recipient.status, func.count())
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .where(Campaign.status.in_(ACTIVE), Recipient.status.in_(WAITING))
        .group_by(Recipient.status)
    )
    pending = await session.scalar(select(func.count()).where(WebhookDelivery.status == "pending"))
    unfanned = await session.scalar(select(func.count()).where(OutboxEvent.fanned_out.is_(False)))
    syncs = await session.execute(
        select(OnecRun.connection, func.max(OnecRun.finished_at))
        .where(OnecRun.status == RunStatus.done)
        .group_by(OnecRun.connection)
    )
    return Figures(
        recipients={str(status): int(count) for status, count in recipients.all()},
        deliveries_pending=int(pending or 0),
        events_not_fanned_out=int(unfanned or 0),
        last_good_sync={name: at for name, at in syncs.all() if at is not None},
    )
