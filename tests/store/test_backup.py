"""Export → import round trip: same balances, same entries, same ideas and requests."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from bot.bootstrap import App
from store.backup import BackupError, dump, restore
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import PG_ADMIN_DSN, _pg_admin
from tests.fakes import FakeClock, said


async def _community_state(uow_factory: SqlUnitOfWorkFactory) -> dict[str, object]:
    async with uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        return {
            "balances": await uow.ledger.all_balances(community.id),
            "entries": await uow.ledger.entries(community.id),
            "ideas": await uow.ideas.all(community.id),
            "requests": await uow.requests.all(community.id),
            "invariants": await uow.ledger.check_invariants(community.id),
        }


async def _target_url(source_url: str, tmp_path: Path) -> str:
    if source_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path}/restored.db"
    name = f"sif_restore_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    return f"{base}/{name}"


async def test_export_import_round_trip(app: App, clock: FakeClock, tmp_path: Path) -> None:
    bot = app.bot
    for text in ("balance", "expertise add finance:3"):
        await bot.handle(said("bob", text))
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        idea = {"title": "Repair café", "help": ["finance"]}
        await uow.ideas.create(ann.community, ann.id, "Repair café", idea, clock.now())
        await uow.commit()
    for who, text in [
        ("ann", "request I-1 review"),
        ("bob", "accept R-1"),
        ("bob", "done R-1 2 Good."),
        ("ann", "thanks R-1 5"),
        ("ann", "request I-1 advice"),
    ]:
        await bot.handle(said(who, text))
    before = await _community_state(bot.uow_factory)  # type: ignore[arg-type]
    data = json.loads(json.dumps(await dump(app.engine)))  # through real JSON text

    target = await _target_url(str(app.settings.database_url), tmp_path)
    try:
        await asyncio.to_thread(upgrade, target)
        engine = make_engine(target)
        counts = await restore(engine, data)
        assert counts["ledger_postings"] == len(before["entries"])  # type: ignore[arg-type]
        factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
        after = await _community_state(factory)
        assert after == before
        assert after["invariants"] == []
        with pytest.raises(BackupError, match="not empty"):
            await restore(engine, data)  # a second import is refused
        async with factory() as uow:  # the restored database keeps working
            community = await uow.communities.find("console")
            assert community is not None
            await uow.ideas.create(community.id, before["ideas"][0].owner, "Next", {}, clock.now())  # type: ignore[index]
            await uow.commit()
        await engine.dispose()
    finally:
        if not target.startswith("sqlite"):
            await _pg_admin(f'DROP DATABASE IF EXISTS "{target.rsplit("/", 1)[1]}" WITH (FORCE)')


async def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    with pytest.raises(BackupError, match="not a sif-bot backup"):
        await restore(engine, {"tables": []})
    await engine.dispose()
