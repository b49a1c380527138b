"""What the engine decides, and the trace that says why: `Decision`, its `Step`s, and the
`RoutingState` a decision is made against.

A decision is plain data: stored as it is (its trace as `Step.as_dict()`), explained by
`routing.explain`, carded by the bot. `routing.engine.route` makes them; `routing.overrides`
makes the few that the rules do not (the watchdog's, a manager's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from routing.distribution import Distribution, TeamState
from routing.model import AccountMatch, OpenLead, Outcome, OutOfOffice
from routing.performance import OutcomeCounts


class Stage(StrEnum):
    NORMALISE = "normalise"
    EXPERIMENT = "experiment"
    QUALIFY = "qualify"
    ACCOUNT = "account"
    PERSON = "person"
    STICKY = "sticky"
    RULE = "rule"
    TARGET = "target"
    REP = "rep"
    FALLBACK = "fallback"


class Step(NamedTuple):
    """One line of a decision's trace.

    For a rule: `subject` is its name, `ok` whether it matched, `detail` the clause that decided,
    and `field`/`value` the lead's value for that clause. For a rep: `ok` is True for the rep who
    was chosen, and `detail` says why any other was skipped ("outside working hours").

    A NamedTuple rather than a frozen dataclass: a decision writes a few dozen of these, and
    building a tuple costs a fraction of a frozen dataclass's per-field __setattr__. On the hot
    path they are built with `tuple.__new__(Step, (...))`, one C call, where the NamedTuple's own
    __new__ is a Python function: every field given, in this order.
    """

    stage: Stage
    subject: str
    ok: bool
    detail: str = ""
    field: str | None = None
    value: Any = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The step as plain data keyed by field name, as a stored trace holds it."""
        return {
            "stage": self.stage,
            "subject": self.subject,
            "ok": self.ok,
            "detail": self.detail,
            "field": self.field,
            "value": self.value,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """A step back from its stored form (`as_dict`)."""
        return cls(
            Stage(data["stage"]),
            data["subject"],
            data["ok"],
            data.get("detail", ""),
            data.get("field"),
            data.get("value"),
            data.get("note"),
        )


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What the engine needs to know about the world besides the policy and the accounts."""

    open_loads: Mapping[str, int] = field(default_factory=dict)
    out_of_office: Mapping[str, OutOfOffice] = field(default_factory=dict)
    teams: Mapping[str, TeamState] = field(default_factory=dict)
    # account id -> reps holding that account's open leads, most recent first (sticky accounts)
    account_reps: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # e-mail address (the `email` fact, `canonical_email`) -> that person's open leads, most
    # recent first, one for each rep holding any (the same person, under another lead id)
    person_leads: Mapping[str, Sequence[OpenLead]] = field(default_factory=dict)
    # team -> its members' outcome counts, for `distribution: performance` (refreshed now and
    # then by the process, not read per decision; empty: equal weights)
    outcomes: Mapping[str, OutcomeCounts] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """What the engine decided and why. Treat it as read-only; it is not frozen only because a
    frozen dataclass's __init__ costs a __setattr__ per field, once per lead."""

    lead_id: str
    outcome: Outcome
    reason: str
    rep: str | None = None
    team: str | None = None
    rule: str | None = None
    method: str | None = None
    queue: str | None = None
    channel: str | None = None
    sla_seconds: int | None = None
    # When the assigned rep's SLA falls due, in UTC, on the policy's `sla.clock` (sla_deadline).
    sla_due_at: datetime | None = None
    account: AccountMatch | None = None
    team_state: TeamState | None = None
    fallback_used: bool = False
    trace: tuple[Step, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    # The experiment the lead took part in and its arm ("control", "candidate"); None outside.
    experiment: str | None = None
    arm: str | None = None


# How a decision's `method` reads to a person.
METHOD_LABELS = {
    Distribution.ROUND_ROBIN: "round robin",
    Distribution.WEIGHTED: "weighted round robin",
    Distribution.LEAST_LOADED: "least loaded",
    Distribution.PERFORMANCE: "performance-weighted",
    "account_owner": "account owner",
    "direct": "named rep",
    "sticky": "sticky account",
    "same_person": "same person",
}
