"""From tallies to the figures a RevOps admin reviews: `GroupReport`, one per group, and `Report`.

Every figure is None where there is nothing to measure it on, never a made-up 0; every share
carries its Wilson interval, so a group of 7 leads shows how little its 57% says, and a group
under TOO_FEW leads is flagged besides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from routing.distribution import Distribution
from routing.model import Outcome
from routing.policy import Policy
from routing.report.stats import Proportion, percentile, proportion
from routing.report.story import LeadStory
from routing.report.tally import ALL, SlaStatus, Tally, merge_all, tally_by, window

# Under this many leads a group's figures are flagged as too few to go by. Thirty is the usual
# rule of thumb; the intervals say the rest.
TOO_FEW = 30


class Speed(NamedTuple):
    """How long leads took to reach a step, from arrival, over the `leads` that reached it."""

    leads: int
    p50: float | None  # seconds, within 1% (`routing.report.stats`)
    p90: float | None


class RepShare(NamedTuple):
    """A rep's leads from their team's rotation against the share the team's weights give them
    (equal shares for a team that does not weigh its members)."""

    rep: str
    leads: int
    share: float  # of the team's rotation leads
    expected_share: float
    expected: float  # leads
    deviation: float  # leads - expected


class TeamFairness(NamedTuple):
    team: str
    leads: int  # that the team's rotation gave out
    reps: tuple[RepShare, ...]  # the team's members in policy order, then anyone else it gave to
    max_deviation: float  # the largest |deviation|, in leads


class FieldHealth(NamedTuple):
    """How often a field the rules read is missing, and how many leads that sent to the
    fallback queue (no rule matched, and a rule missed for want of it)."""

    field: str
    missing: Proportion  # of the group's leads
    unmatched_for_want_of: int


@dataclass(frozen=True, slots=True)
class GroupReport:
    """The figures of one group of leads (`by` its `group`: a rule's name, a team, ...)."""

    by: str
    group: str | None  # None: the leads that have no value for `by` (queued leads have no team)
    leads: int
    too_few: bool
    assigned: Proportion  # each outcome's share of the leads
    queued: Proportion
    nurture: Proportion
    disqualified: Proportion
    unmatched: Proportion  # no rule matched: the fallback queue
    fallback: Proportion  # a fallback target took it, the rule's own having nobody
    time_to_card: Speed
    time_to_claim: Speed
    time_to_first_touch: Speed
    claim_sla: Proportion  # met, of the leads whose claim SLA was met or missed
    claim_sla_pending: int
    contact_sla: Proportion
    contact_sla_pending: int
    rejects: Mapping[str, int]  # by reason, most first
    reassignments: Mapping[str, int]
    fairness: tuple[TeamFairness, ...]  # by team name
    data_health: tuple[FieldHealth, ...]
    converted: Proportion  # leads with an opportunity, of the leads
    won: Proportion  # won, of the opportunities closed (won or lost): the win rate
    lost: int
    pipeline: Decimal | None  # the amounts of every opportunity; None when none had one
    priced: int  # opportunities with an amount
    won_amount: Decimal | None  # None when none was won
    # Opportunities whose amount was in another currency: in no sum above, counted here.
    amounts_left_out: int = 0
    currency: str | None = None  # what the amounts are in (`LEADROUTER_CURRENCY`), if named

    @property
    def rejects_per_100(self) -> float | None:
        return per_100(sum(self.rejects.values()), self.leads)

    @property
    def reassignments_per_100(self) -> float | None:
        return per_100(sum(self.reassignments.values()), self.leads)


@dataclass(frozen=True, slots=True)
class Report:
    """A report's groups, most leads first, and the figures of all its leads together."""

    by: str
    since: datetime | None
    until: datetime
    now: datetime
    groups: tuple[GroupReport, ...]
    total: GroupReport


def build_report(
    stories: Iterable[LeadStory],
    *,
    by: str,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    teams: Mapping[str, Mapping[str, int]] | None = None,
    fields: Collection[str] = (),
    currency: str | None = None,
) -> Report:
    """The report of the leads that arrived in [since, until) (until: `now`), grouped `by` one of
    `tally.GROUPINGS`, as things stand at `now`.

    `teams` maps each team to its members' weights (`team_weights`); `fields` are the fields
    whose data health to show (`story.fields_read`; those seen missing when empty); `currency`
    what the amounts are in (`LEADROUTER_CURRENCY`; None: not named)."""
    start, end = window(now=now, since=since, until=until)
    tallies = tally_by(stories, by=by, now=now, since=start, until=end)
    return report_of_tallies(
        tallies,
        by=by,
        now=now,
        since=start,
        until=end,
        teams=teams,
        fields=fields,
        currency=currency,
    )


def report_of_tallies(
    tallies: Mapping[str | None, Tally],
    *,
    by: str,
    now: datetime,
    since: datetime | None,
    until: datetime,
    teams: Mapping[str, Mapping[str, int]] | None = None,
    fields: Collection[str] = (),
    currency: str | None = None,
) -> Report:
    """The report of tallies already made, one per group: by `tally_by`, or merged from rollups
    that covered [since, until) between them."""
    weights = teams or {}
    groups = tuple(
        group_report(by, key, tally, teams=weights, fields=fields, currency=currency)
        for key, tally in sorted(tallies.items(), key=_most_leads_first)
    )
    total = group_report(
        by, ALL, merge_all(tallies.values()), teams=weights, fields=fields, currency=currency
    )
    return Report(by, since, until, now, groups, total)


def _most_leads_first(item: tuple[str | None, Tally]) -> tuple[int, bool, str]:
    key, tally = item
    return (-tally.leads, key is None, key or "")


def group_report(
    by: str,
    group: str | None,
    tally: Tally,
    *,
    teams: Mapping[str, Mapping[str, int]],
    fields: Collection[str],
    currency: str | None = None,
) -> GroupReport:
    leads = tally.leads
    outcomes = tally.outcomes
    closed = tally.won + tally.lost
    return GroupReport(
        by=by,
        group=group,
        leads=leads,
        too_few=leads < TOO_FEW,
        assigned=proportion(outcomes[Outcome.ASSIGNED.value], leads),
        queued=proportion(outcomes[Outcome.QUEUED.value], leads),
        nurture=proportion(outcomes[Outcome.NURTURE.value], leads),
        disqualified=proportion(outcomes[Outcome.DISQUALIFIED.value], leads),
        unmatched=proportion(tally.unmatched, leads),
        fallback=proportion(tally.fallback, leads),
        time_to_card=speed(tally.time_to_card),
        time_to_claim=speed(tally.time_to_claim),
        time_to_first_touch=speed(tally.time_to_first_touch),
        claim_sla=_compliance(tally.claim_sla),
        claim_sla_pending=tally.claim_sla[SlaStatus.PENDING.value],
        contact_sla=_compliance(tally.contact_sla),
        contact_sla_pending=tally.contact_sla[SlaStatus.PENDING.value],
        rejects=_by_count(tally.rejects),
        reassignments=_by_count(tally.reassignments),
        fairness=fairness(tally.picks, teams),
        data_health=data_health(tally, fields),
        converted=proportion(tally.converted, leads),
        won=proportion(tally.won, closed),
        lost=tally.lost,
        pipeline=tally.pipeline if tally.priced else None,
        priced=tally.priced,
        won_amount=tally.won_amount if tally.won else None,
        amounts_left_out=tally.amounts_left_out,
        currency=currency,
    )


def speed(buckets: Mapping[int, int]) -> Speed:
    return Speed(sum(buckets.values()), percentile(buckets, 0.5), percentile(buckets, 0.9))


def per_100(count: int, leads: int) -> float | None:
    return 100 * count / leads if leads else None


def _compliance(statuses: Counter[str]) -> Proportion:
    met = statuses[SlaStatus.MET.value]
    return proportion(met, met + statuses[SlaStatus.MISSED.value])


def _by_count(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def fairness(
    picks: Mapping[tuple[str, str], int], teams: Mapping[str, Mapping[str, int]]
) -> tuple[TeamFairness, ...]:
    """Each team's rotation leads per rep against the rep's share, for the teams that gave any.

    A rep no longer in the team (in `teams`) has no share: their leads all count as deviation."""
    given: dict[str, Counter[str]] = {}
    for (team, rep), count in picks.items():
        if count > 0:
            given.setdefault(team, Counter())[rep] += count
    result = []
    for team in sorted(given):
        counts = given[team]
        weights = teams.get(team) or dict.fromkeys(sorted(counts), 1)
        total_weight = sum(weights.values())
        leads = sum(counts.values())
        reps = [*weights, *sorted(rep for rep in counts if rep not in weights)]
        shares = []
        for rep in reps:
            expected_share = weights.get(rep, 0) / total_weight
            got = counts[rep]
            expected = leads * expected_share
            shares.append(RepShare(rep, got, got / leads, expected_share, expected, got - expected))
        worst = max(abs(share.deviation) for share in shares)
        result.append(TeamFairness(team, leads, tuple(shares), worst))
    return tuple(result)


def team_weights(policy: Policy) -> dict[str, dict[str, int]]:
    """Each team's members with the weight its distribution gives them: the reps' weights for a
    weighted team, 1 each for round robin and least loaded."""
    return {
        team.name: {
            member: policy.reps[member].weight if team.distribution is Distribution.WEIGHTED else 1
            for member in team.members
        }
        for team in policy.teams.values()
    }


def data_health(tally: Tally, fields: Collection[str]) -> tuple[FieldHealth, ...]:
    """For each of `fields` (or, when none are given, each field seen missing) in order."""
    names = fields or sorted(set(tally.missing) | set(tally.unmatched_for_want_of))
    return tuple(
        FieldHealth(
            name,
            proportion(tally.missing[name], tally.leads),
            tally.unmatched_for_want_of[name],
        )
        for name in names
    )
