"""The Dovecot harness itself: the mail tests trust it to be a real, well-behaved IMAP server."""

# The fixtures are imported by name, so every test taking them "redefines" the import.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
import time
from pathlib import Path

import pytest

import tests.dovecot as harness
from tests.dovecot import Dovecot, DovecotError, MailUser, dovecot, dovecot_user  # noqa: F401

MESSAGE = (
    b"From: =?utf-8?b?0JjQstCw0L0=?= <ivan@example.ru>\r\n"
    b"To: office@example.com\r\n"
    b"Subject: test\r\n"
    b"Message-ID: <harness-1@example.ru>\r\n"
    b"Content-Type: text/plain; charset=koi8-r\r\n"
    b"\r\n"
    b"\xf0\xd2\xc9\xd7\xc5\xd4\r\n"  # "Привет" in KOI8-R: 8-bit bytes must come back untouched
    b"..a line starting with dots\r\n"
)


def login(server: Dovecot, user: MailUser) -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.host, server.port, timeout=10)
    try:
        client.login(user.name, user.password)
    except imaplib.IMAP4.error:
        client.shutdown()
        raise
    return client


def list_special_use(client: imaplib.IMAP4) -> dict[str, set[str]]:
    typ, _ = client._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert typ == "OK"
    folders = {}
    for line in client.untagged_responses.pop("LIST", []):
        match = re.fullmatch(rb'\(([^)]*)\) "/" "?([^"]*)"?', line)
        assert match, line
        folders[match.group(2).decode()] = set(match.group(1).decode().split())
    return folders


def uid_fetch_body(client: imaplib.IMAP4, folder: str, uid: int) -> bytes:
    typ, _ = client.select(f'"{harness.encode_mailbox_name(folder)}"', readonly=True)
    assert typ == "OK"
    typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert typ == "OK"
    assert isinstance(data[0], tuple), data
    return data[0][1]


