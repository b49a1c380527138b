"""The routing report's partial aggregate, `Tally`: counts that add up, so any split of the leads
(per day, per replica, per database shard) tallied apart and merged gives what tallying them all
at once gives, exactly. That is what lets a report over a million leads read rollups rather than
the leads (`routing.report` says how).

What counts as what is decided here, once, for the CLI, the digest, App Home and the dashboard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

from routing.distribution import Distribution
from routing.report.stats import bucket_of
from routing.report.story import LeadStory


class SlaStatus(StrEnum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"  # not yet due, nor met: neither kept nor broken so far


# What a report can be grouped by: a field of `LeadStory`, or "all" for one group of every lead.
GROUPINGS = ("all", "rule", "team", "rep", "source", "segment", "region", "policy_version", "arm")
ALL = "all"  # the one group's name when grouped by "all"

# The methods by which a team's own distribution picked the rep: only these count for fairness.
# A named rep, an account's owner, a sticky account or the same person is not the rotation's doing.
ROTATION_METHODS = frozenset(method.value for method in Distribution)


@dataclass(slots=True)
class Tally:
    """What the report counts of some leads. Every field adds up under `merge`.

    Durations are histograms (`routing.report.stats.bucket_of` -> leads): from arrival to the
    first card, to the claim and to the first touch. `claim_sla` and `contact_sla` count leads by
    `SlaStatus`; `rejects` and `reassignments` count events by reason; `picks` counts leads by
    (team, rep) that the team's rotation gave the rep; `missing` and `unmatched_for_want_of`
    count leads by field.
    """

    leads: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unmatched: int = 0
    fallback: int = 0
    time_to_card: Counter[int] = field(default_factory=Counter)
    time_to_claim: Counter[int] = field(default_factory=Counter)
    time_to_first_touch: Counter[int] = field(default_factory=Counter)
    claim_sla: Counter[str] = field(default_factory=Counter)
    contact_sla: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    reassignments: Counter[str] = field(default_factory=Counter)
    picks: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)
    unmatched_for_want_of: Counter[str] = field(default_factory=Counter)
    converted: int = 0
    won: int = 0
    lost: int = 0
    pipeline: Decimal = Decimal(0)  # the amounts of every opportunity, open, won or lost
    priced: int = 0  # opportunities with an amount
    won_amount: Decimal = Decimal(0)
    amounts_left_out: int = 0  # opportunities whose amount was in another currency

    def add(self, story: LeadStory, now: datetime) -> None:
        """Count one lead, as things stand at `now`."""
        self.leads += 1
        self.outcomes[story.outcome.value] += 1
        self.unmatched += int(story.unmatched)
        self.fallback += int(story.fallback)
        arrived = story.created_at
        if story.card_posted_at is not None:
            self.time_to_card[_bucket_since(arrived, story.card_posted_at)] += 1
        if story.claimed_at is not None:
            self.time_to_claim[_bucket_since(arrived, story.claimed_at)] += 1
        if story.first_touch_at is not None:
            self.time_to_first_touch[_bucket_since(arrived, story.first_touch_at)] += 1
        claim = claim_sla_status(story, now)
        if claim is not None:
            self.claim_sla[claim.value] += 1
        contact = contact_sla_status(story, now)
        if contact is not None:
            self.contact_sla[contact.value] += 1
        self.rejects.update(story.rejects)
        self.reassignments.update(story.reassignments)
        # The arrival routing's pick, wherever the lead is now: a rotation method names a rep.
        if story.team is not None and story.rep is not None and story.method in ROTATION_METHODS:
            self.picks[story.team, story.rep] += 1
        self.missing.update(story.missing)
        self.unmatched_for_want_of.update(story.unmatched_for_want_of)
        opportunity = story.converted_at or story.won_at or story.lost_at
        if opportunity is not None:
            self.converted += 1
            if story.amount is not None:
                self.pipeline += story.amount
                self.priced += 1
            elif story.amount_left_out:
                self.amounts_left_out += 1
        if story.won_at is not None:
            self.won += 1
            if story.amount is not None:
                self.won_amount += story.amount
        elif story.lost_at is not None:
            self.lost += 1

    def merge(self, other: Tally) -> Tally:
        """The tally of both sets of leads (which must not share a lead)."""
        return merge_all((self, other))

    __add__ = merge

    def absorb(self, other: Tally) -> None:
        """Count `other`'s leads in this tally too: `merge` in place, for merging many."""
        for name in _COUNTERS:
            counter: Counter[Any] = getattr(self, name)
            counter.update(getattr(other, name))
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_EMPTY = Tally()
_COUNTERS = tuple(f.name for f in fields(Tally) if isinstance(getattr(_EMPTY, f.name), Counter))
_SUMS = tuple(f.name for f in fields(Tally) if f.name not in _COUNTERS)


