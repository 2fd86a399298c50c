"""``hub doctor``: is everything the hub is wired to reachable and willing, one plain verdict
per item.

Each check does what the hub itself would do first, with the hub's own connectors: the
database answers and its schema is current; each PBX takes the AMI login; each mailbox takes
the IMAP login and has its folders; each SMTP server takes EHLO (STARTTLS and AUTH as
configured); each 1C publication serves its metadata; each webhook target answers HTTP.  The
checks run at once, each within ``TIMEOUT``; nothing is sent, filed or changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import select, text

from connectors.ami import AmiConnector
from connectors.imap.client import ImapSession
from connectors.onec.client import OdataClient
from connectors.onec.settings import OnecConnection
from connectors.smtp.sender import SmtpSender
from crm_core import migrate
from crm_core.db import make_engine, make_sessionmaker
from crm_core.leases import Leases
from crm_core.subscriptions import WebhookSubscription
from hub.config import MailboxSettings, PbxSettings, Settings
from hub.mailboxes import campaign_smtp_settings, imap_settings, smtp_settings
from hub.onec import connection_of
from hub.telephony import connector_settings

TIMEOUT = 10.0  # seconds each check may take


@dataclass(frozen=True, slots=True)
class Verdict:
    item: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.item:<32} {self.detail}"


async def examine(settings: Settings) -> list[Verdict]:
    """Every item's verdict, the database's first."""
    database, targets = await _database(settings)
    checks: list[tuple[str, Awaitable[str]]] = []
    for pbx in settings.pbx:
        checks.append((f"pbx {pbx.name}", _pbx(pbx)))
    mailboxes = list(settings.mailbox)
    if settings.campaigns.bounce_mailbox is not None:
        mailboxes.append(settings.campaigns.bounce_mailbox)
    for mailbox in mailboxes:
        checks.append((f"imap {mailbox.name}", _imap(mailbox)))
        smtp = smtp_settings(mailbox)
        if smtp is not None:
            checks.append((f"smtp {mailbox.name}", SmtpSender(smtp).check()))
    if settings.campaigns.smtp is not None:
        checks.append(("smtp campaigns", SmtpSender(campaign_smtp_settings(settings.campaigns.smtp)).check()))
    for onec in settings.onec:
        checks.append((f"1c {onec.name}", _onec(connection_of(onec))))
    for target in targets:
        checks.append((f"webhook {target}", _webhook(target)))
    found = await asyncio.gather(*(_verdict(item, check) for item, check in checks))
    return [database, *found]


async def _verdict(item: str, check: Awaitable[str]) -> Verdict:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(check, TIMEOUT)
    except TimeoutError:
        return Verdict(item, False, f"no answer within {TIMEOUT:g} s")
    except Exception as exc:
        return Verdict(item, False, f"{type(exc).__name__}: {exc}")
    return Verdict(item, True, f"{detail} ({(time.monotonic() - started) * 1000:.0f} ms)")


async def _database(settings: Settings) -> tuple[Verdict, list[str]]:
    """The database's verdict, and the webhook targets it holds."""
    url = settings.effective_database_url
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT sqlite_version()" if url.startswith("sqlite")
                                               else "SHOW server_version"))).scalar_one()  # fmt: skip
        revision = await migrate.current_revision(engine)
        if revision != migrate.head_revision():
            detail = f"schema at {revision or 'nothing'}, the code needs {migrate.head_revision()}: run hub db upgrade"
            return Verdict("database", False, detail), []
        async with make_sessionmaker(engine)() as session:
            urls = (await session.scalars(select(WebhookSubscription.url).where(WebhookSubscription.active))).all()
            holders = await Leases(session).holders()
    except Exception as exc:
        return Verdict("database", False, f"{type(exc).__name__}: {exc}"), []
    finally:
        await engine.dispose()
    kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    nodes = len({holder for holder, _ in holders.values()})
    detail = f"{kind} {version}, schema current ({revision}); jobs held by {nodes} node(s)"
    return Verdict("database", True, detail), sorted(set(urls))


async def _pbx(pbx: PbxSettings) -> str:
    """The AMI login, with the connector the hub uses (it resyncs the calls in progress too)."""

    async def ignore(*_: Any) -> None:
        return None

    connector = AmiConnector(connector_settings(pbx), ignore, ignore)
    task = asyncio.create_task(connector.run())
    try:
        while not connector.connected:
            if connector.last_error is not None:  # the first attempt's failure is the verdict
                raise connector.last_error
            if task.done():
                raise RuntimeError(f"the connector stopped: {connector.last_error}")
            await asyncio.sleep(0.05)
        return f"{pbx.host}:{pbx.port}, logged in as {pbx.username}"
    finally:
        await connector.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _imap(mailbox: MailboxSettings) -> str:
    settings = imap_settings(mailbox)
    async with await ImapSession.open(settings) as session:
        folders = list(settings.folders) or ["INBOX"]
        for folder in folders:
            await session.select(folder)
    return f"{settings.host}:{settings.port}, logged in as {settings.username}; selected {', '.join(folders)}"


async def _onec(connection: OnecConnection) -> str:
    client = OdataClient(connection)
    try:
        metadata = await client.metadata()
    finally:
        await client.close()
    return f"{connection.url}: metadata served ({len(metadata) // 1024:,} KB)"


async def _webhook(url: str) -> str:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.head(url, allow_redirects=False) as response:
        if response.status >= 500:
            raise RuntimeError(f"answers HTTP {response.status}")
        return f"answers HTTP {response.status}"
