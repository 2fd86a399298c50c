"""Shapes of the 1C sync endpoints' inputs and outputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from hub.web.schemas import _In, _Out


class ConnectionOut(_Out):
    name: str
    url: str
    kind: str
    interval_minutes: float
    running: bool
    last_run: RunOut | None
    last_success_at: datetime | None = Field(None, description="When the last sync that ended well finished")
    links: int
    open_conflicts: int
    open_proposals: int


class ConnectionListOut(_Out):
    items: list[ConnectionOut]


class SyncIn(_In):
    connection: str | None = Field(None, description="One connection by name; all when omitted")


class StartedOut(_Out):
    connection: str
    run_id: int


class SyncStartedOut(_Out):
    started: list[StartedOut]


class RunOut(_Out):
    id: int
    connection: str
    trigger: str
    status: str
    phase: str
    done: int
    total: int
    counts: dict[str, int]
    error: str | None
    error_kind: str | None = Field(
        description="What the error means, for the pages to explain: login, not_published, schema, interrupted, "
        "unreachable, or refused (1C's own message)"
    )
    started_at: datetime
    finished_at: datetime | None


class RunsQuery(_In):
    connection: str | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(20, ge=1, le=200)


class RunListOut(_Out):
    items: list[RunOut]
    total: int
    page: int
    per_page: int


class LogQuery(_In):
    action: str | None = Field(None, description="created, updated, linked, proposed, conflict, skipped, failed, gone")
    page: int = Field(1, ge=1)
    per_page: int = Field(100, ge=1, le=1000)


class LogEntryOut(_Out):
    id: int
    at: datetime
    action: str
    side: str
    client_id: int | None
    client_name: str | None = Field(description="The card's name now; none for a 1C item with no card")
    ref_key: str | None
    fields: list[str]
    detail: str


class LogListOut(_Out):
    items: list[LogEntryOut]
    total: int
    page: int
    per_page: int


class DecisionQuery(_In):
    status: str = Field("open", description="open, resolved, applied (conflicts); open, accepted, rejected (proposals)")
    connection: str | None = None
    client_id: int | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class ConflictOut(_Out):
    id: int
    connection: str
    client_id: int
    client_name: str
    field: str
    base_value: Any
    hub_value: Any
    onec_value: Any
    status: str
    chosen_value: Any
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None


class ConflictListOut(_Out):
    items: list[ConflictOut]
    total: int
    page: int
    per_page: int


class ResolveIn(_In):
    choice: Literal["hub", "onec", "value"]
    value: Any = Field(None, description="With choice 'value': the value both sides take")


class ProposalOut(_Out):
    id: int
    connection: str
    ref_key: str
    client_id: int
    client_name: str
    client_inn: str | None
    client_kpp: str | None
    reason: str
    onec_name: str
    onec_inn: str | None
    status: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


class ProposalListOut(_Out):
    items: list[ProposalOut]
    total: int
    page: int
    per_page: int


class CardLinkOut(_Out):
    connection: str
    ref_key: str | None
    state: str
    detail: str | None
    synced_at: datetime


class DocumentOut(_Out):
    type: str
    ref_key: str
    number: str
    date: datetime | None
    amount: float | None
    posted: bool


class CardOnecOut(_Out):
    links: list[CardLinkOut]
    documents: dict[str, list[DocumentOut]]


class CardSyncOut(_Out):
    request_id: int
    queued: bool = Field(description="False when a request for this card was already waiting")


class SyncRequestOut(_Out):
    id: int
    client_id: int
    client_name: str
    status: str = Field(description="pending, done, failed")
    requested_by: str
    requested_at: datetime
    done_at: datetime | None
    detail: str | None = Field(description="1C's error, per connection, when the sync failed")
    error_kind: str | None
    runs: list[RunOut] = Field(description="The one-card runs that took the request")
    log: list[LogEntryOut] = Field(description="What those runs did to this card, and why")


ConnectionOut.model_rebuild()
