"""Fixtures shared by every test directory: the PostgreSQL server, a database on it."""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from storage.db import Database, open_database
from tests.bot.test_serve import Servers
from tests.pg import PostgresDidNotStart, PostgresServer, missing_binaries, start_postgres

# Properties are checked on what the code returns, never on how long one example took: a machine
# busy with other work can pause a test for longer than hypothesis's default 200 ms deadline.
settings.register_profile("leadrouter", deadline=None)
settings.load_profile("leadrouter")


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """Put the root logger back as it was before the test.

    A command run in-process (typer's CliRunner) may configure logging (`serve`, `db upgrade`),
    giving the root logger a handler on the runner's stderr, which the runner closes once the
    command returns. A later test's log line would then go to that closed stream, and logging
    would print its own traceback into that test's stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
async def no_stray_tasks() -> AsyncIterator[None]:
    """Cancel the tasks a test leaves behind, before its event loop closes.

    Bolt runs each listener as a task of its own after the ack, so a test can end while one is
    still finishing. The loop's own shutdown cancels such a task once; one whose cleanup awaits
    again (a database session rolling back) would then keep the loop, and CI, waiting forever.
    Here it is cancelled until it ends, and named in the log when once was not enough."""
    yield
    me = asyncio.current_task()
    for attempt in range(5):
        stray = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
        if not stray:
            return
        if attempt:
            logging.getLogger("tests").warning("tasks still running after cancel: %s", stray)
        for task in stray:
            task.cancel()
        await asyncio.wait(stray, timeout=2)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, started on first use and stopped at the end.

    Skipped only where PostgreSQL is not installed; a server that is installed but will not
    start fails the tests that need it, with its log, so CI cannot go green without them.
    """
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"PostgreSQL is not installed here ({', '.join(missing)} not on PATH); "
            "install PostgreSQL 15 or newer to run these tests against it"
        )
    problem = None
    try:
        server = start_postgres()
    except PostgresDidNotStart as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    # Also at exit, should pytest end without running session teardown.
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def restartable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, for a test that restarts it (the session's
    server must never be); skipped and failed as `postgres_server` is."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"PostgreSQL is not installed here ({', '.join(missing)} not on PATH)")
    try:
        server = start_postgres()
    except PostgresDidNotStart as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database of this test's own (no tables yet)."""
    name = await postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        await postgres_server.drop_database(name)


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    """A fresh PostgreSQL database of this test's own, its tables made."""
    db = open_database(postgres_url)
    try:
        await db.create_tables()
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on each supported database, tables made: the directory's `sqlite_db`, or
    `postgres_db`. Looked up by name, not declared, so that a run of SQLite tests alone never
    starts PostgreSQL."""
    database: Database = request.getfixturevalue(f"{request.param}_db")
    return database


@pytest.fixture
async def replica_db(db: Database) -> AsyncIterator[Database]:
    """A second replica's (another process's) view of `db`: its own engine, connections and
    (SQLite) write lock."""
    other = open_database(db.engine.url.render_as_string(hide_password=False))
    try:
        yield other
    finally:
        await other.dispose()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """`leadrouter serve` processes started by a test, stopped when it ends."""
    started = Servers(tmp_path)
    yield started
    started.stop_all()
