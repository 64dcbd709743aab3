"""The event log: the keys of the inbound events already handled, so that a platform's
redelivery of one is recognised and handled once; keys are pruned after 30 days."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.inloop import InLoopConnection
from store.models import ProcessedEventRow
from store.prepared import Prepared
from store.sql import insert_ignoring_conflicts

# Asked before each direct answer on Matrix (`Bot._read_in`): on SQLite's in-loop
# readers it runs straight on `sqlite3` (`store.prepared`).
_SEEN = select(ProcessedEventRow.key).where(ProcessedEventRow.key == bindparam("key"))
_RAW_SEEN = Prepared(_SEEN)


class SqlEventLog:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def first_time(self, key: str, at: datetime) -> bool:
        stmt = insert_ignoring_conflicts(self.s, ProcessedEventRow).values(key=key, created_at=at)
        inserted = await self.s.scalar(stmt.returning(ProcessedEventRow.key))
        return inserted is not None

    async def seen(self, key: str) -> bool:
        """Whether an event key is recorded (a read: for read-only units of work)."""
        connection = await self.s.connection()
        if isinstance(connection, InLoopConnection):
            return bool(_RAW_SEEN.records(connection.raw(), connection.dialect, {"key": key}))
        return await connection.scalar(_SEEN, {"key": key}) is not None

    async def prune(self, before: datetime) -> int:
        result = await self.s.execute(
            delete(ProcessedEventRow).where(ProcessedEventRow.created_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
