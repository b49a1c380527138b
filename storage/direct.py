"""The routing transaction's statements, run straight on SQLite's cursor.

A routing transaction on SQLite is a dozen small statements that SQLite answers in a few dozen
microseconds each, while SQLAlchemy's execution around each one (the async session, compiling
IN lists, processing parameters and rows) cost three to five times that: most of the time from
a lead's POST to its Slack card. So the hot statements of `storage.repository` go through `run`
and `run_many`, over either kind of transaction (`Tx`):

- an `InlineTransaction` (`Database.lean_transaction`, SQLite only), which runs them on its
  sqlite3 connection and has no ORM session unless asked for one (`as_session`);
- an `AsyncSession`: in a write transaction on the event loop's side (`OneTripConnection`,
  which takes the write lock here if the transaction has not yet), they run the same way on the
  session's sqlite3 connection.

Either way they run as SQLAlchemy compiled them, with the type processing SQLAlchemy would apply
(`storage.compiled`). SQLAlchemy's statement events and echo do not see them; SQLite's trace
hook does. Everywhere else they are `session.execute`: PostgreSQL, reading sessions, a session
with unflushed objects, bulk work (`INLINE_MAX_ROWS`), and any statement with parameters this
does not handle. `tests/storage/test_direct.py` holds the ways to the same answers and bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from storage.compiled import Outcome, run_here, run_many_here
from storage.inline import InlineTransaction, executed
from storage.sqlite_driver import OneTripConnection

__all__ = ["InlineTransaction", "Outcome", "Tx", "as_session", "run", "run_many"]

# What the repository's routing functions take: either kind of write transaction.
Tx = AsyncSession | InlineTransaction

_CONNECTION = "storage.direct.connection"  # session.info: (transaction, DBAPI connection, dialect)


async def as_session(tx: Tx) -> AsyncSession:
    """The ORM session to use in `tx`: the session itself, or one joined to the inline
    transaction (made on first need)."""
    if isinstance(tx, InlineTransaction):
        return await tx.session()
    return tx


async def run(
    tx: Tx, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Outcome:
    """`session.execute(statement, parameters)`, its rows fetched."""
    if isinstance(tx, InlineTransaction):
        return await tx.run(statement, parameters)
    target = await _cursor_of(tx)
    if target is not None:
        raw, dialect = target
        outcome = run_here(raw, dialect, statement, parameters or {})
        if outcome is not None:
            return outcome
    return await executed(tx, statement, parameters)


async def run_many(tx: Tx, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> Outcome:
    """`session.execute(statement, rows)` for rows with the same keys: the rows it changed,
    and with RETURNING the returned rows in no particular order (match them up by a unique
    column)."""
    if not rows:
        return Outcome([], 0)
    if isinstance(tx, InlineTransaction):
        return await tx.run_many(statement, rows)
    target = await _cursor_of(tx)
    if target is not None:
        raw, dialect = target
        outcome = run_many_here(raw, dialect, statement, rows)
        if outcome is not None:
            return outcome
    return await executed(tx, statement, list(rows))


async def counts_rows_of_many(tx: Tx) -> bool:
    """Whether `run_many` reports the rows an UPDATE changed over all its rows (SQLite does;
    asyncpg does not)."""
    if isinstance(tx, InlineTransaction):
        return True
    return bool((await tx.connection()).dialect.supports_sane_multi_rowcount)


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
