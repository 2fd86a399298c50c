"""Shapes of the mail endpoints' inputs and outputs (see ``schemas`` for the rest)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from hub.web.schemas import ClientOut, _In, _Out


class MessageSearch(_In):
    client_id: int | None = None
    mailbox: str | None = Field(None, description="A [[mailbox]] name: mail that has a copy there")
    thread_id: int | None = None
    direction: Literal["in", "out"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    unmatched: bool = Field(False, description="Only mail no card claimed yet (the triage list)")
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class MessageView(_In):
    remote_images: bool = Field(False, description="Show images loaded from elsewhere (they may be trackers)")


class AddressOut(_Out):
    address: str | None
    name: str


class RecipientOut(_Out):
    address: str
    name: str
    kind: Literal["to", "cc"]


class AttachmentOut(_Out):
    id: int
    filename: str
    content_type: str
    size: int
    stored: bool = Field(description="False: over the size limit, only its name and size were kept")
    url: str | None


class LinkOut(_Out):
    client_id: int
    contact_id: int | None


class MessageOut(_Out):
    id: int
    message_id: str | None
    thread_id: int
    direction: Literal["in", "out"]
    subject: str
    from_: AddressOut = Field(alias="from")
    recipients: list[RecipientOut]
    sent_at: datetime | None
    received_at: datetime
    text: str
    html: str | None = Field(description="Sanitised; remote images only when asked for")
    remote_images: bool
    in_reply_to: str | None
    references: list[str]
    attachments: list[AttachmentOut]
    clients: list[LinkOut]
    awaiting_triage: bool
    defects: list[str]


class MessagePageOut(_Out):
    items: list[MessageOut]
    total: int
    page: int
    per_page: int


class LinkIn(_In):
    client_id: int
    contact_id: int | None = None


class ClientFromSenderIn(_In):
    name: str | None = Field(None, max_length=300, description="Default: the sender's name, else the address")


class ClientFromSenderOut(_Out):
    client: ClientOut
    message: MessageOut


class FolderStatusOut(_Out):
    folder: str
    connected: bool
    idle: bool
    last_uid: int
    fetched: int
    last_error: str | None
    login_rejected: bool
    last_checked_at: datetime | None


class MailboxStatusOut(_Out):
    name: str
    healthy: bool
    login_rejected: bool
    last_error: str | None
    folders: list[FolderStatusOut]


class MailboxListOut(_Out):
    items: list[MailboxStatusOut]


class QuarantineOut(_Out):
    id: int
    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    raw_size: int
    error: str
    created_at: datetime
    raw_url: str


class QuarantinePageOut(_Out):
    items: list[QuarantineOut]
    total: int
    page: int
    per_page: int


class PageIn(_In):
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class AddressIn(_In):
    address: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field("", max_length=300)


class AttachmentIn(_In):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field("application/octet-stream", max_length=200)
    data_base64: str = Field(description="The file's bytes, base64")


class MessageIn(_In):
    mailbox: str | None = Field(None, description="Which [[mailbox]] sends it; default: the first with SMTP")
    to: list[AddressIn] = Field(default_factory=list, max_length=500)
    cc: list[AddressIn] = Field(default_factory=list, max_length=500)
    client_id: int | None = Field(None, description="Write to this card (its first address, or its contact's)")
    contact_id: int | None = None
    reply_to: int | None = Field(None, description="The id of a logged message this answers (threading headers)")
    subject: str | None = Field(None, max_length=998, description="Default for a reply: Re: and the subject")
    text: str = Field("", max_length=1_000_000)
    html: str | None = Field(None, max_length=2_000_000)
    template: bool = Field(False, description="Subject and bodies are Jinja2 over {{ client }} and {{ contact }}")
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)


class SentOut(_Out):
    message: MessageOut
    refused: dict[str, str] = Field(description="Recipients the SMTP server refused, with its reason")
    saved_to_sent: bool
