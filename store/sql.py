"""SQL helpers the repositories and queries share: a model's table as a Core `Table`, and
the statements whose form depends on the database's dialect (PostgreSQL's and SQLite's
own INSERT ... ON CONFLICT). Nothing here knows any one aggregate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.privacy import words_to_find
from store.models import Base

_DIALECTS: tuple[tuple[str, Any], ...] = (("postgresql", postgresql), ("sqlite", sqlite))


def table(model: type[Base]) -> sa.Table:
    """The model's table, for Core statements (the ORM types `__table__` as a FromClause)."""
    return cast(sa.Table, model.__table__)


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the session's dialect."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def per_dialect(build: Callable[[Any], Any]) -> dict[str, Any]:
    """A prebuilt statement for each dialect, by dialect name: `build` is given that
    dialect's `insert` (the one with ON CONFLICT); run the one of the connection's
    `dialect.name`."""
    return {name: build(module.insert) for name, module in _DIALECTS}


def may_mention(column: Any, words: Sequence[str]) -> Any:
    """A condition true for every row whose `column` holds one of `words` (and for a few
    others: the caller checks whole words in Python); false when there is no word."""
    found = words_to_find(words)
    if not found:
        return sa.false()
    return sa.or_(
        *(column.contains(w, autoescape=True) for w in found),
        *(sa.func.lower(column).contains(w.lower(), autoescape=True) for w in found),
    )
