"""What a replay found, in figures an admin reads before changing the policy: how many leads
would have gone elsewhere, the moves (rule to rule, team to team, rep to rep) with counts and
examples, each rep's leads before and after, the unmatched share before and after, and how the
leads' SLAs change.

    summary = ReplaySummary()
    for replayed in replay.run(leads):
        summary.add(replayed)

It keeps counts and a few example ids, never the leads, so a replay of any size fits in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from routing.model import Outcome
from routing.replay import Replayed

EXAMPLES = 3  # lead ids kept for each move
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class Moves:
    """How many leads made one move, and the ids of the first few."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, lead_id: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(lead_id)


@dataclass
class ReplaySummary:
    leads: int = 0
    moved: int = 0  # would have gone elsewhere (`Replayed.moved`)
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None
    # The versions of the policy that decided the leads (None: decided before versions were kept).
    versions_before: Counter[str | None] = field(default_factory=Counter)
    outcomes_before: Counter[Outcome] = field(default_factory=Counter)
    outcomes_after: Counter[Outcome] = field(default_factory=Counter)
    unmatched_before: int = 0
    unmatched_after: int = 0
    # Each rep's leads of the window, as history gave them and as the policy would have.
    assigned_before: Counter[str] = field(default_factory=Counter)
    assigned_after: Counter[str] = field(default_factory=Counter)
    # (before, after) -> the leads that made that move, for each lead whose rule, team, or rep
    # (`Routed.where`: the outcome for a lead no rep got) changes.
    rules: dict[tuple[str | None, str | None], Moves] = field(default_factory=dict)
    teams: dict[tuple[str | None, str | None], Moves] = field(default_factory=dict)
    reps: dict[tuple[str, str], Moves] = field(default_factory=dict)
    # (SLA seconds before, after) for each lead whose SLA changes (None: no rep, no SLA).
    slas: dict[tuple[int | None, int | None], Moves] = field(default_factory=dict)

    def add(self, replayed: Replayed) -> None:
        before, after, lead_id = replayed.before, replayed.after, replayed.lead_id
        self.leads += 1
        if self.first_arrival is None:
            self.first_arrival = replayed.arrived_at
        self.last_arrival = replayed.arrived_at
        moved = replayed.moved
        if moved:
            self.moved += 1
            _add(self.reps, (before.where, after.where), lead_id)
        self.versions_before[before.policy_version] += 1
        self.outcomes_before[before.outcome] += 1
        self.outcomes_after[after.outcome] += 1
        self.unmatched_before += before.unmatched
        self.unmatched_after += after.unmatched
        if before.rep is not None:
            self.assigned_before[before.rep] += 1
        if after.rep is not None:
            self.assigned_after[after.rep] += 1
        if before.rule != after.rule:
            _add(self.rules, (before.rule, after.rule), lead_id)
        if before.team != after.team:
            _add(self.teams, (before.team, after.team), lead_id)
        if before.sla_seconds != after.sla_seconds:
            _add(self.slas, (before.sla_seconds, after.sla_seconds), lead_id)

    @property
    def reps_compared(self) -> list[str]:
        """Every rep with leads before or after, the biggest change first (then the most leads
        after)."""
        before, after = self.assigned_before, self.assigned_after
        return sorted(
            set(before) | set(after),
            key=lambda rep: (-abs(after[rep] - before[rep]), -after[rep], rep),
        )


def ranked(moves: dict[K, Moves]) -> list[tuple[K, Moves]]:
    """The moves, the most leads first (then in the order they were first seen)."""
    return sorted(moves.items(), key=lambda item: -item[1].count)


def share(count: int, of: int) -> float | None:
    return count / of if of else None


def _add(moves: dict[K, Moves], key: K, lead_id: str) -> None:
    found = moves.get(key)
    if found is None:
        found = moves[key] = Moves()
    found.add(lead_id)
