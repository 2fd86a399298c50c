"""Several SMTP connections to one server, each carrying one message at a time.

One connection does one transaction at a time and waits for each reply; a mailing is sent
faster over a few connections in parallel (servers cap how many one client may hold, so the
count is configured).  Each connection is an ``SmtpSender`` with its own reconnects and
its own answer to "may this message be sent again".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from connectors.smtp.sender import SmtpSender
from connectors.smtp.settings import SmtpSettings


class SmtpPool:
    def __init__(self, settings: SmtpSettings, size: int) -> None:
        if size < 1:
            raise ValueError("an SMTP pool needs at least one connection")
        self.settings = settings
        self._senders = [SmtpSender(settings) for _ in range(size)]
        self._idle: asyncio.Queue[SmtpSender] = asyncio.Queue()
        for sender in self._senders:
            self._idle.put_nowait(sender)

    @property
    def size(self) -> int:
        return len(self._senders)

    async def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        """``SmtpSender.send`` on whichever connection is free first."""
        connection = await self._idle.get()
        try:
            return await connection.send(sender, recipients, raw)
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        await asyncio.gather(*(sender.close() for sender in self._senders))
