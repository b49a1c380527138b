"""Retention deletes housekeeping rows past their age, batch by batch, and never what is still
needed: young rows, rows still to be carried out, each job's latest run, the explanations of
leads still open."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.jobs import RETENTION, declare_jobs
from bot.policy_file import load_policy
from bot.retention import Retention
from bot.service.availability import set_out_of_office
from bot.service.crm import queue_crm_contacts
from bot.service.digests import queue_digest
from bot.service.intake import find_lead, intake
from bot.service.kinds import OutboxKind
from bot.service.offers import claim
from bot.service.requests import first_time
from bot.service.retention import prune
from bot.service.sign_outs import sign_out, sign_out_everywhere, signed_out
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from routing.policy import Policy
from storage import repository as repo
from storage.db import Database
from storage.models import (
    AuditEventRow,
    DashboardSignOutRow,
    JobRunRow,
    OutboxRow,
    ProcessedRequestRow,
)
from storage.retention import Housekeeping, delete_old
from tests.service.conftest import TUESDAY, Clock
from tests.service.support import TRIO_POLICY, audit_of, count_rows, new_lead, write_policy

# Free e-mail is nurtured (a lead no longer open); leads from partners wait in a queue.
POLICY = (
    TRIO_POLICY.replace(
        "rules:\n",
        "rules:\n  - name: Partners\n    when: {source: partner}\n    assign: queue\n",
    )
    + "qualify:\n  - name: Free email\n    when: {email_domain_type: free}\n    outcome: nurture\n"
)
DEFAULTS = Retention(request_keys=7, outbox=30, job_runs=30, audit=400)
FOREVER = Retention(request_keys=None, outbox=None, job_runs=None, audit=None)
TABLES = (ProcessedRequestRow, OutboxRow, JobRunRow, AuditEventRow)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, POLICY))


@pytest.fixture
def uow(db: Database, policy: Policy, clock: Clock) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


async def request_keys(db: Database) -> set[str]:
    async with db.reading() as session:
        return set((await session.execute(select(col(ProcessedRequestRow.key)))).scalars())


async def outbox_keys(db: Database) -> set[str]:
    async with db.reading() as session:
        return set((await session.execute(select(col(OutboxRow.dedupe_key)))).scalars())


async def job_runs(db: Database) -> set[tuple[str, datetime]]:
    async with db.reading() as session:
        rows = await session.execute(select(col(JobRunRow.job), col(JobRunRow.due_at)))
        return {(job, due_at) for job, due_at in rows.all()}


async def audit_kinds_of_no_lead(db: Database) -> list[str]:
    async with db.reading() as session:
        rows = await session.execute(
            select(col(AuditEventRow.kind)).where(col(AuditEventRow.lead_id).is_(None))
        )
        return list(rows.scalars())


async def run_job(db: Database, clock: Clock, *, job: str, due_at: datetime) -> None:
    now = clock()
    assert await db.run(
        lambda session: repo.take_job_run(
            session=session, job=job, due_at=due_at, runner="test", now=now
        )
    )


async def hubspot_contacts(uow: UnitOfWork, clock: Clock, **ends: str | None) -> None:
    """Queue one HubSpot contact item per keyword, then end each as its value says: "done",
    "given up", or None (left to be carried out)."""
    await queue_crm_contacts(uow, list(ends))
    now = clock()
    claimed = await uow.db.run(
        lambda session: repo.claim_outbox(
            session=session,
            kinds=[OutboxKind.HUBSPOT_CONTACT],
            now=now,
            until=now + timedelta(days=365),  # items left pending are not taken again
            token="attempt",
            limit=len(ends),
        )
    )
    assert len(claimed) == len(ends)

    def end_them(session: Session) -> None:
        for taken in claimed:
            end = ends[taken.item.payload["contact_id"]]
            if end is not None:
                assert repo.finish_outbox(
                    session=session,
                    item_id=taken.item.id or 0,
                    token="attempt",
                    now=now,
                    error=None if end == "done" else "HubSpot says the contact is gone",
                )

    await uow.db.run(end_them)


async def test_request_keys_older_than_their_retention_are_forgotten_and_younger_ones_kept(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    for key in ("event:old-1", "event:old-2"):
        assert await first_time(uow, key)
    clock.advance(days=5)
    assert await first_time(uow, "event:young")
    clock.advance(days=2, seconds=1)  # the old keys are 7 days and a second old

    deleted = await prune(uow, DEFAULTS)

    assert deleted[Housekeeping.REQUEST_KEYS] == 2
    assert await request_keys(db) == {"event:young"}
    assert not await first_time(uow, "event:young")  # still a repeat
    assert await first_time(uow, "event:old-1")  # forgotten: taken as new


async def test_finished_outbox_items_are_deleted_after_their_retention_and_pending_ones_never(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await hubspot_contacts(uow, clock, **{"101": "done", "102": "given up", "103": None})
    clock.advance(days=29)
    await hubspot_contacts(uow, clock, **{"201": "done", "202": "given up"})
    clock.advance(days=1, seconds=1)

    deleted = await prune(uow, DEFAULTS)

    assert deleted[Housekeeping.OUTBOX] == 2
    assert await outbox_keys(db) == {
        "hubspot-contact:103",  # 30 days old, but still to be carried out
        "hubspot-contact:201",
        "hubspot-contact:202",
    }


async def test_each_jobs_latest_run_is_kept_however_old_it_is(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    days_ago = [100, 60, 40, 3, 2]
    for ago in days_ago:
        await run_job(db, clock, job="digest:mia", due_at=TUESDAY - timedelta(days=ago))
    for ago in (90, 45):  # a job that stopped: its last run is old
        await run_job(db, clock, job="digest:ned", due_at=TUESDAY - timedelta(days=ago))

    deleted = await prune(uow, DEFAULTS)

    assert deleted[Housekeeping.JOB_RUNS] == 4
    assert await job_runs(db) == {
        ("digest:mia", TUESDAY - timedelta(days=3)),
        ("digest:mia", TUESDAY - timedelta(days=2)),
        ("digest:ned", TUESDAY - timedelta(days=45)),
    }
    # The tick already run is still told apart from a new one.
    assert not await queue_digest(uow, "mia", due_at=TUESDAY - timedelta(days=2), runner="r")


async def test_audit_rows_of_leads_still_open_are_kept_however_old_they_are(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, new_lead("OFFERED"))
    await intake(uow, new_lead("CLAIMED"))
    await claim(uow, "CLAIMED", by="ben")
    await intake(uow, new_lead("QUEUED", source="partner"))
    await intake(uow, parse_lead({"id": "NURTURED", "email": "someone@gmail.com"}))
    await set_out_of_office(uow, "dot", until=None, reason="parental leave")
    live = {lead: len(await audit_of(db, lead)) for lead in ("OFFERED", "CLAIMED", "QUEUED")}
    assert (await find_lead(uow, "QUEUED")).status == "queued"
    nurtured = len(await audit_of(db, "NURTURED"))
    assert nurtured and await audit_kinds_of_no_lead(db) == ["out_of_office"]
    clock.advance(days=401)
    await intake(uow, parse_lead({"id": "NURTURED-LATELY", "email": "other@gmail.com"}))
    young = len(await audit_of(db, "NURTURED-LATELY"))

    deleted = await prune(uow, DEFAULTS)

    assert {lead: len(await audit_of(db, lead)) for lead in live} == live
    assert len(await audit_of(db, "NURTURED-LATELY")) == young > 0
    assert await audit_of(db, "NURTURED") == []
    assert await audit_kinds_of_no_lead(db) == []  # a rep's absence, 401 days ago
    assert deleted[Housekeeping.AUDIT] == nurtured + 1


async def test_a_table_kept_forever_is_never_pruned(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    assert await first_time(uow, "event:1")
    await hubspot_contacts(uow, clock, **{"101": "done"})
    for ago in (2, 1):
        await run_job(db, clock, job="digest:mia", due_at=TUESDAY - timedelta(days=ago))
    await intake(uow, parse_lead({"id": "NURTURED", "email": "someone@gmail.com"}))
    before = {table: await count_rows(db, table) for table in TABLES}
    clock.advance(days=36_500)

    assert await prune(uow, FOREVER) == {Housekeeping.SIGN_OUTS: 0}
    assert await prune(uow, Retention(request_keys=7, outbox=None, job_runs=None, audit=None))

    after = {table: await count_rows(db, table) for table in TABLES}
    assert after == before | {ProcessedRequestRow: 0}


async def test_dashboard_sign_outs_go_a_day_after_their_session_expired_whatever_the_settings(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    now = clock()
    await sign_out(uow, session_id="short", expires_at=now + timedelta(hours=1), now=now)
    await sign_out(uow, session_id="long", expires_at=now + timedelta(hours=12), now=now)
    assert await sign_out_everywhere(uow, who="maria", session_id="asking", generation=0)
    clock.advance(hours=1, seconds=1)
    # Expired by this clock, but another replica's may run behind it and still let the copy in.
    assert await prune(uow, FOREVER) == {Housekeeping.SIGN_OUTS: 0}
    clock.advance(days=1)

    deleted = await prune(uow, FOREVER)

    assert deleted == {Housekeeping.SIGN_OUTS: 1}
    assert await count_rows(db, DashboardSignOutRow) == 1
    assert await signed_out(uow, session_id="long", who="someone", generation=0)
    clock.advance(hours=11)
    assert await prune(uow, FOREVER) == {Housekeeping.SIGN_OUTS: 1}
    assert await count_rows(db, DashboardSignOutRow) == 0
    # Signing out everywhere needs no row of its own to be pruned: Maria's sessions signed in
    # before it stay ended, whatever the time.
    assert await signed_out(uow, session_id="other", who="maria", generation=0)
    jobs = {job.name: job for job in declare_jobs(uow.policy(), None, FOREVER)}
    assert jobs[RETENTION].what == (
        "daily and at start: delete request keys: kept forever, finished outbox items: kept "
        "forever, job runs: kept forever, audit rows: kept forever, dashboard sign-outs a day "
        "after their session has expired"
    )


async def test_more_rows_than_one_batch_are_deleted_one_bounded_batch_at_a_time(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    for n in range(20):
        assert await first_time(uow, f"event:{n}")
    clock.advance(days=8)

    before = clock()
    first = await db.run(
        lambda session: delete_old(
            session=session,
            what=Housekeeping.REQUEST_KEYS,
            before=before,
            limit=7,
        )
    )
    assert first == 7
    assert await count_rows(db, ProcessedRequestRow) == 13

    deleted = await prune(uow, DEFAULTS, batch=7)

    assert deleted[Housekeeping.REQUEST_KEYS] == 13
    assert await count_rows(db, ProcessedRequestRow) == 0


async def test_replicas_pruning_at_once_delete_each_row_once_and_count_it_once(
    db: Database, replica_db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    for n in range(60):
        assert await first_time(uow, f"event:{n}")
    await hubspot_contacts(uow, clock, **{str(n): "done" for n in range(100, 130)})
    clock.advance(days=31)
    replicas = [uow, UnitOfWork(db=replica_db, policy=lambda: policy, clock=clock)]

    runs = await asyncio.gather(*(prune(replica, DEFAULTS, batch=4) for replica in replicas))

    assert sum(run[Housekeeping.REQUEST_KEYS] for run in runs) == 60
    assert sum(run[Housekeeping.OUTBOX] for run in runs) == 30
    assert await count_rows(db, ProcessedRequestRow) == await count_rows(db, OutboxRow) == 0


async def test_each_run_logs_one_line_with_its_counts(
    db: Database, uow: UnitOfWork, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for key in ("event:1", "event:2", "event:3"):
        assert await first_time(uow, key)
    clock.advance(days=8)

    with caplog.at_level(logging.INFO, logger="bot.retention"):
        await prune(uow, Retention(request_keys=7, outbox=30, job_runs=30, audit=None))

    assert [record.getMessage() for record in caplog.records] == [
        "retention: deleted 3 request keys older than 7 days; "
        "deleted 0 finished outbox items older than 30 days; "
        "deleted 0 job runs older than 30 days; audit rows kept forever; "
        "deleted 0 dashboard sign-outs of expired sessions"
    ]


async def test_the_daily_job_prunes_as_the_settings_say(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    assert await first_time(uow, "event:1")
    clock.advance(days=3)
    jobs = {job.name: job for job in declare_jobs(uow.policy(), None, DEFAULTS)}
    job = jobs[RETENTION]

    await job.call(uow)
    assert await request_keys(db) == {"event:1"}
    clock.advance(days=5)
    await job.call(uow)
    assert await request_keys(db) == set()
