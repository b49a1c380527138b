# Just over 400 lines on purpose: the jobs and when each fires (ticks, catch-up at start) are read
# together; the trigger arithmetic alone is 40 lines that serve only these declarations.
"""The scheduled jobs, declared in one place by name.

Each job is a thin call into the service layer, and each run is guarded: a run that fails is
logged (its transaction has rolled back) and the scheduler carries on to the next one.
APScheduler only says *when*; what a job did lives in leadrouter's own tables (the offers it
moved, the outbox items it queued, `job_runs` for the once-per-tick digests), so its job store
stays in memory and a restart or a second replica never loses or doubles an action.

    jobs = declare_jobs(policy, crm, settings.retention)
    scheduler = start_scheduler(jobs, uow)       # inside the running loop (`leadrouter serve`)
    ...
    await scheduler.stop()                       # the runs in flight finish first
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.crm.base import CrmError
from bot.crm.link import CrmLink
from bot.crm_links import crm_name
from bot.retention import Retention
from bot.service.digests import queue_digest
from bot.service.outcomes import WAITING_HOLD, apply_waiting_events
from bot.service.performance import outcome_windows, refresh_outcomes
from bot.service.report import refresh_report
from bot.service.retention import prune
from bot.service.unit_of_work import UnitOfWork
from bot.service.watchdog import sweep
from routing.cron import crontab_trigger
from routing.durations import format_duration
from routing.policy import Policy

log = logging.getLogger(__name__)

SWEEP = "sla-sweep"
SALESFORCE_LEADS = "salesforce-leads"
ACCOUNTS_PREFIX = "accounts:"
OUTCOMES_PREFIX = "outcomes:"
# The first poll after Salesforce polling is switched on routes leads this recent, not all.
FIRST_LOOK_BACK = timedelta(minutes=15)
# The first outcome poll of a CRM reads this far back: far enough for the touches and deals of
# the leads routed lately, not years of activity no lead routed here had.
OUTCOMES_FIRST_LOOK_BACK = timedelta(days=30)
DIGEST_PREFIX = "digest:"
RETENTION = "retention"
REPORT = "report"
REPORT_EVERY = timedelta(minutes=1)
OUTCOME_RATES = "outcome-rates"
# Conversion rates over weeks move slowly: read again this often for performance teams.
OUTCOME_RATES_EVERY = timedelta(minutes=10)
WAITING_EVENTS = "waiting-events"
WAITING_EVENTS_EVERY = timedelta(minutes=1)
# A digest tick run later than this after its time was missed while no replica ran.
LATE_TICK = timedelta(minutes=5)
# How far back to look for a cron's latest tick: a digest fires at most weekly in practice, and a
# tick missed for longer than this is not worth sending late.
_LOOKBACK = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1), timedelta(days=8))


@dataclass(frozen=True)
class Job:
    name: str
    what: str  # one line for `leadrouter jobs`
    trigger: BaseTrigger
    call: Callable[[UnitOfWork], Awaitable[object]]
    at_start: bool = False  # also run once as soon as the scheduler starts (catch up)


def runner_name() -> str:
    """Which replica did a run: recorded with once-per-tick jobs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def declare_jobs(
    policy: Policy,
    crm: Mapping[str, CrmLink] | None = None,
    retention: Retention | None = None,
) -> list[Job]:
    """The jobs the policy asks for; CRM jobs only for the CRMs `crm` holds (configured);
    retention's pruning where `retention` (the settings') deletes anything."""
    jobs = [
        Job(
            SWEEP,
            f"every {format_duration(policy.sla.check_every)}: reassign offers past their SLA"
            + ("; remind at half the SLA" if policy.sla.remind_at_half else ""),
            IntervalTrigger(seconds=policy.sla.check_every, timezone=UTC),
            _sweep,
            # After a restart, offers that fell due while nobody was sweeping move at once.
            at_start=True,
        )
    ]
    for manager in sorted(policy.managers.values(), key=lambda m: m.id):
        if not manager.digest:
            continue
        trigger = crontab_trigger(manager.digest, manager.tz)
        jobs.append(
            Job(
                f"{DIGEST_PREFIX}{manager.id}",
                f"{manager.name}'s digest, cron `{manager.digest}` in {manager.tz.key}",
                trigger,
                _digest_tick(manager.id, trigger),
                # A tick that came while no replica ran (a deploy across 09:00) is sent at the
                # next start; one already sent is not sent again (`job_runs`).
                at_start=True,
            )
        )
    jobs.append(
        Job(
            REPORT,
            f"every {format_duration(REPORT_EVERY.total_seconds())}: bring the routing report's "
            "lead stories and day rollups up to date",
            IntervalTrigger(seconds=REPORT_EVERY.total_seconds(), timezone=UTC),
            _refresh_report,
            # A first start after an upgrade makes every lead's story here, not at the first
            # report someone asks for.
            at_start=True,
        )
    )
    if outcome_windows(policy):
        jobs.append(
            Job(
                OUTCOME_RATES,
                f"every {format_duration(OUTCOME_RATES_EVERY.total_seconds())}: read the "
                "outcome rates performance teams weigh their reps by (windows "
                + ", ".join(format_duration(w) for w in sorted(outcome_windows(policy)))
                + ")",
                IntervalTrigger(seconds=OUTCOME_RATES_EVERY.total_seconds(), timezone=UTC),
                _refresh_outcomes,
                # Until it has run, performance teams weigh every rep equally.
                at_start=True,
            )
        )
    jobs.append(
        Job(
            WAITING_EVENTS,
            f"every {format_duration(WAITING_EVENTS_EVERY.total_seconds())}: record the outcome "
            "events that arrived before their lead once it has; drop those older than "
            f"{format_duration(WAITING_HOLD.total_seconds())}",
            IntervalTrigger(seconds=WAITING_EVENTS_EVERY.total_seconds(), timezone=UTC),
            _apply_waiting_events,
        )
    )
    jobs.extend(_crm_jobs(policy, crm or {}))
    if retention is not None:  # expired dashboard sign-outs are always pruned
        jobs.append(
            Job(
                RETENTION,
                f"daily and at start: {retention.describe()}",
                IntervalTrigger(days=1, timezone=UTC),
                partial(_prune, retention=retention),
                # A replica that restarts more often than daily still prunes.
                at_start=True,
            )
        )
    return jobs


