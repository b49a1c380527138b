"""One lead's story as the routing report reads it: how it was routed, how fast it moved, what
became of it. Plain data in; the report (`routing.report.tally`) only counts.

Whoever loads a story settles what happened first: its CRM and `/events` outcomes go through
`outcomes_of` (repeated and out-of-order events give one answer), and a fresh decision goes
through `story_of_decision` (used as is by `leadrouter check --leads`, which routes a file).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from routing.decision import Decision, Stage
from routing.experiments import arm_label
from routing.model import Outcome
from routing.policy import Policy


@dataclass(frozen=True, slots=True)
class LeadStory:
    """A lead from arrival to won or lost, named as the rest of the code names things.

    The report judges routing, so a lead counts under the routing it got on arrival: `rule`,
    `team`, `rep` and `method` are those of its first decision, whatever became of it since (a
    lead its rep let lapse to the queue is still its team's, with the miss; a rep who takes over
    a reassigned lead is not charged the lapse before). `outcome` is where it is now, its
    current decision's, and `current_rep` whom that gives it to: the rep the performance
    distribution credits with its conversion, not a grouping. `source`, `segment` and `region`
    are its facts. Every time is aware UTC.

    - `unmatched`: no rule matched it on arrival, so it went to the policy's fallback queue
      (a manager may have assigned it since); `unmatched_for_want_of`, the fields whose absence
      kept some rule from matching it. `fallback`: on arrival, a fallback target took it
      because the rule's own had nobody (`Decision.fallback_used`; the watchdog giving up on a
      lead later is not one).
    - `missing`: the fields the policy's rules read that it lacks.
    - `card_posted_at`: when its first card reached Slack. `claim_due_at`: when the claim SLA of
      its offer open or claimed now falls or fell due (None: no such offer has its card yet);
      `claim_misses`, how many of its offers let that SLA lapse (the watchdog's `sla_missed`).
    - `contact_due_at`: when the contact SLA, from claim to first touch, falls or fell due (None:
      not claimed, or no contact SLA); `contact_misses`, how often it lapsed.
    - `rejects` and `reassignments`: one reason each time it was rejected (the rep's choice, not
      their note) or taken from a rep (the audit kind: `sla_missed`, `rep_out_of_office`, ...).
    - `converted_at`, `won_at`, `lost_at`, `amount`, `close_date`: from `outcomes_of`.
      `amount_left_out`: an amount was reported in another currency than `LEADROUTER_CURRENCY`
      and left out, and none in ours settles `amount` (the report counts it, never sums it).
    - `policy_version` and `arm` (an experiment's), for grouping, are those of its arrival
      routing too; None where not known.
    """

    lead_id: str
    created_at: datetime
    outcome: Outcome
    rule: str | None = None
    team: str | None = None
    rep: str | None = None
    method: str | None = None
    current_rep: str | None = None
    source: str | None = None
    segment: str | None = None
    region: str | None = None
    policy_version: str | None = None
    arm: str | None = None
    unmatched: bool = False
    fallback: bool = False
    missing: frozenset[str] = frozenset()
    unmatched_for_want_of: frozenset[str] = frozenset()
    card_posted_at: datetime | None = None
    claimed_at: datetime | None = None
    claim_due_at: datetime | None = None
    claim_misses: int = 0
    first_touch_at: datetime | None = None
    contact_due_at: datetime | None = None
    contact_misses: int = 0
    rejects: tuple[str, ...] = ()
    reassignments: tuple[str, ...] = ()
    converted_at: datetime | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: Decimal | None = None
    close_date: date | None = None
    amount_left_out: bool = False


class EventKind(StrEnum):
    """What a CRM or a `POST /events` can report about a lead after the hand-over."""

    FIRST_TOUCH = "first_touch"
    CONVERTED = "converted"
    WON = "won"
    LOST = "lost"


class OutcomeEvent(NamedTuple):
    kind: EventKind
    at: datetime
    amount: Decimal | None = None
    close_date: date | None = None
    # The amount's currency as its source names it (an ISO 4217 code); None where it names none.
    # Compared at intake (`bot.service.outcomes`) and never stored: what is kept is in ours.
    currency: str | None = None


class Outcomes(NamedTuple):
    """The fields of a `LeadStory` its outcome events settle."""

    first_touch_at: datetime | None = None
    converted_at: datetime | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: Decimal | None = None
    close_date: date | None = None


def outcomes_of(events: Iterable[OutcomeEvent]) -> Outcomes:
    """What a lead's outcome events add up to, whatever their order and however often each came.

    - The first touch is the earliest; a touch before the claim is still the first touch.
    - Converted is the earliest of converted, won and lost: an opportunity won or lost exists.
    - Won or lost is the latest of those events, as an opportunity lost and reopened can be won;
      at one instant both, won is kept (one answer, whatever the order they came in).
    - The amount is the deciding won or lost event's, else the latest reported (the larger at
      one instant); the close date likewise.
    """
    touches: list[datetime] = []
    opportunity: list[datetime] = []
    closing: OutcomeEvent | None = None
    amount: tuple[datetime, Decimal] | None = None
    close_date: tuple[datetime, date] | None = None
    for event in events:
        if event.kind is EventKind.FIRST_TOUCH:
            touches.append(event.at)
            continue
        opportunity.append(event.at)
        if event.amount is not None and (amount is None or (event.at, event.amount) > amount):
            amount = (event.at, event.amount)
        if event.close_date is not None and (
            close_date is None or (event.at, event.close_date) > close_date
        ):
            close_date = (event.at, event.close_date)
        if event.kind is not EventKind.CONVERTED and (
            closing is None or _closing_order(event) > _closing_order(closing)
        ):
            closing = event
    final_amount = amount[1] if amount is not None else None
    final_close_date = close_date[1] if close_date is not None else None
    if closing is not None:
        if closing.amount is not None:
            final_amount = closing.amount
        if closing.close_date is not None:
            final_close_date = closing.close_date
    return Outcomes(
        first_touch_at=min(touches, default=None),
        converted_at=min(opportunity, default=None),
        won_at=closing.at if closing is not None and closing.kind is EventKind.WON else None,
        lost_at=closing.at if closing is not None and closing.kind is EventKind.LOST else None,
        amount=final_amount,
        close_date=final_close_date,
    )


def _closing_order(event: OutcomeEvent) -> tuple[datetime, bool, Decimal, date]:
    # Later wins; at one instant won over lost, then the larger amount, then the later date, so
    # that no two distinct events tie and the order they came in never matters.
    return (
        event.at,
        event.kind is EventKind.WON,
        event.amount if event.amount is not None else Decimal("-Infinity"),
        event.close_date if event.close_date is not None else date.min,
    )


def story_of_decision(
    decision: Decision,
    *,
    created_at: datetime,
    fields: Collection[str],
    policy_version: str | None = None,
) -> LeadStory:
    """The story of a lead just routed: its decision, facts and data gaps, nothing after.

    `fields` are those whose gaps to look for, the policy's rules' (`fields_read`)."""
    facts = decision.facts
    missing, wanting = field_gaps(decision, fields)
    return LeadStory(
        lead_id=decision.lead_id,
        created_at=created_at,
        outcome=decision.outcome,
        rule=decision.rule,
        team=decision.team,
        rep=decision.rep,
        method=decision.method,
        current_rep=decision.rep,
        source=facts.get("source"),
        segment=facts.get("segment"),
        region=facts.get("region"),
        policy_version=policy_version,
        arm=arm_label(decision.experiment, decision.arm) if decision.arm else None,
        unmatched=is_unmatched(decision),
        fallback=decision.fallback_used,
        missing=missing,
        unmatched_for_want_of=wanting,
    )


def is_unmatched(decision: Decision) -> bool:
    """Whether no rule matched the lead: queued with no rule named and no fallback taken (an
    ambiguous account and the watchdog giving up use the fallback; a rule's queue names it)."""
    return (
        decision.outcome is Outcome.QUEUED and decision.rule is None and not decision.fallback_used
    )


def field_gaps(
    decision: Decision, fields: Collection[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """Of `fields`, those the lead lacks (None or blank), and of those, the ones whose absence
    kept a rule from matching a lead no rule matched: the "industry is missing, so the
    industry rules fail" audit. A rule missed on a field is in the trace with its value."""
    missing = frozenset(name for name in fields if _blank(decision.facts.get(name)))
    if not missing or not is_unmatched(decision):
        return missing, frozenset()
    wanting = {
        step.field
        for step in decision.trace
        if step.stage is Stage.RULE and not step.ok and _blank(step.value)
    }
    return missing, missing.intersection(wanting)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def fields_read(policy: Policy) -> tuple[str, ...]:
    """The fields the policy's qualify rules and rules read, for the report's data health."""
    return tuple(sorted(policy.condition_fields))
