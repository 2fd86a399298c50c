"""Sending raw messages through one mailbox's SMTP server, over one connection kept open.

A campaign sends hundreds of messages in a row; a new TCP + TLS + AUTH handshake for each
would be slow and looks like abuse to the server.  So one connection is kept and reused,
one message at a time (an ``asyncio.Lock``), and replaced when the server has closed it.

When a message may be sent again matters more than anything else here:

- The connection was lost before DATA (the server's idle timeout raced our MAIL FROM, a
  421): nothing was handed over, so the transaction is repeated once on a new connection.
- It was lost or timed out during DATA: the server may already have accepted the message.
  It is never resent here; ``SmtpOutcomeUnknown`` lets the caller choose.
- The server answered 4xx or 5xx: ``SmtpTemporaryFailure`` or ``SmtpPermanentFailure``, and
  the connection is RSET and kept.

aiosmtplib's ``sendmail`` would do MAIL, RCPT and DATA in one call, but then a lost
connection cannot be placed before or after DATA; the three steps are run one by one here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Sequence

import aiosmtplib

from connectors.mail.compose import ascii_address
from connectors.smtp.errors import (
    SmtpAuthenticationFailed,
    SmtpError,
    SmtpOutcomeUnknown,
    SmtpPermanentFailure,
    SmtpRecipientsRefused,
    SmtpSecurityFailure,
    SmtpTemporaryFailure,
)
from connectors.smtp.settings import SmtpSettings

log = logging.getLogger("connectors.smtp")
PROBE_AFTER_IDLE = 60.0  # seconds; a connection idle longer is checked with NOOP before the next message
QUIT_TIMEOUT = 5.0  # QUIT and RSET are courtesies: never wait long for them
_SERVICE_CLOSING = 421
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<?([^<>\s]+)>?", re.IGNORECASE | re.MULTILINE)


class _LostBeforeData(Exception):
    """The connection went away before DATA: nothing was handed over, so sending again is safe."""


class SmtpSender:
    """One SMTP connection reused for many messages, reconnected when the server dropped it."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self._tls_context = _tls_context(settings.verify_tls) if settings.security != "none" else None

    @property
    def name(self) -> str:
        return self.settings.name

    async def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        """Hand ``raw`` to the server for ``recipients`` (the envelope: Bcc included, headers not read).

        Returns ``{recipient: reply}`` for recipients the server refused while accepting the
        others (``"550 5.1.1 No such user"``; a reply starting with 4 may succeed later).
        Raises ``SmtpRecipientsRefused`` when it refused them all, and otherwise the
        ``SmtpError`` subclasses the module docstring describes; ``ValueError`` for an
        address that cannot go on an SMTP command line.  ``sender`` may be ``""`` (a bounce).
        """
        envelope_from = _envelope_address(sender, null_allowed=True)
        envelope_to = list(dict.fromkeys(_envelope_address(r) for r in recipients))
        if not envelope_to:
            raise ValueError("a message needs at least one recipient")
        fields = self._fields(message_id=_message_id(raw), recipients=len(envelope_to), size=len(raw))
        async with self._lock:
            try:
                refused, reply = await self._send_once_or_twice(envelope_from, envelope_to, raw, fields)
            except SmtpError as exc:
                log.warning("SMTP message not sent", extra={"fields": {**fields, "error": str(exc)}})
                raise
        log.debug(  # the caller logs what it sent (a card's mail, a campaign's progress): no line per message here
            "SMTP message sent",
            extra={"fields": {**fields, "refused": sorted(refused) or None, "reply": reply}},
        )
        return refused

    async def check(self) -> str:
        """Connect, say EHLO (STARTTLS and AUTH as configured) and leave: what ``hub doctor``
        asks of a server.  Raises the ``SmtpError`` that sending would meet."""
        smtp = await self._connect()
        tls = smtp.get_transport_info("sslcontext") is not None
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
        return f"{self.settings.host}:{self.settings.port}, {'TLS' if tls else 'no TLS'}" + (
            f", logged in as {self.settings.username}" if self.settings.username else ""
        )

    async def close(self) -> None:
        """QUIT politely and close; never raises.  A later ``send`` connects again."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is None:
                return
            try:
                if smtp.is_connected:
                    await smtp.quit(timeout=min(self.settings.timeout, QUIT_TIMEOUT))
            except Exception as exc:  # the server went away or answered oddly: closing anyway
                log.debug("SMTP QUIT failed", extra={"fields": self._fields(error=f"{type(exc).__name__}: {exc}")})
            finally:
                smtp.close()
        log.info("SMTP connection closed", extra={"fields": self._fields()})

    # -- private -------------------------------------------------------------------

    async def _send_once_or_twice(
        self, sender: str, recipients: list[str], raw: bytes, fields: dict[str, object]
    ) -> tuple[dict[str, str], str]:
        for attempt in (1, 2):
            smtp = await self._connection()
            try:
                return await self._transaction(smtp, sender, recipients, raw)
            except _LostBeforeData as exc:
                self._drop()
                if attempt == 2:
                    raise SmtpTemporaryFailure(
                        self.name, f"the connection was lost before DATA twice ({exc}); not sent"
                    ) from exc
                log.info(
                    "SMTP connection lost before DATA; sending again on a new one",
                    extra={"fields": {**fields, "error": str(exc)}},
                )
            finally:
                self._last_used = time.monotonic()
        raise AssertionError("unreachable")

    async def _connection(self) -> aiosmtplib.SMTP:
        """The open connection, checked; a new one when the server closed it or it stopped answering."""
        if self._smtp is not None and not self._smtp.is_connected:
            log.info("SMTP server had closed the connection", extra={"fields": self._fields()})
            self._drop()
        if self._smtp is not None and time.monotonic() - self._last_used > PROBE_AFTER_IDLE:
            try:  # an idle connection may have died silently (a NAT, a firewall): ask before using it
                await self._smtp.noop(timeout=min(self.settings.timeout, QUIT_TIMEOUT))
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("SMTP idle connection is dead", extra={"fields": self._fields(error=str(exc))})
                self._drop()
        if self._smtp is None:
            self._smtp = await self._connect()
            self._last_used = time.monotonic()
        return self._smtp

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=False,  # done below, so that a server without STARTTLS is refused, not used in clear
            tls_context=self._tls_context,
        )
        stage = "connect"
        try:
            await smtp.connect()
            if s.security == "starttls":
                stage = "EHLO"
                await smtp.ehlo()
                if not smtp.supports_extension("starttls"):
                    raise SmtpSecurityFailure(
                        self.name, "the server does not offer STARTTLS (security = starttls); nothing is sent in clear"
                    )
                stage = "STARTTLS"
                await smtp.starttls(tls_context=self._tls_context)
            stage = "EHLO"
            await smtp.ehlo()
            if s.username is not None:
                stage = "AUTH"
                if not smtp.supports_extension("auth"):
                    raise SmtpAuthenticationFailed(self.name, "the server offers no AUTH on this connection")
                await smtp.login(s.username, s.password or "")
        except SmtpError:
            smtp.close()
            raise
        except Exception as exc:
            smtp.close()
            raise self._connect_error(exc, stage) from exc
        except BaseException:  # cancelled: leave no socket behind
            smtp.close()
            raise
        tls = smtp.get_transport_info("sslcontext") is not None
        log.info(
            "SMTP connected",
            extra={"fields": self._fields(host=s.host, port=s.port, security=s.security, tls=tls, user=s.username)},
        )
        return smtp

    def _connect_error(self, exc: Exception, stage: str) -> SmtpError:
        where = f"{self.settings.host}:{self.settings.port} ({stage})"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return SmtpAuthenticationFailed(
                self.name, f"login refused: {exc.code} {exc.message}".rstrip(), code=exc.code
            )
        if _is_tls_failure(exc):
            return SmtpSecurityFailure(self.name, f"TLS with {where} failed: {_describe(exc)}")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return self._by_code(exc, f"{where} refused")
        if stage == "AUTH" and not isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)):
            return SmtpAuthenticationFailed(self.name, f"no usable AUTH method: {_describe(exc)}")
        return SmtpTemporaryFailure(self.name, f"could not talk to {where}: {_describe(exc)}; not sent")

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, sender: str, recipients: list[str], raw: bytes
    ) -> tuple[dict[str, str], str]:
        """MAIL, RCPT for each recipient, DATA: ``(refused recipients, the server's final reply)``."""
        options = [f"SIZE={len(raw)}"] if smtp.supports_extension("size") else []
        if not raw.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        refused: dict[str, str] = {}
        stage = "MAIL FROM"
        try:
            await smtp.mail(sender, options=options)
            stage = "RCPT TO"
            for recipient in recipients:
                try:
                    await smtp.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    if exc.code == _SERVICE_CLOSING:
                        raise
                    refused[recipient] = f"{exc.code} {exc.message}".rstrip()
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == _SERVICE_CLOSING:  # the server is closing this connection, not refusing the message
                raise _LostBeforeData(f"{stage}: {exc.code} {exc.message}") from exc
            await self._reset(smtp)
            raise self._by_code(exc, f"{stage} refused") from exc
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _LostBeforeData(f"{stage}: {_describe(exc)}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # a timeout before DATA: nothing was handed over
            self._drop()
            raise SmtpTemporaryFailure(self.name, f"{stage}: {_describe(exc)}; not sent") from exc
        if len(refused) == len(recipients):
            await self._reset(smtp)
            reasons = "; ".join(f"{r}: {why}" for r, why in refused.items())
            raise SmtpRecipientsRefused(self.name, f"every recipient was refused ({reasons})", refused)
        try:
            response = await smtp.data(raw)
        except aiosmtplib.SMTPResponseException as exc:  # the server answered: it did not take the message
            await self._reset(smtp)
            raise self._by_code(exc, "DATA refused") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise SmtpOutcomeUnknown(
                self.name,
                f"DATA: {_describe(exc)}; the server may have accepted the message, so it was not sent again",
            ) from exc
        return refused, response.message

    def _by_code(self, exc: aiosmtplib.SMTPResponseException, what: str) -> SmtpError:
        text = f"{what}: {exc.code} {exc.message}".rstrip()
        if 400 <= exc.code < 500:
            return SmtpTemporaryFailure(self.name, text, code=exc.code)
        return SmtpPermanentFailure(self.name, text, code=exc.code)

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """RSET after a refusal, so the connection can carry the next message; dropped if that fails."""
        try:
            await smtp.rset(timeout=min(self.settings.timeout, QUIT_TIMEOUT))
        except Exception:
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def _fields(self, **extra: object) -> dict[str, object]:
        return {"mailbox": self.name, **{k: v for k, v in extra.items() if v is not None}}


def _envelope_address(address: str, *, null_allowed: bool = False) -> str:
    """The address as MAIL FROM / RCPT TO carry it: no brackets, domain in IDNA; ``""`` is the null sender."""
    bare = address.strip().removeprefix("<").removesuffix(">").strip()
    if null_allowed and not bare and not any(c in address for c in "\r\n\x00"):
        return ""
    return ascii_address(bare)


def _message_id(raw: bytes) -> str | None:
    """The message's Message-ID, for the log line (one grep follows a message end to end)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    found = _MESSAGE_ID.search(head)
    return found[1].decode("ascii", "replace") if found else None


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (ssl.SSLError, ssl.CertificateError)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"
