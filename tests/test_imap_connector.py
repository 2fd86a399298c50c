"""Following real mailboxes on a real Dovecot: new mail logged at once, nothing twice, nothing lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.imap import ImapConnector, MailboxSettings
from connectors.imap.client import ImapSession
from crm_core.mail.models import MailCopy, MailMessage, MailQuarantine
from hub.context import HubContext
from hub.mail_ingest import MailIngest
from tests.dovecot import Dovecot, MailUser
from tests.mail_corpus import corpus
from tests.smtp_server import self_signed_cert


def _message(subject: str = "Счёт на оплату", sender: str = "ivan@client.example") -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Иван <{sender}>"
    mail["To"] = "sales@hub.example"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="client.example")
    mail.set_content("Добрый день! Счёт во вложении.")
    return mail.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _settings(dovecot: Dovecot, user: MailUser, **changes: Any) -> MailboxSettings:
    values: dict[str, Any] = {
        "name": "sales",
        "host": dovecot.host,
        "port": dovecot.port,
        "username": user.name,
        "password": user.password,
        "security": "none",
        "timeout": 5.0,
        "backoff_initial": 0.05,
        "backoff_max": 0.5,
        "idle_seconds": 60.0,
    }
    values.update(changes)
    return MailboxSettings(**values)


@asynccontextmanager
async def following(context: HubContext, settings: MailboxSettings) -> AsyncIterator[ImapConnector]:
    connector = ImapConnector(settings, MailIngest(context))
    task = asyncio.create_task(connector.run())
    try:
        yield connector
    finally:
        await connector.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _count(context: HubContext, table: Any) -> int:
    async with context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> float:
    """Seconds until ``await check()`` is true."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _append(dovecot: Dovecot, user: MailUser, raw: bytes, folder: str = "INBOX") -> int:
    return await asyncio.to_thread(dovecot.append, user.name, folder, raw)


async def _idle(connector: ImapConnector, folder: str = "INBOX") -> bool:
    status = connector.status.folders.get(folder)
    return status is not None and status.connected and status.idle and status.last_checked_at is not None


