"""Engines for SQLite and PostgreSQL, tuned for a chat bot's short transactions."""

from __future__ import annotations

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

from bot.ports import NeedsSnapshot
from store.inloop import InLoopReaders, InLoopWriter
from store.models import Base

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
        _count_single_statements(readers)
        return readers.execution_options(postgresql_readonly=True)
    if make_url(url).database in (None, "", ":memory:"):
        return None
    return InLoopReaders(url)


# conn.info key: statements run by a single-statement unit of work on this checkout
_STATEMENTS = "sif_single_statements"


def _count_single_statements(readers: AsyncEngine) -> None:
    """A single-statement unit of work (`single_statement_sessions`) that runs a second
    statement raises `NeedsSnapshot` before it reaches the database."""

    @event.listens_for(readers.sync_engine.pool, "checkout")
    def _fresh(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.info.pop(_STATEMENTS, None)

    @event.listens_for(readers.sync_engine, "before_cursor_execute")
    def _count(conn: Any, _cursor: Any, _sql: Any, _params: Any, context: Any, _many: Any) -> None:
        if not conn.get_execution_options().get("sif_single"):
            return
        count = conn.info.get(_STATEMENTS, 0) + 1
        conn.info[_STATEMENTS] = count
        if count > 1:
            raise NeedsSnapshot("a second statement needs a snapshot of its own")


def single_statement(connection: Any) -> bool:
    """Whether a (sync) connection belongs to a single-statement unit of work; if so, a
    statement run on it outside SQLAlchemy is counted as `_count` counts the others."""
    if not connection.get_execution_options().get("sif_single"):
        return False
    count = connection.info.get(_STATEMENTS, 0) + 1
    connection.info[_STATEMENTS] = count
    if count > 1:
        raise NeedsSnapshot("a second statement needs a snapshot of its own")
    return True


def single_statement_sessions(
    readers: InLoopReaders | AsyncEngine | None,
) -> Callable[[], Any] | None:
    """PostgreSQL: sessions for read-only units of work of one statement, which is its
    own snapshot: in autocommit on the readers' pool, so no BEGIN and no ROLLBACK go to
    the server and the read is one round trip. A second statement raises `NeedsSnapshot`
    (nothing was read for it); the caller then reads again in a snapshot (`reader_sessions`).
    None for SQLite, whose in-loop readers cost no round trips."""
    if not isinstance(readers, AsyncEngine):
        return None
    return make_sessionmaker(
        readers.execution_options(isolation_level="AUTOCOMMIT", sif_single=True)
    )


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
