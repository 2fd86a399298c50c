"""Leases: which hub node does a job that only one may do at a time (a PBX's AMI, an IMAP
folder, a 1C connection, a campaign's sending).

A lease is a row naming the job, its holder and until when it holds it; the holder renews it
well before then, and any node may take a lease whose time has run out, which is how another
node takes over from one that died.  Times are the database's clock (``now()`` on
PostgreSQL), so nodes whose clocks disagree still agree on who holds what.  A row, not an
advisory lock: a lock dies with its connection, and a node that lost its connection for a
moment would never learn that it had lost the job meanwhile; a row says so at the next renewal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import String, Table, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, UTCDateTime, utcnow


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # "ami:office", "campaign:12"
    holder: Mapped[str] = mapped_column(String(200))  # the node: "host:pid:random"
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when this holder took it


class Leases:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def now(self) -> datetime:
        """The database's clock; SQLite's is this process's (a single node's)."""
        if self.session.get_bind().dialect.name == "postgresql":
            found = await self.session.scalar(select(func.clock_timestamp()))
            assert found is not None
            return found
        return utcnow()

    async def claim(self, names: Iterable[str], holder: str, ttl: float) -> set[str]:
        """Take or renew each lease that is free, expired or already ``holder``'s, for ``ttl``
        seconds; the names ``holder`` holds afterwards."""
        wanted = sorted(set(names))
        if not wanted:
            return set()
        now = await self.now()
        until = now + timedelta(seconds=ttl)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        table = cast(Table, Lease.__table__)
        for name in wanted:  # in name order: two nodes claiming the same set never deadlock
            statement = insert(table).values(name=name, holder=holder, expires_at=until, since=now)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={
                    "holder": statement.excluded.holder,
                    "expires_at": statement.excluded.expires_at,
                    # A renewal keeps the time it was taken; a takeover starts it again.
                    "since": case((table.c.holder == holder, table.c.since), else_=statement.excluded.since),
                },
                where=(table.c.holder == holder) | (table.c.expires_at <= now),
            )
            await self.session.execute(statement)
        held = await self.session.scalars(select(Lease.name).where(Lease.name.in_(wanted), Lease.holder == holder))
        return set(held)

    async def release(self, names: Iterable[str], holder: str) -> None:
        """Give leases back at once (a node stopping): another node need not wait for them to expire."""
        wanted = list(names)
        if wanted:
            await self.session.execute(delete(Lease).where(Lease.name.in_(wanted), Lease.holder == holder))

    async def holders(self, prefix: str = "") -> dict[str, tuple[str, datetime]]:
        """The leases not yet expired: name -> (holder, expires at)."""
        now = await self.now()
        rows = await self.session.execute(
            select(Lease.name, Lease.holder, Lease.expires_at).where(
                Lease.name.startswith(prefix, autoescape=True), Lease.expires_at > now
            )
        )
        return {name: (holder, expires) for name, holder, expires in rows.all()}
