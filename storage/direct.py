"""The routing transaction's statements, run straight on SQLite's cursor.

A routing transaction on SQLite is a dozen small statements that SQLite answers in a few dozen
microseconds each, while SQLAlchemy's execution around each one (the async session, compiling
IN lists, processing parameters and rows) cost three to five times that: most of the time from
a lead's POST to its Slack card. So the hot statements of `storage.repository` go through `run`
and `insert`. In a write transaction on the event loop's side (`OneTripConnection`, which takes
the write lock here if the transaction has not yet), these run the statement as SQLAlchemy
compiled it, with the type processing SQLAlchemy would apply, on the session's sqlite3
connection. SQLAlchemy's statement events and echo do not see them; SQLite's trace hook does.

Everywhere else they are `session.execute`: PostgreSQL, reading sessions, a session with
unflushed objects, bulk work (`INLINE_MAX_ROWS`), and any statement with parameters this does
not handle. `tests/storage/test_direct.py` holds the two ways to the same answers and bytes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Executable, Insert, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.sqltypes import TupleType

from storage.sqlite_driver import INLINE_MAX_ROWS, INLINE_MAX_VALUES, OneTripConnection

_Processor = Callable[[Any], Any] | None
_EXPANDING = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
_CONNECTION = "storage.direct.connection"  # session.info: (transaction, DBAPI connection, dialect)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a statement returned: its rows (typed as SQLAlchemy would give them) and how many
    rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


@dataclass(frozen=True, slots=True)
class _Compiled:
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
            parts.append(", ".join("?" * len(parameters[name])))
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
_cache: dict[tuple[int, int, frozenset[str]], tuple[Executable, Dialect, _Compiled | None]] = {}


def _compiled(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> _Compiled | None:
    cache_key = (id(statement), id(dialect), keys)
    found = _cache.get(cache_key)
    if found is None:
        try:
            made: _Compiled | None = _compile(statement, dialect, keys)
        except _Unsupported:
            made = None
        found = _cache[cache_key] = (statement, dialect, made)
    return found[2]


def _compile(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> _Compiled:
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
    return _Compiled(
        tuple(pieces[0::2]), expanding, names, binds, bool(results), processed, defaults
    )


class _Unsupported(Exception):
    """A statement this shortcut does not run (it falls back to the session)."""


async def _cursor_of(session: AsyncSession) -> tuple[sqlite3.Connection, Dialect] | None:
    """The sqlite3 connection to run on, if the session's transaction holds the write lock (or
    is about to take it with its BEGIN IMMEDIATE) and has nothing unflushed that a statement
    ought to see first."""
    if session.new or session.dirty or session.deleted:
        return None
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_CONNECTION)
    if transaction is None or known is None or known[0] is not transaction:
        # Asked once per transaction: `session.connection()` is a greenlet switch each time.
        connection = await session.connection()  # begins the transaction if need be
        transaction = session.sync_session.get_transaction()
        adapted = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        known = (transaction, adapted, connection.dialect)
        session.info[_CONNECTION] = known
    transaction, adapted, dialect = known
    if transaction is None or not transaction.is_active:
        return None  # let the session say why (a rollback pending, ...)
    if not isinstance(adapted, OneTripConnection):
        return None
    # The transaction's BEGIN IMMEDIATE, if still to go, when the lock is free.
    if not adapted.try_take_write_lock():
        return None
    return adapted.sqlite_connection, dialect


async def run(
    session: AsyncSession,
    statement: Executable,
    parameters: Mapping[str, Any] | None = None,
) -> Outcome:
    """`session.execute(statement, parameters)`, its rows fetched."""
    params = parameters or {}
    lists = [len(value) for value in params.values() if isinstance(value, list | tuple)]
    target = await _cursor_of(session)
    # An empty list is SQLAlchemy's to render; a long one, the database thread's to run.
    if target is not None and all(lists) and sum(lists) + len(params) <= INLINE_MAX_VALUES:
        raw, dialect = target
        compiled = _compiled(statement, dialect, frozenset(params))
        if compiled is not None:
            sql = compiled.sql(params)
            cursor = _execute(raw, sql, compiled.values(params), dialect)
            try:
                rows = compiled.rows(cursor.fetchall())
                return Outcome(rows, cursor.rowcount)
            finally:
                cursor.close()
    result = await session.execute(statement, parameters)
    assert isinstance(result, CursorResult)  # a statement, not an ORM query
    rows = [tuple(row) for row in result.all()] if result.returns_rows else []
    return Outcome(rows, result.rowcount)


async def insert(
    session: AsyncSession, statement: Insert, rows: Sequence[Mapping[str, Any]]
) -> Outcome:
    """`session.execute(statement, rows)` for rows with the same keys; with RETURNING, the
    returned rows in no particular order (match them up by a unique column)."""
    if not rows:
        return Outcome([], 0)
    keys = frozenset(rows[0])
    target = await _cursor_of(session)
    # Many rows are the database thread's to insert (see INLINE_MAX_ROWS), counted as the
    # driver counts them: the values of one multi-row INSERT, or the rows of an executemany.
    small = len(rows) <= INLINE_MAX_ROWS and len(rows) * len(keys) <= INLINE_MAX_VALUES
    uniform = small and all(frozenset(row) == keys for row in rows)
    if target is not None and uniform:
        raw, dialect = target
        compiled = _compiled(statement, dialect, keys)
        if compiled is not None:
            sql = compiled.sql({})
            if not compiled.returns_rows:
                cursor = _execute_many(raw, sql, [compiled.values(row) for row in rows], dialect)
                cursor.close()
                return Outcome([], len(rows))
            returned: list[tuple[Any, ...]] = []
            for row in rows:
                cursor = _execute(raw, sql, compiled.values(row), dialect)
                returned.extend(compiled.rows(cursor.fetchall()))
                cursor.close()
            return Outcome(returned, len(rows))
    result = await session.execute(statement, list(rows))
    assert isinstance(result, CursorResult)
    found = [tuple(row) for row in result.all()] if result.returns_rows else []
    return Outcome(found, len(rows))


def _execute(
    raw: sqlite3.Connection, sql: str, values: Sequence[Any], dialect: Dialect
) -> sqlite3.Cursor:
    try:
        return raw.execute(sql, values)
    except sqlite3.Error as error:
        raise _wrapped(sql, error, dialect) from error


def _execute_many(
    raw: sqlite3.Connection, sql: str, values: Sequence[Sequence[Any]], dialect: Dialect
) -> sqlite3.Cursor:
    try:
        return raw.executemany(sql, values)
    except sqlite3.Error as error:
        raise _wrapped(sql, error, dialect) from error


def _wrapped(sql: str, error: sqlite3.Error, dialect: Dialect) -> BaseException:
    """The error SQLAlchemy would have raised (an IntegrityError for a unique key, ...),
    without the parameters: they may be a lead's personal data."""
    return DBAPIError.instance(
        sql, None, error, sqlite3.Error, hide_parameters=True, dialect=dialect
    )
