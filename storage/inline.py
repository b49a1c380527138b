"""A SQLite write transaction run on the event loop's thread, without an ORM session.

The routing transaction (`Service.intake`) is a dozen small statements, each answered by SQLite
in tens of microseconds once the transaction holds the write lock (see `storage.sqlite_driver`).
Through an `AsyncSession`, its opening, its connection from the pool and its commit cost more
than all of them together, on the path from a lead's POST to its Slack card. An
`InlineTransaction` is that transaction on one connection kept for it (`Database.lean_transaction`):
BEGIN IMMEDIATE, the statements of `storage.direct` and COMMIT go straight to sqlite3.

What those do not cover (a statement they do not compile, bulk work, the ORM) goes through an
`AsyncSession` made on first need (`session`) and joined to this very transaction on the same
connection, so it sees what the transaction wrote and its work is committed or rolled back with
the rest. Its bulk work goes to the database thread as any session's does, and then so does the
COMMIT (`OneTripConnection.ends_on_thread`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncTransaction

from storage.compiled import Outcome, execute_here, run_here, run_many_here, wrapped
from storage.sqlite_driver import OneTripConnection

BEGIN = "BEGIN IMMEDIATE"


async def executed(
    session: AsyncSession,
    statement: Executable,
    parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
) -> Outcome:
    """`session.execute(statement, parameters)` (one set, or a list of them), its rows fetched:
    the way around the shortcut, for whatever it does not run."""
    result = await session.execute(statement, parameters)
    assert isinstance(result, CursorResult)  # a statement, not an ORM query
    rows = [tuple(row) for row in result.all()] if result.returns_rows else []
    return Outcome(rows, result.rowcount)


class InlineTransaction:
    """One write transaction on `connection`, whose sqlite3 connection `adapted` holds the write
    lock from `begin` until `commit` or `rollback`."""

    def __init__(self, connection: AsyncConnection, adapted: OneTripConnection) -> None:
        self.connection = connection
        self.adapted = adapted
        self.dialect = connection.dialect
        self.info: dict[str, Any] = {}  # as `AsyncSession.info`: what the caller keeps with it
        self._session: AsyncSession | None = None
        self._joined: AsyncTransaction | None = None
        self._ended = False

    def begin(self) -> bool:
        """BEGIN IMMEDIATE if the write lock is free at once; False (and nothing begun) if
        another connection holds it: a session's transaction waits for it."""
        try:
            return self.adapted.begin_here(BEGIN)
        except sqlite3.Error as error:
            raise wrapped(BEGIN, error, self.dialect) from error

    async def run(self, statement: Executable, parameters: Mapping[str, Any] | None) -> Outcome:
        params = parameters or {}
        if self._runs_here():
            outcome = run_here(self.adapted.sqlite_connection, self.dialect, statement, params)
            if outcome is not None:
                return outcome
        return await executed(await self.session(), statement, parameters)

    async def run_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> Outcome:
        if self._runs_here():
            raw = self.adapted.sqlite_connection
            outcome = run_many_here(raw, self.dialect, statement, rows)
            if outcome is not None:
                return outcome
        return await executed(await self.session(), statement, list(rows))

    async def session(self) -> AsyncSession:
        """An ORM session in this transaction, made on first need."""
        if self._ended:
            raise InvalidRequestError("this transaction has ended")
        if self._session is None:
            # SQLAlchemy's own transaction on the connection, for the session to join: it sends
            # no BEGIN, the connection having begun already (`begin_here`).
            self._joined = await self.connection.begin()
            # rollback_only: the session's commit or close leaves the transaction to this
            # object; a failed flush still rolls it back.
            self._session = AsyncSession(
                bind=self.connection, expire_on_commit=False, join_transaction_mode="rollback_only"
            )
        return self._session

    def _runs_here(self) -> bool:
        """Whether a statement may run on sqlite3 here: only in this transaction, still open.
        Otherwise it goes through the session: to flush the objects it has first, or to raise
        as SQLAlchemy does once the session rolled the transaction back (after a failed flush),
        rather than run outside any transaction."""
        if self._ended:
            raise InvalidRequestError("this transaction has ended")
        session, joined = self._session, self._joined
        if session is None:
            return self.adapted.holds_write_lock
        unflushed = session.new or session.dirty or session.deleted
        active = joined is not None and joined.is_active and self.adapted.holds_write_lock
        return active and not unflushed

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.flush()
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _end(self, statement: str) -> None:
        self._ended = True
        session, self._session = self._session, None
        joined, self._joined = self._joined, None
        if session is not None:
            await session.close()  # leaves the transaction alone (rollback_only)
        if self.connection.invalidated:
            # SQLAlchemy closed the connection (a statement cut short by a cancellation), which
            # rolled back whatever it held: nothing is left to end.
            self.adapted.forget_transaction()
            return
        if joined is not None and joined.is_active:
            # The driver ends it, here or (after bulk work) on the database thread.
            await (joined.commit() if statement == "COMMIT" else joined.rollback())
            return
        if self.connection.get_transaction() is not None:
            # SQLAlchemy's transaction, ended by a failure (a flush, a COMMIT) but kept on the
            # connection until rolled back: let go of it, or no session could join again.
            await self.connection.rollback()
            if statement == "COMMIT":
                self._end_here("ROLLBACK")
                raise InvalidRequestError("this transaction was rolled back; nothing committed")
        self._end_here(statement)

    def _end_here(self, statement: str) -> None:
        self.adapted.forget_transaction()
        raw = self.adapted.sqlite_connection
        if raw.in_transaction:
            execute_here(raw, statement, self.dialect)
