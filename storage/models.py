# Over 400 lines on purpose: every table and index in one module, as SQLModel's docs advise.
"""The tables. One module, as SQLModel's docs suggest: every table and its indexes in one place.

Times are stored as naive UTC (SQLite has no time zones) and come back aware, through `UtcDateTime`.
JSON columns hold what the pure core produced (a lead's raw payload, its facts, a decision's trace).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class EpochMicroseconds(TypeDecorator[datetime]):
    """Aware datetimes stored as whole microseconds since the Unix epoch, for the report's rows:
    read back by arithmetic, where a text time on SQLite is parsed by a regular expression at
    ten times the cost (a report reads tens of thousands of stories, each with nine times)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware one")
        return (value - _EPOCH) // _MICROSECOND

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _moment(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(EpochMicroseconds(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class LeadStatus(StrEnum):
    NEW = "new"
    OFFERED = "offered"
    CLAIMED = "claimed"
    QUEUED = "queued"
    NURTURE = "nurture"
    DISQUALIFIED = "disqualified"
    CLOSED = "closed"


class OfferStatus(StrEnum):
    OFFERED = "offered"
    CLAIMED = "claimed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNCONTACTED = "uncontacted"  # claimed, then taken back: no first touch within the contact SLA
    REASSIGNED = "reassigned"
    CLOSED = "closed"


OPEN_OFFER_STATUSES = (OfferStatus.OFFERED.value, OfferStatus.CLAIMED.value)


class MoveReason(StrEnum):
    """Why an offer closed `reassigned` was taken from its rep (`OfferRow.moved_because`): none
    of them the rep's doing, so no card words it as if it were (`bot.card`). A manager takes a
    lead from a rep only by marking the rep out (`OUT_OF_OFFICE`); Assign offers a queued one."""

    OUT_OF_OFFICE = "out_of_office"  # they went out (I'm out, `/routing pto`, or a manager said)
    # Slack would not take their card: their account deactivated, their DM refused, ...
    CARD_UNDELIVERABLE = "card_undeliverable"
    LEFT_POLICY = "left_policy"  # the policy activated has no such rep


class LeadRow(SQLModel, table=True):
    __tablename__ = "leads"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    status: str = Field(max_length=16, index=True)
    rep_id: str | None = Field(default=None, max_length=64, index=True)
    team: str | None = Field(default=None, max_length=64)
    rule: str | None = Field(default=None, max_length=255)
    queue: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="")
    account_id: str | None = Field(default=None, max_length=255, index=True)
    email: str | None = Field(default=None, max_length=1000, index=True)
    company: str | None = Field(default=None, max_length=1000)
    crm_system: str | None = Field(default=None, max_length=16)
    crm_id: str | None = Field(default=None, max_length=1000, index=True)
    source: str | None = Field(default=None, max_length=1000)
    raw: dict[str, Any] = _json()
    facts: dict[str, Any] = _json()
    created_at: datetime = _when(index=True)
    updated_at: datetime = _when()
    policy_version: str | None = Field(default=None, max_length=64)  # its latest decision's


class AccountRow(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=255)
    name: str = Field(max_length=1000)
    domain: str | None = Field(default=None, max_length=255, index=True)  # registrable domain
    website: str | None = Field(default=None, max_length=1000)
    owner_rep: str | None = Field(default=None, max_length=64)
    tier: str | None = Field(default=None, max_length=255)
    country: str | None = Field(default=None, max_length=2)  # ISO alpha-2
    state: str | None = Field(default=None, max_length=255)
    crm_system: str | None = Field(default=None, max_length=16)
    updated_at: datetime = _when()


class AccountKeyRow(SQLModel, table=True):
    """Blocking keys of account names (`routing.accounts.name_blocking_keys`), for candidates."""

    __tablename__ = "account_keys"
    __table_args__ = (Index("ix_account_keys_key", "key"),)

    account_id: str = Field(primary_key=True, foreign_key="accounts.id", ondelete="CASCADE")
    key: str = Field(primary_key=True, max_length=255)


class RepStateRow(SQLModel, table=True):
    """A rep's live state: open leads (kept as a counter, checked by compare-and-set) and
    out-of-office. Reps themselves live in the policy file."""

    __tablename__ = "rep_state"

    rep_id: str = Field(primary_key=True, max_length=64)
    open_count: int = 0
    away: bool = False
    away_since: datetime | None = _when(nullable=True)
    away_until: datetime | None = _when(nullable=True)
    away_reason: str | None = Field(default=None, max_length=1000)
    # When the absence was recorded (None while not away): the offers the rep held then are
    # the ones it moves on, and the watchdog's sweep moves any whose move was lost.
    away_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class TeamStateRow(SQLModel, table=True):
    """A team's rotation, versioned: a decision is saved only if the version it read is current."""

    __tablename__ = "team_state"

    team: str = Field(primary_key=True, max_length=64)
    last_rep: str | None = Field(default=None, max_length=64)
    current: dict[str, Any] = _json()
    version: int = 0


class OfferRow(SQLModel, table=True):
    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_status_due", "status", "sla_due_at"),
        Index("ix_offers_status_remind", "status", "remind_at"),
        # A rep's open offers among all they were ever made: those to move when they go out.
        Index("ix_offers_rep_status", "rep_id", "status"),
        Index("ix_offers_contact_check", "contact_check_at"),
        Index("ix_offers_contact_remind", "contact_remind_at"),
        # The report finds the leads whose card went out since it last looked (`lead_stories`).
        Index("ix_offers_card_posted_at", "card_posted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True)
    rep_id: str = Field(max_length=64)
    team: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)
    offered_at: datetime = _when()
    sla_due_at: datetime | None = _when(nullable=True)
    closed_at: datetime | None = _when(nullable=True)
    reassignments: int = 0  # how many times this lead had been reassigned before this offer
    channel: str | None = Field(default=None, max_length=64)  # the rep's DM with the card
    message_ts: str | None = Field(default=None, max_length=64)
    team_channel: str | None = Field(default=None, max_length=64)  # the copy in the team's channel
    team_message_ts: str | None = Field(default=None, max_length=64)
    lease_owner: str | None = Field(default=None, max_length=255)
    lease_until: datetime | None = _when(nullable=True)
    sla_seconds: int | None = None  # the SLA as the policy gave it (on its wall or business clock)
    # When the rep's card reached Slack: the SLA runs from then (`sla_due_at` stays empty until
    # it did, where cards are posted at all), so nobody is charged for a card they never saw.
    card_posted_at: datetime | None = _when(nullable=True)
    # When to remind the rep (half the SLA, if the policy asks); cleared once it is queued.
    remind_at: datetime | None = _when(nullable=True)
    # The contact SLA, set when the rep claims (if the policy has one for the lead): how long
    # they have to the lead's first touch, and when that falls due on the SLA clock (kept, for
    # the report). `contact_check_at` is when the watchdog is to look whether the lead was
    # touched in time, cleared once it has; `contact_remind_at` as `remind_at`.
    contact_sla_seconds: int | None = None
    contact_due_at: datetime | None = _when(nullable=True)
    contact_check_at: datetime | None = _when(nullable=True)
    contact_remind_at: datetime | None = _when(nullable=True)
    # Why a `reassigned` offer was taken from its rep, a `MoveReason` value; None for the other
    # statuses, and for offers moved before it was kept (migration 0018).
    moved_because: str | None = Field(default=None, max_length=32)


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True)
    at: datetime = _when()
    outcome: str = Field(max_length=16)
    rep_id: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    rule: str | None = Field(default=None, max_length=255)
    reason: str = ""
    sla_seconds: int | None = None
    trace: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The version of the policy that made it (`PolicyVersionRow`); None before versions were kept.
    policy_version: str | None = Field(default=None, max_length=64)
    # How the rep was picked (`Decision.method`: round_robin, account_owner, ...) and whether a
    # fallback target took the lead: what the report's fairness and fallback share count.
    # None in decisions stored before revision 0011, which recorded neither.
    method: str | None = Field(default=None, max_length=32)
    fallback: bool | None = None
    # The experiment the lead took part in and its arm (`Decision.experiment`, `.arm`): None
    # outside any experiment, and in decisions stored before revision 0012.
    experiment: str | None = Field(default=None, max_length=64)
    arm: str | None = Field(default=None, max_length=16)


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int | None = Field(default=None, foreign_key="leads.id", index=True)
    at: datetime = _when(index=True)
    kind: str = Field(max_length=32)
    actor: str | None = Field(default=None, max_length=255)
    rule: str | None = Field(default=None, max_length=255)
    reason: str | None = None
    data: dict[str, Any] = _json()


class LeadEventRow(SQLModel, table=True):
    """What became of a lead after its hand-over, as a CRM or `POST /events` reported it: a first
    touch, an opportunity (converted), won or lost (`routing.report.EventKind`). A report is
    stored once: the same lead, kind, source and `source_key` again is dropped on insert, so
    however often one is delivered, and in whatever order, the rows say the same."""

    __tablename__ = "lead_events"
    __table_args__ = (
        UniqueConstraint("lead_id", "kind", "source", "source_key", name="uq_lead_events_report"),
        # The report finds the leads an event arrived for since it last looked (`lead_stories`).
        Index("ix_lead_events_recorded_at", "recorded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id")
    kind: str = Field(max_length=16)
    at: datetime = _when()  # when it happened, as the source says
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 2), nullable=True))
    close_date: date | None = None
    source: str = Field(max_length=64)  # "salesforce", "hubspot", or who posted it to /events
    # The source's own name for the record that tells it ("Task/00T...", "calls/4821"): what
    # makes a second delivery of one report a repeat rather than a second event.
    source_key: str = Field(max_length=255)
    via: str | None = Field(default=None, max_length=32)  # "call", "email", "meeting", "deal"...
    recorded_at: datetime = _when()


