"""One IMAP connection, with the few commands the hub needs, each of which always ends.

aioimaplib reports a lost connection only through a callback, has no timeout on some calls
(IDLE among them), no STARTTLS, sends folder names unquoted and recurses once per response
line.  This wrapper makes every call end with its answer, ``TimeoutError`` or
``ImapNotConnected``; quotes names; upgrades plain connections with STARTTLS; and fetches
in batches small enough for the parser.  After any failure the session is thrown away:
a command left pending would block the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aioimaplib import aioimaplib

from connectors.imap.errors import ImapCommandFailed, ImapLoginRejected, ImapNotConnected
from connectors.imap.settings import MailboxSettings

T = TypeVar("T")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SELECTED = re.compile(rb"OK \[(UIDVALIDITY|UIDNEXT) (\d+)\]")
_LISTED = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes
    internal_date: datetime | None


@dataclass(frozen=True, slots=True)
class Selected:
    uidvalidity: int
    uidnext: int | None


def _quoted(name: str) -> str:
    return aioimaplib.quoted(name)


def _internal_date(value: bytes) -> datetime | None:
    try:
        return datetime.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


class ImapSession:
    """A logged-in connection.  Use ``async with await ImapSession.open(settings)``."""

    def __init__(self, settings: MailboxSettings) -> None:
        self.settings = settings
        self.lost = asyncio.Event()
        context = _tls_context(settings) if settings.security == "tls" else None
        self._client = aioimaplib.IMAP4(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            ssl_context=context,
            conn_lost_cb=lambda _exc: self.lost.set(),
        )
        self._news = False  # an EXISTS or EXPUNGE came since the last UID SEARCH

    @classmethod
    async def open(cls, settings: MailboxSettings) -> ImapSession:
        session = cls(settings)
        try:
            await session._connect()
        except BaseException:
            session.abort()
            raise
        return session

    async def __aenter__(self) -> ImapSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- commands ------------------------------------------------------------------

    def has(self, capability: str) -> bool:
        return self._client.has_capability(capability)

    async def special_folders(self) -> dict[str, str]:
        """SPECIAL-USE flag (``\\Sent``...) -> folder name, as the server lists them."""
        if self.has("SPECIAL-USE"):
            response = await self._call(self._client.list('""', '"*" RETURN (SPECIAL-USE)'))
        else:
            response = await self._call(self._client.list('""', '"*"'))
        found: dict[str, str] = {}
        for line in response.lines:
            match = _LISTED.match(line) if isinstance(line, bytes) else None
            if match is None:
                continue
            name = match["name"].decode("utf-8", "replace").strip()
            if name.startswith('"') and name.endswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            for flag in match["flags"].decode("ascii", "replace").split():
                if flag in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All"):
                    found.setdefault(flag, name)
        return found

    async def select(self, folder: str) -> Selected:
        response = await self._call(self._client.select(_quoted(folder)))
        if response.result != "OK":
            raise ImapCommandFailed(self.settings.name, f"SELECT {folder!r}: {_text(response)}")
        values = {m[1]: int(m[2]) for line in response.lines if (m := _SELECTED.search(_bytes(line)))}
        if b"UIDVALIDITY" not in values:
            raise ImapCommandFailed(self.settings.name, f"SELECT {folder!r} gave no UIDVALIDITY")
        return Selected(values[b"UIDVALIDITY"], values.get(b"UIDNEXT"))

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid`` in the selected folder, ascending (``n:*`` always names the
        highest UID, even below ``n``, so that one is filtered out)."""
        self._news = False
        response = await self._call(self._client.uid_search(f"UID {last_uid + 1}:*", charset=None))
        if response.result != "OK":
            raise ImapCommandFailed(self.settings.name, f"UID SEARCH: {_text(response)}")
        found = [int(t) for t in _bytes(response.lines[0]).split() if t.isdigit()] if response.lines else []
        return sorted(uid for uid in set(found) if uid > last_uid)

    async def fetch(self, uids: Sequence[int]) -> list[Fetched]:
        """Whole messages (not marked as read), in UID order."""
        if not uids:
            return []
        ranges = ",".join(str(uid) for uid in uids)
        response = await self._call(self._client.uid("fetch", ranges, "(UID INTERNALDATE BODY.PEEK[])"))
        if response.result != "OK":
            raise ImapCommandFailed(self.settings.name, f"UID FETCH: {_text(response)}")
        return sorted(_fetched(response.lines), key=lambda f: f.uid)

    async def wait_for_news(self, seconds: float) -> None:
        """IDLE until the folder changes or ``seconds`` pass (then IDLE must be re-issued).

        A push can be lost by aioimaplib, so callers look for new UIDs after every return.
        """
        queue = self._client.protocol.idle_queue
        while not queue.empty():  # stale pushes of an earlier IDLE
            queue.get_nowait()
        if self._news:  # announced with an earlier answer, after its SEARCH ran
            return
        idle = await self._call(self._client.idle_start(timeout=seconds))
        try:
            while True:
                push = await self._call(self._client.wait_server_push(timeout=seconds + 30), seconds + 35)
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    return
                lines = [_bytes(line) for line in push]
                if any(line.startswith(b"BYE") for line in lines):
                    raise ImapNotConnected(self.settings.name, "the server closed the connection (BYE)")
                if any(line.endswith((b"EXISTS", b"EXPUNGE")) for line in lines):
                    return
        finally:
            if not self.lost.is_set():
                self._client.idle_done()
                await self._call(idle)

    async def append(self, folder: str, raw: bytes, flags: str = "\\Seen") -> tuple[int, int] | None:
        """Store a message in ``folder``; (UIDVALIDITY, UID) when the server says (UIDPLUS)."""
        response = await self._call(self._client.append(raw, mailbox=_quoted(folder), flags=flags))
        if response.result != "OK":
            raise ImapCommandFailed(self.settings.name, f"APPEND to {folder!r}: {_text(response)}")
        for line in response.lines:
            if match := _APPENDUID.search(_bytes(line)):
                return int(match[1]), int(match[2])
        return None

    async def close(self) -> None:
        """Log out politely (briefly), then drop the connection whatever happened."""
        try:
            if not self.lost.is_set():
                # A dying connection's logout may fail in many ways; it is closed below anyway.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._client.logout(), 5)
        finally:
            self.abort()

    def abort(self) -> None:
        transport = self._client.protocol.transport if self._client.protocol is not None else None
        if transport is not None:
            transport.abort()
        task = getattr(self._client, "_client_task", None)  # a connect still in flight
        if task is not None and not task.done():
            task.cancel()

    # -- private -------------------------------------------------------------------

    async def _connect(self) -> None:
        name = self.settings.name
        try:
            await self._client.wait_hello_from_server()
        except TimeoutError:
            raise ImapNotConnected(name, f"no IMAP greeting from {self.settings.host}:{self.settings.port}") from None
        except (OSError, aioimaplib.AioImapException) as exc:
            raise ImapNotConnected(name, f"cannot connect: {type(exc).__name__}: {exc}") from exc
        self._watch_for_news()
        if self.settings.security == "starttls":
            await self._starttls()
        response = await self._call(self._client.login(self.settings.username, self.settings.password))
        if response.result != "OK":
            raise ImapLoginRejected(name, f"login as {self.settings.username!r} refused: {_text(response)}")
        await self._call(self._client.protocol.capability())  # the clean list, as it is after login

    def _watch_for_news(self) -> None:
        """Note every EXISTS and EXPUNGE the server sends.

        aioimaplib drops one that comes with another command's answer, and Dovecot announces
        a message appended during a UID SEARCH or FETCH just that way, after a search that did
        not include it; IDLE then never mentions it again, and the message would wait for the
        IDLE to be re-issued (25 minutes).
        """
        protocol = self._client.protocol
        untagged = protocol._untagged_response

        def watching(line: bytes) -> aioimaplib.Command:
            if line.rstrip().endswith((b" EXISTS", b" EXPUNGE")):
                self._news = True
            return untagged(line)

        protocol._untagged_response = watching  # type: ignore[method-assign]

    async def _starttls(self) -> None:
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapNotConnected(self.settings.name, "the server offers no STARTTLS; refusing to log in in clear")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._call(protocol.execute(command))
        if response.result != "OK":
            raise ImapNotConnected(self.settings.name, f"STARTTLS refused: {_text(response)}")
        loop = asyncio.get_running_loop()
        protocol.transport = await self._call(
            loop.start_tls(
                protocol.transport, protocol, _tls_context(self.settings), server_hostname=self.settings.host
            )
        )
        await self._call(protocol.capability())

    async def _call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await one command; the connection's loss or the timeout ends the wait."""
        seconds = timeout or self.settings.timeout
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if self.lost.is_set():
            raise ImapNotConnected(self.settings.name, "connection lost")
        raise TimeoutError(
            f"{self.settings.name}: no answer from the IMAP server within {timeout or self.settings.timeout:g}s"
        )


def _tls_context(settings: MailboxSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _bytes(line: Any) -> bytes:
    return bytes(line) if isinstance(line, bytes | bytearray) else str(line).encode()


def _text(response: Any) -> str:
    return " ".join(_bytes(line).decode("utf-8", "replace") for line in response.lines)[:300]


def _fetched(lines: Sequence[Any]) -> list[Fetched]:
    """Pair each FETCH's literal with its UID, wherever in the response the server put the UID."""
    found: list[Fetched] = []
    uid: int | None = None
    date: datetime | None = None
    body: bytes | None = None

    def flush() -> None:
        if uid is not None:  # a {0} literal brings no data line: an empty message, still a message
            found.append(Fetched(uid, body or b"", date))

    for item in lines[:-1]:  # the last line is the tagged completion
        if isinstance(item, bytearray):
            body = bytes(item)
            continue
        line = _bytes(item)
        if _FETCH_START.match(line):
            flush()
            uid, date, body = None, None, None
        if uid is None and (match := _UID.search(line)):
            uid = int(match[1])
        if date is None and (match := _INTERNALDATE.search(line)):
            date = _internal_date(match[1])
    flush()
    return found
