"""CSV import and export of counterparties, as an accountant brings them from 1C or Excel."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import Actor
from crm_core.client_csv import (
    CsvError,
    RowError,
    export_clients_csv,
    import_clients,
    read_clients_csv,
)
from crm_core.client_data import ClientIn, client_to_input
from crm_core.clients import ClientBook, ClientQuery
from crm_core.errors import Conflict
from crm_core.models import AuditEntry, Client, ClientKind, ClientStatus, Role, User

ACCOUNTANT = Actor(user_id=None, username="buh", ip="10.0.0.7")

# An accountant's export from 1C, saved by Russian Excel: Windows-1251, ";" and CRLF.
ONE_C_EXPORT = (
    "Наименование;ИНН;КПП;Юридический адрес;Телефон;Email;Теги;Вид;Примечание\r\n"
    '"ООО ""Ромашка""";7707083893;773601001;"г. Москва; ул. Садовническая, д. 1";'
    "+7 (495) 123-45-67, 8 916 000-00-00;info@romashka.ru;опт, VIP;Юр. лицо;клиент с 2019 года\r\n"
    "ООО Лютик;7707083894;;;;;;;\r\n"  # 3: INN check digit wrong
    ";7728168971;772801001;;;;;;\r\n"  # 4: no name
    "ИП Петров Пётр Петрович;500100732259;;;;petrov@;;ИП;\r\n"  # 5: bad e-mail
    "ООО Ромашка-2;7707083893;773601001;;;;;;\r\n"  # 6: same INN+KPP as line 2
    "Сидоров Иван;;;;8 903 000 00 00;;;Физ. лицо;\r\n"
    '"ООО ""Ясень""";7736207543;770401001;;;;;;\r\n'
)
ONE_C_ERRORS = [
    RowError(3, "ИНН: INN check digit does not match"),
    RowError(4, "Наименование: empty; every client needs a name"),
    RowError(5, "Email: not an e-mail address: petrov@"),
    RowError(6, "ИНН: INN 7707083893 / KPP 773601001 is already on line 2"),
]


async def _count(session: AsyncSession, model: Any = Client) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _names(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Client.name).order_by(Client.id)))


async def _import_entries(session: AsyncSession) -> list[AuditEntry]:
    return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "import")))


# -- the accountant's file ------------------------------------------------------------


async def test_dry_run_of_a_1c_export_reports_every_bad_row_with_its_line_and_creates_nothing(
    session: AsyncSession,
) -> None:
    report = await import_clients(ClientBook(session), ONE_C_EXPORT.encode("cp1251"), ACCOUNTANT, dry_run=True)
    assert report.errors == ONE_C_ERRORS
    assert (report.encoding, report.delimiter) == ("cp1251", ";")
    assert (report.rows_total, report.rows_ok, report.imported) == (7, 3, 0)
    assert report.dry_run is True and report.applied is False and report.created_ids == []
    assert report.unknown_columns == ["Примечание"]
    assert report.as_dict()["errors"][0] == {"line": 3, "reason": "ИНН: INN check digit does not match"}
    await session.commit()
    assert await _count(session) == 0
    assert await _count(session, AuditEntry) == 0  # a dry run leaves no trace at all


async def test_all_or_nothing_import_with_bad_rows_creates_nothing_and_says_so(session: AsyncSession) -> None:
    report = await import_clients(ClientBook(session), ONE_C_EXPORT.encode("cp1251"), ACCOUNTANT, dry_run=False)
    await session.commit()
    assert report.applied is False and report.imported == 0 and report.created_ids == []
    assert report.errors == ONE_C_ERRORS
    assert await _count(session) == 0
    [entry] = await _import_entries(session)
    assert entry.username == "buh" and entry.entity == "client"
    assert entry.details["applied"] is False and entry.details["errors"] == 4 and entry.details["imported"] == 0


