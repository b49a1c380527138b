"""This week's figures from the routing report, as a manager's digest and App Home show them, and
a rep's share of their teams' leads for their App Home. Plain data out (`bot.slack` renders it).

A manager's week is the seven days to now on their own clock (`week_to`), compared with the
seven before it; a rep's, the 7 × 24 hours to now. Read through the caller's reading
session, from the report's rollups and stories (`bot.service.report.window_tallies`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.service.report import window_tallies
from routing.policy import Policy
from routing.report import (
    GroupReport,
    Report,
    fields_read,
    proportion,
    report_of_tallies,
    team_weights,
)
from routing.report.stats import Proportion
from routing.report.window import Window, week_to

WEEK = timedelta(days=7)
MOVERS = 3  # the rules (and the sources) whose volume changed most, shown with their figures


@dataclass(frozen=True, slots=True)
class Mover:
    """A rule or a source whose leads changed much against the week before, with its figures in
    both."""

    group: str | None  # None: the leads no rule matched, or that named no source
    now: GroupReport | None  # None: it had no lead this week
    before: GroupReport | None


@dataclass(frozen=True, slots=True)
class ManagerWeek:
    """The week for a manager: every lead's figures, their teams', the rules that moved most,
    and the sources (a web form that stopped sending shows here first)."""

    window: Window
    total: GroupReport
    total_before: GroupReport
    teams: tuple[tuple[str, GroupReport | None], ...]  # the manager's teams, in policy order
    movers: tuple[Mover, ...]  # rules, most changed first
    source_movers: tuple[Mover, ...]  # sources, most changed first
    # Whether there is a contact SLA to tell of: the policy sets one, or this week's leads had
    # one (under an earlier version). Without, "contact SLA met –" reads as data gone missing.
    contact_sla: bool = True

    @property
    def empty(self) -> bool:
        return self.total.leads == 0 and self.total_before.leads == 0


@dataclass(frozen=True, slots=True)
class RepTeamShare:
    """A rep's leads from one of their teams' rotation this week, against their share of it."""

    team: str
    leads: int  # the rep's
    team_leads: int  # the team's rotation gave out
    share: float | None  # None: the team gave out none
    expected_share: float


@dataclass(frozen=True, slots=True)
class RepWeek:
    window: Window
    teams: tuple[RepTeamShare, ...]  # the rep's teams, in policy order
    claim_sla: Proportion  # the rep's own
    team_claim_sla: Mapping[str, Proportion]  # each of the rep's teams'


async def manager_week(
    session: AsyncSession, policy: Policy, *, manager_id: str, now: datetime
) -> ManagerWeek:
    # The manager's week, on their own clock: last Monday's digest's week ended where this
    # one's begins, whatever the clocks did in between.
    window = week_to(now, policy.managers[manager_id].tz)
    before = week_to(window.since, policy.managers[manager_id].tz)
    by_rule = await _report(session, policy, window, "rule", now)
    by_rule_before = await _report(session, policy, before, "rule", now)
    by_source = await _report(session, policy, window, "source", now)
    by_source_before = await _report(session, policy, before, "source", now)
    by_team = await _report(session, policy, window, "team", now)
    teams = {group.group: group for group in by_team.groups}
    managed = [team.name for team in policy.teams.values() if team.manager == manager_id]
    return ManagerWeek(
        window=window,
        total=by_rule.total,
        total_before=by_rule_before.total,
        teams=tuple((name, teams.get(name)) for name in managed),
        movers=_movers(by_rule, by_rule_before),
        source_movers=_movers(by_source, by_source_before),
        contact_sla=_sets_contact_sla(policy) or by_rule.total.contact_sla.of > 0,
    )


def _sets_contact_sla(policy: Policy) -> bool:
    sla = policy.sla
    return (
        sla.contact is not None
        or bool(sla.contact_by_source)
        or any(rule.contact_sla_seconds is not None for rule in policy.rules)
    )


async def rep_week(session: AsyncSession, policy: Policy, *, rep_id: str, now: datetime) -> RepWeek:
    window = Window(now - WEEK, now)
    everyone = await _report(session, policy, window, "all", now)
    by_rep = await _report(session, policy, window, "rep", now)
    by_team = await _report(session, policy, window, "team", now)
    fairness = {team.team: team for team in everyone.total.fairness}
    weights = team_weights(policy)
    shares = []
    for team_name in policy.teams_of_rep.get(rep_id, ()):
        weight = weights[team_name]
        expected = weight.get(rep_id, 0) / sum(weight.values()) if weight else 0.0
        given = fairness.get(team_name)
        got = next((rep for rep in given.reps if rep.rep == rep_id), None) if given else None
        shares.append(
            RepTeamShare(
                team=team_name,
                leads=got.leads if got else 0,
                team_leads=given.leads if given else 0,
                share=got.share if got else (0.0 if given else None),
                expected_share=expected,
            )
        )
    mine = next((group for group in by_rep.groups if group.group == rep_id), None)
    teams = {group.group: group.claim_sla for group in by_team.groups}
    return RepWeek(
        window=window,
        teams=tuple(shares),
        claim_sla=mine.claim_sla if mine is not None else proportion(0, 0),
        team_claim_sla={
            name: teams[name] for name in policy.teams_of_rep.get(rep_id, ()) if name in teams
        },
    )


async def _report(
    session: AsyncSession, policy: Policy, window: Window, by: str, now: datetime
) -> Report:
    tallies = await session.run_sync(
        partial(window_tallies, by=by, since=window.since, until=window.until, now=now)
    )
    return report_of_tallies(
        tallies,
        by=by,
        now=now,
        since=window.since,
        until=window.until,
        teams=team_weights(policy),
        fields=fields_read(policy),
    )


def _movers(now: Report, before: Report) -> tuple[Mover, ...]:
    this_week = {group.group: group for group in now.groups}
    last_week = {group.group: group for group in before.groups}
    changes = [
        (abs(_leads(this_week.get(group)) - _leads(last_week.get(group))), group)
        for group in this_week.keys() | last_week.keys()
    ]
    # Most changed first; among equals, this week's busiest, then by name.
    changes.sort(key=lambda item: (-item[0], -_leads(this_week.get(item[1])), item[1] or ""))
    return tuple(
        Mover(group, this_week.get(group), last_week.get(group))
        for change, group in changes[:MOVERS]
        if change > 0
    )


def _leads(group: GroupReport | None) -> int:
    return group.leads if group is not None else 0
