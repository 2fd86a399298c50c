"""Shapes of the API's inputs and outputs that are not domain inputs themselves.

Output models document the responses in the OpenAPI document; a test validates real
responses against them, so the document stays true.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from crm_core.client_data import ClientIn
from crm_core.models import ClientKind, ClientStatus, Role


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _partial(model: type[BaseModel], name: str, **extra: Any) -> type[BaseModel]:
    """The same fields, each optional: only those sent are changed."""
    fields: dict[str, Any] = {
        key: (Optional[info.annotation], Field(None, description=info.description))  # noqa: UP045  (a runtime type)
        for key, info in model.model_fields.items()
    }
    fields.update(extra)
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


ClientPatch = _partial(
    ClientIn,
    "ClientPatch",
    version=(int | None, Field(None, description="Refuse the change if the card's version differs")),
)


class PhoneOut(_Out):
    id: int
    number: str
    e164: str | None
    extension: str | None
    label: str


class EmailOut(_Out):
    id: int
    address: str
    label: str


class ContactOut(_Out):
    id: int
    first_name: str
    middle_name: str
    last_name: str
    position: str
    note: str
    phones: list[PhoneOut]
    emails: list[EmailOut]


class ClientOut(_Out):
    id: int
    kind: ClientKind
    name: str
    full_name: str
    inn: str | None
    kpp: str | None
    ogrn: str | None
    addresses: list[dict[str, str]]
    website: str | None
    status: ClientStatus
    owner_id: int | None
    tags: list[str]
    custom_fields: dict[str, Any]
    phones: list[PhoneOut]
    emails: list[EmailOut]
    contacts: list[ContactOut]
    created_at: datetime
    updated_at: datetime
    version: int


class ClientPage(_Out):
    items: list[ClientOut]
    total: int
    page: int
    per_page: int


class ClientSearch(_In):
    q: str | None = Field(None, description="Name, phone, INN or e-mail in one box")
    name: str | None = None
    inn: str | None = None
    phone: str | None = None
    email: str | None = None
    tag: str | None = None
    status: ClientStatus | None = None
    owner_id: int | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class TimelineQuery(_In):
    before: datetime | None = Field(None, description="Only items older than this (the previous page's next_before)")
    limit: int = Field(50, ge=1, le=200)


class TimelineItemOut(_Out):
    at: datetime
    kind: str
    id: str
    title: str
    data: dict[str, Any]


class TimelineOut(_Out):
    items: list[TimelineItemOut]
    next_before: datetime | None


class ImportQuery(_In):
    dry_run: bool = Field(False, description="Check every row and report; change nothing")
    mode: Literal["all", "good"] = Field(
        "all", description="all: import every row or none; good: import the good rows, report the bad"
    )


class RowErrorOut(_Out):
    line: int
    reason: str


class ImportReportOut(_Out):
    encoding: str
    delimiter: str
    rows_total: int
    rows_ok: int
    errors: list[RowErrorOut]
    imported: int
    created_ids: list[int]
    dry_run: bool
    applied: bool
    unknown_columns: list[str]


class PhoneLookupQuery(_In):
    number: str = Field(min_length=1)


class EmailLookupQuery(_In):
    address: str = Field(min_length=3)
    fold_plus: bool | None = None


class CandidateOut(_Out):
    client_id: int
    client_name: str
    contact_id: int | None
    contact_name: str | None
    matched: str


class LookupOut(_Out):
    match: Literal["exact", "suffix", "none"]
    ambiguous: bool
    candidates: list[CandidateOut]


class UserCreate(_In):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    role: Role
    password: str | None = Field(None, min_length=8)
    extension: str | None = Field(None, max_length=32)
    full_name: str = Field("", max_length=200)
    locale: Literal["ru", "en"] = "ru"


class UserPatch(_In):
    role: Role | None = None
    password: str | None = Field(None, min_length=8)
    extension: str | None = Field(None, max_length=32)
    full_name: str | None = Field(None, max_length=200)
    locale: Literal["ru", "en"] | None = None
    is_active: bool | None = None


class UserOut(_Out):
    id: int
    username: str
    full_name: str
    role: Role
    extension: str | None
    locale: str
    is_active: bool
    created_at: datetime


class UserList(_Out):
    items: list[UserOut]


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AuditQuery(_In):
    entity: str | None = None
    entity_id: str | None = None
    username: str | None = None
    action: str | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(100, ge=1, le=500)


class AuditEntryOut(_Out):
    id: int
    at: datetime
    username: str
    action: str
    entity: str
    entity_id: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(_Out):
    items: list[AuditEntryOut]
    total: int
    page: int
    per_page: int


class Health(_Out):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class CallSearch(_In):
    client_id: int | None = None
    operator: str | None = Field(None, description="An extension: calls it rang for, answered, placed or ended with")
    queue: str | None = None
    status: Literal["answered", "missed"] | None = None
    number: str | None = Field(None, description="The outside party's number, in any format")
    since: datetime | None = None
    until: datetime | None = None
    open_missed: bool = Field(False, description="Only missed calls not yet called back")
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class CallOut(_Out):
    id: int
    pbx: str
    linkedid: str
    direction: Literal["inbound", "outbound", "internal"]
    caller: str | None
    caller_name: str | None
    did: str | None
    queue: str | None
    status: Literal["answered", "missed"]
    reason: str | None
    rang: list[str]
    answered_by: str | None
    transferred_to: str | None
    final_operator: str | None
    talk_seconds: int
    operator: str | None
    callee: str | None
    originate_id: str | None
    number: str | None
    client_id: int | None
    contact_id: int | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: str | None
    recording_file: str | None
    notes: str
    called_back_at: datetime | None
    called_back_by: int | None


class CallPageOut(_Out):
    items: list[CallOut]
    total: int
    page: int
    per_page: int


class CallNotes(_In):
    notes: str = Field(max_length=20_000)


class LiveNoteOut(_Out):
    pbx: str
    linkedid: str
    notes: str
    call_id: int | None = Field(description="The call's log row, once written; null while the call lasts")


class MissedSearch(_In):
    open_only: bool = Field(True, description="Only callers not called back (nor got through) since")
    queue: str | None = None
    since: datetime | None = None
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)


class MissedCallerOut(_Out):
    call: CallOut = Field(description="The caller's latest missed call")
    tries: int = Field(description="Missed calls from this number (within the filter)")
    first_at: datetime | None
    client_name: str | None = Field(description="The card the call is filed under")


class MissedPageOut(_Out):
    items: list[MissedCallerOut]
    total: int
    page: int
    per_page: int


class OriginateIn(_In):
    number: str | None = Field(None, description="Any format; read in the hub's default region")
    client_id: int | None = Field(None, description="Call this client's first phone (or the number given)")
    contact_id: int | None = Field(None, description="Call this contact person's first phone")
    pbx: str | None = Field(None, description="Which PBX, when several are configured")


class OriginateOut(_Out):
    originate_id: str
    pbx: str
    success: bool
    reason: str
    number: str
