"""aiosqlite for SQLAlchemy, with write transactions run on the event loop's thread.

aiosqlite runs each sqlite3 call on its own thread and hands the answer back to the event loop.
SQLAlchemy's stock adapter makes four such trips per statement (open a cursor, execute, fetch
the rows, close the cursor), and on a small virtual machine each trip costs a hundred
microseconds or more of thread wake-ups, while SQLite itself answers in tens. This driver:

- runs a statement in one trip (cursor to closed cursor), and keeps what it returned (rows,
  description, rowcount, lastrowid) on the event loop's side;
- sends BEGIN with the transaction's first statement, and makes no trip for a commit or
  rollback with nothing to end (the pool's reset of a connection already committed);
- makes no trip at all in a write transaction (`BEGIN IMMEDIATE`) once it holds SQLite's write
  lock. Taking the lock is tried at once, without waiting (`busy_timeout` 0 on the writer's
  connections); only when another connection writes does the BEGIN go to the database thread,
  to wait there. Holding the lock under WAL, no statement and no COMMIT waits on anyone, and
  each takes SQLite tens of microseconds: less than a trip would. What could take longer, a
  checkpoint of the WAL into the database file (disk syncs), is left to `Database`, which runs
  it on a reading connection's thread (`wal_autocheckpoint` 0 on the writer's connections).

The connection, its thread and everything else stay aiosqlite's. It leans on
`Connection._execute` (queue a function for the connection's thread) and `Connection._conn`
(the sqlite3 connection), which SQLAlchemy's own adapter also reaches past aiosqlite's public
surface to use; the SQLite tests of the service layer all run through it, so a change there
fails loudly.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]

BUSY_TIMEOUT_MS = 30_000  # how long a connection waits for another's lock before failing
# Bulk work still goes to the database thread, lock held or not: an executemany of more rows, or
# a statement with more values, than these (an import, an upsert of accounts), and then the
# COMMIT that writes it all out. The event loop would stall for its whole length otherwise.
INLINE_MAX_ROWS = 50
INLINE_MAX_VALUES = 500


def _begin_at_once(connection: sqlite3.Connection, begin: str) -> bool:
    """BEGIN without waiting (the connection's busy timeout is 0); False if another connection
    holds the lock it needs."""
    try:
        connection.execute(begin)
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # any of the extended codes
            return False
        raise
    return True


def _begin_waiting(connection: sqlite3.Connection, begin: str) -> None:
    """On the database thread: BEGIN, waiting for the lock up to BUSY_TIMEOUT_MS."""
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        connection.execute(begin)
    finally:
        connection.execute("PRAGMA busy_timeout=0")


def _run(
    connection: sqlite3.Connection,
    begin: str | None,
    operation: str,
    parameters: Any,
    many: bool,
) -> _Outcome:
    """On the database thread: the transaction's BEGIN if it is still to be sent, then the whole
    statement, from cursor to closed cursor."""
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one trip to the database thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor (that would be a trip of its own): the sqlite3 one is made and
        # closed on the database thread by `_run`.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before any insert, as sqlite3's

    async def _async_soft_close(self) -> None:
        return None  # nothing is left open on the database thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        return self._trip(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        return self._trip(operation, seq_of_parameters, many=True)

    def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        raw = connection._conn
        begin, adapted.pending_begin = adapted.pending_begin, None
        try:
            if begin is not None and adapted.begin_takes_write_lock and adapted.writes_inline:
                adapted.take_write_lock_here(begin)
                begin = None
            if adapted.holds_write_lock and not _bulky(parameters, many=many):
                outcome: _Outcome = _run(raw, None, operation, parameters, many)
            else:
                adapted.ends_on_thread |= adapted.holds_write_lock
                outcome = await_(
                    connection._execute(  # type: ignore[no-untyped-call]  # aiosqlite's, untyped
                        _run, raw, begin, operation, parameters, many
                    )
                )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


def _bulky(parameters: Any, *, many: bool) -> bool:
    if many:
        rows = len(parameters)
        return rows > INLINE_MAX_ROWS or (
            rows > 0 and rows * len(parameters[0]) > INLINE_MAX_VALUES
        )
    return parameters is not None and len(parameters) > INLINE_MAX_VALUES


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Two trips fewer per transaction: BEGIN travels with the transaction's first statement
    (`begin_with_next_statement`), and a commit or rollback with nothing to end (a transaction
    that ran no statement, or the pool's reset of a connection already committed) stays here.
    A transaction begun with `takes_write_lock` on a connection that `writes_inline` runs on
    the event loop's thread once it holds the lock (`holds_write_lock`), its COMMIT or ROLLBACK
    included, bulk work aside (`INLINE_MAX_ROWS`)."""

    __slots__ = (
        "begin_takes_write_lock",
        "ends_on_thread",
        "holds_write_lock",
        "pending_begin",
        "writes_inline",
    )
    # mypy reads the base's attribute as exactly its class, not any subclass of it.
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.pending_begin: str | None = None
        self.begin_takes_write_lock = False
        self.holds_write_lock = False
        # This transaction's COMMIT goes to the database thread: it sent bulk work there, or
        # its COMMIT may sync the disk (`end_on_thread`).
        self.ends_on_thread = False
        # Set by whoever opens the connection, once it is in WAL mode with a busy timeout of 0
        # and no automatic checkpoints (see `storage.db`); the module's docstring says why.
        self.writes_inline = False

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for running a statement on the event loop's thread
        while `holds_write_lock` (see `storage.direct`)."""
        raw: sqlite3.Connection = self._connection._conn
        return raw

    def begin_with_next_statement(self, statement: str, *, takes_write_lock: bool) -> None:
        if self.holds_write_lock:
            return  # begun already, by an inline transaction that a session joins (`begin_here`)
        self.pending_begin = statement
        self.begin_takes_write_lock = takes_write_lock

    def take_write_lock_here(self, begin: str) -> None:
        """BEGIN on this thread if the lock is free, else on the database thread, waiting."""
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        if not _begin_at_once(connection._conn, begin):
            await_(connection._execute(_begin_waiting, connection._conn, begin))  # type: ignore[no-untyped-call]
        self.holds_write_lock = True

    def begin_here(self, begin: str) -> bool:
        """For an inline transaction (`storage.inline`): BEGIN on this thread if the write lock
        is free at once; False, with nothing begun, if another connection holds it (a session's
        transaction then waits for it on the database thread). Raises the BEGIN's failure."""
        if not self.writes_inline or self.pending_begin is not None or self.holds_write_lock:
            raise RuntimeError("an inline transaction needs a connection in WAL mode, idle")
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        if not _begin_at_once(connection._conn, begin):
            return False
        self.holds_write_lock = True
        return True

    def try_take_write_lock(self) -> bool:
        """For a caller on the event loop (`storage.direct`): whether this connection's
        transaction holds the write lock, taking it first if its BEGIN IMMEDIATE is still to go
        and the lock is free. Otherwise nothing changes: the BEGIN goes with the next statement
        through SQLAlchemy, which waits for the lock on the database thread, and reports a
        failure and cleans up after one (or after a cancellation) as for any statement."""
        begin = self.pending_begin
        if begin is None or not self.begin_takes_write_lock or not self.writes_inline:
            return self.holds_write_lock
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            if not _begin_at_once(connection._conn, begin):
                return False
        except sqlite3.Error:
            return False  # SQLAlchemy's BEGIN will meet it again, and report it
        self.pending_begin = None
        self.holds_write_lock = True
        return True

    def end_on_thread(self) -> None:
        """Send this transaction's COMMIT to the database thread: the first write after a
        checkpoint starts the WAL over, and SQLite syncs its new header to disk then."""
        self.ends_on_thread = True

    def close(self) -> None:
        self.forget_transaction()
        super().close()

    def terminate(self) -> None:
        self.forget_transaction()
        super().terminate()

    def forget_transaction(self) -> None:
        """Clear what this object knows of the transaction (ended, or the connection closed)."""
        self.pending_begin = None
        self.holds_write_lock = self.ends_on_thread = False

    def commit(self) -> None:
        self._end(super().commit, "COMMIT")

    def rollback(self) -> None:
        self._end(super().rollback, "ROLLBACK")

    def _end(self, on_thread: Callable[[], None], statement: str) -> None:
        here = self.holds_write_lock and not self.ends_on_thread
        self.holds_write_lock = self.ends_on_thread = False
        if self._nothing_to_end():
            return
        if not here:
            on_thread()
            return
        try:
            self.sqlite_connection.execute(statement)
        except Exception as error:
            self._handle_exception(error)

    def _nothing_to_end(self) -> bool:
        if self.pending_begin is not None:
            self.pending_begin = None  # the transaction never reached the database
            return True
        raw = self._connection._connection  # aiosqlite's own sqlite3 connection
        # Read on this thread: sqlite3 lets any thread read `in_transaction`, and nothing runs
        # on this connection meanwhile (SQLAlchemy uses a connection from one place at a time).
        return raw is not None and not raw.in_transaction


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """Hand to `create_async_engine(..., module=OneTripDbapi())` for a sqlite+aiosqlite URL."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        # Made on the database thread, used from the event loop's too (one at a time).
        kwargs["check_same_thread"] = False
        stock = super().connect(*args, **kwargs)
        return OneTripConnection(self, stock._connection)
