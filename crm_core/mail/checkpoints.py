"""How far each followed folder has been read, so a restart fetches only what is new.

A checkpoint moves in the same transaction as the messages it covers: after a crash either
both are stored or neither is, and the refetch finds them by their place (``MailLog``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.mail.models import MailCheckpoint


@dataclass(frozen=True, slots=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int


class Checkpoints:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, mailbox: str, folder: str) -> Checkpoint | None:
        row = await self.session.get(MailCheckpoint, (mailbox, folder))
        return Checkpoint(row.uidvalidity, row.last_uid) if row is not None else None

    async def advance(self, mailbox: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Record ``uid`` as read; a new UIDVALIDITY starts the folder over."""
        row = await self.session.get(MailCheckpoint, (mailbox, folder))
        if row is None:
            self.session.add(MailCheckpoint(mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, last_uid=uid))
        elif row.uidvalidity != uidvalidity:
            row.uidvalidity, row.last_uid = uidvalidity, uid
        elif uid > row.last_uid:
            row.last_uid = uid
        await self.session.flush()
