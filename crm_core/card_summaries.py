"""A card at a glance (name, company, INN, tags, owner, last calls and e-mails), for many cards at once.

This is what a ringing phone shows, so it is read for every call a busy PBX carries: the
cards of all the calls waiting for a screen-pop are read together, in four statements
whatever their number, instead of three per call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.mail.models import MailLink, MailMessage
from crm_core.models import Call, Client, ClientTag, User

RECENT_CALLS = 5
RECENT_EMAILS = 5


@dataclass(frozen=True, slots=True)
class RecentCall:
    id: int
    direction: str
    status: str
    started_at: datetime | None
    talk_seconds: int
    final_operator: str | None


@dataclass(frozen=True, slots=True)
class RecentEmail:
    id: int
    direction: str  # "in" or "out"
    subject: str
    sender: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CardSummary:
    id: int
    name: str
    full_name: str
    inn: str | None
    owner: str | None  # the owner's full name, or login when the name is blank
    tags: list[str] = field(default_factory=list)
    recent_calls: list[RecentCall] = field(default_factory=list)
    recent_emails: list[RecentEmail] = field(default_factory=list)


_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_CARDS = (
    select(
        Client.id,
        Client.name,
        Client.full_name,
        Client.inn,
        User.full_name.label("owner_name"),
        User.username.label("owner_login"),
    )
    .outerjoin(User, User.id == Client.owner_id)
    .where(Client.id.in_(_IDS), Client.deleted_at.is_(None))
)
_TAGS = select(ClientTag.client_id, ClientTag.tag).where(ClientTag.client_id.in_(_IDS)).order_by(ClientTag.tag)
_RANKED_CALLS = (
    select(
        Call.id,
        Call.client_id,
        Call.direction,
        Call.status,
        Call.started_at,
        Call.talk_seconds,
        Call.final_operator,
        func.row_number()
        .over(partition_by=Call.client_id, order_by=(Call.started_at.desc(), Call.id.desc()))
        .label("rank"),
    )
    .where(Call.client_id.in_(_IDS))
    .subquery()
)
_RECENT = select(_RANKED_CALLS).where(_RANKED_CALLS.c.rank <= RECENT_CALLS).order_by(_RANKED_CALLS.c.rank)
_RANKED_EMAILS = (
    select(
        MailMessage.id,
        MailLink.client_id,
        MailMessage.direction,
        MailMessage.subject,
        MailMessage.sender_address,
        MailMessage.received_at,
        func.row_number()
        .over(partition_by=MailLink.client_id, order_by=(MailMessage.received_at.desc(), MailMessage.id.desc()))
        .label("rank"),
    )
    .join(MailLink, MailLink.message_id == MailMessage.id)
    .where(MailLink.client_id.in_(_IDS))
    .subquery()
)
_RECENT_EMAILS = select(_RANKED_EMAILS).where(_RANKED_EMAILS.c.rank <= RECENT_EMAILS).order_by(_RANKED_EMAILS.c.rank)


async def card_summaries(session: AsyncSession, client_ids: Collection[int]) -> dict[int, CardSummary]:
    """Summaries of the live cards among ``client_ids`` (a deleted or unknown id is left out)."""
    if not client_ids:
        return {}
    ids = {"ids": sorted(set(client_ids))}
    tags: defaultdict[int, list[str]] = defaultdict(list)
    for row in await session.execute(_TAGS, ids):
        tags[row.client_id].append(row.tag)
    calls: defaultdict[int, list[RecentCall]] = defaultdict(list)
    for row in await session.execute(_RECENT, ids):
        calls[row.client_id].append(
            RecentCall(row.id, row.direction, row.status, row.started_at, row.talk_seconds, row.final_operator)
        )
    mail: defaultdict[int, list[RecentEmail]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()  # a message linked twice to one card (two contacts) shows once
    for row in await session.execute(_RECENT_EMAILS, ids):
        if (row.client_id, row.id) not in seen:
            seen.add((row.client_id, row.id))
            mail[row.client_id].append(
                RecentEmail(row.id, row.direction, row.subject, row.sender_address, row.received_at)
            )
    return {
        row.id: CardSummary(
            id=row.id,
            name=row.name,
            full_name=row.full_name,
            inn=row.inn,
            owner=row.owner_name or row.owner_login,
            tags=tags[row.id],
            recent_calls=calls[row.id],
            recent_emails=mail[row.id],
        )
        for row in await session.execute(_CARDS, ids)
    }
