"""The ledger's SQLite statements run straight on the connection (store/prepared.py)
write exactly the rows SQLAlchemy's execution writes, refusals included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.bootstrap import sql_store
from bot.domain import ledger
from bot.domain.records import Role
from bot.ports import LimitExceeded
from store.db import create_schema, dispose, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


async def book(factory: SqlUnitOfWorkFactory) -> list[Any]:
    async with factory() as uow:
        community = await uow.communities.get_or_create("c", "C", [], NOW)
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "x", "ann", NOW)
        bob = await uow.members.create(community.id, "bob", Role.MEMBER, "x", "bob", NOW)
        await uow.commit()
    results: list[Any] = []
    drafts = [
        ledger.transfer(ann.id, bob.id, 500, "first", key="k1"),
        ledger.transfer(ann.id, bob.id, 500, "again", key="k1"),  # the same key: nothing
        ledger.transfer(bob.id, ann.id, 200, "back"),
        ledger.transfer(ann.id, bob.id, 5000, "too much"),  # past the floor: refused
    ]
    for draft in drafts:
        async with factory() as uow:
            try:
                results.append(await uow.ledger.post(community.id, draft, -2000, NOW))
            except LimitExceeded as refused:
                results.append(("refused", refused.balance, refused.floor))
            await uow.commit()
    async with factory() as uow:
        session = uow.session  # type: ignore[attr-defined]
        for table in ("ledger_transactions", "ledger_postings", "accounts"):
            rows = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            results.append([tuple(row) for row in rows])
    return results


async def test_straight_statements_write_what_sqlalchemy_writes(tmp_path: Path) -> None:
    written = []
    for name, straight in (("straight", True), ("sqlalchemy", False)):
        factory, engine, readers = sql_store(f"sqlite+aiosqlite:///{tmp_path / name}.db")
        await create_schema(engine)
        assert isinstance(factory, SqlUnitOfWorkFactory)
        if not straight:
            factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))  # aiosqlite's path
        written.append(await book(factory))
        await dispose(engine, readers)
    straight_rows, sqlalchemy_rows = written
    assert straight_rows == sqlalchemy_rows
    assert straight_rows[1] is None and straight_rows[3][0] == "refused"
    assert len(straight_rows[4]) == 2  # two transactions: the duplicate and refusal left none


def test_the_straight_path_is_taken_on_a_sqlite_file(tmp_path: Path) -> None:
    factory, _, readers = sql_store(f"sqlite+aiosqlite:///{tmp_path / 'f'}.db")
    assert readers is not None and readers.writer is not None
    if factory.sessions != readers.writer.session:  # type: ignore[attr-defined]
        pytest.fail("a SQLite file's units of work should run on the in-loop writer")


async def test_a_straight_caller_look_up_reads_what_sqlalchemy_reads(tmp_path: Path) -> None:
    factory, engine, readers = sql_store(f"sqlite+aiosqlite:///{tmp_path / 'c'}.db")
    await create_schema(engine)
    assert isinstance(factory, SqlUnitOfWorkFactory)
    async with factory() as uow:
        community = await uow.communities.get_or_create("c", "C", ["finance"], NOW)
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "x", "ann", NOW)
        await uow.members.set_profile(ann.id, languages=["Dutch"], bio="b", profile={"o": 1})
        await uow.members.set_paused_until(ann.id, NOW)
        await uow.members.touch(ann.id, NOW)
        await uow.commit()
    async with factory.reading() as uow:  # in the loop, straight on the connection
        straight = await uow.ledger.of_identity("x", "ann")
    async with SqlUnitOfWorkFactory(make_sessionmaker(engine)).reading() as uow:
        through_sqlalchemy = await uow.ledger.of_identity("x", "ann")
    await dispose(engine, readers)
    assert straight is not None and straight == through_sqlalchemy
    member, _ = straight
    assert member.paused_until == NOW and member.languages == ("Dutch",)
    assert member.profile == {"o": 1} and member.last_active == NOW
