"""The mail tables: messages (once each, however many mailboxes hold them), where each copy
lives on which IMAP server, threads, links to clients, attachments, checkpoints, quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.models import Base, Json, UTCDateTime, utcnow


class MailThread(Base):
    __tablename__ = "mail_threads"
    __table_args__ = (Index("ix_mail_threads_subject_key_last_at", "subject_key", "last_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    subject_key: Mapped[str] = mapped_column(String(300))  # the subject without Re:/Fwd:, case-folded
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MailMessage(Base):
    """One message.  ``dedup_key`` is its Message-ID, or the SHA-256 of its bytes when it has none."""

    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(500), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(500), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(500))
    references: Mapped[list[str]] = mapped_column("refs", Json, default=list)
    thread_id: Mapped[int] = mapped_column(ForeignKey("mail_threads.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # "in" or "out"
    subject: Mapped[str] = mapped_column(Text, default="")
    sender_address: Mapped[str | None] = mapped_column(String(320), index=True)
    sender_name: Mapped[str] = mapped_column(String(300), default="")
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)  # {address, name, kind}
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)  # sanitised
    remote_images: Mapped[bool] = mapped_column(default=False)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer)
    defects: Mapped[list[str]] = mapped_column(Json, default=list)
    awaiting_triage: Mapped[bool] = mapped_column(default=False, index=True)  # linked to no client yet

    thread: Mapped[MailThread] = relationship(lazy="raise")
    attachments: Mapped[list[MailAttachment]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="MailAttachment.id"
    )
    links: Mapped[list[MailLink]] = relationship(lazy="raise", cascade="all, delete-orphan", order_by="MailLink.id")


class MailAttachment(Base):
    __tablename__ = "mail_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("mail_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))  # None: over the size limit, not stored
    content_id: Mapped[str | None] = mapped_column(String(500))
    inline: Mapped[bool] = mapped_column(default=False)


class MailLink(Base):
    """A message filed under a client (and a contact person, when the address is theirs)."""

    __tablename__ = "mail_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("mail_messages.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    address: Mapped[str | None] = mapped_column(String(320))  # None: linked by hand
    linked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class MailCopy(Base):
    """Where a message was seen: a UID in a folder of a mailbox, under one UIDVALIDITY."""

    __tablename__ = "mail_copies"
    __table_args__ = (UniqueConstraint("mailbox", "folder", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("mail_messages.id", ondelete="CASCADE"), index=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)


class MailCheckpoint(Base):
    """How far a folder has been read: the next fetch starts after ``last_uid``."""

    __tablename__ = "mail_checkpoints"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    folder: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MailQuarantine(Base):
    """A message nobody could read, kept with its raw bytes (in the blob store) and the reason."""

    __tablename__ = "mail_quarantine"
    __table_args__ = (UniqueConstraint("mailbox", "folder", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
