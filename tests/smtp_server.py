"""A real SMTP server for the tests: aiosmtpd in a thread on 127.0.0.1, recording what arrives.

The sender is tested against the wire protocol, not a mock: every envelope the server
accepted is kept with its bytes as received (dot-unstuffed, CRLF kept), and the server can
be told to misbehave the ways real ones do: ask for AUTH, refuse recipients with 550,
answer 451 to DATA, drop a connection between two messages, answer DATA too late, offer
STARTTLS (with a self-signed certificate made by the ``openssl`` command) or not.

Behaviours are read when a connection opens or a command arrives, so a test configures the
server before it sends and may change it between messages.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
SERVER_NAME = "smtp.test"


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # as received: dot-unstuffed, line ends as sent
    mail_options: tuple[str, ...]
    connection: int  # 1 for the first connection the server accepted, and so on
    tls: bool  # the message came encrypted (after STARTTLS, or implicit TLS)
    login: str | None  # the user that authenticated, if any
    at: float = 0.0  # time.monotonic() when DATA ended


@dataclass
class _Behaviour:
    credentials: tuple[str, str] | None = None
    auth_required: bool = False
    refused: dict[str, str] = field(default_factory=dict)  # lower-cased address -> reply
    data_failures: int = 0  # how many more DATA to answer with data_failure_reply
    data_failure_reply: str = "451 4.3.0 Try again later"
    drop_after: int | None = None  # messages per connection; the next MAIL FROM gets the connection closed
    data_delay: float = 0.0  # seconds before the final reply to DATA (the message is recorded first)
    starttls: ssl.SSLContext | None = None


class SmtpTestServer:
    """The running server: where it listens, what it received, how it should behave."""

    def __init__(self, implicit_tls: ssl.SSLContext | None = None) -> None:
        self.host = HOST
        self.messages: list[Received] = []  # accepted messages, in order
        self.delayed: list[Received] = []  # messages whose DATA reply was delayed (recorded before the reply)
        self.connections = 0  # connections the sender opened (the controller's own probe not counted)
        self.commands: list[str] = []  # every SMTP verb received, in order
        self._behaviour = _Behaviour()
        self._numbers: dict[int, int] = {}  # id(protocol instance) -> connection number
        self._accepted: dict[int, int] = {}  # connection number -> messages accepted on it
        self._lock = threading.Lock()
        self._running = False
        self._controller = _Controller(self, implicit_tls)

    @property
    def port(self) -> int:
        return self._controller.port

    # -- configuring ----------------------------------------------------------------

    def require_auth(self, username: str, password: str) -> None:
        """Advertise AUTH (PLAIN, LOGIN) over plain text and refuse MAIL before a good login."""
        self._behaviour.credentials = (username, password)
        self._behaviour.auth_required = True

    def refuse(self, *recipients: str, reply: str = "550 5.1.1 No such user here") -> None:
        """Answer RCPT TO for these addresses with ``reply``."""
        for recipient in recipients:
            self._behaviour.refused[recipient.lower()] = reply

    def fail_data(self, times: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next ``times`` DATA with ``reply`` after the content (nothing is recorded)."""
        self._behaviour.data_failures = times
        self._behaviour.data_failure_reply = reply

    def drop_after(self, messages: int) -> None:
        """After ``messages`` accepted on one connection, close it when the next MAIL FROM arrives,
        without a reply: the race of a server's idle timeout with a client's next message."""
        self._behaviour.drop_after = messages

    def delay_data(self, seconds: float) -> None:
        """Wait ``seconds`` before answering DATA; the message is recorded in ``delayed`` first."""
        self._behaviour.data_delay = seconds

    def offer_starttls(self, context: ssl.SSLContext) -> None:
        """Advertise STARTTLS on connections opened from now on."""
        self._behaviour.starttls = context

    # -- running --------------------------------------------------------------------

    def start(self) -> None:
        self._controller.start()
        self._running = True
        with self._lock:
            self.connections = 0  # the controller connects once itself to check the server is up
            self.commands.clear()

    def stop(self) -> None:
        """Stop listening and drop every connection; a second call does nothing."""
        if self._running:
            self._running = False
            self._controller.stop()

    # -- called from the server's thread --------------------------------------------

    def _new_connection(self, server: SMTP) -> None:
        with self._lock:
            self.connections += 1
            self._numbers[id(server)] = self.connections

    def _connection_of(self, server: SMTP) -> int:
        return self._numbers.get(id(server), 0)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self._behaviour.credentials
        if expected is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login, auth_data.password) == (expected[0].encode(), expected[1].encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        self.commands.append("MAIL")
        limit = self._behaviour.drop_after
        if limit is not None and self._accepted.get(self._connection_of(server), 0) >= limit:
            assert server.transport is not None
            server.transport.close()  # no reply: the client sees the connection go
            return "421 4.4.2 closing (never seen: the connection is already closed)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        self.commands.append("RCPT")
        reply = self._behaviour.refused.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("DATA")
        if self._behaviour.data_failures > 0:
            self._behaviour.data_failures -= 1
            return self._behaviour.data_failure_reply
        connection = self._connection_of(server)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(envelope.original_content or b""),
            mail_options=tuple(envelope.mail_options),
            connection=connection,
            tls=server.transport is not None and server.transport.get_extra_info("sslcontext") is not None,
            login=login,
            at=time.monotonic(),
        )
        if self._behaviour.data_delay:
            self.delayed.append(received)
            await asyncio.sleep(self._behaviour.data_delay)
            return "250 2.0.0 Ok: accepted late"
        self.messages.append(received)
        self._accepted[connection] = self._accepted.get(connection, 0) + 1
        return f"250 2.0.0 Ok: queued as M{len(self.messages)}"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("RSET")
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("QUIT")
        return "221 Bye"

    async def handle_NOOP(self, server: SMTP, session: Session, envelope: Envelope, arg: str) -> str:
        self.commands.append("NOOP")
        return "250 OK"

    def _smtp(self) -> SMTP:
        b = self._behaviour
        with warnings.catch_warnings():  # "AUTH without TLS": deliberate, this is a test server
            warnings.simplefilter("ignore", UserWarning)
            server = SMTP(
                self,
                hostname=SERVER_NAME,
                authenticator=self._authenticate,
                auth_required=b.auth_required,
                auth_require_tls=False,
                tls_context=b.starttls,
                require_starttls=False,
                enable_SMTPUTF8=True,
            )
        self._new_connection(server)
        return server