def merge_all(tallies: Iterable[Tally]) -> Tally:
    """The tally of every lead of `tallies`, counted once each."""
    total = Tally()
    for tally in tallies:
        total.absorb(tally)
    return total


def tally_by(
    stories: Iterable[LeadStory],
    *,
    by: str,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str | None, Tally]:
    """The leads that arrived in [since, until) (until: `now`), tallied by the value of `by`
    (one of GROUPINGS; "all" gives one group, `ALL`) as things stand at `now`.

    A lead belongs to the window it arrived in, and everything that has happened to it by `now`
    counts, even after `until`: a lead of last week claimed this morning was claimed. So a week's
    report is of that week's leads, and its figures settle as their SLAs fall due."""
    key_of = group_key(by)
    start, end = window(now=now, since=since, until=until)
    groups: dict[str | None, Tally] = {}
    for story in stories:
        arrived = story.created_at
        if arrived >= end or (start is not None and arrived < start):
            continue
        key = key_of(story)
        tally = groups.get(key)
        if tally is None:
            tally = groups[key] = Tally()
        tally.add(story, now)
    return groups


def window(
    *, now: datetime, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime]:
    """The window [since, until) checked: aware times, until defaulting to `now`."""
    for name, value in (("now", now), ("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"the report needs a timezone-aware `{name}`")
    end = until if until is not None else now
    if since is not None and since >= end:
        raise ValueError(f"the window is empty: it starts {since} and ends {end}")
    return since, end


def group_key(by: str) -> Callable[[LeadStory], str | None]:
    """How to find a story's group when grouping by `by`."""
    if by not in GROUPINGS:
        raise ValueError(f"a report is grouped by one of {', '.join(GROUPINGS)}, not {by!r}")
    if by == ALL:
        return _everything
    return attrgetter(by)


def _everything(story: LeadStory) -> str | None:
    return ALL


def claim_sla_status(story: LeadStory, now: datetime) -> SlaStatus | None:
    """Whether the lead's claim SLA was kept; None when it had none to keep.

    A lead is charged once its card reached Slack and an SLA runs (`claim_due_at`); one whose
    card never arrived, or that was queued, nurtured or disqualified, is not (README: the SLA
    starts when the card is posted). Met: claimed by the due time of the offer it was claimed
    on, no offer of it having lapsed first. Missed: an offer lapsed, or the claim came late, or
    the due time has passed unclaimed."""
    due = story.claim_due_at
    if story.card_posted_at is None or due is None:
        return None
    return _status(story.claimed_at, due, story.claim_misses, now)


def contact_sla_status(story: LeadStory, now: datetime) -> SlaStatus | None:
    """Whether the contact SLA (from claim to first touch) was kept; None when it had none.

    Charged from the claim, once a due time is set (`contact_due_at`). Met: touched by then
    (a touch logged before the claim counts: the rep called first and clicked after), no earlier
    lapse recorded. Missed: it lapsed, the touch came late, or the time has passed untouched."""
    due = story.contact_due_at
    if story.claimed_at is None or due is None:
        return None
    return _status(story.first_touch_at, due, story.contact_misses, now)


def _status(done_at: datetime | None, due: datetime, misses: int, now: datetime) -> SlaStatus:
    if misses > 0:
        return SlaStatus.MISSED
    if done_at is not None:
        return SlaStatus.MET if done_at <= due else SlaStatus.MISSED
    return SlaStatus.MISSED if due <= now else SlaStatus.PENDING


def _bucket_since(start: datetime, end: datetime) -> int:
    return bucket_of((end - start).total_seconds())
