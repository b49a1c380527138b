"""Database migrations (Alembic), applied by `leadrouter serve` at start and by
`leadrouter db upgrade`.

The scripts live in `storage/migrations/versions/`. After changing `storage/models.py`, write the
next one with `revision(url_of_a_database_at_head, "what changed")`, which autogenerates it, and
read it before committing: `tests/storage/test_migrations.py` fails while models and migrations
disagree.
"""

from __future__ import annotations

import asyncio
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import SQLITE_BUSY_TIMEOUT_MS, check_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would read a "%" in a password as a placeholder.
    config.set_main_option("sqlalchemy.url", check_url(url).replace("%", "%%"))
    return config


def _in_own_thread(work: Any) -> None:
    """Alembic's async environment runs its own event loop, which cannot nest inside a running
    one (as in `serve`); a short-lived thread gives it a loop of its own either way."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed back to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="migrations")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (idempotent). Replicas starting together
    on a new database take turns: the first migrates, the others find it done. PostgreSQL
    holds an advisory lock for the migration's transaction (`migrations/env.py`); SQLite
    holds a lock on a file beside the database, as no transaction there covers Alembic's
    reading of the version table and its first CREATE."""
    with _sqlite_migration_lock(url):
        _in_own_thread(lambda: command.upgrade(_config(url), revision))
        _use_wal(url)


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    with open(f"{path}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_path(url: str) -> str | None:
    parsed = make_url(check_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _use_wal(url: str) -> None:
    """SQLite: put the file in WAL mode here, once, before anything serves from it. Left to the
    server's first connections, two of them switching a new file at the same moment could
    refuse each other ("database is locked"), busy timeout or not."""
    path = _sqlite_path(url)
    if path is None:
        return
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as raw:
        raw.execute("PRAGMA journal_mode=WAL")


def revision(url: str, message: str) -> None:
    """Autogenerate a migration from the difference between the models and the database."""
    _in_own_thread(lambda: command.revision(_config(url), message=message, autogenerate=True))


def head() -> str | None:
    """The revision the code's models are at: the newest migration script's."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def known(revision: str) -> bool:
    """Whether `revision` is one of this code's migrations (a database a newer release
    migrated is at one it does not have)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def current(url: str) -> str | None:
    """The revision the database is at (None for a database never migrated)."""
    found: list[str | None] = []

    async def read() -> None:
        engine = create_async_engine(check_url(url))
        try:
            async with engine.connect() as connection:
                found.append(
                    await connection.run_sync(
                        lambda sync: MigrationContext.configure(sync).get_current_revision()
                    )
                )
        finally:
            await engine.dispose()

    _in_own_thread(lambda: asyncio.run(read()))
    return found[0]
