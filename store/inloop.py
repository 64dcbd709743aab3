"""SQLite reads on the event loop's own thread, for read-only units of work.

A statement through aiosqlite costs four hand-offs to its worker thread (cursor,
execute, fetch, close), and each wakes the event loop through its self-pipe: about
0.4 ms of CPU for a look-up that SQLite answers in 10 µs. A read-only unit of work on
a SQLite file therefore uses a plain `sqlite3` connection in `query_only` mode straight
from the event loop's thread, behind the few `AsyncSession` methods the repositories
call. WAL lets such readers run beside the writer without waiting for it, and
`busy_timeout=0` makes the rare case that would wait (a checkpoint resetting the WAL)
fail at once with `bot.ports.StoreBusy`, so the caller takes the writing path instead
of blocking the loop.

The statements are the repositories' own: nothing here knows what it reads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bot.ports import StoreBusy


class InLoopReaders:
    """Read-only units of work on a SQLite file, run on the event loop's thread: a sync
    engine whose `query_only` connections never wait for a lock, and the connections
    idle between units of work (kept here rather than in a pool: a checkout there costs
    more than the look-ups). A unit of work that awaits something truly asynchronous (a
    chart drawn in a child process) keeps its connection while others open more, so
    nothing ever waits for a connection; at most `connections` are kept idle."""

    def __init__(self, url: str, connections: int = 4) -> None:
        # No pool of the engine's own: the idle list below is the only one.
        self.engine = create_engine(f"sqlite:///{make_url(url).database}", poolclass=NullPool)
        self._idle: list[Connection] = []
        self._keep = connections
        self.writer: InLoopWriter | None = None  # the writer on the same file, if any

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

    def session(self) -> InLoopSession:
        return InLoopSession(self)

    def take(self) -> Connection:
        """A connection in a read transaction of its own: one snapshot for the unit.
        `sqlite3` is told BEGIN itself; SQLAlchemy's connection begins its own (which
        sends nothing to SQLite) only if a statement goes through it."""
        connection = self._idle.pop() if self._idle else self.engine.connect()
        connection.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]
        return connection

    def give(self, connection: Connection) -> None:
        # Ends the read transaction: the next unit reads afresh.
        if connection.in_transaction():
            connection.rollback()
        else:  # only statements of `store.prepared` ran, straight on sqlite3
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        if len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self.engine.dispose()
        if self.writer is not None:
            self.writer.close()


def _busy(error: exc.OperationalError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)  # extended codes keep it below
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _run(method: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call `method`; a database that is locked raises `StoreBusy`."""
    try:
        return method(*args, **kwargs)
    except exc.OperationalError as error:
        if _busy(error):
            raise StoreBusy(str(error.orig)) from error
        raise


