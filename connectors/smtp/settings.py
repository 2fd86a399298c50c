"""What the SMTP connector needs to know about one outgoing server; mapped from a mailbox's ``[mailbox.smtp]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    name: str  # the mailbox this server sends for, in logs and errors
    host: str
    port: int
    security: Literal["tls", "starttls", "none"] = "starttls"  # implicit TLS, required STARTTLS, plain
    username: str | None = None  # None: no AUTH
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # the connect, and every reply (DATA's final reply included)
    verify_tls: bool = True  # False only for a test server with a self-signed certificate