_PENDING = "done_at IS NULL AND failed_at IS NULL"  # an outbox item still to carry out
_TO_ESCALATE = "failed_at IS NOT NULL AND escalated_at IS NULL"  # given up, not escalated yet


class OutboxRow(SQLModel, table=True):
    """Side effects (a Slack card, a CRM write) committed with the decision that caused them
    and carried out afterwards, with retries; `dedupe_key` makes queuing one twice impossible."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_pending", "done_at", "next_attempt_at"),
        # A lane's items still to do, in queue order: what an item kept in order waits for.
        Index(
            "ix_outbox_lane_pending",
            "lane",
            "id",
            sqlite_where=text(_PENDING),
            postgresql_where=text(_PENDING),
        ),
        # Items given up whose escalation is not done: what the sweep's safety net looks for.
        Index(
            "ix_outbox_to_escalate",
            "kind",
            "failed_at",
            sqlite_where=text(_TO_ESCALATE),
            postgresql_where=text(_TO_ESCALATE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    dedupe_key: str = Field(max_length=255)
    # Where the item goes (a Slack channel or user id), when it is paced per destination, or
    # whose items must land in order (a lead's CRM writes): items of one lane go out one after
    # another, lanes side by side (see `bot.outbox`).
    lane: str | None = Field(default=None, max_length=255)
    payload: dict[str, Any] = _json()
    attempts: int = 0
    # While an attempt runs, `next_attempt_at` is the end of its lease (renewed as it runs) and
    # `lease_token` names it: only that attempt may end the item. Left set after an attempt
    # ended (or its process died) without knowing whether its call took effect, it tells the
    # next attempt to look before acting again.
    lease_token: str | None = Field(default=None, max_length=255)
    next_attempt_at: datetime = _when()
    done_at: datetime | None = _when(nullable=True)
    failed_at: datetime | None = _when(nullable=True)
    last_error: str | None = None
    created_at: datetime = _when()
    # A given-up item whose kind calls for more (a queued lead's post or a manager's DM
    # refused: other managers are told instead, or that the manager cannot be reached): when
    # that was done, by whichever of the delivery and the sweep got there first
    # (`bot.service.escalations`); set once.
    escalated_at: datetime | None = _when(nullable=True)


class SlackLaneRow(SQLModel, table=True):
    """A destination's pace, shared by every replica: nothing is posted to `lane` before
    `not_before` (one post a second, or longer after Slack's Retry-After)."""

    __tablename__ = "slack_lanes"

    lane: str = Field(primary_key=True, max_length=255)
    not_before: datetime = _when()


class JobRunRow(SQLModel, table=True):
    """One tick of a scheduled job that must run once however many replicas are up (a manager's
    digest): the replica whose insert of (job, due_at) succeeds runs it; the others skip it."""

    __tablename__ = "job_runs"

    job: str = Field(primary_key=True, max_length=128)  # e.g. "digest:maria"
    due_at: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    runner: str = Field(max_length=255)  # host:pid of the replica that took it
    started_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)
    error: str | None = None


