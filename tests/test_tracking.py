"""Tracked hits in the domain: opens and clicks recorded against their recipient, machines'
flagged, a redirect only to the stored link, an unsubscribe suppressing the address once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.book import Campaigns
from crm_core.campaigns.models import Recipient, RecipientStatus, Suppression, TrackingHit
from crm_core.campaigns.tracking import PendingHit, Tracking, Visit
from crm_core.models import utcnow
from crm_core.outbox import OutboxEvent
from tests.test_campaigns import _campaign, _setup

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def _sent(session: AsyncSession, tracking: bool = True) -> tuple[Recipient, dict[str, int]]:
    segment_id, cards = await _setup(session)
    campaigns = Campaigns(session)
    campaign = await campaigns.create(_campaign(segment_id=segment_id, tracking=tracking), None)
    await campaigns.start(campaign.id)
    recipient = await session.scalar(
        select(Recipient).where(Recipient.campaign_id == campaign.id, Recipient.address_key == "hello@lyutik.ru")
    )
    assert recipient is not None
    recipient.status, recipient.sent_at = RecipientStatus.sent, utcnow() - timedelta(hours=1)
    await session.flush()
    return recipient, cards


async def _open(tracking: Tracking, recipient_id: int, visit: Visit) -> bool:
    return await tracking.record([PendingHit("open", recipient_id, visit)]) == 1


async def _click(tracking: Tracking, recipient_id: int, number: int, visit: Visit) -> str | None:
    found = await tracking.destination(recipient_id, number)
    if found is None:
        return None
    await tracking.record([PendingHit("click", recipient_id, visit, number, found[0])])
    return found[0]


async def _hits(session: AsyncSession) -> list[tuple[str, int | None, bool, str | None]]:
    rows = await session.execute(
        select(TrackingHit.kind, TrackingHit.link_number, TrackingHit.human, TrackingHit.reason).order_by(
            TrackingHit.id
        )
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def _events(session: AsyncSession) -> list[str]:
    types = (await session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id))).all()
    return [t for t in types if t.startswith("mailing.")]


async def test_opens_by_people_and_by_machines_are_both_recorded_and_told_apart(session: AsyncSession) -> None:
    recipient, _ = await _sent(session)
    tracking = Tracking(session)
    assert await _open(tracking, recipient.id, Visit(utcnow(), user_agent=BROWSER))
    assert await _open(tracking, recipient.id, Visit(utcnow(), user_agent="Mozilla/5.0"))  # Apple MPP
    assert await _open(
        tracking, recipient.id, Visit(utcnow(), user_agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)")
    )
    assert not await _open(tracking, recipient.id + 1000, Visit(utcnow(), user_agent=BROWSER))
    assert await _hits(session) == [
        ("open", None, True, None),
        ("open", None, False, "apple_mpp"),
        ("open", None, True, "gmail_proxy"),
    ]
    assert await _events(session) == ["mailing.opened"] * 3


async def test_a_click_goes_only_to_the_stored_link_rendered_for_the_recipient(session: AsyncSession) -> None:
    recipient, cards = await _sent(session)
    tracking = Tracking(session)
    url = await _click(tracking, recipient.id, 1, Visit(utcnow(), user_agent=BROWSER))
    assert url == f"https://shop.example.com/sale?c={cards['Лютик']}"
    assert await _click(tracking, recipient.id, 3, Visit(utcnow(), user_agent=BROWSER)) is None  # no link 3
    assert await _hits(session) == [("click", 1, True, None)]
    events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert events[-1].type == "mailing.clicked" and events[-1].payload["url"] == url


async def test_a_scanner_following_every_link_at_once_is_caught_with_its_first_click(
    session: AsyncSession,
) -> None:
    recipient, _ = await _sent(session)
    tracking = Tracking(session)
    now = utcnow()
    await _click(tracking, recipient.id, 1, Visit(now, user_agent=BROWSER))
    await _click(tracking, recipient.id, 2, Visit(now + timedelta(seconds=1), user_agent=BROWSER))
    assert await _hits(session) == [("click", 1, False, "link_pair_burst"), ("click", 2, False, "link_pair_burst")]
    await _click(tracking, recipient.id, 1, Visit(now + timedelta(minutes=5), user_agent=BROWSER))
    assert (await _hits(session))[-1] == ("click", 1, True, None)


async def test_without_tracking_a_click_still_redirects_but_nothing_is_recorded(session: AsyncSession) -> None:
    recipient, _ = await _sent(session, tracking=False)
    tracking = Tracking(session)
    assert await _click(tracking, recipient.id, 2, Visit(utcnow(), user_agent=BROWSER)) == "https://shop.example.com/"
    assert not await _open(tracking, recipient.id, Visit(utcnow(), user_agent=BROWSER))
    assert await _hits(session) == [] and await _events(session) == []


async def test_an_unsubscribe_suppresses_the_address_once(session: AsyncSession) -> None:
    recipient, _ = await _sent(session)
    tracking = Tracking(session)
    assert await tracking.unsubscribed(recipient.id, Visit(utcnow(), method="POST"), how="one_click")
    assert await tracking.unsubscribed(recipient.id, Visit(utcnow(), method="POST"), how="page")
    suppressed = (await session.scalars(select(Suppression))).all()
    assert [(s.address_key, s.reason.value, s.detail) for s in suppressed] == [
        ("hello@lyutik.ru", "unsubscribed", "one-click")
    ]
    assert await _hits(session) == [("unsubscribe", None, True, "one_click")]
    assert await _events(session) == ["mailing.unsubscribed"]
    assert not await tracking.unsubscribed(recipient.id + 1000, Visit(utcnow()), how="one_click")
