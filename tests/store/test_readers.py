"""Read-only units of work (`UnitOfWorkFactory.reading()`): one snapshot each, no waiting
on SQLite (a locked file is `StoreBusy` at once, not a blocked event loop), and on
PostgreSQL a dropped connection is `StoreBusy` too (readers do not ping), so the caller
takes the writing path with nothing changed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import AsyncExitStack, closing
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.domain import ledger
from bot.domain.ids import RequestId
from bot.domain.records import Role
from bot.ports import NeedsSnapshot, StoreBusy, UnitOfWork
from store.inloop import InLoopReaders
from store.pgsingle import PgSingleReaders
from tests.conftest import Store
from tests.fakes import FakeClock


async def add_member(store: Store, clock: FakeClock, name: str) -> None:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("c", "C", ("finance",), clock.now())
        await uow.members.create(community.id, name, Role.MEMBER, "x", name, clock.now())
        await uow.commit()


async def test_a_reading_unit_of_work_reads_one_snapshot(store: Store, clock: FakeClock) -> None:
    await add_member(store, clock, "ann")
    async with store.uow.reading() as uow:
        assert await uow.members.by_identity("x", "ann") is not None
        assert await uow.members.by_identity("x", "bob") is None
        await add_member(store, clock, "bob")  # committed by a writer meanwhile
        assert await uow.members.by_identity("x", "bob") is None  # still the same snapshot
    async with store.uow.reading() as uow:
        assert await uow.members.by_identity("x", "bob") is not None  # the next one sees it


def sqlite_path(store: Store) -> str:
    if not store.url.startswith("sqlite"):
        pytest.skip("SQLite readers")
    database = make_url(store.url).database
    assert database
    return database


@pytest.mark.parametrize("through", ["session", "connection"])
async def test_a_locked_sqlite_file_is_store_busy_at_once(tmp_path: Path, through: str) -> None:
    """In WAL mode a reader waits only while the log is reset; a rollback-journal file
    under a writer's EXCLUSIVE lock stands in for that here."""
    path = tmp_path / "locked.db"
    with closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (x)")
        setup.execute("INSERT INTO t VALUES (1)")
        setup.commit()
    readers = InLoopReaders(f"sqlite+aiosqlite:///{path}")

    async def read() -> object:
        session = readers.session()
        try:
            source = session if through == "session" else await session.connection()
            return (await source.execute(text("SELECT x FROM t"))).scalar()
        finally:
            await session.close()

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            await read()
        assert time.monotonic() - started < 1  # no busy wait on the event loop
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert await read() == 1  # the connection went back usable
    finally:
        readers.close()


async def test_more_reading_units_at_once_than_connections_kept(
    store: Store, clock: FakeClock
) -> None:
    """A unit of work keeps its connection across awaits; others never wait for it (a
    wait would block the event loop), and only a few idle connections are kept."""
    sqlite_path(store)
    await add_member(store, clock, "ann")
    readers = store.uow.readers
    async with AsyncExitStack() as stack:
        units = [await stack.enter_async_context(store.uow.reading()) for _ in range(10)]
        for uow in units:
            assert await uow.members.by_identity("x", "ann") is not None
    kept = getattr(readers, "__self__", None)  # readers is the bound `InLoopReaders.session`
    assert isinstance(kept, InLoopReaders)
    assert len(kept._idle) == 4  # the rest were closed


async def test_a_dropped_postgres_reader_connection_is_store_busy(
    store: Store, clock: FakeClock
) -> None:
    if store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections")
    await add_member(store, clock, "ann")
    async with store.uow.reading() as uow:  # the reader pool now holds a connection
        assert await uow.members.by_identity("x", "ann") is not None
    dsn = store.url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    with pytest.raises(StoreBusy):
        async with store.uow.reading() as uow:
            await uow.members.by_identity("x", "ann")
    async with store.uow() as uow:  # the writing path pings and reconnects
        assert await uow.members.by_identity("x", "ann") is not None
    async with store.uow.reading() as uow:  # and the readers reconnect
        assert await uow.members.by_identity("x", "ann") is not None


