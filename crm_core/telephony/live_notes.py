"""Notes written on a call while it lasts: the call's log row is only written when it ends.

A note is kept by the call's (PBX, Linkedid) until the row exists, then moved onto the row.
Both sides upsert the same key in ``live_call_notes``, so on PostgreSQL one waits for the
other's commit (a unique-key conflict waits for the transaction that holds it) and neither
can miss the other: the note lands on the row whichever commits first, on any hub node.
SQLite runs one writer at a time, so the same statements are trivially safe there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Text, bindparam, delete, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import audit
from crm_core.audit import Actor
from crm_core.models import Base, Call, UTCDateTime, utcnow
from crm_core.telephony.events import CallKey

# A note whose call was never logged (the hub lost the call) is dropped after this long.
FORGOTTEN_AFTER = timedelta(days=7)


class LiveCallNote(Base):
    """The note on a call not logged yet; the row goes once the note is on the call's log row."""

    __tablename__ = "live_call_notes"

    pbx: Mapped[str] = mapped_column(String(64), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def _upsert(session: AsyncSession, *, keep_notes: bool) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE on (pbx, linkedid): waits for whoever holds that key."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(LiveCallNote)
    table = LiveCallNote.__table__
    if keep_notes:  # the call log's side: lock the row, leave the operator's words alone
        values = {"updated_at": table.c.updated_at}
    else:
        excluded = statement.excluded
        values = {"notes": excluded.notes, "author": excluded.author, "updated_at": excluded.updated_at}
    return statement.on_conflict_do_update(index_elements=[table.c.pbx, table.c.linkedid], set_=values)


def _key_in(keys: list[CallKey]) -> Any:
    return tuple_(LiveCallNote.pbx, LiveCallNote.linkedid).in_([(k.pbx, k.linkedid) for k in keys])


# Puts a kept note on its call's row; executed once per note, in one round trip.
_ON_ROW = update(Call).where(Call.id == bindparam("call_id")).values(notes=bindparam("text"))


async def write_live_note(session: AsyncSession, key: CallKey, notes: str, actor: Actor) -> int | None:
    """The operator's note on a call, in progress or over; returns the call's id when its log
    row exists already (the note is on it now), None while it is kept for the row to come."""
    now = utcnow()
    await session.execute(delete(LiveCallNote).where(LiveCallNote.updated_at < now - FORGOTTEN_AFTER))
    await session.execute(
        _upsert(session, keep_notes=False),
        {"pbx": key.pbx, "linkedid": key.linkedid, "notes": notes, "author": actor.username, "updated_at": now},
    )
    call_id = await session.scalar(
        update(Call)
        .where(Call.pbx == key.pbx, Call.linkedid == key.linkedid)
        .values(notes=notes)
        .returning(Call.id)
        .execution_options(synchronize_session=False)
    )
    if call_id is not None:
        await session.execute(delete(LiveCallNote).where(_key_in([key])))
        audit.record(session, actor, "update", "call", call_id, changed=["notes"])
    else:
        audit.record(session, actor, "note", "live_call", str(key))
    return call_id


async def merge_live_notes(session: AsyncSession, logged: Mapping[CallKey, int]) -> dict[int, str]:
    """Moves the notes kept for these just-logged calls onto their rows; returns call id -> note.

    Called in the transaction that inserted the rows, so a note written at the same moment
    either waits for it (and then finds the row) or is seen here."""
    if not logged:
        return {}
    now = utcnow()
    rows = [{"pbx": k.pbx, "linkedid": k.linkedid, "notes": "", "author": "", "updated_at": now} for k in logged]
    kept = await session.execute(
        _upsert(session, keep_notes=True).returning(LiveCallNote.pbx, LiveCallNote.linkedid, LiveCallNote.notes),
        rows,
    )
    notes = {logged[CallKey(pbx, linkedid)]: text for pbx, linkedid, text in kept if text}
    if notes:
        connection = await session.connection()
        await connection.execute(_ON_ROW, [{"call_id": call_id, "text": text} for call_id, text in notes.items()])
    await session.execute(delete(LiveCallNote).where(_key_in(list(logged))))
    return notes
