"""Segments: which addresses a campaign goes to, chosen by rules over the card.

The rules the database can answer (status, kind, tags, owner, INN, the last call or e-mail,
opens and clicks of an earlier campaign) are one SQL query; the two it cannot answer the same
way on SQLite and PostgreSQL (a city inside the free-text addresses, a custom field's value)
are checked on the rows that query returns.  Then the suppression list (unsubscribed,
bounced, complained) removes addresses, and each address is kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.models import Campaign, CampaignStatus, Recipient, Suppression, TrackingHit
from crm_core.mail.models import MailLink, MailMessage
from crm_core.models import Call, Client, ClientKind, ClientStatus, ClientTag, Contact, Email, User

Scalar = str | int | float | bool


class SegmentRules(BaseModel):
    """Every rule given must hold; a rule left out does not narrow the segment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    statuses: list[ClientStatus] = Field(default_factory=list, description="Any of these statuses")
    kinds: list[ClientKind] = Field(default_factory=list)
    tags_any: list[str] = Field(default_factory=list, description="At least one of these tags")
    tags_all: list[str] = Field(default_factory=list, description="Every one of these tags")
    tags_none: list[str] = Field(default_factory=list, description="None of these tags")
    owner_ids: list[int] = Field(default_factory=list, description="Owned by one of these users")
    city: str | None = Field(None, max_length=100, description="Named in one of the card's addresses")
    has_inn: bool | None = None
    custom: dict[str, Scalar] = Field(default_factory=dict, description="Custom fields with exactly these values")
    called_since: AwareDatetime | None = Field(None, description="A call logged since then")
    not_called_since: AwareDatetime | None = Field(None, description="No call since then (or never)")
    emailed_since: AwareDatetime | None = Field(None, description="An e-mail exchanged since then")
    not_emailed_since: AwareDatetime | None = None
    opened_campaign_id: int | None = Field(None, description="A person opened (or clicked) this campaign")
    clicked_campaign_id: int | None = Field(None, description="A person clicked a link of this campaign")
    addresses: Literal["all", "company"] = Field(
        "all", description="Every address on the card, or only the company's own (not its contacts')"
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    client_id: int
    contact_id: int | None
    address: str
    address_key: str


@dataclass(frozen=True, slots=True)
class SegmentCount:
    clients: int
    addresses: int  # what a campaign would send: suppressed addresses left out, each once
    suppressed: int


async def candidates(session: AsyncSession, rules: SegmentRules) -> tuple[list[Candidate], int]:
    """The addresses the rules choose, each once, in card order; and how many were suppressed."""
    rows = (await session.execute(_query(rules))).all()
    suppressed = set((await session.scalars(select(Suppression.address_key))).all())
    chosen: dict[str, Candidate] = {}
    held_back: set[str] = set()
    for client_id, contact_id, address, key, addresses, custom in rows:
        if not _matches_in_python(rules, addresses, custom):
            continue
        if key in suppressed:
            held_back.add(key)
        elif key not in chosen:
            chosen[key] = Candidate(client_id, contact_id, address, key)
    return list(chosen.values()), len(held_back)


async def count(session: AsyncSession, rules: SegmentRules) -> SegmentCount:
    chosen, suppressed = await candidates(session, rules)
    return SegmentCount(len({c.client_id for c in chosen}), len(chosen), suppressed)


@dataclass(frozen=True, slots=True)
class Sampled:
    """One address the rules choose, with the names a person recognises it by."""

    client_id: int
    client_name: str
    contact_id: int | None
    contact_name: str
    address: str


async def sample(session: AsyncSession, rules: SegmentRules, limit: int) -> list[Sampled]:
    """The first ``limit`` addresses the rules choose: who a marketer checks the segment by, and
    whose copy the campaign editor previews."""
    chosen = (await candidates(session, rules))[0][:limit]
    names = await session.execute(select(Client.id, Client.name).where(Client.id.in_({c.client_id for c in chosen})))
    clients = {row.id: row.name for row in names}
    contact_ids = {c.contact_id for c in chosen if c.contact_id is not None}
    people = {
        row.id: " ".join(part for part in (row.first_name, row.last_name) if part)
        for row in await session.execute(
            select(Contact.id, Contact.first_name, Contact.last_name).where(Contact.id.in_(contact_ids))
        )
    }
    return [Sampled(c.client_id, clients.get(c.client_id, ""), c.contact_id, people.get(c.contact_id or 0, ""),
                    c.address) for c in chosen]  # fmt: skip


CHOICE_CARDS = 2000  # the latest cards whose custom fields' names the builder offers
CHOICE_TAGS = 500


async def choices(session: AsyncSession) -> dict[str, Any]:
    """What the segment builder offers to choose from: the hub's active users (as owners), the
    tags in use, custom fields' names (of the latest cards: any other can still be typed), and
    the campaigns that sent something (for "opened" and "clicked")."""
    owners = await session.execute(select(User.id, User.full_name, User.username).where(User.is_active.is_(True))
                                   .order_by(User.full_name, User.username))  # fmt: skip
    tags = await session.scalars(select(ClientTag.tag).distinct().order_by(ClientTag.tag).limit(CHOICE_TAGS))
    customs = await session.scalars(
        select(Client.custom_fields).where(Client.deleted_at.is_(None)).order_by(Client.id.desc()).limit(CHOICE_CARDS)
    )
    sent = await session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.status.not_in((CampaignStatus.draft, CampaignStatus.scheduled)))
        .order_by(Campaign.id.desc())
    )
    return {
        "owners": [{"id": row.id, "name": row.full_name or row.username} for row in owners],
        "tags": list(tags),
        "custom_fields": sorted({name for fields in customs for name in (fields or {})}),
        "campaigns": [{"id": row.id, "name": row.name} for row in sent],
    }


