"""The client API as an integrator and the pages' JavaScript use it, on both databases."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from crm_core.models import Role
from hub.web.schemas import ClientOut, ClientPage, ImportReportOut, LookupOut, TimelineOut
from tests.conftest import bearer

ROMASHKA = {
    "name": "Ромашка",
    "full_name": "ООО «Ромашка»",
    "inn": "7707083893",
    "kpp": "773601001",
    "tags": ["vip", "опт"],
    "phones": [{"number": "8 (495) 123-45-67", "label": "office"}],
    "emails": [{"address": "Info@Romashka.ru"}],
    "contacts": [
        {
            "first_name": "Иван",
            "last_name": "Петров",
            "position": "директор",
            "phones": [{"number": "+7 916 555-12-34"}],
            "emails": [{"address": "ivan@romashka.ru"}],
        }
    ],
    "custom_fields": {"segment": "B2B"},
}


async def _create(http: TestClient, token: str, card: dict) -> dict:
    resp = await http.post("/api/clients", json=card, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_token_creates_client_found_by_e164_and_by_ten_digits(http: TestClient, tokens: dict) -> None:
    created = await _create(
        http, tokens[Role.operator], {"name": "Ромашка", "phones": [{"number": "8 (495) 123-45-67"}]}
    )
    ClientOut.model_validate(created)
    for query in ("+74951234567", "4951234567"):
        resp = await http.get("/api/clients", params={"phone": query}, headers=bearer(tokens[Role.operator]))
        page = await resp.json()
        ClientPage.model_validate(page)
        assert [c["id"] for c in page["items"]] == [created["id"]], query
        assert page["items"][0]["phones"][0] == {
            "id": page["items"][0]["phones"][0]["id"],
            "number": "8 (495) 123-45-67",
            "e164": "+74951234567",
            "extension": None,
            "label": "",
        }


async def test_card_round_trip_keeps_contacts_tags_and_raw_numbers(http: TestClient, tokens: dict) -> None:
    created = await _create(http, tokens[Role.admin], ROMASHKA)
    resp = await http.get(f"/api/clients/{created['id']}", headers=bearer(tokens[Role.marketer]))
    card = await resp.json()
    assert resp.headers["ETag"] == '"1"'
    assert card["tags"] == ["vip", "опт"]
    assert card["contacts"][0]["last_name"] == "Петров"
    assert card["contacts"][0]["phones"][0]["e164"] == "+79165551234"
    assert card["emails"][0]["address"] == "Info@Romashka.ru"
    assert card["custom_fields"] == {"segment": "B2B"}


async def test_search_by_name_inn_email_tag_and_free_text(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.operator]
    romashka = await _create(http, token, ROMASHKA)
    await _create(http, token, {"name": "Лютик", "kind": "individual", "inn": "500100732259"})

    async def ids(**params: str) -> list[int]:
        resp = await http.get("/api/clients", params=params, headers=bearer(token))
        assert resp.status == 200
        return [c["id"] for c in (await resp.json())["items"]]

    assert await ids(name="ромаш") == [romashka["id"]]
    assert await ids(inn="770708") == [romashka["id"]]
    assert await ids(email="INFO@romashka.ru") == [romashka["id"]]
    assert await ids(email="ivan@ROMASHKA.ru") == [romashka["id"]]
    assert await ids(tag="опт") == [romashka["id"]]
    assert await ids(q="+7 916 555 12 34") == [romashka["id"]]
    assert await ids(q="РОМАШКА") == [romashka["id"]]
    assert len(await ids()) == 2


async def test_search_is_paginated_with_total(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.operator]
    for n in range(5):
        await _create(http, token, {"name": f"Клиент {n}"})
    resp = await http.get("/api/clients", params={"per_page": "2", "page": "3"}, headers=bearer(token))
    page = await resp.json()
    assert (page["total"], page["page"], page["per_page"]) == (5, 3, 2)
    assert [c["name"] for c in page["items"]] == ["Клиент 4"]


async def test_ambiguous_number_returns_every_candidate(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.operator]
    a = await _create(http, token, {"name": "Альфа", "phones": [{"number": "+7 495 111-22-33"}]})
    b = await _create(http, token, {"name": "Бета", "phones": [{"number": "8 495 111 22 33"}]})
    resp = await http.get("/api/lookup/phone", params={"number": "84951112233"}, headers=bearer(token))
    lookup = await resp.json()
    LookupOut.model_validate(lookup)
    assert lookup["match"] == "exact" and lookup["ambiguous"] is True
    assert sorted(c["client_id"] for c in lookup["candidates"]) == sorted([a["id"], b["id"]])


async def test_patch_changes_fields_checks_version_and_is_audited(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.operator]
    created = await _create(http, token, ROMASHKA)
    url = f"/api/clients/{created['id']}"
    resp = await http.patch(url, json={"status": "inactive", "version": 1}, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["version"] == 2
    stale = await http.patch(url, json={"name": "X"}, headers={**bearer(token), "If-Match": '"1"'})
    assert stale.status == 409
    assert (await stale.json())["error"] == "conflict"

    timeline = await (await http.get(url + "/timeline", headers=bearer(token))).json()
    TimelineOut.model_validate(timeline)
    assert [i["title"] for i in timeline["items"]] == ["Card changed", "Card created"]
    assert timeline["items"][0]["data"]["changed"]["status"] == ["active", "inactive"]

    audit = await (
        await http.get("/api/audit", params={"entity_id": str(created["id"])}, headers=bearer(tokens[Role.admin]))
    ).json()
    assert [(e["action"], e["username"]) for e in audit["items"]][:2] == [
        ("update", "operator"),
        ("create", "operator"),
    ]


async def test_reading_a_card_is_written_to_the_audit_log(http: TestClient, tokens: dict) -> None:
    created = await _create(http, tokens[Role.admin], ROMASHKA)
    await http.get(f"/api/clients/{created['id']}", headers=bearer(tokens[Role.marketer]))
    audit = await (await http.get("/api/audit", params={"action": "read"}, headers=bearer(tokens[Role.admin]))).json()
    assert [(e["username"], e["entity_id"], e["ip"]) for e in audit["items"]] == [
        ("marketer", str(created["id"]), "127.0.0.1")
    ]


async def test_invalid_card_gets_422_naming_the_problem(http: TestClient, tokens: dict) -> None:
    resp = await http.post("/api/clients", json={"name": "X", "inn": "7707083894"}, headers=bearer(tokens[Role.admin]))
    assert resp.status == 422
    body = await resp.json()
    assert "INN check digit" in body["details"][0]["message"]
    resp = await http.post(
        "/api/clients", data=b"{not json", headers={**bearer(tokens[Role.admin]), "Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"] == "bad_json"


async def test_duplicate_inn_and_kpp_is_a_conflict(http: TestClient, tokens: dict) -> None:
    await _create(http, tokens[Role.admin], ROMASHKA)
    resp = await http.post("/api/clients", json={**ROMASHKA, "name": "Другая"}, headers=bearer(tokens[Role.admin]))
    assert resp.status == 409


async def test_deleted_client_is_gone_from_reads_and_lookups(http: TestClient, tokens: dict) -> None:
    created = await _create(http, tokens[Role.admin], ROMASHKA)
    resp = await http.delete(f"/api/clients/{created['id']}", headers=bearer(tokens[Role.admin]))
    assert resp.status == 204
    assert (await http.get(f"/api/clients/{created['id']}", headers=bearer(tokens[Role.admin]))).status == 404
    lookup = await (
        await http.get("/api/lookup/phone", params={"number": "+74951234567"}, headers=bearer(tokens[Role.admin]))
    ).json()
    assert lookup == {"match": "none", "ambiguous": False, "candidates": []}


CP1251_CSV = (
    "Наименование;ИНН;КПП;Телефон;Email\n"
    "Ромашка;7707083893;773601001;8 (495) 123-45-67;info@romashka.ru\n"
    "Сломанный;1234567890;;;\n"
    "Лютик;;;+7 916 000-00-01;not-an-email\n"
    "Василёк;;;+7 916 000-00-02;vasilek@example.ru\n"
).encode("cp1251")


async def test_csv_dry_run_reports_bad_rows_and_changes_nothing(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.accountant]
    resp = await http.post(
        "/api/clients/import",
        params={"dry_run": "true"},
        data=CP1251_CSV,
        headers={**bearer(token), "Content-Type": "text/csv"},
    )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    ImportReportOut.model_validate(report)
    assert report["encoding"] == "cp1251"
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert report["imported"] == 0
    total = (await (await http.get("/api/clients", headers=bearer(token))).json())["total"]
    assert total == 0


async def test_csv_all_or_nothing_imports_nothing_when_a_row_is_bad(http: TestClient, tokens: dict) -> None:
    token = tokens[Role.accountant]
    resp = await http.post(
        "/api/clients/import", data=CP1251_CSV, headers={**bearer(token), "Content-Type": "text/csv"}
    )
    assert resp.status == 422
    assert (await resp.json())["applied"] is False
    assert (await (await http.get("/api/clients", headers=bearer(token))).json())["total"] == 0

    resp = await http.post(
        "/api/clients/import",
        params={"mode": "good"},
        data=CP1251_CSV,
        headers={**bearer(token), "Content-Type": "text/csv"},
    )
    report = await resp.json()
    assert resp.status == 200 and report["imported"] == 2
    names = [c["name"] for c in (await (await http.get("/api/clients", headers=bearer(token))).json())["items"]]
    assert names == ["Василёк", "Ромашка"]


async def test_export_is_csv_and_audited(http: TestClient, tokens: dict) -> None:
    await _create(http, tokens[Role.admin], ROMASHKA)
    resp = await http.get("/api/clients/export", headers=bearer(tokens[Role.accountant]))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf") and "Ромашка" in body.decode("utf-8-sig")
    audit = await (await http.get("/api/audit", params={"action": "export"}, headers=bearer(tokens[Role.admin]))).json()
    assert audit["items"][0]["username"] == "accountant"
    assert audit["items"][0]["details"]["count"] == 1


async def test_unreadable_csv_is_a_400_saying_why(http: TestClient, tokens: dict) -> None:
    headers = {**bearer(tokens[Role.accountant]), "Content-Type": "text/csv"}
    for payload in (b"", b"PK\x03\x04\x14\x00\x06\x00binary xlsx"):
        resp = await http.post("/api/clients/import", params={"dry_run": "true"}, data=payload, headers=headers)
        assert resp.status == 400
        body = await resp.json()
        assert body["error"] == "bad_file" and body["message"]


async def test_thirty_operators_saving_at_once_all_succeed(http: TestClient, tokens: dict) -> None:
    async def save(n: int) -> int:
        card = {"name": f"Клиент {n}", "phones": [{"number": f"+7 495 000-00-{n:02d}"}]}
        resp = await http.post("/api/clients", json=card, headers=bearer(tokens[Role.operator]))
        return resp.status

    assert await asyncio.gather(*(save(n) for n in range(30))) == [201] * 30
