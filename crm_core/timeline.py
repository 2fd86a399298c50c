"""A client's timeline: one list, newest first, of everything that happened with them.

Each capability contributes a source (calls, mail, mailing events, 1C data as their
issues land); a source returns items for one client older than a cursor, and the
timeline merges them.  Card changes come from the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.history import mailings
from crm_core.client_notes import notes
from crm_core.mail.models import MailLink, MailMessage
from crm_core.models import AuditEntry, Call
from crm_core.telephony.call_log import call_to_dict
from crm_core.timeline_items import Source, TimelineItem

_CARD_TITLES = {"create": "Card created", "update": "Card changed", "delete": "Card deleted"}


async def card_changes(
    session: AsyncSession, client_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    query = select(AuditEntry).where(
        AuditEntry.entity == "client",
        AuditEntry.entity_id == str(client_id),
        AuditEntry.action.in_(tuple(_CARD_TITLES)),
    )
    if before is not None:
        query = query.where(AuditEntry.at < before)
    rows = (await session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))).all()
    return [
        TimelineItem(
            at=row.at,
            kind="card",
            id=f"audit-{row.id}",
            title=_CARD_TITLES[row.action],
            data={"by": row.username, **row.details},
        )
        for row in rows
    ]


def _call_title(call: Call) -> str:
    if call.status == "missed":
        return "Missed call"
    return {"inbound": "Incoming call", "outbound": "Outgoing call"}.get(call.direction, "Call")


async def calls(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[TimelineItem]:
    query = select(Call).where(Call.client_id == client_id, Call.started_at.is_not(None))
    if before is not None:
        query = query.where(Call.started_at < before)
    rows = (await session.scalars(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit))).all()
    return [
        TimelineItem(
            at=call.started_at, kind="call", id=f"call-{call.id}", title=_call_title(call), data=call_to_dict(call)
        )
        for call in rows
        if call.started_at is not None
    ]


SNIPPET_CHARS = 200


async def emails(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[TimelineItem]:
    query = select(MailMessage).where(
        exists().where(MailLink.message_id == MailMessage.id, MailLink.client_id == client_id)
    )
    if before is not None:
        query = query.where(MailMessage.received_at < before)
    rows = (
        await session.scalars(query.order_by(MailMessage.received_at.desc(), MailMessage.id.desc()).limit(limit))
    ).all()
    return [
        TimelineItem(
            at=message.received_at,
            kind="email",
            id=f"email-{message.id}",
            title="E-mail sent" if message.direction == "out" else "E-mail received",
            data={
                "id": message.id,
                "subject": message.subject,
                "from": message.sender_address,
                "thread_id": message.thread_id,
                "snippet": " ".join(message.text_body.split())[:SNIPPET_CHARS],
                "url": f"/api/messages/{message.id}",
            },
        )
        for message in rows
    ]


SOURCES: list[Source] = [card_changes, notes, calls, emails, mailings]


async def client_timeline(
    session: AsyncSession, client_id: int, before: datetime | None = None, limit: int = 50
) -> list[TimelineItem]:
    """The newest ``limit`` items older than ``before`` across every source."""
    items: list[TimelineItem] = []
    for source in SOURCES:
        items.extend(await source(session, client_id, before, limit))
    # Each source gives its items newest first; a stable sort keeps that order among equal times.
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]
