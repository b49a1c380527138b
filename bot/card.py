# Over 400 lines on purpose: this is the one home of what a card says (STYLE.md, "one home per
# concept"); split, its content, who reads which part and how a lead came would drift apart again.
"""What a lead's card says, whoever draws it: the one home of a card's content.

A card tells a rep, in one glance, who the lead is and how to reach them (`CardContent`: the
facts the policy's `card.fields` chooses, worded here), why it came to them, by when to claim it,
and what its buttons do. Who reads which parts is decided here too (`Wording`: the rep, their
team's channel, a queue's channel, a manager), and so are the sentences a card ends in once
nobody needs to act on it (`Settlement`) or that say how a reassigned lead came to its rep
(`reassignment_note`: not "taken from Ben" for a rep who went out of office, and the words a rep
who rejected the lead wrote for the next one on that rep's card alone).

Plain data and plain words, no Slack: `bot.slack.cards` lays them out as Block Kit (escaping
whatever came from a lead), the App Home lists offers by the same title, reason and deadline,
and `leadrouter demo` prints the very blocks a rep would get, so none can drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from routing.conditions import CUSTOM_FIELD_PREFIX
from routing.decision import Decision
from routing.durations import format_duration
from routing.model import reject_parts
from routing.policy import Policy
from routing.working_time import sla_deadline


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach the lead, as they gave it (the Slack side makes links of it)."""

    email: str | None = None
    phone: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class CardContent:
    title: str  # the person and their company: "Priya Shah · Initech"
    contact: Contact
    fields: tuple[tuple[str, str], ...]  # (label, value) of `card.fields`, those the lead has
    reason: str
    sla_due_at: datetime | None
    sla_seconds: int | None

    @property
    def heading(self) -> str:
        """The title as a card's header shows it."""
        return self.title.strip() or "New lead"


def card_content(decision: Decision, policy: Policy, *, offered_at: datetime) -> CardContent:
    """The card of a decision just made (`leadrouter demo`), with the deadline it computed on
    the policy's SLA clock."""
    return card_content_of(
        decision.facts,
        policy,
        lead_id=decision.lead_id,
        reason=decision.reason,
        sla_seconds=decision.sla_seconds,
        offered_at=offered_at,
        sla_due_at=decision.sla_due_at,
    )


def card_content_of(
    facts: Mapping[str, Any],
    policy: Policy,
    *,
    lead_id: str,
    reason: str,
    sla_seconds: int | None,
    offered_at: datetime,
    sla_due_at: datetime | None = None,
) -> CardContent:
    """The card from a decision's facts, also as stored (the lead's `facts`, the decision row).
    Its deadline is `sla_due_at`, the one the SLA runs to once the card is posted (see
    `sla_deadlines`); before, the SLA counted from `offered_at`."""
    fields: list[tuple[str, str]] = []
    for name in policy.card_fields:
        value = facts.get(name)
        if name == "account.owner" and isinstance(value, str):
            value = policy.rep_name(value)  # a rep id: people read names
        text = _shown(name, value)
        if text is not None:
            fields.append((field_label(name), text))
    due = sla_due_at
    if due is None and sla_seconds:
        due = offered_at + timedelta(seconds=sla_seconds)
    return CardContent(
        title=lead_title(facts, lead_id),
        contact=Contact(
            email=_text(facts.get("email")),
            phone=_text(facts.get("phone")),
            website=_text(facts.get("website")),
        ),
        fields=tuple(fields),
        reason=reason,
        sla_due_at=due,
        sla_seconds=sla_seconds,
    )


def lead_title(facts: Mapping[str, Any], lead_id: str) -> str:
    """The person and their company, as a card titles the lead wherever it is named. Never the
    e-mail, which goes only where the contact details go (`name` falls back to it, so it is not
    used here)."""
    person = " ".join(
        p for p in (_text(facts.get("first_name")), _text(facts.get("last_name"))) if p
    )
    company = _text(facts.get("company"))
    if person and company:
        return f"{person} · {company}"
    return person or company or f"Lead {lead_id}"


