"""Plain data the routing core works on: leads in, accounts to match, decisions out.

Nothing here does I/O or reads the clock. Everything is a frozen, slotted dataclass so a
decision can be computed tens of thousands of times a second and compared in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class Outcome(StrEnum):
    ASSIGNED = "assigned"
    QUEUED = "queued"
    NURTURE = "nurture"
    DISQUALIFIED = "disqualified"


# Why a rep may pass on a lead: the reject modal's choices, and what the routing report counts
# rejects by (a reason written without one of these is "Other").
REJECT_REASONS = (
    "Not my territory",
    "Existing customer / already working it",
    "Not a fit / junk",
    "Conflict of interest",
    "Other",
)


def reject_parts(reason: str | None) -> tuple[str | None, str | None]:
    """A reject's reason as the modal stores it ("Not my territory: wants Spanish"), back as the
    rep's choice of `REJECT_REASONS` and their note, either None when they gave none. The note
    is for the next rep and the lead's story; the choice is what is counted and shown widely."""
    text = (reason or "").strip()
    for choice in REJECT_REASONS:
        if text == choice:
            return choice, None
        if text.startswith(f"{choice}: "):
            return choice, text.removeprefix(f"{choice}: ").strip() or None
    return None, text or None


class CrmSystem(StrEnum):
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead as it arrived, validated but not yet normalised."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None
    website: str | None = None
    title: str | None = None
    phone: str | None = None
    country: str | None = None
    state: str | None = None
    employees: int | None = None
    industry: str | None = None
    source: str | None = None
    score: float | None = None
    product: str | None = None
    crm_system: CrmSystem | None = None
    crm_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        # Spelled out rather than joined from a generator: normalisation asks for it every lead.
        first, last = self.first_name, self.last_name
        name = f"{first} {last}" if first and last else first or last
        return name or self.email or self.id


@dataclass(frozen=True, slots=True)
class Account:
    """A known customer or prospect account; `owner` is a rep id from the policy. `country` is
    an ISO alpha-2 code and `state` as written, both as `routing.geo.account_location` keeps them:
    evidence for or against a match by company name."""

    id: str
    name: str
    domain: str | None = None
    owner: str | None = None
    tier: str | None = None
    country: str | None = None
    state: str | None = None


class Word(NamedTuple):
    """One piece of a name match's evidence, for the trace: a lead word and the account word it
    was matched with (None on the side that lacks it), its weight, and how they compare."""

    lead: str | None
    account: str | None
    weight: float
    how: str  # "same", "typo", "lead only", ... (`routing.accounts`)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An account a lead's company name was scored against, and its score."""

    account: Account
    score: float


@dataclass(frozen=True, slots=True)
class AccountMatch:
    account: Account
    method: str  # "domain" or "name"
    score: float  # 100 for a domain match, the evidence's score for a name match
    # For a name match: what agreed and what counted against (`Word`s); the most likely other
    # account, even under the threshold; and the other accounts nearly as likely as this one
    # (at or over the threshold), which make the match ambiguous.
    evidence: tuple[Word, ...] = ()
    runner_up: Candidate | None = None
    ambiguous: tuple[Candidate, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountLookup:
    """What matching a lead found: the match, or None and the closest account scored."""

    match: AccountMatch | None
    closest: Candidate | None = None
    evidence: tuple[Word, ...] = ()  # the closest's, when there is no match


@dataclass(frozen=True, slots=True)
class OutOfOffice:
    """A rep is away from `since` (None: already) until `until` (None: until further notice)."""

    until: datetime | None = None
    reason: str | None = None
    since: datetime | None = None

    def covers(self, now: datetime) -> bool:
        if self.since is not None and now < self.since:
            return False
        return self.until is None or now < self.until


class OpenLead(NamedTuple):
    """A lead a rep holds open (offered or claimed); `lead_id` is its external id. A tuple:
    a simulation keeps one for every lead it assigns."""

    rep: str
    lead_id: str
