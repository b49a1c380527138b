"""`distribution: performance` over the database: the week's counts saved with the team's rotation,
the outcome rates read from the report's stories by the refresh (not by the routing
transaction), and `/routing why` giving the numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.jobs import OUTCOME_RATES, declare_jobs
from bot.policy_file import load_policy
from bot.reading import Reader, Viewer
from bot.service.intake import intake
from bot.service.outcomes import Reported, record_posted_events
from bot.service.performance import refresh_outcomes
from bot.service.report import refresh_report
from bot.service.unit_of_work import UnitOfWork
from bot.service.watchdog import sweep
from routing.policy import Policy
from routing.report import EventKind, OutcomeEvent
from storage import repository as repo
from storage.db import Database
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, new_lead, offers_of, write_policy

POLICY = TRIO_POLICY.replace(
    "distribution: round_robin,",
    "distribution: performance, fairness: {floor: 0.5, ceiling: 2.0},",
)
MONDAY = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, POLICY))


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def make_uow(policy: Policy, clock: Clock) -> Callable[[Database], UnitOfWork]:
    def make(db: Database) -> UnitOfWork:
        return UnitOfWork(db=db, policy=lambda: policy, clock=clock)

    return make


async def test_the_outcome_rates_job_is_declared_only_for_performance_teams(
    policy: Policy, tmp_path: Path
) -> None:
    assert OUTCOME_RATES in {job.name for job in declare_jobs(policy)}
    plain = load_policy(write_policy(tmp_path, TRIO_POLICY))
    assert OUTCOME_RATES not in {job.name for job in declare_jobs(plain)}


async def test_reps_who_convert_get_more_leads_and_why_says_so_in_numbers(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    first = Counter[str]()
    for n in range(12):
        result = await intake(uow, new_lead(f"L-{n}", employees=5000, source="webinar"))
        first[result.lead.rep or ""] += 1
        clock.advance(minutes=1)
    assert first == {"ann": 4, "ben": 4, "cat": 4}  # no outcomes yet: equal weights

    # The week's counts are saved with the team's rotation and read back with it.
    async with db.reading() as session:
        teams = await session.run_sync(lambda s: repo.load_team_states(session=s))
    assert teams.states["trio"].days == {MONDAY.date().isoformat(): first}

    ann_leads = []
    async with db.reading() as session:
        for n in range(12):
            row = await session.run_sync(
                lambda s, n=n: repo.find_lead(session=s, external_id=f"L-{n}")
            )
            assert row is not None
            if row.rep_id == "ann":
                ann_leads.append(f"L-{n}")
    await record_posted_events(
        uow,
        [
            Reported(lead, OutcomeEvent(EventKind.CONVERTED, clock()), "test", f"opp-{lead}")
            for lead in ann_leads
        ],
    )
    await refresh_report(uow)
    counts = await refresh_outcomes(uow)
    assert counts[90 * 86_400].overall == {"ann": (4, 4), "ben": (4, 0), "cat": (4, 0)}

    later = Counter[str]()
    for n in range(12, 42):
        result = await intake(uow, new_lead(f"L-{n}", employees=5000, source="webinar"))
        later[result.lead.rep or ""] += 1
        clock.advance(minutes=1)
    # ann's weight is 1.33 against 0.83 each: 30 * 1.33 / 3 = 13 leads, bounded by the ceiling.
    assert later["ann"] == max(later.values())
    assert later["ann"] >= 12

    reader = Reader(db=db, policy=uow.policy, clock=clock)
    for n in range(12, 42):
        story = await reader.story(f"L-{n}", Viewer(rep=None, manager="mia"))
        assert story is not None
        if "Ann Archer:" in story.explanation:
            # 4 of 4 (100%); team 4 of 12; shrunk (4 + 20/3) / 24 = 44%, weight 1.3.
            assert (
                "Ann Archer: 100% converted on 4 Enterprise/webinar leads, shrunk to 44% "
                "(team 33%); weight 1.3;" in story.explanation
            )
            break
    else:
        raise AssertionError("no lead's explanation named ann's rates")


async def test_a_lead_of_another_week_day_starts_the_days_count_afresh(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-1"))
    clock.advance(days=8)
    await intake(uow, new_lead("L-2"))
    async with db.reading() as session:
        teams = await session.run_sync(lambda s: repo.load_team_states(session=s))
    # The first day fell out of the week and is no longer stored.
    assert list(teams.states["trio"].days) == [(MONDAY + timedelta(days=8)).date().isoformat()]


async def test_a_conversion_counts_for_the_rep_who_holds_the_lead_not_the_one_it_arrived_to(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    """The routing report judges a lead by the rep it arrived to; the rates a performance team
    weighs its reps by credit a conversion to the rep who worked the lead."""
    uow = make_uow(db)
    await intake(uow, new_lead("L-1", employees=5000, source="webinar"))
    clock.advance(hours=2)
    await sweep(uow)  # its rep let the claim SLA lapse: the next rep has it
    first, second = (offer.rep_id for offer in await offers_of(db, "L-1"))
    await record_posted_events(
        uow, [Reported("L-1", OutcomeEvent(EventKind.CONVERTED, clock()), "test", "opp-1")]
    )
    await refresh_report(uow)

    counts = await refresh_outcomes(uow)

    assert first != second
    assert counts[90 * 86_400].overall == {second: (1, 1)}
