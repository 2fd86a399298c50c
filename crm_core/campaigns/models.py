"""The mailing tables: saved segments, campaigns, each campaign's recipients and links, tracking
hits, bounces, and the suppression list every campaign respects."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, Json, UTCDateTime, utcnow


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    paused = "paused"
    finished = "finished"
    cancelled = "cancelled"


class RecipientStatus(enum.StrEnum):
    queued = "queued"  # waiting for its turn
    sending = "sending"  # handed to the SMTP server, its answer not yet recorded
    sent = "sent"
    failed = "failed"  # the server refused it for good
    review = "review"  # was being sent when the hub stopped: it may or may not have gone
    cancelled = "cancelled"  # the campaign was cancelled before its turn


class SuppressionReason(enum.StrEnum):
    unsubscribed = "unsubscribed"
    hard_bounce = "hard_bounce"
    complaint = "complaint"
    soft_bounces = "soft_bounces"
    manual = "manual"


class Segment(Base):
    """A saved choice of recipients: rules over the card, evaluated when a campaign starts."""

    __tablename__ = "campaign_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        Enum(CampaignStatus, native_enum=False, length=20), default=CampaignStatus.draft, index=True
    )
    mailbox: Mapped[str | None] = mapped_column(String(100))  # whose SMTP server sends it; None: the first
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)  # Jinja2 templates, rendered per recipient
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")  # empty: made from the HTML
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_segments.id", ondelete="SET NULL"))
    tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recipient(Base):
    """One address of one campaign, with its own sending state: the unit of exactly once."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "address_key"),
        Index("ix_campaign_recipients_campaign_id_status_id", "campaign_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)  # lower-cased: "once per campaign"
    status: Mapped[RecipientStatus] = mapped_column(
        Enum(RecipientStatus, native_enum=False, length=20), default=RecipientStatus.queued
    )
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # after a temporary refusal: try again then
    last_error: Mapped[str | None] = mapped_column(Text)


class CampaignLink(Base):
    """A link of the campaign's HTML, numbered: a click redirect goes only to the URL stored here."""

    __tablename__ = "campaign_links"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)


class TrackingHit(Base):
    """An open, a click or an unsubscribe; machines' hits are kept, flagged, out of human counts."""

    __tablename__ = "tracking_hits"
    __table_args__ = (Index("ix_tracking_hits_campaign_id_kind_at", "campaign_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("campaign_recipients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # open, click, unsubscribe
    link_number: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    human: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str | None] = mapped_column(String(40))  # why a hit is taken for a machine's
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))


class Bounce(Base):
    """A bounce or a complaint read from the bounce mailbox."""

    __tablename__ = "campaign_bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_recipients.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # hard, soft, complaint
    status: Mapped[str | None] = mapped_column(String(16))  # the enhanced status code, e.g. 5.1.1
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """An address no campaign writes to again."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(Enum(SuppressionReason, native_enum=False, length=20))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
