"""The scheduled jobs: what is declared, when digests tick in a manager's zone, that a failing
run neither stops the scheduler nor the next run, and `leadrouter jobs`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.jobs import Job, declare_jobs, latest_tick, start_scheduler
from bot.retention import Retention
from routing.cron import crontab_trigger
from routing.policy import parse_policy

POLICY = """\
reps:
  - {id: ann}
managers:
  - {id: mia, name: Mia Moss, timezone: Europe/Berlin, digest: "0 9 * * 1-5"}
  - {id: ned, name: Ned Noon, timezone: America/New_York, digest: "30 16 * * fri"}
  - {id: ola}
teams:
  solo: {members: [ann], manager: mia}
rules:
  - {name: Everyone, assign: {team: solo}}
sla: {check_every: 30s, remind_at_half: true}
"""
BERLIN_WEEKDAYS_AT_9 = crontab_trigger("0 9 * * 1-5", "Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_the_sweep_and_one_digest_per_manager_with_a_cron_are_declared() -> None:
    jobs = {job.name: job for job in declare_jobs(parse_policy(POLICY))}

    assert set(jobs) == {"sla-sweep", "report", "waiting-events", "digest:mia", "digest:ned"}
    sweep = jobs["sla-sweep"]
    assert isinstance(sweep.trigger, IntervalTrigger)
    assert sweep.trigger.interval == timedelta(seconds=30)
    assert sweep.at_start and "remind at half" in sweep.what
    assert "America/New_York" in jobs["digest:ned"].what


def test_retention_runs_daily_and_once_at_start() -> None:
    retention = Retention(request_keys=7, outbox=30, job_runs=30, audit=None)
    jobs = {job.name: job for job in declare_jobs(parse_policy(POLICY), None, retention)}

    job = jobs["retention"]
    assert isinstance(job.trigger, IntervalTrigger)
    assert job.trigger.interval == timedelta(days=1)
    assert job.at_start
    assert job.what == (
        "daily and at start: delete request keys after 7 days, finished outbox items after "
        "30 days, job runs after 30 days (each job's latest kept), audit rows: kept forever, "
        "dashboard sign-outs a day after their session has expired"
    )


def test_with_every_table_kept_forever_retention_still_deletes_expired_sign_outs() -> None:
    forever = Retention(request_keys=None, outbox=None, job_runs=None, audit=None)
    jobs = {job.name: job for job in declare_jobs(parse_policy(POLICY), None, forever)}
    assert jobs["retention"].what.endswith(
        "audit rows: kept forever, dashboard sign-outs a day after their session has expired"
    )


@pytest.mark.parametrize(
    ("now", "tick"),
    [
        (utc(2026, 11, 18, 8, 30), utc(2026, 11, 18, 8, 0)),  # Wed 09:30 CET
        (utc(2026, 11, 18, 8, 0), utc(2026, 11, 18, 8, 0)),  # exactly on the tick
        (utc(2026, 11, 18, 7, 59), utc(2026, 11, 17, 8, 0)),  # before: yesterday's
        (utc(2026, 11, 23, 7, 0), utc(2026, 11, 20, 8, 0)),  # Monday early: Friday's
        (utc(2026, 7, 1, 7, 30), utc(2026, 7, 1, 7, 0)),  # summer: 09:00 CEST is 07:00 UTC
        (utc(2026, 3, 30, 7, 5), utc(2026, 3, 30, 7, 0)),  # the Monday after clocks went forward
        (utc(2026, 10, 26, 8, 5), utc(2026, 10, 26, 8, 0)),  # the Monday after they went back
    ],
)
def test_a_digest_ticks_at_the_managers_local_time(now: datetime, tick: datetime) -> None:
    assert latest_tick(BERLIN_WEEKDAYS_AT_9, now) == tick


NEW_YORK_DAILY_AT_1_30 = crontab_trigger("30 1 * * *", "America/New_York")


@pytest.mark.parametrize(
    "now",
    [
        utc(2026, 11, 1, 5, 45),  # 01:45 EDT, the first 01:30 has passed
        utc(2026, 11, 1, 6, 45),  # 01:45 EST, the clocks went back: 01:30 came round again
        utc(2026, 11, 1, 12, 0),  # later that day
    ],
)
def test_a_digest_in_the_hour_the_clocks_repeat_ticks_once_that_night(now: datetime) -> None:
    # 01:30 comes twice in New York on 1 November 2026; the digest is once a day, so both are
    # the same tick (the first), and the job run recorded for it keeps the second from sending.
    assert latest_tick(NEW_YORK_DAILY_AT_1_30, now) == utc(2026, 11, 1, 5, 30)


def test_the_tick_after_the_repeated_hour_is_the_next_nights() -> None:
    assert latest_tick(NEW_YORK_DAILY_AT_1_30, utc(2026, 11, 2, 6, 31)) == utc(2026, 11, 2, 6, 30)


def test_a_cron_that_has_not_fired_for_over_a_week_has_no_tick() -> None:
    yearly = crontab_trigger("0 9 1 1 *", "UTC")
    assert latest_tick(yearly, utc(2026, 6, 1, 0, 0)) is None


async def test_a_failing_run_is_logged_and_the_job_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    third_run = asyncio.Event()

    async def flaky(uow: Any) -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third_run.set()
        if len(runs) == 1:
            raise RuntimeError("the database went away")

    job = Job("flaky", "fails once", IntervalTrigger(seconds=0.1), flaky, at_start=True)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        scheduler = start_scheduler([job], uow=None)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(5):
                await third_run.wait()
        finally:
            await scheduler.stop()

    assert [r.getMessage() for r in caplog.records] == [
        "job flaky failed; it runs again at its next time"
    ]
    assert caplog.records[0].exc_info is not None  # an unknown failure: its traceback


async def test_a_crm_refusal_is_logged_as_its_sentence_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.crm.base import CrmPermanent

    failed: list[str] = []
    ran = asyncio.Event()

    async def sync(uow: Any) -> None:
        ran.set()
        raise CrmPermanent("Salesforce refused it: INVALID_FIELD No such column 'Tier__c'")

    job = Job("accounts:salesforce", "sync", IntervalTrigger(hours=1), sync, at_start=True)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        scheduler = start_scheduler([job], uow=None, failed=failed.append)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(5):
                await ran.wait()
            await asyncio.sleep(0.05)
        finally:
            await scheduler.stop()

    (record,) = caplog.records
    assert record.getMessage() == (
        "job accounts:salesforce failed; it runs again at its next time: "
        "Salesforce refused it: INVALID_FIELD No such column 'Tier__c'"
    )
    assert record.exc_info is None
    assert failed == ["accounts:salesforce"]  # still counted in the metrics


async def test_a_run_in_flight_at_shutdown_finishes_and_nothing_is_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(uow: Any) -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.set()

    job = Job("slow", "takes a while", IntervalTrigger(hours=1), slow, at_start=True)
    with caplog.at_level(logging.WARNING):
        scheduler = start_scheduler([job], uow=None)  # type: ignore[arg-type]
        async with asyncio.timeout(5):
            await started.wait()
        await scheduler.stop()

    assert finished.is_set()
    assert caplog.records == []


async def test_a_run_still_going_after_the_grace_is_stopped_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def stuck(uow: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    job = Job("stuck", "never ends", IntervalTrigger(hours=1), stuck, at_start=True)
    with caplog.at_level(logging.WARNING):
        scheduler = start_scheduler([job], uow=None)  # type: ignore[arg-type]
        async with asyncio.timeout(5):
            await started.wait()
        await scheduler.stop(grace=0.05)
        await asyncio.sleep(0.05)  # the cancelled run ends on the loop's next turns

    assert [r.getMessage() for r in caplog.records] == [
        "job stuck was stopped by the shutdown; it runs again at the next start"
    ]


def test_leadrouter_jobs_lists_each_job_with_its_next_run(tmp_path: Path) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")

    result = CliRunner().invoke(cli, ["jobs", "--rules", str(rules)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:1] == ["sla-sweep"] for line in lines)
    assert any(line.split()[:1] == ["retention"] for line in lines)
    words = " ".join(result.output.split())  # the column wraps
    assert "audit rows after 400 days" in words  # the settings' default
    (ned,) = [line for line in lines if line.strip().startswith("digest:ned")]
    next_run = datetime.strptime(" ".join(ned.split()[-2:]), "%Y-%m-%d %H:%M:%S")
    # Fridays 16:30 in New York: 21:30 UTC in winter, 20:30 in summer.
    assert next_run.weekday() == 4 and next_run.strftime("%M") == "30"
    assert next_run.hour in (20, 21)


async def test_a_new_policy_version_declares_its_jobs_and_leaves_the_others_running() -> None:
    scheduler = start_scheduler(declare_jobs(parse_policy(POLICY)), uow=None)  # type: ignore[arg-type]
    try:
        sweep = scheduler.declared["sla-sweep"]
        changed = POLICY.replace('"30 16 * * fri"', '"0 8 * * mon"').replace(
            '  - {id: mia, name: Mia Moss, timezone: Europe/Berlin, digest: "0 9 * * 1-5"}\n',
            "  - {id: mia, name: Mia Moss, timezone: Europe/Berlin}\n"
            '  - {id: pia, name: Pia Park, digest: "0 10 * * *"}\n',
        )
        assert changed != POLICY

        scheduler.declare(declare_jobs(parse_policy(changed)))

        after = {job.id: job for job in scheduler.apscheduler.get_jobs()}
        assert set(after) == {"sla-sweep", "report", "waiting-events", "digest:ned", "digest:pia"}
        assert scheduler.declared["sla-sweep"] is sweep  # undisturbed, not scheduled afresh
        assert "0 8 * * mon" in scheduler.declared["digest:ned"].what
    finally:
        await scheduler.stop()


def test_the_report_is_brought_up_to_date_every_minute_and_at_start() -> None:
    jobs = {job.name: job for job in declare_jobs(parse_policy(POLICY))}

    job = jobs["report"]
    assert isinstance(job.trigger, IntervalTrigger)
    assert job.trigger.interval == timedelta(minutes=1)
    assert job.at_start and "routing report" in job.what
