"""What every part of the running hub shares: settings, the database, the matching rules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core import migrate
from crm_core.clients import MatchRules
from crm_core.db import READ_ONLY, make_engine, make_sessionmaker
from hub.config import Settings


class DatabaseNotReady(Exception):
    """The database schema is older than this code; ``hub db upgrade`` is needed."""


@dataclass
class HubContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    rules: MatchRules
    signing_key: bytes
    # Called after every commit that published outbox events (the webhook dispatcher's wake).
    publish_listeners: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, *, upgrade: bool | None = None) -> HubContext:
        """Connect; upgrade the schema when asked (by default only the embedded SQLite)."""
        url = settings.effective_database_url
        if settings.uses_embedded_database:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        if upgrade if upgrade is not None else settings.uses_embedded_database:
            await migrate.upgrade(url)
        engine = make_engine(url)
        if not await migrate.is_up_to_date(engine):
            await engine.dispose()
            raise DatabaseNotReady("the database schema is not at the current version: run `hub db upgrade` first")
        listeners: list[Callable[[], None]] = []
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine, on_publish=lambda: _wake(listeners)),
            rules=MatchRules(
                region=settings.default_region,
                suffix_digits=settings.phone_suffix_digits,
                fold_plus=settings.email_plus_folding,
            ),
            signing_key=settings.signing_key(),
            publish_listeners=listeners,
        )

    def published(self) -> None:
        """Outbox events were committed by another process (the tracking recorder): wake
        whatever delivers them, as a commit of this process's sessions does."""
        _wake(self.publish_listeners)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back on error.

        Never open a second one while holding one: on SQLite every transaction takes the
        write lock first, so the inner one would wait for the outer until it times out.
        """
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that only reads: on SQLite it does not wait for writers."""
        async with self.sessions() as session:
            await session.connection(execution_options={READ_ONLY: True})
            try:
                yield session
            finally:
                await session.rollback()

    async def close(self) -> None:
        await self.engine.dispose()


def _wake(listeners: list[Callable[[], None]]) -> None:
    for listener in listeners:
        listener()
