"""The IMAP connector's failures, by meaning."""

from __future__ import annotations


class ImapError(Exception):
    """Anything that went wrong talking IMAP to one mailbox."""

    def __init__(self, mailbox: str, message: str) -> None:
        super().__init__(f"{mailbox}: {message}")
        self.mailbox = mailbox


class ImapLoginRejected(ImapError):
    """The server refused the user name or password: retrying soon will not help."""


class ImapNotConnected(ImapError):
    """The connection could not be made or was lost."""


class ImapCommandFailed(ImapError):
    """The server answered NO or BAD (a folder that does not exist, a refused APPEND)."""
