"""Managers' digests: queued once per tick of their cron however many replicas run, or read
at once for `/routing digest`.

What a digest shows: the unmatched queue, SLA misses, load against capacity, absences, and once
a week (the first digest of a week in the manager's time zone, and `/routing digest`) the week's
figures from the routing report (`bot.service.weekly`). Plain data out, no Slack formatting
(`bot.slack.digest` renders it). Read in five statements whatever the number of reps or leads:
the reps' live state, the queue's size and its oldest leads, the misses counted per rep by the
database, and the CRM write-backs given up; and the week from the report's rollups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.service.errors import ServiceError
from bot.service.kinds import CRM_WRITE_FAILED, SLA_MISSED, OutboxKind
from bot.service.report import refresh_report
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.weekly import ManagerWeek, manager_week
from routing.policy import Policy
from storage import repository as repo

# How far back a digest looks for SLA misses when there was no digest before it.
FIRST_PERIOD = timedelta(hours=24)
QUEUE_SHOWN = 10  # the oldest queued leads listed one by one, each with an Assign control
CRM_SHOWN = 10  # failed CRM write-backs listed one by one


@dataclass(frozen=True, slots=True)
class QueuedLead:
    lead_id: str  # the external id, which an Assign control carries
    company: str | None
    source: str | None
    queue: str | None
    created_at: datetime  # when the lead arrived: its age is how long it has waited for anyone


@dataclass(frozen=True, slots=True)
class RepMisses:
    rep_id: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class RepLoad:
    rep_id: str
    name: str
    open: int  # open leads (offered or claimed), as capacity counts them
    capacity: int | None  # None: the policy sets no limit


@dataclass(frozen=True, slots=True)
class RepAway:
    rep_id: str
    name: str
    until: datetime | None  # None: until further notice
    reason: str | None


@dataclass(frozen=True, slots=True)
class CrmFailure:
    """An owner write-back given up for good: the CRM record still names someone else."""

    lead_id: str  # the external id
    rep_name: str
    system: str  # salesforce | hubspot
    error: str


@dataclass(frozen=True, slots=True)
class ManagerDigest:
    """One manager's digest for the period [since, now).

    The queue is shown whole; the rest covers the reps of the teams the manager manages, or
    every rep of the policy for a manager who manages no team."""

    manager_id: str
    since: datetime
    now: datetime
    queue_size: int
    oldest: tuple[QueuedLead, ...]  # at most QUEUE_SHOWN, oldest first
    misses: tuple[RepMisses, ...]  # reps who missed an SLA in the period, most misses first
    loads: tuple[RepLoad, ...]  # every rep in scope, in policy order
    away: tuple[RepAway, ...]  # reps out of office now, in policy order
    crm_failures: tuple[CrmFailure, ...] = ()  # at most CRM_SHOWN, newest first
    crm_failures_total: int = 0
    week: ManagerWeek | None = None  # in the week's first digest, and on demand
    # When the queue, the loads and the absences were read, if after `now`: a digest that goes
    # out late (Slack was down) shows them as they are then, and the queue's ages to then.
    read_at: datetime | None = None

    @property
    def seen_at(self) -> datetime:
        """The time the queue, loads and absences stand at."""
        return self.read_at if self.read_at is not None else self.now

    @property
    def empty(self) -> bool:
        """Nothing to tell: an empty queue, no misses, nobody out, nobody holding a lead, and
        no lead this week or the week before."""
        return (
            self.queue_size == 0
            and not self.misses
            and not self.away
            and not self.crm_failures_total
            and all(load.open == 0 for load in self.loads)
            and (self.week is None or self.week.empty)
        )


def reps_of_manager(policy: Policy, manager_id: str) -> tuple[str, ...]:
    """The reps a manager looks after: the members of their teams, in policy order, each once;
    every rep of the policy for a manager who manages no team."""
    teams = [team for team in policy.teams.values() if team.manager == manager_id]
    if not teams:
        return tuple(policy.reps)
    return tuple(dict.fromkeys(member for team in teams for member in team.members))


async def load_digest(
    session: AsyncSession,
    policy: Policy,
    *,
    manager_id: str,
    since: datetime | None,
    now: datetime,
    weekly: bool | None = None,
    read_at: datetime | None = None,
) -> ManagerDigest:
    """The digest of `manager_id` for SLA misses in [since, now); `since` None: the last 24 h.
    With the week's figures if `weekly`, or (None) if the period starts in an earlier week
    than it ends, in the manager's time zone: the first digest of each week. The queue, loads
    and absences are read as they stand: `read_at` says when that is, if later than `now`.

    Consecutive digests, each starting where the previous one ended, count every miss once."""
    if manager_id not in policy.managers:
        raise ServiceError(f"no manager with id {manager_id} in the policy")
    start = since if since is not None else now - FIRST_PERIOD
    scope = reps_of_manager(policy, manager_id)

    states = await repo.read_rep_states(session=session)
    queue_size, oldest = await _queue(session)
    missed = await repo.audits_by_rep(session=session, kind=SLA_MISSED, start=start, end=now)
    failures = await _crm_failures(session, policy, scope, start=start, end=now)

    misses = sorted(
        (
            RepMisses(rep, policy.rep_name(rep), missed[rep])
            for rep in scope
            if missed.get(rep, 0) > 0
        ),
        key=lambda m: -m.count,  # stable: equal counts stay in policy order
    )
    loads = tuple(
        RepLoad(rep, policy.rep_name(rep), states.open_loads.get(rep, 0), policy.reps[rep].capacity)
        for rep in scope
    )
    away = tuple(
        RepAway(rep, policy.rep_name(rep), absence.until, absence.reason)
        for rep in scope
        if (absence := states.out_of_office.get(rep)) is not None and absence.covers(read_at or now)
    )
    if weekly is None:
        weekly = first_of_week(start, now, policy.managers[manager_id].tz)
    week = await manager_week(session, policy, manager_id=manager_id, now=now) if weekly else None
    return ManagerDigest(
        manager_id=manager_id,
        since=start,
        now=now,
        queue_size=queue_size,
        oldest=oldest,
        misses=tuple(misses),
        loads=loads,
        away=away,
        crm_failures=tuple(failures[:CRM_SHOWN]),
        crm_failures_total=len(failures),
        week=week,
        read_at=read_at,
    )


def first_of_week(since: datetime, now: datetime, tz: tzinfo) -> bool:
    """Whether a digest of [since, now) is its manager's first of a week (Monday to Sunday in
    their zone): its period starts in an earlier week than it ends, or lasts a week or more."""
    start, end = since.astimezone(tz).date(), now.astimezone(tz).date()
    return now - since >= timedelta(days=7) or start.isocalendar()[:2] != end.isocalendar()[:2]


async def _queue(session: AsyncSession) -> tuple[int, tuple[QueuedLead, ...]]:
    size, rows = await repo.queued_leads(session=session, limit=QUEUE_SHOWN)
    return size, tuple(
        QueuedLead(row.external_id, row.company, row.source, row.queue, row.created_at)
        for row in rows
    )


async def _crm_failures(
    session: AsyncSession,
    policy: Policy,
    scope: tuple[str, ...],
    *,
    start: datetime,
    end: datetime,
) -> list[CrmFailure]:
    """Write-backs given up in the period for the manager's reps' leads, newest first."""
    rows = await repo.lead_audits(session=session, kind=CRM_WRITE_FAILED, start=start, end=end)
    in_scope = set(scope)
    return [
        CrmFailure(
            external_id,
            policy.rep_name(rep),
            str(audit.data.get("system", "")),
            audit.reason or "",
        )
        for audit, external_id in rows
        if (rep := (audit.data or {}).get("rep")) in in_scope
    ]


async def queue_digest(
    uow: UnitOfWork,
    manager_id: str,
    *,
    due_at: datetime,
    runner: str,
    only_after_another: bool = False,
) -> bool:
    """Queue `manager_id`'s digest for the tick at `due_at`, once however many replicas
    try: the first to record the tick queues it. False if another already had, or with
    `only_after_another` if the manager has had no digest before this tick. The digest
    covers the time since the manager's previous tick (none before: the last day)."""
    policy = uow.policy()
    if manager_id not in policy.managers:
        raise ServiceError(f"no manager with id {manager_id} in the policy")
    job = f"digest:{manager_id}"
    now = uow.clock()

    def look(session: Session) -> tuple[bool, datetime | None]:
        return (
            repo.job_ran(session=session, job=job, due_at=due_at),
            repo.previous_job_run(session=session, job=job, before=due_at),
        )

    # Taken already (a start's catch-up of a tick sent, another replica's): nothing to make.
    ran, since = await uow.read(look)
    if ran or (since is None and only_after_another):
        return False
    if first_of_week(since or due_at - FIRST_PERIOD, due_at, policy.managers[manager_id].tz):
        # The week's figures are the report's, whose stories the report job brings up to date
        # every minute: made now, the leads of the minute before the tick are in this week.
        await refresh_report(uow)

    def work(tx: Transaction) -> bool:
        if not repo.take_job_run(
            session=tx.session, job=job, due_at=due_at, runner=runner, now=now
        ):
            return False
        tx.queue(
            [
                repo.outbox_values(
                    kind=OutboxKind.DIGEST,
                    dedupe_key=f"{job}:{due_at.isoformat()}",
                    payload={
                        "manager": manager_id,
                        "since": (since or due_at - FIRST_PERIOD).isoformat(),
                        "until": due_at.isoformat(),
                    },
                    now=now,
                    lane=policy.slack_of(manager_id),
                )
            ]
        )
        return True

    return await uow.write(work)


async def digest_now(uow: UnitOfWork, manager_id: str) -> ManagerDigest:
    """`manager_id`'s digest now, covering the time since their last scheduled one."""
    policy = uow.policy()
    now = uow.clock()
    job = f"digest:{manager_id}"
    since = await uow.read(
        lambda session: repo.previous_job_run(session=session, job=job, before=now)
    )
    async with uow.reading() as session:
        return await load_digest(
            session, policy, manager_id=manager_id, since=since, now=now, weekly=True
        )
