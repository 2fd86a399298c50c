"""Incoming webhooks: a token per outside system; clients, calls and 1C sync requests pushed in,
all or nothing, with a precise 4xx for what is wrong."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm_core.models import AuditEntry, Call, Client
from crm_core.outbox import OutboxEvent
from crm_core.sync_requests import SyncRequest
from hub.context import HubContext
from tests.conftest import bearer

ROMASHKA = {"name": "Ромашка", "inn": "7707083893", "kpp": "773601001", "phones": [{"number": "+7 495 123-45-67"}]}
CALL = {
    "call_id": "c-1001",
    "from": "+74951234567",
    "to": "+74957654321",
    "direction": "inbound",
    "start": "2026-11-30T10:15:00+03:00",
    "duration": 95,
    "wait": 12,
    "status": "answered",
    "operator": "alice",
    "recording_url": "https://pbx.example.net/rec/c-1001.mp3",
}


async def _hook(http: TestClient, tokens: dict, name: str, kinds: list[str]) -> str:
    resp = await http.post("/api/hooks", json={"name": name, "kinds": kinds}, headers=bearer(tokens["admin"]))
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["token"].startswith("hook_")
    return str(body["token"])


async def _counts(context: HubContext) -> dict[str, int]:
    async with context.sessions() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Client, Call, OutboxEvent, SyncRequest)
        }


async def _events(context: HubContext, kind: str) -> list[OutboxEvent]:
    async with context.sessions() as session:
        return list((await session.scalars(select(OutboxEvent).where(OutboxEvent.type == kind))).all())


async def _post(http: TestClient, path: str, token: str, body: Any) -> tuple[int, Any]:
    resp = await http.post(path, json=body, headers=bearer(token))
    return resp.status, await resp.json()


async def test_the_token_is_shown_once_and_a_revoked_one_stops_working(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    token = await _hook(http, tokens, "site", ["clients"])
    listed = await (await http.get("/api/hooks", headers=bearer(tokens["admin"]))).json()
    [hook] = listed["items"]
    assert hook["name"] == "site" and hook["token"] is None and token not in str(listed)
    assert (
        await http.post("/api/hooks", json={"name": "site", "kinds": ["calls"]}, headers=bearer(tokens["admin"]))
    ).status == 409
    assert (
        await http.post("/api/hooks", json={"name": "x", "kinds": ["nothing"]}, headers=bearer(tokens["admin"]))
    ).status == 422

    status, _ = await _post(http, "/hooks/clients", token, {"name": "Первый"})
    assert status == 200
    assert (await http.delete(f"/api/hooks/{hook['id']}", headers=bearer(tokens["admin"]))).status == 204
    before = await _counts(hub_context)
    status, body = await _post(http, "/hooks/clients", token, {"name": "Второй"})
    assert (status, body["error"]) == (401, "bad_token")
    assert await _counts(hub_context) == before


async def test_a_wrong_token_gets_401_and_changes_nothing(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    good = await _hook(http, tokens, "cloudpbx", ["calls"])
    before = await _counts(hub_context)
    for headers in ({}, bearer("hook_forged"), bearer(good + "x"), bearer(tokens["admin"])):
        resp = await http.post("/hooks/calls", json=CALL, headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"] == "bad_token"
    resp = await http.post("/hooks/clients", json=ROMASHKA, headers=bearer(good))  # a token for calls only
    assert resp.status == 403
    assert await _counts(hub_context) == before


async def test_a_cloud_pbx_call_is_logged_under_its_client_once(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    resp = await http.post("/api/clients", json=ROMASHKA, headers=bearer(tokens["operator"]))
    client_id = (await resp.json())["id"]
    token = await _hook(http, tokens, "cloudpbx", ["calls"])

    status, body = await _post(http, "/hooks/calls", token, CALL)
    assert status == 200, body
    assert body["logged"] is True and body["status"] == "answered" and body["client_id"] == client_id
    status, again = await _post(http, "/hooks/calls", token, CALL)
    assert (status, again["logged"], again["call_id"]) == (200, False, body["call_id"])

    call = await (await http.get(f"/api/calls/{body['call_id']}", headers=bearer(tokens["operator"]))).json()
    assert call["pbx"] == "hook:cloudpbx" and call["linkedid"] == "c-1001"
    assert call["answered_by"] == "alice" and call["talk_seconds"] == 95
    assert call["started_at"].startswith("2026-11-30T07:15:00")  # kept in UTC
    assert call["answered_at"].startswith("2026-11-30T07:15:12")
    assert call["recording_file"] == CALL["recording_url"]
    [ended] = await _events(hub_context, "call.ended")
    assert ended.client_id == client_id and ended.payload["linkedid"] == "c-1001"

    missed = {**CALL, "call_id": "c-1002", "status": "busy", "duration": 0, "recording_url": None}
    status, body = await _post(http, "/hooks/calls", token, missed)
    assert (status, body["status"]) == (200, "missed")
    [event] = await _events(hub_context, "call.missed")
    assert event.payload["reason"] == "busy" and event.client_id == client_id


async def test_a_bad_call_gets_a_precise_422_and_nothing_is_logged(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    token = await _hook(http, tokens, "cloudpbx", ["calls"])
    before = await _counts(hub_context)
    cases = {
        "start": {**CALL, "start": "2026-11-30T10:15:00"},  # no time zone
        "from": {k: v for k, v in CALL.items() if k != "from"},
        "status": {**CALL, "status": "ok"},
        "duration": {**CALL, "duration": -1},
        "unanswered with a duration": {**CALL, "status": "missed"},
        "recording_url": {**CALL, "recording_url": "javascript:alert(1)"},
        "extra": {**CALL, "extra": 1},
    }
    for name, body in cases.items():
        status, answer = await _post(http, "/hooks/calls", token, body)
        assert status == 422, name
        assert answer["error"] == "invalid" and answer["details"], name
        where = " ".join(str(d) for d in answer["details"])
        assert name.split()[0] in where or "duration" in where, (name, answer)
    resp = await http.post(
        "/hooks/calls", data=b"{not json", headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert await _counts(hub_context) == before


async def test_a_website_creates_then_updates_a_client_by_inn_or_id(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    token = await _hook(http, tokens, "site", ["clients"])
    status, created = await _post(http, "/hooks/clients", token, ROMASHKA)
    assert status == 200 and created["created"] is True and created["version"] == 1

    status, by_inn = await _post(
        http, "/hooks/clients", token, {"inn": "7707083893", "kpp": "773601001", "tags": ["site"]}
    )
    assert status == 200 and by_inn == {"id": created["id"], "created": False, "version": 2}
    status, by_id = await _post(http, "/hooks/clients", token, {"id": created["id"], "website": "romashka.ru"})
    assert status == 200 and by_id["version"] == 3

    card = await (await http.get(f"/api/clients/{created['id']}", headers=bearer(tokens["operator"]))).json()
    assert card["name"] == "Ромашка" and card["tags"] == ["site"] and card["website"] == "romashka.ru"
    assert len(await _events(hub_context, "client.created")) == 1
    assert len(await _events(hub_context, "client.updated")) == 2
    async with hub_context.sessions() as session:
        actors = set(
            (
                await session.scalars(
                    select(AuditEntry.username).where(AuditEntry.entity == "client", AuditEntry.action != "read")
                )
            ).all()
        )
    assert actors == {"hook:site"}

    status, body = await _post(http, "/hooks/clients", token, {"id": 999999, "name": "Нет такого"})
    assert status == 404, body


async def test_a_bad_client_change_is_refused_whole(http: TestClient, tokens: dict, hub_context: HubContext) -> None:
    token = await _hook(http, tokens, "site", ["clients"])
    _, first = await _post(http, "/hooks/clients", token, ROMASHKA)
    _, other = await _post(
        http, "/hooks/clients", token, {"name": "Лютик", "inn": "500100732259", "kind": "sole_trader"}
    )
    before = await _counts(hub_context)

    # A new name with a bad phone: neither is taken.
    status, body = await _post(
        http, "/hooks/clients", token, {"id": first["id"], "name": "Новое", "phones": [{"number": "1" * 40}]}
    )
    assert status == 422 and "phones" in str(body["details"])
    # Another card's INN: refused as a conflict, the name stays.
    taken = {"id": other["id"], "name": "Лютик 2", "kind": "legal_entity", "inn": "7707083893", "kpp": "773601001"}
    status, body = await _post(http, "/hooks/clients", token, taken)
    assert status == 409, body
    # A new card without a name.
    status, body = await _post(http, "/hooks/clients", token, {"inn": "7736207543"})
    assert status == 422 and "name" in str(body["details"])

    assert await _counts(hub_context) == before
    for client_id, name in ((first["id"], "Ромашка"), (other["id"], "Лютик")):
        card = await (await http.get(f"/api/clients/{client_id}", headers=bearer(tokens["operator"]))).json()
        assert card["name"] == name and card["version"] == 1


async def test_a_1c_sync_request_is_queued_once_per_card(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    token = await _hook(http, tokens, "site", ["clients", "onec_sync"])
    _, client = await _post(http, "/hooks/clients", token, ROMASHKA)

    status, first = await _post(http, "/hooks/onec-sync", token, {"inn": "7707083893", "kpp": "773601001"})
    assert (
        status == 202 and first["new"] is True and first["client_id"] == client["id"] and first["status"] == "pending"
    )
    status, again = await _post(http, "/hooks/onec-sync", token, {"client_id": client["id"]})
    assert status == 202 and again["new"] is False and again["id"] == first["id"]

    assert (await _post(http, "/hooks/onec-sync", token, {"inn": "7736207543"}))[0] == 404
    assert (await _post(http, "/hooks/onec-sync", token, {}))[0] == 422
    assert (await _post(http, "/hooks/onec-sync", token, {"inn": "12"}))[0] == 422
    async with hub_context.sessions() as session:
        [request] = (await session.scalars(select(SyncRequest))).all()
    assert request.requested_by == "hook:site"
