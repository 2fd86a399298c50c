"""The audit log: who read, changed or exported which record, when, from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import AuditEntry


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
