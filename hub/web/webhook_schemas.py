"""Shapes of the webhook endpoints' inputs and outputs."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from hub.web.schemas import _In, _Out


class SubscriptionIn(_In):
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(default_factory=list, description="Empty: every event")
    description: str = Field("", max_length=300)


class SubscriptionPatch(_In):
    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = None
    active: bool | None = None
    description: str | None = Field(None, max_length=300)


class SubscriptionOut(_Out):
    id: int
    url: str
    event_types: list[str]
    active: bool
    description: str
    created_at: datetime
    secret: str | None = Field(None, description="whsec_...: the key the deliveries are signed with")


class SubscriptionListOut(_Out):
    items: list[SubscriptionOut]
    event_types: list[str]


class DeliveryOut(_Out):
    id: int
    event_id: str
    type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_response: str | None
    last_error: str | None


class DeliveryListOut(_Out):
    items: list[DeliveryOut]
