"""The fake 1C infobase itself, over real HTTP: if it lies, every OData test built on it lies too."""

from __future__ import annotations

import asyncio
import base64
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from crm_core.requisites import inn_problem, kpp_problem, ogrn_problem
from tests.fake_onec import (
    CONTACT_KINDS,
    COUNTERPARTIES,
    EMPTY_REF,
    INVOICES,
    SHIPMENTS,
    FakeOnec,
    Fault,
    counterparty,
    generate_counterparties,
)

EDM = "{http://schemas.microsoft.com/ado/2009/11/edm}"
JSON = {"$format": "json"}


def basic(user: str = "Администратор", password: str = "секрет", encoding: str = "utf-8") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode(encoding)).decode("ascii")
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOnec]:
    onec = FakeOnec()
    await onec.start()
    yield onec
    await onec.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=basic()) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params={**JSON, **params}) as response:
        return response.status, await response.json(content_type=None)


def seed_small_base(fake: FakeOnec) -> dict[str, str]:
    """Five counterparties, a folder and a deleted one; returns their keys by nickname."""
    phone = fake.kind_key("ТелефонКонтрагента")
    rows = [{"Тип": "Телефон", "Вид_Key": phone, "Представление": "+7 495 111-22-33", "НомерТелефона": "+74951112233"}]
    made = {
        "romashka": counterparty(
            Description="Ромашка ООО", ИНН="7707083893", КПП="770701001", КонтактнаяИнформация=rows
        ),
        "vector": counterparty(Description="Вектор АО", ИНН="5024089920", КПП="501701001"),
        "oneil": counterparty(Description="О'Нил ИП", ИНН="500100732259", ЮридическоеФизическоеЛицо="ФизическоеЛицо"),
        "alpha": counterparty(Description="Альфа ООО", ИНН="7710140679", КПП="771001001"),
        "deleted": counterparty(Description="Бывший ООО", ИНН="7728168971", КПП="772801001", DeletionMark=True),
        "folder": counterparty(Description="Покупатели", IsFolder=True),
    }
    return {name: fake.add(COUNTERPARTIES, entry)["Ref_Key"] for name, entry in made.items()}


# -- publication and authentication ---------------------------------------------------------


async def test_requests_without_credentials_get_a_basic_challenge(fake: FakeOnec) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(fake.url, params=JSON) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    ("user", "password", "encoding", "status"),
    [
        ("Администратор", "секрет", "utf-8", 200),
        ("Администратор", "секрет", "cp1251", 401),
        ("Администратор", "не тот", "utf-8", 401),
        ("Jürgen", "pässwort", "latin-1", 401),
        ("Jürgen", "pässwort", "utf-8", 200),
    ],
)
async def test_basic_credentials_are_decoded_as_utf8(user: str, password: str, encoding: str, status: int) -> None:
    onec = FakeOnec(user="Jürgen", password="pässwort") if user == "Jürgen" else FakeOnec()
    url = await onec.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, params=JSON, headers=basic(user, password, encoding)) as response,
        ):
            assert response.status == status
    finally:
        await onec.stop()


async def test_service_document_and_metadata_list_only_published_sets(http: aiohttp.ClientSession) -> None:
    onec = FakeOnec(published=[COUNTERPARTIES, CONTACT_KINDS])
    url = await onec.start()
    try:
        status, service = await get_json(http, url)
        async with http.get(url + "$metadata") as response:
            edmx = ET.fromstring(await response.read())
    finally:
        await onec.stop()
    assert status == 200
    assert service["odata.metadata"] == url + "$metadata"
    assert [s["name"] for s in service["value"]] == [COUNTERPARTIES, CONTACT_KINDS]
    schema = edmx.find(f".//{EDM}Schema")
    assert schema is not None and schema.get("Namespace") == "StandardODATA"
    sets = [s.get("Name") for s in edmx.iter(f"{EDM}EntitySet")]
    assert sets == [COUNTERPARTIES, CONTACT_KINDS]
    types = {t.get("Name"): t for t in edmx.iter(f"{EDM}EntityType")}
    assert set(types) == {COUNTERPARTIES, CONTACT_KINDS}
    contacts = next(p for p in types[COUNTERPARTIES].iter(f"{EDM}Property") if p.get("Name") == "КонтактнаяИнформация")
    row_type = "Catalog_Контрагенты_КонтактнаяИнформация_RowType"
    assert contacts.get("Type") == f"Collection(StandardODATA.{row_type})"
    rows = next(c for c in edmx.iter(f"{EDM}ComplexType") if c.get("Name") == row_type)
    assert {"LineNumber", "Тип", "Вид_Key", "Представление"} <= {p.get("Name") for p in rows}


