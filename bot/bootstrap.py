"""The composition root: the only place that wires the store, the core and adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.app.outbox import Relay
from bot.app.service import Bot
from bot.ports import Clock, SystemClock
from bot.settings import Settings


@dataclass
class App:
    settings: Settings
    bot: Bot
    relay: Relay
    engine: Any  # the store's engine, closed by `close()`
    readers: Any = None  # the engine of read-only units of work, if any

    async def close(self) -> None:
        from store.db import dispose

        await dispose(self.engine, self.readers)


async def migrate(settings: Settings) -> None:
    from store.migrate import upgrade_async

    await upgrade_async(settings.database_url)


async def build(settings: Settings, clock: Clock | None = None, *, migrate_db: bool = True) -> App:
    """Build the store, the relay and the bot for `settings` (migrating first)."""
    from store.db import make_engine, make_reader_engine, make_sessionmaker, reader_sessions
    from store.uow import SqlUnitOfWorkFactory

    if migrate_db:
        await migrate(settings)
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url)
    readers = make_reader_engine(settings.database_url)
    uow_factory = SqlUnitOfWorkFactory(
        make_sessionmaker(engine), reader_sessions(readers) if readers is not None else None
    )
    relay = Relay(uow_factory, clock, settings.sif_outbox_lease_seconds)
    bot = Bot(uow_factory, settings, clock, relay)
    return App(settings, bot, relay, engine, readers)


async def backup(settings: Settings) -> dict[str, Any]:
    """The whole database as a JSON-ready dict (`sif-bot export --format json`)."""
    from store.backup import dump
    from store.db import make_engine

    await migrate(settings)
    engine = make_engine(settings.database_url)
    try:
        return await dump(engine)
    finally:
        await engine.dispose()


async def restore(settings: Settings, data: dict[str, Any]) -> dict[str, int]:
    """Load a backup into an empty database (`sif-bot import`); ValueError when refused."""
    from store.backup import restore as restore_rows
    from store.db import make_engine

    await migrate(settings)
    engine = make_engine(settings.database_url)
    try:
        return await restore_rows(engine, data)
    finally:
        await engine.dispose()
