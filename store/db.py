"""Engines for SQLite and PostgreSQL, tuned for a chat bot's short transactions."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store.inloop import InLoopReaders, InLoopWriter
from store.models import Base
from store.pgsingle import PgSingleReaders

READERS = 10  # PostgreSQL connections for read-only units of work, per process


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: file:path?mode=...
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets one shared connection so writers queue in-process
    instead of failing with "database is locked", plus WAL and foreign keys."""
    if is_sqlite(url):
        in_memory = make_url(url).database in (None, "", ":memory:")
        if in_memory:
            # One shared connection (StaticPool): use it from one task at a time.
            for key in ("pool_size", "max_overflow", "pool_timeout"):
                kwargs.pop(key, None)
        else:
            kwargs.setdefault("pool_size", 1)
            kwargs.setdefault("max_overflow", 0)
            kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_reader_engine(url: str) -> InLoopReaders | AsyncEngine | None:
    """The engine read-only units of work use: each unit reads one snapshot and cannot
    write (see `reader_sessions`).
    For a SQLite file: a sync engine whose `query_only` connections are used from the
    event loop's thread (`store.inloop`: a look-up there costs far less than the hand-offs
    to aiosqlite's thread, and WAL lets readers work beside the writer). For PostgreSQL:
    a pool of its own whose transactions begin REPEATABLE READ, READ ONLY (asyncpg says
    so in BEGIN: no extra round trip), without the writers' ping at checkout: a
    connection found dropped fails the read with `StoreBusy` (nothing was changed) and
    the command takes the writing path, whose pool pings. None for SQLite in memory
    (one connection for everything)."""
    if not is_sqlite(url):
        readers = create_async_engine(
            url,
            pool_size=READERS,
            max_overflow=0,  # more readers at once wait their turn: no connect per read
            pool_pre_ping=False,
            isolation_level="REPEATABLE READ",  # one snapshot, as on SQLite
            # every transaction of these connections is read-only, in autocommit too
            connect_args={"server_settings": {"default_transaction_read_only": "on"}},
        )
        return readers.execution_options(postgresql_readonly=True)
    if make_url(url).database in (None, "", ":memory:"):
        return None
    return InLoopReaders(url)


def single_statement_sessions(
    readers: InLoopReaders | AsyncEngine | None,
) -> Callable[[], Any] | None:
    """PostgreSQL: sessions for read-only units of work of one statement, which is its
    own snapshot: straight on asyncpg (`store.pgsingle`), so no BEGIN and no ROLLBACK go
    to the server and the read is one round trip without SQLAlchemy's session. A second
    statement, or any but those of `store.prepared`, raises `NeedsSnapshot` (nothing was
    read for it); the caller then reads again in a snapshot (`reader_sessions`). Closed
    with the readers (`dispose`). None for SQLite, whose in-loop readers cost no round
    trips."""
    if not isinstance(readers, AsyncEngine):
        return None
    single = PgSingleReaders(readers, READERS)
    _SINGLE[readers] = single
    return single.session


# the single-statement readers of a reader engine, closed with it
_SINGLE: weakref.WeakKeyDictionary[AsyncEngine, PgSingleReaders] = weakref.WeakKeyDictionary()


def in_loop_writer(readers: InLoopReaders | AsyncEngine | None) -> InLoopWriter | None:
    """For a SQLite file: the writer whose units of work run on the event loop's thread
    (`store.inloop.InLoopWriter`), closed with the readers; None for other databases."""
    if not isinstance(readers, InLoopReaders):
        return None
    if readers.writer is None:
        readers.writer = InLoopWriter(str(readers.engine.url))
    return readers.writer


def reader_sessions(readers: InLoopReaders | AsyncEngine) -> Callable[[], Any]:
    """Sessions on an engine of `make_reader_engine`, each with `AsyncSession`'s face."""
    if isinstance(readers, AsyncEngine):
        return make_sessionmaker(readers)
    return readers.session


async def dispose(engine: AsyncEngine, readers: InLoopReaders | AsyncEngine | None) -> None:
    """Close the engine and the reader engine, if any."""
    await engine.dispose()
    if isinstance(readers, InLoopReaders):
        readers.close()
    elif readers is not None:
        single = _SINGLE.pop(readers, None)
        if single is not None:
            await single.close()
        await readers.dispose()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Create all tables directly from the models (tests; production uses Alembic)."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def drop_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
