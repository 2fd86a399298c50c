"""Webhook subscriptions and the delivery of outbox events to each, with their retries.

The dispatcher fans new outbox events out into one delivery row per matching subscription,
marking the events fanned out in the same transaction, then claims the deliveries that are
due (a lease, so another node or a restarted one sends a claimed delivery again only when
its attempt cannot still be running) and records each outcome.
Events of one client reach a subscription in order: a delivery waits while an older one of
the same client to the same subscription is still pending.  A delivery that keeps failing is
retried with exponential backoff for ``RETRY_WINDOW``, then marked dead; a dead one can be
replayed.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    exists,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column
from sqlalchemy.sql.elements import ColumnClause

from crm_core.errors import InvalidInput, NotFound
from crm_core.models import Base, Json, UTCDateTime, utcnow
from crm_core.outbox import EVENT_TYPES, OutboxEvent

RETRY_WINDOW = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=5)
LONGEST_WAIT = timedelta(hours=1)
RESPONSE_KEPT_CHARS = 2000


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + base64: Standard Webhooks' form
    event_types: Mapped[list[str]] = mapped_column(Json)  # empty: every event
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # The per-client order check: is an older delivery of this client still pending?
        Index(
            "ix_webhook_deliveries_pending_client",
            "subscription_id",
            "client_id",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int | None] = mapped_column(Integer)  # copied from the event: the ordering key
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_response: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery to attempt now, with what it needs to go out."""

    delivery_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: the receiver's status and answer, or why there was none."""

    delivery_id: int
    status: int | None
    response: str | None
    error: str | None


# Written into the SQL, not bound: PostgreSQL's generic plan for a prepared statement (asyncpg
# prepares every one) cannot use a partial index whose predicate depends on a parameter; with
# the per-client check scanning the whole table instead, each claim grew with the backlog.
PENDING: ColumnClause[str] = literal_column("'pending'")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def retry_delay(attempts: int, first: timedelta = FIRST_RETRY) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour: about 30 tries in the 24 hours."""
    return min(LONGEST_WAIT, first * 2 ** max(0, attempts - 1))


class Subscriptions:
    def __init__(self, session: AsyncSession, first_retry: timedelta = FIRST_RETRY) -> None:
        self.session = session
        self.first_retry = first_retry

    async def create(self, url: str, event_types: list[str], description: str = "") -> WebhookSubscription:
        unknown = sorted(set(event_types) - set(EVENT_TYPES))
        if unknown:
            raise InvalidInput(f"unknown event types: {', '.join(unknown)}", field="event_types")
        subscription = WebhookSubscription(
            url=url, secret=new_secret(), event_types=event_types, description=description
        )
        self.session.add(subscription)
        await self.session.flush()
        return subscription

    async def get(self, subscription_id: int) -> WebhookSubscription:
        found = await self.session.get(WebhookSubscription, subscription_id)
        if found is None:
            raise NotFound(f"webhook {subscription_id} not found")
        return found

    async def all(self) -> list[WebhookSubscription]:
        return list((await self.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))).all())

    async def deliveries(self, subscription_id: int, limit: int = 100) -> list[tuple[WebhookDelivery, OutboxEvent]]:
        rows = await self.session.execute(
            select(WebhookDelivery, OutboxEvent)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        return [(d, e) for d, e in rows]

    async def replay(self, delivery_id: int) -> WebhookDelivery:
        """Send a dead (or delivered) delivery again, as if new."""
        delivery = await self.session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found")
        delivery.status, delivery.next_attempt_at, delivery.first_attempt_at = "pending", utcnow(), None
        await self.session.flush()
        return delivery

    # -- the dispatcher's side -----------------------------------------------------

    async def fan_out(self, limit: int = 500) -> int:
        """Deliveries for outbox events not yet fanned out; returns how many events were taken."""
        events = (
            await self.session.scalars(
                select(OutboxEvent)
                .where(~OutboxEvent.fanned_out)
                .order_by(OutboxEvent.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not events:
            return 0
        subscriptions = [s for s in await self.all() if s.active]
        deliveries = [
            {"subscription_id": subscription.id, "event_id": event.id, "client_id": event.client_id}
            for event in events
            for subscription in subscriptions
            if subscription.wants(event.type)
        ]
        if deliveries:
            now = utcnow()
            await self.session.execute(
                insert(WebhookDelivery),
                [{**d, "status": "pending", "attempts": 0, "next_attempt_at": now} for d in deliveries],
            )
        await self.session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(fanned_out=True)
        )
        return len(events)

    async def claim(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Due]:
        """Pending deliveries whose time has come, none behind an older pending one of its client,
        each leased until ``now + lease``: a node that dies mid-attempt leaves it to be sent again."""
        older = aliased(WebhookDelivery)
        blocked = exists().where(
            older.subscription_id == WebhookDelivery.subscription_id,
            older.client_id == WebhookDelivery.client_id,
            older.status == PENDING,
            older.id < WebhookDelivery.id,
        )
        rows = (
            await self.session.execute(
                select(WebhookDelivery, WebhookSubscription, OutboxEvent)
                .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
                .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                .where(
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookSubscription.active.is_(True),
                    WebhookDelivery.client_id.is_(None) | ~blocked,
                )
                .order_by(WebhookDelivery.id)
                .limit(limit)
                .with_for_update(of=WebhookDelivery, skip_locked=True)
            )
        ).all()
        if rows:
            await self.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([d.id for d, _, _ in rows]))
                .values(next_attempt_at=now + lease)
            )
        return [
            Due(d.id, s.url, s.secret, e.event_id, e.type, e.occurred_at, e.payload, d.attempts) for d, s, e in rows
        ]

    async def record(self, outcomes: Sequence[Outcome]) -> dict[int, str]:
        """The outcomes of a round's attempts (one read, one flush); returns each delivery's status
        after its attempt ("gone" for a delivery removed meanwhile with its subscription)."""
        found = await self.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_([o.delivery_id for o in outcomes]))
        )
        deliveries = {d.id: d for d in found}
        now = utcnow()
        after: dict[int, str] = {}
        for outcome in outcomes:
            delivery = deliveries.get(outcome.delivery_id)
            if delivery is None:
                after[outcome.delivery_id] = "gone"
                continue
            delivery.attempts += 1
            delivery.first_attempt_at = delivery.first_attempt_at or now
            delivery.last_status, delivery.last_error = outcome.status, outcome.error
            delivery.last_response = outcome.response[:RESPONSE_KEPT_CHARS] if outcome.response else None
            if outcome.status is not None and 200 <= outcome.status < 300:
                delivery.status, delivery.delivered_at = "delivered", now
            elif now - delivery.first_attempt_at >= RETRY_WINDOW:
                delivery.status = "dead"
            else:
                delivery.next_attempt_at = now + retry_delay(delivery.attempts, self.first_retry)
            after[delivery.id] = delivery.status
        await self.session.flush()
        return after
