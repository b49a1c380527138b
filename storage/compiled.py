"""Statements compiled once for SQLite and run straight on its cursor (see `storage.direct`).

A statement is compiled by SQLAlchemy once, per dialect and (for an INSERT) per set of keys
given, and then run with the type processing SQLAlchemy would apply to its parameters and rows.
Everything here runs on the caller's thread: the caller holds SQLite's write lock, so nothing
here can wait on another connection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Insert, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.sqltypes import TupleType

from storage.sqlite_driver import INLINE_MAX_ROWS, INLINE_MAX_VALUES

_Processor = Callable[[Any], Any] | None
_EXPANDING = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a statement returned: its rows (typed as SQLAlchemy would give them) and how many
    rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement compiled once for SQLite (qmark style): the SQL split around its expanding
    IN lists, and per parameter and per returned column the processor SQLAlchemy applies."""

    pieces: tuple[str, ...]  # the SQL around each expanding list: len(expanding) + 1 pieces
    expanding: tuple[str, ...]
    names: tuple[str, ...]  # the parameters in order, an expanding one where its list goes
    binds: tuple[_Processor, ...]
    returns_rows: bool
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, its processor)
    # For parameters not given: the values written into the statement, and an INSERT's scalar
    # column defaults.
    defaults: Mapping[str, Any]

    def sql(self, parameters: Mapping[str, Any]) -> str:
        if not self.expanding:
            return self.pieces[0]
        parts = [self.pieces[0]]
        for name, after in zip(self.expanding, self.pieces[1:], strict=True):
            given = parameters[name] if name in parameters else self.defaults[name]
            parts.append(", ".join("?" * len(given)))
            parts.append(after)
        return "".join(parts)

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = parameters[name] if name in parameters else self.defaults[name]
            if name in self.expanding:
                values.extend(value if process is None else map(process, value))
            else:
                values.append(value if process is None else process(value))
        return values

    def rows(self, raw: list[Any]) -> list[tuple[Any, ...]]:
        """sqlite3's rows (tuples), each column that SQLAlchemy would process processed."""
        if not self.processed or not raw:
            return raw
        # Column by column: a hundred rep states are a hundred rows of one or two processed
        # columns, and turning the table round (in C) costs less than a loop over each row.
        columns = list(zip(*raw, strict=True))
        for index, process in self.processed:
            columns[index] = tuple(None if v is None else process(v) for v in columns[index])
        return list(zip(*columns, strict=True))


# By statement, dialect and (for an INSERT) the keys given: the compiled form, or None for a
# statement this shortcut leaves to the session. The statement and dialect are kept beside it,
# so neither id is reused while the entry lives.
_cache: dict[tuple[int, int, frozenset[str]], tuple[Executable, Dialect, Compiled | None]] = {}


