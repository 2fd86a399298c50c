"""A hub and a fake 1C for the sync tests: both sides seeded, and each side's state in a comparable form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from connectors.onec.counterparties import KIND_NAMES
from crm_core.models import Client, ClientKind, utcnow
from crm_core.onec.models import LinkState, OnecLink
from hub.config import OnecSettings
from hub.context import HubContext
from hub.onec import OnecSync
from tests.conftest import open_context
from tests.fake_onec import COUNTERPARTIES, FakeOnec, generate_counterparties

USER, PASSWORD = "Администратор", "секрет"


def onec_settings(fake: FakeOnec, **overrides: Any) -> OnecSettings:
    """The fake's publication as an [[onec]]: quick timeouts and few retries, so faults cost seconds."""
    values: dict[str, Any] = {
        "name": "acc",
        "url": fake.url.split("/odata/")[0],
        "user": USER,
        "password": PASSWORD,
        "interval_minutes": 0,
        "timeout_seconds": 2.0,
        "retries": 2,
        **overrides,
    }
    return OnecSettings(**values)


@asynccontextmanager
async def hub_with_onec(url: str, data_dir: Path, fake: FakeOnec, **overrides: Any) -> AsyncIterator[OnecSync]:
    context = await open_context(url, data_dir, onec=[onec_settings(fake, **overrides)])
    sync = OnecSync(context)
    try:
        yield sync
    finally:
        await sync.close()
        await context.close()


def seed_onec(fake: FakeOnec, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        fake.add(COUNTERPARTIES, entry)


async def seed_hub(context: HubContext, entries: list[dict[str, Any]]) -> None:
    """Cards with these counterparties' names and requisites, written directly (fast, many at once)."""
    now = utcnow()
    rows = [
        {
            "kind": (ClientKind.legal_entity if e["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо" else
                     ClientKind.sole_trader if len(e["РегистрационныйНомер"]) == 15 else ClientKind.individual),
            "name": e["Description"],
            "full_name": e["НаименованиеПолное"],
            "search_name": f"{e['Description']} {e['НаименованиеПолное']}".casefold(),
            "inn": e["ИНН"] or None,
            "kpp": e["КПП"] or None,
            "ogrn": e["РегистрационныйНомер"] or None,
            "addresses": [],
            "status": "active",
            "custom_fields": {},
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for e in entries
    ]  # fmt: skip
    async with context.transaction() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(insert(cast(Table, Client.__table__)), rows[start : start + 1000])


def split_worlds(
    fake: FakeOnec, onec_count: int, hub_only: int, common: int, seed: int = 7
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(1C's entries, the hub's entries): ``common`` of them on both sides, by INN/KPP."""
    kinds = {name: fake.kind_key(name) for name in KIND_NAMES.values()}
    everything = generate_counterparties(onec_count + hub_only, seed, kinds)
    onec, rest = everything[:onec_count], everything[onec_count:]
    return onec, onec[:common] + rest


async def hub_state(context: HubContext) -> set[tuple[Any, ...]]:
    """Live cards as (name, INN, KPP, deleted): what must match 1C after a sync."""
    async with context.reading() as session:
        rows = await session.execute(select(Client.name, Client.inn, Client.kpp, Client.deleted_at.is_not(None)))
        return {(name, inn or "", kpp or "", deleted) for name, inn, kpp, deleted in rows}


def onec_state(fake: FakeOnec) -> set[tuple[Any, ...]]:
    return {
        (e["Description"], e["ИНН"], e["КПП"], e["DeletionMark"])
        for e in fake.entries(COUNTERPARTIES)
        if not e["IsFolder"]
    }


async def link_count(context: HubContext) -> int:
    async with context.reading() as session:
        return int(
            await session.scalar(select(func.count()).select_from(OnecLink).where(OnecLink.state == LinkState.linked))
            or 0
        )


async def client_count(context: HubContext) -> int:
    async with context.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(Client)) or 0)