async def test_good_rows_mode_creates_exactly_the_good_rows_with_their_cards(session: AsyncSession) -> None:
    book = ClientBook(session)
    report = await import_clients(book, ONE_C_EXPORT.encode("cp1251"), ACCOUNTANT, dry_run=False, all_or_nothing=False)
    await session.commit()
    assert report.applied is True and report.errors == ONE_C_ERRORS
    assert (report.rows_ok, report.imported) == (3, 3)
    assert await _names(session) == ['ООО "Ромашка"', "Сидоров Иван", 'ООО "Ясень"']
    assert sorted(report.created_ids) == sorted(await session.scalars(select(Client.id)))

    romashka = await book.get(report.created_ids[0])
    assert (romashka.inn, romashka.kpp, romashka.kind) == ("7707083893", "773601001", ClientKind.legal_entity)
    assert [p.e164 for p in romashka.phones] == ["+74951234567", "+79160000000"]
    assert [e.address for e in romashka.emails] == ["info@romashka.ru"]
    assert [t.tag for t in romashka.tags] == ["VIP", "опт"]
    assert romashka.addresses == [{"kind": "legal", "text": "г. Москва; ул. Садовническая, д. 1"}]
    assert romashka.custom_fields == {"Примечание": "клиент с 2019 года"}
    sidorov = await book.get(report.created_ids[1])
    assert sidorov.kind is ClientKind.individual and sidorov.inn is None

    creates = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "create")))
    assert len(creates) == 3 and all(e.details == {"source": "csv"} for e in creates)
    [entry] = await _import_entries(session)
    assert (entry.details["imported"], entry.details["rows_total"], entry.details["applied"]) == (3, 7, True)


async def test_a_clean_file_is_imported_whole_in_all_or_nothing_mode(session: AsyncSession) -> None:
    lines = ONE_C_EXPORT.split("\r\n")
    clean = "\r\n".join([lines[0], lines[1], lines[6], lines[7]])
    report = await import_clients(ClientBook(session), clean.encode("cp1251"), ACCOUNTANT, dry_run=False)
    await session.commit()
    assert report.errors == [] and report.applied is True and report.imported == 3
    assert await _names(session) == ['ООО "Ромашка"', "Сидоров Иван", 'ООО "Ясень"']


async def test_utf8_file_with_bom_commas_and_english_headers(session: AsyncSession) -> None:
    text = (
        "name,kind,INN,OGRN,Phones,E-mail,tags,contact,website,status\n"
        '"IP Petrov",sole_trader,500100732259,304500116000157,"+7 916 111-22-33; +7 495 765-43-21",'
        'petrov@example.com,"retail, b2b","Петров Пётр Петрович, владелец, +7 916 111-22-33",'
        "https://petrov.example,lead\n"
    )
    book = ClientBook(session)
    report = await import_clients(book, b"\xef\xbb\xbf" + text.encode(), ACCOUNTANT, dry_run=False)
    assert (report.encoding, report.delimiter, report.errors, report.imported) == ("utf-8-sig", ",", [], 1)
    client = await book.get(report.created_ids[0])
    assert client.kind is ClientKind.sole_trader and client.status is ClientStatus.lead
    assert (client.inn, client.ogrn) == ("500100732259", "304500116000157")
    assert client.website == "https://petrov.example"
    assert [p.e164 for p in client.phones if p.contact_id is None] == ["+79161112233", "+74957654321"]
    assert [t.tag for t in client.tags] == ["b2b", "retail"]
    [contact] = client.contacts
    assert (contact.last_name, contact.first_name, contact.middle_name, contact.position) == (
        "Петров",
        "Пётр",
        "Петрович",
        "владелец",
    )
    assert [p.e164 for p in client.phones if p.contact_id == contact.id] == ["+79161112233"]


@pytest.mark.parametrize("encoding", ["koi8_r", "cp866", "cp1251", "utf-16"])
def test_cyrillic_encodings_are_detected(encoding: str) -> None:
    text = (
        "Наименование;ИНН;Телефон;Адрес\n"
        "ООО Ромашка;7707083893;+7 495 123-45-67;г. Москва, ул. Ленина, д. 1\n"
        "Индивидуальный предприниматель Щукин Эдуард;500100732259;;г. Тверь, Советская ул.\n"
    )
    parsed = read_clients_csv(text.encode(encoding))
    assert parsed.encoding == encoding.replace("_", "-")
    assert [r.client.name for r in parsed.rows if r.client] == [
        "ООО Ромашка",
        "Индивидуальный предприниматель Щукин Эдуард",
    ]
    assert parsed.rows[1].client is not None and parsed.rows[1].client.kind is ClientKind.sole_trader


