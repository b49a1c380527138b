"""What a database is sent: every statement through any of its engines, as SQLAlchemy's events
see them (every statement goes through SQLAlchemy's execution, BEGIN included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from storage.db import Database


def sqlite_statements(db: Database) -> list[str]:
    """Every statement sent on `db`'s writing engines from now on, in order, its white space
    folded to single spaces, and COMMIT and ROLLBACK where a transaction ends. The list fills
    as they run."""
    seen: list[str] = []
    reader = db.read_engine.sync_engine if db.read_engine is not None else None

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    for engine in db.sync_engines:
        if engine is reader:
            continue
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", lambda _conn: seen.append("COMMIT"))
        event.listen(engine, "rollback", lambda _conn: seen.append("ROLLBACK"))
    return seen


def opening(statement: str, words: int = 2) -> str:
    """A statement's first words in capitals: "INSERT INTO", "UPDATE OUTBOX", "COMMIT"."""
    return " ".join(statement.split()[:words]).upper()
