"""Shared fixtures: a store on SQLite and on PostgreSQL, a fake clock, a recording messenger.

PostgreSQL tests use a scratch database created for this run at 127.0.0.1:5432
and dropped afterwards; without PostgreSQL they are skipped, unless
REQUIRE_POSTGRES=1, where its absence fails them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.bootstrap import App, assemble, sql_store
from bot.settings import Settings, load_settings
from store.db import create_schema, dispose
from store.uow import SqlUnitOfWorkFactory
from tests.fakes import FakeClock, RecordingMessenger

PG_ADMIN_DSN = os.environ.get("SIF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = (
    "introductions",
    "link_codes",
    "offers",
    "requests",
    "conversations",
    "ideas",
    "counters",
    "ledger_postings",
    "ledger_transactions",
    "accounts",
    "expertise",
    "identities",
    "members",
    "tags",
    "communities",
    "processed_events",
    "outbox",
    "forgotten_identities",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated scratch PostgreSQL database for this test run."""
    name = f"sif_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server, refused, auth...
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    url = PG_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    url = f"{url}/{name}"
    from store.migrate import upgrade

    upgrade(url)
    try:
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A database URL with an empty schema: SQLite file, or the cleaned PostgreSQL scratch db."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_pg_admin_url(url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return url


async def _pg_admin_url(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Store:
    url: str
    engine: Any
    uow: SqlUnitOfWorkFactory


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    uow, engine, readers = sql_store(db_url)  # wired as in production
    if db_url.startswith("sqlite"):
        await create_schema(engine)
    assert isinstance(uow, SqlUnitOfWorkFactory)
    yield Store(db_url, engine, uow)
    await dispose(engine, readers)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "sif_admins": "console:staff"}
    values.update(overrides)
    return load_settings(_env_file=None, **values)


def build_app(store: Store, clock: FakeClock, **settings: Any) -> App:
    """The core wired to the store with these settings, and a recording console
    messenger (`app.messenger`)."""
    recording = RecordingMessenger("console")
    application = assemble(
        make_settings(store.url, **settings),
        store.uow,
        clock,
        engine=store.engine,
        messengers=[recording],
    )
    application.messenger = recording  # type: ignore[attr-defined]
    return application


@pytest.fixture
async def app(store: Store, clock: FakeClock) -> AsyncIterator[App]:
    """The core wired to the store, with a recording console messenger."""
    yield build_app(store, clock)
