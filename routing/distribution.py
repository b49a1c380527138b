"""Picking one rep inside a team: round robin, smooth weighted round robin, least loaded.

Each picker is a pure function of the team's members, who is eligible right now, and the team's
`TeamState`; it returns the chosen rep and the team's next state. Nobody is owed leads for time
they could not take them: a rep who was out of office, off hours or at capacity is simply not in
`eligible`, so the rotation moves past them and the weighted counters of absent reps do not grow.
When they come back they take their normal share from then on, not a flood of catch-up leads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Distribution(StrEnum):
    """How a team shares its leads (a team's `distribution` in the policy)."""

    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"
    PERFORMANCE = "performance"  # weighted by outcome rates (`routing.performance`)


@dataclass(frozen=True, slots=True)
class TeamState:
    """Where a team's rotation stands.

    `last_rep` is the rep who got the team's previous lead (round robin and least-loaded ties go
    on from there); `current` holds the smooth-weighted-round-robin counters of the weighted
    distribution. Keyed by rep id rather than position, so editing the member list keeps places.
    `days` counts the team's picks of the trailing week by UTC day (ISO date -> rep -> leads),
    for the performance distribution's fairness bounds; the other distributions carry it along,
    as they carry `performance`.
    """

    last_rep: str | None = None
    current: Mapping[str, int] = field(default_factory=dict)
    days: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # The performance distribution's credits, in its own units (weights about 100 a rep): kept
    # apart from `weighted`'s so that neither skews the other, whether the team switches from
    # one to the other or an experiment runs both at once on the team.
    performance: Mapping[str, int] = field(default_factory=dict)


def rotation_order(members: Sequence[str], last_rep: str | None) -> list[str]:
    """Members in the order their turns come, starting after `last_rep`."""
    if last_rep is None or last_rep not in members:
        return list(members)
    start = members.index(last_rep) + 1
    return [*members[start:], *members[:start]]


def pick_round_robin(
    members: Sequence[str], is_eligible: Callable[[str], bool], state: TeamState
) -> tuple[str | None, TeamState]:
    """The next member in strict rotation who is eligible. Stops asking at the first one."""
    for rep in rotation_order(members, state.last_rep):
        if is_eligible(rep):
            return rep, TeamState(rep, state.current, state.days, state.performance)
    return None, state


def pick_least_loaded(
    members: Sequence[str], eligible: Sequence[str], loads: Mapping[str, int], state: TeamState
) -> tuple[str | None, TeamState]:
    """The eligible member with the fewest open leads; ties go by rotation order."""
    if not eligible:
        return None, state
    allowed = set(eligible)
    best: str | None = None
    best_load = 0
    for rep in rotation_order(members, state.last_rep):
        if rep not in allowed:
            continue
        load = loads.get(rep, 0)
        if best is None or load < best_load:
            best, best_load = rep, load
    return best, TeamState(best, state.current, state.days, state.performance)


def pick_weighted(
    eligible: Sequence[str], weights: Mapping[str, int], state: TeamState
) -> tuple[str | None, TeamState]:
    """Smooth weighted round robin, choosing by earliest deadline.

    Each pick, every eligible member's credit grows by its weight (W is the eligible weights'
    sum); the chosen member gives back W. A member's next lead is *due* when its credit would
    reach W, which is ceil((W - credit) / weight) picks away. We choose the member whose lead is
    due soonest among those with credit > 0 (ties: more credit, then member order).

    Plain smooth weighted round robin (the nginx rule: highest credit wins) interleaves well but
    can fall more than one lead behind a member's share: weights 1,1,1,1,7,7 after 13 picks give
    a weight-7 member 4 leads against a share of 5.06. Choosing by deadline is earliest-deadline-
    first scheduling of each member's "k-th lead" windows, which on one stream keeps every
    member within one lead of n * weight / W after every pick n, from a fresh state.

    Only eligible members' credits move, which is what keeps absence debt-free.
    """
    if not eligible:
        return None, state
    current = dict(state.current)
    total = sum(weights.get(rep, 1) for rep in eligible)
    best: str | None = None
    best_key: tuple[bool, int, int] | None = None
    for rep in eligible:
        weight = weights.get(rep, 1)
        credit = current.get(rep, 0) + weight
        current[rep] = credit
        due_in = -((credit - total) // weight)  # ceil((total - credit) / weight)
        key = (credit <= 0, due_in, -credit)
        if best_key is None or key < best_key:
            best, best_key = rep, key
    assert best is not None
    current[best] -= total
    return best, TeamState(best, current, state.days, state.performance)
