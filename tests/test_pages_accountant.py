"""The accountant's 1C pages: in a real browser (headless Chromium) against the fake 1C, an
accountant runs a sync, reads its log, resolves a conflict field by field, decides a proposed
match and syncs one counterparty; over plain HTTP, who may open the pages and what the API
adds for them (a one-card sync's outcome, failures by kind, the cards' names and requisites)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import expect

from crm_core.models import Role, utcnow
from crm_core.onec.models import OnecRun, RunStatus
from crm_core.users import UserDirectory
from hub.context import HubContext
from hub.onec import OnecSync
from hub.web.onec_api import failure_kind
from hub.web.onec_schemas import LogListOut, ProposalListOut, RunOut, SyncRequestOut
from tests.browser import chromium, logged_in, screenshot
from tests.conftest import PASSWORD, bearer
from tests.fake_onec import COUNTERPARTIES, FakeOnec, Fault, counterparty
from tests.onec_http import api_json, http, hub_context  # noqa: F401  (fixtures)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PAGES = ("/onec", "/onec/runs", "/onec/runs/1", "/onec/conflicts", "/onec/card")
GAMMA = counterparty(Description="Гамма ООО", НаименованиеПолное="ООО «Гамма»", ИНН="7707083893", КПП="770701001")
DELTA = counterparty(Description="Дельта ООО", ИНН="7736207543", КПП="773601001")
SEEN = 15_000  # ms: the one-card sync watcher polls every 2 s, then syncs


async def _finished(http: TestClient, token: str, run_id: int) -> dict[str, Any]:
    for _ in range(400):
        run = await api_json(http, "GET", f"/api/onec/runs/{run_id}", token)
        if run["status"] != "running":
            return dict(run)
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} still running")


async def _answered(http: TestClient, token: str, request_id: int) -> dict[str, Any]:
    for _ in range(200):
        asked = await api_json(http, "GET", f"/api/onec/requests/{request_id}", token)
        if asked["status"] != "pending":
            SyncRequestOut.model_validate(asked)
            return dict(asked)
        await asyncio.sleep(0.05)
    raise AssertionError(f"sync request {request_id} still pending")


# -- the browser ----------------------------------------------------------------------------------


@SQLITE_ONLY  # the pages only call the API, which test_onec_api runs on both databases
async def test_an_accountant_syncs_reads_the_log_resolves_a_conflict_per_field_and_syncs_one_card(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    gamma = fake.add(COUNTERPARTIES, GAMMA)["Ref_Key"]
    fake.add(COUNTERPARTIES, DELTA)
    delta = (await api_json(http, "POST", "/api/clients", tokens[Role.admin], 201, json={"name": "Дельта ООО"}))["id"]
    await onec.start()  # the one-card requests' watcher (no schedule: interval 0)
    fake.inject(Fault("delay", path="$metadata", seconds=1.5))  # slow enough to watch the sync run

    async with chromium() as browser:
        page = await logged_in(browser, str(http.make_url("")), "accountant", PASSWORD)
        assert page.url.endswith("/onec")  # where an accountant lands
        connection = page.locator(".connection[data-connection=acc]")
        await expect(connection.locator(".last-success")).to_have_text("ещё не было")
        await screenshot(page, "onec-connections-before")

        # A sync from the page: the status refreshes by itself while it runs and after.
        await connection.locator("button.sync-now").click()
        await expect(connection.locator(".state.running")).to_have_text("Идёт синхронизация")
        await expect(connection.locator("button.sync-now")).to_be_disabled()
        await expect(connection.locator(".state.idle")).to_be_visible(timeout=10_000)
        await expect(connection.locator(".last-success .age")).to_have_text("(только что)")
        await expect(connection.locator(".last-run [data-count=created_hub]")).to_have_text("создано в хабе: 1")
        await expect(connection.locator(".last-run [data-count=proposed]")).to_have_text("на сопоставление: 1")
        await expect(connection.locator(".number-links strong")).to_have_text("1")
        await screenshot(page, "onec-connections")

        # The history, then the run's log with a link to the card it made.
        await page.click("#tab-runs")
        [run] = (await api_json(http, "GET", "/api/onec/runs", tokens[Role.accountant]))["items"]
        row = page.locator(f"tr.run[data-run='{run['id']}']")
        await expect(row).to_contain_text("вручную (accountant)")
        await expect(row.locator(".status-done")).to_have_text("успешно")
        await screenshot(page, "onec-history")
        await row.locator("a").click()
        await expect(page.locator("h1")).to_have_text(f"Синхронизация №{run['id']}")
        made = page.locator("tr.entry.action-created")
        await expect(made.locator(".what")).to_have_text("Создана карточка в хабе (из 1С)")
        await expect(made.locator("a.client-link")).to_have_text("Гамма ООО")
        card_id = int(await made.get_attribute("data-client") or 0)
        assert await made.locator("a.client-link").get_attribute("href") == f"/clients/{card_id}"
        await expect(page.locator("tr.entry.action-proposed .detail")).to_have_text("то же наименование")
        await screenshot(page, "onec-run-log")

        # Both sides change two fields differently: two conflicts.
        fake.edit(COUNTERPARTIES, gamma, {"Description": "Гамма (1С)", "НаименованиеПолное": "ООО «Гамма» из 1С"})
        await api_json(http, "PATCH", f"/api/clients/{card_id}", tokens[Role.operator],
                    json={"name": "Гамма (хаб)", "full_name": "ООО «Гамма» из хаба"})  # fmt: skip
        await page.click("#tab-connections")
        await connection.locator("button.sync-now").click()
        await expect(connection.locator(".last-run [data-count=conflicts]")).to_have_text("конфликтов: 2",
                                                                                           timeout=10_000)  # fmt: skip
        await expect(connection.locator(".number-open_conflicts strong")).to_have_text("2")

        # Side by side, a choice per field: 1C's name, the hub's full name.
        await page.click("#tab-conflicts")
        panel = page.locator(f".conflict[data-client='{card_id}']")
        name, full = panel.locator("tr[data-field=name]"), panel.locator("tr[data-field=full_name]")
        await expect(name.locator("th")).to_have_text("Наименование")
        await expect(name.locator("td.base")).to_have_text("Гамма ООО")
        await expect(name.locator("td.hub")).to_have_text("Гамма (хаб)")
        await expect(name.locator("td.onec")).to_have_text("Гамма (1С)")
        await expect(full.locator("td.hub")).to_have_text("ООО «Гамма» из хаба")
        await expect(full.locator("td.onec")).to_have_text("ООО «Гамма» из 1С")
        proposal = page.locator(f".proposal[data-client='{delta}']")
        await expect(proposal.locator(".onec-inn")).to_have_text("7736207543")
        await expect(proposal.locator(".hub-inn")).to_have_text("(пусто)")
        await name.get_by_label("из 1С").check()
        await full.get_by_label("из хаба").check()
        await expect(name.locator("td.onec.chosen")).to_be_visible()
        await screenshot(page, "onec-conflicts")
        await panel.locator("button.apply").click()
        decided = page.locator(f".conflict.decided[data-client='{card_id}']")
        await expect(decided.locator("tr[data-field=name] .chosen-value")).to_have_text("Выбрано: Гамма (1С)")
        await expect(decided.locator(".state.applied")).to_have_count(2, timeout=SEEN)
        await proposal.locator("button.accept").click()
        await expect(proposal.locator(".decision")).to_contain_text("Сопоставлено")
        await screenshot(page, "onec-conflicts-resolved")

        token = tokens[Role.accountant]
        shown = await api_json(http, "GET", f"/api/clients/{card_id}", token)
        assert (shown["name"], shown["full_name"]) == ("Гамма (1С)", "ООО «Гамма» из хаба")
        item = fake.get(COUNTERPARTIES, gamma)
        assert item is not None and (item["Description"], item["НаименованиеПолное"]) == (
            "Гамма (1С)", "ООО «Гамма» из хаба")  # fmt: skip
        applied = (await api_json(http, "GET", "/api/onec/conflicts", token, params={"status": "applied"}))["items"]
        assert {c["field"]: c["chosen_value"] for c in applied} == {"name": "Гамма (1С)",
                                                                    "full_name": "ООО «Гамма» из хаба"}  # fmt: skip
        [accepted] = (await api_json(http, "GET", "/api/onec/proposals", token, params={"status": "accepted"}))["items"]
        assert (accepted["client_id"], accepted["decided_by"]) == (delta, "accountant")

        # One counterparty, found by INN, synced alone: it picks up what 1C changed.
        fake.edit(COUNTERPARTIES, gamma, {"Description": "Гамма Плюс"})
        await page.click("#tab-card")
        await page.fill("#q", "7707083893")
        await page.click("#search button[type=submit]")
        found = page.locator(f"tr.found-card[data-client='{card_id}']")
        await expect(found).to_contain_text("7707083893 / 770701001")
        await found.locator("button.choose").click()
        await page.click("#sync-card")
        await expect(page.locator("#outcome-title")).to_have_text("Синхронизация завершена", timeout=SEEN)
        updated = page.locator("#outcome tr.entry.action-updated")
        await expect(updated.locator(".what")).to_have_text("Обновлена карточка в хабе (из 1С)")
        await expect(updated.locator(".fields")).to_have_text("Наименование")
        await expect(page.locator("#outcome .card-name")).to_have_text("Гамма Плюс")
        await screenshot(page, "onec-one-counterparty")
        assert (await api_json(http, "GET", f"/api/clients/{card_id}", token))["name"] == "Гамма Плюс"

        # 1C down: the connection's page says so in plain words, the technical text folded away.
        fake.inject(Fault("status", status=503, times=20))
        await page.click("#tab-connections")
        await connection.locator("button.sync-now").click()
        failure = connection.locator(".last-error .failure-plain")
        await expect(failure).to_contain_text("1С не отвечает", timeout=20_000)
        await screenshot(page, "onec-connections-failed")
        await page.click("#tab-runs")  # newest first: the failed run, the card's, the decisions', the two syncs
        rows = page.locator("tr.run")
        await expect(rows.first.locator(".failure-plain")).to_contain_text("1С не отвечает")
        ids = [int(await row.get_attribute("data-run") or 0) for row in await rows.all()]
        assert len(ids) >= 4 and ids == sorted(ids, reverse=True)
        await screenshot(page, "onec-history-later")
        await page.click("#tab-connections")

        # The same pages in English, switched from the header.
        await page.click("#switch-language")
        await expect(page.locator("h1")).to_have_text("1C sync")
        await expect(connection.locator(".last-error .failure-plain")).to_contain_text("1C does not answer")
        await screenshot(page, "onec-connections-en")
        await page.click("#tab-conflicts")
        await expect(page.locator("#no-conflicts")).to_have_text("No conflicts")
        await screenshot(page, "onec-conflicts-en")
        await _old_runs(onec.context, 20)  # a long history comes a page at a time
        await page.click("#tab-runs")
        await expect(page.locator(".pager .muted")).to_have_text("Page 1 of 2")
        await page.click(".pager button.next")
        await expect(page.locator("tr.run").last).to_have_attribute("data-run", str(ids[-1]))
        await expect(page.locator(".pager .muted")).to_have_text("Page 2 of 2")
        await screenshot(page, "onec-history-en")
    assert await _locale(onec.context, "accountant") == "en"


async def _old_runs(context: HubContext, count: int) -> None:
    """Finished runs numbered after the real ones, as a busy month leaves them."""
    async with context.transaction() as session:
        for _ in range(count):
            session.add(OnecRun(connection="acc", trigger="schedule", status=RunStatus.done, counts={"unchanged": 3},
                                started_at=utcnow(), heartbeat_at=utcnow(), finished_at=utcnow()))  # fmt: skip


async def _locale(context: HubContext, username: str) -> str:
    async with context.reading() as session:
        return (await UserDirectory(session).by_username(username)).locale


# -- plain HTTP ------------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_the_1c_pages_are_the_accounting_roles_own(http: TestClient, tokens: dict[Role, str]) -> None:
    for path in PAGES:
        resp = await http.get(path, allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (303, f"/login?next={path}"), path
        for role in (Role.operator, Role.marketer):
            refused = await http.get(path, headers=bearer(tokens[role]))
            assert refused.status == 403, f"{role.value} {path}"
            assert "Эта страница недоступна" in await refused.text()
    for role in (Role.accountant, Role.admin):
        for path in ("/onec", "/onec/runs", "/onec/conflicts", "/onec/card"):
            resp = await http.get(path, headers=bearer(tokens[role]))
            assert resp.status == 200, f"{role.value} {path}"
            assert "/static/accountant.js" in await resp.text()
        missing = await http.get("/onec/runs/1", headers=bearer(tokens[role]))
        assert missing.status == 404 and "accountant-run.js" not in await missing.text()
    for script in ("accountant", "accountant-connections", "accountant-runs", "accountant-run",
                   "accountant-conflicts", "accountant-card"):  # fmt: skip
        assert (await http.get(f"/static/{script}.js")).status == 200, script


async def test_a_one_card_sync_request_reports_what_its_sync_did_to_the_card(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec, onec: OnecSync
) -> None:
    token = tokens[Role.accountant]
    ref = fake.add(COUNTERPARTIES, GAMMA)["Ref_Key"]
    run = await api_json(http, "POST", "/api/onec/sync", token, 202, json={})
    first = await _finished(http, token, run["started"][0]["run_id"])
    RunOut.model_validate(first)
    assert first["error_kind"] is None
    log = await api_json(http, "GET", f"/api/onec/runs/{first['id']}/log", token)
    LogListOut.model_validate(log)
    [made] = log["items"]
    assert (made["action"], made["client_name"]) == ("created", "Гамма ООО")
    card = made["client_id"]
    fake.edit(COUNTERPARTIES, ref, {"Description": "Гамма Плюс"})

    asked = await api_json(http, "POST", f"/api/clients/{card}/onec/sync", tokens[Role.operator], 202)
    waiting = await api_json(http, "GET", f"/api/onec/requests/{asked['request_id']}", tokens[Role.operator])
    assert (waiting["status"], waiting["runs"], waiting["log"]) == ("pending", [], [])
    assert await onec.take_requests() == 1
    answer = await _answered(http, token, asked["request_id"])

    assert (answer["status"], answer["client_id"], answer["client_name"]) == ("done", card, "Гамма Плюс")
    assert (answer["detail"], answer["error_kind"], answer["requested_by"]) == (None, None, "operator")
    [taken] = answer["runs"]
    assert (taken["trigger"], taken["status"]) == ("request", "done")
    assert [(e["action"], e["side"], e["fields"]) for e in answer["log"]] == [("updated", "hub", ["name"])]
    assert (await http.get("/api/onec/requests/999999", headers=bearer(token))).status == 404
    marketer = await http.get(f"/api/onec/requests/{asked['request_id']}", headers=bearer(tokens[Role.marketer]))
    assert marketer.status == 403

    fake.inject(Fault("status", status=503, times=20))  # 1C's web server down: the request fails, said why
    again = await api_json(http, "POST", f"/api/clients/{card}/onec/sync", token, 202)
    assert await onec.take_requests() == 1
    failed = await _answered(http, token, again["request_id"])
    assert (failed["status"], failed["error_kind"]) == ("failed", "unreachable")
    assert failed["detail"].startswith("acc: 1C (acc, ")
    assert [r["error_kind"] for r in failed["runs"]] == ["unreachable"]


@SQLITE_ONLY
async def test_a_proposal_shows_the_cards_requisites_beside_1cs(
    http: TestClient, tokens: dict[Role, str], fake: FakeOnec
) -> None:
    token = tokens[Role.accountant]
    fake.add(COUNTERPARTIES, DELTA)
    await api_json(http, "POST", "/api/clients", token, 201, json={"name": "Дельта ООО", "kpp": "773601001"})
    run = await api_json(http, "POST", "/api/onec/sync", token, 202, json={})
    await _finished(http, token, run["started"][0]["run_id"])
    listed = await api_json(http, "GET", "/api/onec/proposals", token)
    ProposalListOut.model_validate(listed)
    [proposal] = listed["items"]
    assert (proposal["client_name"], proposal["client_inn"], proposal["client_kpp"], proposal["onec_inn"]) == (
        "Дельта ООО", None, "773601001", "7736207543")  # fmt: skip


def test_failures_are_told_apart_by_what_the_user_must_do() -> None:
    assert failure_kind(None) is None and failure_kind("") is None
    assert failure_kind("1C (acc, http://x): no answer in time") == "unreachable"
    assert failure_kind("1C (acc, http://x): the web server in front of 1C answered 503") == "unreachable"
    assert failure_kind("1C (acc) refused the login 'Администратор': check the user, ...") == "login"
    assert failure_kind("1C does not publish Catalog_Контрагенты in its standard OData interface.") == "not_published"
    assert failure_kind("1C's Catalog_Контрагенты has no property ИНН: check the connection's kind") == "schema"
    assert failure_kind("interrupted: the process running it stopped") == "interrupted"
    assert failure_kind("stopped: CancelledError") == "interrupted"
    assert failure_kind("Не удалось записать: Контрагент (Гамма)!") == "refused"