async def test_koi8r_file_is_read_as_koi8r_by_the_import(session: AsyncSession) -> None:
    text = "Название;ИНН;Электронная почта\nООО Ёлка;7707083893;elka@example.ru\n"
    report = await import_clients(ClientBook(session), text.encode("koi8_r"), ACCOUNTANT, dry_run=False)
    assert report.encoding == "koi8-r" and report.imported == 1
    assert await _names(session) == ["ООО Ёлка"]


async def test_quoted_multi_line_fields_do_not_shift_the_line_numbers(session: AsyncSession) -> None:
    text = (
        "Наименование;Юридический адрес;Email\r\n"  # 1
        'ООО Альфа;"115035, г. Москва,\r\nул. Садовническая,\r\nд. 1";a@alfa.ru\r\n'  # 2-4, one record
        "\r\n"  # 5, blank
        'ООО Бета;"одна строка";not-an-address\r\n'  # 6
        '"ООО ""Гамма""\nи партнёры";"г. Тверь";\r\n'  # 7-8
        ";;x@y.ru\r\n"  # 9
    )
    report = await import_clients(ClientBook(session), text.encode(), ACCOUNTANT, dry_run=True)
    assert report.errors == [
        RowError(6, "Email: not an e-mail address: not-an-address"),
        RowError(9, "Наименование: empty; every client needs a name"),
    ]
    assert report.rows_total == 4 and report.rows_ok == 2
    parsed = read_clients_csv(text.encode())
    assert [r.line for r in parsed.rows] == [2, 6, 7, 9]
    alfa = parsed.rows[0].client
    assert alfa is not None
    # One address per line of the cell: a line break in an address cell separates addresses.
    assert [a.text for a in alfa.addresses] == ["115035, г. Москва,", "ул. Садовническая,", "д. 1"]
    assert parsed.rows[2].client is not None and parsed.rows[2].client.name == 'ООО "Гамма"\nи партнёры'


async def test_a_client_already_in_the_database_is_reported_with_its_id(session: AsyncSession) -> None:
    book = ClientBook(session)
    existing = await book.create(ClientIn(name="Ромашка", inn="7707083893", kpp="773601001"), ACCOUNTANT)
    await session.commit()
    text = (
        "Наименование;ИНН;КПП\n"
        "Ромашка (дубль);7707083893;773601001\n"
        "Ромашка, филиал;7707083893;773602001\n"  # same INN, another KPP: a branch, allowed
    )
    report = await import_clients(book, text.encode(), ACCOUNTANT, dry_run=True)
    assert report.errors == [
        RowError(2, f"ИНН: client {existing.id} (Ромашка) already has INN 7707083893 / KPP 773601001")
    ]
    report = await import_clients(book, text.encode(), ACCOUNTANT, dry_run=False, all_or_nothing=False)
    await session.commit()
    assert report.imported == 1 and await _names(session) == ["Ромашка", "Ромашка, филиал"]


async def test_a_deleted_client_does_not_block_its_inn(session: AsyncSession) -> None:
    book = ClientBook(session)
    old = await book.create(ClientIn(name="Ромашка", inn="7707083893", kpp="773601001"), ACCOUNTANT)
    await book.delete(old.id, ACCOUNTANT)
    report = await import_clients(
        book, "Наименование;ИНН/КПП\nРомашка;7707083893/773601001\n".encode(), ACCOUNTANT, dry_run=False
    )
    assert report.errors == [] and report.imported == 1


