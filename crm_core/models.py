"""The tables: counterparties, their contacts, phones and addresses, users, the audit log.

One schema for SQLite and PostgreSQL; where they differ (JSON, text ordering) the
column type says so with a variant.  The schema is owned by the Alembic migrations in
``crm_core/migrations``; a test keeps these models and the migrations identical.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite, which stores naive text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the hub stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
# Byte-order comparison for the reversed-digits index: PostgreSQL's default collation
# may ignore punctuation, which would break the range scan used for suffix matching.
AsciiKey = String(32).with_variant(String(32, collation="C"), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    admin = "admin"
    operator = "operator"
    marketer = "marketer"
    accountant = "accountant"


class ClientKind(enum.StrEnum):
    legal_entity = "legal_entity"
    sole_trader = "sole_trader"
    individual = "individual"


class ClientStatus(enum.StrEnum):
    lead = "lead"
    active = "active"
    inactive = "inactive"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    locale: Mapped[str] = mapped_column(String(8), default="ru")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored, so a leaked database leaks no tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser login; the cookie holds a random token whose SHA-256 is stored here."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))


class Client(Base):
    """A counterparty: a company, a sole trader or a private person."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ClientKind] = mapped_column(Enum(ClientKind, native_enum=False, length=20))
    name: Mapped[str] = mapped_column(String(300))
    full_name: Mapped[str] = mapped_column(String(1000), default="")
    search_name: Mapped[str] = mapped_column(Text, index=True)
    inn: Mapped[str | None] = mapped_column(String(12), index=True)
    kpp: Mapped[str | None] = mapped_column(String(9))
    ogrn: Mapped[str | None] = mapped_column(String(15))
    addresses: Mapped[list[dict[str, str]]] = mapped_column(Json, default=list)
    website: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[ClientStatus] = mapped_column(
        Enum(ClientStatus, native_enum=False, length=20), default=ClientStatus.active
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    owner: Mapped[User | None] = relationship(lazy="raise")
    tags: Mapped[list[ClientTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ClientTag.tag"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", cascade="all, delete-orphan", lazy="selectin", order_by="Contact.id"
    )
    phones: Mapped[list[Phone]] = relationship(cascade="all, delete-orphan", lazy="selectin", order_by="Phone.id")
    emails: Mapped[list[Email]] = relationship(cascade="all, delete-orphan", lazy="selectin", order_by="Email.id")


class ClientTag(Base):
    __tablename__ = "client_tags"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Contact(Base):
    """A person at a counterparty: who answers the phone, who signs, who pays."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    middle_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    client: Mapped[Client] = relationship(back_populates="contacts", lazy="raise")


class _OnACard:
    """A phone or an address on a card, perhaps on one of its contact persons."""

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(50), default="")

    @declared_attr
    def contact(cls) -> Mapped[Contact | None]:
        return relationship(lazy="raise")


class Phone(_OnACard, Base):
    __tablename__ = "phones"

    raw: Mapped[str] = mapped_column(String(100))
    e164: Mapped[str | None] = mapped_column(String(20), index=True)
    extension: Mapped[str | None] = mapped_column(String(20))
    digits_rev: Mapped[str] = mapped_column(AsciiKey, index=True)


class Email(_OnACard, Base):
    __tablename__ = "emails"

    address: Mapped[str] = mapped_column(String(320))
    address_lower: Mapped[str] = mapped_column(String(320), index=True)
    address_folded: Mapped[str] = mapped_column(String(320), index=True)


class Call(Base):
    """One call on the log: exactly one row per (PBX, Linkedid), however often it is replayed."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_number_status", "number", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    did: Mapped[str | None] = mapped_column(String(32))
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    transferred_to: Mapped[str | None] = mapped_column(String(32))
    final_operator: Mapped[str | None] = mapped_column(String(32), index=True)
    operator: Mapped[str | None] = mapped_column(String(32))
    callee: Mapped[str | None] = mapped_column(String(32))
    originate_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The outside party's number (caller of an inbound call, callee of an outbound one):
    # what the client is matched on and what "called back" compares.
    number: Mapped[str | None] = mapped_column(String(32))
    talk_seconds: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    recording_file: Mapped[str | None] = mapped_column(String(500))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")
    called_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_back_by: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rings: Mapped[list[CallRing]] = relationship(cascade="all, delete-orphan", lazy="selectin", order_by="CallRing.seq")


class CallRing(Base):
    """An extension whose phone rang for a call: "missed calls per operator" reads these."""

    __tablename__ = "call_rings"

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who read, changed or exported which record, when, and from which address."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Call",
    "CallRing",
    "Client",
    "ClientKind",
    "ClientStatus",
    "ClientTag",
    "Contact",
    "Email",
    "Phone",
    "Role",
    "User",
    "WebSession",
    "utcnow",
]
