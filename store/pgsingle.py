"""PostgreSQL: single-statement read-only units of work straight on asyncpg.

A read-only command whose answer is one statement (`balance`: the caller and their
balance, `SqlLedger.of_identity`) needs no transaction: the statement is its own
snapshot. Through SQLAlchemy's `AsyncSession` the profile put three quarters of such a
read's CPU in the session, its pool and their greenlet hand-offs, against a quarter in
asyncpg. Here the unit of work's session is a thin one on a pool of asyncpg's own, whose
connections refuse writes (`default_transaction_read_only`) and decode JSON as
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


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """A connection given back has run one SELECT in autocommit and changed nothing in
    its session: no reset query (asyncpg's default costs a round trip per read)."""


async def _needs_snapshot(*args: Any, **kwargs: Any) -> Any:
    """What any SQLAlchemy statement of a single-statement unit of work does."""
    raise NeedsSnapshot("only prepared statements run without a snapshot")


class PgSingleReaders:
    """A pool of asyncpg connections for single-statement units of work, opened at the
    first read (in the event loop that reads) and closed by `close`."""

    def __init__(self, readers: AsyncEngine, size: int) -> None:
        url = readers.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.dialect: Dialect = readers.dialect
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    def session(self) -> PgSingleSession:
        return PgSingleSession(self)

    async def acquire(self) -> asyncpg.Connection:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=self._size,
                        init=_decode_json,
                        reset=_nothing_to_reset,
                        server_settings={"default_transaction_read_only": "on"},
                    )
        try:
            connection: asyncpg.Connection = await self._pool.acquire()
        except _DROPPED as exc:
            raise StoreBusy(f"no reader connection: {exc!r}") from exc
        return connection

    async def release(self, connection: asyncpg.Connection) -> None:
        if self._pool is not None:
            # A connection found lost is given back by the pool itself.
            with contextlib.suppress(asyncpg.InterfaceError):
                await self._pool.release(connection)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


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
            with contextlib.suppress(asyncpg.InterfaceError):  # given back already
                self.raw.terminate()  # the pool opens a new one in its place
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
            await self._readers.release(connection.raw)  # a closed one is replaced
