"""Opening the database: one async engine per process, SQLite tuned for a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from crm_core.outbox import PUBLISHED


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a connector writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # The sqlite3 module would otherwise send no BEGIN before a SAVEPOINT, so RELEASE
    # would commit: SQLAlchemy then issues BEGIN itself (see _begin).
    dbapi_connection.isolation_level = None


READ_ONLY = "hub_read_only"  # execution option: this transaction only reads


def _begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front, so concurrent transactions queue on
    # busy_timeout; a deferred BEGIN that reads and then writes fails at once with
    # "database is locked" when another writer committed in between.  A transaction
    # declared read-only needs no lock: in WAL mode it reads beside the writer.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "begin", _begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(
    engine: AsyncEngine, on_publish: Callable[[], None] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions of one engine; ``on_publish`` runs after each commit that wrote outbox events,
    so whatever delivers them can look at once instead of at its next poll."""
    if on_publish is None:
        return async_sessionmaker(engine, expire_on_commit=False)

    class PublishingSession(Session):
        pass

    def committed(session: Session) -> None:
        if session.info.pop(PUBLISHED, False):
            on_publish()

    event.listen(PublishingSession, "after_commit", committed)
    event.listen(PublishingSession, "after_rollback", lambda session: session.info.pop(PUBLISHED, None))
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=PublishingSession)
