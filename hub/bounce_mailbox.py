"""The bounce mailbox (``[campaigns.bounce_mailbox]``) followed over IMAP: one connector filing
bounces, complaints and unsubscribe mails through ``BounceIngest``."""

from __future__ import annotations

import asyncio

from connectors.imap import ImapConnector, MailboxStatus
from hub.bounce_ingest import BounceIngest
from hub.config import MailboxSettings
from hub.context import HubContext
from hub.mailboxes import imap_settings


class BounceMailbox:
    def __init__(self, context: HubContext, mailbox: MailboxSettings, soft_limit: int) -> None:
        self.ingest = BounceIngest(context, soft_limit)
        self.mailbox = mailbox
        self.connector = ImapConnector(imap_settings(mailbox), self.ingest)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.connector.run(), name=f"imap:{self.connector.name}")

    async def stop(self) -> None:
        await self.connector.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connector = ImapConnector(imap_settings(self.mailbox), self.ingest)  # a stopped one stays stopped

    @property
    def status(self) -> MailboxStatus:
        return self.connector.status
