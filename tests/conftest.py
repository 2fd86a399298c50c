"""Shared fixtures: every storage test runs on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm_core.db import make_engine, make_sessionmaker
from crm_core.migrate import upgrade
from crm_core.models import Role
from crm_core.users import NewUser, UserDirectory, hash_password
from hub.config import Settings
from hub.context import HubContext
from hub.onec import OnecSync
from tests.dovecot import dovecot, dovecot_user  # noqa: F401  (fixtures: a real IMAP server per test)
from tests.fake_onec import FakeOnec
from tests.smtp_server import smtp_server  # noqa: F401  (fixture: a real SMTP server per test)

PG_ADMIN_DSN = os.environ.get("HUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _create_pg_database() -> tuple[str, str]:
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is needed for the tests and is not reachable at {PG_ADMIN_DSN}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL database, dropped afterwards."""
    name, url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind; PostgreSQL's is created for the test and dropped after."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database: the schema comes from the Alembic migrations, never create_all."""
    await upgrade(database_url)
    eng = make_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with make_sessionmaker(engine)() as s:
        yield s


# -- the running service --------------------------------------------------------------

PASSWORD = "correct horse battery"


async def open_context(url: str, data_dir: Path, **settings: object) -> HubContext:
    return await HubContext.open(Settings(database_url=url, data_dir=data_dir, **settings), upgrade=True)


@pytest.fixture
async def hub_context(database_url: str, tmp_path: Path) -> AsyncIterator[HubContext]:
    context = await open_context(database_url, tmp_path / "data")
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def http(hub_context: HubContext) -> AsyncIterator[TestClient]:
    from hub.web.app import make_app  # imported here so domain tests do not load the web layer

    client = TestClient(TestServer(make_app(hub_context)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@functools.cache
def password_hash() -> str:
    """argon2 is slow on purpose; hash the shared test password once per run."""
    return hash_password(PASSWORD)


@pytest.fixture
async def tokens(hub_context: HubContext) -> dict[Role, str]:
    """One user per role (named after it, password PASSWORD) and a bearer token each."""
    result = {}
    async with hub_context.transaction() as session:
        directory = UserDirectory(session)
        for role in Role:
            user = await directory.create(
                NewUser(username=role.value, role=role, extension="101" if role is Role.operator else None)
            )
            user.password_hash = password_hash()
            result[role] = await directory.create_token(user)
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def hub_database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """ "" for the default (SQLite in the data dir), else a fresh PostgreSQL database, dropped after."""
    if request.param == "sqlite":
        yield ""
        return
    async with fresh_pg_database() as url:
        yield url


# -- 1C ---------------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOnec]:
    """A fake 1C publication over real HTTP (``tests/FAKE_ONEC.md``)."""
    server = FakeOnec()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def onec(database_url: str, tmp_path: Path, fake: FakeOnec) -> AsyncIterator[OnecSync]:
    """A hub with one [[onec]] connection, "acc", to ``fake``."""
    from tests.onec_world import hub_with_onec  # it uses this module's open_context

    async with hub_with_onec(database_url, tmp_path / "data", fake) as sync:
        yield sync
