"""PostgreSQL: single-statement read-only units of work straight on asyncpg.

A read-only command whose answer is one statement (`balance`: the caller and their
balance, `SqlLedger.of_identity`) needs no transaction: the statement is its own
snapshot. Through SQLAlchemy's `AsyncSession` the profile put three quarters of such a
read's CPU in the session, its pool and their greenlet hand-offs, against a quarter in
asyncpg. Here the unit of work's session is a thin one on a few asyncpg connections of its own,
which refuse writes (`default_transaction_read_only`) and decode JSON as
SQLAlchemy's asyncpg dialect does, so that the statements of `store.prepared` read the
same values either way. Only those statements run here (`PgSingleConnection.records`),
and only one per unit of work; anything else raises `NeedsSnapshot` before it reaches
the database, and the caller reads again in a snapshot (`store.db.reader_sessions`).

Like the snapshot readers, these connections are not pinged at checkout: one found
dropped fails the read with `StoreBusy` (nothing was read or changed) and is closed; the
command then takes the writing path, whose pool pings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ports import NeedsSnapshot, StoreBusy

# A connection lost, or in a state it cannot go on from (its server went away mid-way).
_DROPPED = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


async def _decode_json(connection: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _needs_snapshot(*args: Any, **kwargs: Any) -> Any:
    """What any SQLAlchemy statement of a single-statement unit of work does."""
    raise NeedsSnapshot("only prepared statements run without a snapshot")


class PgSingleReaders:
    """A few asyncpg connections for single-statement units of work, opened as reads
    need them (in the event loop that reads, at most `size`) and closed by `close`.

    A free list rather than `asyncpg.Pool`: a read takes an idle connection and gives
    it back with no task, shield or reset in between (the pool's checkout and return
    were an eighth of such a read's CPU). A read that finds every connection busy waits
    its turn; a connection found closed when given back frees its place."""

    def __init__(self, readers: AsyncEngine, size: int) -> None:
        url = readers.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.dialect: Dialect = readers.dialect
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # connections open or being opened
        # reads waiting for a connection: each is handed one, or None for a free place
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        self._closed = False

    def session(self) -> PgSingleSession:
        return PgSingleSession(self)

    async def acquire(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise StoreBusy("the readers are closed")
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._open -= 1
            if self._open < self._size:
                return await self._connect()
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand(waiter.result())  # handed over just as the read gave up
                raise
            if handed is not None:
                return handed

    async def _connect(self) -> asyncpg.Connection:
        self._open += 1
        try:
            connection: asyncpg.Connection = await asyncpg.connect(
                self.dsn, server_settings={"default_transaction_read_only": "on"}
            )
            try:
                await _decode_json(connection)
            except BaseException:
                connection.terminate()
                raise
        except BaseException as exc:
            self._open -= 1
            self._hand(None)  # a waiter may open one in its place
            if isinstance(exc, _DROPPED):
                raise StoreBusy(f"no reader connection: {exc!r}") from exc
            raise
        return connection

    def release(self, connection: asyncpg.Connection) -> None:
        """Give a connection back; one that was closed (dropped) frees its place."""
        if self._closed:
            connection.terminate()
        if connection.is_closed():
            self._open -= 1
            self._hand(None)
        else:
            self._hand(connection)

    def _hand(self, connection: asyncpg.Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(StoreBusy("the readers are closed"))
        self._waiters.clear()
        for connection in idle:
            with contextlib.suppress(*_DROPPED):
                await connection.close(timeout=5)


class PgSingleConnection:
    """The connection of one single-statement unit of work: `records` runs its one
    statement; SQLAlchemy's `execute` and `scalar` raise `NeedsSnapshot`."""

    def __init__(self, raw: asyncpg.Connection, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect
        self._statements = 0

    async def records(self, sql: str, args: Sequence[Any]) -> Sequence[Sequence[Any]]:
        self._statements += 1
        if self._statements > 1:
            raise NeedsSnapshot("a second statement needs a snapshot of its own")
        try:
            found: Sequence[Sequence[Any]] = await self.raw.fetch(sql, *args)
        except _DROPPED as exc:
            self.raw.terminate()  # its place is free when it is given back
            raise StoreBusy(f"the reader connection had dropped: {exc!r}") from exc
        return found  # asyncpg's records (its prepared statement cache reuses the SQL)

    execute = scalar = _needs_snapshot


class PgSingleSession:
    """The `AsyncSession` methods a unit of work uses, for one statement: the connection
    is taken at the first one and given back at the end of the unit; any SQLAlchemy
    statement raises `NeedsSnapshot`."""

    def __init__(self, readers: PgSingleReaders) -> None:
        self._readers = readers
        self._connection: PgSingleConnection | None = None
        self.info: dict[str, Any] = {}

    async def begin(self) -> None:
        """Nothing: the one statement is its own snapshot."""

    async def connection(self) -> PgSingleConnection:
        if self._connection is None:
            raw = await self._readers.acquire()
            self._connection = PgSingleConnection(raw, self._readers.dialect)
        return self._connection

    execute = scalar = scalars = get = flush = delete = _needs_snapshot

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise NeedsSnapshot("a read-only unit of work adds nothing")

    def get_bind(self) -> Any:
        raise NeedsSnapshot("only prepared statements run without a snapshot")

    async def commit(self) -> None:
        raise RuntimeError("a read-only unit of work cannot commit")

    async def rollback(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            # Given back as it is: it ran one SELECT in autocommit and changed nothing in
            # its session, so no reset query (asyncpg's pool spends a round trip on one).
            self._readers.release(connection.raw)
