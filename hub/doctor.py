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
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import aiohttp
from sqlalchemy import select, text

from connectors.ami import AmiConnector
from connectors.ami.errors import AmiLoginRejected, AmiNotConnected
from connectors.imap.client import ImapSession
from connectors.imap.errors import ImapLoginRejected, ImapNotConnected
from connectors.onec.client import OdataClient
from connectors.onec.errors import OnecLoginRejected, OnecUnavailable
from connectors.onec.settings import OnecConnection
from connectors.smtp import SmtpSettings as SmtpConnection
from connectors.smtp.errors import SmtpAuthenticationFailed, SmtpSecurityFailure
from connectors.smtp.sender import SmtpSender
from crm_core import migrate
from crm_core.db import make_engine, make_sessionmaker
from crm_core.leases import Leases
from crm_core.subscriptions import WebhookSubscription
from hub.config import MailboxSettings, PbxSettings, Settings
from hub.mailboxes import campaign_smtp_settings, imap_settings, smtp_settings
from hub.onec import connection_of
from hub.shown_urls import without_credentials
from hub.telephony import connector_settings

TIMEOUT = 10.0  # seconds each check may take

# Why a check failed, in a word a page can put in plain language.
Reason = Literal["", "timeout", "login_rejected", "refused", "unknown_host", "tls", "unreachable", "error"]


@dataclass(frozen=True, slots=True)
class Verdict:
    item: str
    ok: bool
    detail: str
    reason: Reason = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.item:<32} {self.detail}"


@dataclass(frozen=True)
class Item:
    """One thing the hub is wired to, and its check: ``hub doctor`` runs them all, the
    connections page one at a time.  ``shown`` and ``section`` describe it without secrets."""

    kind: str  # pbx, mailbox, mailbox_smtp, bounce_mailbox, bounce_smtp, campaign_smtp, onec, webhook
    name: str
    label: str  # how ``hub doctor`` names it: "pbx office", "imap sales", ...
    section: str  # where it is configured: the TOML table, or the database for a webhook
    env: str  # the HUB_* prefix of its environment variables ("" for a webhook)
    shown: dict[str, Any]
    check: Callable[[], Awaitable[str]]  # makes a fresh check each time it is called


def configured(settings: Settings) -> list[Item]:
    """Every item of the settings (webhook targets live in the database: see ``webhook``)."""
    items: list[Item] = []
    for index, pbx in enumerate(settings.pbx):
        items.append(_pbx_item(pbx, index))
    for index, mailbox in enumerate(settings.mailbox):
        table = f'[[mailbox]] name = "{mailbox.name}"'
        sections = (table, f"[mailbox.smtp] of {table}")
        items.extend(_mailbox_items(mailbox, ("mailbox", "mailbox_smtp"), sections, f"HUB_MAILBOX__{index}__"))
    bounce = settings.campaigns.bounce_mailbox
    if bounce is not None:
        sections = ("[campaigns.bounce_mailbox]", "[campaigns.bounce_mailbox.smtp]")
        items.extend(
            _mailbox_items(bounce, ("bounce_mailbox", "bounce_smtp"), sections, "HUB_CAMPAIGNS__BOUNCE_MAILBOX__")
        )
    if settings.campaigns.smtp is not None:
        smtp = campaign_smtp_settings(settings.campaigns.smtp)
        items.append(
            Item("campaign_smtp", "campaigns", "smtp campaigns", "[campaigns.smtp]", "HUB_CAMPAIGNS__SMTP__",
                 _smtp_shown(smtp), partial(_smtp, smtp))
        )  # fmt: skip
    for index, onec in enumerate(settings.onec):
        connection = connection_of(onec)
        shown = {"url": onec.url, "user": onec.user, "kind": onec.kind, "interval_minutes": onec.interval_minutes}
        items.append(
            Item("onec", onec.name, f"1c {onec.name}", f'[[onec]] name = "{onec.name}"', f"HUB_ONEC__{index}__",
                 shown, partial(_onec, connection))
        )  # fmt: skip
    return items


def webhook(url: str, name: str | None = None, **shown: Any) -> Item:
    """A webhook target; ``name`` is the subscription's id where one is meant, else the URL."""
    shown_url = without_credentials(url)
    check = partial(_webhook, url)
    label = f"webhook {shown_url}"
    return Item("webhook", name or shown_url, label, "database", "", {"url": shown_url, **shown}, check)


async def examine(settings: Settings) -> list[Verdict]:
    """Every item's verdict, the database's first."""
    database, targets = await _database(settings)
    items = [*configured(settings), *(webhook(target) for target in targets)]
    found = await asyncio.gather(*(run(item) for item in items))
    return [database, *found]


async def run(item: Item) -> Verdict:
    """One item's verdict, within ``TIMEOUT``; never raises."""
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(item.check(), TIMEOUT)
    except TimeoutError:
        return Verdict(item.label, False, f"no answer within {TIMEOUT:g} s", "timeout")
    except Exception as exc:
        return Verdict(item.label, False, f"{type(exc).__name__}: {exc}", _reason(exc))
    return Verdict(item.label, True, f"{detail} ({(time.monotonic() - started) * 1000:.0f} ms)")


def _reason(exc: BaseException) -> Reason:
    """The failure's kind, looking through the exceptions it was raised from."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (AmiLoginRejected, ImapLoginRejected, SmtpAuthenticationFailed, OnecLoginRejected)):
            return "login_rejected"
        if isinstance(seen, (SmtpSecurityFailure, ssl.SSLError)):
            return "tls"
        if isinstance(seen, TimeoutError):
            return "timeout"
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, socket.gaierror):
            return "unknown_host"
        if isinstance(seen, aiohttp.ClientConnectorError):
            return _reason(seen.os_error)
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (OSError, AmiNotConnected, ImapNotConnected, OnecUnavailable)):
        return "unreachable"
    return "error"


def _pbx_item(pbx: PbxSettings, index: int) -> Item:
    shown = {"host": pbx.host, "port": pbx.port, "username": pbx.username, "region": pbx.region,
             "operator_channel": pbx.operator_channel, "originate_context": pbx.originate_context}  # fmt: skip
    return Item(
        "pbx", pbx.name, f"pbx {pbx.name}", f'[[pbx]] name = "{pbx.name}"', f"HUB_PBX__{index}__", shown,
        partial(_pbx, pbx),
    )  # fmt: skip


def _mailbox_items(mailbox: MailboxSettings, kinds: tuple[str, str], sections: tuple[str, str], env: str) -> list[Item]:
    """The mailbox's IMAP login, and its SMTP server's when it has one."""
    imap = imap_settings(mailbox)
    shown = {"address": mailbox.address, "host": imap.host, "port": imap.port, "security": imap.security,
             "username": imap.username, "folders": list(imap.folders) or ["INBOX"]}  # fmt: skip
    items = [Item(kinds[0], mailbox.name, f"imap {mailbox.name}", sections[0], env, shown, partial(_imap, mailbox))]
    smtp = smtp_settings(mailbox)
    if smtp is not None:
        items.append(
            Item(kinds[1], mailbox.name, f"smtp {mailbox.name}", sections[1], env + "SMTP__", _smtp_shown(smtp),
                 partial(_smtp, smtp))
        )  # fmt: skip
    return items


def _smtp_shown(smtp: SmtpConnection) -> dict[str, Any]:
    return {"host": smtp.host, "port": smtp.port, "security": smtp.security, "username": smtp.username}


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


async def _smtp(settings: SmtpConnection) -> str:
    return await SmtpSender(settings).check()


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
