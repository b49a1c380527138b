"""What a database is sent: every statement through any of its engines, as SQLAlchemy's events
see them (every statement goes through SQLAlchemy's execution, BEGIN included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from storage.db import Database


def sqlite_statements(db: Database) -> list[str]:
    """Every statement sent on `db`'s writing engines from now on, in order, its white space
    folded to single spaces, and COMMIT and ROLLBACK where a transaction ends. The list fills
    as they run."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    for engine in writing_engines(db):
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", lambda _conn: seen.append("COMMIT"))
        event.listen(engine, "rollback", lambda _conn: seen.append("ROLLBACK"))
    return seen


def writing_engines(db: Database) -> list[Engine]:
    """The engines `db` writes through (on SQLite, its writer's; elsewhere its one engine)."""
    if db.writer is not None:
        return [db.writer.engine, db.writer.quick_engine]
    return db.sync_engines


def opening(statement: str, words: int = 2) -> str:
    """A statement's first words in capitals: "INSERT INTO", "UPDATE OUTBOX", "COMMIT"."""
    return " ".join(statement.split()[:words]).upper()
