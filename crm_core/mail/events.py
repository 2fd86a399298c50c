"""A message as the domain receives it: parsed, decoded and sanitised by a connector.

Plain frozen data, so the filing rules can be tested without a mail server or a MIME parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    address: str  # addr-spec as written; compared lower-cased
    name: str = ""

    @property
    def lowered(self) -> str:
        return self.address.lower()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes | None  # None: over the size limit, so only its name and size are kept
    size: int
    content_id: str | None = None
    inline: bool = False  # shown by the HTML through cid:, not listed as an attachment


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What a message says, every header decoded and the HTML already sanitised."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    sent_at: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    remote_images: bool = False  # the HTML shows images from elsewhere (blocked until asked for)
    defects: tuple[str, ...] = field(default=())  # what was wrong but survived, for the log

    @property
    def participants(self) -> tuple[Address, ...]:
        return ((self.sender,) if self.sender else ()) + self.to + self.cc


@dataclass(frozen=True, slots=True)
class Location:
    """A copy of a message on an IMAP server: a UID in a folder, under one UIDVALIDITY."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """A message as the IMAP connector read it, before anyone parsed it."""

    location: Location
    raw: bytes
    internal_date: datetime | None = None  # when the server received it