def _query(rules: SegmentRules) -> Select[Any]:
    query = (
        select(Email.client_id, Email.contact_id, Email.address, Email.address_lower, Client.addresses,
               Client.custom_fields)
        .join(Client, Client.id == Email.client_id)
        .where(Client.deleted_at.is_(None))
        .order_by(Email.client_id, Email.id)
    )  # fmt: skip
    if rules.addresses == "company":
        query = query.where(Email.contact_id.is_(None))
    for condition in _conditions(rules):
        query = query.where(condition)
    return query


def _conditions(rules: SegmentRules) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if rules.statuses:
        conditions.append(Client.status.in_(rules.statuses))
    if rules.kinds:
        conditions.append(Client.kind.in_(rules.kinds))
    if rules.owner_ids:
        conditions.append(Client.owner_id.in_(rules.owner_ids))
    if rules.has_inn is not None:
        conditions.append(Client.inn.is_not(None) if rules.has_inn else Client.inn.is_(None))
    if rules.tags_any:
        conditions.append(_tagged(rules.tags_any))
    conditions += [_tagged([tag]) for tag in rules.tags_all]
    if rules.tags_none:
        conditions.append(~_tagged(rules.tags_none))
    last_call = select(func.max(Call.started_at)).where(Call.client_id == Client.id).scalar_subquery()
    if rules.called_since:
        conditions.append(last_call >= rules.called_since)
    if rules.not_called_since:
        conditions.append(or_(last_call.is_(None), last_call < rules.not_called_since))
    last_mail = (
        select(func.max(func.coalesce(MailMessage.sent_at, MailMessage.received_at)))
        .join(MailLink, MailLink.message_id == MailMessage.id)
        .where(MailLink.client_id == Client.id)
        .scalar_subquery()
    )
    if rules.emailed_since:
        conditions.append(last_mail >= rules.emailed_since)
    if rules.not_emailed_since:
        conditions.append(or_(last_mail.is_(None), last_mail < rules.not_emailed_since))
    if rules.opened_campaign_id is not None:
        conditions.append(_engaged(rules.opened_campaign_id, ("open", "click")))
    if rules.clicked_campaign_id is not None:
        conditions.append(_engaged(rules.clicked_campaign_id, ("click",)))
    return conditions


def _tagged(tags: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(ClientTag.client_id == Client.id, ClientTag.tag.in_(tags))


def _engaged(campaign_id: int, kinds: Sequence[str]) -> ColumnElement[bool]:
    """A person's open or click on this campaign by anyone at the card (a click implies an open)."""
    return exists().where(
        Recipient.client_id == Client.id,
        TrackingHit.recipient_id == Recipient.id,
        TrackingHit.campaign_id == campaign_id,
        TrackingHit.kind.in_(kinds),
        TrackingHit.human.is_(True),
    )


def _matches_in_python(rules: SegmentRules, addresses: list[dict[str, str]], custom: dict[str, Any]) -> bool:
    if rules.city:
        city = rules.city.casefold()
        if not any(city in str(a.get("text", "")).casefold() for a in addresses or []):
            return False
    fields = custom or {}
    return all(key in fields and _same(fields[key], value) for key, value in rules.custom.items())


def _same(stored: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, str) and isinstance(stored, str):
        return stored.strip().casefold() == wanted.strip().casefold()
    return bool(stored == wanted)
