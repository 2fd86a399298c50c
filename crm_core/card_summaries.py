"""A card at a glance (name, company, INN, tags, owner, last calls), for many cards at once.

This is what a ringing phone shows, so it is read for every call a busy PBX carries: the
cards of all the calls waiting for a screen-pop are read together, in three statements
whatever their number, instead of three per call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Call, Client, ClientTag, User

RECENT_CALLS = 5


@dataclass(frozen=True, slots=True)
class RecentCall:
    id: int
    direction: str
    status: str
    started_at: datetime | None
    talk_seconds: int
    final_operator: str | None


@dataclass(frozen=True, slots=True)
class CardSummary:
    id: int
    name: str
    full_name: str
    inn: str | None
    owner: str | None  # the owner's full name, or login when the name is blank
    tags: list[str] = field(default_factory=list)
    recent_calls: list[RecentCall] = field(default_factory=list)


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
    return {
        row.id: CardSummary(
            id=row.id,
            name=row.name,
            full_name=row.full_name,
            inn=row.inn,
            owner=row.owner_name or row.owner_login,
            tags=tags[row.id],
            recent_calls=calls[row.id],
        )
        for row in await session.execute(_CARDS, ids)
    }