async def test_owner_is_found_by_user_name_or_id_and_an_unknown_one_is_a_row_error(
    session: AsyncSession,
) -> None:
    anna = User(username="anna", full_name="Петрова Анна", role=Role.operator)
    session.add(anna)
    await session.flush()
    text = (
        "Наименование;Ответственный\n"
        "Альфа;anna\n"
        "Бета;петрова  анна\n"
        f"Гамма;{anna.id}\n"
        "Дельта;boris\n"
        "Эпсилон;99999999999999\n"
    )
    book = ClientBook(session)
    report = await import_clients(book, text.encode(), ACCOUNTANT, dry_run=False, all_or_nothing=False)
    assert report.errors == [
        RowError(5, "Ответственный: no user 'boris'"),
        RowError(6, "Ответственный: no user '99999999999999'"),
    ]
    owners = [(await book.get(i)).owner_id for i in report.created_ids]
    assert owners == [anna.id, anna.id, anna.id]


# -- files that are not a client list ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\r\n  \r\n", "the file is empty"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "Excel workbook (.xlsx), not CSV"),
        (random.Random(7).randbytes(4000), "the file is not text"),
        (bytes(b or 1 for b in random.Random(7).randbytes(4000)), "cannot tell the file's encoding"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64) + b"IHDR", "the file is not text"),
        ("ИНН;КПП\n7707083893;773601001\n".encode("cp1251"), "no name column"),
        (
            "Наименование;ИНН;inn\nА;7707083893;7707083893\n".encode(),
            "columns 2 ('ИНН') and 3 ('inn') both mean inn",
        ),
        (b"\xff\xfeN\x00a\x00m\x00\x00\xd8", "byte-order mark but is not utf-16"),
    ],
)
def test_unreadable_files_are_a_csv_error_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(CsvError) as caught:
        read_clients_csv(data)
    assert message in str(caught.value)


async def test_import_of_garbage_raises_csv_error_and_writes_nothing(session: AsyncSession) -> None:
    with pytest.raises(CsvError, match="the file is not text"):
        await import_clients(ClientBook(session), random.Random(1).randbytes(3000), ACCOUNTANT, dry_run=False)
    assert await _count(session, AuditEntry) == 0


# -- header and cell conventions --------------------------------------------------------


def test_excel_sep_line_a_title_above_the_header_and_blank_header_cells() -> None:
    text = (
        "sep=|\n"
        "Контрагенты на 01.06.2024\n"
        "\n"
        "Наименование|  ИНН/КПП |Группа||\n"
        "Ромашка|7707083893 / 773601001|Опт|забытое значение|\n"
    )
    parsed = read_clients_csv(text.encode("cp1251"))
    assert (parsed.delimiter, parsed.header_line) == ("|", 4)
    [row] = parsed.rows
    assert row.line == 5 and row.client is not None
    assert (row.client.inn, row.client.kpp) == ("7707083893", "773601001")
    assert row.client.custom_fields == {"Группа": "Опт", "column 4": "забытое значение"}
    assert parsed.unknown_columns == ["Группа", "column 4"]


def test_a_record_with_more_cells_than_the_header_is_a_row_error() -> None:
    parsed = read_clients_csv("Наименование;ИНН\nООО Ромашка; филиал;7707083893\n".encode())
    assert parsed.rows[0].error == RowError(
        2, "the line has 3 cells but the header has 2: a value probably contains an unquoted delimiter"
    )


def test_every_problem_of_a_row_is_reported_together() -> None:
    text = "Наименование;Вид;ИНН;КПП;Email\nООО Ромашка;Кооператив;7707083894;12;a@b\n"
    [row] = read_clients_csv(text.encode()).rows
    assert row.client is None
    assert row.problems == [
        "Вид: unknown kind 'Кооператив' (use Юр. лицо, ИП or Физ. лицо)",
        "Email: not an e-mail address: a@b",
        "ИНН: INN check digit does not match",
    ]


def test_unicode_digits_in_requisites_are_refused_not_crashing() -> None:
    [row] = read_clients_csv("Наименование;ИНН;КПП\nА;²²²²²²²²²²;١٢٣٤٥٦٧٨٩\n".encode()).rows
    assert row.problems == [
        "ИНН: only Latin letters and digits 0-9 are allowed, got '²²²²²²²²²²'",
        "КПП: only Latin letters and digits 0-9 are allowed, got '١٢٣٤٥٦٧٨٩'",
    ]


