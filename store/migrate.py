"""Run Alembic migrations from code (`sif-bot db upgrade`, and `sif-bot run` on start).

A start whose database is already at the newest migration (`HEAD`) reads the revision
itself and leaves Alembic unloaded: Alembic with its templates and migration scripts
took 10 MB that the serving process kept for nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.ports import StoreUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/store/test_migrations.py checks it is Alembic's
# head): a new migration moves it.
HEAD = "0012"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`; blocking (Alembic's env runs its own event loop). A database
    that cannot be reached or opened is one StoreUnavailable line naming DATABASE_URL."""
    from alembic import command

    _check_sqlite_folder(url)
    try:
        command.upgrade(alembic_config(url), revision)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StoreUnavailable(f"DATABASE_URL: cannot open {_shown(url)}: {_reason(exc)}") from None


def _shown(url: str) -> str:
    """The URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the database"


def _check_sqlite_folder(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"DATABASE_URL: {url!r} is not a database URL") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = Path(parsed.database).expanduser().resolve().parent
    if not folder.is_dir():
        raise StoreUnavailable(
            f"DATABASE_URL: the folder {folder} does not exist (create it, or choose another path)"
        )


def _reason(exc: BaseException) -> str:
    """The driver's own words, on one line (asyncpg: 'database "x" does not exist')."""
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text[:300]


async def revision_of(url: str) -> str | None:
    """The database's migration revision (None: none yet, or it cannot be read now,
    which `upgrade` then says in its own words)."""
    try:
        engine = create_async_engine(url, poolclass=NullPool)
    except (ArgumentError, ImportError):
        return None
    try:
        async with engine.connect() as conn:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except Exception:  # no table yet, no server, no such database: `upgrade` tells
        return None
    finally:
        await engine.dispose()
    return str(found[0][0]) if len(found) == 1 else None


async def upgrade_async(url: str, revision: str = "head") -> None:
    if revision == "head" and await revision_of(url) == HEAD:
        return  # nothing to do, and Alembic not loaded for it
    await asyncio.to_thread(upgrade, url, revision)
