"""What ran and what was seen: once-per-tick job runs, how far each CRM sync has read, and the keys
of requests already acted on.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Insert, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import CrmCursorRow, JobRunRow, ProcessedRequestRow
from storage.repository.common import table_of


def take_job_run(
    *, session: Session, job: str, due_at: datetime, runner: str, now: datetime
) -> bool:
    """Record that `runner` runs `job`'s tick at `due_at`; False if another replica already did."""
    try:
        with session.begin_nested():
            session.execute(
                insert(JobRunRow).values(job=job, due_at=due_at, runner=runner, started_at=now)
            )
    except IntegrityError:
        return False
    return True


def job_ran(*, session: Session, job: str, due_at: datetime) -> bool:
    """Whether `job`'s tick at `due_at` was taken already, by any replica (`take_job_run`)."""
    found = session.execute(
        select(col(JobRunRow.due_at)).where(
            col(JobRunRow.job) == job, col(JobRunRow.due_at) == due_at
        )
    )
    return found.first() is not None


def previous_job_run(*, session: Session, job: str, before: datetime) -> datetime | None:
    """The tick before `before` at which `job` ran, if any."""
    result = session.execute(
        select(func.max(col(JobRunRow.due_at))).where(
            col(JobRunRow.job) == job, col(JobRunRow.due_at) < before
        )
    )
    value = result.scalar_one_or_none()
    return value if isinstance(value, datetime) else None


@cache
def _remember_request(dialect: str) -> Insert:
    """`remember_request`'s insert for `dialect`, built once: a key stored already is left."""
    requests = table_of(ProcessedRequestRow)
    insert_once = (sqlite_insert if dialect == "sqlite" else pg_insert)(requests).values(
        key=bindparam("b_key"), at=bindparam("b_at")
    )
    return insert_once.on_conflict_do_nothing(index_elements=[requests.c.key]).returning(
        requests.c.key
    )


def remember_request(*, session: Session, key: str, at: datetime) -> bool:
    """Store a request's key; False if it was stored already (the request is a repeat)."""
    statement = _remember_request(session.get_bind().dialect.name)
    stored = session.execute(statement, {"b_key": key[:255], "b_at": at})
    return stored.first() is not None


async def last_job_runs(*, session: AsyncSession) -> dict[str, datetime]:
    """Each job's latest tick that ran."""
    result = await session.execute(
        select(col(JobRunRow.job), func.max(col(JobRunRow.due_at))).group_by(col(JobRunRow.job))
    )
    return {job: at for job, at in result.all() if isinstance(at, datetime)}


async def crm_cursor(*, session: AsyncSession, name: str) -> datetime | None:
    row = await session.get(CrmCursorRow, name)
    return row.watermark if row is not None else None


def move_crm_cursor(*, session: Session, name: str, watermark: datetime, now: datetime) -> None:
    """Move the cursor forward to `watermark` (never back: a slower replica's older page must
    not undo a newer one's progress)."""
    moved = session.execute(
        update(CrmCursorRow)
        .where(col(CrmCursorRow.name) == name, col(CrmCursorRow.watermark) < watermark)
        .values(watermark=watermark, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(CrmCursorRow, name) is None:
        session.add(CrmCursorRow(name=name, watermark=watermark, updated_at=now))
        session.flush()
