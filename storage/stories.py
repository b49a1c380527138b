# Just over 400 lines on purpose: a story is made from several tables at once, and the queries
# and the assembling read best side by side.
"""A lead's story as rows: what the routing report reads of a lead (`routing.report.LeadStory`),
made from the rows that record what happened to it, and stored flat in `lead_stories`.

Where each part of a story comes from:

- the lead's routing on arrival (its first row in `decisions`): rule, team, rep, how the rep was
  picked, whether a fallback took it, unmatched as `routing.report` says, its policy version and
  experiment arm: the report judges that routing, whatever became of the lead since; the fields
  the policy's rules read that the lead lacks (its facts) and, for a lead unmatched on arrival,
  those whose absence kept a rule from matching it (that decision's trace);
- its current decision (its latest row): the outcome, and the rep it gives the lead to (the
  performance distribution's rates credit that rep with a conversion);
- its offers: when its first card reached Slack; the claim SLA's due time, that of its open or
  claimed offer once its card is out, else of its latest offer that let the SLA lapse (so a
  lead moved on after a miss is charged it, whether it waits in a queue or for its next card);
  how many offers lapsed;
- its audit trail: when it was claimed, the reason of each reject (the rep's choice in the modal,
  not their note), and each time it was taken from a rep (the audit kind);
- its contact SLA (the offers' `contact_due_at`, set at each claim, and the lapses the contact
  watchdog recorded); a lead it took from its rep is a reassignment, `contact_missed`;
- its outcome events (`lead_events`), folded by `routing.report.outcomes_of`; an amount left
  out for its currency (an `amount_left_out` audit row), where no amount in ours settles one;
- its policy version as people read it (`short_version`: `unversioned` before versions were
  kept).

Every one of those rows is written with the time it was written (an audit event's `at`, an
offer's `card_posted_at`, an event's arrival), which is how the report finds the stories to make
again (`storage.repository.report.leads_changed_since`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.decision import Decision, Step
from routing.experiments import arm_label
from routing.model import Outcome, reject_parts
from routing.policy_version import short_version
from routing.report import EventKind, LeadStory, OutcomeEvent, outcomes_of
from routing.report.story import field_gaps, is_unmatched
from storage.models import AuditEventRow, DecisionRow, LeadEventRow, OfferStatus
from storage.repository.common import LEADS, OFFERS, id_chunks, table_of
from storage.repository.outcomes import AMOUNT_LEFT_OUT

OTHER_REASON = "Other"
CENT = Decimal("0.01")
CLAIMED = "claimed"
REJECTED = "rejected"
# The audit kinds of a lead taken from its rep (`bot.service.kinds` and `offers.reassign`'s).
TAKEN_KINDS = ("sla_missed", "rep_out_of_office", "reassigned", "card_undeliverable")
CONTACT_MISSED = "contact_missed"  # a contact SLA lapsed (`bot.service.kinds`)
_UNCONTACTED = OfferStatus.UNCONTACTED.value  # an offer taken back for a contact SLA's lapse
_OPEN = (OfferStatus.OFFERED.value, OfferStatus.CLAIMED.value)
_EXPIRED = OfferStatus.EXPIRED.value

_DECISIONS = table_of(DecisionRow)
_AUDITS = table_of(AuditEventRow)
_EVENTS = table_of(LeadEventRow)


@dataclass(slots=True)
class LeadSources:
    """What the report needs of one lead, as loaded."""

    created_at: datetime
    facts: Mapping[str, Any]
    arrival: Any = None  # its first decisions row (without its trace): how it was routed
    decision: Any = None  # its latest decisions row (without its trace): where it is now
    offers: list[Any] = field(default_factory=list)  # oldest first
    audits: list[Any] = field(default_factory=list)  # oldest first, of the kinds read


@dataclass(frozen=True, slots=True)
class StorySources:
    """What some leads' stories are made from, as loaded (`load_story_sources`); `stories_from`
    makes them, apart, so that the loading is all a reading session does."""

    leads: Mapping[int, LeadSources]
    # A decision's steps, by its id: the arrival decisions of unmatched leads lacking a field.
    traces: Mapping[int, Any]
    events: Mapping[int, Sequence[OutcomeEvent]]
    fields: tuple[str, ...]


def load_story_sources(
    session: Session, *, lead_ids: Iterable[int], fields: Collection[str]
) -> StorySources:
    """The rows these leads' stories are made from; `fields` are those whose gaps to look for
    (`routing.report.fields_read` of the policy)."""
    sources: dict[int, LeadSources] = {}
    for chunk in id_chunks(lead_ids):
        _load(session, chunk, sources)
    ids = sorted(sources)
    wanted_traces = [
        source.arrival.id
        for source in sources.values()
        if source.arrival is not None and _needs_trace(source, fields)
    ]
    return StorySources(
        leads=sources,
        traces=_traces(session, wanted_traces),
        events=outcome_events(session=session, lead_ids=ids),
        fields=tuple(fields),
    )


def stories_from(sources: StorySources) -> dict[int, LeadStory]:
    """The stories of the leads loaded, as their rows say; a lead with no decision has none."""
    stories = {}
    for lead_id in sorted(sources.leads):
        source = sources.leads[lead_id]
        if source.arrival is None:
            continue
        stories[lead_id] = _story(
            lead_id,
            source,
            fields=sources.fields,
            trace=sources.traces.get(source.arrival.id, ()),
            events=sources.events.get(lead_id, ()),
        )
    return stories


# --- outcome events ----------------------------------------------------------------------------


def outcome_events(*, session: Session, lead_ids: Sequence[int]) -> dict[int, list[OutcomeEvent]]:
    """Each lead's outcome events (first touch, converted, won, lost), in any order."""
    found: dict[int, list[OutcomeEvent]] = {}
    for chunk in id_chunks(lead_ids):
        rows = session.execute(
            select(
                _EVENTS.c.lead_id,
                _EVENTS.c.kind,
                _EVENTS.c.at,
                _EVENTS.c.amount,
                _EVENTS.c.close_date,
            ).where(_EVENTS.c.lead_id.in_(chunk))
        )
        for lead_id, kind, at, amount, close_date in rows:
            amount = Decimal(amount) if amount is not None else None
            found.setdefault(lead_id, []).append(
                OutcomeEvent(EventKind(kind), at, amount, close_date)
            )
    return found


