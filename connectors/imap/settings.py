"""What the IMAP connector needs to know about one mailbox; mapped from the hub's ``[[mailbox]]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    name: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    security: Literal["tls", "starttls", "none"] = "tls"
    folders: tuple[str, ...] = ()  # empty: INBOX and the folder marked \Sent
    poll_seconds: float = 60.0  # without IDLE
    idle_seconds: float = 25 * 60.0  # IDLE is re-issued after this (servers drop it at 30 minutes)
    timeout: float = 30.0  # every command and the connect
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    fetch_batch: int = 50  # messages per UID FETCH and per transaction
    verify_tls: bool = True
    ca_file: str | None = None  # a private CA's certificates (PEM), for a server not signed by a public one
