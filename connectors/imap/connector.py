"""Following one mailbox's folders: new mail handed over in UID order, never twice, never lost.

One connection per folder (IMAP can IDLE on one folder per connection).  Each folder is
read from its checkpoint (UIDVALIDITY and the last UID handed over, kept by the sink in the
same transaction as the messages), then followed with IDLE, re-issued before the server's
30 minutes, or by polling where the server has no IDLE.  A lost connection is retried with
capped backoff and jitter; a refused login is reported and retried rarely (a password does
not fix itself, but an administrator may fix it); each folder fails on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aioimaplib import aioimaplib

from connectors.backoff import Backoff
from connectors.imap.client import ImapSession
from connectors.imap.errors import ImapError, ImapLoginRejected
from connectors.imap.settings import MailboxSettings
from crm_core.mail.checkpoints import Checkpoint
from crm_core.mail.events import FetchedMessage, Location

log = logging.getLogger("connectors.imap")
SENT = "\\Sent"
LOGIN_RETRY_FLOOR = 60.0  # a refused login is retried, but not often


class MailSink(Protocol):
    """Where fetched mail goes: the hub files it and moves the folder's checkpoint."""

    async def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None: ...
    async def deliver(self, sent_folder: bool, messages: Sequence[FetchedMessage]) -> Any: ...


@dataclass
class FolderStatus:
    """What the API and ``/metrics`` show about one followed folder."""

    folder: str
    connected: bool = False
    idle: bool = False  # following by IDLE (else polling)
    last_uid: int = 0
    fetched: int = 0
    last_error: str | None = None
    login_rejected: bool = False
    last_checked_at: datetime | None = None


@dataclass
class MailboxStatus:
    name: str
    folders: dict[str, FolderStatus] = field(default_factory=dict)
    last_error: str | None = None
    login_rejected: bool = False

    @property
    def healthy(self) -> bool:
        return not self.login_rejected and bool(self.folders) and all(f.connected for f in self.folders.values())


class ImapConnector:
    def __init__(self, settings: MailboxSettings, sink: MailSink) -> None:
        self.settings = settings
        self.sink = sink
        self.status = MailboxStatus(settings.name)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return self.settings.name

    async def run(self) -> None:
        """Find the folders to follow, then follow each until ``stop()``."""
        folders = await self._resolve_folders()
        if folders is None:
            return
        self._tasks = [
            asyncio.create_task(self._follow(folder, sent), name=f"imap:{self.name}:{folder}")
            for folder, sent in folders.items()
        ]
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- private -------------------------------------------------------------------

    async def _resolve_folders(self) -> dict[str, bool] | None:
        """Folder -> "is the Sent folder"; the configured ones, or INBOX and the \\Sent one."""
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self._stopping.is_set():
            try:
                async with await ImapSession.open(self.settings) as session:
                    special = await session.special_folders()
                self.status.last_error, self.status.login_rejected = None, False
                sent = special.get(SENT)
                wanted = list(self.settings.folders) or ["INBOX", *([sent] if sent else [])]
                if not self.settings.folders and not sent:
                    log.warning("no folder marked \\Sent; following INBOX only", extra={"fields": self._fields()})
                folders = {folder: folder == sent for folder in dict.fromkeys(wanted)}
                self.status.folders = {f: FolderStatus(f) for f in folders}
                return folders
            except Exception as exc:  # any failure: report it, back off, try again
                await self._failed(exc, backoff)
        return None

    async def _follow(self, folder: str, sent: bool) -> None:
        status = self.status.folders[folder]
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self._stopping.is_set():
            try:
                async with await ImapSession.open(self.settings) as session:
                    status.connected, status.login_rejected, status.last_error = True, False, None
                    self.status.login_rejected = False
                    backoff.reset()
                    await self._read(session, folder, sent, status)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status.connected = False
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.login_rejected = isinstance(exc, ImapLoginRejected)
                await self._failed(exc, backoff, folder)
            finally:
                status.connected = False

    async def _read(self, session: ImapSession, folder: str, sent: bool, status: FolderStatus) -> None:
        selected = await session.select(folder)
        checkpoint = await self.sink.checkpoint(self.name, folder)
        last = 0
        if checkpoint is not None and checkpoint.uidvalidity == selected.uidvalidity:
            last = checkpoint.last_uid
        elif checkpoint is not None:
            log.warning(
                "UIDVALIDITY changed; reading the folder again (messages already logged are skipped)",
                extra={"fields": self._fields(folder=folder, was=checkpoint.uidvalidity, now=selected.uidvalidity)},
            )
        status.idle = session.has("IDLE")
        log.info("IMAP following", extra={"fields": self._fields(folder=folder, from_uid=last + 1, idle=status.idle)})
        location = Location(self.name, folder, selected.uidvalidity, 0)
        while not self._stopping.is_set():
            uids = await session.uids_after(last)
            for start in range(0, len(uids), self.settings.fetch_batch):
                batch = await session.fetch(uids[start : start + self.settings.fetch_batch])
                if batch:
                    await self.sink.deliver(
                        sent,
                        [FetchedMessage(replace(location, uid=f.uid), f.raw, f.internal_date) for f in batch],
                    )
                    last = batch[-1].uid
                    status.fetched += len(batch)
                    status.last_uid = last
            status.last_checked_at = datetime.now(UTC)
            if status.idle:
                await session.wait_for_news(self.settings.idle_seconds)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.settings.poll_seconds)

    async def _failed(self, exc: BaseException, backoff: Backoff, folder: str | None = None) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self.status.last_error = message
        fields = self._fields(folder=folder, error=message)
        if isinstance(exc, ImapLoginRejected):
            self.status.login_rejected = True
            log.error("IMAP login rejected; check the mailbox's user name and password", extra={"fields": fields})
        elif isinstance(exc, ImapError | OSError | TimeoutError | aioimaplib.AioImapException):
            log.warning("IMAP connection failed", extra={"fields": fields})
        else:  # a bug or a failing sink (the database): the folder is read again from its checkpoint
            log.exception("IMAP folder reader failed", extra={"fields": fields})
        delay = backoff.next_delay()
        if isinstance(exc, ImapLoginRejected):
            delay = max(delay, LOGIN_RETRY_FLOOR)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def _fields(self, **extra: object) -> dict[str, object]:
        return {"mailbox": self.name, **{k: v for k, v in extra.items() if v is not None}}
