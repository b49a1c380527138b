"""What every family of tables shares: the tables themselves, values sent in IN (...) lists a
chunk at a time, bulk inserts, and the conflicts a write may raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Executable, Insert, Table, any_, bindparam, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from storage.models import (
    AccountKeyRow,
    AccountRow,
    LeadRow,
    OfferRow,
    OutboxRow,
    RepStateRow,
    TeamStateRow,
)


class Conflict(Exception):
    """Another transaction changed what this one read; route again with fresh state."""


class StateChanged(Conflict):
    """A team's rotation or a rep's open-lead count was not what this transaction read."""


class AlreadyQueued(Exception):
    """Another transaction queued one of these outbox items first (their keys are unique)."""


def repeated_external_id(error: IntegrityError) -> bool:
    """Whether `error` is a lead's external id that another transaction stored first: the
    transaction runs again and finds it stored. Any other violation would only repeat."""
    return "external_id" in str(error.orig)


def skips_locked(session: Session) -> bool:
    """Whether rows another transaction holds are passed over (`FOR UPDATE SKIP LOCKED`) rather
    than waited for: on PostgreSQL, where replicas sweep and claim side by side. SQLite's
    writers never overlap, and it has no such clause."""
    return session.get_bind().dialect.name != "sqlite"


def table_of(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]  # set by table=True


# The statements of every routing transaction are built once, here, with parameters: building
# a statement (and its cache key) cost SQLAlchemy more than SQLite took to run it. They read
# plain rows, not mapped objects, for the same reason.
REPS = table_of(RepStateRow)


TEAMS = table_of(TeamStateRow)


ACCOUNTS = table_of(AccountRow)


ACCOUNT_KEYS = table_of(AccountKeyRow)


LEADS = table_of(LeadRow)


OFFERS = table_of(OfferRow)


OUTBOX = table_of(OutboxRow)


@cache
def insert_into(table: type[SQLModel]) -> Insert:
    return insert(table_of(table))


IN_CHUNK = 500  # values per IN (...) list


Member = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


def _in_list(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))


def _in_array(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


@dataclass(frozen=True, slots=True)
class Membership:
    """A statement asking whether a column's value is one of a list, as each database runs it
    best. SQLite: `IN (?, ?, ...)`, one placeholder per value. PostgreSQL: `= ANY($1)`, the list
    sent as one array, so the statement's text is the same whatever the number of values:
    rendered once, and prepared once per connection, where an IN list of each new length is
    rendered again and prepared again (a round trip of its own)."""

    listed: Executable
    array: Executable

    def on(self, session: Session) -> Executable:
        return self.array if session.get_bind().dialect.name == "postgresql" else self.listed


def membership(build: Callable[[Member], Executable]) -> Membership:
    """`build(member)` once with each form of `member(column, parameter name)`."""
    return Membership(build(_in_list), build(_in_array))


def chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start : start + IN_CHUNK]


def id_chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start : start + IN_CHUNK]


def insert_or_update(session: Session, table: Table) -> Any:
    """An INSERT of `table` that can take `on_conflict_do_update` (or `_do_nothing`), in the
    dialect of `session`'s database: SQLite and PostgreSQL both have one, spelled alike."""
    dialect = session.get_bind().dialect.name
    return (sqlite_insert if dialect == "sqlite" else pg_insert)(table)


def insert_rows(
    *, session: Session, table: type[SQLModel], rows: Sequence[Mapping[str, Any]]
) -> None:
    """One bulk INSERT (executemany)."""
    if rows:
        session.execute(insert_into(table), rows)
