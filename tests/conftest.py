"""Fixtures shared by every test directory: the PostgreSQL server."""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest

from tests.pg import PostgresDidNotStart, PostgresServer, missing_binaries, start_postgres


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
