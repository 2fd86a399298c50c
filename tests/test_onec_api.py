"""/api/onec and a card's 1C block as the accountant's and the operator's pages use them, against
the fake 1C over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crm_core.models import Role
from crm_core.telephony.events import CallKey
from hub.context import HubContext
from hub.onec import OnecSync
from hub.pop_dispatch import PopDispatcher
from hub.screen_pop import PopHub, PopRequest
from hub.web.onec_schemas import (
    CardOnecOut,
    ConflictListOut,
    ConflictOut,
    ConnectionListOut,
    LogListOut,
    ProposalListOut,
    RunOut,
)
from tests.conftest import bearer
from tests.fake_onec import COUNTERPARTIES, INVOICES, SHIPMENTS, FakeOnec, Fault, counterparty
from tests.onec_http import api_json, http, hub_context  # noqa: F401  (fixtures)
from tests.onec_world import client_count, hub_with_onec, seed_onec
from tests.test_screen_pop import Socket

ALPHA = counterparty(Description="Альфа ООО", ИНН="7707083893", КПП="770701001")
BETA = {"name": "Бета", "inn": "7736207543", "kpp": "773601001"}
# Role checks, the engine's handling of a refused item and the documents' cache do not depend on the
# database kind.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _card(http: TestClient, token: str, card: dict[str, Any]) -> int:
    return int((await api_json(http, "POST", "/api/clients", token, 201, json=card))["id"])


async def _finished(http: TestClient, token: str, run_id: int) -> dict[str, Any]:
    """The run once it is over, polled as the page does."""
    for _ in range(400):
        run = await api_json(http, "GET", f"/api/onec/runs/{run_id}", token)
        if run["status"] != "running":
            return RunOut.model_validate(run).model_dump(mode="json")
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} still running")


async def _sync(http: TestClient, token: str) -> dict[str, Any]:
    started = await api_json(http, "POST", "/api/onec/sync", token, 202, json={})
    [only] = started["started"]
    return await _finished(http, token, only["run_id"])


# -- connections, runs and their log ------------------------------------------------------------------


async def test_a_sync_started_from_the_api_runs_in_the_background_and_reports_what_it_did(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec
) -> None:
    token = tokens[Role.accountant]
    alpha = fake.add(COUNTERPARTIES, ALPHA)["Ref_Key"]
    beta = await _card(http, tokens[Role.admin], BETA)
    before = await api_json(http, "GET", "/api/onec/connections", token)
    ConnectionListOut.model_validate(before)
    [connection] = before["items"]
    assert (connection["name"], connection["running"], connection["last_run"], connection["links"]) == (
        "acc", False, None, 0)  # fmt: skip
    fake.inject(Fault("delay", path="$metadata", seconds=0.5))  # a slow 1C: the run is still going below

    resp = await http.post("/api/onec/sync", json={}, headers=bearer(token))
    assert resp.status == 202
    [started] = (await resp.json())["started"]
    again = await http.post("/api/onec/sync", json={"connection": "acc"}, headers=bearer(tokens[Role.admin]))
    assert again.status == 409 and (await again.json())["error"] == "sync_running"
    [running] = (await api_json(http, "GET", "/api/onec/connections", token))["items"]
    assert running["running"] is True and running["last_run"]["id"] == started["run_id"]
    run = await _finished(http, token, started["run_id"])

    assert started["connection"] == "acc"
    assert (run["status"], run["trigger"], run["error"]) == ("done", "api:accountant", None)
    assert run["counts"] == {"created_hub": 1, "created_1c": 1}
    assert run["finished_at"] is not None
    log = await api_json(http, "GET", f"/api/onec/runs/{run['id']}/log", token, params={"action": "created"})
    LogListOut.model_validate(log)
    made = {(e["side"], e["client_id"] if e["side"] == "1c" else e["ref_key"]) for e in log["items"]}
    assert made == {("hub", alpha), ("1c", beta)} and log["total"] == 2
    [after] = (await api_json(http, "GET", "/api/onec/connections", token))["items"]
    assert (after["running"], after["links"], after["open_conflicts"]) == (False, 2, 0)
    assert after["last_success_at"] is not None
    runs = await api_json(http, "GET", "/api/onec/runs", token)
    assert [r["id"] for r in runs["items"]] == [run["id"]]
    assert (await http.get("/api/onec/runs/999999", headers=bearer(token))).status == 404
    bad = await http.post("/api/onec/sync", json={"connection": "trade"}, headers=bearer(token))
    assert bad.status == 404


@SQLITE_ONLY
async def test_only_the_accounting_roles_run_syncs_and_decide_for_them(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    fake.add(COUNTERPARTIES, ALPHA)
    accounting_only = [
        ("GET", "/api/onec/connections", None),
        ("GET", "/api/onec/runs", None),
        ("POST", "/api/onec/sync", {}),
        ("GET", "/api/onec/conflicts", None),
        ("POST", "/api/onec/conflicts/1/resolve", {"choice": "hub"}),
        ("GET", "/api/onec/proposals", None),
        ("POST", "/api/onec/proposals/1/accept", None),
        ("POST", "/api/onec/proposals/1/reject", None),
    ]
    for role in (Role.operator, Role.marketer):
        for method, path, body in accounting_only:
            resp = await http.request(method, path, json=body, headers=bearer(tokens[role]))
            assert resp.status == 403, f"{role.value} {method} {path}: {resp.status}"
    assert fake.requests == []  # nothing reached 1C

    for role in (Role.accountant, Role.admin):
        token = tokens[role]
        assert (await api_json(http, "GET", "/api/onec/conflicts", token))["items"] == []
        assert (await api_json(http, "GET", "/api/onec/proposals", token))["items"] == []
        for method, path, body in accounting_only:
            if "/1/" in path:  # allowed, and told there is no such conflict or proposal
                await api_json(http, method, path, token, 404, json=body)
        run = await _sync(http, token)
        assert run["status"] == "done" and run["trigger"] == f"api:{role.value}"
    assert await client_count(onec.context) == 1  # the second run found nothing new


# -- decisions -----------------------------------------------------------------------------------------


async def test_a_conflict_is_listed_and_the_value_chosen_reaches_both_sides(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    token = tokens[Role.accountant]
    ref = fake.add(COUNTERPARTIES, counterparty(Description="Гамма ООО", ИНН="7707083893", КПП="770701001"))["Ref_Key"]
    await _sync(http, token)
    [card] = (await api_json(http, "GET", "/api/clients", token, params={"inn": "7707083893"}))["items"]
    fake.edit(COUNTERPARTIES, ref, {"Description": "Гамма (1С)"})
    await api_json(http, "PATCH", f"/api/clients/{card['id']}", tokens[Role.operator], json={"name": "Гамма (hub)"})

    run = await _sync(http, token)
    listed = await api_json(http, "GET", "/api/onec/conflicts", token)

    assert run["counts"] == {"conflicts": 1}
    ConflictListOut.model_validate(listed)
    [conflict] = listed["items"]
    assert {k: conflict[k] for k in ("client_id", "client_name", "field", "base_value", "hub_value", "onec_value",
                                     "status")} == {
        "client_id": card["id"], "client_name": "Гамма (hub)", "field": "name", "base_value": "Гамма ООО",
        "hub_value": "Гамма (hub)", "onec_value": "Гамма (1С)", "status": "open",
    }  # fmt: skip
    assert (await api_json(http, "GET", "/api/onec/connections", token))["items"][0]["open_conflicts"] == 1

    resolve = f"/api/onec/conflicts/{conflict['id']}/resolve"
    for blank in ({"choice": "value"}, {"choice": "value", "value": "  "}):  # a card cannot be nameless
        refused = await api_json(http, "POST", resolve, token, 422, json=blank)
        assert refused["details"] == [{"field": "value", "message": "the name cannot be blank"}]
    resolved = await api_json(http, "POST", resolve, token, json={"choice": "value", "value": " Гамма  Групп "})
    ConflictOut.model_validate(resolved)
    assert (resolved["status"], resolved["chosen_value"], resolved["resolved_by"]) == (
        "resolved", "Гамма Групп", "accountant")  # fmt: skip
    twice = await api_json(http, "POST", resolve, token, 409, json={"choice": "hub"})
    assert twice["error"] == "conflict"
    assert (await api_json(http, "GET", "/api/onec/conflicts", token))["items"] == []

    assert await onec.take_requests() == 1  # the decision asked for this card's sync at once
    shown = await api_json(http, "GET", f"/api/clients/{card['id']}", token)
    assert shown["name"] == "Гамма Групп"
    assert fake.get(COUNTERPARTIES, ref)["Description"] == "Гамма Групп"  # type: ignore[index]
    [applied] = (await api_json(http, "GET", "/api/onec/conflicts", token, params={"status": "applied"}))["items"]
    assert applied["id"] == conflict["id"]


async def test_a_linked_counterparty_1c_changed_to_what_the_hub_refuses_is_logged_and_the_run_goes_on(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec
) -> None:
    token = tokens[Role.accountant]
    gamma = fake.add(COUNTERPARTIES, counterparty(Description="Гамма ООО", ИНН="7707083893", КПП="770701001"))
    zeta = fake.add(COUNTERPARTIES, counterparty(Description="Дзета ООО", ИНН="7736207543", КПП="773601001"))
    await _sync(http, token)
    fake.edit(COUNTERPARTIES, gamma["Ref_Key"], {"ИНН": "7707083890"})  # a wrong check digit, typed in 1C
    fake.edit(COUNTERPARTIES, zeta["Ref_Key"], {"Description": "Дзета АО"})

    run = await _sync(http, token)

    assert (run["status"], run["error"]) == ("done", None)
    log = await api_json(http, "GET", f"/api/onec/runs/{run['id']}/log", token, params={"action": "failed"})
    assert [e["ref_key"] for e in log["items"]] == [gamma["Ref_Key"]]
    assert "check digit" in log["items"][0]["detail"]
    names = {c["name"] for c in (await api_json(http, "GET", "/api/clients", token))["items"]}
    assert names == {"Гамма ООО", "Дзета АО"}


async def test_proposed_matches_are_accepted_or_rejected_and_the_next_sync_follows(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    token = tokens[Role.admin]
    seed_onec(fake, [counterparty(Description="Дельта ООО", ИНН="7707083893", КПП="770701001"),
                     counterparty(Description="Каппа ООО", ИНН="7736207543", КПП="773601001")])  # fmt: skip
    delta = await _card(http, token, {"name": "Дельта ООО"})  # no INN: the name alone is not proof
    kappa = await _card(http, token, {"name": "Каппа ООО"})
    assert (await _sync(http, token))["counts"] == {"proposed": 2}

    listed = await api_json(http, "GET", "/api/onec/proposals", token)
    ProposalListOut.model_validate(listed)
    by_card = {p["client_id"]: p for p in listed["items"]}
    assert by_card.keys() == {delta, kappa}
    assert (by_card[delta]["client_name"], by_card[delta]["onec_name"], by_card[delta]["onec_inn"]) == (
        "Дельта ООО", "Дельта ООО", "7707083893")  # fmt: skip
    assert by_card[delta]["reason"] == "the same name"

    accepted = await api_json(http, "POST", f"/api/onec/proposals/{by_card[delta]['id']}/accept", token)
    rejected = await api_json(http, "POST", f"/api/onec/proposals/{by_card[kappa]['id']}/reject", token)
    assert (accepted["status"], accepted["decided_by"]) == ("accepted", "admin")
    assert (rejected["status"], rejected["decided_by"]) == ("rejected", "admin")
    await api_json(http, "POST", f"/api/onec/proposals/{by_card[delta]['id']}/reject", token, 409)
    assert (await api_json(http, "GET", "/api/onec/proposals", token))["items"] == []

    assert await onec.take_requests() == 1  # accepting asked for the card's sync at once
    assert (await api_json(http, "GET", f"/api/clients/{delta}", token))["inn"] == "7707083893"
    run = await _sync(http, token)
    assert run["counts"] == {"created_hub": 1, "created_1c": 1}  # Каппа: two counterparties after all
    assert await client_count(onec.context) == 3 and len(fake.entries(COUNTERPARTIES)) == 3
    assert (await api_json(http, "GET", f"/api/clients/{kappa}", token))["inn"] is None


# -- one card: its 1C block, its sync, its screen-pop ---------------------------------------------------


def _stamp(days_ago: float) -> str:
    return (datetime.now() - timedelta(days=days_ago)).replace(microsecond=0).isoformat()


async def test_a_card_shows_its_1c_documents_and_an_operator_can_queue_its_sync(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    token = tokens[Role.operator]
    ref = fake.add(COUNTERPARTIES, ALPHA)["Ref_Key"]
    other = fake.add(COUNTERPARTIES, counterparty(Description="Другой ООО"))["Ref_Key"]
    invoice = fake.add(INVOICES, {"Контрагент_Key": ref, "Date": _stamp(10), "СуммаДокумента": 15000.5,
                                  "Posted": True})  # fmt: skip
    shipment = fake.add(SHIPMENTS, {"Контрагент_Key": ref, "Date": _stamp(2), "СуммаДокумента": 15000.5})
    fake.add(INVOICES, {"Контрагент_Key": ref, "Date": _stamp(200)})  # older than documents_days
    fake.add(INVOICES, {"Контрагент_Key": ref, "Date": _stamp(1), "DeletionMark": True})
    fake.add(INVOICES, {"Контрагент_Key": other, "Date": _stamp(1)})
    await _sync(http, tokens[Role.accountant])
    [card] = (await api_json(http, "GET", "/api/clients", token, params={"inn": "7707083893"}))["items"]

    block = await api_json(http, "GET", f"/api/clients/{card['id']}/onec", token)

    CardOnecOut.model_validate(block)
    [link] = block["links"]
    assert (link["connection"], link["ref_key"], link["state"]) == ("acc", ref, "linked")
    documents = [(d["type"], d["number"], d["amount"], d["posted"]) for d in block["documents"]["acc"]]
    assert documents == [
        (SHIPMENTS, shipment["Number"], 15000.5, False),
        (INVOICES, invoice["Number"], 15000.5, True),
    ]
    assert block["documents"]["acc"][1]["date"].startswith(invoice["Date"][:10])

    theta = await _card(http, token, {"name": "Тета", "inn": "7710140679", "kpp": "771001001"})
    assert await api_json(http, "GET", f"/api/clients/{theta}/onec", token) == {"links": [], "documents": {"acc": []}}
    first = await api_json(http, "POST", f"/api/clients/{theta}/onec/sync", token, 202)
    second = await api_json(http, "POST", f"/api/clients/{theta}/onec/sync", token, 202)
    assert first["queued"] is True and second == {"request_id": first["request_id"], "queued": False}
    await api_json(http, "POST", "/api/clients/999999/onec/sync", token, 404)

    assert await onec.take_requests() == 1
    [made] = [e for e in fake.entries(COUNTERPARTIES) if e["Description"] == "Тета"]
    [theta_link] = (await api_json(http, "GET", f"/api/clients/{theta}/onec", token))["links"]
    assert (theta_link["ref_key"], theta_link["state"]) == (made["Ref_Key"], "linked")


async def _pop(context: HubContext, sync: OnecSync, linkedid: str, caller: str) -> dict[str, Any]:
    """The frame an operator's browser gets when ``caller`` rings extension 101."""
    pops, socket = PopHub(), Socket()
    pops.attach("101", socket)
    popper = PopDispatcher(context, pops, card_extras=sync.cached_documents)
    popper.start()
    popper.submit(PopRequest(CallKey("office", linkedid), "101", caller, None, "support", "4950000000", "ring"))
    await popper.stop()  # applies what was queued first
    [frame] = socket.frames
    return frame


