"""Alembic environment: runs migrations over the hub's async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from crm_core.db import make_engine
from crm_core.tables import metadata

target_metadata = metadata
UPGRADE_LOCK = 0x6875622D6462  # "hub-db": the advisory lock that serialises upgrades


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        # SQLite's DDL is transactional too; Alembic would otherwise commit after each migration,
        # and a second node upgrading at once would plan from a version the first has moved past.
        # One transaction (BEGIN IMMEDIATE, see crm_core.db) makes the others wait, then find it done.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # nodes upgrading at once: one does, the others find it done
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        context.run_migrations()


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url: migrations run through crm_core.migrate, which sets it")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