def leads_with_events_since(*, session: Session, since: datetime) -> set[int]:
    """The leads an outcome event arrived for at or after `since` (when it was stored here,
    whatever time it reports: a late or repeated event is found by its arrival)."""
    rows = session.execute(select(_EVENTS.c.lead_id).where(_EVENTS.c.recorded_at >= since))
    return set(rows.scalars())


# --- loading ------------------------------------------------------------------------------------


def _load(session: Session, chunk: list[int], sources: dict[int, LeadSources]) -> None:
    leads = session.execute(
        select(LEADS.c.id, LEADS.c.created_at, LEADS.c.facts).where(LEADS.c.id.in_(chunk))
    )
    for lead_id, created_at, facts in leads:
        sources[lead_id] = LeadSources(created_at, facts or {})
    decisions = session.execute(
        select(
            _DECISIONS.c.id,
            _DECISIONS.c.lead_id,
            _DECISIONS.c.outcome,
            _DECISIONS.c.rule,
            _DECISIONS.c.team,
            _DECISIONS.c.rep_id,
            _DECISIONS.c.method,
            _DECISIONS.c.fallback,
            _DECISIONS.c.policy_version,
            _DECISIONS.c.experiment,
            _DECISIONS.c.arm,
        )
        .where(_DECISIONS.c.lead_id.in_(chunk))
        .order_by(_DECISIONS.c.id)
    )
    # Every decision of these leads, in the order they were made (a lead's are made one at a
    # time, under its lock): the first is its arrival routing, the last where it is now. Read
    # by `lead_id`, indexed, as before: a story reads no more rows than when it took the last.
    for decision in decisions:
        source = sources[decision.lead_id]
        if source.arrival is None:
            source.arrival = decision
        source.decision = decision
    offers = session.execute(
        select(
            OFFERS.c.lead_id,
            OFFERS.c.status,
            OFFERS.c.card_posted_at,
            OFFERS.c.sla_due_at,
            OFFERS.c.contact_due_at,
        )
        .where(OFFERS.c.lead_id.in_(chunk))
        .order_by(OFFERS.c.id)
    )
    for offer in offers:
        sources[offer.lead_id].offers.append(offer)
    audits = session.execute(
        select(_AUDITS.c.lead_id, _AUDITS.c.kind, _AUDITS.c.at, _AUDITS.c.reason)
        .where(
            _AUDITS.c.lead_id.in_(chunk),
            _AUDITS.c.kind.in_((CLAIMED, REJECTED, CONTACT_MISSED, AMOUNT_LEFT_OUT, *TAKEN_KINDS)),
        )
        .order_by(_AUDITS.c.id)
    )
    for audit in audits:
        sources[audit.lead_id].audits.append(audit)


