"""Experiments over the database: each decision stores its arm, an account's leads keep one arm
whichever replica routes them, the report groups and compares the arms, and promoting or
stopping an experiment activates a new version."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.policy_file import load_policy
from bot.reading import Reader, Viewer
from bot.service.experiments import NoSuchExperiment, end_experiment
from bot.service.intake import intake
from bot.service.policies import Activation, activate_policy, policy_history
from bot.service.report import refresh_report, routing_report
from bot.service.unit_of_work import UnitOfWork
from routing.experiments import CANDIDATE, CONTROL, position_of
from routing.policy import Policy, parse_policy
from routing.report.window import Window
from storage.db import Database, open_database
from storage.models import DecisionRow, LeadRow
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, new_lead, write_policy

POLICY = TRIO_POLICY + (
    "experiments:\n"
    "  - name: loads\n"
    "    share: 50\n"
    "    by: account\n"
    "    team: trio\n"
    "    distribution: least_loaded\n"
)
MONDAY = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, POLICY))


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


def expected_arm(domain: str) -> str:
    """The arm the policy's hash gives a company's domain, computed here on its own."""
    return CANDIDATE if position_of("loads", f"domain {domain}") < 0.5 else CONTROL


async def arms_by_lead(db: Database) -> dict[str, tuple[str | None, str | None]]:
    """Each lead's external id -> the (experiment, arm) of every decision it has, as stored."""
    async with db.reading() as session:
        rows = await session.execute(
            select(LeadRow.external_id, DecisionRow.experiment, DecisionRow.arm).join(
                DecisionRow, DecisionRow.lead_id == LeadRow.id
            )
        )
        return {external_id: (experiment, arm) for external_id, experiment, arm in rows}


async def test_an_accounts_leads_keep_one_arm_across_two_replicas_on_postgresql(
    postgres_url: str, policy: Policy, clock: Clock
) -> None:
    first, second = open_database(postgres_url), open_database(postgres_url)
    try:
        await first.create_tables()
        replicas = [UnitOfWork(db=db, policy=lambda: policy, clock=clock) for db in (first, second)]
        domains = [f"firm{n}.com" for n in range(12)]
        leads = [
            (replicas[n % 2], new_lead(f"L-{n}", email=f"buyer{n}@{domains[n % 12]}"))
            for n in range(48)
        ]

        await asyncio.gather(*(intake(uow, lead) for uow, lead in leads))

        stored = await arms_by_lead(first)
    finally:
        await first.dispose()
        await second.dispose()
    assert len(stored) == 48
    for n in range(48):
        # Both replicas routed leads of every domain (n % 2 differs within each domain).
        assert stored[f"L-{n}"] == ("loads", expected_arm(domains[n % 12]))
    assert {arm for _, arm in stored.values()} == {CONTROL, CANDIDATE}


async def test_the_report_by_arm_counts_each_arms_leads(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    domains = [f"shop{n}.com" for n in range(10)]
    for n in range(30):
        await intake(uow, new_lead(f"L-{n}", email=f"b{n}@{domains[n % 10]}"))
    clock.advance(minutes=1)
    await refresh_report(uow)

    report = await routing_report(uow, Window(MONDAY - timedelta(days=1), clock()), by="arm")

    counted = {group.group: group.leads for group in report.groups}
    expected = {f"loads/{arm}": 0 for arm in (CONTROL, CANDIDATE)}
    for n in range(30):
        expected[f"loads/{expected_arm(domains[n % 10])}"] += 1
    assert counted == {name: count for name, count in expected.items() if count}


async def test_promote_activates_the_candidate_for_every_lead_after_it(
    sqlite_db: Database, policy: Policy, clock: Clock, tmp_path: Path
) -> None:
    live = {"policy": policy}
    uow = UnitOfWork(db=sqlite_db, policy=lambda: live["policy"], clock=clock)
    await activate_policy(uow, POLICY, source="routing.yml", how=Activation.START, by=None)

    ended = await end_experiment(uow, POLICY, "loads", promote=True, source="routing.yml", by="mia")
    live["policy"] = ended.activated.policy
    await intake(uow, new_lead("L-after", email="b@firm1.com"))

    assert ended.activated.activated and ended.activated.previous == policy.version
    assert parse_policy(ended.text).teams["trio"].distribution == "least_loaded"
    assert ended.activated.policy.experiments == ()
    history = await policy_history(uow, limit=5)
    assert (history[0].how, history[0].by) == ("leadrouter experiment promote", "mia")
    assert (await arms_by_lead(sqlite_db))["L-after"] == (None, None)


async def test_stopping_an_unknown_experiment_names_those_there_are_and_activates_nothing(
    sqlite_db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=sqlite_db, policy=lambda: policy, clock=clock)

    with pytest.raises(NoSuchExperiment) as caught:
        await end_experiment(uow, POLICY, "load", promote=False, source="routing.yml", by=None)

    assert str(caught.value) == (
        "routing.yml: the policy has no experiment named `load` (its experiments: loads)"
    )
    assert await policy_history(uow, limit=5) == []


async def test_routing_why_names_the_experiment_and_the_arm(
    sqlite_db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=sqlite_db, policy=lambda: policy, clock=clock)
    await intake(uow, new_lead("L-1", email="buyer@firm3.com"))
    reader = Reader(db=sqlite_db, policy=uow.policy, clock=clock)

    story = await reader.story("L-1", Viewer(rep=None, manager="mia"))

    assert story is not None
    arm = expected_arm("firm3.com")
    sign = "<" if arm == CANDIDATE else "≥"
    assert f"Experiment: experiment loads: {arm} arm (hash " in story.explanation
    assert f"{sign} share 0.50, by domain firm3.com)" in story.explanation


def test_the_outcome_rates_are_read_for_a_candidate_performance_team(tmp_path: Path) -> None:
    from bot.service.performance import outcome_windows
    from bot.service.world import teams_outcomes
    from routing.performance import OutcomeCounts

    trying = load_policy(
        write_policy(tmp_path, POLICY.replace("least_loaded", "performance"), name="p.yml")
    )

    (window,) = outcome_windows(trying)
    assert outcome_windows(load_policy(write_policy(tmp_path, TRIO_POLICY))) == frozenset()
    assert set(teams_outcomes(trying, {window: OutcomeCounts.from_rows([])})) == {"trio"}
