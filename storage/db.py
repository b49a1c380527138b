"""Engines and transactions for the two supported databases, through SQLAlchemy's public API.

Reads go through an `AsyncSession` (`Database.reading`); every write is a synchronous unit of
work run in one transaction by `Database.run` (see there for where it runs).

SQLite (the embedded default) is one writer at a time: every write transaction starts with
`BEGIN IMMEDIATE`, so a decision's reads and writes are never interleaved with another's, and a
busy timeout makes other processes wait rather than fail. PostgreSQL runs transactions
concurrently; the service layer keeps rotation and capacity right there with compare-and-set
updates (see `storage.repository`).

One module past 400 lines, on purpose: everything here is how a transaction meets its
database (the engines and their pools, the two ways a write runs, and the errors that say a
database is busy or out of reach), and each part is read with the others.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError, OperationalError
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
# A PostgreSQL connection back from the pool is pinged first only if it sat unused this long.
PING_AFTER_IDLE_S = 1.0

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


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached just now: down, starting or stopping, out of connection
    slots, or the connection lost under a statement (rolled back). Nothing was wrong with what
    was asked; asked again in a moment it may well work. A `ConnectionError`, so that whatever
    handles a connection that fails (the CLI's commands) handles this one too."""


# PostgreSQL shutting down or starting up, or out of connection slots.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or _sqlstate(error) in _UNAVAILABLE_SQLSTATES
    # Refused: no server there to connect to (the driver's connect raises it as it is). Not
    # any ConnectionError: work in a transaction may talk to a pipe (a replay's second
    # process), whose breaking says nothing about the database.
    if isinstance(error, ConnectionRefusedError):
        return True
    return getattr(error, "sqlstate", None) in _UNAVAILABLE_SQLSTATES  # the driver's own, raw


@contextmanager
def _unavailable_as_such() -> Iterator[None]:
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if _unavailable(exc):
            reached = f"the database cannot be reached ({type(exc).__name__})"
            raise DatabaseUnavailable(reached) from exc
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
    """Reads through `reading` (an AsyncSession), every write through `run` (a synchronous
    unit of work, the whole transaction in one go)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # SQLite takes one writer at a time anyway; queueing writers in-process avoids them
    # spinning on the busy timeout against each other.
    write_lock: asyncio.Lock | None = field(default=None)
    # A SQLite file: where `run` runs its work (see `SqliteWriter`).
    writer: SqliteWriter | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def url(self) -> str:
        """The URL this database was opened with, password included: for another process of
        this program to open it too (never for a log or a message)."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def shareable(self) -> bool:
        """Whether another process can open this database (a SQLite database in memory is this
        process's alone)."""
        database = self.engine.url.database
        return not self.is_sqlite or (
            bool(database)
            and database != ":memory:"
            and ("mode=memory" not in str(self.engine.url))
        )

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine statements go through, for event listeners (logging, tests)."""
        engines = [self.engine.sync_engine]
        if self.writer is not None:
            engines += [self.writer.engine, self.writer.quick_engine]
        return engines

    async def run(self, work: Callable[[Session], T], *, quick: bool = False) -> T:
        """`work(session)` in one write transaction, committed when it returns and rolled back
        if it raises. `work` is synchronous: it loads, decides and saves without waiting on
        anything but the database, so the whole transaction is one call from the event loop.

        On a SQLite file (`SqliteWriter`) it runs on the writer's thread, one hand-over there and
        one back however many statements it makes; a `quick` one (a few statements over a few
        rows: a lead, a card) on the event loop's thread, with no hand-over at all, unless
        another process holds SQLite's write lock. Elsewhere (PostgreSQL, a SQLite database in
        memory) through `AsyncSession.run_sync`, each statement awaited in turn."""
        with _unavailable_as_such(), _transient_errors():
            if self.writer is not None:
                assert self.write_lock is not None
                return await self.writer.run(self.write_lock, work, quick=quick)
            if self.write_lock is None:
                async with self.sessions.begin() as session:
                    return await session.run_sync(work)
            async with self.write_lock, self.sessions.begin() as session:
                return await session.run_sync(work)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads. On SQLite its transactions BEGIN DEFERRED, so that reads (health
        checks, `why`) run beside a writer under WAL instead of queueing for the write lock."""
        with _unavailable_as_such():
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
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


