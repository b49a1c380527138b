"""Deleting what the housekeeping tables no longer need, one bounded batch per call.

These tables grow with use and are read only while their rows are young:

- `processed_requests`: keys of requests already acted on, so that a retry is answered once;
- `outbox`: items done or given up (an item still to be carried out is never deleted);
- `job_runs`: once-per-tick records. Each job's latest run is kept whatever its age: the
  scheduler tells the next tick apart from it, and a digest covers the time since it;
- `audit_events`: the explanation history. The rows of a lead still live (being routed,
  offered, claimed or queued) are kept whatever their age;
- `dashboard_sign_outs`: dashboard sessions signed out, of no use once those sessions have
  expired: their age is counted from that expiry.

`delete_old` deletes at most `limit` rows in the caller's transaction, so that the caller
commits between batches and a first prune of a large table never holds its locks for long.
The rows are picked by a subquery (`DELETE ... WHERE key IN (SELECT key ... LIMIT n)`), which
SQLite and PostgreSQL both run. On PostgreSQL the subquery passes over rows another replica is
deleting (`SKIP LOCKED`), so replicas pruning at once split the rows instead of waiting on
each other, and each counts only the rows it deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Delete, FromClause, Table, delete, exists, select, tuple_
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from storage.models import (
    AuditEventRow,
    DashboardSignOutRow,
    JobRunRow,
    LeadRow,
    LeadStatus,
    OutboxRow,
    ProcessedRequestRow,
)


class Housekeeping(StrEnum):
    """The tables retention prunes, named as an admin reads them in the log."""

    REQUEST_KEYS = "request keys"
    OUTBOX = "finished outbox items"
    JOB_RUNS = "job runs"
    AUDIT = "audit rows"
    SIGN_OUTS = "dashboard sign-outs"


# A lead in one of these may still be explained (`/routing why`, its card): its audit rows stay.
LIVE_LEAD_STATUSES = (
    LeadStatus.NEW.value,
    LeadStatus.OFFERED.value,
    LeadStatus.CLAIMED.value,
    LeadStatus.QUEUED.value,
)


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]  # set by table=True


_REQUESTS = _table(ProcessedRequestRow)
_OUTBOX = _table(OutboxRow)
_JOB_RUNS = _table(JobRunRow)
_AUDIT = _table(AuditEventRow)
_LEADS = _table(LeadRow)
_SIGN_OUTS = _table(DashboardSignOutRow)


def delete_old(
    *,
    session: Session,
    what: Housekeeping,
    before: datetime,
    limit: int,
) -> int:
    """Delete up to `limit` rows of `what` older than `before`; how many this call deleted.
    Fewer than `limit` means none was left (but for rows another replica was deleting)."""
    deleted = 0
    skip_locked = session.get_bind().dialect.name != "sqlite"  # see the module's docstring
    for old in _old_rows(what, before):
        statement = old.delete(limit=limit - deleted, skip_locked=skip_locked)
        result = session.execute(statement)
        deleted += result.rowcount  # type: ignore[attr-defined]
        if deleted >= limit:
            break
    return deleted


@dataclass(frozen=True, slots=True)
class _OldRows:
    """Rows of `table` to delete: those of its alias `old` (so that the subquery does not
    correlate with the outer DELETE) that meet `where`, by primary key (`keys`)."""

    table: Table
    old: FromClause
    keys: tuple[str, ...]
    where: tuple[ColumnElement[bool], ...]

    def delete(self, *, limit: int, skip_locked: bool) -> Delete:
        picked = select(*(self.old.c[key] for key in self.keys)).where(*self.where).limit(limit)
        if skip_locked:
            picked = picked.with_for_update(skip_locked=True, of=self.old)
        columns = [self.table.c[key] for key in self.keys]
        target = tuple_(*columns) if len(columns) > 1 else columns[0]
        return (
            delete(self.table)
            .where(target.in_(picked))
            .execution_options(synchronize_session=False)
        )


def _old_rows(what: Housekeeping, before: datetime) -> list[_OldRows]:
    if what is Housekeeping.REQUEST_KEYS:
        old = _REQUESTS.alias("old")
        return [_OldRows(_REQUESTS, old, ("key",), (old.c.at < before,))]
    if what is Housekeeping.OUTBOX:
        old = _OUTBOX.alias("old")
        # Two statements rather than one OR: `done_at` leads an index; given-up items are few.
        return [
            _OldRows(_OUTBOX, old, ("id",), (old.c.done_at < before,)),
            _OldRows(_OUTBOX, old, ("id",), (old.c.failed_at < before,)),
        ]
    if what is Housekeeping.JOB_RUNS:
        old, later = _JOB_RUNS.alias("old"), _JOB_RUNS.alias("later")
        superseded = exists().where(later.c.job == old.c.job, later.c.due_at > old.c.due_at)
        return [_OldRows(_JOB_RUNS, old, ("job", "due_at"), (old.c.due_at < before, superseded))]
    if what is Housekeeping.SIGN_OUTS:
        old = _SIGN_OUTS.alias("old")
        return [_OldRows(_SIGN_OUTS, old, ("key",), (old.c.expires_at < before,))]
    old = _AUDIT.alias("old")
    live = exists().where(_LEADS.c.id == old.c.lead_id, _LEADS.c.status.in_(LIVE_LEAD_STATUSES))
    return [_OldRows(_AUDIT, old, ("id",), (old.c.at < before, ~live))]
