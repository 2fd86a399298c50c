"""The call log: every finished call stored once, matched to its client, missed calls followed up.

The tracker decides what a call was; this module decides where it belongs: which client
(by the outside party's number, only when the match is unambiguous), and whether it
closes an earlier missed call from the same number ("called back").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, exists, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.audit import Actor
from crm_core.clients import ClientBook, MatchRules
from crm_core.errors import NotFound
from crm_core.models import Call, CallRing, Client, utcnow
from crm_core.outbox import Event, publish
from crm_core.paging import Page, fetch_page
from crm_core.telephony.events import Answered, CallKey, CallRecord, Ringing
from crm_core.telephony.live_notes import merge_live_notes

Owner = tuple[int | None, int | None]  # (client id, contact id) a call is filed under


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


@dataclass(frozen=True, slots=True)
class MissedQuery:
    open_only: bool = True  # only callers nobody has called back (or who got through) since
    queue: str | None = None
    since: datetime | None = None
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True)
class MissedCaller:
    """One caller to call back: their latest missed call and how many times they tried."""

    call: Call
    tries: int
    first_at: datetime | None
    client_name: str | None  # the card the call is filed under, if any


def outside_number(record: CallRecord) -> str | None:
    """The party outside the company: the caller of an inbound call, the callee of an outbound one."""
    if record.direction == "inbound":
        return record.caller
    if record.direction == "outbound":
        return record.callee
    return None


def _row(record: CallRecord, number: str | None, owner: Owner | None) -> dict[str, Any]:
    client_id, contact_id = owner or (None, None)
    return {
        "pbx": record.key.pbx,
        "linkedid": record.key.linkedid,
        "direction": record.direction,
        "caller": record.caller,
        "caller_name": record.caller_name,
        "did": record.did,
        "queue": record.queue,
        "status": record.status,
        "reason": record.reason,
        "answered_by": record.answered_by,
        "transferred_to": record.transferred_to,
        "final_operator": record.final_operator,
        "operator": record.operator,
        "callee": record.callee,
        "originate_id": record.originate_id,
        "number": number,
        "talk_seconds": record.talk_seconds,
        "started_at": record.started_at,
        "answered_at": record.answered_at,
        "ended_at": record.ended_at,
        "hangup_cause": record.hangup_cause,
        "recording_file": record.recording_file,
        "client_id": client_id,
        "contact_id": contact_id,
        "logged_at": utcnow(),
    }


def _insert_new(session: AsyncSession) -> Any:
    """INSERT that skips a call already logged: another node may have written it a moment ago."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Call).on_conflict_do_nothing(index_elements=[Call.pbx, Call.linkedid])


# An answered call closes its number's earlier open missed calls ("called back").
_CLOSE_MISSED = (
    update(Call)
    .where(
        Call.number == bindparam("call_number"),
        Call.status == "missed",
        Call.called_back_at.is_(None),
        or_(Call.started_at.is_(None), Call.started_at <= bindparam("at")),
    )
    .values(called_back_at=bindparam("at"), called_back_by=bindparam("call_id"))
)


