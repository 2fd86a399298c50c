"""Notes on a client card: what an operator or accountant wants the next person to know
("call back after 15:00", "invoices go to the branch"), kept with who wrote them and when,
and shown in the card's timeline.  Notes about one call stay on that call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import audit
from crm_core.audit import Actor
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import Base, Client, UTCDateTime, utcnow
from crm_core.timeline_items import TimelineItem

MAX_NOTE_CHARS = 10_000


class ClientNote(Base):
    __tablename__ = "client_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(200))  # the name at the time: kept if the user goes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ClientNotes:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, client_id: int, text: str, actor: Actor) -> ClientNote:
        text = text.strip()
        if not text:
            raise InvalidInput("a note needs some text", field="text")
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidInput(f"a note is at most {MAX_NOTE_CHARS} characters", field="text")
        client = await self.session.get(Client, client_id)
        if client is None or client.deleted_at is not None:
            raise NotFound(f"client {client_id} not found")
        note = ClientNote(client_id=client_id, text=text, author_id=actor.user_id, author=actor.username)
        self.session.add(note)
        await self.session.flush()
        audit.record(self.session, actor, "note", "client", client_id, note_id=note.id)
        return note


def note_item(note: ClientNote) -> TimelineItem:
    return TimelineItem(
        at=note.created_at,
        kind="note",
        id=f"note-{note.id}",
        title="Note",
        data={"id": note.id, "text": note.text, "author": note.author},
    )


async def notes(session: AsyncSession, client_id: int, before: datetime | None, limit: int) -> list[TimelineItem]:
    """The card's notes for its timeline, newest first."""
    query = select(ClientNote).where(ClientNote.client_id == client_id)
    if before is not None:
        query = query.where(ClientNote.created_at < before)
    rows = await session.scalars(query.order_by(ClientNote.created_at.desc(), ClientNote.id.desc()).limit(limit))
    return [note_item(note) for note in rows]