class CrmCursorRow(SQLModel, table=True):
    """How far a CRM sync has read ("salesforce:leads", "hubspot:accounts"): the newest
    creation or modification time already committed here. Moved only after what it covers is."""

    __tablename__ = "crm_cursors"

    name: str = Field(primary_key=True, max_length=64)
    watermark: datetime = _when()
    updated_at: datetime = _when()


class PolicyVersionRow(SQLModel, table=True):
    """A policy that was served (or offered to serve): its text, by its version (the text's
    SHA-256, `routing.policy_version`)."""

    __tablename__ = "policy_versions"

    version: str = Field(primary_key=True, max_length=64)
    text: str
    source: str = Field(max_length=1000)  # the file it was read from
    stored_at: datetime = _when()


class PolicyActivationRow(SQLModel, table=True):
    """A policy version made the one every replica serves; the latest activation is active.

    Each names the activation it replaced (0 for the first), once: of two replicas activating
    on the same active version at the same moment, the second's insert fails and it looks again.
    """

    __tablename__ = "policy_activations"
    __table_args__ = (UniqueConstraint("replaces", name="uq_policy_activations_replaces"),)

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(foreign_key="policy_versions.version", max_length=64)
    replaces: int
    at: datetime = _when()
    how: str = Field(max_length=64)  # serve at start, file watch, SIGHUP, command line, Slack
    by: str | None = Field(default=None, max_length=255)  # a user, or the replica (host:pid)
    # The file this activation read (None before revision 0014: the version's first file then).
    source: str | None = Field(default=None, max_length=1000)


