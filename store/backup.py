"""A whole-database backup as JSON, and its restore into an empty database.

Rows keep their ids, so a restored database has the same balances, entries, ideas
and requests; on PostgreSQL the id sequences are moved past the restored ids.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.models import Base

FORMAT = "sif-bot backup"
# Parents before children, so foreign keys hold while inserting.
ORDER = (
    "communities",
    "tags",
    "counters",
    "members",
    "identities",
    "expertise",
    "accounts",
    "ledger_transactions",
    "ledger_postings",
    "ideas",
    "requests",
    "offers",
    "conversations",
    "link_codes",
    "introductions",
    "cross_requests",
    "processed_events",
    "forgotten_identities",
    "outbox",
)


class BackupError(ValueError):
    pass


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


async def dump(engine: AsyncEngine) -> dict[str, Any]:
    tables: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for name in ORDER:
            table = Base.metadata.tables[name]
            result = await conn.execute(select(table).order_by(*table.primary_key.columns))
            tables[name] = [
                {key: _encode(value) for key, value in row._mapping.items()} for row in result
            ]
    missing = set(Base.metadata.tables) - set(ORDER)
    assert not missing, f"tables not in the backup order: {missing}"
    return {"format": FORMAT, "tables": tables}


def _decode(table_name: str, row: dict[str, Any]) -> dict[str, Any]:
    table = Base.metadata.tables[table_name]
    decoded = {}
    for key, value in row.items():
        if key not in table.c:
            raise BackupError(f"{table_name} has no column {key}")
        column_type = table.c[key].type
        impl = getattr(column_type, "impl", column_type)
        if value is not None and isinstance(impl, DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(impl, LargeBinary):
            value = base64.b64decode(value)
        decoded[key] = value
    return decoded


async def restore(engine: AsyncEngine, data: dict[str, Any]) -> dict[str, int]:
    """Insert a backup into an empty (migrated) database; returns rows per table."""
    if data.get("format") != FORMAT or not isinstance(data.get("tables"), dict):
        raise BackupError("this is not a sif-bot backup file")
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for name in ORDER:
            table = Base.metadata.tables[name]
            existing = await conn.scalar(select(func.count()).select_from(table))
            if existing:
                raise BackupError(f"the database is not empty ({name} has {existing} rows)")
        for name in ORDER:
            rows = [_decode(name, row) for row in data["tables"].get(name, [])]
            if rows:
                await conn.execute(insert(Base.metadata.tables[name]), rows)
            counts[name] = len(rows)
        if conn.dialect.name == "postgresql":
            for name in ORDER:
                table = Base.metadata.tables[name]
                if "id" in table.c and table.c.id.autoincrement is not False:
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                        )
                    )
    return counts
