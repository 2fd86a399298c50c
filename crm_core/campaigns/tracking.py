"""What a tracked hit does: an open, a click or an unsubscribe recorded against its recipient,
a machine's hit flagged, the event published, an unsubscribed address suppressed.

The request's token has been checked before anything here runs; a recipient that does not
exist, or a campaign sent without tracking, records nothing.  Opens and clicks are answered
at once and recorded in batches (``record``); an unsubscribe is recorded before it is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import ARRAY, Integer, Table, any_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.machines import Hit, MachineRules, Verdict, classify
from crm_core.campaigns.models import (
    Campaign,
    CampaignLink,
    Recipient,
    Suppression,
    SuppressionReason,
    TrackingHit,
)
from crm_core.campaigns.templates import Card, Person, TemplateProblem, card_variables, render_url
from crm_core.models import Client
from crm_core.outbox import Event, publish

HITS = cast(Table, TrackingHit.__table__)
UnsubscribeMethod = Literal["one_click", "page", "mailto"]  # RFC 8058 POST, the page's button, a mail


@dataclass(frozen=True, slots=True)
class Visit:
    """What the request says about who is asking."""

    at: datetime
    method: str = "GET"
    user_agent: str | None = None
    ip: str | None = None
    has_accept_language: bool = True


@dataclass(frozen=True, slots=True)
class PendingHit:
    """An open or a click answered already, waiting to be recorded with others."""

    kind: str  # "open" or "click"
    recipient_id: int
    visit: Visit
    link: int | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """What recording a hit needs of its recipient and campaign."""

    recipient_id: int
    campaign_id: int
    client_id: int | None
    contact_id: int | None
    address: str
    sent_at: datetime | None
    tracking: bool

    @classmethod
    def of(cls, recipient: Recipient, campaign: Campaign) -> _Target:
        return cls(recipient.id, campaign.id, recipient.client_id, recipient.contact_id, recipient.address,
                   recipient.sent_at, campaign.tracking)  # fmt: skip


class Tracking:
    """Records hits as Core rows, written together (a batch of opens is three statements: the
    recipients read, the hits inserted, the events inserted); a click's judgement reads the
    recipient's recent clicks, so what is pending is written first."""

    def __init__(self, session: AsyncSession, rules: MachineRules | None = None) -> None:
        self.session = session
        self.rules = rules or MachineRules()
        self._rows: list[dict[str, Any]] = []  # tracking_hits rows not written yet
        self._events: list[Event] = []

    async def destination(self, recipient_id: int, number: int) -> tuple[str, bool] | None:
        """Where link ``number`` of this recipient's copy goes, and whether the campaign tracks
        clicks; None when there is no such recipient or link.  Only reads."""
        found = await self._recipient(recipient_id)
        if found is None:
            return None
        recipient, campaign = found
        link = await self.session.scalar(
            select(CampaignLink).where(CampaignLink.campaign_id == campaign.id, CampaignLink.number == number)
        )
        if link is None:
            return None
        return await self._url(link, recipient, campaign), campaign.tracking

    async def record(self, hits: Sequence[PendingHit]) -> int:
        """Record opens and clicks, in their order; how many were (a recipient gone, or a
        campaign not tracked, records nothing)."""
        ids = sorted({hit.recipient_id for hit in hits})
        if self.session.get_bind().dialect.name == "postgresql":  # one array: the same statement however many
            chosen = Recipient.id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
        else:
            chosen = Recipient.id.in_(ids)
        rows = await self.session.execute(
            select(Recipient.id, Recipient.campaign_id, Recipient.client_id, Recipient.contact_id, Recipient.address,
                   Recipient.sent_at, Campaign.tracking)
            .join(Campaign, Campaign.id == Recipient.campaign_id)
            .where(chosen)
        )  # fmt: skip
        targets = {row[0]: _Target(*row) for row in rows.all()}
        recorded = 0
        for hit in hits:
            target = targets.get(hit.recipient_id)
            if target is None or not target.tracking:
                continue
            if hit.kind == "click" and hit.link is not None:
                await self._record_click(target, hit.link, hit.url or "", hit.visit)
            else:
                self._record(
                    target, "open", None, hit.visit, classify(self._hit("open", target, hit.visit), self.rules)
                )
            recorded += 1
        await self._write()
        return recorded

    async def unsubscribed(self, recipient_id: int, visit: Visit, *, how: UnsubscribeMethod) -> bool:
        """The address is suppressed for every campaign from now on (once, however often asked)."""
        found = await self._recipient(recipient_id)
        if found is None:
            return False
        recipient, campaign = found
        already = await self.session.scalar(
            select(Suppression.id).where(Suppression.address_key == recipient.address_key)
        )
        if already is None:
            self.session.add(
                Suppression(address_key=recipient.address_key, reason=SuppressionReason.unsubscribed,
                            campaign_id=campaign.id, detail=how.replace("_", "-"), created_at=visit.at)
            )  # fmt: skip
            self._record(_Target.of(recipient, campaign), "unsubscribe", None, visit, Verdict(True, how))
            await self._write()
        return True

    # -- private -----------------------------------------------------------------------------

    async def _recipient(self, recipient_id: int) -> tuple[Recipient, Campaign] | None:
        row = (
            await self.session.execute(
                select(Recipient, Campaign)
                .join(Campaign, Campaign.id == Recipient.campaign_id)
                .where(Recipient.id == recipient_id)
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    def _hit(self, kind: str, target: _Target, visit: Visit, pair: int = 1, burst: int = 1) -> Hit:
        since = (visit.at - target.sent_at).total_seconds() if target.sent_at else None
        return Hit(kind, visit.method, visit.user_agent, visit.ip, since, visit.has_accept_language, pair, burst)

    async def _record_click(self, target: _Target, number: int, url: str, visit: Visit) -> None:
        """A click, judged with the recipient's other clicks of the last seconds: a scanner
        follows several links at once, and then the earlier ones of the burst are its too."""
        await self._write()
        window = timedelta(seconds=self.rules.burst_seconds)
        recent = (
            await self.session.execute(
                select(TrackingHit.id, TrackingHit.link_number, TrackingHit.at).where(
                    TrackingHit.recipient_id == target.recipient_id,
                    TrackingHit.kind == "click",
                    TrackingHit.at >= visit.at - window,
                )
            )
        ).all()
        pair_start = visit.at - timedelta(seconds=self.rules.pair_seconds)
        pair = len({n for _, n, at in recent if at >= pair_start} | {number})
        burst = len({n for _, n, _ in recent} | {number})
        verdict = classify(self._hit("click", target, visit, pair, burst), self.rules)
        if verdict.reason in ("link_pair_burst", "link_burst"):
            caught = [hit_id for hit_id, _, at in recent if verdict.reason == "link_burst" or at >= pair_start]
            await self.session.execute(
                update(TrackingHit).where(TrackingHit.id.in_(caught)).values(human=False, reason=verdict.reason)
            )
        self._record(target, "click", number, visit, verdict, url=url)

    def _record(
        self, target: _Target, kind: str, number: int | None, visit: Visit, verdict: Verdict, url: str | None = None
    ) -> None:
        self._rows.append(
            {"campaign_id": target.campaign_id, "recipient_id": target.recipient_id, "kind": kind,
             "link_number": number, "at": visit.at, "human": verdict.human,
             "reason": None if verdict.reason == "human" else verdict.reason, "ip": visit.ip,
             "user_agent": (visit.user_agent or "")[:500] or None}
        )  # fmt: skip
        payload: dict[str, Any] = {
            "campaign_id": target.campaign_id,
            "recipient_id": target.recipient_id,
            "client_id": target.client_id,
            "contact_id": target.contact_id,
            "address": target.address,
            "at": visit.at,
        }
        if kind == "unsubscribe":
            payload["method"] = verdict.reason
        else:
            payload["machine"] = not verdict.human
        if number is not None:
            payload |= {"link_id": number, "url": url}
        kinds = {"open": "mailing.opened", "click": "mailing.clicked", "unsubscribe": "mailing.unsubscribed"}
        self._events.append(Event(kinds[kind], payload, target.client_id))

    async def _write(self) -> None:
        rows, self._rows = self._rows, []
        events, self._events = self._events, []
        if rows:
            await self.session.execute(insert(HITS), rows)
        await publish(self.session, *events)

    async def _url(self, link: CampaignLink, recipient: Recipient, campaign: Campaign) -> str:
        """The link's URL rendered for this recipient; as written when the card is gone."""
        if "{" not in link.url:
            return link.url
        client = await self.session.get(Client, recipient.client_id) if recipient.client_id else None
        if client is None:
            return link.url
        contact = next((c for c in client.contacts if c.id == recipient.contact_id), None)
        try:
            variables = card_variables(Card.of(client), Person.of(contact), recipient.address, campaign.name, "")
            return render_url(link.url, variables)
        except TemplateProblem:
            return link.url
