"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import subprocess
import sys
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


def test_existing_ideas_get_the_status_of_their_requests(tmp_path: Path) -> None:
    """0008: ideas that stayed `submitted` before the status followed their requests."""
    from datetime import UTC, datetime

    from alembic import command

    from bot.domain.records import IdeaStatus, RequestStatus, Role
    from store.db import make_sessionmaker
    from store.migrate import alembic_config
    from store.uow import SqlUnitOfWorkFactory

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    upgrade(url)

    async def fill() -> None:
        engine = make_engine(url)
        async with SqlUnitOfWorkFactory(make_sessionmaker(engine))() as uow:
            community = await uow.communities.get_or_create("console", "C", [], now)
            ann = await uow.members.create(community.id, "ann", Role.MEMBER, "c", "ann", now)
            bob = await uow.members.create(community.id, "bob", Role.MEMBER, "c", "bob", now)
            for title, moves in [
                ("asked", []),
                ("held", [RequestStatus.ASSIGNED]),
                ("done", [RequestStatus.ASSIGNED, RequestStatus.DELIVERED]),
            ]:
                idea = await uow.ideas.create(community.id, ann.id, title, {}, now)
                request = await uow.requests.create(
                    community.id, idea.id, ann.id, "review", 200, [], now
                )
                fields = {"peer_id": bob.id, "delivered_at": None}
                for to in moves:
                    if to is RequestStatus.DELIVERED:
                        fields["delivered_at"] = now
                    await uow.requests.transition(request.id, list(RequestStatus), to, **fields)
            await uow.commit()
        await engine.dispose()

    async def statuses() -> list[IdeaStatus]:
        # Plain SQL: at 0007 the table lacks the columns later migrations add.
        from sqlalchemy import text

        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT status FROM ideas ORDER BY number"))
            found = [IdeaStatus(status) for (status,) in rows]
        await engine.dispose()
        return found

    asyncio.run(fill())
    command.downgrade(alembic_config(url), "0007")  # as it was: all submitted
    assert asyncio.run(statuses()) == [IdeaStatus.SUBMITTED] * 3
    upgrade(url)
    assert asyncio.run(statuses()) == [
        IdeaStatus.SUBMITTED,
        IdeaStatus.IN_REVIEW,
        IdeaStatus.REVIEWED,
    ]


def test_head_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from store.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() == HEAD


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_start_at_head_leaves_alembic_unloaded(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`sif-bot run` migrates on start: a new database is migrated; one at the newest
    migration is only read, and the serving process never loads Alembic."""
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/start.db"
    else:
        url = request.getfixturevalue("pg_url")  # migrated by the session's fixture
    script = (
        "import asyncio, sys\n"
        "from store.migrate import upgrade_async, revision_of, HEAD\n"
        f"asyncio.run(upgrade_async({url!r}))\n"
        f"print(asyncio.run(revision_of({url!r})) == HEAD, 'alembic' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]

    def start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    if database == "sqlite":
        assert start() == ["True", "True"]  # a new file: migrated, with Alembic
    assert start() == ["True", "False"]  # at head: read, Alembic not loaded
