"""The SMTP connector's failures, by what the caller should do about them.

- ``SmtpTemporaryFailure``: not sent, try again later (4xx, a lost connection, a timeout).
  Its subclass ``SmtpOutcomeUnknown``: the message may have been accepted; retrying may
  deliver it twice.
- ``SmtpPermanentFailure``: the server refused the message (5xx); the same bytes will be
  refused again.
- ``SmtpRecipientsRefused``: every recipient was refused; ``refused`` says why for each.
- ``SmtpAuthenticationFailed`` and ``SmtpSecurityFailure``: the server or its settings are
  wrong (password, certificate, no STARTTLS); nothing will be sent until someone fixes them.
"""

from __future__ import annotations

from collections.abc import Mapping


class SmtpError(Exception):
    """Anything that went wrong sending through one mailbox's SMTP server."""

    def __init__(self, name: str, message: str, *, code: int | None = None) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.code = code  # the server's reply code, when it answered


class SmtpAuthenticationFailed(SmtpError):
    """The server refused the user name or password (or offers no AUTH): retrying soon will not help."""


class SmtpSecurityFailure(SmtpError):
    """TLS could not be had as configured: no STARTTLS offered, an untrusted certificate, a failed
    handshake.  Nothing is sent in clear instead."""


class SmtpRecipientsRefused(SmtpError):
    """The server refused every recipient; ``refused`` maps each to the server's reply ("550 5.1.1 ...")."""

    def __init__(self, name: str, message: str, refused: Mapping[str, str]) -> None:
        super().__init__(name, message)
        self.refused = dict(refused)

    @property
    def temporary(self) -> bool:
        """Every refusal was a 4xx (greylisting, a full mailbox): the same recipients may be tried later."""
        return all(reason.startswith("4") for reason in self.refused.values())


class SmtpTemporaryFailure(SmtpError):
    """Not sent this time (a 4xx reply, a lost connection, a timeout): worth retrying later."""


class SmtpOutcomeUnknown(SmtpTemporaryFailure):
    """The connection was lost or timed out during DATA: the server may have accepted the message.

    Retrying may deliver it twice: the caller decides whether a duplicate is better than a loss."""


class SmtpPermanentFailure(SmtpError):
    """The server refused the message with a 5xx: the same message will be refused again."""