class _Controller(Controller):
    """Binds port 0 (a free port, no race with other tests) and builds each session from the behaviour."""

    def __init__(self, owner: SmtpTestServer, implicit_tls: ssl.SSLContext | None) -> None:
        super().__init__(owner, hostname=HOST, port=0, ssl_context=implicit_tls)
        self._owner = owner

    def factory(self) -> SMTP:
        return self._owner._smtp()

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        return server


# -- TLS --------------------------------------------------------------------------------------

_CERT_LOCK = threading.Lock()


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """``(cert.pem, key.pem)`` for localhost and 127.0.0.1, made by the openssl command; None without it.

    (The ``cryptography`` package is not installed, and no dependency is added for the tests.)"""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    with _CERT_LOCK:
        if not cert.exists():
            request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
            names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
            subprocess.run(
                [openssl, *request, "-addext", names, "-keyout", str(key), "-out", str(cert)],
                check=True,
                capture_output=True,
                timeout=60,
            )
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A fresh plain-text SMTP server (STARTTLS only when the test asks with ``offer_starttls``)."""
    server = SmtpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key; the test is skipped where no openssl command exists."""
    files = self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))
    if files is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return files


@pytest.fixture
def smtps_server(tls_files: tuple[Path, Path]) -> Iterator[SmtpTestServer]:
    """An SMTP server speaking implicit TLS (port-465 style) with the self-signed certificate."""
    server = SmtpTestServer(implicit_tls=server_tls_context(*tls_files))
    server.start()
    try:
        yield server
    finally:
        server.stop()