@SQLITE_ONLY  # the card lookup is tested on both kinds in test_pop_dispatch; the cache holds no rows
async def test_a_screen_pop_carries_cached_1c_documents_and_never_waits_for_1c(
    database_url: str, tmp_path: Path, fake: FakeOnec
) -> None:
    phone = {"Тип": "Телефон", "Вид_Key": fake.kind_key("ТелефонКонтрагента"), "Представление": "+7 495 123-45-67",
             "НомерТелефона": "+74951234567"}  # fmt: skip
    ref = fake.add(COUNTERPARTIES, {**ALPHA, "КонтактнаяИнформация": [phone]})["Ref_Key"]
    invoice = fake.add(INVOICES, {"Контрагент_Key": ref, "Date": _stamp(3), "СуммаДокумента": 990})
    # A zero cache lifetime: every pop finds the documents stale and asks 1C for them afresh.
    async with hub_with_onec(database_url, tmp_path / "data", fake, documents_cache_seconds=0) as sync:
        assert (await sync.run("acc", "test")).counts == {"created_hub": 1}

        cold = await _pop(sync.context, sync, "1.1", "+74951234567")
        client_id = cold["client"]["id"]
        assert cold["client"]["name"] == "Альфа ООО" and cold["client"]["onec"] == {}  # nothing cached yet
        await sync.documents(client_id)  # what the card's page does; the pop never waits for it
        warm = await _pop(sync.context, sync, "1.2", "+74951234567")
        [shown] = warm["client"]["onec"]["acc"]
        assert (shown["number"], shown["amount"], shown["type"]) == (invoice["Number"], 990.0, INVOICES)

        fake.inject(Fault("delay", path=INVOICES, seconds=1.0, times=10))  # 1C hangs
        asked = len(fake.requests)
        started = time.monotonic()
        cached = sync.cached_documents(client_id)
        slow = await _pop(sync.context, sync, "1.3", "+74951234567")
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)  # the background refresh has reached 1C by now

        assert elapsed < 0.5, f"the pop waited {elapsed:.2f}s for 1C"
        assert cached == warm["client"]["onec"] == slow["client"]["onec"]
        assert any(r.entity_set == INVOICES for r in fake.requests[asked:])  # a refresh is on its way
