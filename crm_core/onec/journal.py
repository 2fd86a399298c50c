"""What a sync run writes besides the cards: the run itself, its log, conflicts and proposals.

A run row says a sync is going on (one per connection: a partial unique index), with a
heartbeat so that a run whose process died is recognised and closed by the next one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import utcnow
from crm_core.onec.merge import FieldConflict
from crm_core.onec.models import (
    ConflictStatus,
    OnecConflict,
    OnecLogEntry,
    OnecProposal,
    OnecRun,
    ProposalStatus,
    RunStatus,
)
from crm_core.outbox import Event, publish

STALE_AFTER = timedelta(minutes=3)  # a run not heard from for this long died with its process


class SyncBusy(Exception):
    """Another sync of this connection is running."""


@dataclass(slots=True)
class LogLine:
    action: str  # created, updated, linked, proposed, conflict, skipped, failed, gone
    side: str  # "hub", "1c", or "" when nothing was written
    client_id: int | None
    ref_key: str | None
    fields: list[str] = field(default_factory=list)
    detail: str = ""


async def start_run(session: AsyncSession, connection: str, trigger: str) -> OnecRun:
    """A new running run, after closing one whose process stopped answering; SyncBusy if one is alive."""
    now = utcnow()
    await session.execute(
        update(OnecRun)
        .where(OnecRun.connection == connection, OnecRun.status == RunStatus.running,
               OnecRun.heartbeat_at < now - STALE_AFTER)
        .values(status=RunStatus.failed, finished_at=now, error="interrupted: the process running it stopped")
    )  # fmt: skip
    run = OnecRun(connection=connection, trigger=trigger, status=RunStatus.running, started_at=now, heartbeat_at=now,
                  counts={}, phase="starting", done=0, total=0)  # fmt: skip
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:
        raise SyncBusy(f"a sync of {connection} is already running") from None
    return run


async def progress(session: AsyncSession, run_id: int, phase: str, done: int, total: int) -> None:
    await session.execute(
        update(OnecRun).where(OnecRun.id == run_id).values(phase=phase, done=done, total=total, heartbeat_at=utcnow())
    )


async def finish_run(session: AsyncSession, run_id: int, counts: Counter[str], error: str | None) -> None:
    await session.execute(
        update(OnecRun)
        .where(OnecRun.id == run_id)
        .values(
            status=RunStatus.failed if error else RunStatus.done,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
            counts=dict(counts),
            error=error,
            phase="finished",
        )
    )


async def write_log(session: AsyncSession, run_id: int, lines: list[LogLine]) -> None:
    if not lines:
        return
    now = utcnow()
    rows = [
        {"run_id": run_id, "at": now, "action": line.action, "side": line.side, "client_id": line.client_id,
         "ref_key": line.ref_key, "fields": line.fields, "detail": line.detail}
        for line in lines
    ]  # fmt: skip
    await session.execute(insert(cast(Table, OnecLogEntry.__table__)), rows)


async def conflicts_of(session: AsyncSession, link_ids: list[int]) -> dict[int, list[OnecConflict]]:
    """Open and resolved (not yet applied) conflicts of these links."""
    found: dict[int, list[OnecConflict]] = {}
    if not link_ids:
        return found
    rows = await session.scalars(
        select(OnecConflict).where(
            OnecConflict.link_id.in_(link_ids),
            OnecConflict.status.in_((ConflictStatus.open, ConflictStatus.resolved)),
        )
    )
    for conflict in rows:
        found.setdefault(conflict.link_id, []).append(conflict)
    return found


async def record_conflicts(
    session: AsyncSession,
    connection: str,
    link_id: int,
    client_id: int,
    ref_key: str,
    found: list[FieldConflict],
    existing: list[OnecConflict],
) -> int:
    """Open a conflict per field not already open; refresh the values of those that are.  Returns how
    many are new (each announced with a ``sync.conflict`` event)."""
    open_by_field = {c.field: c for c in existing if c.status is ConflictStatus.open}
    events = []
    for item in found:
        current = open_by_field.get(item.field)
        if current is not None:
            current.hub_value, current.onec_value = item.hub, item.onec
            continue
        conflict = OnecConflict(
            connection=connection, link_id=link_id, client_id=client_id, field=item.field, base_value=item.base,
            hub_value=item.hub, onec_value=item.onec, status=ConflictStatus.open, created_at=utcnow(),
        )  # fmt: skip
        session.add(conflict)
        await session.flush()
        events.append(
            Event(
                "sync.conflict",
                {"conflict_id": conflict.id, "connection": connection, "client_id": client_id, "ref_key": ref_key,
                 "field": item.field, "base": item.base, "hub": item.hub, "onec": item.onec},
                client_id,
            )
        )  # fmt: skip
    await publish(session, *events)
    return len(events)


async def propose(
    session: AsyncSession, connection: str, ref_key: str, client_ids: list[int], reason: str, name: str, inn: str | None
) -> None:
    known = set(
        await session.scalars(
            select(OnecProposal.client_id).where(OnecProposal.connection == connection, OnecProposal.ref_key == ref_key)
        )
    )
    for client_id in client_ids:
        if client_id not in known:
            session.add(
                OnecProposal(connection=connection, ref_key=ref_key, client_id=client_id, reason=reason,
                             onec_name=name, onec_inn=inn, status=ProposalStatus.open, created_at=utcnow())
            )  # fmt: skip
    await session.flush()


def synced_event(connection: str, client_id: int, ref_key: str, action: str, side: str, fields: list[str]) -> Event:
    payload: dict[str, Any] = {"connection": connection, "client_id": client_id, "ref_key": ref_key,
                               "action": action, "side": side, "fields": fields}  # fmt: skip
    return Event("counterparty.synced", payload, client_id)