_LABELS = {
    "crm_id": "CRM id",
    "crm_system": "CRM",
    "email_domain": "E-mail domain",
    "email_domain_type": "E-mail type",
    "email_disposable": "Disposable e-mail",
    "account.name": "Account",
    "account.id": "Account id",
    "account.matched": "Known account",
    "account.match_method": "Account matched by",
    "account.match_score": "Account match score",
}


def field_label(name: str) -> str:
    """How a card labels a fact: "Industry", "Account tier", "Plan tier" for fields.plan_tier."""
    label = _LABELS.get(name)
    if label is not None:
        return label
    words = name.removeprefix(CUSTOM_FIELD_PREFIX).replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _shown(name: str, value: Any) -> str | None:
    """A fact as a card shows it; None for one the lead lacks."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if name == "employees" else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value if item is not None) or None
    return str(value)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def sla_deadlines(
    policy: Policy, rep_id: str, sla_seconds: int | None, posted_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """When a card posted at `posted_at` must be claimed by, on the policy's SLA clock, and when
    its rep is reminded (at half the SLA, if the policy says so). The SLA runs from the card's
    post, not from the decision: a rep is never charged for a card that had not reached them."""
    if not sla_seconds:
        return None, None
    rep = policy.reps.get(rep_id)
    if rep is None:
        return posted_at + timedelta(seconds=sla_seconds), None
    due = sla_deadline(policy.sla, rep, posted_at, sla_seconds)
    remind_at = None
    if policy.sla.remind_at_half and sla_seconds >= 2:
        remind_at = sla_deadline(policy.sla, rep, posted_at, sla_seconds // 2)
    return due, remind_at


def deadline_line(content: CardContent, words: str) -> tuple[str, datetime, str] | None:
    """The SLA line: `words` ("Claim by"), the deadline, and how long the SLA is ("within 5m"),
    for the renderer to join (it writes the deadline in each reader's own time zone)."""
    if content.sla_due_at is None:
        return None
    within = f"within {format_duration(content.sla_seconds)}" if content.sla_seconds else ""
    return words, content.sla_due_at, within


# --- who reads what ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wording:
    """How one reader's card words the content every card shares; None leaves a line out."""

    why: str | None  # the label of the decision's reason: "Why you"
    deadline: str | None  # the words before the SLA deadline: "Claim by"
    reassigned: str | None  # before how a reassigned lead came: "Reassigned to you"
    personal: bool  # the lead's e-mail and phone are on it
    # The note a rep who rejected the lead wrote ("Anything the next rep or RevOps should
    # know?") is on it: the reject form promises it to the next rep, not to their team.
    rep_note: bool = False


# The lead's e-mail and phone go to the rep it is offered to from the start, and stay on their card
# once they claim it: speed to lead is the point, and the rep may look the person up before
# claiming. Nobody else gets them: not the team's channel, not a queue's channel, and not a rep the
# lead has moved on from (the card they keep loses them), so that one person calls the lead. A
# manager alerted in a DM gets them, to act for the team.
FOR_THE_REP = Wording(
    why="Why you", deadline="Claim by", reassigned="Reassigned to you", personal=True, rep_note=True
)
# The team's channel sees whose lead it is and no buttons: every button acts on whoever clicks it,
# and in a channel that is seldom the rep the lead is for. Nor the note of a rep who rejected it:
# the whole team reads the channel; the choice they made in the form (Not my territory) it sees.
FOR_THE_TEAM = Wording(
    why="Why", deadline="To be claimed by", reassigned="Reassigned", personal=False
)


def settled_wording(*, team: bool, moved: bool) -> Wording:
    """A card once nobody needs to act on it. It drops the deadline: once claimed or moved, "Claim
    by" would only mislead. A lead that `moved` on (rejected, taken away, not claimed in time)
    drops why it came and how, too: the status says where it went."""
    if moved:
        return Wording(why=None, deadline=None, reassigned=None, personal=False)
    return replace(FOR_THE_TEAM if team else FOR_THE_REP, deadline=None)


def queued_wording(*, alert: bool) -> Wording:
    """A lead waiting in a queue: posted to the queue's channel, or (`alert`) to a manager in a
    DM when the SLA watchdog gave up on it."""
    return Wording(why="Why", deadline=None, reassigned=None, personal=alert)


@dataclass(frozen=True, slots=True)
class Confirm:
    """What a button asks before it acts."""

    title: str
    text: str
    confirm: str
    deny: str
    danger: bool = False


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    confirm: Confirm | None = None
    primary: bool = False


CLAIM = Button("Claim", primary=True)  # claiming is what the card is for: one click
REJECT = Button(
    "Reject",
    Confirm(
        "Reject this lead?",
        "You'll be asked why, then it goes to another rep.",
        confirm="Reject",
        deny="Keep it",
    ),
)
# One click would otherwise move every lead the rep holds: ask first.
GO_OUT = Button(
    "I'm out",
    Confirm(
        "Mark yourself out?",
        "You'll get no new leads until your next working day, and all your unclaimed leads "
        "go to other reps now.",
        confirm="I'm out",
        deny="Cancel",
        danger=True,
    ),
)
# A rep who keeps no working hours has no next working day: I'm out lasts until they come back.
GO_OUT_UNTIL_BACK = Button(
    "I'm out",
    Confirm(
        "Mark yourself out?",
        "You'll get no new leads until you say you're back (App Home, or `/routing pto off`), "
        "and all your unclaimed leads go to other reps now.",
        confirm="I'm out",
        deny="Cancel",
        danger=True,
    ),
)
COME_BACK = Button("I'm back")


def go_out(*, keeps_hours: bool) -> Button:
    """The I'm out button of a rep: it says for how long, as `bot.slack.availability` does it."""
    return GO_OUT if keeps_hours else GO_OUT_UNTIL_BACK


# --- how a lead came, and what became of it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """A rep named in a card's words: Slack mentions them (by name when they have no Slack id)."""

    rep_id: str


Words = tuple[str | Person, ...]  # a sentence whose people the renderer names its own way

# How a lead left the rep before, by the status their offer closed with (`OfferStatus` values:
# not imported, so that `leadrouter demo` and `simulate` start without the database's models).
_MOVED_WHY = {
    "rejected": "rejected by {rep}",
    "reassigned": "taken from {rep}",  # an offer moved before its reason was kept
    "expired": "not claimed in time by {rep}",
    "uncontacted": "not contacted in time by {rep}",
}
# Why a reassigned offer was taken from its rep (`storage.models.MoveReason` values), none of it
# the rep's doing: said as what happened, not as something done to them. The team's channel
# reads the same words, so they say no more than that (not the error Slack gave, say).
_MOVED_BECAUSE = {
    "out_of_office": "{rep} is out of office",
    "card_undeliverable": "the card could not reach {rep} in Slack",
    "left_policy": "moved from {rep} by a change of the routing policy",
}

# How the card of the rep a reassigned offer was taken from ends, after "Moved to {holder}", by
# why it moved (`_MOVED_BECAUSE`'s keys): (to the rep in their DM, in the team's channel, where
# None stands for the rep). Slack's error and the policy's version stay in `/routing why`.
_SETTLED_BECAUSE: dict[str, tuple[tuple[str, ...], tuple[str | None, ...]]] = {
    "out_of_office": ((" while you are out of office",), (" while ", None, " is out of office")),
    "card_undeliverable": (
        (": the card could not reach you in Slack",),
        (": the card could not reach ", None, " in Slack"),
    ),
    "left_policy": (
        (" after a change of the routing policy",),
        (" after a change of the routing policy",),
    ),
}

# How a lead left the rep it came back to (a manager assigned it to them from the queue): the
# card must not tell a rep the lead came to them from themselves ("not claimed in time by Ann
# Archer", read by Ann), and the team's channel reads the same words.
_AGAIN_AFTER = {
    "rejected": "it was rejected",
    "reassigned": "it was taken away",
    "expired": "it was not claimed in time",
    "uncontacted": "it was not contacted in time",
}
_AGAIN_BECAUSE = {
    "out_of_office": "an absence",
    "card_undeliverable": "its card could not be delivered",
    "left_policy": "a change of the routing policy",
}


def why_moved(code: str | None, rep_name: str) -> str | None:
    """Why a reassigned offer left `rep_name`, as every surface says it ("Ann Archer is out of
    office"); None for an offer moved before its reason was kept, or one of a newer release."""
    words = _MOVED_BECAUSE.get(code or "")
    return words.format(rep=rep_name) if words is not None else None


@dataclass(frozen=True, slots=True)
class CameFrom:
    """How a reassigned lead came to its rep, as its card says it (`reassignment_note`)."""

    how: str  # "Ben Baker is out of office", "rejected by Ann Archer: Not my territory"
    waiting: str  # "waiting 5m": since the lead arrived
    rep_note: str | None = None  # what the rep who rejected it wrote for the next rep

    def words(self, wording: Wording) -> str:
        """As `wording`'s reader reads it: with the rejecting rep's note only if theirs."""
        note = f": {self.rep_note}" if self.rep_note and wording.rep_note else ""
        return f"{self.how}{note} · {self.waiting}"


def reassignment_note(
    policy: Policy,
    *,
    previous_status: str,
    previous_rep: str,
    waited_seconds: float,
    rep: str | None = None,
    reason: str | None = None,
    moved_because: str | None = None,
) -> CameFrom:
    """How a lead came to its rep (`rep`) from another, and how long it has waited since it
    arrived: "rejected by Ann Archer · waiting 5m", with the `reason` a rep who rejected it gave
    (the reject modal asks what the next rep should know), or why a reassigned one moved
    (`moved_because`: "Ben Baker is out of office"); or, back with the rep it left, "offered
    again after it was not claimed in time · waiting 11m"."""
    waiting = f"waiting {format_duration(int(waited_seconds))}"
    because = moved_because if previous_status == "reassigned" else None
    if rep is not None and previous_rep == rep:
        after = _AGAIN_BECAUSE.get(because or "") or _AGAIN_AFTER.get(previous_status, "it moved")
        return CameFrom(f"offered again after {after}", waiting)
    name = policy.rep_name(previous_rep)
    how = _MOVED_WHY.get(previous_status, "moved from {rep}")
    said = why_moved(because, name) or how.format(rep=name)
    if previous_status != "rejected":
        return CameFrom(said, waiting)
    choice, note = reject_parts(reason)
    return CameFrom(f"{said}: {choice}" if choice else said, waiting, note)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of an offer that is closed, as its card ends up saying."""

    status: str  # the offer's, an `OfferStatus` value other than "offered"
    rep: str  # whose offer it was
    holder: str | None  # the rep who holds the lead now; None while it waits in `queue`
    queue: str | None
    reason: str | None  # the rep's words when they rejected it, or why it was moved
    # Why a reassigned offer was taken from the rep (a `storage.models.MoveReason` value): the
    # card words it for them rather than quote the audit ("left the routing policy (version …)").
    moved_because: str | None = None

    @property
    def moved(self) -> bool:
        """The lead went on to someone (or somewhere) else."""
        return self.status != "claimed"

    def words(self, *, team: bool = False) -> Words:
        """What the card says: to the rep in their DM, or (`team`) in the team's channel, where
        a rejecting rep's note is left out (`Wording.rep_note`), their choice in the form kept."""
        if not self.moved:
            return ("Claimed by ", Person(self.rep))
        now_with: Words = (
            (Person(self.holder),) if self.holder else (f"the {self.queue or 'unmatched'} queue",)
        )
        if self.status == "reassigned":
            endings = _SETTLED_BECAUSE.get(self.moved_because or "")
            if endings is not None:
                ending = endings[1] if team else endings[0]
                said = tuple(Person(self.rep) if part is None else part for part in ending)
                return ("Moved to ", *now_with, *said)
        reason = self.reason
        if self.status == "rejected" and team:
            reason = reject_parts(reason)[0]
        because: Words = (f": {reason}",) if reason else ()
        if self.status == "rejected":
            return ("Rejected by ", Person(self.rep), *because, " · now with ", *now_with)
        return ("Reassigned to ", *now_with, *because)
