"""Engines and transactions for the two supported databases.

SQLite (the embedded default) is one writer at a time: every transaction starts with
`BEGIN IMMEDIATE`, so a decision's reads and writes are never interleaved with another's, and a
busy timeout makes other processes wait rather than fail. PostgreSQL runs transactions
concurrently; the service layer keeps rotation and capacity right there with compare-and-set
updates (see `storage.repository`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a connection waits for another's lock before failing
# SQLite checkpoints the WAL into the database file on its own (at 1,000 pages, on the
# connection whose COMMIT took it there: never the event loop's). Once all of it is copied the
# next write starts it over, and the file is cut back to this size.
WAL_LIMIT_BYTES = 4 * 1024 * 1024

# PostgreSQL's "deadlock detected" and "could not serialize access": the server rolled the
# transaction back and running it again is safe.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class TransientDatabaseError(Exception):
    """A transaction the database rolled back on its own (deadlock, serialization): retry it."""


@contextmanager
def _transient_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
            raise TransientDatabaseError(str(exc.orig)) from exc
        raise


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
    # A SQLite file: where `run` runs its work (see `SqliteWriter`).
    writer: SqliteWriter | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine statements go through, for event listeners (logging, tests)."""
        engines = [self.engine.sync_engine]
        if self.read_engine is not None:
            engines.append(self.read_engine.sync_engine)
        if self.writer is not None:
            engines.append(self.writer.engine)
        return engines

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with _transient_errors():
            if self.write_lock is None:
                async with self.sessions.begin() as session:
                    yield session
                return
            async with self.write_lock, self.sessions.begin() as session:
                yield session

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one write transaction, committed when it returns and rolled back
        if it raises. `work` is synchronous: it loads, decides and saves without waiting on
        anything but the database, so the whole transaction is one call from the event loop.

        On a SQLite file it runs on the writer's thread (`SqliteWriter`): one hand-over to that
        thread and one back, however many statements it makes. Elsewhere (PostgreSQL, a SQLite
        database in memory) through `AsyncSession.run_sync`, each statement awaited in turn."""
        with _transient_errors():
            if self.writer is not None:
                assert self.write_lock is not None
                return await self.writer.run(self.write_lock, work)
            if self.write_lock is None:
                async with self.sessions.begin() as session:
                    return await session.run_sync(work)
            async with self.write_lock, self.sessions.begin() as session:
                return await session.run_sync(work)

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
            if self.writer is not None:
                assert self.write_lock is not None
                async with self.write_lock:  # not under a transaction still running on it
                    await self.writer.close()
        finally:
            await self.engine.dispose()
            if self.read_engine is not None:
                await self.read_engine.dispose()


class SqliteWriter:
    """SQLite's write transactions of `Database.run`, on one thread of their own.

    A routing transaction is a dozen small statements that SQLite answers in tens of
    microseconds each. Through aiosqlite every statement is three or four hand-overs between the
    event loop and aiosqlite's thread (open a cursor, execute, fetch, close), each a pair of
    thread wake-ups that cost more than the statement: most of the time from a lead's POST to
    its card. Here the whole transaction is one hand-over: a synchronous engine on the standard
    library's sqlite3 (the driver aiosqlite wraps) runs it on this thread, from BEGIN IMMEDIATE
    to COMMIT. The event loop goes on meanwhile, also while a BEGIN waits for another process's
    write lock (up to the busy timeout).
    """

    def __init__(self, url: URL) -> None:
        self.engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
            # One thread, one transaction at a time: one connection is all it ever needs.
            pool_size=1,
            max_overflow=0,
        )
        _sqlite_pragmas(self.engine, immediate=True)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        # Kept open between transactions, on this thread alone: taking it from the pool and
        # giving it back each time cost more than some of the statements.
        self._kept: Connection | None = None
        self._closed = False

    async def run(self, write_lock: asyncio.Lock, work: Callable[[Session], T]) -> T:
        await write_lock.acquire()
        try:
            done = asyncio.get_running_loop().run_in_executor(self.thread, self._run, work)
        except BaseException:
            write_lock.release()
            raise

        def finished(done: asyncio.Future[T]) -> None:
            # Once the thread is done with the transaction, whatever became of the caller: one
            # cancelled meanwhile must not let the next writer in while this one still holds
            # SQLite's lock (it commits or rolls back on its own, and nobody hears of it).
            write_lock.release()
            if not done.cancelled():
                done.exception()

        done.add_done_callback(finished)
        return await asyncio.shield(done)

    def _run(self, work: Callable[[Session], T]) -> T:
        if self._kept is None or self._kept.invalidated:
            if self._kept is not None:
                self._kept.close()
            self._kept = self.engine.connect()
        # SQLAlchemy's "joining a Session into an external transaction": the session works in
        # the connection's transaction, which commits when the block ends, or rolls back.
        with self._kept.begin():
            session = Session(
                self._kept, expire_on_commit=False, join_transaction_mode="rollback_only"
            )
            try:
                result = work(session)
                session.flush()
            finally:
                session.close()
        return result

    def _close(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None
        self.engine.dispose()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self.thread, self._close)
        self.thread.shutdown()


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """hide_parameters: database errors and logs never carry a lead's personal data."""
    url = check_url(url)
    if url.startswith("sqlite"):
        sqlite_options: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            "hide_parameters": True,
        }
        engine = create_async_engine(url, **sqlite_options)
        _sqlite_pragmas(engine.sync_engine, immediate=True)
        reader = create_async_engine(url, **sqlite_options)
        _sqlite_pragmas(reader.sync_engine, immediate=False)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        parsed = make_url(url)
        writer = None
        if parsed.database and parsed.database != ":memory:":
            # A database in memory is one connection's own: the writer's would be another.
            writer = SqliteWriter(parsed.set(drivername="sqlite+pysqlite"))
        return Database(engine, sessions, asyncio.Lock(), read_engine=reader, writer=writer)
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


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    """SQLAlchemy's recipe for SQLite transactions (its SQLite dialect's docs, "Serializable
    isolation"): sqlite3's own BEGIN turned off, ours sent when SQLAlchemy begins one."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
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
            cursor.fetchone()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # IMMEDIATE: a writer takes the write lock before it reads what it will write from.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
