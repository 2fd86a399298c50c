"""The 1C sync end to end: the hub's engine against a fake 1C over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

from sqlalchemy import select

from crm_core.audit import Actor
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Client
from crm_core.onec import decisions
from crm_core.onec.models import ConflictStatus, OnecConflict, OnecLogEntry, OnecProposal, ProposalStatus
from crm_core.outbox import OutboxEvent
from hub.onec import OnecSync
from tests.fake_onec import COUNTERPARTIES, FakeOnec, counterparty
from tests.onec_world import (
    client_count,
    hub_state,
    link_count,
    onec_state,
    seed_hub,
    seed_onec,
    split_worlds,
)

USER = Actor(user_id=None, username="tester")
# The acceptance's sizes; ONEC_SYNC_SIZE=1000 gives a quick local run of the same test.
SIZE = int(os.environ.get("ONEC_SYNC_SIZE", "10000"))


async def _run(sync: OnecSync) -> dict[str, int]:
    report = await sync.run("acc", "test")
    assert report.ok, report.error
    return report.counts


async def _card(sync: OnecSync, **fields: object) -> int:
    async with sync.context.transaction() as session:
        client = await ClientBook(session).create(ClientIn.model_validate(fields), USER)
        return client.id


async def _card_fields(sync: OnecSync, client_id: int, *names: str) -> tuple[object, ...]:
    async with sync.context.reading() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return tuple(getattr(client, name) for name in names)


async def test_first_sync_links_the_common_counterparties_and_creates_the_rest_on_each_side(
    onec: OnecSync, fake: FakeOnec
) -> None:
    common = SIZE // 5
    onec_entries, hub_entries = split_worlds(fake, SIZE, SIZE - common, common)
    seed_onec(fake, onec_entries)
    await seed_hub(onec.context, hub_entries)

    counts = await _run(onec)

    assert counts["linked"] == common
    assert counts["created_hub"] == SIZE - common
    assert counts["created_1c"] == SIZE - common
    assert "failed" not in counts and "conflicts" not in counts
    everyone = 2 * SIZE - common
    assert await client_count(onec.context) == everyone
    assert len(fake.entries(COUNTERPARTIES)) == everyone
    assert await link_count(onec.context) == everyone
    assert await hub_state(onec.context) == onec_state(fake)  # one set, no duplicates on either side
    assert all(r.method != "DELETE" for r in fake.requests)

    writes, requests = len(fake.writes()), len(fake.requests)
    async with onec.context.reading() as session:
        events = len((await session.scalars(select(OutboxEvent.id))).all())
    again = await _run(onec)
    assert set(again) <= {"unchanged"}
    assert len(fake.writes()) == writes  # nothing changed: nothing written to 1C
    async with onec.context.reading() as session:
        assert len((await session.scalars(select(OutboxEvent.id))).all()) == events  # nor in the hub
    reads = [r for r in fake.requests[requests:] if r.method == "GET" and r.entity_set == COUNTERPARTIES]
    assert not any("КонтактнаяИнформация" in r.query.get("$select", "") for r in reads)  # the cheap list only


async def test_a_change_on_each_side_arrives_on_the_other(onec: OnecSync, fake: FakeOnec) -> None:
    seed_onec(fake, [counterparty(Description="Альфа ООО", ИНН="7707083893", КПП="770701001")])
    client_id = await _card(onec, name="Бета", inn="7736207543", kpp="773601001")
    await _run(onec)
    [alpha] = [e for e in fake.entries(COUNTERPARTIES) if e["ИНН"] == "7707083893"]
    [beta] = [e for e in fake.entries(COUNTERPARTIES) if e["ИНН"] == "7736207543"]

    fake.edit(COUNTERPARTIES, alpha["Ref_Key"], {"Description": "Альфа-Плюс ООО"})
    async with onec.context.transaction() as session:
        await ClientBook(session).update(client_id, {"phones": [{"number": "+7 495 123-45-67"}]}, USER)
    counts = await _run(onec)

    assert counts["updated_hub"] == 1 and counts["updated_1c"] == 1
    async with onec.context.reading() as session:
        names = set(await session.scalars(select(Client.name)))
    assert "Альфа-Плюс ООО" in names
    rows = fake.get(COUNTERPARTIES, beta["Ref_Key"])["КонтактнаяИнформация"]  # type: ignore[index]
    assert [r["Тип"] for r in rows] == ["Телефон"]
    assert rows[0]["LineNumber"] == "1" and "495" in rows[0]["Представление"]
    assert rows[0]["Вид_Key"] == fake.kind_key("ТелефонКонтрагента")


async def test_one_field_changed_on_both_sides_is_one_conflict_and_nothing_changes_until_resolved(
    onec: OnecSync, fake: FakeOnec
) -> None:
    seed_onec(fake, [counterparty(Description="Гамма ООО", ИНН="7707083893", КПП="770701001")])
    await _run(onec)
    [entry] = fake.entries(COUNTERPARTIES)
    async with onec.context.reading() as session:
        client_id = await session.scalar(select(Client.id))
    assert client_id is not None
    fake.edit(COUNTERPARTIES, entry["Ref_Key"], {"Description": "Гамма (1С)"})
    async with onec.context.transaction() as session:
        await ClientBook(session).update(client_id, {"name": "Гамма (hub)"}, USER)
    writes = len(fake.writes())

    first = await _run(onec)
    second = await _run(onec)

    assert first.get("conflicts") == 1 and "conflicts" not in second
    assert len(fake.writes()) == writes
    assert await _card_fields(onec, client_id, "name") == ("Гамма (hub)",)
    assert fake.get(COUNTERPARTIES, entry["Ref_Key"])["Description"] == "Гамма (1С)"  # type: ignore[index]
    async with onec.context.transaction() as session:
        [conflict] = (await session.scalars(select(OnecConflict))).all()
        assert (conflict.field, conflict.hub_value, conflict.onec_value) == ("name", "Гамма (hub)", "Гамма (1С)")
        await decisions.resolve_conflict(session, conflict.id, "onec", None, USER)

    async with onec.engine("acc") as engine:
        report = await engine.sync_clients([client_id])
    assert report.ok, report.error
    assert await _card_fields(onec, client_id, "name") == ("Гамма (1С)",)
    async with onec.context.reading() as session:
        assert (await session.scalar(select(OnecConflict.status))) is ConflictStatus.applied
    assert len(fake.writes()) == writes  # 1C already had the chosen value


async def test_an_uncertain_match_is_proposed_and_merged_only_once_accepted(onec: OnecSync, fake: FakeOnec) -> None:
    seed_onec(fake, [counterparty(Description="Дельта ООО", ИНН="7707083893", КПП="770701001")])
    client_id = await _card(onec, name="Дельта ООО")  # no INN in the hub: the name alone is not proof
    counts = await _run(onec)
    assert counts == {"proposed": 1}
    assert await client_count(onec.context) == 1 and len(fake.entries(COUNTERPARTIES)) == 1

    async with onec.context.transaction() as session:
        proposal_id = await session.scalar(select(OnecProposal.id).where(OnecProposal.status == ProposalStatus.open))
        assert proposal_id is not None
        await decisions.accept_proposal(session, proposal_id, USER)
    await _run(onec)

    assert await _card_fields(onec, client_id, "inn", "kpp") == ("7707083893", "770701001")
    assert await client_count(onec.context) == 1 and len(fake.entries(COUNTERPARTIES)) == 1


async def test_deletion_marks_become_soft_deletes_and_nothing_is_destroyed(onec: OnecSync, fake: FakeOnec) -> None:
    seed_onec(fake, [counterparty(Description="Эпсилон ООО", ИНН="7707083893", КПП="770701001")])
    client_id = await _card(onec, name="Зета", inn="7736207543", kpp="773601001")
    await _run(onec)
    [epsilon] = [e for e in fake.entries(COUNTERPARTIES) if e["ИНН"] == "7707083893"]
    [zeta] = [e for e in fake.entries(COUNTERPARTIES) if e["ИНН"] == "7736207543"]

    fake.edit(COUNTERPARTIES, epsilon["Ref_Key"], {"DeletionMark": True})
    async with onec.context.transaction() as session:
        await ClientBook(session).delete(client_id, USER)
    await _run(onec)

    assert fake.get(COUNTERPARTIES, zeta["Ref_Key"])["DeletionMark"] is True  # type: ignore[index]
    async with onec.context.reading() as session:
        deleted = set(await session.scalars(select(Client.name).where(Client.deleted_at.is_not(None))))
    assert deleted == {"Эпсилон ООО", "Зета"}
    assert len(fake.entries(COUNTERPARTIES)) == 2
    assert all(r.method != "DELETE" for r in fake.requests)


async def test_a_counterparty_in_a_folder_shows_its_folder_on_the_card(onec: OnecSync, fake: FakeOnec) -> None:
    buyers = fake.add(COUNTERPARTIES, counterparty(Description="Покупатели", IsFolder=True))
    moscow = fake.add(COUNTERPARTIES, counterparty(Description="Москва", IsFolder=True, Parent_Key=buyers["Ref_Key"]))
    fake.add(COUNTERPARTIES, counterparty(Description="Эта ООО", ИНН="7707083893", КПП="770701001",
                                          Parent_Key=moscow["Ref_Key"]))  # fmt: skip
    counts = await _run(onec)
    assert counts == {"created_hub": 1}
    async with onec.context.reading() as session:
        fields = await session.scalar(select(Client.custom_fields))
    assert fields == {"1c_group": "Покупатели / Москва"}


async def test_a_counterparty_the_hub_refuses_is_logged_and_kept_aside(onec: OnecSync, fake: FakeOnec) -> None:
    seed_onec(fake, [counterparty(Description="Тета ООО", ИНН="7707083890", КПП="770701001"),  # bad check digit
                     counterparty(Description="Йота ООО", ИНН="7736207543", КПП="773601001")])  # fmt: skip
    report = await onec.run("acc", "test")
    assert report.ok and report.counts == {"created_hub": 1, "failed": 1}
    again = await onec.run("acc", "test")
    assert again.counts == {}  # unchanged in 1C: not read again
    async with onec.context.reading() as session:
        [failure] = (await session.scalars(select(OnecLogEntry.detail).where(OnecLogEntry.action == "failed"))).all()
    assert "Тета ООО" in failure and "check digit" in failure
