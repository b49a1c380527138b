"""Engines and transactions for the two supported databases.

SQLite (the embedded default) is one writer at a time: every transaction starts with
`BEGIN IMMEDIATE`, so a decision's reads and writes are never interleaved with another's, and a
busy timeout makes other processes wait rather than fail. PostgreSQL runs transactions
concurrently; the service layer keeps rotation and capacity right there with compare-and-set
updates (see `storage.repository`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.direct import Tx
from storage.inline import InlineTransaction
from storage.sqlite_driver import BUSY_TIMEOUT_MS, OneTripConnection, OneTripDbapi

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = BUSY_TIMEOUT_MS
# The writer's connections leave checkpoints to `Database` (see `storage.sqlite_driver`): one
# runs on a reading connection's thread once the WAL file has grown past this, as SQLite's own
# would at 1,000 pages. Once all of it is copied, the next write starts the WAL over from its
# beginning, the file cut back to this size (journal_size_limit), so it grows past it again
# only when that much more is written.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024

# PostgreSQL's "deadlock detected" and "could not serialize access": the server rolled the
# transaction back and running it again is safe.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class TransientDatabaseError(Exception):
    """A transaction the database rolled back on its own (deadlock, serialization): retry it."""


def _sqlstate(error: DBAPIError) -> str | None:
    for cause in (error.orig, getattr(error.orig, "__cause__", None)):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


class DatabaseUrlError(ValueError):
    """A DATABASE_URL that cannot be used; `problem` says why without naming the setting."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"DATABASE_URL {problem}")
        self.problem = problem


