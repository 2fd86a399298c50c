"""The call log: once per call, filed under the right client, missed calls followed up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.telephony.call_log import CallLog, CallQuery, call_to_dict
from crm_core.telephony.events import CallKey, CallRecord
from crm_core.timeline import client_timeline

T0 = datetime(2026, 11, 23, 23, 27, 50, tzinfo=UTC)


def _record(
    linkedid: str, caller: str | None = "+74951234567", status: str = "answered", **extra: object
) -> CallRecord:
    values: dict[str, object] = {
        "key": CallKey("office", linkedid),
        "direction": "inbound",
        "caller": caller,
        "caller_name": None,
        "did": "4950000000",
        "queue": "support",
        "status": status,
        "reason": None if status == "answered" else "abandoned",
        "rang": ["101", "102"],
        "answered_by": "101" if status == "answered" else None,
        "final_operator": "101" if status == "answered" else None,
        "talk_seconds": 5 if status == "answered" else 0,
        "started_at": T0,
        "answered_at": T0 + timedelta(seconds=3) if status == "answered" else None,
        "ended_at": T0 + timedelta(seconds=8),
    }
    values.update(extra)
    return CallRecord(**values)  # type: ignore[arg-type]


async def test_a_call_is_logged_once_however_often_it_is_replayed(session: AsyncSession) -> None:
    log = CallLog(session)
    first = await log.record(_record("1795476470.0"))
    assert first is not None
    assert await log.record(_record("1795476470.0")) is None
    await session.commit()
    page = await log.search(CallQuery())
    assert page.total == 1
    assert call_to_dict(page.items[0])["rang"] == ["101", "102"]


async def test_call_is_filed_under_the_client_whose_number_called(session: AsyncSession) -> None:
    client = await ClientBook(session).create(
        ClientIn(name="Ромашка", contacts=[{"first_name": "Иван", "phones": [{"number": "8 495 123-45-67"}]}]), SYSTEM
    )
    call = await CallLog(session).record(_record("1.0"))
    assert call is not None and (call.client_id, call.contact_id) == (client.id, client.contacts[0].id)
    timeline = await client_timeline(session, client.id)
    assert [(i.kind, i.title) for i in timeline] == [("card", "Card created"), ("call", "Incoming call")]


async def test_number_shared_by_two_clients_files_the_call_under_neither(session: AsyncSession) -> None:
    book = ClientBook(session)
    for name in ("Альфа", "Бета"):
        await book.create(ClientIn(name=name, phones=[{"number": "+7 495 123-45-67"}]), SYSTEM)
    call = await CallLog(session).record(_record("2.0"))
    assert call is not None and call.client_id is None and call.number == "+74951234567"


async def test_answered_call_from_the_same_number_marks_missed_ones_called_back(session: AsyncSession) -> None:
    log = CallLog(session)
    missed = await log.record(_record("3.0", status="missed"))
    other = await log.record(_record("3.1", caller="+79160000000", status="missed"))
    assert (await log.search(CallQuery(open_missed=True))).total == 2
    later = _record(
        "3.2",
        direction="outbound",
        caller=None,
        callee="+74951234567",
        operator="102",
        started_at=T0 + timedelta(minutes=5),
        answered_at=T0 + timedelta(minutes=5, seconds=4),
    )
    answered = await log.record(later)
    assert answered is not None and missed is not None and other is not None
    await session.refresh(missed)
    await session.refresh(other)
    assert missed.called_back_by == answered.id and missed.called_back_at == later.answered_at
    assert other.called_back_at is None
    assert [c.id for c in (await log.search(CallQuery(open_missed=True))).items] == [other.id]


async def test_missed_calls_per_operator_and_per_queue(session: AsyncSession) -> None:
    log = CallLog(session)
    await log.record(_record("4.0", status="missed"))
    await log.record(replace(_record("4.1", status="missed"), queue="sales", rang=["201", "202"]))
    await log.record(_record("4.2"))
    by_201 = await log.search(CallQuery(operator="201", status="missed"))
    assert [c.linkedid for c in by_201.items] == ["4.1"]
    by_101 = await log.search(CallQuery(operator="101"))
    assert sorted(c.linkedid for c in by_101.items) == ["4.0", "4.2"]
    support_missed = await log.search(CallQuery(queue="support", status="missed"))
    assert [c.linkedid for c in support_missed.items] == ["4.0"]


async def test_period_filter_uses_the_start_time(session: AsyncSession) -> None:
    log = CallLog(session)
    await log.record(_record("5.0"))
    await log.record(_record("5.1", started_at=T0 + timedelta(days=1)))
    page = await log.search(CallQuery(since=T0 + timedelta(hours=1)))
    assert [c.linkedid for c in page.items] == ["5.1"]


async def test_a_batch_is_stored_whole_with_repeats_and_earlier_calls_skipped(session: AsyncSession) -> None:
    """The writer hands a backlog over at once: each call once, rings kept, callbacks closed."""
    log = CallLog(session)
    earlier = await log.record(_record("6.0", status="missed"))
    assert earlier is not None
    answered_later = _record("6.2", started_at=T0 + timedelta(minutes=1), answered_at=T0 + timedelta(minutes=1))
    ids = await log.record_many(
        [
            (_record("6.0", status="missed"), None),  # logged before (by this node or another)
            (_record("6.1", caller="+79160000000", status="missed"), None),
            (answered_later, None),
            (answered_later, None),  # the same call twice in one batch
        ]
    )
    assert ids[0] is None and ids[1] is not None and ids[2] is not None and ids[3] is None
    await session.commit()
    page = await log.search(CallQuery())
    assert sorted(c.linkedid for c in page.items) == ["6.0", "6.1", "6.2"]
    assert all(call_to_dict(c)["rang"] == ["101", "102"] for c in page.items)
    await session.refresh(earlier)
    assert earlier.called_back_by == ids[2] and earlier.called_back_at == answered_later.answered_at
    assert [c.linkedid for c in (await log.search(CallQuery(open_missed=True))).items] == ["6.1"]


async def test_a_known_card_is_used_without_looking_the_number_up(session: AsyncSession) -> None:
    book = ClientBook(session)
    number_holder = await book.create(ClientIn(name="Ромашка", phones=[{"number": "+7 495 123-45-67"}]), SYSTEM)
    chosen = await book.create(ClientIn(name="Лютик"), SYSTEM)
    [by_hint, by_number] = await CallLog(session).record_many(
        [(_record("7.0"), (chosen.id, None)), (_record("7.1"), None)]
    )
    assert by_hint is not None and by_number is not None
    assert (await CallLog(session).get(by_hint)).client_id == chosen.id
    assert (await CallLog(session).get(by_number)).client_id == number_holder.id