def _needs_trace(source: LeadSources, fields: Collection[str]) -> bool:
    # Only a lead unmatched on arrival lacking a field can have been unmatched for want of it.
    decision = source.arrival
    unmatched = decision.outcome == Outcome.QUEUED.value and decision.rule is None
    return unmatched and not decision.fallback and bool(_missing(source.facts, fields))


def _traces(session: Session, decision_ids: list[int]) -> dict[int, Any]:
    traces: dict[int, Any] = {}
    for chunk in id_chunks(decision_ids):
        rows = session.execute(
            select(_DECISIONS.c.id, _DECISIONS.c.trace).where(_DECISIONS.c.id.in_(chunk))
        )
        traces.update(
            (decision_id, tuple(Step.from_dict(step) for step in trace))
            for decision_id, trace in rows
        )
    return traces


# --- the story ----------------------------------------------------------------------------------


def _story(
    lead_id: int,
    source: LeadSources,
    *,
    fields: Collection[str],
    trace: Any,
    events: Iterable[OutcomeEvent],
) -> LeadStory:
    row = source.arrival
    facts = source.facts
    arrival = Decision(
        lead_id=str(lead_id),
        outcome=Outcome(row.outcome),
        reason="",
        rule=row.rule,
        fallback_used=bool(row.fallback),
        trace=trace,
        facts=facts,
    )
    missing, wanting = field_gaps(arrival, fields)
    current = source.decision
    offers = source.offers
    posted = [offer.card_posted_at for offer in offers if offer.card_posted_at is not None]
    claims = [audit.at for audit in source.audits if audit.kind == CLAIMED]
    outcomes = outcomes_of(events)
    return LeadStory(
        lead_id=str(lead_id),
        created_at=source.created_at,
        outcome=Outcome(current.outcome),
        rule=row.rule,
        team=row.team,
        rep=row.rep_id,
        method=row.method,
        current_rep=current.rep_id,
        source=_text(facts.get("source")),
        segment=_text(facts.get("segment")),
        region=_text(facts.get("region")),
        policy_version=short_version(row.policy_version),
        arm=arm_label(row.experiment, row.arm) if row.arm is not None else None,
        unmatched=is_unmatched(arrival),
        fallback=arrival.fallback_used,
        missing=missing,
        unmatched_for_want_of=wanting,
        card_posted_at=min(posted, default=None),
        claimed_at=claims[-1] if claims else None,
        claim_due_at=_claim_due_at(offers),
        claim_misses=sum(1 for offer in offers if offer.status == _EXPIRED),
        first_touch_at=outcomes.first_touch_at,
        contact_due_at=next(
            (o.contact_due_at for o in reversed(offers) if o.contact_due_at is not None), None
        ),
        contact_misses=sum(1 for audit in source.audits if audit.kind == CONTACT_MISSED),
        # Sorted: the report counts reasons, and a story must read back equal from its row.
        rejects=tuple(sorted(reject_choice(a.reason) for a in source.audits if a.kind == REJECTED)),
        reassignments=tuple(
            sorted(
                [a.kind for a in source.audits if a.kind in TAKEN_KINDS]
                + [CONTACT_MISSED for offer in offers if offer.status == _UNCONTACTED]
            )
        ),
        converted_at=outcomes.converted_at,
        won_at=outcomes.won_at,
        lost_at=outcomes.lost_at,
        amount=_cents(outcomes.amount),
        close_date=outcomes.close_date,
        amount_left_out=outcomes.amount is None
        and any(audit.kind == AMOUNT_LEFT_OUT for audit in source.audits),
    )