class InLoopConnection:
    """`AsyncConnection.execute`/`scalar` over a sync connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._connection.execute, args, kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._connection.scalar, args, kwargs)

    def raw(self) -> sqlite3.Connection:
        """The `sqlite3` connection under it (`store.prepared` runs statements on it)."""
        raw = self._connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw


class InLoopSession:
    """The `AsyncSession` methods the repositories use, run on the event loop's thread
    (see the module's docstring). The connection is taken at the first statement and
    an ORM `Session` made only for the repositories' ORM statements."""

    def __init__(self, readers: InLoopReaders) -> None:
        self._readers = readers
        self._connection: Connection | None = None
        self._orm: Session | None = None
        self._pending: list[tuple[Any, Any]] = []  # objects added before the first statement
        self.info: dict[str, Any] = {}  # as `AsyncSession.info`: per unit of work

    async def _take(self) -> Connection:
        return self._readers.take()

    def _give(self, connection: Connection) -> None:
        self._readers.give(connection)

    def _engine(self) -> Engine:
        return self._readers.engine

    async def _sync_connection(self) -> Connection:
        if self._connection is None:
            self._connection = await self._take()
        return self._connection

    async def _session(self) -> Session:
        if self._orm is None:
            # Joins the connection's transaction, so closing it leaves the transaction be.
            self._orm = Session(
                bind=await self._sync_connection(), expire_on_commit=False, autoflush=False
            )
        return self._orm

    async def connection(self) -> InLoopConnection:
        return InLoopConnection(await self._sync_connection())

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).execute, args, kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).scalar, args, kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).scalars, args, kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).get, args, kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).flush, args, kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> Any:
        return _run((await self._session()).delete, args, kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        if self._orm is None:
            self._pending.append((args, kwargs))  # added once the unit has its connection
            return None
        return self._orm.add(*args, **kwargs)

    def get_bind(self) -> Engine:
        return self._engine()

    async def begin(self) -> None:
        """Nothing yet: the transaction begins with the first statement."""

    async def commit(self) -> None:
        raise RuntimeError("a read-only unit of work cannot commit")

    async def rollback(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._orm is not None:
            self._orm.close()
            self._orm = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._give(connection)


class InLoopWriter:
    """Writing units of work on a SQLite file, run on the event loop's thread like the
    readers (aiosqlite's hand-offs cost a statement several times what SQLite does): one
    connection, one unit of work at a time (an asyncio lock, taken at the unit's first
    statement: SQLite has one writer at a time anyway, and the pool of one connection
    before did the same), in WAL. Each unit begins with BEGIN IMMEDIATE, so it holds the
    write lock from its first statement to its end and no statement waits for a lock
    after that; a lock held by another process is waited for with `asyncio.sleep` (up
    to `wait` seconds, then `StoreBusy`), never by blocking the event loop."""

    def __init__(self, url: str, wait: float = 30.0) -> None:
        self.engine = create_engine(f"sqlite:///{make_url(url).database}", poolclass=NullPool)
        self._wait = wait
        self._lock = asyncio.Lock()
        self._connection: Connection | None = None

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    def session(self) -> InLoopWriteSession:
        return InLoopWriteSession(self)

    async def take(self) -> Connection:
        await self._lock.acquire()
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            connection = self._connection
            connection.begin()
            raw = connection.connection.dbapi_connection
            assert raw is not None
            deadline = time.monotonic() + self._wait
            pause = 0.002
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    return connection
                except sqlite3.OperationalError as error:
                    if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                    if time.monotonic() > deadline:
                        raise StoreBusy(
                            "another process holds the database's write lock"
                        ) from error
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
        except BaseException:
            self._end(rollback=True)
            raise

    def give(self, connection: Connection, *, commit: bool) -> None:
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        except BaseException:
            self._end(rollback=True)
            raise
        self._lock.release()

    def _end(self, *, rollback: bool) -> None:
        """After a failure: the connection is dropped (a new one next time), the lock let go."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass
        if self._lock.locked():
            self._lock.release()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class InLoopWriteSession(InLoopSession):
    """A writing unit of work's session on an `InLoopWriter`."""

    def __init__(self, writer: InLoopWriter) -> None:
        super().__init__(writer)  # type: ignore[arg-type]
        self._writer = writer

    async def _take(self) -> Connection:
        return await self._writer.take()

    def _give(self, connection: Connection) -> None:
        self._writer.give(connection, commit=False)

    def _engine(self) -> Engine:
        return self._writer.engine

    async def _session(self) -> Session:
        first = self._orm is None
        orm = await super()._session()
        if first:
            pending, self._pending = self._pending, []
            for args, kwargs in pending:
                orm.add(*args, **kwargs)
        return orm

    async def commit(self) -> None:
        if self._connection is None and not self._pending:
            return  # nothing was read or written
        if self._pending:
            await self._session()
        if self._orm is not None:
            _run(self._orm.flush, (), {})
            self._orm.close()
            self._orm = None
        connection, self._connection = self._connection, None
        assert connection is not None
        _run(lambda: self._writer.give(connection, commit=True), (), {})
