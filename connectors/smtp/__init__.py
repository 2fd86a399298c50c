"""SMTP: sending composed messages (aiosmtplib) over one reused connection per server."""

from connectors.smtp.errors import (
    SmtpAuthenticationFailed,
    SmtpError,
    SmtpOutcomeUnknown,
    SmtpPermanentFailure,
    SmtpRecipientsRefused,
    SmtpSecurityFailure,
    SmtpTemporaryFailure,
)
from connectors.smtp.sender import SmtpSender
from connectors.smtp.settings import SmtpSettings

__all__ = [
    "SmtpAuthenticationFailed",
    "SmtpError",
    "SmtpOutcomeUnknown",
    "SmtpPermanentFailure",
    "SmtpRecipientsRefused",
    "SmtpSecurityFailure",
    "SmtpSender",
    "SmtpSettings",
    "SmtpTemporaryFailure",
]