# The async driver each supported database is reached through, whichever a URL names (the
# `sqlite:///` and `postgresql://` that most guides and hosting providers give name none).
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def check_url(url: str) -> str:
    """The URL as SQLAlchemy wants it, with the async driver, or a DatabaseUrlError saying
    what is accepted."""
    scheme, separator, rest = url.strip().partition("://")
    driver = _ASYNC_DRIVERS.get(scheme.split("+", 1)[0].lower()) if separator else None
    if driver is None:
        raise DatabaseUrlError(
            "must be a SQLite or PostgreSQL URL, such as sqlite:///leads.db or "
            "postgresql://user@host/dbname"
        )
    url = f"{driver}://{rest}"
    try:
        _ = make_url(url).port
    except (ValueError, ArgumentError):
        # Not echoing the URL: it may carry a password.
        raise DatabaseUrlError("is not a valid URL (check the port)") from None
    return url


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # SQLite takes one writer at a time anyway; queueing writers in-process avoids them
    # spinning on the busy timeout against each other.
    write_lock: asyncio.Lock | None = field(default=None)
    # SQLite: a second engine whose transactions BEGIN DEFERRED, so reads (health checks, `why`)
    # run beside a writer under WAL instead of queueing for the write lock.
    read_engine: AsyncEngine | None = None
    wal_path: str | None = None  # SQLite: the WAL file, whose size says when to checkpoint
    _checkpoint: asyncio.Task[None] | None = None
    _checkpointed_at: int = 0  # the WAL file's size after a checkpoint that left some behind
    _end_next_on_thread: bool = False
    # SQLite: the connection inline transactions run on, kept checked out (`lean_transaction`).
    _inline_connection: tuple[AsyncConnection, OneTripConnection] | None = None
    _inline_unavailable: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def inline_connection(self) -> OneTripConnection | None:
        """The connection inline transactions run on, once opened (see `lean_transaction`)."""
        return self._inline_connection[1] if self._inline_connection else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            if self.write_lock is None:
                async with self.sessions() as session, session.begin():
                    yield session
                return
            async with self.write_lock, self._session_transaction() as session:
                yield session
            self._written()
        except DBAPIError as exc:
            if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
                raise TransientDatabaseError(str(exc.orig)) from exc
            raise

    @asynccontextmanager
    async def lean_transaction(self) -> AsyncIterator[Tx]:
        """A write transaction for plain statements (`storage.direct`), committed when the
        block ends and rolled back if it raises. On SQLite, an `InlineTransaction` when it can
        be (see `storage.inline`); otherwise, and on PostgreSQL, `transaction`'s session."""
        if self.write_lock is None:
            async with self.transaction() as session:
                yield session
            return
        async with self.write_lock:
            inline = await self._begin_inline()
            if inline is None:
                async with self._session_transaction() as session:
                    yield session
            else:
                try:
                    yield inline
                except BaseException:
                    await self._abandon(inline)
                    raise
                try:
                    await inline.commit()
                except BaseException:
                    await self._abandon(inline)
                    raise
        self._written()

    @asynccontextmanager
    async def _session_transaction(self) -> AsyncIterator[AsyncSession]:
        """SQLite, holding `write_lock`: a session's write transaction."""
        async with self.sessions() as session, session.begin():
            if self._end_next_on_thread:
                self._end_next_on_thread = False
                connection = await session.connection()
                adapted = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
                if isinstance(adapted, OneTripConnection):
                    adapted.end_on_thread()
            yield session

    async def _begin_inline(self) -> InlineTransaction | None:
        """Holding `write_lock`: an inline transaction begun on the connection kept for them,
        or None where a session's must do: not in WAL mode, the write lock held by another
        process (a session's BEGIN waits for it), or a COMMIT due on the database thread."""
        if self._inline_unavailable or self._end_next_on_thread:
            return None
        if self._inline_connection is not None and not _idle(*self._inline_connection):
            stale, _adapted = self._inline_connection
            self._inline_connection = None
            if not stale.invalidated:  # closed by SQLAlchemy after a cancellation: expected
                log.warning("the connection for inline transactions was left in a transaction")
                await stale.invalidate()  # closing it rolls back, and lets go of the lock
            await stale.close()
        if self._inline_connection is None:
            connection = await self.engine.connect()
            raw = await connection.get_raw_connection()
            adapted: Any = raw.dbapi_connection
            if not isinstance(adapted, OneTripConnection) or not adapted.writes_inline:
                await connection.close()
                self._inline_unavailable = True
                return None
            self._inline_connection = (connection, adapted)
        inline = InlineTransaction(*self._inline_connection)
        return inline if inline.begin() else None

    async def _abandon(self, inline: InlineTransaction) -> None:
        """Roll back; failing that, close the connection (which rolls back whatever it held)
        so that no later transaction finds it half-ended."""
        try:
            await inline.rollback()
        except BaseException:
            log.warning("an inline transaction could not be rolled back; closing its connection")
            self._inline_connection = None
            await inline.connection.invalidate()
            raise

    def _written(self) -> None:
        if self.wal_path is None or (self._checkpoint and not self._checkpoint.done()):
            return
        try:
            size = os.stat(self.wal_path).st_size
        except OSError:
            return  # no WAL file (yet): nothing to copy
        # Past the limit, and grown by a quarter of it since the last checkpoint: a reader
        # that kept the WAL from starting over must not make every write checkpoint again.
        if size > max(CHECKPOINT_WAL_BYTES, self._checkpointed_at + CHECKPOINT_WAL_BYTES // 4):
            self._checkpoint = asyncio.create_task(self.checkpoint())
            self._checkpoint.add_done_callback(_log_failure)

    async def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, as far as no reader still needs it
        (PASSIVE: never waits on anyone), on a reading connection's thread. Writers here wait
        meanwhile, as they would for SQLite's own checkpoint: the WAL starts over only if the
        next write finds all of it copied. That write syncs the WAL's new header to disk, so
        its COMMIT is sent to the database thread (`_end_next_on_thread`)."""
        if self.read_engine is None or self.write_lock is None:
            return
        async with self.write_lock, self.read_engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection  # aiosqlite's connection
            # Read to the end and closed: a statement left open would hold a read snapshot,
            # which keeps the WAL from starting over.
            async with driver.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                ((busy, in_wal, copied),) = await cursor.fetchall()
        if not busy and in_wal == copied:
            # All copied: the next write starts the WAL over and cuts its file back to the
            # limit (journal_size_limit), syncing the new header on the way.
            self._checkpointed_at = 0
            self._end_next_on_thread = True
        elif self.wal_path is not None:
            self._checkpointed_at = os.stat(self.wal_path).st_size

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        engine = self.read_engine or self.engine
        async with AsyncSession(engine, expire_on_commit=False) as session:
            yield session

    async def ping(self) -> bool:
        try:
            # The read engine on SQLite: a health check must not queue behind writers.
            async with (self.read_engine or self.engine).connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def create_tables(self) -> None:
        """For tests and throwaway databases; real ones are migrated (`leadrouter db upgrade`)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)

    async def dispose(self) -> None:
        try:
            if self._checkpoint is not None:  # its failure, if any, is logged already
                await asyncio.gather(self._checkpoint, return_exceptions=True)
            if self._inline_connection is not None and self.write_lock is not None:
                async with self.write_lock:  # not under a transaction still running on it
                    connection, _adapted = self._inline_connection
                    self._inline_connection = None
                    await connection.close()
        finally:
            await self.engine.dispose()
            if self.read_engine is not None:
                await self.read_engine.dispose()


