"""Wiring the mailboxes to the domain: one IMAP connector per ``[[mailbox]]``, filing into the mail log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from connectors.imap import ImapConnector, MailboxSettings, MailboxStatus, MailSink
from hub.config import MailboxSettings as MailboxConfig
from hub.context import HubContext
from hub.mail_ingest import MailIngest

ConnectorFactory = Callable[[MailboxSettings, MailSink], ImapConnector]


class Mail:
    """Owns the IMAP connectors' tasks and what they file into."""

    def __init__(self, context: HubContext, connector_factory: ConnectorFactory = ImapConnector) -> None:
        self.context = context
        self.ingest = MailIngest(context)
        self._connectors = {m.name: connector_factory(imap_settings(m), self.ingest) for m in context.settings.mailbox}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name, connector in self._connectors.items():
            self._tasks.append(asyncio.create_task(connector.run(), name=f"imap:{name}"))

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._connectors.values()), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def statuses(self) -> list[MailboxStatus]:
        return [connector.status for connector in self._connectors.values()]


def imap_settings(mailbox: MailboxConfig) -> MailboxSettings:
    return MailboxSettings(
        name=mailbox.name,
        host=mailbox.host,
        port=mailbox.effective_port,
        username=mailbox.username,
        password=mailbox.password.get_secret_value(),
        security=mailbox.security,
        folders=tuple(mailbox.folders),
        poll_seconds=mailbox.poll_seconds,
        idle_seconds=mailbox.idle_seconds,
        timeout=mailbox.timeout_seconds,
        backoff_initial=mailbox.reconnect_min_seconds,
        backoff_max=mailbox.reconnect_max_seconds,
    )
