"""The operator's console and missed calls: who may open them, notes written while a call
lasts (kept by the call's key until its log row exists), missed callers one line per number,
and the pages themselves in a real browser driven by a replayed PBX."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm_core.audit import Actor
from crm_core.models import Call, Role
from crm_core.telephony.call_log import CallLog, MissedQuery
from crm_core.telephony.events import CallKey
from crm_core.telephony.live_notes import LiveCallNote, write_live_note
from crm_core.users import UserDirectory
from hub.context import HubContext
from tests.browser import chromium, logged_in, screenshot
from tests.conftest import PASSWORD, bearer, password_hash
from tests.fake_ami import FakeAmi
from tests.test_call_log import T0, _record
from tests.test_telephony_e2e import Hub, running_hub

ANNA = Actor(None, "anna")
KEY = CallKey("office", "1795476470.0")


# -- who may open the pages ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/operator", "/calls/missed"])
async def test_operator_pages_refuse_marketers_and_accountants_and_send_strangers_to_login(
    http: TestClient, tokens: dict, path: str
) -> None:
    resp = await http.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/login?next={path}"
    for role in ("marketer", "accountant"):
        await http.post("/api/auth/login", json={"username": role, "password": PASSWORD})
        refused = await http.get(path)
        assert refused.status == 403 and "Нет доступа" in await refused.text()
        await http.post("/api/auth/logout")
    for role in ("operator", "admin"):
        await http.post("/api/auth/login", json={"username": role, "password": PASSWORD})
        assert (await http.get(path)).status == 200
        await http.post("/api/auth/logout")


# -- a note on a call in progress ------------------------------------------------------------------


async def _note_on_row(context: HubContext, key: CallKey) -> str:
    async with context.reading() as session:
        call = await session.scalar(select(Call).where(Call.pbx == key.pbx, Call.linkedid == key.linkedid))
        assert call is not None
        return call.notes


async def _kept(context: HubContext) -> int:
    async with context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(LiveCallNote)) or 0)


async def test_a_note_written_while_the_call_lasts_lands_on_its_log_row(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        assert await write_live_note(session, KEY, "просит счёт", ANNA) is None  # no row yet: kept
    async with hub_context.transaction() as session:
        assert await write_live_note(session, KEY, "просит счёт на 10 000", ANNA) is None  # the last word wins
    async with hub_context.transaction() as session:
        call = await CallLog(session).record(_record(KEY.linkedid))
        assert call is not None
    assert await _note_on_row(hub_context, KEY) == "просит счёт на 10 000"
    assert await _kept(hub_context) == 0


async def test_a_note_on_a_call_already_logged_goes_on_its_row_at_once(hub_context: HubContext) -> None:
    async with hub_context.transaction() as session:
        call = await CallLog(session).record(_record(KEY.linkedid))
        assert call is not None
        call_id = call.id
    async with hub_context.transaction() as session:
        assert await write_live_note(session, KEY, "перезвонить в 15:00", ANNA) == call_id
    assert await _note_on_row(hub_context, KEY) == "перезвонить в 15:00"
    assert await _kept(hub_context) == 0


async def test_other_calls_keep_their_notes_and_a_note_forgotten_for_a_week_is_dropped(
    hub_context: HubContext,
) -> None:
    other = CallKey("office", "2.0")
    async with hub_context.transaction() as session:
        await write_live_note(session, other, "чужой звонок", ANNA)
        await write_live_note(session, CallKey("office", "lost"), "потерян", ANNA)
        lost = await session.get(LiveCallNote, ("office", "lost"))
        assert lost is not None
        lost.updated_at = T0 - timedelta(days=30)
    async with hub_context.transaction() as session:
        await CallLog(session).record(_record(KEY.linkedid))
    assert await _note_on_row(hub_context, KEY) == ""
    async with hub_context.transaction() as session:
        await write_live_note(session, KEY, "ок", ANNA)
        assert await session.get(LiveCallNote, ("office", "lost")) is None
        assert (await session.get(LiveCallNote, ("office", "2.0"))) is not None


@pytest.mark.parametrize("note_first", [True, False])
async def test_a_note_and_the_call_log_writing_at_the_same_moment_never_lose_the_note(
    hub_context: HubContext, note_first: bool
) -> None:
    """Two units of work at once, in either order: the first holds its transaction open while
    the second starts; the note still ends up on the row, on SQLite and on PostgreSQL."""
    first_in = asyncio.Event()
    release = asyncio.Event()
    answers: dict[str, object] = {}

    async def note() -> None:
        async with hub_context.transaction() as session:
            if not note_first:
                await first_in.wait()
            answers["call_id"] = await write_live_note(session, KEY, "заказ 42", ANNA)
            if note_first:
                first_in.set()
                await release.wait()

    async def log() -> None:
        async with hub_context.transaction() as session:
            if note_first:
                await first_in.wait()
            await CallLog(session).record(_record(KEY.linkedid))
            if not note_first:
                first_in.set()
                await release.wait()

    tasks = [asyncio.create_task(note()), asyncio.create_task(log())]
    await first_in.wait()
    await asyncio.sleep(0.3)  # the second is now waiting on the first (or about to)
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 20)
    assert await _note_on_row(hub_context, KEY) == "заказ 42"
    assert await _kept(hub_context) == 0
    if not note_first:
        assert answers["call_id"] is not None


async def test_live_note_api_keeps_the_note_then_the_call_row_carries_it(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    operator = bearer(tokens[Role.operator])
    url = f"/api/calls/live/{KEY.pbx}/{KEY.linkedid}/notes"
    resp = await http.put(url, json={"notes": "хочет скидку"}, headers=operator)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"pbx": "office", "linkedid": KEY.linkedid, "notes": "хочет скидку", "call_id": None}
    refused = await http.put(url, json={"notes": "x"}, headers=bearer(tokens[Role.marketer]))
    assert refused.status == 403
    async with hub_context.transaction() as session:
        call = await CallLog(session).record(_record(KEY.linkedid))
        assert call is not None
        call_id = call.id
    row = await (await http.get(f"/api/calls/{call_id}", headers=operator)).json()
    assert row["notes"] == "хочет скидку"
    again = await (await http.put(url, json={"notes": "хочет скидку 5%"}, headers=operator)).json()
    assert again["call_id"] == call_id
    assert (await (await http.get(f"/api/calls/{call_id}", headers=operator)).json())["notes"] == "хочет скидку 5%"


# -- missed callers --------------------------------------------------------------------------------


async def test_missed_callers_are_one_line_per_number_with_their_tries_newest_first(
    http: TestClient, tokens: dict, hub_context: HubContext
) -> None:
    async with hub_context.transaction() as session:
        log = CallLog(session)
        for n, (caller, minutes) in enumerate(
            [("+74957770011", 0), ("+74957770011", 5), ("+74991112233", 7), (None, 8), (None, 9)]
        ):
            start = T0 + timedelta(minutes=minutes)
            await log.record(_record(f"m{n}", caller, "missed", started_at=start, ended_at=start))
        later = T0 + timedelta(minutes=10)
        await log.record(_record("a1", "+74991112233", started_at=later, answered_at=later))  # got through
    resp = await http.get("/api/calls/missed", headers=bearer(tokens[Role.operator]))
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert [(i["call"]["number"], i["tries"]) for i in page["items"]] == [(None, 1), (None, 1), ("+74957770011", 2)]
    assert page["items"][2]["call"]["linkedid"] == "m1" and page["total"] == 3
    assert page["items"][2]["first_at"].startswith("2026-11-23T23:27:50")
    every = await (await http.get("/api/calls/missed?open_only=false", headers=bearer(tokens[Role.operator]))).json()
    assert [(i["call"]["number"], i["tries"]) for i in every["items"]][2:] == [
        ("+74991112233", 1),
        ("+74957770011", 2),
    ]
    async with hub_context.reading() as session:
        paged = await CallLog(session).missed_callers(MissedQuery(per_page=2, page=2))
        assert [m.call.linkedid for m in paged.items] == ["m1"] and paged.total == 3


# -- the pages in a real browser -------------------------------------------------------------------

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the storage is tested above


async def _can_log_in(hub: Hub, *names: str, locale: str = "ru") -> None:
    async with hub.context.transaction() as session:
        for name in names:
            user = await UserDirectory(session).by_username(name)
            user.password_hash = password_hash()
            user.locale = locale


@SQLITE_ONLY
async def test_operator_creates_the_unknown_caller_and_writes_a_note_that_lands_on_the_call_log(
    database_url: str, tmp_path: Path
) -> None:
    async with FakeAmi(speed=1) as fake, running_hub(database_url, tmp_path / "data", {"office": fake}) as hub:
        await _can_log_in(hub, "op102")
        async with chromium() as browser:
            page = await logged_in(browser, str(hub.http.make_url("")), "op102", PASSWORD)
            await page.goto("/operator")
            await page.wait_for_selector("#state.ok")
            await screenshot(page, "operator-console-waiting")

            replay = fake.play("inbound_direct_answered", speed=0.5)  # +74991112233, nobody knows it; 102 answers
            await page.wait_for_selector(".pop .unknown", timeout=10_000)
            assert await page.text_content(".pop h2.caller") == "+74991112233"
            await screenshot(page, "operator-pop-unknown")

            await page.keyboard.press("c")  # quick-create, from the keyboard
            form = page.locator(".pop form.create")
            assert await form.locator("input[name=name]").evaluate("e => e === document.activeElement")
            assert await form.locator("input[name=phone]").input_value() == "+74991112233"
            await form.locator("input[name=name]").fill("Лютик")
            await screenshot(page, "operator-quick-create")
            await form.locator("button[type=submit]").click()
            name = await page.wait_for_selector(".pop .client-name")
            assert await name.text_content() == "Лютик"
            href = await name.get_attribute("href")
            assert href is not None and href.startswith("/clients/")
            client_id = int(href.rsplit("/", 1)[1])

            await page.keyboard.press("n")  # the note box of the call in progress
            await page.keyboard.type("Просит счёт на 10 000 ₽")
            await page.keyboard.press("Control+Enter")
            await page.wait_for_selector(".pop .note-state.ok")
            assert await page.text_content(".pop .note-state") == "Заметка сохранена, попадёт в журнал после звонка"
            await screenshot(page, "operator-pop-note")

            await page.wait_for_selector(".pop.withdrawn .withdraw-reason", timeout=20_000)
            await replay.wait()
            [call] = await hub.wait_for_calls(1, timeout=10)
            assert (call["notes"], call["client_id"], call["number"]) == (
                "Просит счёт на 10 000 ₽",
                client_id,
                "+74991112233",
            )
            row = await (await hub.http.get(f"/api/calls/{call['id']}", headers=hub.admin)).json()
            assert row["notes"] == "Просит счёт на 10 000 ₽"
            # the operator sees it too, in their recent calls
            await page.wait_for_selector("#recent-calls td.notes:has-text('Просит счёт')", timeout=10_000)
            assert await page.locator(".pop .close-pop").count() == 1  # a pop with a note waits to be closed
        client = await (await hub.http.get(f"/api/clients/{client_id}", headers=hub.admin)).json()
        assert [p["e164"] for p in client["phones"]] == ["+74991112233"]


@SQLITE_ONLY
async def test_missed_call_is_called_back_and_shortcuts_find_a_client(database_url: str, tmp_path: Path) -> None:
    async with FakeAmi(speed=50) as fake, running_hub(database_url, tmp_path / "data", {"office": fake}) as hub:
        await _can_log_in(hub, "op101")
        await fake.play("inbound_queue_missed").wait()  # +74957770011 gave up in queue sales
        await hub.wait_for_calls(1, timeout=10)
        async with chromium() as browser:
            page = await logged_in(browser, str(hub.http.make_url("")), "op101", PASSWORD)
            await page.goto("/operator")
            await page.wait_for_selector("#state.ok")
            await page.keyboard.press("/")
            assert await page.evaluate("document.activeElement.id") == "search"
            await page.keyboard.type("Ромаш")
            found = page.locator("#search-results a")
            await found.first.wait_for()
            assert await found.all_text_contents() == ["Ромашка"]
            assert (await found.first.get_attribute("href") or "").startswith("/clients/")
            await page.keyboard.press("Escape")
            await page.keyboard.press("?")
            await page.wait_for_selector("#shortcuts-help[open]")
            await screenshot(page, "operator-shortcuts")
            await page.keyboard.press("Escape")
            await page.keyboard.press("m")
            await page.wait_for_url("**/calls/missed")

            line = page.locator("#missed tbody tr")
            await line.first.locator(".call-back").wait_for()
            assert await line.count() == 1
            cells = await line.first.locator("td").all_text_contents()
            assert cells[1] == "+74957770011" and cells[2] == "sales" and cells[3] == "1" and cells[4] == "ждёт звонка"
            await screenshot(page, "missed-calls")
            await line.first.locator(".call-back").click()
            result = line.first.locator(".call-result.ok")
            await result.wait_for(timeout=10_000)
            assert await result.text_content() == "АТС соединяет: снимите трубку (+74957770011)"
            [action] = fake.actions_named("Originate")
            assert (action.get("Channel"), action.get("Exten")) == ("Local/101@agents/n", "74957770011")
            await screenshot(page, "missed-calls-called-back")

            await _can_log_in(hub, "op101", locale="en")
            await page.reload()
            await line.first.locator(".call-back").wait_for()
            assert await page.text_content("h1") == "Missed calls"
            assert await line.first.locator(".call-back").text_content() == "Call back"
            await screenshot(page, "missed-calls-en")
            await page.goto("/operator")
            await page.wait_for_selector("#state.ok")
            assert await page.text_content("#state") == "Connected: calls will pop up here"
            await screenshot(page, "operator-console-en")