class ProcessedRequestRow(SQLModel, table=True):
    """Keys of requests already acted on (Slack retries, repeated actions)."""

    __tablename__ = "processed_requests"

    key: str = Field(primary_key=True, max_length=255)
    at: datetime = _when()


class DashboardSignOutRow(SQLModel, table=True):
    """A dashboard session ended before it expired (`bot.service.sign_outs`): `session:<digest
    of its id>`. Kept until `expires_at`, when the session has expired anyway
    (`storage.retention`). Rows `everywhere:<who>` ended every session of someone issued by
    `at` before revision 0019; `DashboardSessionGenerationRow` does that now, with no clock,
    and those left go with retention."""

    __tablename__ = "dashboard_sign_outs"

    key: str = Field(primary_key=True, max_length=255)
    at: datetime = _when()
    expires_at: datetime = _when(index=True)


class DashboardSessionGenerationRow(SQLModel, table=True):
    """Which of someone's dashboard sessions still let them in (`bot.service.sign_outs`): a
    session carries the generation current when it was signed in, and lets in while it is still
    the current one; signing out everywhere moves it on. `who` is `manager:<id>` or `token`; no
    row is generation 0. One row per person who ever signed out everywhere, kept for good: no
    clock can say when a generation is of no use, and these rows are as few as the managers."""

    __tablename__ = "dashboard_session_generations"

    who: str = Field(primary_key=True, max_length=255)
    generation: int