def compiled(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> Compiled | None:
    cache_key = (id(statement), id(dialect), keys)
    found = _cache.get(cache_key)
    if found is None:
        try:
            made: Compiled | None = _compile(statement, dialect, keys)
        except _Unsupported:
            made = None
        found = _cache[cache_key] = (statement, dialect, made)
    return found[2]


def _compile(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> Compiled:
    defaults: dict[str, Any] = {}
    column_keys = None
    if isinstance(statement, Insert):
        table = statement.table
        assert isinstance(table, Table)
        for column in table.columns:
            default = column.default
            if column.key in keys or default is None:
                continue
            if not default.is_scalar:
                raise _Unsupported(f"{column.key} has a computed default")
            defaults[column.key] = default.arg
        column_keys = sorted(keys | defaults.keys())
    if not isinstance(statement, ClauseElement):
        raise _Unsupported("not a SQL statement")
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        raise _Unsupported("the dialect does not take positional parameters")
    pieces = _EXPANDING.split(compiled.string)
    expanding = tuple(pieces[1::2])
    names = tuple(compiled.positiontup)
    for name in names:
        bind = compiled.binds[name]
        if bind.callable is not None or bind.literal_execute:
            raise _Unsupported(f"{name} is not a plain parameter")
        if bind.expanding != (name in expanding) or isinstance(bind.type, TupleType):
            raise _Unsupported(f"{name} is not a plain list of values")
        if not bind.required and name not in defaults:
            defaults[name] = bind.value  # written into the statement, as `open_count != 0`
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    columns = getattr(statement, "exported_columns", ())
    results = [
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    ]
    processed = tuple(
        (index, process) for index, process in enumerate(results) if process is not None
    )
    return Compiled(
        tuple(pieces[0::2]), expanding, names, binds, bool(results), processed, defaults
    )


class _Unsupported(Exception):
    """A statement this shortcut does not run (it falls back to the session)."""


def run_here(
    raw: sqlite3.Connection,
    dialect: Dialect,
    statement: Executable,
    parameters: Mapping[str, Any],
) -> Outcome | None:
    """The statement run on `raw`; None if it is not one to run here: one this module does not
    compile, an empty IN list (SQLAlchemy's to render), or more values than a statement on the
    event loop may take (the database thread's to run)."""
    lists = [len(value) for value in parameters.values() if isinstance(value, list | tuple)]
    if not all(lists) or sum(lists) + len(parameters) > INLINE_MAX_VALUES:
        return None
    found = compiled(statement, dialect, frozenset(parameters))
    if found is None:
        return None
    sql = found.sql(parameters)
    cursor = _execute(raw, sql, found.values(parameters), dialect)
    try:
        return Outcome(found.rows(cursor.fetchall()), cursor.rowcount)
    finally:
        cursor.close()


def run_many_here(
    raw: sqlite3.Connection,
    dialect: Dialect,
    statement: Executable,
    rows: Sequence[Mapping[str, Any]],
) -> Outcome | None:
    """The statement run on `raw` once per row (rows with the same keys); with RETURNING, the
    returned rows in no particular order. None as for `run_here`, and for too many rows."""
    keys = frozenset(rows[0])
    # Counted as the driver counts them: the values of one multi-row INSERT, or the rows of an
    # executemany (see INLINE_MAX_ROWS).
    if len(rows) > INLINE_MAX_ROWS or len(rows) * len(keys) > INLINE_MAX_VALUES:
        return None
    if not all(frozenset(row) == keys for row in rows):
        return None
    found = compiled(statement, dialect, keys)
    # An IN list per row, or RETURNING from anything but an INSERT (SQLAlchemy refuses UPDATE
    # ... RETURNING over many rows), are the session's to run or refuse.
    if found is None or any(name not in found.defaults for name in found.expanding):
        return None
    if found.returns_rows and not isinstance(statement, Insert):
        return None
    sql = found.sql({})
    if not found.returns_rows:
        cursor = _execute_many(raw, sql, [found.values(row) for row in rows], dialect)
        try:
            return Outcome([], cursor.rowcount)
        finally:
            cursor.close()
    returned: list[tuple[Any, ...]] = []
    changed = 0
    for row in rows:
        cursor = _execute(raw, sql, found.values(row), dialect)
        try:
            returned.extend(found.rows(cursor.fetchall()))
            changed += cursor.rowcount
        finally:
            cursor.close()
    return Outcome(returned, changed)


def execute_here(raw: sqlite3.Connection, sql: str, dialect: Dialect) -> None:
    """A statement of no parameters and no rows (COMMIT, ROLLBACK), its error SQLAlchemy's."""
    _execute(raw, sql, (), dialect).close()


def _execute(
    raw: sqlite3.Connection, sql: str, values: Sequence[Any], dialect: Dialect
) -> sqlite3.Cursor:
    try:
        return raw.execute(sql, values)
    except sqlite3.Error as error:
        raise wrapped(sql, error, dialect) from error


def _execute_many(
    raw: sqlite3.Connection, sql: str, values: Sequence[Sequence[Any]], dialect: Dialect
) -> sqlite3.Cursor:
    try:
        return raw.executemany(sql, values)
    except sqlite3.Error as error:
        raise wrapped(sql, error, dialect) from error


def wrapped(sql: str, error: sqlite3.Error, dialect: Dialect) -> BaseException:
    """The error SQLAlchemy would have raised (an IntegrityError for a unique key, ...),
    without the parameters: they may be a lead's personal data."""
    return DBAPIError.instance(
        sql, None, error, sqlite3.Error, hide_parameters=True, dialect=dialect
    )