class SqliteWriter:
    """SQLite's write transactions of `Database.run`: synchronous, through SQLAlchemy's engine
    on the standard library's sqlite3 (the driver aiosqlite wraps), each in one go from BEGIN
    IMMEDIATE to COMMIT.

    A routing transaction is a dozen small statements that SQLite answers in tens of
    microseconds each. Through aiosqlite every statement is three or four hand-overs between the
    event loop and aiosqlite's thread (open a cursor, execute, fetch, close), each a pair of
    thread wake-ups that cost more than the statement: most of the time from a lead's POST to
    its card. Here a transaction is at most one hand-over, to the writer's thread, and none for
    a quick one (`Database.run`) when SQLite's write lock is free: holding it under WAL, no
    statement and no COMMIT waits on anyone, so it runs on the event loop's thread, on a
    connection that does not wait for the lock either (busy timeout 0). When another process
    holds the lock, its BEGIN fails at once and it runs on the writer's thread instead, whose
    connection waits for the lock (up to the busy timeout) while the event loop goes on.
    """

    def __init__(self, url: URL) -> None:
        self.engine = _writing_engine(url, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        self.quick_engine = _writing_engine(url, busy_timeout_ms=0)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        # One connection of each engine kept open between transactions, the writer's thread's
        # and the event loop's: taking it from the pool and giving it back each time cost more
        # than some of the statements.
        self._kept: dict[Engine, Connection] = {}
        self._closed = False

    async def run(
        self, write_lock: asyncio.Lock, work: Callable[[Session], T], *, quick: bool
    ) -> T:
        if quick:
            async with write_lock:
                try:
                    return self._run_in(self.quick_engine, work)
                except _LockHeldElsewhere:
                    pass
        return await self._run_on_thread(write_lock, work)

    async def _run_on_thread(self, write_lock: asyncio.Lock, work: Callable[[Session], T]) -> T:
        await write_lock.acquire()
        try:
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self.thread, self._run_in, self.engine, work)
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

    def _run_in(self, engine: Engine, work: Callable[[Session], T]) -> T:
        """`work` in a transaction on `engine`'s kept connection, on the caller's thread."""
        connection = self._connection(engine)
        try:
            transaction = connection.begin()
        except OperationalError as error:
            self._give_back(engine)  # its BEGIN failed inside SQLAlchemy's own
            if engine is self.quick_engine and _busy(error):
                raise _LockHeldElsewhere from None
            raise
        try:
            with transaction:
                return _joined(connection, work)
        except BaseException:
            self._give_back(engine)
            raise

    def _connection(self, engine: Engine) -> Connection:
        kept = self._kept.get(engine)
        if kept is None or kept.invalidated:
            self._give_back(engine)
            kept = self._kept[engine] = engine.connect()
        return kept

    def _give_back(self, engine: Engine) -> None:
        """After a failure, the kept connection goes back to the pool, whose reset rolls back
        whatever SQLite may still hold (a COMMIT that failed leaves SQLite's transaction open
        and SQLAlchemy's ended), and the next transaction takes a fresh one."""
        kept = self._kept.pop(engine, None)
        if kept is not None:
            kept.close()

    def _close_there(self) -> None:
        self._give_back(self.engine)
        self.engine.dispose()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._give_back(self.quick_engine)
        self.quick_engine.dispose()
        await asyncio.get_running_loop().run_in_executor(self.thread, self._close_there)
        self.thread.shutdown()


class _LockHeldElsewhere(Exception):
    """SQLite's write lock is another process's: a quick transaction goes to the thread."""


def _writing_engine(url: URL, *, busy_timeout_ms: int) -> Engine:
    engine = create_engine(
        url,
        hide_parameters=True,
        # One transaction at a time, on a connection kept open: one is all it ever needs.
        pool_size=1,
        max_overflow=0,
    )
    _sqlite_pragmas(engine, immediate=True, busy_timeout_ms=busy_timeout_ms)
    return engine


def _joined(connection: Connection, work: Callable[[Session], T]) -> T:
    """`work` in a session joined to `connection`'s transaction (SQLAlchemy's "joining a
    Session into an external transaction"): the transaction commits when its block ends."""
    session = Session(connection, expire_on_commit=False, join_transaction_mode="rollback_only")
    try:
        result = work(session)
        session.flush()
    finally:
        session.close()
    return result


def _busy(error: OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (any of SQLITE_BUSY's codes)."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def open_database(
    url: str, *, pool_size: int = 10, ping_after_idle_s: float = PING_AFTER_IDLE_S
) -> Database:
    """hide_parameters: database errors and logs never carry a lead's personal data."""
    url = check_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, hide_parameters=True)
        _sqlite_pragmas(engine.sync_engine, immediate=False)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        parsed = make_url(url)
        writer = None
        if parsed.database and parsed.database != ":memory:":
            # A database in memory is one connection's own: the writer's would be another.
            writer = SqliteWriter(parsed.set(drivername="sqlite+pysqlite"))
        return Database(engine, sessions, asyncio.Lock(), writer=writer)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        hide_parameters=True,
        # A process that stalls in a transaction (frozen, or cut off mid-way) would hold its
        # rows and its teams' scopes (`storage.locks`) for as long as its connection lived:
        # PostgreSQL ends such a session after a minute and everyone else goes on.
        connect_args={"server_settings": {"idle_in_transaction_session_timeout": "60000"}},
    )
    _ping_after_idle(engine.sync_engine, ping_after_idle_s)
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before use only when it sat unused for `idle_s` or more.

    SQLAlchemy's `pool_pre_ping` pings at every checkout, and on asyncpg a ping is three round
    trips (BEGIN, an empty query, ROLLBACK): under load that was more than a sixth of a routing
    transaction's. A connection used a moment ago is alive unless the server went down and came
    back within that moment; one that sat longer may have been cut by a restart, a failover or
    a firewall, and is pinged, and if the ping fails the pool connects afresh (an
    `InvalidatePoolError` from a checkout: every kept connection is replaced). A fresh
    connection is not pinged."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # What cut this one (a restart, a failover) cut every other kept connection too: the
            # whole pool is replaced, not each connection after a failed ping of its own.
            raise InvalidatePoolError("a pooled connection did not answer its ping") from exc


def _sqlite_pragmas(
    engine: Engine, *, immediate: bool, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # IMMEDIATE: a writer takes the write lock before it reads what it will write from.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