async def test_a_single_statement_read_on_a_dropped_connection_is_store_busy(
    store: Store, clock: FakeClock
) -> None:
    if store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections")
    await add_member(store, clock, "ann")
    admin = await asyncpg.connect(store.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        with pytest.raises(StoreBusy):
            async with store.uow.reading(single=True) as uow:
                connection = await uow.session.connection()
                pid = await connection.raw.fetchval("SELECT pg_backend_pid()")
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                await asyncio.sleep(0.2)  # the server's goodbye has come
                await uow.ledger.of_identity("x", "ann")
    finally:
        await admin.close()
    async with store.uow.reading(single=True) as uow:  # the pool opened a new one
        found = await uow.ledger.of_identity("x", "ann")
    assert found is not None and found[0].name == "ann"


async def test_a_single_statement_reader_reads_one_statement_and_refuses_a_second(
    store: Store, clock: FakeClock
) -> None:
    await add_member(store, clock, "ann")
    async with store.uow.reading(single=True) as uow:
        found = await uow.ledger.of_identity("x", "ann")
        assert found is not None
        member, info = found
        assert (member.name, info.balance) == ("ann", 0)
        assert await uow.ledger.balance_info(member) == info  # no second statement
        if store.url.startswith("sqlite"):
            return  # SQLite's readers are in the event loop: a snapshot costs no trip
        with pytest.raises(NeedsSnapshot):
            await uow.members.by_identity("x", "ann")
    async with store.uow.reading(single=True) as uow:  # a fresh unit counts afresh
        straight = await uow.ledger.of_identity("x", "ann")
    async with store.uow.reading() as uow:  # in a snapshot, through SQLAlchemy
        assert straight == await uow.ledger.of_identity("x", "ann")
        assert straight is not None and straight[0] == await uow.members.by_identity("x", "ann")


async def test_the_callers_one_statement_read_counts_their_own_reviews_only(
    store: Store, clock: FakeClock
) -> None:
    """Held, given and received in the caller's one-statement read are the caller's: with
    several members paying and reviewing, each reads what the community summary says."""
    for name in ("ann", "bob", "cat"):
        await add_member(store, clock, name)
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("c", "C", ("finance",), clock.now())
        ids = {}
        for name in ("ann", "bob", "cat"):
            found = await uow.members.by_identity("x", name)
            assert found is not None
            ids[name] = found.id
        drafts = [
            ledger.grant(ids["ann"], 1000, "welcome", None),
            ledger.hold(ids["ann"], 300, RequestId(1), "review"),
            ledger.release(ids["ann"], ids["bob"], 300, RequestId(1), "reviewed"),
            ledger.hold(ids["bob"], 200, RequestId(2), "review"),
            ledger.release(ids["bob"], ids["cat"], 200, RequestId(2), "reviewed"),
            ledger.hold(ids["cat"], 50, RequestId(3), "review"),
        ]
        for draft in drafts:
            await uow.ledger.post(community.id, draft, -10_000, clock.now())
        await uow.commit()
    async with store.uow.reading() as uow:
        summary = {info.name: info for info in await uow.ledger.all_balances(community.id)}
    assert (summary["bob"].given, summary["bob"].received) == (300, 200)
    assert (summary["cat"].given, summary["cat"].held) == (200, 50)
    for single in (True, False):
        for name in ("ann", "bob", "cat"):
            async with store.uow.reading(single=single) as uow:
                found = await uow.ledger.of_identity("x", name)
            assert found is not None
            info = found[1]
            expected = summary[name]
            assert (info.balance, info.held, info.given, info.received) == (
                expected.balance,
                expected.held,
                expected.given,
                expected.received,
            ), name


async def test_a_postgres_reader_refuses_to_write_even_outside_a_transaction(
    store: Store, clock: FakeClock
) -> None:
    if store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections")
    await add_member(store, clock, "ann")
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with store.uow.reading(single=True) as uow:
            connection = await uow.session.connection()  # asyncpg's own, in autocommit
            await connection.raw.execute("UPDATE members SET name = 'bob'")
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with store.uow.reading() as uow:
            connection = await uow.session.connection()
            await connection.execute(text("UPDATE members SET name = 'bob'"))
    async with store.uow.reading() as uow:
        assert await uow.members.by_identity("x", "ann") is not None


async def test_the_sqlite_writer_waits_for_another_process_without_blocking_the_loop(
    store: Store, clock: FakeClock
) -> None:
    import asyncio

    from store.inloop import InLoopWriter

    path = sqlite_path(store)
    await add_member(store, clock, "ann")
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    try:

        async def write() -> None:
            async with store.uow() as uow:
                await add_to(uow, "bob", clock)
                await uow.commit()

        writing = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        assert not writing.done()  # waiting for the lock...
        assert ticks >= 10  # ...while the event loop keeps running
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
    finally:
        ticker.cancel()
        other.close()
    async with store.uow.reading() as uow:
        assert await uow.members.by_identity("x", "bob") is not None
    # held past the wait: StoreBusy, nothing written, and the writer works again after
    writer = InLoopWriter(store.url, wait=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy):
            await writer.take()
    finally:
        other.execute("ROLLBACK")
        other.close()
    connection = await writer.take()
    writer.give(connection, commit=False)
    writer.close()


async def add_to(uow: UnitOfWork, name: str, clock: FakeClock) -> None:
    community = await uow.communities.get_or_create("c", "C", ("finance",), clock.now())
    await uow.members.create(community.id, name, Role.MEMBER, "x", name, clock.now())


async def test_single_statement_connections_are_shared_in_turn_and_none_is_lost(
    store: Store,
) -> None:
    """The free list of `store.pgsingle`: at most `size` connections; a read that finds
    them all busy waits for one given back; a waiting read that gives up takes none with
    it; a connection given back closed frees its place; closing fails the waiting reads."""
    if store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections")
    readers = PgSingleReaders(store.engine, 2)
    try:
        first, second = await readers.acquire(), await readers.acquire()
        waiting = [asyncio.ensure_future(readers.acquire()) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in waiting)  # no third connection
        waiting[0].cancel()  # gives up: the next one given back goes to the next reader
        readers.release(first)
        handed = await asyncio.wait_for(waiting[1], 5)
        assert handed is first and waiting[0].cancelled()
        second.terminate()  # dropped: given back, its place opens a new one
        readers.release(second)
        fresh = await asyncio.wait_for(waiting[2], 5)
        assert fresh is not second and not fresh.is_closed()
        assert await fresh.fetchval("SELECT 1") == 1
        late = asyncio.ensure_future(readers.acquire())
        await asyncio.sleep(0.05)
        await readers.close()
        with pytest.raises(StoreBusy):
            await late
        readers.release(handed)
        readers.release(fresh)
        assert handed.is_closed() and fresh.is_closed()  # given back after close: closed
        with pytest.raises(StoreBusy):
            await readers.acquire()
    finally:
        await readers.close()


async def test_a_single_statement_reader_that_cannot_connect_is_store_busy(
    store: Store, clock: FakeClock
) -> None:
    if store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections")
    readers = PgSingleReaders(store.engine, 1)
    readers.dsn = "postgresql://postgres@127.0.0.1:1/nothing"  # nobody listens there
    with pytest.raises(StoreBusy):
        await readers.acquire()
    readers.dsn = store.url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await readers.acquire()  # the failed one held no place
    assert await connection.fetchval("SELECT 1") == 1
    readers.release(connection)
    await readers.close()
