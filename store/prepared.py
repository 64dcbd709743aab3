"""Statements of the hottest paths (a ledger transaction, a command's caller) run
straight on a SQLite connection of the event loop's thread (`store.inloop`): compiled by
SQLAlchemy once per dialect, with its own bind and result processing per value, then
executed with `sqlite3`, whose statement cache reuses the prepared statement. The profile
of a transfer put two thirds of each statement's time in SQLAlchemy's per-execution work
(execution context, parameter and result set-up), a tenth in SQLite; this skips that
work and nothing else."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect

from store.pgsingle import PgSingleConnection


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]  # the values of binds the statement holds itself (literals)
    processors: tuple[Callable[[Any], Any] | None, ...]
    row: Any  # a named tuple of the selected columns (None: the statement selects none)
    results: tuple[Callable[[Any], Any] | None, ...]

    def rows(self, records: Iterable[Sequence[Any]]) -> list[Any]:
        """The rows of a SELECT, each value as SQLAlchemy would give it, by column name."""
        make, results = self.row, self.results
        assert make is not None, "rows are for SELECT statements"
        return [
            make._make(
                value if process is None else process(value)
                for value, process in zip(values, results, strict=True)
            )
            for values in records
        ]

    def bind(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(
                (
                    params[name] if name in params else default
                    for name, default in zip(self.names, self.defaults, strict=True)
                ),
                self.processors,
                strict=True,
            )
        )


def _row_type(names: list[str]) -> Any:
    return namedtuple("Row", names)


class Prepared:
    """One Core statement; `column_keys` for an INSERT are the columns it is given."""

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
            names = tuple(compiled.positiontup or ())
            processors = tuple(
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            )
            row: Any = None
            results: tuple[Callable[[Any], Any] | None, ...] = ()
            selected = getattr(self.statement, "selected_columns", None)
            if selected is not None and not getattr(self.statement, "is_dml", False):
                row = _row_type(list(selected.keys()))
                results = tuple(
                    column.type.dialect_impl(dialect).result_processor(dialect, None)
                    for column in selected
                )
            defaults = tuple(compiled.binds[name].value for name in names)
            found = _Compiled(compiled.string, names, defaults, processors, row, results)
            self._compiled[dialect.name] = found
        return found

    def records(
        self, raw: sqlite3.Connection, dialect: Dialect, params: dict[str, Any]
    ) -> tuple[tuple[Any, ...], ...]:
        """The rows of a SELECT as `sqlite3` gives them (hashable: a key for what they
        are turned into); `rows` turns them into SQLAlchemy's values."""
        compiled = self._for(dialect)
        return tuple(raw.execute(compiled.sql, compiled.bind(params)))

    async def records_on(
        self, connection: PgSingleConnection, params: dict[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of a SELECT as asyncpg gives them, as the one statement of a
        single-statement unit of work on PostgreSQL (`store.pgsingle`)."""
        compiled = self._for(connection.dialect)
        return await connection.records(compiled.sql, compiled.bind(params))

    def rows(self, dialect: str, records: Iterable[Sequence[Any]]) -> list[Any]:
        """`records` of a dialect (by name) this statement ran on, each value as
        SQLAlchemy would give it, by column name."""
        return self._compiled[dialect].rows(records)

    def execute(
        self, raw: sqlite3.Connection, dialect: Dialect, params: dict[str, Any]
    ) -> sqlite3.Cursor:
        compiled = self._for(dialect)
        return raw.execute(compiled.sql, compiled.bind(params))

    def executemany(
        self, raw: sqlite3.Connection, dialect: Dialect, rows: Sequence[dict[str, Any]]
    ) -> None:
        compiled = self._for(dialect)
        raw.executemany(compiled.sql, [compiled.bind(row) for row in rows])
