"""Campaigns and segments: saving them, their life (draft, scheduled, sending, paused, finished,
cancelled), the recipient list fixed when sending starts, and what happened to it.

Starting a campaign fixes its recipients (the segment evaluated once, suppression applied,
each address once) and renders the templates for every one of them first: a template error
stops the start, naming the recipient, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.models import (
    Campaign,
    CampaignLink,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    Segment,
)
from crm_core.campaigns.segments import SegmentCount, SegmentRules, candidates, count
from crm_core.campaigns.templates import CampaignTemplate, Card, Person, Rendered, TemplateProblem, card_variables
from crm_core.emails import is_plausible
from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import Client, Contact, utcnow

PREVIEW_UNSUBSCRIBE = "https://hub.invalid/u/preview"
_EDITABLE = (CampaignStatus.draft, CampaignStatus.scheduled)
_CHECK_CHUNK = 500


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    mailbox: str | None = Field(None, max_length=100, description="Whose SMTP server sends it (default: the first)")
    from_address: str = Field(max_length=320)
    from_name: str = Field("", max_length=200)
    reply_to: str | None = Field(None, max_length=320)
    subject: str = Field(min_length=1, max_length=2000)
    html: str = Field("", max_length=2_000_000)
    text: str = Field("", max_length=1_000_000, description="Empty: made from the HTML")
    segment_id: int | None = None
    tracking: bool = True

    @field_validator("from_address", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_plausible(value):
            raise ValueError("not an e-mail address")
        return value


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    rules: SegmentRules = Field(default_factory=SegmentRules)


class Segments:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, data: SegmentIn) -> Segment:
        await self._name_free(data.name, None)
        segment = Segment(name=data.name, rules=data.rules.model_dump(mode="json"), created_at=utcnow(),
                          updated_at=utcnow())  # fmt: skip
        self.session.add(segment)
        await self.session.flush()
        return segment

    async def update(self, segment_id: int, data: SegmentIn) -> Segment:
        segment = await self.get(segment_id)
        await self._name_free(data.name, segment_id)
        segment.name, segment.rules, segment.updated_at = data.name, data.rules.model_dump(mode="json"), utcnow()
        await self.session.flush()
        return segment

    async def get(self, segment_id: int) -> Segment:
        segment = await self.session.get(Segment, segment_id)
        if segment is None:
            raise NotFound(f"segment {segment_id} not found")
        return segment

    async def all(self) -> list[Segment]:
        return list((await self.session.scalars(select(Segment).order_by(Segment.name))).all())

    async def delete(self, segment_id: int) -> None:
        await self.session.delete(await self.get(segment_id))

    async def count(self, rules: SegmentRules) -> SegmentCount:
        return await count(self.session, rules)

    async def _name_free(self, name: str, own_id: int | None) -> None:
        taken = await self.session.scalar(select(Segment.id).where(Segment.name == name))
        if taken is not None and taken != own_id:
            raise Conflict(f"a segment named {name!r} already exists")


class Campaigns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- saving ------------------------------------------------------------------------------

    async def create(self, data: CampaignIn, user_id: int | None) -> Campaign:
        await self._check(data)
        campaign = Campaign(**data.model_dump(), status=CampaignStatus.draft, created_by=user_id,
                            created_at=utcnow(), updated_at=utcnow())  # fmt: skip
        self.session.add(campaign)
        await self.session.flush()
        return campaign

    async def update(self, campaign_id: int, changes: dict[str, Any]) -> Campaign:
        campaign = await self.get(campaign_id)
        if campaign.status not in _EDITABLE:
            raise Conflict(
                f"campaign {campaign_id} is {campaign.status.value}: only a draft or a scheduled one changes"
            )
        current = {name: getattr(campaign, name) for name in CampaignIn.model_fields}
        data = CampaignIn.model_validate({**current, **changes})
        await self._check(data)
        for name, value in data.model_dump().items():
            setattr(campaign, name, value)
        campaign.updated_at = utcnow()
        await self.session.flush()
        return campaign

    async def get(self, campaign_id: int) -> Campaign:
        campaign = await self.session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return campaign

    async def delete(self, campaign_id: int) -> None:
        """Only a draft goes: a campaign that sent anything stays, for its statistics."""
        campaign = await self._in(campaign_id, (CampaignStatus.draft,), "deleted")
        await self.session.delete(campaign)

    async def all(self) -> list[Campaign]:
        return list((await self.session.scalars(select(Campaign).order_by(Campaign.id.desc()))).all())

    async def preview(self, campaign_id: int, client_id: int, address: str | None = None) -> Rendered:
        """The campaign as this card's address (its first, unless one is named) would get it."""
        campaign = await self.get(campaign_id)
        return await self.preview_unsaved(campaign.name, _template(campaign), client_id, address)

    async def preview_unsaved(
        self, name: str, template: CampaignTemplate, client_id: int, address: str | None = None
    ) -> Rendered:
        """Templates being edited, as this card's address would get them: the editor's live preview."""
        client = await self._card(client_id)
        emails = [e for e in client.emails if address is None or e.address_lower == address.strip().lower()]
        if not emails:
            raise InvalidInput("the card has no such e-mail address", field="address")
        contact = next((c for c in client.contacts if c.id == emails[0].contact_id), None)
        variables = card_variables(Card.of(client), Person.of(contact), emails[0].address, name,
                                   PREVIEW_UNSUBSCRIBE)  # fmt: skip
        return template.render(variables)

    # -- its life ----------------------------------------------------------------------------

    async def schedule(self, campaign_id: int, at: datetime) -> Campaign:
        campaign = await self._in(campaign_id, (CampaignStatus.draft, CampaignStatus.scheduled), "scheduled")
        await self._segment_of(campaign)
        campaign.status, campaign.scheduled_at, campaign.updated_at = CampaignStatus.scheduled, at, utcnow()
        return campaign

    async def start(self, campaign_id: int) -> Campaign:
        """Fix the recipients and check every one's copy renders; then it is sending."""
        campaign = await self._in(campaign_id, _EDITABLE, "started")
        segment = await self._segment_of(campaign)
        template = _template(campaign)
        chosen, _ = await candidates(self.session, SegmentRules.model_validate(segment.rules))
        if not chosen:
            raise InvalidInput("the segment chooses nobody (after the suppression list)", field="segment_id")
        await self._check_every_copy(campaign, template, chosen)
        await self.session.execute(
            insert(Recipient),
            [
                {"campaign_id": campaign.id, "client_id": c.client_id, "contact_id": c.contact_id,
                 "address": c.address, "address_key": c.address_key, "status": RecipientStatus.queued, "attempts": 0}
                for c in chosen
            ],
        )  # fmt: skip
        if template.links:
            await self.session.execute(
                insert(CampaignLink),
                [{"campaign_id": campaign.id, "number": n, "url": url} for n, url in enumerate(template.links, 1)],
            )
        campaign.status, campaign.started_at, campaign.updated_at = CampaignStatus.sending, utcnow(), utcnow()
        await self.session.flush()
        return campaign

    async def pause(self, campaign_id: int) -> Campaign:
        campaign = await self._in(campaign_id, (CampaignStatus.sending,), "paused")
        campaign.status, campaign.updated_at = CampaignStatus.paused, utcnow()
        return campaign

    async def resume(self, campaign_id: int) -> Campaign:
        campaign = await self._in(campaign_id, (CampaignStatus.paused,), "resumed")
        campaign.status, campaign.updated_at = CampaignStatus.sending, utcnow()
        return campaign

    async def cancel(self, campaign_id: int) -> Campaign:
        """Nothing more goes out; what went out stays counted."""
        campaign = await self._in(campaign_id, (*_EDITABLE, CampaignStatus.sending, CampaignStatus.paused), "cancelled")
        await self.session.execute(
            update(Recipient)
            .where(Recipient.campaign_id == campaign.id, Recipient.status == RecipientStatus.queued)
            .values(status=RecipientStatus.cancelled)
        )
        campaign.status, campaign.finished_at, campaign.updated_at = CampaignStatus.cancelled, utcnow(), utcnow()
        return campaign

    async def finish_if_done(self, campaign_id: int) -> bool:
        """A sending campaign with nobody queued or in flight is finished."""
        campaign = await self.get(campaign_id)
        if campaign.status is not CampaignStatus.sending:
            return False
        left = await self.session.scalar(
            select(func.count())
            .select_from(Recipient)
            .where(
                Recipient.campaign_id == campaign.id,
                Recipient.status.in_((RecipientStatus.queued, RecipientStatus.sending)),
            )
        )
        if left:
            return False
        campaign.status, campaign.finished_at, campaign.updated_at = CampaignStatus.finished, utcnow(), utcnow()
        return True

    async def recipient_counts(self, campaign_id: int) -> dict[str, int]:
        rows = await self.session.execute(
            select(Recipient.status, func.count())
            .where(Recipient.campaign_id == campaign_id)
            .group_by(Recipient.status)
        )
        counts = {status.value: 0 for status in RecipientStatus}
        counts.update({status.value: n for status, n in rows.all()})
        return counts

    # -- private -----------------------------------------------------------------------------

    async def _check(self, data: CampaignIn) -> None:
        CampaignTemplate.compile(data.subject, data.html, data.text)  # syntax errors, with their lines
        if not data.html.strip() and not data.text.strip():
            raise InvalidInput("a campaign needs an HTML or a text body", field="html")
        if data.segment_id is not None:
            await Segments(self.session).get(data.segment_id)

    async def _in(self, campaign_id: int, states: Sequence[CampaignStatus], becoming: str) -> Campaign:
        campaign = await self.get(campaign_id)
        if campaign.status not in states:
            raise Conflict(f"campaign {campaign_id} is {campaign.status.value}: it cannot be {becoming}")
        return campaign

    async def _segment_of(self, campaign: Campaign) -> Segment:
        if campaign.segment_id is None:
            raise InvalidInput("choose a segment first", field="segment_id")
        return await Segments(self.session).get(campaign.segment_id)

    async def _card(self, client_id: int) -> Client:
        client = await self.session.get(Client, client_id)
        if client is None or client.deleted_at is not None:
            raise NotFound(f"client {client_id} not found")
        return client

    async def _check_every_copy(self, campaign: Campaign, template: CampaignTemplate, chosen: Sequence[Any]) -> None:
        for start in range(0, len(chosen), _CHECK_CHUNK):
            chunk = chosen[start : start + _CHECK_CHUNK]
            clients = {
                c.id: c
                for c in await self.session.scalars(select(Client).where(Client.id.in_({r.client_id for r in chunk})))
            }
            for candidate in chunk:
                client = clients[candidate.client_id]
                contact: Contact | None = next((c for c in client.contacts if c.id == candidate.contact_id), None)
                variables = card_variables(
                    Card.of(client), Person.of(contact), candidate.address, campaign.name, PREVIEW_UNSUBSCRIBE
                )
                try:
                    template.render(variables)
                except TemplateProblem as exc:
                    raise exc.for_recipient(candidate.address) from None


def _template(campaign: Campaign) -> CampaignTemplate:
    return CampaignTemplate.compile(campaign.subject, campaign.html, campaign.text)
