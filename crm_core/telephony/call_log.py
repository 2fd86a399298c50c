"""The call log: every finished call stored once, matched to its client, missed calls followed up.

The tracker decides what a call was; this module decides where it belongs: which client
(by the outside party's number, only when the match is unambiguous), and whether it
closes an earlier missed call from the same number ("called back").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.audit import Actor
from crm_core.clients import ClientBook, MatchRules
from crm_core.errors import NotFound
from crm_core.models import Call, CallRing
from crm_core.paging import Page, fetch_page
from crm_core.telephony.events import CallRecord


@dataclass(frozen=True, slots=True)
class CallQuery:
    client_id: int | None = None
    operator: str | None = None  # an extension: calls it rang for, answered, placed or ended with
    queue: str | None = None
    status: str | None = None
    number: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    open_missed: bool = False  # missed and not yet called back
    page: int = 1
    per_page: int = 50


def outside_number(record: CallRecord) -> str | None:
    """The party outside the company: the caller of an inbound call, the callee of an outbound one."""
    if record.direction == "inbound":
        return record.caller
    if record.direction == "outbound":
        return record.callee
    return None


class CallLog:
    def __init__(self, session: AsyncSession, rules: MatchRules | None = None) -> None:
        self.session = session
        self.rules = rules or MatchRules()

    async def record(self, record: CallRecord, client_hint: tuple[int | None, int | None] | None = None) -> Call | None:
        """Store a finished call; None when this (PBX, Linkedid) is already logged.

        ``client_hint`` (client id, contact id) files a click-to-call under the card it was
        placed from; otherwise the outside number decides, when it names one client only.
        """
        key = record.key
        if await self.session.scalar(select(Call.id).where(Call.pbx == key.pbx, Call.linkedid == key.linkedid)):
            return None
        number = outside_number(record)
        client_id, contact_id = client_hint or (None, None)
        if number and client_id is None:
            lookup = await ClientBook(self.session, self.rules).find_by_phone(number)
            if len(lookup.client_ids) == 1:
                client_id = lookup.client_ids[0]
                contacts = {c.contact_id for c in lookup.candidates}
                contact_id = contacts.pop() if len(contacts) == 1 else None
        call = Call(
            pbx=key.pbx,
            linkedid=key.linkedid,
            direction=record.direction,
            caller=record.caller,
            caller_name=record.caller_name,
            did=record.did,
            queue=record.queue,
            status=record.status,
            reason=record.reason,
            answered_by=record.answered_by,
            transferred_to=record.transferred_to,
            final_operator=record.final_operator,
            operator=record.operator,
            callee=record.callee,
            originate_id=record.originate_id,
            number=number,
            talk_seconds=record.talk_seconds,
            started_at=record.started_at,
            answered_at=record.answered_at,
            ended_at=record.ended_at,
            hangup_cause=record.hangup_cause,
            recording_file=record.recording_file,
            client_id=client_id,
            contact_id=contact_id,
            rings=[CallRing(extension=ext, seq=i) for i, ext in enumerate(dict.fromkeys(record.rang))],
        )
        try:
            async with self.session.begin_nested():
                self.session.add(call)
        except IntegrityError:  # another node logged the same call a moment ago
            return None
        if call.status == "answered" and number:
            await self._close_missed(call, number)
        return call

    async def _close_missed(self, call: Call, number: str) -> None:
        """An answered call with a number closes that number's earlier open missed calls."""
        at = call.answered_at or call.started_at or call.logged_at
        await self.session.execute(
            update(Call)
            .where(
                Call.number == number,
                Call.status == "missed",
                Call.called_back_at.is_(None),
                Call.id != call.id,
                or_(Call.started_at.is_(None), Call.started_at <= at),
            )
            .values(called_back_at=at, called_back_by=call.id)
        )

    async def get(self, call_id: int) -> Call:
        call = await self.session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id} not found")
        return call

    async def search(self, query: CallQuery) -> Page[Call]:
        conditions: list[Any] = []
        if query.client_id is not None:
            conditions.append(Call.client_id == query.client_id)
        if query.operator:
            ext = query.operator
            rang = exists().where(CallRing.call_id == Call.id, CallRing.extension == ext)
            conditions.append(or_(Call.final_operator == ext, Call.answered_by == ext, Call.operator == ext, rang))
        if query.queue:
            conditions.append(Call.queue == query.queue)
        if query.status:
            conditions.append(Call.status == query.status)
        if query.number:
            conditions.append(Call.number == query.number)
        if query.since is not None:
            conditions.append(Call.started_at >= query.since)
        if query.until is not None:
            conditions.append(Call.started_at < query.until)
        if query.open_missed:
            conditions.append(and_(Call.status == "missed", Call.called_back_at.is_(None)))
        return await fetch_page(
            self.session,
            Call,
            and_(True, *conditions),
            (Call.started_at.desc(), Call.id.desc()),
            query.page,
            query.per_page,
        )

    async def recent_for_client(self, client_id: int, limit: int = 5) -> list[Call]:
        return (await self.search(CallQuery(client_id=client_id, per_page=limit))).items

    async def set_notes(self, call_id: int, notes: str, actor: Actor) -> Call:
        call = await self.get(call_id)
        call.notes = notes
        audit.record(self.session, actor, "update", "call", call.id, changed=["notes"])
        return call


def call_to_dict(call: Call) -> dict[str, Any]:
    """A call as the API shows it: the fields of expected.json plus where and when."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": call.id,
        "pbx": call.pbx,
        "linkedid": call.linkedid,
        "direction": call.direction,
        "caller": call.caller,
        "caller_name": call.caller_name,
        "did": call.did,
        "queue": call.queue,
        "status": call.status,
        "reason": call.reason,
        "rang": [r.extension for r in call.rings],
        "answered_by": call.answered_by,
        "transferred_to": call.transferred_to,
        "final_operator": call.final_operator,
        "talk_seconds": call.talk_seconds,
        "operator": call.operator,
        "callee": call.callee,
        "originate_id": call.originate_id,
        "number": call.number,
        "client_id": call.client_id,
        "contact_id": call.contact_id,
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "hangup_cause": call.hangup_cause,
        "recording_file": call.recording_file,
        "notes": call.notes,
        "called_back_at": iso(call.called_back_at),
        "called_back_by": call.called_back_by,
    }
