"""Run Alembic migrations from code (`sif-bot db upgrade`, and `sif-bot run` on start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from bot.ports import StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`; blocking (Alembic's env runs its own event loop). A database
    that cannot be reached or opened is one StoreUnavailable line naming DATABASE_URL."""
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


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