async def test_an_unpublished_set_is_404_with_a_russian_odata_error(http: aiohttp.ClientSession) -> None:
    onec = FakeOnec(published=[COUNTERPARTIES])
    url = await onec.start()
    try:
        onec.add(INVOICES, {"Number": "1"})
        async with http.get(url + INVOICES, params=JSON) as response:
            body = await response.json()
            assert response.status == 404
            assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    finally:
        await onec.stop()
    error = body["odata.error"]
    assert error["message"]["lang"] == "ru"
    assert INVOICES in error["message"]["value"]


async def test_cyrillic_set_names_are_percent_decoded_and_plus_stays_a_plus(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    encoded = "Catalog_%D0%9A%D0%BE%D0%BD%D1%82%D1%80%D0%B0%D0%B3%D0%B5%D0%BD%D1%82%D1%8B"
    for suffix, expected_status, expected_set in [
        ("", 200, COUNTERPARTIES),
        ("%20", 404, COUNTERPARTIES + " "),
        ("+", 404, COUNTERPARTIES + "+"),
    ]:
        async with http.get(URL(fake.url + encoded + suffix + "?$format=json", encoded=True)) as response:
            assert response.status == expected_status
        assert fake.requests[-1].entity_set == expected_set


async def test_json_is_required_as_the_hub_always_asks_for_it(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    async with http.get(fake.url + COUNTERPARTIES) as response:
        assert response.status == 406
        assert "odata.error" in await response.json()
    async with http.get(fake.url + COUNTERPARTIES, headers={"Accept": "application/json"}) as response:
        assert response.status == 200


async def test_contact_kinds_are_seeded_with_their_predefined_names(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    status, body = await get_json(
        http, fake.url + CONTACT_KINDS, **{"$filter": "PredefinedDataName eq 'EmailКонтрагента'"}
    )
    assert status == 200
    [kind] = body["value"]
    assert kind["Ref_Key"] == fake.kind_key("EmailКонтрагента")
    assert kind["Тип"] == "АдресЭлектроннойПочты" and kind["Predefined"] is True
    assert FakeOnec().kind_key("EmailКонтрагента") != fake.kind_key("EmailКонтрагента")


# -- reading --------------------------------------------------------------------------------


async def test_an_entry_is_addressed_by_its_guid(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    keys = seed_small_base(fake)
    status, entry = await get_json(http, f"{fake.url}{COUNTERPARTIES}(guid'{keys['romashka']}')")
    assert status == 200
    assert entry["odata.metadata"] == f"{fake.url}$metadata#{COUNTERPARTIES}/@Element"
    assert entry["ИНН"] == "7707083893"
    assert entry["КонтактнаяИнформация"][0]["LineNumber"] == "1"
    missing = "11111111-2222-3333-4444-555555555555"
    status, error = await get_json(http, f"{fake.url}{COUNTERPARTIES}(guid'{missing}')")
    assert status == 404 and error["odata.error"]["code"] == "9"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("IsFolder eq false and DeletionMark eq false", {"romashka", "vector", "oneil", "alpha"}),
        ("not (IsFolder eq true) and DeletionMark eq true", {"deleted"}),
        ("substringof('РОМАШ', Description)", {"romashka"}),
        ("Description eq 'О''Нил ИП'", {"oneil"}),
        ("ИНН eq '7707083893' and (КПП eq '770701001' or КПП eq '')", {"romashka"}),
        ("ЮридическоеФизическоеЛицо ne 'ЮридическоеЛицо'", {"oneil"}),
        ("Code ge '00-000002' and Code le '00-000003'", {"vector", "oneil"}),
        ("ДатаРегистрации gt datetime'2000-01-01T00:00:00'", set()),
    ],
)
async def test_filter_selects_like_1c(
    fake: FakeOnec, http: aiohttp.ClientSession, flt: str, expected: set[str]
) -> None:
    keys = seed_small_base(fake)
    status, body = await get_json(http, fake.url + COUNTERPARTIES, **{"$filter": flt, "$select": "Ref_Key"})
    assert status == 200, body
    names = {name for name, key in keys.items() if {"Ref_Key": key} in body["value"]}
    assert names == expected


async def test_select_top_skip_orderby_and_counts(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    keys = seed_small_base(fake)
    live = "IsFolder eq false and DeletionMark eq false"
    status, body = await get_json(
        http,
        fake.url + COUNTERPARTIES,
        **{"$filter": live, "$select": "Description, ИНН", "$orderby": "Description desc", "$top": "2", "$skip": "1"},
    )
    assert status == 200
    assert body["odata.metadata"] == f"{fake.url}$metadata#{COUNTERPARTIES}"
    assert body["value"] == [
        {"Description": "О'Нил ИП", "ИНН": "500100732259"},
        {"Description": "Вектор АО", "ИНН": "5024089920"},
    ]
    _, counted = await get_json(
        http, fake.url + COUNTERPARTIES, **{"$filter": live, "$inlinecount": "allpages", "$top": "1"}
    )
    assert counted["odata.count"] == "4" and len(counted["value"]) == 1
    _, by_key = await get_json(http, fake.url + COUNTERPARTIES, **{"$orderby": "Ref_Key", "$select": "Ref_Key"})
    assert [e["Ref_Key"] for e in by_key["value"]] == sorted(keys.values())
    async with http.get(fake.url + COUNTERPARTIES + "/$count", params={"$filter": live}) as response:
        assert response.content_type == "text/plain"
        assert await response.text() == "4"


async def test_select_inside_a_tabular_part(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    keys = seed_small_base(fake)
    url = f"{fake.url}{COUNTERPARTIES}(guid'{keys['romashka']}')"
    status, entry = await get_json(http, url, **{"$select": "Ref_Key,КонтактнаяИнформация/Тип"})
    assert status == 200
    assert {k: v for k, v in entry.items() if k != "odata.metadata"} == {
        "Ref_Key": keys["romashka"],
        "КонтактнаяИнформация": [{"Тип": "Телефон"}],
    }


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "IsFolder eq"},
        {"$filter": "(IsFolder eq false"},
        {"$filter": "Ref_Key eq 'not-a-guid-literal'"},
        {"$filter": "Телефон eq '1'"},
        {"$filter": "Ref_Key eq guid'123'"},
        {"$select": "Ref_Key,Телефон"},
        {"$orderby": "Description sideways"},
        {"$top": "-1"},
    ],
)
async def test_malformed_query_options_are_400_with_a_russian_message(
    fake: FakeOnec, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    status, body = await get_json(http, fake.url + COUNTERPARTIES, **params)
    assert status == 400
    assert body["odata.error"]["message"]["lang"] == "ru"
    assert "Ошибка разбора" in body["odata.error"]["message"]["value"]


async def test_an_or_chain_of_ref_keys_is_answered_by_lookups(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.seed_counterparties(2000, seed=7)
    wanted = [entry["Ref_Key"] for entry in fake.entries(COUNTERPARTIES)[::50]]
    chain = " or ".join(f"Ref_Key eq guid'{key}'" for key in [*wanted, "11111111-2222-3333-4444-555555555555"])
    status, body = await get_json(
        http, fake.url + COUNTERPARTIES, **{"$filter": chain, "$select": "Ref_Key,DataVersion"}
    )
    assert status == 200
    assert [entry["Ref_Key"] for entry in body["value"]] == sorted(wanted)


async def test_documents_filter_by_counterparty_posting_and_date(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    keys = seed_small_base(fake)
    for number, (who, posted, day) in enumerate(
        [
            ("romashka", True, "2024-03-01"),
            ("romashka", False, "2024-03-02"),
            ("romashka", True, "2023-12-31"),
            ("vector", True, "2024-05-05"),
        ]
    ):
        fake.add(
            INVOICES,
            {"Контрагент_Key": keys[who], "Posted": posted, "Date": f"{day}T10:00:00", "СуммаДокумента": 100 + number},
        )
    fake.add(SHIPMENTS, {"Контрагент_Key": keys["romashka"], "Posted": True, "Date": "2024-03-01T00:00:00"})
    flt = f"Контрагент_Key eq guid'{keys['romashka']}' and Posted eq true and Date ge datetime'2024-01-01T00:00:00'"
    status, body = await get_json(http, fake.url + INVOICES, **{"$filter": flt})
    assert status == 200
    assert [(d["СуммаДокумента"], d["Number"].startswith("00БП-")) for d in body["value"]] == [(100, True)]


# -- writing --------------------------------------------------------------------------------


async def test_post_creates_with_a_fresh_key_and_is_not_idempotent(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    supplied = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    new = {"Ref_Key": supplied, "Description": "Новый ООО", "ИНН": "7707083893", "КПП": "770701001"}
    created = []
    for _ in range(2):
        async with http.post(fake.url + COUNTERPARTIES, params=JSON, json=new) as response:
            assert response.status == 201
            created.append((response.headers["Location"], await response.json()))
    (location, entry), (_, again) = created
    assert entry["odata.metadata"].endswith(f"#{COUNTERPARTIES}/@Element")
    assert entry["Ref_Key"] not in (supplied, again["Ref_Key"])
    assert f"(guid'{entry['Ref_Key']}')" in location
    assert entry["Code"].startswith("00-") and entry["DataVersion"]
    assert entry["ГоловнойКонтрагент_Key"] == entry["Ref_Key"]
    assert entry["КонтактнаяИнформация"] == [] and entry["Parent_Key"] == EMPTY_REF
    assert len(fake.writes()) == 2 and fake.get(COUNTERPARTIES, entry["Ref_Key"]) is not None


async def test_patch_changes_only_what_is_sent_and_moves_data_version(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    keys = seed_small_base(fake)
    before = fake.get(COUNTERPARTIES, keys["romashka"])
    assert before is not None
    email = {
        "LineNumber": "1",
        "Тип": "АдресЭлектроннойПочты",
        "Вид_Key": fake.kind_key("EmailКонтрагента"),
        "АдресЭП": "a@b.ru",
    }
    url = f"{fake.url}{COUNTERPARTIES}(guid'{keys['romashka']}')"
    async with http.patch(
        url, params=JSON, json={"Комментарий": "из хаба", "КонтактнаяИнформация": [email]}
    ) as response:
        assert response.status == 200
        after = await response.json()
    assert after["Комментарий"] == "из хаба" and after["Description"] == before["Description"]
    assert after["DataVersion"] != before["DataVersion"]
    assert [row["Тип"] for row in after["КонтактнаяИнформация"]] == ["АдресЭлектроннойПочты"]  # replaced, not merged
    assert fake.get(COUNTERPARTIES, keys["romashka"]) == {k: v for k, v in after.items() if k != "odata.metadata"}
    stale = {"If-Match": f'W/"{before["DataVersion"]}"'}
    async with http.patch(url, params=JSON, json={"Комментарий": "поверх"}, headers=stale) as response:
        assert response.status == 200  # If-Match is not honoured: the hub must compare DataVersion itself


async def test_patch_rows_without_line_number_and_unknown_properties_are_refused(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    keys = seed_small_base(fake)
    before = fake.get(COUNTERPARTIES, keys["romashka"])
    url = f"{fake.url}{COUNTERPARTIES}(guid'{keys['romashka']}')"
    async with http.patch(url, params=JSON, json={"КонтактнаяИнформация": [{"Тип": "Телефон"}]}) as response:
        assert response.status == 500
        assert (await response.json())["odata.error"]["code"] == "-1"
    async with http.patch(url, params=JSON, json={"Телефон": "+7 495 000-00-00"}) as response:
        assert response.status == 400
    assert fake.get(COUNTERPARTIES, keys["romashka"]) == before


async def test_deletion_mark_is_a_plain_property_and_delete_destroys(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    keys = seed_small_base(fake)
    url = f"{fake.url}{COUNTERPARTIES}(guid'{keys['vector']}')"
    async with http.patch(url, params=JSON, json={"DeletionMark": True}) as response:
        assert (await response.json())["DeletionMark"] is True
    async with http.delete(url, params=JSON) as response:
        assert response.status == 204
    assert fake.get(COUNTERPARTIES, keys["vector"]) is None
    assert [(w.method, w.key) for w in fake.writes()] == [("PATCH", keys["vector"]), ("DELETE", keys["vector"])]


async def test_documents_are_posted_by_their_post_action(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    invoice = fake.add(INVOICES, {"СуммаДокумента": 10.5})
    post = f"{fake.url}{INVOICES}(guid'{invoice['Ref_Key']}')/Post"
    async with http.post(post, params={"PostingModeOperational": "false"}) as response:
        assert response.status == 200
    posted = fake.get(INVOICES, invoice["Ref_Key"])
    assert posted is not None and posted["Posted"] is True and posted["DataVersion"] != invoice["DataVersion"]


async def test_edits_as_a_1c_user_move_data_version(fake: FakeOnec) -> None:
    added = fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО"))
    edited = fake.edit(COUNTERPARTIES, added["Ref_Key"], {"КонтактнаяИнформация": [{"Тип": "Телефон"}]})
    assert edited["DataVersion"] != added["DataVersion"]
    assert edited["КонтактнаяИнформация"][0]["LineNumber"] == "1"  # a user's rows are numbered by 1C


# -- faults ---------------------------------------------------------------------------------


async def test_delay_fault_answers_late_but_normally(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.inject(Fault("delay", seconds=0.2, path=COUNTERPARTIES))
    started = time.monotonic()
    status, _ = await get_json(http, fake.url + COUNTERPARTIES)
    assert status == 200 and time.monotonic() - started >= 0.2
    started = time.monotonic()
    await get_json(http, fake.url + COUNTERPARTIES)
    assert time.monotonic() - started < 0.2  # spent after `times` (1)


async def test_status_faults_answer_like_1c_or_like_the_proxy(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.inject(Fault("status", method="GET", path="$select=Ref_Key,DataVersion", skip=1, times=2))
    fake.inject(Fault("status", status=503, path="$top=1"))
    cheap = {"$select": "Ref_Key,DataVersion,DeletionMark"}
    statuses = [(await get_json(http, fake.url + COUNTERPARTIES, **cheap))[0] for _ in range(4)]
    assert statuses == [200, 500, 500, 200]  # one let through, two failed, then spent
    async with http.get(fake.url + COUNTERPARTIES, params={**JSON, "$top": "1"}) as response:
        assert response.status == 503 and response.content_type == "text/html"
    fake.inject(Fault("status"))
    status, body = await get_json(http, fake.url + COUNTERPARTIES)
    assert status == 500 and body["odata.error"]["code"] == "-1"


async def test_drop_cuts_the_connection_before_the_write(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.inject(Fault("drop", method="POST"))
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(fake.url + COUNTERPARTIES, params=JSON, json={"Description": "Призрак"}):
            pass
    assert fake.entries(COUNTERPARTIES) == []
    assert fake.requests[-1].status == 0 and fake.writes() == []


async def test_drop_after_commit_cuts_the_connection_after_the_write(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    keys = seed_small_base(fake)
    fake.inject(Fault("drop_after_commit", method="PATCH", path=COUNTERPARTIES))
    url = f"{fake.url}{COUNTERPARTIES}(guid'{keys['alpha']}')"
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.patch(url, params=JSON, json={"Комментарий": "дошло"}):
            pass
    stored = fake.get(COUNTERPARTIES, keys["alpha"])
    assert stored is not None and stored["Комментарий"] == "дошло"
    [write] = fake.writes()
    assert (write.method, write.key, write.status) == ("PATCH", keys["alpha"], 0)


async def test_faults_can_be_cleared(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.inject(Fault("status", times=5))
    fake.clear_faults()
    assert (await get_json(http, fake.url + COUNTERPARTIES))[0] == 200


# -- standalone mode ------------------------------------------------------------------------


async def test_control_endpoints_seed_edit_count_and_fault(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    control = fake.url.split("/base/")[0] + "/_fake/"
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.post(control + "seed", json={"count": 300, "seed": 3}) as response:
            assert (await response.json())["total"] == 300
        versions = {e["Ref_Key"]: e["DataVersion"] for e in fake.entries(COUNTERPARTIES)}
        async with anonymous.post(control + "edit", json={"count": 10, "seed": 4}) as response:
            edited = (await response.json())["edited"]
        assert len(edited) == 10
        after = {e["Ref_Key"]: e["DataVersion"] for e in fake.entries(COUNTERPARTIES)}
        assert {key for key in after if after[key] != versions[key]} == set(edited)
        async with anonymous.post(control + "faults", json={"kind": "status", "status": 502}) as response:
            assert response.status == 200
        async with http.get(fake.url + COUNTERPARTIES, params=JSON) as response:
            assert response.status == 502
        async with anonymous.delete(control + "faults") as response:
            assert response.status == 200
        await get_json(http, fake.url + COUNTERPARTIES)
        async with anonymous.get(control + "stats") as response:
            stats = await response.json()
    assert stats["entries"][COUNTERPARTIES] == 300
    assert stats["requests"]["by_method"] == {"GET": 2}
    assert stats["requests"]["by_entity_set"] == {COUNTERPARTIES: 2}


async def test_control_endpoint_lists_the_requests_made_since_a_mark(
    fake: FakeOnec, http: aiohttp.ClientSession
) -> None:
    keys = seed_small_base(fake)
    control = fake.url.split("/base/")[0] + "/_fake/requests"
    await get_json(http, fake.url + COUNTERPARTIES, **{"$top": "2"})
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(control) as response:
            mark = (await response.json())["total"]
        await get_json(http, f"{fake.url}{COUNTERPARTIES}(guid'{keys['alpha']}')")
        async with http.get(f"{fake.url}{COUNTERPARTIES}/$count") as response:
            assert response.status == 200
        async with anonymous.get(control, params={"since": str(mark)}) as response:
            listed = await response.json()
    assert mark == 1 and listed["total"] == 3
    assert [(r["method"], r["kind"], r["key"]) for r in listed["requests"]] == [
        ("GET", "entry", keys["alpha"]),
        ("GET", "count", None),
    ]
    assert listed["requests"][0]["entity_set"] == COUNTERPARTIES and listed["requests"][0]["status"] == 200


def test_generated_counterparties_are_valid_varied_and_deterministic() -> None:
    kinds = {"ТелефонКонтрагента": "t", "EmailКонтрагента": "e", "ЮрАдресКонтрагента": "a", "ФактАдресКонтрагента": "f"}
    batch = generate_counterparties(2000, seed=11, kinds=kinds)
    assert batch == generate_counterparties(2000, seed=11, kinds=kinds)
    assert len({(c["ИНН"], c["КПП"]) for c in batch}) == 2000
    assert len({c["Ref_Key"] for c in batch}) == 2000
    shares = Counter(
        "legal"
        if c["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо"
        else "trader"
        if c["РегистрационныйНомер"]
        else "person"
        for c in batch
    )
    assert 0.75 < shares["legal"] / 2000 < 0.85 and 0.11 < shares["trader"] / 2000 < 0.19
    for c in batch:
        assert inn_problem(c["ИНН"]) is None
        if c["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо":
            assert (
                len(c["ИНН"]) == 10
                and kpp_problem(c["КПП"]) is None
                and ogrn_problem(c["РегистрационныйНомер"]) is None
            )
        else:
            assert len(c["ИНН"]) == 12 and c["КПП"] == ""
        if c["РегистрационныйНомер"] and c["ЮридическоеФизическоеЛицо"] == "ФизическоеЛицо":
            assert len(c["РегистрационныйНомер"]) == 15 and ogrn_problem(c["РегистрационныйНомер"]) is None
        assert {row["Вид_Key"] for row in c["КонтактнаяИнформация"]} <= set(kinds.values())
    branches = [c for c in batch if c["ОбособленноеПодразделение"]]
    heads = {c["Ref_Key"]: c for c in batch}
    assert branches and all(heads[b["ГоловнойКонтрагент_Key"]]["ИНН"] == b["ИНН"] for b in branches)


async def test_concurrent_readers_are_served(fake: FakeOnec, http: aiohttp.ClientSession) -> None:
    fake.seed_counterparties(500, seed=5)
    pages = await asyncio.gather(
        *(
            get_json(http, fake.url + COUNTERPARTIES, **{"$top": "100", "$skip": str(skip), "$orderby": "Ref_Key"})
            for skip in range(0, 500, 100)
        )
    )
    keys = [entry["Ref_Key"] for _, page in pages for entry in page["value"]]
    assert keys == sorted(keys) and len(set(keys)) == 500
