"""Ledger throughput next to the raw INSERT rate of the same database, measured in one run.

Each ledger operation is one committed unit of work posting a transfer (one
transaction row, two postings, two conditional balance updates). The baseline is
one committed single-row INSERT on the same connections (the store as `sif-bot run`
wires it: a SQLite file's in-loop writer, PostgreSQL's pool). The printed ratio
(ledger transactions per second ÷ raw inserts per second) is the figure; the
absolute numbers depend on the machine.

    .venv/bin/python tests/bench/ledger_bench.py [--ops 2000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from bot.bootstrap import sql_store
from bot.domain import ledger
from bot.domain.records import Role
from store.db import create_schema, dispose
from store.uow import SqlUnitOfWorkFactory

NOW = datetime(2026, 3, 2, tzinfo=UTC)
raw_meta = MetaData()
raw_table = Table(
    "bench_raw",
    raw_meta,
    Column("id", Integer, primary_key=True),
    Column("amount", Integer),
    Column("note", String(50)),
)


async def bench(url: str, ops: int, concurrency: int) -> tuple[float, float]:
    """(raw INSERTs per second, ledger transactions per second), both through the store
    as `sif-bot run` wires it: on a SQLite file its in-loop writer, on PostgreSQL the
    engine's pool."""
    uow_factory, engine, readers = sql_store(url)
    await create_schema(engine)
    async with engine.begin() as conn:
        await conn.run_sync(raw_meta.create_all)
    assert isinstance(uow_factory, SqlUnitOfWorkFactory)
    async with uow_factory() as uow:
        community = await uow.communities.get_or_create(f"bench-{uuid.uuid4()}", "b", [], NOW)
        members = [
            (
                await uow.members.create(
                    community.id, f"m{i}", Role.MEMBER, "bench", f"{uuid.uuid4()}", NOW
                )
            ).id
            for i in range(8)
        ]
        await uow.commit()

    async def raw_worker(n: int) -> None:
        # One committed single-row INSERT on the connections units of work use.
        for i in range(n):
            session = uow_factory.sessions()
            try:
                await session.begin()
                conn = await session.connection()
                await conn.execute(insert(raw_table).values(amount=i, note="x"))
                await session.commit()
            finally:
                await session.close()

    async def ledger_worker(n: int, offset: int) -> None:
        for i in range(n):
            a = members[(i + offset) % len(members)]
            b = members[(i + offset + 1) % len(members)]
            async with uow_factory() as uow:
                await uow.ledger.post(
                    community.id, ledger.transfer(a, b, 100, "bench"), -(10**9), NOW
                )
                await uow.commit()

    per = ops // concurrency
    # warm-up, then interleave the two measurements so drift hits both
    await raw_worker(50)
    await ledger_worker(50, 0)
    raw_time = ledger_time = 0.0
    for _round in range(2):
        start = time.perf_counter()
        await asyncio.gather(*(raw_worker(per // 2) for _ in range(concurrency)))
        raw_time += time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(ledger_worker(per // 2, k) for k in range(concurrency)))
        ledger_time += time.perf_counter() - start
    async with uow_factory() as uow:
        problems = await uow.ledger.check_invariants(community.id)
        assert problems == [], problems
    await dispose(engine, readers)
    total = per * concurrency
    return total / raw_time, total / ledger_time


async def pg_database() -> str | None:
    try:
        import asyncpg

        name = f"sif_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=5)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        return name
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=5)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def report(label: str, raw: float, ledger_tps: float) -> None:
    print(
        f"{label:<24} raw INSERT {raw:8.0f}/s   ledger {ledger_tps:7.0f} tx/s "
        f"({2 * ledger_tps:7.0f} postings/s)   ratio tx/raw {ledger_tps / raw:.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw, led = await bench(f"sqlite+aiosqlite:///{tmp}/bench.db", args.ops, 1)
        report("SQLite (1 writer)", raw, led)
    if args.no_postgres:
        return
    name = await pg_database()
    if name is None:
        return
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        raw, led = await bench(url, args.ops, 1)
        report("PostgreSQL (1 writer)", raw, led)
        raw, led = await bench(url, args.ops, 8)
        report("PostgreSQL (8 writers)", raw, led)
    finally:
        await drop_pg(name)


if __name__ == "__main__":
    asyncio.run(main())
