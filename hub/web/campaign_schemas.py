"""Shapes of the mailing endpoints' inputs and outputs (campaigns, segments, suppressions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from crm_core.campaigns.segments import SegmentRules
from hub.web.schemas import _In, _Out


class CampaignPatch(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    mailbox: str | None = Field(None, max_length=100)
    from_address: str | None = Field(None, max_length=320)
    from_name: str | None = Field(None, max_length=200)
    reply_to: str | None = Field(None, max_length=320)
    subject: str | None = Field(None, min_length=1, max_length=2000)
    html: str | None = Field(None, max_length=2_000_000)
    text: str | None = Field(None, max_length=1_000_000)
    segment_id: int | None = None
    tracking: bool | None = None


class CampaignOut(_Out):
    id: int
    name: str
    status: str
    mailbox: str | None
    from_address: str
    from_name: str
    reply_to: str | None
    subject: str
    html: str
    text: str
    segment_id: int | None
    tracking: bool
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    recipients: dict[str, int] = Field(description="Recipients by sending state")
    opened: int = Field(description="Recipients a person opened it for (machines' opens left out)")
    clicked: int = Field(description="Recipients a person clicked a link for")


class CampaignListOut(_Out):
    items: list[CampaignOut]


class PreviewIn(_In):
    client_id: int
    address: str | None = Field(None, max_length=320, description="One of the card's addresses; default its first")


class DraftPreviewIn(_In):
    """The editor's templates as they are now, saved or not."""

    client_id: int
    address: str | None = Field(None, max_length=320, description="One of the card's addresses; default its first")
    name: str = Field("", max_length=200)
    subject: str = Field(max_length=2000)
    html: str = Field("", max_length=2_000_000)
    text: str = Field("", max_length=1_000_000)


class PreviewOut(_Out):
    subject: str
    html: str
    text: str


class TestSendIn(_In):
    address: str = Field(max_length=320)
    client_id: int = Field(description="Whose card fills the template")


class TestSendOut(_Out):
    message_id: str


class ScheduleIn(_In):
    at: datetime


class ReviewIn(_In):
    action: Literal["send_again", "count_as_sent"]
    recipient_ids: list[int] | None = Field(None, description="Default: every recipient in review")


class ReviewOut(_Out):
    changed: int


class RecipientsQuery(_In):
    status: str | None = None
    after: int = Field(0, ge=0, description="The last id of the previous page")
    limit: int = Field(100, ge=1, le=1000)


class StatsQuery(_In):
    bucket: Literal["hour", "day"] = "hour"


class StatsOut(_Out):
    model_config = {"extra": "allow"}
    campaign_id: int


class RecipientListOut(_Out):
    items: list[dict[str, Any]]
    next_after: int | None


class SegmentOut(_Out):
    id: int
    name: str
    rules: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SegmentListOut(_Out):
    items: list[SegmentOut]


class SegmentCountIn(_In):
    rules: SegmentRules = Field(default_factory=SegmentRules)


class SegmentCountOut(_Out):
    clients: int
    addresses: int = Field(description="What a campaign would send to: suppressed addresses left out, each once")
    suppressed: int


class SegmentSampleIn(_In):
    rules: SegmentRules = Field(default_factory=SegmentRules)
    limit: int = Field(20, ge=1, le=100)


class SampledOut(_Out):
    client_id: int
    client_name: str
    contact_id: int | None
    contact_name: str
    address: str


class SegmentSampleOut(_Out):
    items: list[SampledOut]


class ChoiceOut(_Out):
    id: int
    name: str


class SegmentChoicesOut(_Out):
    owners: list[ChoiceOut]
    tags: list[str]
    custom_fields: list[str] = Field(description="Names seen on the latest cards; others may be typed")
    campaigns: list[ChoiceOut] = Field(description="Campaigns that sent something, newest first")


class HitEventOut(_Out):
    kind: str
    at: datetime
    human: bool
    reason: str | None = Field(description="The rule that took it for a machine's")
    link_number: int | None
    url: str | None
    ip: str | None
    user_agent: str | None


class BounceEventOut(_Out):
    kind: str
    at: datetime
    status: str | None
    diagnostic: str


class RecipientEventsOut(_Out):
    recipient: dict[str, Any]
    hits: list[HitEventOut]
    bounces: list[BounceEventOut]


class SuppressionIn(_In):
    address: str = Field(max_length=320)
    detail: str = Field("", max_length=500)


class SuppressionOut(_Out):
    id: int
    address: str
    reason: str
    campaign_id: int | None
    detail: str
    created_at: datetime


class SuppressionListOut(_Out):
    items: list[SuppressionOut]
    total: int
    page: int
    per_page: int


class SuppressionQuery(_In):
    q: str | None = Field(None, max_length=320, description="Part of the address")
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=500)
