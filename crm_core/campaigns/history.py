"""A client's mailings in their timeline: each copy sent to one of their addresses, and what
came of it (opened, a link clicked, unsubscribed, bounced).

Machines' opens and clicks are listed too, marked ``machine`` with the rule that caught them:
an operator asking "did they read it?" should see that a proxy did, not a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.models import Bounce, Campaign, CampaignLink, Recipient, TrackingHit
from crm_core.timeline_items import TimelineItem

_HIT_TITLES = {"open": "Mailing opened", "click": "Mailing link clicked", "unsubscribe": "Unsubscribed"}

_Entry = tuple[datetime, str, str, dict[str, Any]]  # at, id, title, data


async def mailings(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[TimelineItem]:
    """The newest ``limit`` mailing events of the client older than ``before``."""
    entries = [
        *await _hits(session, client_id, before, limit),
        *await _bounces(session, client_id, before, limit),
        *await _sent(session, client_id, before, limit),
    ]
    entries.sort(key=lambda entry: entry[0], reverse=True)  # stable: at one instant, a hit before its sending
    return [TimelineItem(at, "mailing", item_id, title, data) for at, item_id, title, data in entries[:limit]]


async def _sent(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[_Entry]:
    query = _of_client(client_id, Recipient, Campaign.name).where(Recipient.sent_at.is_not(None))
    if before is not None:
        query = query.where(Recipient.sent_at < before)
    rows = await session.execute(query.order_by(Recipient.sent_at.desc(), Recipient.id.desc()).limit(limit))
    return [
        (recipient.sent_at, f"mailing-sent-{recipient.id}", "Mailing sent", _about(recipient, name))
        for recipient, name in rows.all()
        if recipient.sent_at is not None
    ]


async def _hits(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[_Entry]:
    query = (
        _of_client(client_id, TrackingHit, Recipient, Campaign.name, CampaignLink.url)
        .join(TrackingHit, TrackingHit.recipient_id == Recipient.id)
        .outerjoin(
            CampaignLink,
            and_(CampaignLink.campaign_id == TrackingHit.campaign_id, CampaignLink.number == TrackingHit.link_number),
        )
    )
    if before is not None:
        query = query.where(TrackingHit.at < before)
    rows = await session.execute(query.order_by(TrackingHit.at.desc(), TrackingHit.id.desc()).limit(limit))
    entries = []
    for hit, recipient, name, url in rows.all():
        data = _about(recipient, name)
        if hit.kind == "unsubscribe":
            data["method"] = hit.reason
        else:
            data["machine"] = not hit.human
            if not hit.human:
                data["reason"] = hit.reason
        if hit.kind == "click":
            data |= {"link": hit.link_number, "url": url}
        entries.append((hit.at, f"mailing-hit-{hit.id}", _HIT_TITLES[hit.kind], data))
    return entries


async def _bounces(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[_Entry]:
    query = _of_client(client_id, Bounce, Recipient, Campaign.name).join(Bounce, Bounce.recipient_id == Recipient.id)
    if before is not None:
        query = query.where(Bounce.at < before)
    rows = await session.execute(query.order_by(Bounce.at.desc(), Bounce.id.desc()).limit(limit))
    return [
        (
            bounce.at,
            f"mailing-bounce-{bounce.id}",
            "Mailing bounced",
            _about(recipient, name) | {"kind": bounce.kind, "status": bounce.status, "diagnostic": bounce.diagnostic},
        )
        for bounce, recipient, name in rows.all()
    ]


def _of_client(client_id: int, *columns: Any) -> Select[Any]:
    """``columns`` of the client's recipients, joined to their campaigns."""
    return (
        select(*columns)
        .select_from(Recipient)
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .where(Recipient.client_id == client_id)
    )


def _about(recipient: Recipient, campaign_name: str) -> dict[str, Any]:
    return {
        "campaign_id": recipient.campaign_id,
        "campaign": campaign_name,
        "recipient_id": recipient.id,
        "address": recipient.address,
    }
