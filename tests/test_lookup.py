""" "Who is this?": finding clients by phone number, e-mail address and the search box."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import Candidate, ClientBook, ClientQuery, MatchRules
from crm_core.models import Client


async def _add(session: AsyncSession, name: str, **card: Any) -> Client:
    """A committed client; ``phones``/``emails`` may be given as plain strings."""
    card["phones"] = [{"number": p} if isinstance(p, str) else p for p in card.get("phones", [])]
    card["emails"] = [{"address": e} if isinstance(e, str) else e for e in card.get("emails", [])]
    client = await ClientBook(session).create(ClientIn(name=name, **card), SYSTEM)
    await session.commit()
    return client


def _names(page_items: list[Client]) -> list[str]:
    return [c.name for c in page_items]


# -- phone numbers ---------------------------------------------------------------


async def test_exact_e164_match_beats_a_suffix_match(session: AsyncSession) -> None:
    moscow = await _add(session, "Ромашка", phones=["8 (495) 123-45-67"])
    await _add(session, "Daisy Inc", phones=["+1 495 123 4567"])  # same last ten digits, other country
    found = await ClientBook(session).find_by_phone("+7 495 123 45 67")
    assert found.match == "exact"
    assert found.candidates == [Candidate(moscow.id, "Ромашка", None, None, "+74951234567")]
    assert found.is_ambiguous is False


async def test_number_stored_with_another_country_code_is_found_by_its_last_ten_digits(session: AsyncSession) -> None:
    daisy = await _add(session, "Daisy Inc", phones=["+1 495 123 4567"])
    found = await ClientBook(session).find_by_phone("8 495 123-45-67")
    assert found.match == "suffix"
    assert found.candidates == [Candidate(daisy.id, "Daisy Inc", None, None, "+14951234567")]


async def test_stored_number_without_a_reading_is_found_by_its_last_ten_digits(session: AsyncSession) -> None:
    odd = await _add(session, "Лютик", phones=["тел. 495-123-45-67 (не звонить)"])
    found = await ClientBook(session).find_by_phone("+74951234567")
    assert found.match == "suffix"
    assert found.candidates == [Candidate(odd.id, "Лютик", None, None, "тел. 495-123-45-67 (не звонить)")]


async def test_number_matching_two_clients_returns_both_as_candidates(session: AsyncSession) -> None:
    first = await _add(session, "Ромашка", phones=["8 (495) 123-45-67"])
    second = await _add(session, "Ромашка-Юг", phones=["+7 495 1234567 доб. 12"])
    found = await ClientBook(session).find_by_phone("+74951234567")
    assert found.match == "exact"
    assert found.client_ids == [first.id, second.id]
    assert found.is_ambiguous is True
    assert [c.client_name for c in found.candidates] == ["Ромашка", "Ромашка-Юг"]


async def test_contact_phone_names_the_contact_person(session: AsyncSession) -> None:
    client = await _add(
        session,
        "Ромашка",
        phones=["+7 495 123-45-67"],
        contacts=[
            {
                "last_name": "Иванов",
                "first_name": "Иван",
                "middle_name": "Петрович",
                "position": "бухгалтер",
                "phones": [{"number": "8 916 765-43-21"}],
            }
        ],
    )
    contact_id = client.contacts[0].id
    found = await ClientBook(session).find_by_phone("+79167654321")
    assert found.match == "exact"
    assert found.candidates == [Candidate(client.id, "Ромашка", contact_id, "Иванов Иван Петрович", "+79167654321")]


async def test_office_and_contact_sharing_a_number_are_one_client_not_an_ambiguity(session: AsyncSession) -> None:
    client = await _add(
        session,
        "Ромашка",
        phones=["+7 495 123-45-67"],
        contacts=[{"first_name": "Мария", "phones": [{"number": "8 495 123 45 67"}]}],
    )
    found = await ClientBook(session).find_by_phone("84951234567")
    assert [(c.client_id, c.contact_name) for c in found.candidates] == [(client.id, None), (client.id, "Мария")]
    assert found.client_ids == [client.id]
    assert found.is_ambiguous is False


async def test_deleted_client_is_not_found_by_phone_email_or_search(session: AsyncSession) -> None:
    book = ClientBook(session)
    gone = await _add(session, "Ромашка", phones=["+7 495 123-45-67"], emails=["info@romashka.ru"])
    await book.delete(gone.id, SYSTEM)
    await session.commit()
    assert (await book.find_by_phone("+74951234567")).match == "none"
    assert (await book.find_by_email("info@romashka.ru")).match == "none"
    page = await book.search(ClientQuery(q="ромашка"))
    assert (page.total, page.items) == (0, [])


async def test_short_internal_number_matches_only_in_full(session: AsyncSession) -> None:
    desk = await _add(session, "Ресепшн", phones=["101"])
    await _add(session, "Склад", phones=["5101"])
    await _add(session, "Офис", phones=["+7 495 123-01-01"])
    book = ClientBook(session)
    found = await book.find_by_phone("101")
    assert (found.match, found.client_ids) == ("exact", [desk.id])
    assert found.candidates[0].matched == "101"
    assert (await book.find_by_phone("01")).match == "none"


async def test_text_without_digits_finds_nobody(session: AsyncSession) -> None:
    await _add(session, "Ромашка", phones=["тел. (не звонить)"])
    book = ClientBook(session)
    found = {text: await book.find_by_phone(text) for text in ["", "   ", "abc", "доб."]}
    assert {text: (f.match, f.candidates) for text, f in found.items()} == {
        "": ("none", []),
        "   ": ("none", []),
        "abc": ("none", []),
        "доб.": ("none", []),
    }


async def test_seven_digit_suffix_rule_finds_a_city_number_typed_without_area_code(session: AsyncSession) -> None:
    moscow = await _add(session, "Ромашка", phones=["+7 495 123-45-67"])
    spb = await _add(session, "Лютик", phones=["+7 812 123-45-67"])
    await _add(session, "Василёк", phones=["+7 495 765-43-21"])
    assert (await ClientBook(session).find_by_phone("123-45-67")).match == "none"  # ten digits by default
    found = await ClientBook(session, MatchRules(suffix_digits=7)).find_by_phone("123-45-67")
    assert found.match == "suffix"
    assert found.client_ids == [moscow.id, spb.id]
    assert found.is_ambiguous is True


async def test_exact_match_wins_even_behind_many_suffix_matches(session: AsyncSession) -> None:
    for area in range(300, 350):  # fifty other cities' numbers ending in 123-45-67
        await ClientBook(session).create(
            ClientIn(name=f"Город {area}", phones=[{"number": f"+7 {area} 123-45-67"}]), SYSTEM
        )
    target = await _add(session, "Ромашка", phones=["+7 495 123-45-67"])
    found = await ClientBook(session, MatchRules(suffix_digits=7)).find_by_phone("+7 495 123-45-67")
    assert (found.match, found.client_ids) == ("exact", [target.id])


# -- e-mail addresses ------------------------------------------------------------


async def test_email_is_found_whatever_the_case(session: AsyncSession) -> None:
    client = await _add(session, "Ромашка", emails=["Ivan.Petrov@Romashka.RU"])
    found = await ClientBook(session).find_by_email("  ivan.petrov@ROMASHKA.ru ")
    assert found.match == "exact"
    assert found.candidates == [Candidate(client.id, "Ромашка", None, None, "Ivan.Petrov@Romashka.RU")]


async def test_email_of_a_contact_names_the_contact(session: AsyncSession) -> None:
    client = await _add(
        session,
        "Ромашка",
        contacts=[{"last_name": "Петрова", "first_name": "Анна", "emails": [{"address": "anna@romashka.ru"}]}],
    )
    found = await ClientBook(session).find_by_email("Anna@Romashka.ru")
    assert [(c.client_id, c.contact_id, c.contact_name) for c in found.candidates] == [
        (client.id, client.contacts[0].id, "Петрова Анна")
    ]


async def test_plus_tag_is_ignored_only_when_folding_is_on(session: AsyncSession) -> None:
    client = await _add(session, "Ромашка", emails=["ivan@romashka.ru"])
    plain = ClientBook(session)
    folding = ClientBook(session, MatchRules(fold_plus=True))

    assert (await plain.find_by_email("ivan+shop@romashka.ru")).match == "none"
    assert (await plain.find_by_email("ivan+shop@romashka.ru", fold_plus=True)).client_ids == [client.id]
    assert (await folding.find_by_email("Ivan+Shop@romashka.ru")).client_ids == [client.id]
    assert (await folding.find_by_email("ivan+shop@romashka.ru", fold_plus=False)).match == "none"


async def test_stored_plus_address_is_found_by_the_plain_one_when_folding(session: AsyncSession) -> None:
    client = await _add(session, "Ромашка", emails=["ivan+news@romashka.ru"])
    assert (await ClientBook(session).find_by_email("ivan@romashka.ru")).match == "none"
    found = await ClientBook(session, MatchRules(fold_plus=True)).find_by_email("ivan@romashka.ru")
    assert found.candidates == [Candidate(client.id, "Ромашка", None, None, "ivan+news@romashka.ru")]


async def test_address_shared_by_two_clients_gives_both(session: AsyncSession) -> None:
    a = await _add(session, "Ромашка", emails=["buh@outsource.ru"])
    b = await _add(session, "Лютик", emails=["BUH@outsource.ru"])
    found = await ClientBook(session).find_by_email("buh@outsource.ru")
    assert (found.client_ids, found.is_ambiguous) == ([a.id, b.id], True)


# -- the search box --------------------------------------------------------------


async def test_search_by_part_of_a_cyrillic_name_ignores_case(session: AsyncSession) -> None:
    await _add(session, "ООО «Ромашка»")
    await _add(session, "Ромашка-Юг", full_name="Общество с ограниченной ответственностью «Ромашка-Юг»")
    await _add(session, "Лютик")
    book = ClientBook(session)
    assert _names((await book.search(ClientQuery(name="РОМАШ"))).items) == ["ООО «Ромашка»", "Ромашка-Юг"]
    assert _names((await book.search(ClientQuery(name="ромашка-юг"))).items) == ["Ромашка-Юг"]
    assert _names((await book.search(ClientQuery(name="ОБЩЕСТВО С ОГРАНИЧЕННОЙ"))).items) == ["Ромашка-Юг"]
    assert _names((await book.search(ClientQuery(q="лЮтИк"))).items) == ["Лютик"]


async def test_search_treats_percent_and_underscore_in_a_name_literally(session: AsyncSession) -> None:
    await _add(session, "Скидка_100%")
    await _add(session, "Скидка 1000")
    book = ClientBook(session)
    assert _names((await book.search(ClientQuery(name="скидка_"))).items) == ["Скидка_100%"]
    assert _names((await book.search(ClientQuery(name="100%"))).items) == ["Скидка_100%"]


async def test_search_by_inn_prefix(session: AsyncSession) -> None:
    await _add(session, "Сбербанк", inn="7707083893")
    await _add(session, "Газпром", inn="7736050003")
    await _add(session, "Без ИНН")
    book = ClientBook(session)
    assert _names((await book.search(ClientQuery(inn="7707"))).items) == ["Сбербанк"]
    assert _names((await book.search(ClientQuery(inn="77"))).items) == ["Газпром", "Сбербанк"]


async def test_search_by_phone_and_by_email(session: AsyncSession) -> None:
    await _add(session, "Ромашка", phones=["8 (495) 123-45-67"], emails=["info@romashka.ru"])
    await _add(session, "Лютик", phones=["+7 812 765-43-21"], emails=["info@lutik.ru"])
    book = ClientBook(session)
    assert _names((await book.search(ClientQuery(phone="+7 495 1234567"))).items) == ["Ромашка"]
    assert _names((await book.search(ClientQuery(email="INFO@lutik.ru"))).items) == ["Лютик"]
    assert (await book.search(ClientQuery(phone="+7 999 000-00-00"))).total == 0


async def test_search_by_tag_status_and_owner(session: AsyncSession) -> None:
    await _add(session, "Альфа", tags=["VIP", "опт"])
    await _add(session, "Бета", tags=["опт"], status="lead")
    await _add(session, "Гамма", tags=["розница"])
    book = ClientBook(session)
    assert _names((await book.search(ClientQuery(tag="опт"))).items) == ["Альфа", "Бета"]
    assert _names((await book.search(ClientQuery(tag="VIP"))).items) == ["Альфа"]
    assert _names((await book.search(ClientQuery(tag="опт", status="lead"))).items) == ["Бета"]
    assert (await book.search(ClientQuery(owner_id=1))).total == 0


async def test_search_pages_through_results_with_the_total_on_every_page(session: AsyncSession) -> None:
    for name in ["Дельта", "Альфа", "Эпсилон", "Бета", "Гамма"]:
        await _add(session, name)
    book = ClientBook(session)
    pages = [await book.search(ClientQuery(page=n, per_page=2)) for n in (1, 2, 3, 4)]
    assert [_names(p.items) for p in pages] == [["Альфа", "Бета"], ["Гамма", "Дельта"], ["Эпсилон"], []]
    assert [(p.total, p.page, p.per_page) for p in pages] == [(5, 1, 2), (5, 2, 2), (5, 3, 2), (5, 4, 2)]


async def test_free_text_search_finds_by_name_phone_inn_or_email(session: AsyncSession) -> None:
    await _add(session, "Ромашка", inn="7707083893", phones=["8 (495) 123-45-67"], emails=["info@romashka.ru"])
    await _add(session, "Лютик", inn="7736050003", phones=["+7 812 765-43-21"], emails=["info@lutik.ru"])
    expected = {
        "ромашка": ["Ромашка"],
        "ик": ["Лютик"],
        "+7 (495) 123-45-67": ["Ромашка"],
        "8 812 765 43 21": ["Лютик"],
        "7707083893": ["Ромашка"],
        "770708": ["Ромашка"],
        "INFO@LUTIK.RU": ["Лютик"],
        "info@nowhere.ru": [],
    }
    book = ClientBook(session)
    pages = {q: await book.search(ClientQuery(q=q)) for q in expected}
    assert {q: _names(page.items) for q, page in pages.items()} == expected
    assert {q: page.total for q, page in pages.items()} == {q: len(names) for q, names in expected.items()}
