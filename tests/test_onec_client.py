"""The 1C OData connector against the fake 1C over real HTTP: errors as the user reads them,
logins, retries, empty values and the escaping of ``$filter`` literals."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.onec.client import OdataClient, string
from connectors.onec.counterparties import OnecCounterparties
from connectors.onec.documents import DocumentReader, _document
from connectors.onec.errors import OdataError, OnecLoginRejected, OnecNotPublished, OnecUnavailable
from connectors.onec.field_maps import FieldMap
from crm_core.onec.port import PeerUnavailable
from crm_core.onec.records import Counterparty
from hub.onec import connection_of, document_items, document_to_dict
from tests.fake_onec import (
    CONTACT_KINDS,
    COUNTERPARTIES,
    EMPTY_DATE,
    EMPTY_REF,
    INTERNAL_ERROR,
    INVOICES,
    SHIPMENTS,
    FakeOnec,
    Fault,
    counterparty,
)
from tests.onec_world import PASSWORD, USER, onec_settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeOnec]:
    server = FakeOnec(user=USER, password=PASSWORD)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def connected(fake: FakeOnec, sleeps: list[float] | None = None, **overrides: Any) -> AsyncIterator[OdataClient]:
    """A client of the fake's publication as an [[onec]] names it; backoff pauses are recorded in
    ``sleeps`` instead of slept."""

    async def no_wait(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)

    client = OdataClient(connection_of(onec_settings(fake, **{"retries": 3, **overrides})), sleep=no_wait)
    try:
        yield client
    finally:
        await client.close()


def _calls(fake: FakeOnec, method: str, entity_set: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and r.entity_set == entity_set)


# -- what the user reads when 1C says no ----------------------------------------------------------


async def test_an_odata_error_shows_1cs_own_russian_message(fake: FakeOnec) -> None:
    ref = fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО"))["Ref_Key"]
    async with connected(fake) as client:
        with pytest.raises(OdataError) as unknown_property:
            await client.patch(COUNTERPARTIES, ref, {"Несуществующее": "1"})
        fake.inject(Fault("status", method="POST", status=500, code="5", message="Ошибка записи: не заполнен ИНН"))
        with pytest.raises(OdataError) as refused_write:
            await client.post(COUNTERPARTIES, {"Description": "Лютик"})

    assert (
        str(unknown_property.value) == "Свойство 'Несуществующее' не найдено у типа StandardODATA.Catalog_Контрагенты"
    )
    assert (unknown_property.value.status, unknown_property.value.code) == (400, "10")
    assert str(refused_write.value) == "Ошибка записи: не заполнен ИНН"
    assert (refused_write.value.status, refused_write.value.code) == (500, "5")
    assert _calls(fake, "PATCH", COUNTERPARTIES) == 1  # 1C's verdict on this request: asking again changes nothing


async def test_an_unpublished_set_says_what_the_1c_administrator_must_do() -> None:
    fake = FakeOnec(published=[CONTACT_KINDS, INVOICES])
    await fake.start()
    try:
        async with connected(fake) as client:
            with pytest.raises(OnecNotPublished) as listing:
                await client.entries(SHIPMENTS, top=1)
            with pytest.raises(OnecNotPublished) as counting:
                await client.count(SHIPMENTS)
            with pytest.raises(OnecNotPublished) as preparing:
                await OnecCounterparties(client, FieldMap()).prepare()

            reader = DocumentReader(client, [INVOICES, SHIPMENTS])
            since = datetime.now(UTC) - timedelta(days=30)
            assert await reader.recent(EMPTY_REF, since) == []  # the card still shows what is published
            assert await reader.recent(EMPTY_REF, since) == []
    finally:
        await fake.stop()

    message = str(listing.value)
    assert listing.value.entity_set == SHIPMENTS and SHIPMENTS in message
    assert "1C administrator must add it" in message
    assert "Publish standard OData interface" in message
    assert "Настройка стандартного интерфейса OData" in message
    assert isinstance(listing.value, PeerUnavailable)  # a sync stops: no item can succeed meanwhile
    assert counting.value.entity_set == SHIPMENTS
    assert preparing.value.entity_set == COUNTERPARTIES and COUNTERPARTIES in str(preparing.value)
    assert _calls(fake, "GET", SHIPMENTS) == 3  # the reader asked once, then remembered (2 above)


# -- logging in ------------------------------------------------------------------------------------


async def test_a_wrong_password_is_a_rejected_login_and_not_retried(fake: FakeOnec) -> None:
    sleeps: list[float] = []
    async with connected(fake, sleeps, password="не тот") as client:
        with pytest.raises(OnecLoginRejected) as caught:
            await client.entries(COUNTERPARTIES)

    assert "refused the login 'Администратор'" in str(caught.value)
    assert "не тот" not in str(caught.value)
    assert [r.status for r in fake.requests] == [401]
    assert sleeps == []


async def test_a_cyrillic_user_logs_in_with_a_utf8_basic_header() -> None:
    fake = FakeOnec(user="Бухгалтер Ёлкина", password="пароль№1 ё")
    await fake.start()
    try:
        async with connected(fake, user="Бухгалтер Ёлкина", password="пароль№1 ё") as client:
            kinds = await client.entries(CONTACT_KINDS, select=["Ref_Key", "PredefinedDataName"])
    finally:
        await fake.stop()

    assert {k["Ref_Key"] for k in kinds} == {fake.kind_key(k["PredefinedDataName"]) for k in kinds}
    assert len(kinds) == 4
    assert [r.status for r in fake.requests] == [200]


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=500, times=3),  # 1C's "internal error" (-1): often passing
        Fault("status", status=502, times=3),
        Fault("status", status=504, times=3),
        Fault("drop", times=3),
        Fault("delay", seconds=1.0, times=3),  # longer than the read timeout below
    ],
    ids=["500", "502", "504", "drop", "timeout"],
)
async def test_a_read_is_repeated_through_passing_failures(fake: FakeOnec, fault: Fault) -> None:
    ref = fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО"))["Ref_Key"]
    fake.inject(dataclasses.replace(fault, method="GET", path=COUNTERPARTIES))
    sleeps: list[float] = []
    async with connected(fake, sleeps, timeout_seconds=0.3) as client:
        rows = await client.entries(COUNTERPARTIES, select=["Ref_Key", "Description"])

    assert rows == [{"Ref_Key": ref, "Description": "Ромашка ООО"}]
    assert _calls(fake, "GET", COUNTERPARTIES) == 4  # three failures, then the answer
    # aiohttp itself repeats a GET once on a cut connection, so a drop may cost fewer of our retries.
    assert 1 <= len(sleeps) <= 3 and 0 < sleeps[0] <= 0.5


@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        (Fault("status", status=502, times=9), OnecUnavailable, "answered 502"),
        (Fault("drop", times=9), OnecUnavailable, "connection failed"),
        (Fault("status", status=500, times=9), OdataError, INTERNAL_ERROR),
    ],
    ids=["502", "drop", "500"],
)
async def test_a_read_failing_every_time_gives_up_after_the_retries(
    fake: FakeOnec, fault: Fault, error: type[Exception], said: str
) -> None:
    fake.inject(fault)
    sleeps: list[float] = []
    async with connected(fake, sleeps, retries=2) as client:
        with pytest.raises(error) as caught:
            await client.count(COUNTERPARTIES)

    assert said in str(caught.value)
    assert len(sleeps) == 2  # two retries, then the error
    assert len(fake.requests) >= 3


@pytest.mark.parametrize("kind", ["drop", "drop_after_commit", "502"])
async def test_a_create_is_never_repeated(fake: FakeOnec, kind: str) -> None:
    fake.inject(Fault("status", method="POST", status=502) if kind == "502" else Fault(kind, method="POST"))
    sleeps: list[float] = []
    async with connected(fake, sleeps) as client:
        with pytest.raises(OnecUnavailable):
            await client.post(COUNTERPARTIES, {"Description": "Лютик ООО", "IsFolder": False})

    assert _calls(fake, "POST", COUNTERPARTIES) == 1
    assert sleeps == []
    made = [e["Description"] for e in fake.entries(COUNTERPARTIES)]
    # A cut after the commit leaves the item in 1C: a second POST would have made a duplicate.
    assert made == (["Лютик ООО"] if kind == "drop_after_commit" else [])


async def test_a_change_is_repeated_after_a_cut_connection(fake: FakeOnec) -> None:
    ref = fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО"))["Ref_Key"]
    fake.inject(Fault("drop", method="PATCH"))
    async with connected(fake, []) as client:
        entry = await client.patch(COUNTERPARTIES, ref, {"Description": "Ромашка АО"})

    assert entry["Description"] == "Ромашка АО"
    assert _calls(fake, "PATCH", COUNTERPARTIES) == 2
    assert fake.get(COUNTERPARTIES, ref)["Description"] == "Ромашка АО"  # type: ignore[index]


# -- 1C's empty values -----------------------------------------------------------------------------


async def test_an_empty_reference_and_an_empty_date_read_as_none(fake: FakeOnec) -> None:
    folder = fake.add(COUNTERPARTIES, counterparty(Description="Покупатели", IsFolder=True))["Ref_Key"]
    top = fake.add(COUNTERPARTIES, counterparty(Description="Вне папок", Parent_Key=EMPTY_REF))["Ref_Key"]
    inside = fake.add(COUNTERPARTIES, counterparty(Description="В папке", Parent_Key=folder))["Ref_Key"]
    undated = fake.add(INVOICES, {"Контрагент_Key": top, "СуммаДокумента": 10})["Ref_Key"]
    fake.edit(INVOICES, undated, {"Date": EMPTY_DATE})  # a document never filled in
    async with connected(fake) as client:
        port = OnecCounterparties(client, FieldMap())
        await port.prepare()
        groups = {r.ref_key: r.record.group for page in [p async for p in port.pages()] for r in page}
        [row] = await client.entries(INVOICES, select=["Ref_Key", "Number", "Date", "Posted", "СуммаДокумента"])
        recent = await DocumentReader(client, [INVOICES]).recent(top, datetime.now(UTC) - timedelta(days=90))

    assert groups == {top: None, inside: "Покупатели"}
    assert row["Date"] == EMPTY_DATE
    document = _document(INVOICES, row)  # how the reader turns a 1C row into a card's document
    assert document.date is None and document.amount == 10.0
    shown = {"acc": [document_to_dict(document)]}
    assert shown["acc"][0]["date"] is None
    assert document_items(shown) == []  # no "0001-01-01" invoice on the card's timeline
    assert recent == []  # nor among the recent ones


# -- $filter literals --------------------------------------------------------------------------------

NAMES = [
    "Д'Артаньян и Ко",
    "''Кавычки'' «ёлочки» \"лапки\"",
    "Рога & Копыта + Ко",
    "100% #1 ?да=нет; a+b",
    "Путь / (скобки), запятая: $доллар",
    "Тест' or Description ne '",  # an injection attempt stays one literal
]


@pytest.mark.parametrize("name", NAMES)
async def test_a_name_with_quotes_and_cyrillic_is_found_by_an_exact_filter(fake: FakeOnec, name: str) -> None:
    marker = "[hub:7]"
    wanted = fake.add(COUNTERPARTIES, counterparty(Description=name, Комментарий=f"Создан в hub {marker}"))
    fake.add(COUNTERPARTIES, counterparty(Description=name + " и сыновья", Комментарий=f"Создан в hub {marker}"))
    fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО", Комментарий=f"Создан в hub {marker}"))
    async with connected(fake) as client:
        port = OnecCounterparties(client, FieldMap())
        await port.prepare()
        found = await port.find(Counterparty(name=name), marker)
        counted = await client.count(COUNTERPARTIES, f"Description eq {string(name)}")

    assert [r.ref_key for r in found] == [wanted["Ref_Key"]]
    assert found[0].record.name == name
    assert counted == 1
    assert all(r.status == 200 for r in fake.requests)


async def test_requisites_in_a_filter_find_the_item_a_lost_answer_created(fake: FakeOnec) -> None:
    mine = counterparty(Description="О'Нил", ИНН="7707083893", КПП="770701001", Комментарий="Создан в hub [hub:3]")
    wanted = fake.add(COUNTERPARTIES, mine)["Ref_Key"]
    fake.add(COUNTERPARTIES, counterparty(Description="О'Нил", ИНН="7707083893", КПП="770702001",
                                          Комментарий="Создан в hub [hub:3]"))  # fmt: skip
    fake.add(COUNTERPARTIES, {**mine, "Ref_Key": EMPTY_REF, "Комментарий": "заведён вручную"})
    async with connected(fake) as client:
        port = OnecCounterparties(client, FieldMap())
        await port.prepare()
        record = Counterparty(name="О'Нил", inn="7707083893", kpp="770701001")
        found = await port.find(record, "[hub:3]")

    assert [r.ref_key for r in found] == [wanted]
