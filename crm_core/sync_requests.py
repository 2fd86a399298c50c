"""Requests to sync one counterparty with 1C now, out of schedule, kept until the sync takes them.

An outside system (through an incoming webhook) or a user asks; the 1C connector works
through the pending ones in order.  A request for a card already waiting is not repeated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, UTCDateTime, utcnow


class SyncRequest(Base):
    __tablename__ = "sync_requests"
    __table_args__ = (Index("ix_sync_requests_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(150))  # "hook:site", a user name
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class SyncRequests:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def request(self, client_id: int, requested_by: str) -> tuple[SyncRequest, bool]:
        """The pending request for this card, made now if there was none; and whether it is new."""
        waiting = await self.session.scalar(
            select(SyncRequest).where(SyncRequest.client_id == client_id, SyncRequest.status == "pending")
        )
        if waiting is not None:
            return waiting, False
        created = SyncRequest(
            client_id=client_id, requested_by=requested_by, requested_at=utcnow(), status="pending", attempts=0
        )
        self.session.add(created)
        await self.session.flush()
        return created, True

    async def get(self, request_id: int) -> SyncRequest | None:
        return await self.session.get(SyncRequest, request_id)
