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

import sqlite3
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

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

    def session(self) -> InLoopSession:
        return InLoopSession(self)

    def take(self) -> Connection:
        """A connection in a read transaction of its own: one snapshot for the unit."""
        connection = self._idle.pop() if self._idle else self.engine.connect()
        connection.begin()
        connection.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]
        return connection

    def give(self, connection: Connection) -> None:
        connection.rollback()  # ends the read transaction: the next unit reads afresh
        if len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self.engine.dispose()


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


class InLoopSession:
    """The `AsyncSession` methods the repositories use, run on the event loop's thread
    (see the module's docstring). The connection is taken at the first statement and
    an ORM `Session` made only for the repositories' ORM statements."""

    def __init__(self, readers: InLoopReaders) -> None:
        self._readers = readers
        self._connection: Connection | None = None
        self._orm: Session | None = None
        self.info: dict[str, Any] = {}  # as `AsyncSession.info`: per unit of work

    def _sync_connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._readers.take()
        return self._connection

    def _session(self) -> Session:
        if self._orm is None:
            # Joins the connection's transaction, so closing it leaves the snapshot be.
            self._orm = Session(
                bind=self._sync_connection(), expire_on_commit=False, autoflush=False
            )
        return self._orm

    async def connection(self) -> InLoopConnection:
        return InLoopConnection(self._sync_connection())

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().execute, args, kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().scalar, args, kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().scalars, args, kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().get, args, kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().flush, args, kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._session().delete, args, kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._session().add(*args, **kwargs)

    def get_bind(self) -> Engine:
        return self._readers.engine

    async def begin(self) -> None:
        """Nothing yet: the read transaction begins with the first statement."""

    async def rollback(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._orm is not None:
            self._orm.close()
            self._orm = None
        if self._connection is not None:
            self._readers.give(self._connection)
            self._connection = None
