"""The outcome rates `distribution: performance` weighs reps by, brought up to date.

    await refresh_outcomes(uow)      # every few minutes (bot.jobs), and at start

Rates change slowly, so they are not read in the routing transaction: the counts of each window
the policy's performance teams ask for are read from the report's stories (`lead_stories`) here,
beside the writer, and kept on the unit of work, whose routing transactions hand them to the
pure engine as plain data (`RoutingState.outcomes`). A team with no counts yet routes on equal
weights, exactly as `weighted` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from bot.service.unit_of_work import UnitOfWork
from routing.distribution import Distribution
from routing.experiments import with_candidates
from routing.performance import OutcomeCounts, OutcomeRow
from routing.policy import Policy
from storage import repository as repo


def outcome_windows(policy: Policy) -> frozenset[int]:
    """The outcome windows (seconds) of the policy's performance teams, its experiments'
    candidates' too; none, none to read."""
    return frozenset(
        team.window_seconds
        for served in with_candidates(policy)
        for team in served.teams.values()
        if team.distribution is Distribution.PERFORMANCE
    )


async def refresh_outcomes(uow: UnitOfWork) -> Mapping[int, OutcomeCounts]:
    """Read each window's outcome counts and keep them for routing; returns them."""
    now = uow.clock()
    counts: dict[int, OutcomeCounts] = {}
    for window in sorted(outcome_windows(uow.policy())):
        rows = await uow.read(partial(_counts, since=now - timedelta(seconds=window)))
        counts[window] = OutcomeCounts.from_rows(rows)
    uow.outcomes = counts
    return counts


def _counts(session: Session, *, since: datetime) -> list[OutcomeRow]:
    return repo.outcome_counts(session=session, since=since)