async def test_mail_appended_while_idling_is_logged_within_two_seconds(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    async with following(hub_context, _settings(dovecot, dovecot_user)) as connector:
        await _eventually(lambda: _idle(connector))
        await asyncio.sleep(0.2)  # well inside IDLE now
        await _append(dovecot, dovecot_user, _message())
        took = await _eventually(lambda: _count_is(hub_context, MailMessage, 1), timeout=5)
    assert took < 2.0, f"logged after {took:.2f} s"
    assert set(connector.status.folders) == {"INBOX", "Sent"}  # Sent found by its SPECIAL-USE flag


async def _count_is(context: HubContext, table: Any, expected: int) -> bool:
    return await _count(context, table) == expected


async def test_a_restart_of_the_hub_logs_nothing_twice(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    for i in range(3):
        await _append(dovecot, dovecot_user, _message(f"Письмо {i}"))
    settings = _settings(dovecot, dovecot_user)
    async with following(hub_context, settings):
        await _eventually(lambda: _count_is(hub_context, MailMessage, 3))
    await _append(dovecot, dovecot_user, _message("После перезапуска"))
    async with following(hub_context, settings) as connector:
        await _eventually(lambda: _count_is(hub_context, MailMessage, 4))
        await _eventually(lambda: _idle(connector))
    assert await _count(hub_context, MailCopy) == 4


async def test_a_changed_uidvalidity_duplicates_nothing(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    first, second = _message("Первое"), _message("Второе")
    for raw in (first, second):
        await _append(dovecot, dovecot_user, raw)
    settings = _settings(dovecot, dovecot_user)
    async with following(hub_context, settings):
        await _eventually(lambda: _count_is(hub_context, MailMessage, 2))
    await asyncio.to_thread(dovecot.recreate_folder, dovecot_user.name, "INBOX")  # restored from a backup, say
    for raw in (first, second, _message("Третье")):
        await _append(dovecot, dovecot_user, raw)
    async with following(hub_context, settings):
        await _eventually(lambda: _count_is(hub_context, MailMessage, 3))
        await _eventually(lambda: _count_is(hub_context, MailCopy, 5))  # 2 under the old UIDVALIDITY, 3 new


async def test_dovecot_going_away_mid_session_loses_nothing(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    async with following(hub_context, _settings(dovecot, dovecot_user)) as connector:
        await _eventually(lambda: _idle(connector))
        await _append(dovecot, dovecot_user, _message("До остановки"))
        await _eventually(lambda: _count_is(hub_context, MailMessage, 1))
        await asyncio.to_thread(dovecot.stop)
        await _eventually(lambda: _disconnected(connector))
        assert connector.status.folders["INBOX"].last_error
        await asyncio.to_thread(dovecot.restart)
        for i in range(2):
            await _append(dovecot, dovecot_user, _message(f"После запуска {i}"))
        await _eventually(lambda: _count_is(hub_context, MailMessage, 3), timeout=15)
        await _eventually(lambda: _idle(connector))
    assert await _count(hub_context, MailCopy) == 3


async def _disconnected(connector: ImapConnector) -> bool:
    return not connector.status.folders["INBOX"].connected


async def test_hostile_and_broken_mail_is_logged_or_quarantined_and_the_connector_goes_on(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    appended = 0
    for specimen in corpus():
        if not specimen.raw.strip():
            continue  # an IMAP server stores no empty message; the parser's refusal is tested on its own
        await _append(dovecot, dovecot_user, specimen.raw)
        appended += 1
    async with following(hub_context, _settings(dovecot, dovecot_user, fetch_batch=10)) as connector:
        await _eventually(lambda: _all_read(hub_context, appended), timeout=60)
        await _append(dovecot, dovecot_user, _message("После корпуса"))
        await _eventually(lambda: _all_read(hub_context, appended + 1), timeout=10)
        assert connector.status.folders["INBOX"].connected
    assert await _count(hub_context, MailQuarantine) >= 1  # the garbage


async def _all_read(context: HubContext, expected: int) -> bool:
    return await _count(context, MailCopy) + await _count(context, MailQuarantine) == expected


async def test_a_refused_login_is_reported_and_the_other_mailboxes_go_on(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    wrong = _settings(dovecot, dovecot_user, name="personal", password="wrong")
    async with following(hub_context, wrong) as broken, following(hub_context, _settings(dovecot, dovecot_user)) as ok:
        await _eventually(lambda: _rejected(broken))
        await _eventually(lambda: _idle(ok))
        await _append(dovecot, dovecot_user, _message())
        await _eventually(lambda: _count_is(hub_context, MailMessage, 1))
    assert "login" in (broken.status.last_error or "").lower()


async def _rejected(connector: ImapConnector) -> bool:
    return connector.status.login_rejected


async def test_mail_in_the_sent_folder_is_outgoing(
    hub_context: HubContext, dovecot: Dovecot, dovecot_user: MailUser, tmp_path: Path
) -> None:
    await _append(dovecot, dovecot_user, _message("Наш ответ"), folder="Sent")
    async with following(hub_context, _settings(dovecot, dovecot_user)):
        await _eventually(lambda: _count_is(hub_context, MailMessage, 1))
    async with hub_context.reading() as session:
        assert await session.scalar(select(MailMessage.direction)) == "out"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    files = self_signed_cert(tmp_path)
    if files is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    for path in files:
        path.chmod(0o644)
    return files


@pytest.fixture
def tls_dovecot(certificate: tuple[Path, Path]) -> Iterator[Dovecot]:
    server = Dovecot(tls=certificate)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_starttls_is_used_and_verified_and_never_skipped(
    hub_context: HubContext, tls_dovecot: Dovecot, dovecot: Dovecot, certificate: tuple[Path, Path]
) -> None:
    user = tls_dovecot.add_user("sales", "secret-1")
    settings = _settings(tls_dovecot, user, security="starttls", ca_file=str(certificate[0]))
    async with following(hub_context, settings) as connector:
        await _eventually(lambda: _idle(connector))
        await _append(tls_dovecot, user, _message())
        await _eventually(lambda: _count_is(hub_context, MailMessage, 1))
    assert "TLS" in tls_dovecot.log()  # the session was encrypted

    plain_only = dovecot.add_user("other", "secret-2")  # a server that offers no STARTTLS
    async with following(hub_context, _settings(dovecot, plain_only, security="starttls")) as refusing:
        await _eventually(lambda: _failed_with(refusing, "STARTTLS"))
    assert "Login: user=<other>" not in dovecot.log()  # the password never went out in clear


async def _failed_with(connector: ImapConnector, text: str) -> bool:
    return text in (connector.status.last_error or "")


async def test_a_server_without_idle_is_polled(hub_context: HubContext) -> None:
    with Dovecot(capability="IMAP4rev1 LITERAL+ UIDPLUS SPECIAL-USE") as server:
        user = server.add_user("sales", "secret")
        async with following(hub_context, _settings(server, user, poll_seconds=0.3)) as connector:
            await _eventually(lambda: _polling(connector))
            await _append(server, user, _message())
            took = await _eventually(lambda: _count_is(hub_context, MailMessage, 1))
    assert took < 2.0


async def _polling(connector: ImapConnector) -> bool:
    status = connector.status.folders.get("INBOX")
    return status is not None and status.connected and not status.idle and status.last_checked_at is not None


async def test_mail_announced_with_a_search_answer_ends_the_next_idle_at_once(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    """Dovecot tells of a message appended before a UID SEARCH only after that search (which
    missed it), and never again in IDLE: the session must remember the news itself."""
    await _append(dovecot, dovecot_user, _message("Первое"))
    async with await ImapSession.open(_settings(dovecot, dovecot_user)) as session:
        await session.select("INBOX")
        await _append(dovecot, dovecot_user, _message("Второе"))
        assert await session.uids_after(0) == [1]  # the search ran before Dovecot saw the second
        started = time.monotonic()
        await session.wait_for_news(10)
        assert time.monotonic() - started < 1
        assert await session.uids_after(1) == [2]
