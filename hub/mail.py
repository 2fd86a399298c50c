"""Wiring the mailboxes to the domain: one IMAP connector per ``[[mailbox]]`` filing into the mail
log, and sending from the card through the mailbox's SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from connectors.imap import ImapConnector, MailboxSettings, MailboxStatus, MailSink
from hub.context import HubContext
from hub.mail_ingest import MailIngest
from hub.mail_send import MailSender
from hub.mailboxes import imap_settings

ConnectorFactory = Callable[[MailboxSettings, MailSink], ImapConnector]


class Mail:
    """Owns the IMAP connectors' tasks and what they file into."""

    def __init__(self, context: HubContext, connector_factory: ConnectorFactory = ImapConnector) -> None:
        self.context = context
        self.ingest = MailIngest(context)
        self.sender = MailSender(self.ingest, context.settings.mailbox)
        self._factory = connector_factory
        self._connectors: dict[str, ImapConnector] = {}  # while this node reads the mailboxes
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Read the mailboxes (new connectors: a stopped one stays stopped); sending needs no start."""
        for mailbox in self.context.settings.mailbox:
            connector = self._factory(imap_settings(mailbox), self.ingest)
            self._connectors[mailbox.name] = connector
            self._tasks.append(asyncio.create_task(connector.run(), name=f"imap:{mailbox.name}"))

    async def stop(self) -> None:
        """Stop reading (another node may read them now); sending goes on."""
        await asyncio.gather(*(c.stop() for c in self._connectors.values()), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._connectors.clear()

    async def close(self) -> None:
        await self.stop()
        await self.sender.close()

    def statuses(self) -> list[MailboxStatus]:
        return [connector.status for connector in self._connectors.values()]