def _idle(connection: AsyncConnection, adapted: OneTripConnection) -> bool:
    """Whether a kept connection is open and in no transaction, as far as SQLAlchemy, the
    driver and SQLite each know: a new inline transaction may begin on it."""
    if connection.invalidated or connection.get_transaction() is not None:
        return False
    if adapted.holds_write_lock or adapted.pending_begin is not None:
        return False
    return not adapted.sqlite_connection.in_transaction


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        # Not fatal: the WAL keeps what was not copied, and the next checkpoint copies it.
        log.warning("WAL checkpoint failed: %s", error)


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """hide_parameters: database errors and logs never carry a lead's personal data."""
    url = check_url(url)
    if url.startswith("sqlite"):
        sqlite_options: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            "hide_parameters": True,
            "module": OneTripDbapi(),
        }
        engine = create_async_engine(url, **sqlite_options)
        _sqlite_pragmas(engine, immediate=True)
        reader = create_async_engine(url, **sqlite_options)
        _sqlite_pragmas(reader, immediate=False)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        database = make_url(url).database
        wal = f"{database}-wal" if database and database != ":memory:" else None
        return Database(engine, sessions, asyncio.Lock(), read_engine=reader, wal_path=wal)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
        # A process that stalls in a transaction (frozen, or cut off mid-way) would hold its
        # rows and its teams' scopes (`storage.locks`) for as long as its connection lived:
        # PostgreSQL ends such a session after a minute and everyone else goes on.
        connect_args={"server_settings": {"idle_in_transaction_session_timeout": "60000"}},
    )
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's own would be a deferred one).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The wait first: switching a new file to WAL takes a lock another connection (the
        # migrations, the writer) may hold at start-up, and without it that fails at once.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Asked first, set only when it is not WAL yet (a new file): setting it takes a lock
        # that a connection opened while another process writes could be refused at once,
        # busy timeout or not, even though the file is long in WAL mode.
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
        if mode != "wal":
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            except Exception:
                # Another connection switching it at the same moment may refuse this one: what
                # counts is that the file is in WAL mode now, whoever put it there.
                cursor.execute("PRAGMA journal_mode")
            mode = str(cursor.fetchone()[0]).lower()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if immediate and mode == "wal" and isinstance(dbapi_connection, OneTripConnection):
            # The writer's connections work on the event loop's thread, where nothing may wait
            # (see `storage.sqlite_driver`): a BEGIN that would wait goes to the database thread
            # instead, and checkpoints to `Database.checkpoint`. Only under WAL: without it, a
            # COMMIT would have to wait for readers.
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={CHECKPOINT_WAL_BYTES}")
            dbapi_connection.writes_inline = True
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # Sent with the transaction's first statement rather than as a trip of its own.
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, OneTripConnection):
            dbapi_connection.begin_with_next_statement(statement, takes_write_lock=immediate)
        else:
            connection.exec_driver_sql(statement)