def test_login_with_the_users_password(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    client = login(dovecot, dovecot_user)
    assert client.state == "AUTH"
    client.logout()
    client = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
    started = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(dovecot_user.name, "wrong")
    # auth_failure_delay = 0 still answers on Dovecot's next 0.5 s tick, instead of after 2 s.
    assert time.monotonic() - started < 1, "auth_failure_delay should be off for the tests"
    client.logout()


def test_users_can_be_added_before_and_after_start() -> None:
    with Dovecot() as server:  # __enter__ starts it
        server.stop(graceful=False)
        early = server.add_user("Early", "pw-early")  # names are case-insensitive, like Dovecot's default
        assert early == MailUser("early", "pw-early")
        server.start()
        late = server.add_user("late@example.com", "pw-late")
        login(server, early).logout()
        login(server, late).logout()
        for n in range(5):  # one after another, each logging in at once (the same second)
            login(server, server.add_user(f"burst{n}", f"pw{n}")).logout()
        changed = server.add_user("late@example.com", "pw-LATE")  # same length, right after a login
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            login(server, late)
        login(server, changed).logout()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            login(server, MailUser("nobody", "pw"))
    unstarted = Dovecot()
    with pytest.raises(ValueError):
        unstarted.add_user("a:b", "x")
    unstarted.close()


def test_capabilities_and_special_use(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    client = login(dovecot, dovecot_user)
    typ, data = client.capability()
    assert typ == "OK"
    capabilities = set(data[0].decode().split())
    assert {"IDLE", "UIDPLUS", "SPECIAL-USE", "CONDSTORE", "QRESYNC", "MOVE"} <= capabilities
    folders = list_special_use(client)
    assert "\\Sent" in folders["Sent"]
    assert folders["INBOX"] == set()
    assert {name for name, flags in folders.items() if flags} == set(harness.DEFAULT_MAILBOXES)
    client.logout()


def test_create_folder_with_special_use_while_running(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    dovecot.create_folder(dovecot_user.name, "Отправленные", special_use="\\Sent")
    dovecot.create_folder(dovecot_user.name, "Clients/ООО Ромашка")
    client = login(dovecot, dovecot_user)
    folders = list_special_use(client)
    assert "\\Sent" in folders[harness.encode_mailbox_name("Отправленные")]
    assert "\\Sent" in folders["Sent"]  # the default one keeps its flag
    assert folders[harness.encode_mailbox_name("Clients/ООО Ромашка")] == set()
    client.logout()
    with pytest.raises(DovecotError, match="NoSuchUse"):
        dovecot.create_folder(dovecot_user.name, "Broken", special_use="\\NoSuchUse")
    assert dovecot.running
    uid = dovecot.append(dovecot_user.name, "Отправленные", MESSAGE)
    client = login(dovecot, dovecot_user)
    assert uid_fetch_body(client, "Отправленные", uid) == MESSAGE
    client.logout()


def test_append_returns_increasing_uids_and_exact_bytes(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    first = dovecot.append(dovecot_user.name, "INBOX", MESSAGE)
    second = dovecot.append(dovecot_user.name, "INBOX", MESSAGE.replace(b"harness-1", b"harness-2"), flags=["\\Seen"])
    other = dovecot.append(dovecot_user.name, "Clients", MESSAGE)  # created on the way
    assert first < second
    assert other == 1
    client = login(dovecot, dovecot_user)
    assert uid_fetch_body(client, "INBOX", first) == MESSAGE
    assert uid_fetch_body(client, "INBOX", second) == MESSAGE.replace(b"harness-1", b"harness-2")
    typ, data = client.uid("FETCH", f"{first}:{second}", "(FLAGS)")
    assert typ == "OK"
    assert b"\\Seen" not in data[0] and b"\\Seen" in data[1]
    assert uid_fetch_body(client, "Clients", other) == MESSAGE
    client.logout()


def test_recreate_folder_changes_uidvalidity(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    for folder in ("Clients", "INBOX", "Sent"):
        dovecot.append(dovecot_user.name, folder, MESSAGE)
        before = dovecot.uidvalidity(dovecot_user.name, folder)
        after = dovecot.recreate_folder(dovecot_user.name, folder)
        assert after != before
        assert dovecot.uidvalidity(dovecot_user.name, folder) == after
        assert dovecot.append(dovecot_user.name, folder, MESSAGE) == 1  # empty again, UIDs start over
    client = login(dovecot, dovecot_user)
    assert "\\Sent" in list_special_use(client)["Sent"]
    client.logout()


@pytest.mark.parametrize("graceful", [True, False])
def test_stop_and_restart_keep_port_and_mail(dovecot: Dovecot, dovecot_user: MailUser, graceful: bool) -> None:
    uid = dovecot.append(dovecot_user.name, "INBOX", MESSAGE)
    port = dovecot.port
    connected = login(dovecot, dovecot_user)
    connected.select("INBOX")
    dovecot.stop(graceful=graceful)
    assert not dovecot.running
    # Graceful: the session is told "* BYE Server shutting down."; a crash just ends the connection.
    with pytest.raises((imaplib.IMAP4.abort, OSError), match="shutting down" if graceful else None):
        connected.noop()
    connected.shutdown()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dovecot.host, port), timeout=2)
    dovecot.restart()
    assert dovecot.port == port
    client = login(dovecot, dovecot_user)
    assert uid_fetch_body(client, "INBOX", uid) == MESSAGE
    client.logout()
    assert dovecot.append(dovecot_user.name, "INBOX", MESSAGE) == uid + 1


async def test_idle_sees_new_mail_from_an_async_test(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    reader, writer = await asyncio.open_connection(dovecot.host, dovecot.port)

    async def command(line: str, done: bytes) -> list[bytes]:
        writer.write(line.encode() + b"\r\n")
        return await read_until(done)

    async def read_until(done: bytes) -> list[bytes]:
        lines = []
        while not (lines and lines[-1].startswith(done)):
            lines.append(await asyncio.wait_for(reader.readline(), 5))
            assert lines[-1], "server closed the connection"
        return lines

    try:
        assert (await reader.readline()).startswith(b"* OK")
        await command(f'a LOGIN "{dovecot_user.name}" "{dovecot_user.password}"', b"a OK")
        assert b"* 0 EXISTS\r\n" in await command("b SELECT INBOX", b"b OK")
        await command("c IDLE", b"+ ")
        started = time.monotonic()
        await asyncio.to_thread(dovecot.append, dovecot_user.name, "INBOX", MESSAGE)
        await read_until(b"* 1 EXISTS")
        # Dovecot hears of it by inotify and tells IDLE sessions after a fixed 0.5 s (it batches changes).
        assert time.monotonic() - started < 2, "IDLE should hear of new mail at once"
        assert await command("DONE", b"c OK")
    finally:
        writer.close()
        await writer.wait_closed()


def test_missing_dovecot_fails_the_test_and_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "DOVECOT_BIN", Path("/nonexistent/dovecot"))
    fixture = harness._dovecot_fixture()
    with pytest.raises(pytest.fail.Exception, match=r"/nonexistent/dovecot is missing.*scripts/services\.sh"):
        next(fixture)


def test_start_failure_reports_dovecots_log() -> None:
    server = Dovecot(mailboxes={"Bad": "\\NoSuchUse"})
    try:
        with pytest.raises(DovecotError, match="(?s)Dovecot's log.*NoSuchUse"):
            server.start(timeout=5)
    finally:
        server.close()
    assert not server.root.exists()
