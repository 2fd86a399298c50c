"""The client book: cards created, changed and deleted with an audit trail, and their timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM, Actor
from crm_core.client_data import ClientIn, client_to_dict
from crm_core.clients import ClientBook, ClientQuery
from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import AuditEntry, Role, utcnow
from crm_core.timeline import client_timeline
from crm_core.users import NewUser, UserDirectory

# -- helpers ---------------------------------------------------------------------


async def _actor(session: AsyncSession, username: str = "ivanova") -> Actor:
    user = await UserDirectory(session).create(NewUser(username=username, role=Role.operator))
    await session.commit()
    return Actor(user_id=user.id, username=user.username, ip="10.0.0.7")


async def _audit(
    session: AsyncSession,
) -> list[tuple[str, str, str | None, int | None, str, str | None, dict[str, Any]]]:
    rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(r.action, r.entity, r.entity_id, r.user_id, r.username, r.ip, r.details) for r in rows]


def _problem(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(error.value.errors()[0]["msg"])


async def test_client_with_russian_number_is_found_by_e164_and_by_last_ten_digits(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка", phones=[{"number": "8 (495) 123-45-67"}]), SYSTEM)
    await session.commit()
    exact = await book.find_by_phone("+74951234567")
    assert exact.match == "exact" and exact.client_ids == [client.id]
    by_tail = await book.find_by_phone("4951234567")
    assert by_tail.client_ids == [client.id]
    card = client_to_dict(await book.get(client.id))
    assert card["phones"][0]["number"] == "8 (495) 123-45-67"
    assert card["phones"][0]["e164"] == "+74951234567"


# -- create, update, delete and the audit log -------------------------------------


async def test_creating_a_client_records_who_did_it_in_the_audit_log(session: AsyncSession) -> None:
    actor = await _actor(session)
    client = await ClientBook(session).create(ClientIn(name="Ромашка", inn="7707083893"), actor, source="import")
    await session.commit()
    assert client.version == 1
    assert await _audit(session) == [
        ("create", "client", str(client.id), actor.user_id, "ivanova", "10.0.0.7", {"source": "import"})
    ]


async def test_changing_a_client_logs_only_the_changed_fields_and_bumps_the_version(session: AsyncSession) -> None:
    actor = await _actor(session)
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка", tags=["опт"], phones=[{"number": "8 495 123-45-67"}]), SYSTEM)
    await session.commit()

    changed, diff = await book.update(client.id, {"name": "Ромашка-Юг", "tags": ["опт", "VIP"]}, actor)
    await session.commit()

    assert diff == {"name": ["Ромашка", "Ромашка-Юг"], "tags": [["опт"], ["VIP", "опт"]]}
    assert (changed.name, changed.version) == ("Ромашка-Юг", 2)
    assert client_to_dict(await book.get(client.id))["phones"][0]["number"] == "8 495 123-45-67"
    assert (await _audit(session))[-1] == (
        "update",
        "client",
        str(client.id),
        actor.user_id,
        "ivanova",
        "10.0.0.7",
        {"changed": {"name": ["Ромашка", "Ромашка-Юг"], "tags": [["опт"], ["VIP", "опт"]]}},
    )


async def test_saving_a_card_unchanged_keeps_its_version_and_logs_nothing(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(
        ClientIn(
            name="Ромашка",
            inn="7707083893",
            kpp="773601001",
            addresses=[{"kind": "legal", "text": "Москва, ул. Вавилова, 19"}],
            contacts=[{"first_name": "Анна", "phones": [{"number": "+7 916 123-45-67", "label": "моб."}]}],
            custom_fields={"segment": "B2B"},
        ),
        SYSTEM,
    )
    await session.commit()
    same, diff = await book.update(client.id, {"name": " Ромашка "}, SYSTEM)
    await session.commit()
    assert (diff, same.version) == ({}, 1)
    assert [row[0] for row in await _audit(session)] == ["create"]


async def test_stale_expected_version_is_a_conflict_and_leaves_the_card_alone(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка"), SYSTEM)
    await book.update(client.id, {"name": "Ромашка-2"}, SYSTEM, expected_version=1)
    await session.commit()
    with pytest.raises(Conflict, match="version 2, you had 1"):
        await book.update(client.id, {"name": "Ромашка-3"}, SYSTEM, expected_version=1)
    assert ((await book.get(client.id)).name, (await book.get(client.id)).version) == ("Ромашка-2", 2)


async def test_deleting_a_client_hides_it_and_logs_its_name(session: AsyncSession) -> None:
    actor = await _actor(session)
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка"), SYSTEM)
    await session.commit()
    await book.delete(client.id, actor)
    await session.commit()
    assert client.version == 2
    with pytest.raises(NotFound):
        await book.get(client.id)
    with pytest.raises(NotFound):
        await book.update(client.id, {"name": "Лютик"}, actor)
    assert (await _audit(session))[-1] == (
        "delete",
        "client",
        str(client.id),
        actor.user_id,
        "ivanova",
        "10.0.0.7",
        {"name": "Ромашка"},
    )


async def test_owner_must_be_an_existing_user(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as refused:
        await ClientBook(session).create(ClientIn(name="Ромашка", owner_id=999), SYSTEM)
    assert refused.value.field == "owner_id"


# -- requisites ------------------------------------------------------------------


async def test_second_client_with_the_same_inn_and_kpp_is_a_conflict(session: AsyncSession) -> None:
    book = ClientBook(session)
    await book.create(ClientIn(name="Сбербанк", inn="7707083893", kpp="773601001"), SYSTEM)
    await session.commit()
    with pytest.raises(Conflict, match="INN 7707083893 / KPP 773601001"):
        await book.create(ClientIn(name="Сбер дубль", inn="7707083893", kpp="773601001"), SYSTEM)


async def test_second_client_with_the_same_inn_and_no_kpp_is_a_conflict(session: AsyncSession) -> None:
    book = ClientBook(session)
    await book.create(ClientIn(name="Сбербанк", inn="7707083893"), SYSTEM)
    await session.commit()
    with pytest.raises(Conflict, match="INN 7707083893$"):
        await book.create(ClientIn(name="Сбер дубль", inn="7707083893"), SYSTEM)


async def test_branches_share_an_inn_with_different_kpps(session: AsyncSession) -> None:
    book = ClientBook(session)
    head = await book.create(ClientIn(name="Сбербанк", inn="7707083893", kpp="773601001"), SYSTEM)
    branch = await book.create(
        ClientIn(name="Сбербанк, Северо-Западный банк", inn="7707083893", kpp="784243001"), SYSTEM
    )
    await session.commit()
    page = await book.search(ClientQuery(inn="7707083893"))
    assert sorted(c.id for c in page.items) == [head.id, branch.id]


async def test_changing_a_client_to_another_clients_inn_is_a_conflict(session: AsyncSession) -> None:
    book = ClientBook(session)
    await book.create(ClientIn(name="Сбербанк", inn="7707083893"), SYSTEM)
    other = await book.create(ClientIn(name="Газпром", inn="7736050003"), SYSTEM)
    await session.commit()
    with pytest.raises(Conflict):
        await book.update(other.id, {"inn": "7707083893"}, SYSTEM)
    await book.update(other.id, {"name": "ПАО Газпром", "inn": "7736050003"}, SYSTEM)  # its own INN is fine


async def test_inn_of_a_deleted_client_can_be_used_again(session: AsyncSession) -> None:
    book = ClientBook(session)
    old = await book.create(ClientIn(name="Ромашка", inn="7707083893"), SYSTEM)
    await book.delete(old.id, SYSTEM)
    new = await book.create(ClientIn(name="Ромашка (новая)", inn="7707083893"), SYSTEM)
    await session.commit()
    assert new.id != old.id


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        ({"inn": "7707083894"}, "Value error, inn: INN check digit does not match"),
        ({"inn": "500100732259"}, "Value error, inn: a legal entity has a 10-digit INN"),
        ({"kind": "sole_trader", "inn": "7707083893"}, "Value error, inn: a sole trader has a 12-digit INN"),
        (
            {"kind": "sole_trader", "inn": "500100732259", "kpp": "773601001"},
            "Value error, kpp: a sole trader has no KPP",
        ),
        ({"kpp": "77360100"}, "Value error, kpp: KPP must be 9 characters: 4 digits, 2 digits or letters, 3 digits"),
        ({"ogrn": "1027700132196"}, "Value error, ogrn: OGRN check digit does not match"),
        ({"ogrn": "304500116000157"}, "Value error, ogrn: a legal entity has a 13-digit OGRN"),
    ],
)
def test_requisites_that_do_not_fit_the_kind_of_client_are_refused(card: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ClientIn(name="Ромашка", **card)
    assert _problem(refused) == problem


def test_well_formed_requisites_of_each_kind_are_accepted() -> None:
    company = ClientIn(name="Сбербанк", inn="7707083893", kpp="773601001", ogrn="1027700132195")
    trader = ClientIn(kind="sole_trader", name="ИП Иванов", inn="500100732259", ogrn="304500116000157")
    person = ClientIn(kind="individual", name="Иванов И. И.", inn=" 500100732259 ", kpp="", ogrn="  ")
    assert (company.inn, trader.ogrn, person.inn, person.kpp, person.ogrn) == (
        "7707083893",
        "304500116000157",
        "500100732259",
        None,
        None,
    )


async def test_update_that_breaks_a_requisite_rule_is_refused_and_changes_nothing(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Сбербанк", inn="7707083893"), SYSTEM)
    await session.commit()
    with pytest.raises(ValidationError):
        await book.update(client.id, {"inn": "7707083894"}, SYSTEM)
    assert ((await book.get(client.id)).inn, (await book.get(client.id)).version) == ("7707083893", 1)


# -- contacts and phones across updates -------------------------------------------


async def test_contacts_passed_back_with_their_ids_keep_them(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(
        ClientIn(
            name="Ромашка",
            contacts=[
                {"last_name": "Иванов", "first_name": "Иван", "phones": [{"number": "+7 916 111-11-11"}]},
                {"last_name": "Петрова", "first_name": "Анна"},
            ],
        ),
        SYSTEM,
    )
    await session.commit()
    ivanov, petrova = [c["id"] for c in client_to_dict(client)["contacts"]]

    await book.update(
        client.id,
        {
            "contacts": [
                {
                    "id": ivanov,
                    "last_name": "Иванов",
                    "first_name": "Иван",
                    "position": "директор",
                    "phones": [{"number": "+7 916 222-22-22"}],
                },
                {"last_name": "Сидоров", "first_name": "Пётр"},
            ]
        },
        SYSTEM,
    )
    await session.commit()

    card = client_to_dict(await book.get(client.id))
    assert [(c["id"] == ivanov, c["last_name"], c["position"]) for c in card["contacts"]] == [
        (True, "Иванов", "директор"),
        (False, "Сидоров", ""),
    ]
    assert petrova not in [c["id"] for c in card["contacts"]]
    assert [p["e164"] for p in card["contacts"][0]["phones"]] == ["+79162222222"]
    assert (await book.find_by_phone("+79161111111")).match == "none"
    assert (await book.find_by_phone("+79162222222")).candidates[0].contact_id == ivanov


async def test_a_contact_id_from_another_card_is_not_taken_over(session: AsyncSession) -> None:
    book = ClientBook(session)
    lutik = await book.create(ClientIn(name="Лютик", contacts=[{"first_name": "Анна"}]), SYSTEM)
    romashka = await book.create(ClientIn(name="Ромашка"), SYSTEM)
    await session.commit()
    anna = lutik.contacts[0].id
    await book.update(romashka.id, {"contacts": [{"id": anna, "first_name": "Мария"}]}, SYSTEM)
    await session.commit()
    assert [(c["id"], c["first_name"]) for c in client_to_dict(await book.get(lutik.id))["contacts"]] == [
        (anna, "Анна")
    ]
    [maria] = client_to_dict(await book.get(romashka.id))["contacts"]
    assert (maria["first_name"], maria["id"] != anna) == ("Мария", True)


async def test_phones_given_in_an_update_replace_the_old_ones(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(
        ClientIn(
            name="Ромашка", phones=[{"number": "8 495 123-45-67", "label": "офис"}, {"number": "8 495 765-43-21"}]
        ),
        SYSTEM,
    )
    await session.commit()
    _, diff = await book.update(
        client.id, {"phones": [{"number": "+7 812 000-11-22 доб. 5", "label": "склад"}]}, SYSTEM
    )
    await session.commit()

    assert diff == {
        "phones": [
            [{"number": "8 495 123-45-67", "label": "офис"}, {"number": "8 495 765-43-21", "label": ""}],
            [{"number": "+7 812 000-11-22 доб. 5", "label": "склад"}],
        ]
    }
    card = client_to_dict(await book.get(client.id))
    assert [(p["number"], p["e164"], p["extension"], p["label"]) for p in card["phones"]] == [
        ("+7 812 000-11-22 доб. 5", "+78120001122", "5", "склад")
    ]
    assert (await book.find_by_phone("84951234567")).match == "none"
    assert (await book.find_by_phone("88120001122")).client_ids == [client.id]


async def test_emails_given_in_an_update_replace_the_old_ones(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка", emails=[{"address": "old@romashka.ru"}]), SYSTEM)
    await session.commit()
    await book.update(client.id, {"emails": [{"address": "New@Romashka.ru", "label": "бухгалтерия"}]}, SYSTEM)
    await session.commit()
    assert (await book.find_by_email("old@romashka.ru")).match == "none"
    assert [(e["address"], e["label"]) for e in client_to_dict(await book.get(client.id))["emails"]] == [
        ("New@Romashka.ru", "бухгалтерия")
    ]


# -- the timeline ----------------------------------------------------------------


async def test_timeline_shows_card_changes_newest_first(session: AsyncSession) -> None:
    actor = await _actor(session)
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка"), actor)
    await session.commit()
    await book.update(client.id, {"name": "Ромашка-Юг"}, actor)
    await session.commit()
    await book.update(client.id, {"website": "https://romashka.ru"}, SYSTEM)
    await session.commit()

    items = await client_timeline(session, client.id)
    assert [(i.kind, i.title, i.data) for i in items] == [
        ("card", "Card changed", {"by": "system", "changed": {"website": [None, "https://romashka.ru"]}}),
        ("card", "Card changed", {"by": "ivanova", "changed": {"name": ["Ромашка", "Ромашка-Юг"]}}),
        ("card", "Card created", {"by": "ivanova", "source": "api"}),
    ]
    assert items[0].at >= items[1].at >= items[2].at
    assert items[0].as_dict()["at"] == items[0].at.isoformat()


async def test_timeline_before_a_moment_shows_only_older_items(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка"), SYSTEM)
    await session.commit()
    for name in ("Ромашка-1", "Ромашка-2"):
        await book.update(client.id, {"name": name}, SYSTEM)
        await session.commit()
    newest, middle, oldest = await client_timeline(session, client.id)

    assert [i.id for i in await client_timeline(session, client.id, before=newest.at)] == [middle.id, oldest.id]
    assert [i.id for i in await client_timeline(session, client.id, before=middle.at)] == [oldest.id]
    assert await client_timeline(session, client.id, before=oldest.at) == []
    assert [i.id for i in await client_timeline(session, client.id, limit=1)] == [newest.id]


async def test_timeline_of_one_client_does_not_show_another(session: AsyncSession) -> None:
    book = ClientBook(session)
    mine = await book.create(ClientIn(name="Ромашка"), SYSTEM)
    other = await book.create(ClientIn(name="Лютик"), SYSTEM)
    await book.update(other.id, {"name": "Лютик-2"}, SYSTEM)
    await book.delete(other.id, SYSTEM)
    await session.commit()
    assert [i.title for i in await client_timeline(session, mine.id)] == ["Card created"]
    assert [i.title for i in await client_timeline(session, other.id)] == [
        "Card deleted",
        "Card changed",
        "Card created",
    ]


async def test_timeline_items_at_the_same_instant_are_still_newest_first(session: AsyncSession) -> None:
    client = await ClientBook(session).create(ClientIn(name="Ромашка"), SYSTEM)
    await session.commit()
    same_instant = utcnow()
    for n in range(12):
        session.add(
            AuditEntry(
                at=same_instant,
                username="1c-sync",
                action="update",
                entity="client",
                entity_id=str(client.id),
                details={"n": n},
            )
        )
    await session.commit()
    items = await client_timeline(session, client.id, before=same_instant + timedelta(seconds=1))
    assert [i.data.get("n") for i in items] == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, None]


# -- storage limits ----------------------------------------------------------------


async def test_card_with_the_longest_allowed_name_and_full_name_is_stored(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Р" * 300, full_name="О" * 1000), SYSTEM)
    await session.commit()
    assert (await book.search(ClientQuery(name="рррр"))).total == 1
    assert len((await book.get(client.id)).full_name) == 1000


def test_field_with_three_numbers_pasted_from_a_spreadsheet_is_refused_by_name() -> None:
    typed = "8 495 123-45-67; 8 495 123-45-68; 8 916 123-45-69"  # 33 digits, no single reading
    with pytest.raises(ValidationError) as refused:
        ClientIn(name="Ромашка", phones=[{"number": typed}])
    assert _problem(refused) == "Value error, a phone number has at most 20 digits"
    assert refused.value.errors()[0]["loc"] == ("phones", 0, "number")


async def test_unreadable_phone_of_twenty_digits_is_kept_as_typed_and_found_by_its_tail(session: AsyncSession) -> None:
    book = ClientBook(session)
    typed = "тел. 495 123-45-67 / 8-916-123-45-6"  # 20 digits, no single reading
    client = await book.create(ClientIn(name="Ромашка", phones=[{"number": typed}]), SYSTEM)
    await session.commit()
    card = client_to_dict(await book.get(client.id))
    assert (card["phones"][0]["number"], card["phones"][0]["e164"]) == (typed, None)
    assert (await book.find_by_phone("+7 891 612 34 56")).client_ids == [client.id]


async def test_many_numbers_at_once_find_what_one_at_a_time_finds(session: AsyncSession) -> None:
    """The batched lookup (a backlog of calls) answers exactly as the one-number lookup does."""
    book = ClientBook(session)
    await book.create(ClientIn(name="Ромашка", phones=[{"number": "+7 495 123-45-67"}]), SYSTEM)
    await book.create(ClientIn(name="Лютик", phones=[{"number": "8 495 123-45-67"}, {"number": "101"}]), SYSTEM)
    await book.create(
        ClientIn(name="Kazakh", contacts=[{"first_name": "Айгуль", "phones": [{"number": "+7 727 555-12-34"}]}]), SYSTEM
    )
    await book.create(ClientIn(name="Suffix only", phones=[{"number": "+1 (495) 123-45-67"}]), SYSTEM)
    for i in range(70):  # more numbers than one statement carries
        await book.create(ClientIn(name=f"Клиент {i}", phones=[{"number": f"+7916000{i:04d}"}]), SYSTEM)
    numbers = [
        "+74951234567",
        "4951234567",
        "+14951234567",
        "+77275551234",
        "101",
        "555",
        "+79990000000",
        "not a number",
        *(f"8 916 000-{i // 100:02d}-{i % 100:02d}" for i in range(75)),
    ]
    one_at_a_time = {n: await book.find_by_phone(n) for n in numbers}
    assert await book.find_by_phones(numbers + numbers[:3]) == one_at_a_time
    assert one_at_a_time["+74951234567"].match == "exact" and len(one_at_a_time["+74951234567"].client_ids) == 2
    assert one_at_a_time["+79990000000"].match == "none" and one_at_a_time["101"].match == "exact"
