"""IMAP: following mailboxes (aioimaplib) and storing sent mail in them (APPEND)."""

from connectors.imap.client import ImapSession
from connectors.imap.connector import FolderStatus, ImapConnector, MailboxStatus, MailSink
from connectors.imap.errors import ImapCommandFailed, ImapError, ImapLoginRejected, ImapNotConnected
from connectors.imap.settings import MailboxSettings

__all__ = [
    "FolderStatus",
    "ImapCommandFailed",
    "ImapConnector",
    "ImapError",
    "ImapLoginRejected",
    "ImapNotConnected",
    "ImapSession",
    "MailSink",
    "MailboxSettings",
    "MailboxStatus",
]
