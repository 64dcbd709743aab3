"""`export members` reads the store in a fixed number of statements, however many members
there are (one per member held SQLite, and every other member's command, for seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from bot.app.handlers.export import export_rows
from bot.domain.ids import CommunityId
from bot.domain.records import Role
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    """The statements the engine runs meanwhile."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _grow(store: Store, community: CommunityId, start: int, count: int) -> None:
    async with store.uow() as uow:
        for n in range(start, start + count):
            member = await uow.members.create(
                community, f"m{n}", Role.MEMBER, "console", f"m{n}", NOW
            )
            await uow.members.set_expertise(member.id, "finance", 1 + n % 3)
            if n % 2:
                await uow.members.set_expertise(member.id, "legal", 2)
        await uow.commit()


async def _export(store: Store, community: CommunityId) -> tuple[int, list[list[Any]]]:
    async with store.uow() as uow:
        with counted(store.engine) as statements:
            _, rows = await export_rows(uow, community, "members")
        return len(statements), rows


async def test_export_members_runs_as_many_statements_for_3_members_as_for_40(
    store: Store,
) -> None:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("console", "Test", ["finance"], NOW)
        await uow.commit()
    await _grow(store, community.id, 0, 3)
    few, rows = await _export(store, community.id)
    assert [r[4] for r in rows] == ["finance:1", "finance:2 legal:2", "finance:3"]
    await _grow(store, community.id, 3, 37)
    many, rows = await _export(store, community.id)
    assert len(rows) == 40
    assert rows[39][1] == "m39" and rows[39][4] == "finance:1 legal:2"
    assert many == few
