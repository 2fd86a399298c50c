"""What outside systems push in through incoming webhooks, and how it lands in the domain.

A cloud PBX reports its calls in a generic form (from, to, direction, start, duration, status,
recording URL): they go into the same call log as Asterisk's, matched to clients the same
way, so a company without Asterisk still gets its history.  A website creates or updates
clients.  Each function works inside the caller's unit of work: a bad payload raises before
anything is written, and the caller's transaction makes the rest all or nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, model_validator
from sqlalchemy import select

from crm_core.audit import Actor
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import Call, Client
from crm_core.sync_requests import SyncRequest, SyncRequests
from crm_core.telephony.call_log import CallLog
from crm_core.telephony.events import CallKey, CallRecord

# The generic statuses a cloud PBX reports, as the call log records them: (status, reason).
CALL_STATUSES: dict[str, tuple[str, str | None]] = {
    "answered": ("answered", None),
    "missed": ("missed", "no_answer"),
    "no_answer": ("missed", "no_answer"),
    "busy": ("missed", "busy"),
    "abandoned": ("missed", "abandoned"),
    "failed": ("missed", "failed"),
}


class CallPush(BaseModel):
    """One finished call from an outside PBX."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    call_id: str = Field(min_length=1, max_length=64, description="The PBX's own id: a repeat is ignored")
    from_: str = Field(alias="from", min_length=1, max_length=100, description="Calling number or extension")
    to: str = Field(min_length=1, max_length=100, description="Called number or extension")
    direction: Literal["inbound", "outbound", "internal"]
    start: AwareDatetime = Field(description="When the call began, with its time zone")
    duration: int = Field(ge=0, le=7 * 86400, description="Seconds of conversation (0 when not answered)")
    wait: int = Field(0, ge=0, le=86400, description="Seconds of ringing before the answer or the hang-up")
    status: Literal["answered", "missed", "no_answer", "busy", "abandoned", "failed"]
    operator: str | None = Field(None, max_length=50, description="The company's extension or login on the call")
    caller_name: str | None = Field(None, max_length=200)
    recording_url: HttpUrl | None = Field(None, description="Where the PBX keeps the recording (up to 500 characters)")

    @model_validator(mode="after")
    def _consistent(self) -> CallPush:
        if self.status != "answered" and self.duration:
            raise ValueError("a call that was not answered has no duration (put the ringing time in wait)")
        if self.recording_url is not None and len(str(self.recording_url)) > 500:
            raise ValueError("recording_url is longer than 500 characters")
        return self


def call_record(push: CallPush, source: str) -> CallRecord:
    """The call-log record of a pushed call; ``source`` (the hook's name) stands for the PBX."""
    status, reason = CALL_STATUSES[push.status]
    answered = status == "answered"
    answered_at = push.start + timedelta(seconds=push.wait) if answered else None
    ended_at = push.start + timedelta(seconds=push.wait + push.duration)
    inbound = push.direction == "inbound"
    return CallRecord(
        key=CallKey(source, push.call_id),
        direction=push.direction,
        caller=push.from_,
        caller_name=push.caller_name,
        did=push.to if inbound else None,
        queue=None,
        status=status,
        reason=reason,
        rang=[push.operator] if inbound and push.operator else [],
        answered_by=push.operator if inbound and answered else None,
        final_operator=push.operator if inbound and answered else None,
        talk_seconds=push.duration,
        operator=None if inbound else (push.operator or push.from_),
        callee=None if inbound else push.to,
        started_at=push.start,
        answered_at=answered_at,
        ended_at=ended_at,
        recording_file=str(push.recording_url) if push.recording_url else None,
    )


async def log_call(call_log: CallLog, push: CallPush, source: str) -> tuple[Call, bool]:
    """The logged call, and whether it is new (False: this PBX already reported this call)."""
    record = call_record(push, source)
    [new_id] = await call_log.record_many([(record, None)])
    if new_id is not None:
        return await call_log.get(new_id), True
    existing = await call_log.session.scalar(select(Call).where(Call.pbx == source, Call.linkedid == push.call_id))
    assert existing is not None, "record_many skips only a call already logged"
    return existing, False


async def find_by_requisites(book: ClientBook, inn: str, kpp: str | None) -> Client | None:
    """The live card with this INN (and KPP, for a legal entity's branch)."""
    query = select(Client).where(Client.inn == inn, Client.deleted_at.is_(None))
    query = query.where(Client.kpp.is_(None) if kpp is None else Client.kpp == kpp)
    return await book.session.scalar(query.limit(1))


async def upsert_client(book: ClientBook, changes: dict[str, Any], actor: Actor) -> tuple[Client, bool]:
    """Update the card named by ``id``, or the one with the same INN/KPP, or create one.

    Only the fields sent change on an update; a create needs a whole valid card.  Returns the
    card and whether it was created.
    """
    changes = dict(changes)
    client_id = changes.pop("id", None)
    if client_id is None and changes.get("inn"):
        found = await find_by_requisites(book, changes["inn"], changes.get("kpp"))
        client_id = found.id if found is not None else None
    if client_id is not None:
        client, _ = await book.update(client_id, changes, actor)
        return client, False
    return await book.create(ClientIn.model_validate(changes), actor, source="hook"), True


async def request_sync(
    book: ClientBook, client_id: int | None, inn: str | None, kpp: str | None, by: str
) -> tuple[SyncRequest, bool]:
    """Ask for one counterparty's 1C sync; the card is named by id or by INN/KPP."""
    if client_id is not None:
        client = await book.get(client_id)
    elif inn:
        found = await find_by_requisites(book, inn, kpp)
        if found is None:
            raise NotFound(f"no client with INN {inn}" + (f" / KPP {kpp}" if kpp else ""))
        client = found
    else:
        raise InvalidInput("name the client by client_id or by inn", field="client_id")
    return await SyncRequests(book.session).request(client.id, by)