def test_values_the_database_would_refuse_are_caught_by_the_dry_run() -> None:
    text = f"Наименование;Полное наименование;Телефон\nА;;{'1' * 40}\n{'ß' * 300};{'ß' * 1000};\n"
    rows = read_clients_csv(text.encode()).rows
    assert rows[0].problems == [f"Телефон: a phone number has at most 20 digits: {'1' * 40}"]
    assert rows[1].problems == []  # the longest names fit, also case-folded


# -- failures half-way through ----------------------------------------------------------


class _RacingBook(ClientBook):
    """Another operator creates the same INN between our check and our insert, on the Nth card."""

    def __init__(self, session: AsyncSession, fail_on: int) -> None:
        super().__init__(session)
        self.calls = 0
        self.fail_on = fail_on

    async def create(self, data: ClientIn, actor: Actor, *, source: str = "api") -> Client:
        self.calls += 1
        if self.calls == self.fail_on:
            raise Conflict(f"client 999 already has INN {data.inn}")
        return await super().create(data, actor, source=source)


THREE_GOOD = "Наименование;ИНН\nАльфа;7707083893\nБета;7736207543\nГамма;7728168971\n"


async def test_a_failure_half_way_through_an_all_or_nothing_import_leaves_nothing_behind(
    session: AsyncSession,
) -> None:
    book = _RacingBook(session, fail_on=3)
    report = await import_clients(book, THREE_GOOD.encode(), ACCOUNTANT, dry_run=False)
    await session.commit()
    assert report.applied is False and report.imported == 0 and report.created_ids == []
    assert report.errors == [RowError(4, "client 999 already has INN 7728168971")]
    assert await _count(session) == 0
    assert len(list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "create")))) == 0


async def test_a_failure_in_good_rows_mode_loses_only_that_row(session: AsyncSession) -> None:
    report = await import_clients(
        _RacingBook(session, fail_on=2), THREE_GOOD.encode(), ACCOUNTANT, dry_run=False, all_or_nothing=False
    )
    await session.commit()
    assert report.applied is True and report.imported == 2 and report.rows_ok == 2
    assert report.errors == [RowError(3, "client 999 already has INN 7736207543")]
    assert await _names(session) == ["Альфа", "Гамма"]


async def test_the_import_is_undone_when_the_caller_rolls_back(session: AsyncSession) -> None:
    report = await import_clients(ClientBook(session), THREE_GOOD.encode(), ACCOUNTANT, dry_run=False)
    assert report.imported == 3
    await session.rollback()
    assert await _count(session) == 0


# -- export -------------------------------------------------------------------------------


def _without_ids(card: dict[str, Any]) -> dict[str, Any]:
    return {**card, "contacts": [{k: v for k, v in c.items() if k != "id"} for c in card["contacts"]]}