def _claim_due_at(offers: Sequence[Any]) -> datetime | None:
    current = offers[-1] if offers else None
    if current is not None and current.status in _OPEN and current.sla_due_at is not None:
        return current.sla_due_at  # type: ignore[no-any-return]
    lapsed = [offer.sla_due_at for offer in offers if offer.status == _EXPIRED]
    return lapsed[-1] if lapsed else None


def _cents(amount: Decimal | None) -> Decimal | None:
    # As the row keeps it, so that a story reads back equal to the one it was made from.
    return None if amount is None else amount.quantize(CENT)


def _missing(facts: Mapping[str, Any], fields: Collection[str]) -> bool:
    return any(_blank(facts.get(name)) for name in fields)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value)


def reject_choice(reason: str | None) -> str:
    """The choice a reject's stored reason starts with ("Not my territory: ..."), else Other:
    a rep who only wrote a note chose none of the list."""
    return reject_parts(reason)[0] or OTHER_REASON


# --- a story as a row and back ------------------------------------------------------------------

_LISTS = ("rejects", "reassignments", "missing", "unmatched_for_want_of")
_FLAT = (
    "created_at",
    "rule",
    "team",
    "rep",
    "method",
    "current_rep",
    "source",
    "segment",
    "region",
    "policy_version",
    "arm",
    "unmatched",
    "fallback",
    "card_posted_at",
    "claimed_at",
    "claim_due_at",
    "claim_misses",
    "first_touch_at",
    "contact_due_at",
    "contact_misses",
    "converted_at",
    "won_at",
    "lost_at",
    "close_date",
)


def story_values(lead_id: int, story: LeadStory, *, now: datetime) -> dict[str, Any]:
    """A story as its `lead_stories` row."""
    values: dict[str, Any] = {name: getattr(story, name) for name in _FLAT}
    values["lead_id"] = lead_id
    values["outcome"] = story.outcome.value
    amount = story.amount
    values["amount_cents"] = None if amount is None else int(amount.quantize(CENT) * 100)
    marks: dict[str, Any] = {
        name: sorted(getattr(story, name)) for name in _LISTS if getattr(story, name)
    }
    if story.amount_left_out:
        marks["amount_left_out"] = True
    values["marks"] = marks or None
    values["made_at"] = now
    return values


STORY_COLUMNS = ("lead_id", "outcome", "amount_cents", "marks", *_FLAT)


def story_of_row(row: Sequence[Any]) -> LeadStory:
    """A `lead_stories` row, its columns in STORY_COLUMNS' order, back as the story it was made
    from. By position: a report reads tens of thousands of these."""
    lead_id, outcome, cents, marks, *flat = row
    marks = marks or {}
    return LeadStory(
        lead_id=str(lead_id),
        outcome=Outcome(outcome),
        amount=None if cents is None else (Decimal(cents) / 100).quantize(CENT),
        rejects=tuple(marks.get("rejects", ())),
        reassignments=tuple(marks.get("reassignments", ())),
        missing=frozenset(marks.get("missing", ())),
        unmatched_for_want_of=frozenset(marks.get("unmatched_for_want_of", ())),
        amount_left_out=bool(marks.get("amount_left_out")),
        **dict(zip(_FLAT, flat, strict=True)),
    )
