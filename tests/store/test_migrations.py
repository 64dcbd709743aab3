"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.db import make_engine
from store.migrate import upgrade
from store.models import Base


async def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await engine.dispose()
    return list(diff)


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    upgrade(url)
    upgrade(url)  # a second upgrade is a no-op
    assert asyncio.run(_differences(url)) == []


@pytest.mark.postgres
def test_postgres_migrations_match_the_models(pg_url: str) -> None:
    # pg_url was migrated with Alembic by the fixture
    assert asyncio.run(_differences(pg_url)) == []
