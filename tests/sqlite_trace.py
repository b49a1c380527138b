"""What SQLite itself runs: statements seen by SQLite's trace hook on the writer's connections,
whichever way they were sent (through SQLAlchemy's execution or `storage.direct`'s)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from storage.db import Database
from storage.sqlite_driver import OneTripConnection


def sqlite_statements(db: Database) -> list[str]:
    """Every statement run on `db`'s write connections from now on, in order, its white space
    folded to single spaces. The list fills as they run."""
    seen: list[str] = []

    def trace(statement: str) -> None:
        seen.append(" ".join(statement.split()))

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        assert isinstance(dbapi_connection, OneTripConnection)
        dbapi_connection.sqlite_connection.set_trace_callback(trace)

    event.listen(db.engine.sync_engine, "checkout", on_checkout)
    if db.inline_connection is not None:  # kept checked out: no checkout to come
        db.inline_connection.sqlite_connection.set_trace_callback(trace)
    return seen


def opening(statement: str, words: int = 2) -> str:
    """A statement's first words in capitals: "INSERT INTO", "UPDATE OUTBOX", "COMMIT"."""
    return " ".join(statement.split()[:words]).upper()
