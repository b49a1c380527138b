"""Performance-aware distribution: each rep weighted by how often leads like this one converted
for them, within the fairness floor and ceiling the team's admin sets.

The rates are plain data (`OutcomeCounts`, per team, from the report's lead stories, refreshed
by the process now and then: rates change slowly). A rep's rate in the lead's cell (segment and
source; else the segment; else every lead) is shrunk toward the team's rate in that cell, a
Beta-binomial posterior mean with the team's rate as the prior's mean and `prior` leads as its
strength:

    shrunk = (converted + prior * team_rate) / (leads + prior)

and the rep's weight is `shrunk / team_rate`: 1.0 for a rep converting at the team's rate. Those
weights drive the smooth weighted round robin of `routing.distribution.pick_weighted`; with no
outcomes at all every weight is equal and the picks are `weighted`'s with equal weights.

The fairness bounds are enforced on the team's own picks over the trailing seven UTC days
(`TeamState.days`, saved with the team's rotation under its lock): with N the team's picks of the
week counting this one and m its members, a rep under `floor * N / m` is picked first (the one
with fewest leads), and a rep whose lead would take them past `ceil(ceiling * N / m)` is passed
over for this lead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from routing.distribution import TeamState

WEEK_DAYS = 7
DEFAULT_PRIOR = 20.0
DEFAULT_WINDOW_DAYS = 90
# Weights go to the round robin as whole numbers: hundredths of the team's rate.
WEIGHT_SCALE = 100
_EPSILON = 1e-9


class Tally(NamedTuple):
    leads: int
    converted: int


Cell = tuple[str | None, str | None]  # (segment, source as `source_key` gives it)
# (rep, segment, source, leads, converted), as `storage.repository.outcome_counts` reads them
OutcomeRow = tuple[str, str | None, str | None, int, int]


def source_key(source: str | None) -> str | None:
    """A source as cells are keyed: trimmed, any case; None for no source."""
    if source is None:
        return None
    key = source.strip().casefold()
    return key or None


@dataclass(frozen=True, slots=True)
class OutcomeCounts:
    """How many leads each rep was given and how many of them converted, by cell: segment and
    source, segment alone, and all together. Built from (rep, segment, source, leads, converted)
    rows by `from_rows`."""

    by_cell: Mapping[Cell, Mapping[str, Tally]] = field(default_factory=dict)
    by_segment: Mapping[str | None, Mapping[str, Tally]] = field(default_factory=dict)
    overall: Mapping[str, Tally] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[OutcomeRow]) -> OutcomeCounts:
        by_cell: dict[Cell, dict[str, Tally]] = {}
        by_segment: dict[str | None, dict[str, Tally]] = {}
        overall: dict[str, Tally] = {}
        for rep, segment, source, leads, converted in rows:
            if leads <= 0:
                continue
            for table in (
                by_cell.setdefault((segment, source_key(source)), {}),
                by_segment.setdefault(segment, {}),
                overall,
            ):
                seen = table.get(rep, Tally(0, 0))
                table[rep] = Tally(seen.leads + leads, seen.converted + converted)
        return cls(by_cell, by_segment, overall)

    def restricted_to(self, reps: Iterable[str]) -> OutcomeCounts:
        """These counts for `reps` only (a team's members)."""
        keep = frozenset(reps)

        def only(table: Mapping[str, Tally]) -> dict[str, Tally]:
            return {rep: tally for rep, tally in table.items() if rep in keep}

        by_cell = {cell: kept for cell, table in self.by_cell.items() if (kept := only(table))}
        by_segment = {
            segment: kept for segment, table in self.by_segment.items() if (kept := only(table))
        }
        return OutcomeCounts(by_cell, by_segment, only(self.overall))


NO_OUTCOMES = OutcomeCounts()


@dataclass(frozen=True, slots=True)
class RepRate:
    leads: int
    converted: int
    shrunk: float
    weight: float


@dataclass(frozen=True, slots=True)
class Rates:
    """The members' rates for one lead: the cell they were read in, and the team's rate there.
    `cell` is None when no member has any outcome (every weight is then 1)."""

    cell: str | None
    wanted: str  # the lead's own cell, as people read it
    team_rate: float
    reps: Mapping[str, RepRate]

    @property
    def fell_back(self) -> bool:
        return self.cell is not None and self.cell != self.wanted

    def weights(self, reps: Iterable[str]) -> dict[str, int]:
        """The round robin's whole-number weights of `reps`."""
        return {
            rep: max(1, round(self.reps[rep].weight * WEIGHT_SCALE)) if self.cell else WEIGHT_SCALE
            for rep in reps
        }


def _label(segment: str | None, source: str | None) -> tuple[str, str]:
    seg = segment or "no-segment"
    return f"{seg}/{source or 'no-source'}", seg


def rates_for(
    counts: OutcomeCounts,
    members: Sequence[str],
    segment: str | None,
    source: str | None,
    prior: float,
) -> Rates:
    """The members' shrunk rates for a lead of `segment` and `source`: in the narrowest cell where
    some member has leads (segment and source, then segment, then all leads)."""
    source = source_key(source)
    both, seg_label = _label(segment, source)
    levels: tuple[tuple[str, Mapping[str, Tally] | None], ...] = (
        (both, counts.by_cell.get((segment, source))),
        (seg_label, counts.by_segment.get(segment)),
        ("all", counts.overall),
    )
    for label, table in levels:
        if not table:
            continue
        tallies = {rep: table.get(rep, Tally(0, 0)) for rep in members}
        leads = sum(t.leads for t in tallies.values())
        if leads == 0:
            continue
        team_rate = sum(t.converted for t in tallies.values()) / leads
        reps = {}
        for rep, tally in tallies.items():
            if tally.leads + prior > 0:
                shrunk = (tally.converted + prior * team_rate) / (tally.leads + prior)
            else:
                shrunk = team_rate
            weight = shrunk / team_rate if team_rate > 0 else 1.0
            reps[rep] = RepRate(tally.leads, tally.converted, shrunk, weight)
        return Rates(label, both, team_rate, reps)
    return Rates(None, both, 0.0, {rep: RepRate(0, 0, 0.0, 1.0) for rep in members})


@dataclass(frozen=True, slots=True)
class Fairness:
    """No member below `floor` or above `ceiling` times an equal share of the team's week."""

    floor: float = 0.0
    ceiling: float | None = None


def week_start(today: date) -> str:
    """The first day the trailing week counts, as `TeamState.days` keys days (ISO)."""
    return (today - timedelta(days=WEEK_DAYS - 1)).isoformat()


def week_counts(state: TeamState, today: date) -> dict[str, int]:
    """Each rep's leads from the team over the trailing seven days, today included."""
    first = week_start(today)
    counts: dict[str, int] = {}
    for day, reps in state.days.items():
        if day >= first:
            for rep, count in reps.items():
                counts[rep] = counts.get(rep, 0) + count
    return counts


@dataclass(frozen=True, slots=True)
class PerformancePick:
    """The rep chosen, the team's next state, and the week's figures the trace gives."""

    rep: str
    state: TeamState
    week: int  # the rep's leads this week, this one included
    total: int  # the team's leads this week, this one included
    low: float | None  # the share bounds, as fractions (None: not bounded)
    high: float | None
    below_floor: bool  # picked ahead of the round robin's choice for being under the floor
    at_ceiling: tuple[tuple[str, int], ...]  # eligible reps passed over (rep, leads this week)
    over_ceiling: bool = False  # every eligible rep was at the ceiling: it gave way


def pick_performance(
    members: Sequence[str],
    eligible: Sequence[str],
    weights: Mapping[str, int],
    state: TeamState,
    fairness: Fairness | None,
    today: date,
) -> tuple[PerformancePick | None, tuple[tuple[str, int], ...]]:
    """The next rep by smooth weighted round robin (`pick_weighted`'s rule), within `fairness`.

    Every eligible member's credit grows by its weight whoever is chosen, as in `pick_weighted`,
    so that a pick the bounds change leaves the round robin where it would otherwise stand.
    Returns the pick (None when nobody is eligible; when every eligible member is at the
    ceiling, it gives way: see `over_ceiling`) and the members passed over at the ceiling.
    """
    if not eligible:
        return None, ()
    current = dict(state.performance)
    total = sum(weights.get(rep, 1) for rep in eligible)
    ranked: list[tuple[tuple[bool, int, int], int, str]] = []
    for index, rep in enumerate(eligible):
        weight = weights.get(rep, 1)
        credit = current.get(rep, 0) + weight
        current[rep] = credit
        due_in = -((credit - total) // weight)
        ranked.append(((credit <= 0, due_in, -credit), index, rep))
    ranked.sort()
    order = [rep for _key, _index, rep in ranked]
    week = week_counts(state, today)
    member_set = set(members)
    picked = sum(count for rep, count in week.items() if rep in member_set) + 1
    size = max(1, len(members))
    low = high = None
    below = False
    capped: tuple[tuple[str, int], ...] = ()
    chosen: str | None = order[0]
    if fairness is not None:
        low = fairness.floor / size
        floor_line = fairness.floor * picked / size
        under = [rep for rep in order if week.get(rep, 0) < floor_line - _EPSILON]
        if fairness.ceiling is not None:
            high = fairness.ceiling / size
            cap = math.ceil(fairness.ceiling * picked / size - _EPSILON)
            capped = tuple((rep, week.get(rep, 0)) for rep in order if week.get(rep, 0) + 1 > cap)
        if under:
            # Ranked first by how few leads, then by the round robin's order.
            chosen = min(under, key=lambda rep: week.get(rep, 0))
            below = chosen != order[0]  # said only where the floor changed the pick
        else:
            at_cap = {rep for rep, _ in capped}
            chosen = next((rep for rep in order if rep not in at_cap), None)
    over_ceiling = chosen is None
    if chosen is None:
        # Every rep who can take it is at the ceiling (the others away, full or off hours): the
        # ceiling keeps leads from piling on one rep while others wait, and here nobody waits.
        # A lead is not queued for fairness alone.
        chosen = order[0]
    current[chosen] -= total
    today_key = today.isoformat()
    first = week_start(today)
    days = {day: dict(reps) for day, reps in state.days.items() if day >= first}
    on_day = days.setdefault(today_key, {})
    on_day[chosen] = on_day.get(chosen, 0) + 1
    new_state = TeamState(chosen, state.current, days, current)
    pick = PerformancePick(
        chosen,
        new_state,
        week.get(chosen, 0) + 1,
        picked,
        low,
        high,
        below,
        tuple(item for item in capped if item[0] != chosen),
        over_ceiling,
    )
    return pick, pick.at_ceiling


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def explain_pick(name: str, pick: PerformancePick, rates: Rates) -> str:
    """Why `pick.rep` (called `name`) was chosen, in numbers, for the trace."""
    rate = rates.reps.get(pick.rep)
    if rates.cell is None or rate is None:
        parts = [f"{name}: no outcomes yet for the team, equal weights"]
    else:
        observed = rate.converted / rate.leads if rate.leads else 0.0
        cell = "" if rates.cell == "all" else f"{rates.cell} "
        text = (
            f"{name}: {_percent(observed)} converted on {rate.leads} {cell}leads, "
            f"shrunk to {_percent(rate.shrunk)} (team {_percent(rates.team_rate)})"
        )
        if rates.fell_back:
            text += f" [no {rates.wanted} outcomes: {rates.cell} leads]"
        parts = [text, f"weight {rate.weight:.1f}"]
    week = f"{pick.week} of {pick.total} this week, share {_percent(pick.week / pick.total)}"
    if pick.low is not None:
        high = _percent(pick.high) if pick.high is not None else "any"
        week += f" within {_percent(pick.low)}-{high}"
    parts.append(week)
    if pick.below_floor:
        parts.append("below the fairness floor, so first")
    if pick.over_ceiling:
        parts.append("every rep who can take it is at the fairness ceiling, so it gives way")
    return "; ".join(parts)