async def test_export_then_import_gives_the_same_cards(session: AsyncSession) -> None:
    owner = User(username="anna", role=Role.operator)
    session.add(owner)
    await session.flush()
    book = ClientBook(session)
    cards = [
        ClientIn(
            name='ООО "Ромашка"',
            full_name='Общество с ограниченной ответственностью "Ромашка"',
            inn="7707083893",
            kpp="773601001",
            ogrn="1027700132195",
            addresses=[
                {"kind": "legal", "text": "115035, г. Москва, ул. Садовническая, д. 1"},
                {"kind": "actual", "text": "г. Москва; ул. Ленина, 5"},
                {"kind": "other", "text": "склад: Подольск"},
                {"kind": "other", "text": "склад: Химки"},
            ],
            website="https://romashka.example",
            status=ClientStatus.lead,
            owner_id=owner.id,
            tags=["VIP", "опт"],
            custom_fields={"Регион": "77", "Менеджер в 1С": "Петрова", "Телефон": "старый: 123"},
            phones=[{"number": "+7 (495) 123-45-67", "label": "офис"}, {"number": "8 916 000-00-00"}],
            emails=[{"address": "info@romashka.ru"}, {"address": "buh@romashka.ru", "label": "бухгалтерия"}],
            contacts=[
                {
                    "last_name": "Иванов",
                    "first_name": "Иван",
                    "middle_name": "Иванович",
                    "position": "директор",
                    "phones": [{"number": "+7 916 111-22-33", "label": "моб."}],
                    "emails": [{"address": "ivanov@romashka.ru"}],
                    "note": "звонить после обеда",
                },
                {"last_name": "Петрова", "first_name": "Анна", "note": "бухгалтер, по вторникам"},
            ],
        ),
        ClientIn(
            kind=ClientKind.sole_trader,
            name="ИП Сидоров",
            inn="500100732259",
            ogrn="304500116000157",
            status=ClientStatus.inactive,
        ),
        ClientIn(
            kind=ClientKind.individual,
            name='=HYPERLINK("http://evil.example","жми")',
            phones=[{"number": "-1"}],
            tags=["@home"],
        ),
    ]
    originals = [await book.create(card, ACCOUNTANT) for card in cards]
    await session.commit()
    before = [_without_ids(client_to_input(c)) for c in originals]

    exported = export_clients_csv((await book.search(ClientQuery(per_page=10))).items)
    assert exported.startswith(b"\xef\xbb\xbf")
    text = exported.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert header[:6] == ["Наименование", "Полное наименование", "Вид", "ИНН", "КПП", "ОГРН"]
    assert "Телефон (доп.)" in header  # a custom field must not come back as the phone column
    assert "'=HYPERLINK" in text  # Excel must not run it as a formula
    assert ";Юр. лицо;7707083893;773601001;1027700132195;" in text

    for client in originals:
        await book.delete(client.id, ACCOUNTANT)
    report = await import_clients(book, exported, ACCOUNTANT, dry_run=False)
    await session.commit()
    assert report.errors == [] and report.imported == 3 and report.delimiter == ";"
    session.expunge_all()
    after = {}
    for client_id in report.created_ids:
        card = _without_ids(client_to_input(await book.get(client_id)))
        after[card["name"]] = card
    for card in before:
        if card["name"] == 'ООО "Ромашка"':  # the colliding custom key comes back under its column title
            card["custom_fields"]["Телефон (доп.)"] = card["custom_fields"].pop("Телефон")
        assert after[card["name"]] == card


def test_export_of_no_clients_is_a_header_that_imports_as_an_empty_file() -> None:
    parsed = read_clients_csv(export_clients_csv([]))
    assert parsed.rows == [] and parsed.encoding == "utf-8-sig" and parsed.unknown_columns == []


# -- the parser never crashes -------------------------------------------------------------

HEADER = ["Наименование", "ИНН", "КПП", "Телефон", "Email", "Вид", "Теги", "Контактное лицо", "Ответственный"]
_cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\r\n\t"), max_size=25
) | st.sampled_from(["7707083893", "773601001", "ИП", "a@b.ru", "+7 495 123-45-67", '"', ";", "'=1", '="01"'])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(_cells, max_size=len(HEADER) + 2), max_size=10))
def test_any_text_rows_become_a_card_or_a_row_error_each_at_its_line(rows: list[list[str]]) -> None:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow(HEADER)
    expected_lines, line = [], 2
    for cells in rows:
        record = io.StringIO(newline="")
        csv.writer(record, delimiter=";", lineterminator="\r\n").writerow(cells)
        if any(c.strip() for c in cells):
            expected_lines.append(line)
        line += len(io.StringIO(record.getvalue(), newline="").readlines())
        out.write(record.getvalue())
    parsed = read_clients_csv(out.getvalue().encode("utf-8"))
    assert parsed.delimiter == ";" and parsed.header_line == 1
    assert [r.line for r in parsed.rows] == expected_lines
    for row in parsed.rows:
        assert (row.client is None) == bool(row.problems)
        assert row.error is None or (row.error.line == row.line and row.error.reason)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(lambda t: ("Наименование;ИНН\n" + t).encode()))
def test_arbitrary_bytes_are_either_read_or_a_csv_error(data: bytes) -> None:
    try:
        parsed = read_clients_csv(data)
    except CsvError as exc:
        assert str(exc)
        return
    lines = [r.line for r in parsed.rows]
    assert lines == sorted(set(lines)) and all(line > parsed.header_line for line in lines)
    assert all((r.client is None) == bool(r.problems) for r in parsed.rows)
