"""Each ``[[mailbox]]`` of the settings, mapped onto what the IMAP and SMTP connectors take.

The connectors know nothing of the hub's configuration layer; this is the one place that
translates it (and where a mailbox's SMTP login defaults to its IMAP one).
"""

from __future__ import annotations

from connectors.imap import MailboxSettings as ImapSettings
from connectors.smtp import SmtpSettings
from hub.config import MailboxSettings
from hub.config import SmtpSettings as ConfiguredSmtp


def imap_settings(mailbox: MailboxSettings) -> ImapSettings:
    return ImapSettings(
        name=mailbox.name,
        host=mailbox.host,
        port=mailbox.effective_port,
        username=mailbox.username,
        password=mailbox.password.get_secret_value(),
        security=mailbox.security,
        folders=tuple(mailbox.folders),
        poll_seconds=mailbox.poll_seconds,
        idle_seconds=mailbox.idle_seconds,
        timeout=mailbox.timeout_seconds,
        backoff_initial=mailbox.reconnect_min_seconds,
        backoff_max=mailbox.reconnect_max_seconds,
        ca_file=str(mailbox.tls_ca_file) if mailbox.tls_ca_file else None,
    )


def smtp_settings(mailbox: MailboxSettings) -> SmtpSettings | None:
    smtp = mailbox.smtp
    if smtp is None:
        return None
    return SmtpSettings(
        name=mailbox.name,
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username or mailbox.username,
        password=(smtp.password or mailbox.password).get_secret_value(),
        timeout=smtp.timeout_seconds,
    )


def campaign_smtp_settings(smtp: ConfiguredSmtp) -> SmtpSettings:
    """``[campaigns.smtp]``: a relay for mailings, with its own login or none."""
    return SmtpSettings(
        name="campaigns",
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        timeout=smtp.timeout_seconds,
    )