class LeadStoryRow(SQLModel, table=True):
    """A lead's story as the routing report reads it (`routing.report.LeadStory`): made from its
    decisions, offers, audit trail and outcome events (`storage.stories`), and made again when
    one of those changes (`bot.service.report.refresh_report`). Derived data: nothing else
    writes it, and it can be rebuilt from those rows at any time. Its times but `made_at` are
    `EpochMicroseconds`."""

    __tablename__ = "lead_stories"

    lead_id: int = Field(primary_key=True, foreign_key="leads.id", ondelete="CASCADE")
    created_at: datetime = _moment(index=True)
    outcome: str = Field(max_length=16)  # where it is now: its latest decision's
    # Rule, team, rep, method, policy version, arm, unmatched and fallback: the routing it got
    # on arrival (its first decision), which the report judges it by.
    rule: str | None = Field(default=None, max_length=255)
    team: str | None = Field(default=None, max_length=64)
    rep: str | None = Field(default=None, max_length=64)
    method: str | None = Field(default=None, max_length=32)
    # The rep who holds it now (its latest decision's): whom the performance rates credit.
    current_rep: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=1000)
    segment: str | None = Field(default=None, max_length=255)
    region: str | None = Field(default=None, max_length=255)
    policy_version: str | None = Field(default=None, max_length=64)
    arm: str | None = Field(default=None, max_length=96)  # "experiment/arm" (`LeadStory.arm`)
    unmatched: bool = False
    fallback: bool = False
    card_posted_at: datetime | None = _moment(nullable=True)
    claimed_at: datetime | None = _moment(nullable=True)
    claim_due_at: datetime | None = _moment(nullable=True)
    claim_misses: int = 0
    first_touch_at: datetime | None = _moment(nullable=True)
    contact_due_at: datetime | None = _moment(nullable=True)
    contact_misses: int = 0
    converted_at: datetime | None = _moment(nullable=True)
    won_at: datetime | None = _moment(nullable=True)
    lost_at: datetime | None = _moment(nullable=True)
    # In cents: exact on SQLite, which has no decimal type.
    amount_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    close_date: date | None = None
    # The story's lists, where any is not empty: rejects, reassignments (reasons), missing and
    # wanting (fields). None for most leads, which have none.
    marks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    made_at: datetime = _when()


class ReportDayRow(SQLModel, table=True):
    """A UTC day of lead arrivals, for the report's rollups: `changed` counts the writes of its
    leads' stories, and its rollups hold for as long as `rolled` (the count they were made
    from) equals it and no SLA they count as pending has fallen due (`good_until`)."""

    __tablename__ = "report_days"

    day: date = Field(primary_key=True)
    changed: int = 0
    rolled: int | None = None  # None: no rollups made
    good_until: datetime | None = _when(nullable=True)  # None: nothing pending
    rolled_at: datetime | None = _when(nullable=True)


class ReportWeekRow(SQLModel, table=True):
    """A week of arrivals (Monday to Sunday, UTC) whose rollups are its days' merged: they hold
    while its days' change counts add up to `made_from` and before `good_until`."""

    __tablename__ = "report_weeks"

    week: date = Field(primary_key=True)  # its Monday
    made_from: int = 0
    good_until: datetime | None = _when(nullable=True)  # None: nothing pending
    rolled_at: datetime | None = _when(nullable=True)


class ReportRollupRow(SQLModel, table=True):
    """The report's tally (`routing.report.Tally`, as JSON) of one group of a day's or a week's
    leads, for one grouping: a quarter's report merges these instead of reading the leads."""

    __tablename__ = "report_rollups"
    __table_args__ = (Index("ix_report_rollups_by_span", "by", "days", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date  # the first day it covers: a day, or a week's Monday
    days: int = 1  # how many days it covers: 1, or 7 for a week
    by: str = Field(max_length=32)
    group_key: str | None = Field(default=None, max_length=1000)
    tally: dict[str, Any] = _json()


class ReportCursorRow(SQLModel, table=True):
    """How far the stories have been brought up to date: every change stamped before
    `watermark` (less a margin for transactions still running then) is in them, made for the
    fields the policy's rules read then (`fields`)."""

    __tablename__ = "report_cursor"

    name: str = Field(primary_key=True, max_length=64)
    watermark: datetime = _when()
    fields: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _when()
