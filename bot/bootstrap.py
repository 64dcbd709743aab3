"""The composition root: the only place that wires the store, the core and adapters.

`build` makes the store, the relay and the bot; `console` and `start_platforms` add the
adapters the settings ask for. The command line, the demo, the simulator, tests and
benchmarks all build through here and override only what they fake (a clock, a
messenger, the settings).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.app.federation import Federation
from bot.app.outbox import Relay
from bot.app.service import Bot
from bot.ports import Clock, Messenger, SystemClock, UnitOfWorkFactory
from bot.settings import Settings


@dataclass
class App:
    settings: Settings
    bot: Bot
    relay: Relay
    engine: Any = None  # the store's engine, closed by `close()` (None: nothing to close)
    readers: Any = None  # the engine of read-only units of work, if any
    federation: Federation | None = None  # this node in the network, when configured

    async def close(self) -> None:
        if self.engine is None:
            return
        from store.db import dispose

        await dispose(self.engine, self.readers)


async def migrate(settings: Settings) -> None:
    from store.migrate import upgrade_async

    await upgrade_async(settings.database_url)


def sql_store(database_url: str) -> tuple[UnitOfWorkFactory, Any, Any]:
    """The SQL unit of work for a database URL: (factory, engine, reader engine or None)."""
    from store.db import (
        in_loop_writer,
        make_engine,
        make_reader_engine,
        make_sessionmaker,
        reader_sessions,
        single_statement_sessions,
    )
    from store.uow import SqlUnitOfWorkFactory

    engine = make_engine(database_url)
    readers = make_reader_engine(database_url)
    writer = in_loop_writer(readers)
    factory = SqlUnitOfWorkFactory(
        writer.session if writer is not None else make_sessionmaker(engine),
        reader_sessions(readers) if readers is not None else None,
        single_statement_sessions(readers),
    )
    return factory, engine, readers


def assemble(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    clock: Clock | None = None,
    *,
    engine: Any = None,
    readers: Any = None,
    messengers: Sequence[Messenger] = (),
    **bot_options: Any,
) -> App:
    """The relay and the bot over a unit of work, with the given messengers registered:
    what `build` does after making the store, and what tests and benchmarks call with
    a store (or a fake) and messengers of their own."""
    clock = clock or SystemClock()
    relay = Relay.from_settings(uow_factory, clock, settings)
    for messenger in messengers:
        relay.register(messenger)
    bot = Bot(uow_factory, settings, clock, relay, **bot_options)
    federation = Federation.from_settings(settings, uow_factory, clock)
    if federation is not None:
        from adapters.federation.messenger import FederationMessenger

        if "federation" not in relay.messengers:
            relay.register(FederationMessenger(federation.seal))
        bot.federation = federation
        federation.relay = relay
    return App(settings, bot, relay, engine, readers, federation)


async def build(
    settings: Settings,
    clock: Clock | None = None,
    *,
    migrate_db: bool = True,
    messengers: Sequence[Messenger] = (),
) -> App:
    """Build the store, the relay and the bot for `settings` (migrating first)."""
    if migrate_db:
        await migrate(settings)
    uow_factory, engine, readers = sql_store(settings.database_url)
    return assemble(
        settings, uow_factory, clock, engine=engine, readers=readers, messengers=messengers
    )


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


def console_messenger(settings: Settings | None = None) -> Any:
    """The terminal's messenger (prints what the bot says). Files it is sent (a chart)
    are saved next to the settings' SQLite database, else in the temporary directory."""
    from adapters.console.console import ConsoleMessenger
    from store.db import sqlite_file

    database = sqlite_file(settings.database_url) if settings is not None else None
    return ConsoleMessenger(files=database.parent if database is not None else None)


async def console_chat(app: App, name: str) -> int:
    """Chat with the bot in the terminal as `name` (with `as bob` to switch); 2 when the
    name is not a console name."""
    from adapters.console.console import interactive

    return await interactive(app.bot, name)


async def console_script(app: App, lines: list[str]) -> int:
    """Play a script of `NAME: text` lines; returns how many lines were bad."""
    from adapters.console.console import run_script

    return await run_script(app.bot, lines)


def console_inbound(name: str, text: str, channel: str | None = None) -> Any:
    from adapters.console.console import inbound

    return inbound(name, text, channel)


@dataclass
class Platforms:
    """The platform adapters started for the settings: what the server monitors, the web
    app that serves their HTTP endpoints, and how to stop them."""

    web_app: Any
    statuses: dict[str, Callable[[], Any]] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    drains: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def start_platforms(app: App, session: Any) -> Platforms:
    """Start Slack and Matrix as the settings ask, sharing one HTTP client session."""
    from aiohttp import web

    settings = app.settings
    platforms = Platforms(web.Application())
    if settings.slack_enabled:
        from adapters.slack.app import SlackAdapter

        assert settings.slack_bot_token is not None
        slack = SlackAdapter(
            app.bot,
            token=settings.slack_bot_token,
            signing_secret=None if settings.slack_app_token else settings.slack_signing_secret,
            api_url=settings.slack_api_url,
            session=session,
            team_ids=settings.slack_team_id,
        )
        platforms.statuses["slack"] = slack.status
        platforms.drains.append(slack.drain)
        if settings.slack_app_token:
            handler = await slack.socket_mode(settings.slack_app_token)
            platforms.closers.append(handler.close_async)
            platforms.notes.append("Slack: connected in Socket Mode.")
        else:
            platforms.web_app = slack.web_app()
            platforms.notes.append(
                f"Slack: listening for events on port {settings.port} at /slack/events."
            )
    if settings.matrix_enabled:
        from adapters.matrix.client import MatrixAdapter

        assert settings.matrix_homeserver and settings.matrix_user_id
        matrix = MatrixAdapter(
            app.bot,
            homeserver=settings.matrix_homeserver,
            user_id=settings.matrix_user_id,
            password=settings.matrix_password,
            access_token=settings.matrix_access_token,
            device_id=settings.matrix_device_id,
            store_path=settings.matrix_store_path,
            community=settings.matrix_community,
            allowed_servers=settings.matrix_allowed_servers or None,
            trust=settings.matrix_trust,
            language=settings.sif_language,
        )
        platforms.statuses["matrix"] = matrix.status
        await matrix.start()
        platforms.closers.append(matrix.stop)
        platforms.notes.append(f"Matrix: syncing as {settings.matrix_user_id}.")
    return platforms


class PlatformError(RuntimeError):
    """A platform refused an operator command; the message says why."""


async def matrix_devices(
    settings: Settings, member: str, action: str, device: str | None
) -> list[str]:
    """`sif-bot matrix devices|verify|block`: the bot's trust in a member's devices."""
    from adapters.matrix.client import MatrixError, manage_devices

    assert settings.matrix_homeserver and settings.matrix_user_id
    try:
        return await manage_devices(
            homeserver=settings.matrix_homeserver,
            user_id=settings.matrix_user_id,
            store_path=settings.matrix_store_path,
            member=member,
            action=action,
            device_id=device,
        )
    except MatrixError as exc:
        raise PlatformError(str(exc)) from None
