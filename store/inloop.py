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

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.ports import StoreBusy


def make_inloop_engine(url: str, connections: int = 4) -> Engine:
    """A sync engine on the SQLite file of `url` whose connections refuse writes and
    never wait for a lock. Its pool never blocks: a unit of work that awaits something
    truly asynchronous (a chart drawn in a child process) keeps its connection while
    others open more (closed again when more than `connections` are idle)."""
    database = make_url(url).database
    engine = create_engine(
        f"sqlite:///{database}",
        pool_size=connections,
        max_overflow=-1,
        pool_reset_on_return=None,  # nothing to roll back: they never write
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


def _busy(error: exc.OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text


def _calling(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` as a coroutine function, with a locked database as `StoreBusy`."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except exc.OperationalError as error:
            if _busy(error):
                raise StoreBusy(str(error.orig)) from error
            raise

    return call


class InLoopConnection:
    """`AsyncConnection.execute`/`scalar` over a sync connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect
        self.execute: Callable[..., Any] = _calling(connection.execute)
        self.scalar: Callable[..., Any] = _calling(connection.scalar)


class InLoopSession:
    """The `AsyncSession` methods the repositories use, over a sync `Session` run on the
    event loop's thread (see the module's docstring)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.execute: Callable[..., Any] = _calling(session.execute)
        self.scalar: Callable[..., Any] = _calling(session.scalar)
        self.scalars: Callable[..., Any] = _calling(session.scalars)
        self.get: Callable[..., Any] = _calling(session.get)
        self.flush: Callable[..., Any] = _calling(session.flush)
        self.delete: Callable[..., Any] = _calling(session.delete)
        self.begin: Callable[..., Any] = _calling(session.begin)
        self.rollback: Callable[..., Any] = _calling(session.rollback)
        self.commit: Callable[..., Any] = _calling(session.commit)
        self.close: Callable[..., Any] = _calling(session.close)
        self.add = session.add
        self.get_bind = session.get_bind

    async def connection(self) -> InLoopConnection:
        try:
            return InLoopConnection(self._session.connection())
        except exc.OperationalError as error:
            if _busy(error):
                raise StoreBusy(str(error.orig)) from error
            raise


def inloop_sessions(engine: Engine) -> Callable[[], InLoopSession]:
    """Sessions on `engine` with the face of `AsyncSession` (see `InLoopSession`)."""
    make = sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return lambda: InLoopSession(make())

