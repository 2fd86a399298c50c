"""The sync's memory: which card is which 1C item, what both last agreed on, and what happened.

``onec_links`` is the heart: per connection, a 1C reference, the hub card, the ``DataVersion``
and card version last synced, and the agreed values (the merge's base).  A link is written
before a counterparty is created in 1C (state ``creating``), so a sync killed between 1C's
commit and ours finds the item again instead of creating it twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, Json, UTCDateTime, utcnow


class LinkState(enum.StrEnum):
    linked = "linked"  # a hub card and a 1C item kept equal
    creating = "creating"  # the card is being created in 1C; ref_key unknown until 1C answers
    ignored = "ignored"  # a 1C item marked for deletion before it was ever linked: not imported
    refused = "refused"  # a 1C item the hub's rules refuse (the log says why); retried when it changes
    gone = "gone"  # the 1C item no longer exists (destroyed in 1C); the card is kept


class RunStatus(enum.StrEnum):
    running = "running"
    done = "done"
    failed = "failed"


class OnecLink(Base):
    __tablename__ = "onec_links"
    __table_args__ = (
        UniqueConstraint("connection", "ref_key"),
        UniqueConstraint("connection", "client_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    ref_key: Mapped[str | None] = mapped_column(String(36))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    state: Mapped[LinkState] = mapped_column(Enum(LinkState, native_enum=False, length=16))
    onec_version: Mapped[str | None] = mapped_column(String(64))  # 1C's DataVersion last synced
    hub_version: Mapped[int | None] = mapped_column(Integer)  # the card's version last synced
    base: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # the values both agreed on
    detail: Mapped[str | None] = mapped_column(Text)  # why refused, say
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConflictStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"  # a user chose; the next sync writes the choice to the side that lacks it
    applied = "applied"


class OnecConflict(Base):
    """One field changed differently on both sides since the last sync."""

    __tablename__ = "onec_conflicts"
    __table_args__ = (Index("ix_onec_conflicts_link_status", "link_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[int] = mapped_column(ForeignKey("onec_links.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    base_value: Mapped[Any] = mapped_column(Json, nullable=True)
    hub_value: Mapped[Any] = mapped_column(Json, nullable=True)
    onec_value: Mapped[Any] = mapped_column(Json, nullable=True)
    status: Mapped[ConflictStatus] = mapped_column(Enum(ConflictStatus, native_enum=False, length=16), index=True)
    chosen_value: Mapped[Any] = mapped_column(Json, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProposalStatus(enum.StrEnum):
    open = "open"
    accepted = "accepted"
    rejected = "rejected"


class OnecProposal(Base):
    """An uncertain first-sync match (same name, one INN missing; several candidates): a user decides."""

    __tablename__ = "onec_proposals"
    __table_args__ = (UniqueConstraint("connection", "ref_key", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    ref_key: Mapped[str] = mapped_column(String(36), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    onec_name: Mapped[str] = mapped_column(String(1000), default="")
    onec_inn: Mapped[str | None] = mapped_column(String(12))
    status: Mapped[ProposalStatus] = mapped_column(Enum(ProposalStatus, native_enum=False, length=16), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OnecRun(Base):
    """One sync of one connection: its progress while it runs, its counts and error after."""

    __tablename__ = "onec_runs"
    __table_args__ = (
        Index("ix_onec_runs_connection_id", "connection", "id"),
        # One run per connection at a time, whichever process (CLI, service, another node) starts it.
        Index(
            "uq_onec_runs_running",
            "connection",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))  # schedule, api, cli, request
    status: Mapped[RunStatus] = mapped_column(Enum(RunStatus, native_enum=False, length=16))
    phase: Mapped[str] = mapped_column(String(32), default="")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OnecLogEntry(Base):
    """What a run did to one counterparty, and why: created, updated, linked, skipped, failed..."""

    __tablename__ = "onec_log"
    __table_args__ = (Index("ix_onec_log_run_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("onec_runs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(8))  # "hub" or "1c": where the change was made
    client_id: Mapped[int | None] = mapped_column(Integer, index=True)
    ref_key: Mapped[str | None] = mapped_column(String(36))
    fields: Mapped[list[str]] = mapped_column(Json, default=list)
    detail: Mapped[str] = mapped_column(Text, default="")
