"""/api/calls as operators and integrators use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from crm_core.telephony.events import CallKey, CallRecord
from hub.context import HubContext
from hub.web.schemas import CallOut, CallPageOut
from tests.conftest import bearer

T0 = datetime(2026, 11, 23, 23, 27, 50, tzinfo=UTC)


async def _log(context: HubContext, linkedid: str, caller: str, status: str, minutes: int = 0) -> int:
    record = CallRecord(
        key=CallKey("office", linkedid),
        direction="inbound",
        caller=caller,
        caller_name=None,
        did="4950000000",
        queue="support",
        status=status,
        reason=None if status == "answered" else "abandoned",
        rang=["101", "102"],
        answered_by="101" if status == "answered" else None,
        final_operator="101" if status == "answered" else None,
        talk_seconds=5 if status == "answered" else 0,
        started_at=T0 + timedelta(minutes=minutes),
        ended_at=T0 + timedelta(minutes=minutes, seconds=8),
    )
    async with context.transaction() as session:
        call = await CallLog(session, context.rules).record(record)
    assert call is not None
    return call.id


async def test_call_log_filters_by_status_number_and_operator(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    await _log(hub_context, "1.0", "+74951234567", "missed")
    answered = await _log(hub_context, "1.1", "+74951234567", "answered", minutes=3)
    await _log(hub_context, "1.2", "+79160000000", "missed", minutes=5)
    token = bearer(tokens[Role.operator])

    async def linkedids(**params: str) -> list[str]:
        resp = await http.get("/api/calls", params=params, headers=token)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        CallPageOut.model_validate(page)
        return [c["linkedid"] for c in page["items"]]

    assert await linkedids() == ["1.2", "1.1", "1.0"]
    assert await linkedids(status="missed") == ["1.2", "1.0"]
    assert await linkedids(number="8 (495) 123-45-67") == ["1.1", "1.0"]
    assert await linkedids(open_missed="true") == ["1.2"]  # 1.0 was called back by 1.1
    assert await linkedids(operator="102", status="missed") == ["1.2", "1.0"]
    assert await linkedids(since=(T0 + timedelta(minutes=4)).isoformat()) == ["1.2"]
    one = await (await http.get(f"/api/calls/{answered}", headers=token)).json()
    CallOut.model_validate(one)
    assert (one["status"], one["answered_by"], one["talk_seconds"], one["pbx"]) == ("answered", "101", 5, "office")


async def test_operator_writes_notes_on_a_call(http: TestClient, tokens: dict, hub_context: HubContext) -> None:
    call_id = await _log(hub_context, "2.0", "+74951234567", "answered")
    resp = await http.patch(
        f"/api/calls/{call_id}", json={"notes": "Хочет счёт на 10 шт."}, headers=bearer(tokens[Role.operator])
    )
    assert resp.status == 200 and (await resp.json())["notes"] == "Хочет счёт на 10 шт."
    refused = await http.patch(f"/api/calls/{call_id}", json={"notes": "x"}, headers=bearer(tokens[Role.marketer]))
    assert refused.status == 403


async def test_click_to_call_without_a_pbx_is_a_clear_503(http: TestClient, tokens: dict) -> None:
    resp = await http.post(
        "/api/calls/originate", json={"number": "+7 495 765-43-21"}, headers=bearer(tokens[Role.operator])
    )
    assert resp.status == 503 and (await resp.json())["error"] == "no_pbx"
    no_extension = await http.post(
        "/api/calls/originate", json={"number": "+7 495 765-43-21"}, headers=bearer(tokens[Role.admin])
    )
    assert no_extension.status == 422