class CallLog:
    def __init__(self, session: AsyncSession, rules: MatchRules | None = None) -> None:
        self.session = session
        self.rules = rules or MatchRules()

    async def record(self, record: CallRecord, client_hint: Owner | None = None) -> Call | None:
        """Store one finished call; None when this (PBX, Linkedid) is already logged."""
        [call_id] = await self.record_many([(record, client_hint)])
        return await self.get(call_id) if call_id is not None else None

    async def record_many(self, entries: Sequence[tuple[CallRecord, Owner | None]]) -> list[int | None]:
        """Store finished calls, in a few statements however many there are; returns each new
        call's id, or None for a call already logged (here, by another node, or earlier in ``entries``).

        The hint given with a record, (client id, contact id), files the call under a card
        already known for it (the one a click-to-call was placed from, or the one its pop
        found); otherwise the outside number decides, when it names one client only.
        """
        first: dict[CallKey, tuple[CallRecord, Owner | None]] = {}
        for record, hint in entries:
            first.setdefault(record.key, (record, hint))
        if not first:
            return []
        unknown = [n for record, hint in first.values() if hint is None and (n := outside_number(record))]
        lookups = await ClientBook(self.session, self.rules).find_by_phones(unknown)
        rows = []
        for record, hint in first.values():
            number = outside_number(record)
            if hint is None and number:
                hint = lookups[number].owner
            rows.append(_row(record, number, hint))
        inserted = await self.session.execute(
            _insert_new(self.session).returning(Call.id, Call.pbx, Call.linkedid), rows
        )
        ids = {CallKey(pbx, linkedid): call_id for call_id, pbx, linkedid in inserted}
        await merge_live_notes(self.session, ids)  # what operators wrote while the calls lasted
        connection = await self.session.connection()
        rings = [
            {"call_id": ids[key], "extension": extension, "seq": seq}
            for key, (record, _) in first.items()
            if key in ids
            for seq, extension in enumerate(dict.fromkeys(record.rang))
        ]
        if rings:
            await connection.execute(insert(CallRing), rings)
        callbacks = [
            {
                "call_number": row["number"],
                "at": row["answered_at"] or row["started_at"] or row["logged_at"],
                "call_id": ids[key],
            }
            for key, row in zip(first, rows, strict=True)
            if key in ids and row["status"] == "answered" and row["number"]
        ]
        if callbacks:
            await connection.execute(_CLOSE_MISSED, callbacks)
        await publish(
            self.session,
            *(
                Event(
                    "call.missed" if row["status"] == "missed" else "call.ended",
                    {**row, "id": ids[key], "rang": list(dict.fromkeys(first[key][0].rang))},
                    row["client_id"],
                )
                for key, row in zip(first, rows, strict=True)
                if key in ids
            ),
        )
        result: list[int | None] = []
        for record, _ in entries:  # a repeat within the batch is "already logged", like any other
            result.append(ids.pop(record.key, None))
        return result

    async def announce(self, moments: Sequence[Ringing | Answered]) -> None:
        """``call.ringing`` and ``call.answered`` for calls in progress, in the order given, each
        under the caller's card when the number names one (one lookup for all of them)."""
        numbers = [m.caller for m in moments if m.caller]
        lookups = await ClientBook(self.session, self.rules).find_by_phones(numbers) if numbers else {}
        events = []
        for moment in moments:
            client_id, contact_id = (lookups[moment.caller].owner if moment.caller else None) or (None, None)
            payload: dict[str, Any] = {
                "pbx": moment.key.pbx,
                "linkedid": moment.key.linkedid,
                "extension": moment.extension,
                "caller": moment.caller,
                "queue": moment.queue,
                "at": moment.at,
                "client_id": client_id,
                "contact_id": contact_id,
            }
            if isinstance(moment, Ringing):
                payload |= {"caller_name": moment.caller_name, "did": moment.did, "direction": moment.direction}
            kind = "call.ringing" if isinstance(moment, Ringing) else "call.answered"
            events.append(Event(kind, payload, client_id))
        await publish(self.session, *events)

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

    async def missed_callers(self, query: MissedQuery) -> Page[MissedCaller]:
        """Missed calls one line per number, newest first: the operator calls a person back
        once, not once per attempt.  A call without a number (withheld) is a line of its own."""
        conditions: list[Any] = [Call.status == "missed"]
        if query.open_only:
            conditions.append(Call.called_back_at.is_(None))
        if query.queue:
            conditions.append(Call.queue == query.queue)
        if query.since is not None:
            conditions.append(Call.started_at >= query.since)
        caller = func.coalesce(Call.number, literal("#") + cast(Call.id, String))
        ranked = (
            select(
                Call.id,
                func.row_number()
                .over(partition_by=caller, order_by=(Call.started_at.desc(), Call.id.desc()))
                .label("rank"),
                func.count().over(partition_by=caller).label("tries"),
                func.min(Call.started_at).over(partition_by=caller).label("first_at"),
            )
            .where(*conditions)
            .subquery()
        )
        latest = ranked.c.rank == 1
        total = await self.session.scalar(select(func.count()).select_from(ranked).where(latest))
        rows = await self.session.execute(
            select(Call, ranked.c.tries, ranked.c.first_at, Client.name)
            .join(ranked, ranked.c.id == Call.id)
            .outerjoin(Client, Client.id == Call.client_id)
            .where(latest)
            .order_by(Call.started_at.desc(), Call.id.desc())
            .offset((query.page - 1) * query.per_page)
            .limit(query.per_page)
        )
        items = [MissedCaller(call, tries, first_at, name) for call, tries, first_at, name in rows]
        return Page(items, int(total or 0), query.page, query.per_page)

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
