"""Campaigns in the domain: saved with their templates checked, started with a fixed recipient
list (each address once, none suppressed, every copy rendered first), paused, resumed, cancelled."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.campaigns.book import CampaignIn, Campaigns, SegmentIn, Segments
from crm_core.campaigns.models import CampaignLink, CampaignStatus, Recipient, Suppression, SuppressionReason
from crm_core.campaigns.segments import SegmentRules
from crm_core.campaigns.templates import TemplateProblem
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.errors import Conflict, InvalidInput

HTML = (
    "<html><body><p>Здравствуйте, {{ contact.first_name or client.name }}!</p>"
    '<a href="https://shop.example.com/sale?c={{ client.id }}">Скидки</a>'
    '<a href="https://shop.example.com/">Магазин</a></body></html>'
)


async def _setup(session: AsyncSession) -> tuple[int, dict[str, int]]:
    book = ClientBook(session)
    cards = {}
    for name, emails, tags in (
        ("Ромашка", ["info@romashka.ru", "Info@Romashka.ru"], ["опт"]),
        ("Лютик", ["hello@lyutik.ru", "info@romashka.ru"], ["опт"]),
        ("Василёк", ["v@vasilek.ru"], ["опт"]),
        ("Чужой", ["x@other.ru"], []),
    ):
        card = ClientIn.model_validate({"name": name, "tags": tags, "emails": [{"address": a} for a in emails]})
        cards[name] = (await book.create(card, SYSTEM)).id
    segment = await Segments(session).create(SegmentIn(name="Опт", rules=SegmentRules(tags_any=["опт"])))
    return segment.id, cards


def _campaign(**changes: Any) -> CampaignIn:
    values: dict[str, Any] = {
        "name": "Декабрь",
        "from_address": "news@example.com",
        "subject": "Скидки для {{ client.name }}",
        "html": HTML,
    }
    return CampaignIn.model_validate({**values, **changes})


async def test_a_template_error_is_refused_when_saved_with_its_line(session: AsyncSession) -> None:
    with pytest.raises(TemplateProblem) as caught:
        await Campaigns(session).create(_campaign(html="<p>\n{% for %}</p>"), None)
    assert caught.value.field == "html" and caught.value.line == 2
    with pytest.raises(InvalidInput):
        await Campaigns(session).create(_campaign(html="", text=""), None)


async def test_starting_fixes_each_address_once_without_the_suppressed(session: AsyncSession) -> None:
    segment_id, cards = await _setup(session)
    session.add(Suppression(address_key="v@vasilek.ru", reason=SuppressionReason.unsubscribed))
    campaigns = Campaigns(session)
    campaign = await campaigns.create(_campaign(), None)
    with pytest.raises(InvalidInput, match="segment"):
        await campaigns.start(campaign.id)
    await campaigns.update(campaign.id, {"segment_id": segment_id})

    preview = await campaigns.preview(campaign.id, cards["Лютик"])
    assert preview.subject == "Скидки для Лютик" and f"sale?c={cards['Лютик']}" in preview.html

    started = await campaigns.start(campaign.id)
    assert started.status is CampaignStatus.sending and started.started_at is not None
    recipients = (await session.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))).all()
    assert sorted(r.address_key for r in recipients) == ["hello@lyutik.ru", "info@romashka.ru"]
    assert {r.client_id for r in recipients if r.address_key == "info@romashka.ru"} == {cards["Ромашка"]}
    links = (await session.scalars(select(CampaignLink).where(CampaignLink.campaign_id == campaign.id))).all()
    assert [(link.number, link.url) for link in links] == [
        (1, "https://shop.example.com/sale?c={{ client.id }}"),
        (2, "https://shop.example.com/"),
    ]
    assert (await campaigns.recipient_counts(campaign.id))["queued"] == 2
    with pytest.raises(Conflict):
        await campaigns.update(campaign.id, {"subject": "Другое"})
    with pytest.raises(Conflict):
        await campaigns.start(campaign.id)


async def test_a_copy_that_fails_for_one_recipient_stops_the_start_naming_it(session: AsyncSession) -> None:
    segment_id, _ = await _setup(session)
    campaigns = Campaigns(session)
    campaign = await campaigns.create(_campaign(segment_id=segment_id, subject="{{ client.name[10] }}"), None)
    with pytest.raises(TemplateProblem) as caught:
        await campaigns.start(campaign.id)
    assert caught.value.field == "subject" and "(for " in str(caught.value)
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.draft
    assert (await session.scalars(select(Recipient))).all() == []


async def test_pause_resume_and_cancel(session: AsyncSession) -> None:
    segment_id, _ = await _setup(session)
    campaigns = Campaigns(session)
    campaign = await campaigns.create(_campaign(segment_id=segment_id), None)
    with pytest.raises(Conflict):
        await campaigns.pause(campaign.id)
    await campaigns.start(campaign.id)
    assert (await campaigns.pause(campaign.id)).status is CampaignStatus.paused
    assert (await campaigns.resume(campaign.id)).status is CampaignStatus.sending
    assert not await campaigns.finish_if_done(campaign.id)
    assert (await campaigns.cancel(campaign.id)).status is CampaignStatus.cancelled
    assert (await campaigns.recipient_counts(campaign.id))["cancelled"] == 3
    with pytest.raises(Conflict):
        await campaigns.resume(campaign.id)