def _crm_jobs(policy: Policy, crm: Mapping[str, CrmLink]) -> list[Job]:
    from bot.crm import sync

    jobs = []
    salesforce = crm.get("salesforce")
    every = policy.crm.salesforce.poll_leads_every
    if salesforce is not None and every:
        queue = policy.crm.salesforce.intake_queue
        jobs.append(
            Job(
                SALESFORCE_LEADS,
                f"every {format_duration(every)}: route new Salesforce leads"
                + (f" owned by queue {queue}" if queue else ""),
                IntervalTrigger(seconds=every, timezone=UTC),
                lambda uow: sync.poll_salesforce_leads(
                    uow, salesforce, first_look_back=FIRST_LOOK_BACK
                ),
                at_start=True,
            )
        )
    for system, link in sorted(crm.items()):
        spec = policy.crm.salesforce if system == "salesforce" else policy.crm.hubspot
        if spec.poll_outcomes_every:
            jobs.append(
                Job(
                    f"{OUTCOMES_PREFIX}{system}",
                    f"every {format_duration(spec.poll_outcomes_every)}: record the touches, "
                    f"opportunities, wins and losses {crm_name(system)} has of routed leads",
                    IntervalTrigger(seconds=spec.poll_outcomes_every, timezone=UTC),
                    partial(_poll_outcomes, link=link),
                    at_start=True,
                )
            )
        if not spec.sync_accounts_every:
            continue
        jobs.append(
            Job(
                f"{ACCOUNTS_PREFIX}{system}",
                f"every {format_duration(spec.sync_accounts_every)}: "
                f"bring in accounts changed in {crm_name(system)}",
                IntervalTrigger(seconds=spec.sync_accounts_every, timezone=UTC),
                partial(_sync_accounts, link=link),
                at_start=True,
            )
        )
    return jobs


async def _sync_accounts(uow: UnitOfWork, *, link: CrmLink) -> object:
    from bot.crm.sync import sync_accounts

    return await sync_accounts(uow, link)


async def _poll_outcomes(uow: UnitOfWork, *, link: CrmLink) -> object:
    from bot.crm.sync import poll_outcomes

    return await poll_outcomes(uow, link, first_look_back=OUTCOMES_FIRST_LOOK_BACK)


async def _prune(uow: UnitOfWork, *, retention: Retention) -> object:
    return await prune(uow, retention)


async def _refresh_report(uow: UnitOfWork) -> object:
    return await refresh_report(uow)


async def _refresh_outcomes(uow: UnitOfWork) -> object:
    return await refresh_outcomes(uow)


async def _apply_waiting_events(uow: UnitOfWork) -> object:
    return await apply_waiting_events(uow)


async def _sweep(uow: UnitOfWork) -> object:
    return await sweep(uow)


def _digest_tick(
    manager_id: str, trigger: BaseTrigger
) -> Callable[[UnitOfWork], Awaitable[object]]:
    async def tick(uow: UnitOfWork) -> bool:
        # Every replica computes the same tick from the cron, so the database can tell them apart.
        now = uow.clock()
        due_at = latest_tick(trigger, now)
        if due_at is None:
            return False
        return await queue_digest(
            uow,
            manager_id,
            due_at=due_at,
            runner=runner_name(),
            # Late: a tick missed while stopped, caught up at start. Sent only to a manager who
            # has had a digest before, so that a first start does not send one out of the blue.
            only_after_another=now - due_at > LATE_TICK,
        )

    return tick


