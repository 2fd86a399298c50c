"""The schema comes from the Alembic migrations, and it is exactly what the models describe."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, func, inspect, select
from sqlalchemy.engine import Connection

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.db import make_engine, make_sessionmaker
from crm_core.migrate import current_revision, head_revision, is_up_to_date, upgrade
from crm_core.models import Client
from crm_core.tables import metadata

TABLES = {
    "alembic_version",
    "api_tokens",
    "audit_log",
    "call_rings",
    "calls",
    "campaign_bounces",
    "campaign_links",
    "campaign_recipients",
    "campaign_segments",
    "campaigns",
    "client_tags",
    "clients",
    "client_notes",
    "contacts",
    "emails",
    "inbound_hooks",
    "leases",
    "live_call_notes",
    "mail_attachments",
    "mail_checkpoints",
    "mail_copies",
    "mail_links",
    "mail_messages",
    "mail_quarantine",
    "mail_threads",
    "onec_conflicts",
    "onec_links",
    "onec_log",
    "onec_proposals",
    "onec_runs",
    "outbox_events",
    "phones",
    "suppressions",
    "sync_requests",
    "tracking_hits",
    "users",
    "web_sessions",
    "webhook_deliveries",
    "webhook_subscriptions",
}


def _schema_diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, metadata)


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _schema_snapshot(conn: Connection) -> dict[str, Any]:
    """Every table's columns (name, type, nullability) and indexes, as reflected."""
    inspector = inspect(conn)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


async def test_empty_database_is_not_up_to_date_and_has_no_revision(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert await current_revision(engine) is None
        assert await is_up_to_date(engine) is False
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_database_reaches_head(database_url: str) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert head_revision() is not None
        assert await current_revision(engine) == head_revision()
        assert await is_up_to_date(engine) is True
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == TABLES
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_models_exactly(database_url: str) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_schema_diff)
        assert diff == []
    finally:
        await engine.dispose()


async def test_upgrading_a_database_already_at_head_changes_nothing(database_url: str) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            before = await conn.run_sync(_schema_snapshot)
        async with make_sessionmaker(engine)() as session:
            await ClientBook(session).create(ClientIn(name="Ромашка", inn="7707083893"), SYSTEM)
            await session.commit()
        await upgrade(database_url)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema_snapshot) == before
            assert await conn.scalar(select(func.count()).select_from(Client)) == 1
    finally:
        await engine.dispose()


async def test_schema_comparison_notices_a_column_the_migrations_lack(database_url: str) -> None:
    """Guards the test above: the comparison is not vacuous."""
    await upgrade(database_url)
    extended = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(extended)
    extended.tables["clients"].append_column(Column("region_code", String(3)))

    def diff(conn: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn), extended)

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(diff)
        added = [(d[2], d[3].name) for d in found if isinstance(d, tuple) and d[0] == "add_column"]
        assert added == [("clients", "region_code")]
    finally:
        await engine.dispose()


async def test_reversed_digits_column_compares_bytewise_on_postgresql(database_url: str) -> None:
    """Suffix matching scans digits_rev as a range, which needs the "C" collation there."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"]: col for col in inspect(c).get_columns("phones")})
            dialect = conn.dialect.name
    finally:
        await engine.dispose()
    expected = "C" if dialect == "postgresql" else None
    assert getattr(columns["digits_rev"]["type"], "collation", None) == expected


async def test_nodes_upgrading_one_database_at_once_all_succeed(database_url: str) -> None:
    """Every node's `hub db upgrade` may run at the same moment (systemd's ExecStartPre on each):
    on PostgreSQL one upgrades and the others wait for it, then find nothing to do."""
    code = f"import asyncio; from crm_core.migrate import upgrade; asyncio.run(upgrade({database_url!r}))"
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", code) for _ in range(3)]
    assert [await asyncio.wait_for(p.wait(), 120) for p in procs] == [0, 0, 0]
    engine = make_engine(database_url)
    try:
        assert await is_up_to_date(engine)
    finally:
        await engine.dispose()
