"""The audit log: who read, changed or exported which record, when, from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import AuditEntry, utcnow


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever is acting: a logged-in user, a token, or the system itself (user_id None)."""

    user_id: int | None
    username: str
    ip: str | None = None


SYSTEM = Actor(user_id=None, username="system")


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: object | None = None,
    **details: Any,
) -> None:
    """Add an entry to the caller's transaction, so it commits or rolls back with the change."""
    session.add(
        AuditEntry(
            user_id=actor.user_id,
            username=actor.username,
            ip=actor.ip,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            details=details,
        )
    )


async def record_many(
    session: AsyncSession, actor: Actor, action: str, entity: str, entity_ids: list[object], **details: Any
) -> None:
    """One entry per record, written in one statement (a sync's or an import's batch)."""
    if not entity_ids:
        return
    now = utcnow()
    await session.execute(
        insert(cast(Table, AuditEntry.__table__)),
        [
            {"at": now, "user_id": actor.user_id, "username": actor.username, "ip": actor.ip, "action": action,
             "entity": entity, "entity_id": str(entity_id), "details": details}
            for entity_id in entity_ids
        ],
    )  # fmt: skip