def latest_tick(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The trigger's latest fire time at or before `now` (None if none in the last week)."""
    for lookback in _LOOKBACK:
        tick: datetime | None = trigger.get_next_fire_time(None, now - lookback)
        if tick is None or tick > now:
            continue
        while True:
            # Step from the tick's instant in UTC: a step in local time from the second 01:30 of
            # the night the clocks go back lands on that same 01:30 again, forever.
            following: datetime | None = trigger.get_next_fire_time(
                tick, tick.astimezone(UTC) + timedelta(seconds=1)
            )
            if following is None or following > now:
                return _first_of_its_wall_time(tick).astimezone(UTC)
            tick = following
    return None


def _first_of_its_wall_time(tick: datetime) -> datetime:
    """`tick`, or the earlier instant with the same local time when it is the repeat of the hour
    the clocks went back: a cron line names a time of day, so that night it is one tick."""
    first = tick.replace(fold=0)
    return first if first.utcoffset() != tick.utcoffset() else tick


def next_runs(jobs: Sequence[Job], now: datetime) -> list[tuple[Job, datetime | None]]:
    """Each job with the next time it fires after `now`."""
    runs: list[tuple[Job, datetime | None]] = []
    for job in jobs:
        next_run: datetime | None = job.trigger.get_next_fire_time(None, now)
        runs.append((job, next_run))
    return runs


# How long a shutdown waits for the runs in flight: a sweep or a digest takes milliseconds, and
# a container is killed 10 s after it is asked to stop.
STOP_GRACE_S = 5.0


@dataclass
class Scheduler:
    """The jobs running: APScheduler says when, `running` holds the runs in flight."""

    apscheduler: AsyncIOScheduler
    uow: UnitOfWork
    failed: Callable[[str], None] | None = None
    running: set[asyncio.Task[Any]] = field(default_factory=set)
    declared: dict[str, Job] = field(default_factory=dict)  # by name, as scheduled

    def declare(self, jobs: Sequence[Job], *, starting: bool = False) -> None:
        """Run `jobs` from now on (a new version of the policy declares its own): a job new or
        changed (by what it does and when) is scheduled afresh, one no longer declared is
        removed, the others go on undisturbed. `starting`: the jobs marked `at_start` also
        run at once."""
        wanted = {job.name: job for job in jobs}
        for name in sorted(set(self.declared) - set(wanted)):
            self.apscheduler.remove_job(name)
            del self.declared[name]
        for name, job in wanted.items():
            known = self.declared.get(name)
            if known is not None and known.what == job.what:
                continue
            options = {"next_run_time": datetime.now(UTC)} if job.at_start and starting else {}
            self.apscheduler.add_job(
                _guarded(job, self.uow, self.running, self.failed),
                trigger=job.trigger,
                id=job.name,
                name=job.name,
                replace_existing=True,
                max_instances=1,  # a slow sweep is never overlapped by the next one
                coalesce=True,  # runs missed while busy collapse into one
                misfire_grace_time=None,  # late is better than never
                **options,
            )
            self.declared[name] = job

    async def stop(self, *, grace: float = STOP_GRACE_S) -> None:
        """No new runs; those in flight finish (for up to `grace` seconds, then they are
        cancelled and their transactions roll back); then the scheduler stops. Stopped with a
        run in flight, APScheduler cancels it and logs the cancellation as a traceback."""
        self.apscheduler.pause()
        if self.running:
            await asyncio.wait(set(self.running), timeout=grace)
        self.apscheduler.shutdown(wait=False)


def start_scheduler(
    jobs: Sequence[Job], uow: UnitOfWork, *, failed: Callable[[str], None] | None = None
) -> Scheduler:
    """Start the jobs on the running event loop; stop them with `await scheduler.stop()`.
    `failed` is told the name of each job whose run failed (for the metrics)."""
    scheduler = Scheduler(AsyncIOScheduler(timezone=UTC), uow, failed)
    scheduler.declare(jobs, starting=True)
    scheduler.apscheduler.start()
    log.info("scheduled jobs started: %s", ", ".join(job.name for job in jobs))
    return scheduler


def _guarded(
    job: Job,
    uow: UnitOfWork,
    running: set[asyncio.Task[Any]],
    failed: Callable[[str], None] | None = None,
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await job.call(uow)
        except CrmError as exc:
            # A CRM's refusal or outage is a sentence saying what to fix; a traceback of our
            # own frames, every run until it is fixed, would only bury it.
            log.error("job %s failed; it runs again at its next time: %s", job.name, exc)
            if failed is not None:
                failed(job.name)
        except Exception:
            log.exception("job %s failed; it runs again at its next time", job.name)
            if failed is not None:
                failed(job.name)
        except asyncio.CancelledError:
            # Only a shutdown cancels a run, once its grace is over; one line says so.
            log.warning(
                "job %s was stopped by the shutdown; it runs again at the next start", job.name
            )
        finally:
            running.discard(task)

    run.__name__ = job.name
    return run
