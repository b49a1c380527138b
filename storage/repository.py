"""Loading and saving, as keyword-only functions over a session. No decisions are made here.

A write's functions take a synchronous `Session`: a write is one synchronous unit of work
(`Database.run`); a coroutine that reads (over an `AsyncSession`) calls one of them through
`AsyncSession.run_sync`. The rest, read by coroutines only, take the `AsyncSession` itself.

Concurrency on PostgreSQL rests on two compare-and-set updates, done last in a decision's
transaction: the team's rotation (`save_team_state`: only if its version is the one read) and the
chosen rep's open-lead count (`count_open_leads`: only if it is the count read). If either finds
the row changed, `Conflict` is raised, the transaction rolls back, and the service routes again
with fresh state. On SQLite transactions never overlap, so neither ever fails there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Insert,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from routing.accounts import choose_keys
from routing.company_names import company_key, name_blocking_keys
from routing.distribution import TeamState
from routing.domains import canonical_email, email_spellings, registrable_domain
from routing.geo import account_location
from routing.model import Account, OpenLead, OutOfOffice
from storage.models import (
    OPEN_OFFER_STATUSES,
    AccountKeyRow,
    AccountRow,
    AuditEventRow,
    CrmCursorRow,
    JobRunRow,
    LeadRow,
    LeadStatus,
    OfferRow,
    OfferStatus,
    OutboxRow,
    RepStateRow,
    SlackLaneRow,
    TeamStateRow,
)


class Conflict(Exception):
    """Another transaction changed what this one read; route again with fresh state."""


class StateChanged(Conflict):
    """A team's rotation or a rep's open-lead count was not what this transaction read."""


# --- reading the state a decision needs ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepStates:
    open_loads: dict[str, int]
    out_of_office: dict[str, OutOfOffice]


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]  # set by table=True


# The statements of every routing transaction are built once, here, with parameters: building
# a statement (and its cache key) cost SQLAlchemy more than SQLite took to run it. They read
# plain rows, not mapped objects, for the same reason.
_REPS = _table(RepStateRow)
_TEAMS = _table(TeamStateRow)
_ACCOUNTS = _table(AccountRow)
_KEYS = _table(AccountKeyRow)
_ACCOUNT_COLUMNS = (
    _ACCOUNTS.c.id,
    _ACCOUNTS.c.name,
    _ACCOUNTS.c.domain,
    _ACCOUNTS.c.owner_rep,
    _ACCOUNTS.c.tier,
    _ACCOUNTS.c.country,
    _ACCOUNTS.c.state,
)  # in the order of `Account`'s fields: each row is `Account(*row)`
# Two narrow reads rather than one wide one: every rep with open leads is a row of the first,
# and only the few away carry the columns (dates) that need processing.
_OPEN_LOADS = select(_REPS.c.rep_id, _REPS.c.open_count).where(_REPS.c.open_count != 0)
_AWAY = select(_REPS.c.rep_id, _REPS.c.away_since, _REPS.c.away_until, _REPS.c.away_reason).where(
    _REPS.c.away
)
_TEAM_STATES = select(_TEAMS.c.team, _TEAMS.c.last_rep, _TEAMS.c.current, _TEAMS.c.version)
_KEY_SIZES = (
    select(_KEYS.c.key, func.count())
    .where(_KEYS.c.key.in_(bindparam("keys", expanding=True)))
    .group_by(_KEYS.c.key)
)
_ACCOUNTS_ON_DOMAINS = select(*_ACCOUNT_COLUMNS).where(
    _ACCOUNTS.c.domain.in_(bindparam("domains", expanding=True))
)
_ACCOUNTS_OF_KEYS = (
    select(*_ACCOUNT_COLUMNS)
    .join(_KEYS, _KEYS.c.account_id == _ACCOUNTS.c.id)
    .where(_KEYS.c.key.in_(bindparam("keys", expanding=True)))
)
_LEADS = _table(LeadRow)
_OFFERS = _table(OfferRow)
_LATEST_OFFER = func.max(_OFFERS.c.offered_at)
# Per account, the reps with open offers on its leads, most recent first (sticky accounts).
_HOLDERS_OF_ACCOUNTS = (
    select(_LEADS.c.account_id, _OFFERS.c.rep_id, _LATEST_OFFER)
    .join(_LEADS, _LEADS.c.id == _OFFERS.c.lead_id)
    .where(_LEADS.c.account_id.in_(bindparam("account_ids", expanding=True)))
    .where(_OFFERS.c.status.in_(OPEN_OFFER_STATUSES))
    .group_by(_LEADS.c.account_id, _OFFERS.c.rep_id)
    .order_by(_LATEST_OFFER.desc())
)
# The offers of people's leads, by the e-mail address stored with the lead (the same person).
# Every offer, open or not (a person has few), the open ones picked out in Python: asked for in
# SQL, SQLite (which keeps no statistics) walks every open offer by the status index instead of
# looking the person up by e-mail, a cost that grows with the open offers.
_OFFERS_OF_EMAILS = (
    select(
        _LEADS.c.email,
        _OFFERS.c.rep_id,
        _LEADS.c.external_id,
        _OFFERS.c.offered_at,
        _OFFERS.c.status,
    )
    .join(_LEADS, _LEADS.c.id == _OFFERS.c.lead_id)
    .where(_LEADS.c.email.in_(bindparam("emails", expanding=True)))
)
# Intake asks first which ids are stored at all (nearly always none), as plain rows: loading
# mapped objects costs the ORM more than the query, even for no rows.
_STORED_EXTERNAL_IDS = select(_LEADS.c.external_id).where(
    _LEADS.c.external_id.in_(bindparam("external_ids", expanding=True))
)
_LEADS_BY_EXTERNAL_ID = select(LeadRow).where(
    col(LeadRow.external_id).in_(bindparam("external_ids", expanding=True))
)
# `count_open_leads`: compare-and-set on the count read (b_ names: SQLAlchemy reserves the
# column names for the SET clause's own parameters).
_COUNT_OPEN_LEADS = (
    update(_REPS)
    .where(_REPS.c.rep_id == bindparam("b_rep"), _REPS.c.open_count == bindparam("b_read"))
    .values(open_count=bindparam("b_count"), updated_at=bindparam("b_now"))
)
_INSERT_LEADS = insert(_LEADS).returning(_LEADS.c.id, _LEADS.c.external_id)
_INSERT_OFFERS = insert(_OFFERS).returning(_OFFERS.c.id, _OFFERS.c.lead_id)
_OUTBOX = _table(OutboxRow)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id, _OUTBOX.c.dedupe_key)


@cache
def _insert_into(table: type[SQLModel]) -> Insert:
    return insert(_table(table))


_ROTATE_TEAM = (
    update(_TEAMS)
    .where(_TEAMS.c.team == bindparam("b_team"), _TEAMS.c.version == bindparam("b_read"))
    .values(
        version=bindparam("b_version"),
        last_rep=bindparam("b_last_rep"),
        current=bindparam("b_current", type_=_TEAMS.c.current.type),
    )
)


def load_rep_states(*, session: Session) -> RepStates:
    loads: dict[str, int] = dict(session.execute(_OPEN_LOADS).all())
    away = {
        rep_id: OutOfOffice(until=until, reason=reason, since=since)
        for rep_id, since, until, reason in session.execute(_AWAY)
    }
    return RepStates(loads, away)


@dataclass(frozen=True, slots=True)
class TeamStates:
    states: dict[str, TeamState]
    versions: dict[str, int]  # a team with no row yet is absent


def load_team_states(*, session: Session) -> TeamStates:
    rows = session.execute(_TEAM_STATES).all()
    return TeamStates(
        {team: TeamState(last_rep, dict(current)) for team, last_rep, current, _v in rows},
        {team: version for team, _last, _current, version in rows},
    )


@dataclass(frozen=True, slots=True)
class Candidates:
    """The accounts that could match a batch of leads, and how many accounts each of their
    blocking keys lists in the whole table (see `AccountIndex(key_sizes=...)`)."""

    accounts: list[Account]
    key_sizes: dict[str, int]


_IN_CHUNK = 500  # values per IN (...) list


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _IN_CHUNK):
        yield ordered[start : start + _IN_CHUNK]


def candidate_accounts(
    *, session: Session, lookups: Sequence[tuple[str | None, str | None]]
) -> Candidates:
    """For leads given as (registrable domain, company name): the accounts on their domains, and
    the accounts of the blocking keys `AccountIndex` would score for each (`choose_keys`).
    An index of just these, told the true key sizes, matches like an index of every account."""
    domains = {domain for domain, _ in lookups if domain}
    keys_of = [
        name_blocking_keys(company_key(company)) if company else frozenset()
        for _, company in lookups
    ]
    sizes: dict[str, int] = {}
    for chunk in _chunks(frozenset().union(*keys_of)):
        sizes.update(session.execute(_KEY_SIZES, {"keys": chunk}).all())
    chosen: set[str] = set()
    for keys in keys_of:
        chosen.update(choose_keys({key: sizes[key] for key in keys if key in sizes}))
    found: dict[str, Account] = {}
    for chunk in _chunks(domains):
        rows = session.execute(_ACCOUNTS_ON_DOMAINS, {"domains": chunk})
        found.update((row[0], Account(*row)) for row in rows)
    for chunk in _chunks(chosen):
        rows = session.execute(_ACCOUNTS_OF_KEYS, {"keys": chunk})
        found.update((row[0], Account(*row)) for row in rows)
    return Candidates(list(found.values()), sizes)


def reps_holding_accounts(*, session: Session, account_ids: Iterable[str]) -> dict[str, list[str]]:
    """Per account: reps with open offers on its leads, most recent first (sticky accounts)."""
    holders: dict[str, list[str]] = {}
    for chunk in _chunks(set(account_ids)):
        rows = session.execute(_HOLDERS_OF_ACCOUNTS, {"account_ids": chunk})
        for account_id, rep_id, _when in rows:
            if account_id is not None:
                holders.setdefault(account_id, []).append(rep_id)
    return holders


def open_leads_of_people(
    *, session: Session, emails: Iterable[str]
) -> dict[str, tuple[OpenLead, ...]]:
    """Per e-mail address (`canonical_email`): the person's open leads, one for each rep holding
    any, most recent first. A lead stored before domains had one spelling may hold the address
    with its domain in punycode: every spelling of each address is asked for."""
    spellings = {spelling for email in emails for spelling in email_spellings(email)}
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(spellings):
        offers = session.execute(_OFFERS_OF_EMAILS, {"emails": chunk})
        rows.extend(row for row in offers if row[4] in OPEN_OFFER_STATUSES)
    # Most recent first across chunks; the external id breaks ties, for the same order each time.
    rows.sort(key=lambda row: (row[3], row[2]), reverse=True)
    found: dict[str, list[OpenLead]] = {}
    for email, rep_id, external_id, _offered_at, _status in rows:
        held = found.setdefault(canonical_email(email), [])
        if all(other.rep != rep_id for other in held):
            held.append(OpenLead(rep_id, external_id))
    return {email: tuple(held) for email, held in found.items()}


def find_leads(*, session: Session, external_ids: Iterable[str]) -> dict[str, LeadRow]:
    found: dict[str, LeadRow] = {}
    for chunk in _chunks(set(external_ids)):
        stored = session.execute(_STORED_EXTERNAL_IDS, {"external_ids": chunk}).scalars().all()
        if not stored:
            continue
        rows = session.execute(_LEADS_BY_EXTERNAL_ID, {"external_ids": list(stored)})
        found.update((row.external_id, row) for row in rows.scalars())
    return found


def find_lead(*, session: Session, external_id: str, lock: bool = False) -> LeadRow | None:
    """The lead; with `lock`, its row locked until the transaction ends (PostgreSQL; SQLite's
    writers are one at a time anyway), and read as committed once the lock is had."""
    query = select(LeadRow).where(col(LeadRow.external_id) == external_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    result = session.execute(query)
    return result.scalars().first()


def current_offer(*, session: Session, lead_id: int) -> OfferRow | None:
    """The lead's latest offer."""
    result = session.execute(
        select(OfferRow).where(col(OfferRow.lead_id) == lead_id).order_by(col(OfferRow.id).desc())
    )
    return result.scalars().first()


def offers_of_lead(*, session: Session, lead_id: int) -> Sequence[OfferRow]:
    result = session.execute(
        select(OfferRow).where(col(OfferRow.lead_id) == lead_id).order_by(col(OfferRow.id))
    )
    return result.scalars().all()


async def unclaimed_offers_of_rep(*, session: AsyncSession, rep_id: str) -> Sequence[OfferRow]:
    result = await session.execute(
        select(OfferRow)
        .where(col(OfferRow.rep_id) == rep_id, col(OfferRow.status) == OfferStatus.OFFERED.value)
        .order_by(col(OfferRow.id))
    )
    return result.scalars().all()


def leads_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, LeadRow]:
    found: dict[int, LeadRow] = {}
    for chunk in _id_chunks(ids):
        rows = session.execute(select(LeadRow).where(col(LeadRow.id).in_(chunk)))
        found.update((row.id or 0, row) for row in rows.scalars())
    return found


async def offers_by_id(*, session: AsyncSession, ids: Iterable[int]) -> dict[int, OfferRow]:
    found: dict[int, OfferRow] = {}
    for chunk in _id_chunks(ids):
        rows = await session.execute(select(OfferRow).where(col(OfferRow.id).in_(chunk)))
        found.update((row.id or 0, row) for row in rows.scalars())
    return found


async def outbox_items_since(
    *, session: AsyncSession, kind: str, done_since: datetime
) -> Sequence[OutboxRow]:
    """Items of `kind` still to carry out, and those done since `done_since`, oldest first."""
    result = await session.execute(
        select(OutboxRow)
        .where(
            col(OutboxRow.kind) == kind,
            or_(
                and_(col(OutboxRow.done_at).is_(None), col(OutboxRow.failed_at).is_(None)),
                col(OutboxRow.done_at) >= done_since,
            ),
        )
        .order_by(col(OutboxRow.id))
    )
    return result.scalars().all()


def offers_of_leads(*, session: Session, lead_ids: Iterable[int]) -> dict[int, list[OfferRow]]:
    """Every offer of these leads, oldest first, by lead id."""
    found: dict[int, list[OfferRow]] = {}
    for chunk in _id_chunks(lead_ids):
        rows = session.execute(
            select(OfferRow).where(col(OfferRow.lead_id).in_(chunk)).order_by(col(OfferRow.id))
        )
        for row in rows.scalars():
            found.setdefault(row.lead_id, []).append(row)
    return found


def _id_chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _IN_CHUNK):
        yield ordered[start : start + _IN_CHUNK]


async def queued_leads(*, session: AsyncSession, limit: int) -> tuple[int, Sequence[LeadRow]]:
    """How many leads wait in a queue, and the `limit` that have waited longest."""
    queued = col(LeadRow.status) == LeadStatus.QUEUED.value
    size = (
        await session.execute(select(func.count()).select_from(LeadRow).where(queued))
    ).scalar_one()
    if not size:
        return 0, ()
    oldest = await session.execute(
        select(LeadRow)
        .where(queued)
        .order_by(col(LeadRow.created_at), col(LeadRow.id))
        .limit(limit)
    )
    return int(size), oldest.scalars().all()


def overdue_offers(
    *, session: Session, now: datetime, limit: int, skip_locked: bool
) -> Sequence[OfferRow]:
    """Unclaimed offers past their deadline, most overdue first.

    With `skip_locked` (PostgreSQL) the rows are locked for this transaction and rows another
    sweeper holds are passed over, so two replicas sweeping at once split the work instead of
    colliding on it."""
    statement = (
        select(OfferRow)
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.sla_due_at) <= now,
        )
        .order_by(col(OfferRow.sla_due_at), col(OfferRow.id))
        .limit(limit)
    )
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return (session.execute(statement)).scalars().all()


def close_offers(
    *, session: Session, offer_ids: Sequence[int], to_status: str, now: datetime
) -> int:
    """Compare-and-set many open offers to `to_status` at once; how many were still open."""
    changed = 0
    for chunk in _id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.status) == OfferStatus.OFFERED.value)
            .values(status=to_status, closed_at=now, remind_at=None)
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount  # type: ignore[attr-defined]
    return changed


def due_reminders(
    *, session: Session, now: datetime, limit: int, skip_locked: bool
) -> Sequence[int]:
    """Ids of open offers whose reminder is due (see `overdue_offers` for `skip_locked`)."""
    statement = (
        select(col(OfferRow.id))
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.remind_at) <= now,
        )
        .order_by(col(OfferRow.remind_at))
        .limit(limit)
    )
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return [i for i in (session.execute(statement)).scalars().all() if i is not None]


def clear_reminders(*, session: Session, offer_ids: Sequence[int]) -> list[tuple[int, str]]:
    """Mark these offers' reminders as taken (compare-and-set); the (offer id, rep id) of each
    this call took."""
    taken: list[tuple[int, str]] = []
    for chunk in _id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.remind_at).is_not(None))
            .values(remind_at=None)
            .returning(col(OfferRow.id), col(OfferRow.rep_id))
            .execution_options(synchronize_session=False)
        )
        taken.extend((offer_id, rep_id) for offer_id, rep_id in result.all() if offer_id)
    return taken


def take_job_run(
    *, session: Session, job: str, due_at: datetime, runner: str, now: datetime
) -> bool:
    """Record that `runner` runs `job`'s tick at `due_at`; False if another replica already did."""
    try:
        with session.begin_nested():
            session.execute(
                insert(JobRunRow).values(job=job, due_at=due_at, runner=runner, started_at=now)
            )
    except IntegrityError:
        return False
    return True


def previous_job_run(*, session: Session, job: str, before: datetime) -> datetime | None:
    """The tick before `before` at which `job` ran, if any."""
    result = session.execute(
        select(func.max(col(JobRunRow.due_at))).where(
            col(JobRunRow.job) == job, col(JobRunRow.due_at) < before
        )
    )
    value = result.scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def last_job_runs(*, session: AsyncSession) -> dict[str, datetime]:
    """Each job's latest tick that ran."""
    result = await session.execute(
        select(col(JobRunRow.job), func.max(col(JobRunRow.due_at))).group_by(col(JobRunRow.job))
    )
    return {job: at for job, at in result.all() if isinstance(at, datetime)}


# --- writing ------------------------------------------------------------------------------------


def save_team_state(
    *, session: Session, team: str, state: TeamState, read_version: int | None
) -> None:
    """Store a team's new rotation, if nobody changed it since `read_version` (None: no row)."""
    values = {"last_rep": state.last_rep, "current": dict(state.current)}
    if read_version is None:
        try:
            with session.begin_nested():
                session.execute(insert(TeamStateRow).values(team=team, version=1, **values))
        except IntegrityError:
            raise StateChanged(f"team {team} was created meanwhile") from None
        return
    result = session.execute(
        _ROTATE_TEAM,
        {
            "b_team": team,
            "b_read": read_version,
            "b_version": read_version + 1,
            "b_last_rep": state.last_rep,
            "b_current": values["current"],
        },
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StateChanged(f"team {team} rotated meanwhile")


def count_open_leads_many(
    *, session: Session, changes: Sequence[tuple[str, int, int]], now: datetime
) -> None:
    """`count_open_leads` for each (rep id, read count, added), in one executemany for the reps
    whose row is known to exist, where the driver reports the rows an executemany changed
    (SQLite does); one statement per rep otherwise. A rep on a batch of leads spread over a
    hundred reps would otherwise cost a hundred round trips."""
    bulk = [change for change in changes if change[1] > 0]
    if len(bulk) > 1 and session.get_bind().dialect.supports_sane_multi_rowcount:
        result = session.execute(
            _COUNT_OPEN_LEADS,
            [
                {"b_rep": rep, "b_read": read, "b_count": read + added, "b_now": now}
                for rep, read, added in bulk
            ],
        )
        if result.rowcount != len(bulk):  # type: ignore[attr-defined]
            raise StateChanged("some rep's open leads changed meanwhile")
        done = {rep for rep, _read, _added in bulk}
        changes = [change for change in changes if change[0] not in done]
    for rep, read, added in changes:
        count_open_leads(session=session, rep_id=rep, read_count=read, added=added, now=now)


def count_open_leads(
    *, session: Session, rep_id: str, read_count: int, added: int, now: datetime
) -> None:
    """`added` more open leads for `rep_id`, if its count is still `read_count`."""
    result = session.execute(
        _COUNT_OPEN_LEADS,
        {"b_rep": rep_id, "b_read": read_count, "b_count": read_count + added, "b_now": now},
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    if read_count != 0:
        raise StateChanged(f"{rep_id}'s open leads changed meanwhile")
    try:
        with session.begin_nested():
            session.execute(
                insert(RepStateRow).values(
                    rep_id=rep_id, open_count=added, away=False, updated_at=now
                )
            )
    except IntegrityError:
        raise StateChanged(f"{rep_id}'s state was created meanwhile") from None


def set_away(
    *,
    session: Session,
    rep_id: str,
    away: bool,
    since: datetime | None,
    until: datetime | None,
    reason: str | None,
    now: datetime,
) -> None:
    result = session.execute(
        update(RepStateRow)
        .where(col(RepStateRow.rep_id) == rep_id)
        .values(away=away, away_since=since, away_until=until, away_reason=reason, updated_at=now)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            RepStateRow(
                rep_id=rep_id,
                open_count=0,
                away=away,
                away_since=since,
                away_until=until,
                away_reason=reason,
                updated_at=now,
            )
        )
        session.flush()


def change_offer_status(
    *, session: Session, offer_id: int, from_status: str, to_status: str, now: datetime
) -> bool:
    """Compare-and-set an offer's status; True for the one caller that made the change."""
    closing = to_status not in OPEN_OFFER_STATUSES
    result = session.execute(
        update(OfferRow)
        .where(and_(col(OfferRow.id) == offer_id, col(OfferRow.status) == from_status))
        .values(status=to_status, **({"closed_at": now} if closing else {}))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def add_audit(
    *,
    session: Session | AsyncSession,
    lead_id: int | None,
    at: datetime,
    kind: str,
    actor: str | None = None,
    rule: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditEventRow(
            lead_id=lead_id,
            at=at,
            kind=kind,
            actor=actor,
            rule=rule,
            reason=reason,
            data=dict(data or {}),
        )
    )


# Bulk inserts go through Core against the table, not the ORM: the rows are plain dicts with
# every column given, nobody needs ORM objects back, and the ORM's bulk path costs more Python
# per statement than the statement costs SQLite. (It would also leave out each row's None
# values, splitting the rows into one statement per distinct set of them.)


def insert_rows(
    *, session: Session, table: type[SQLModel], rows: Sequence[Mapping[str, Any]]
) -> None:
    """One bulk INSERT (executemany)."""
    if rows:
        session.execute(_insert_into(table), rows)


def insert_leads(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert leads in bulk; their database ids by external id.

    Matched up by external id rather than by position: asking for RETURNING in parameter order
    makes SQLAlchemy send SQLite one INSERT per row."""
    if not rows:
        return {}
    result = session.execute(_INSERT_LEADS, rows)
    return {external_id: lead_id for lead_id, external_id in result}


def insert_outbox(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert outbox items in bulk; their ids by dedupe key (unique, so a fair match)."""
    if not rows:
        return {}
    result = session.execute(_INSERT_OUTBOX, rows)
    return {dedupe_key: item_id for item_id, dedupe_key in result}


def record_card_posted(
    *,
    session: Session,
    offer_id: int,
    team_copy: bool,
    channel: str,
    ts: str,
    sla_due_at: datetime | None = None,
    remind_at: datetime | None = None,
    posted_at: datetime | None = None,
) -> bool:
    """Where an offer's card went (the rep's DM, or the copy in the team's channel), so it is
    updated in place and never posted twice; for the DM card, also when it was posted and the
    SLA deadline that runs from then. False if another card was recorded there already (this
    one is a second copy); True, changing nothing, if this very message was (found by another
    attempt's look-up)."""
    result = session.execute(
        _record_card(team_copy=team_copy, timed=posted_at is not None),
        {
            "b_id": offer_id,
            "b_channel": channel,
            "b_ts": ts,
            "b_posted_at": posted_at,
            "b_due": sla_due_at,
            "b_remind": remind_at,
        },
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    recorded = OfferRow.team_message_ts if team_copy else OfferRow.message_ts
    stored = session.scalar(select(col(recorded)).where(col(OfferRow.id) == offer_id))
    return stored == ts


@cache
def _record_card(*, team_copy: bool, timed: bool) -> Update:
    """`record_card_posted`'s statement, built once for each of its shapes."""
    if team_copy:
        values: dict[str, Any] = {"team_channel": "b_channel", "team_message_ts": "b_ts"}
        unset = _OFFERS.c.team_message_ts.is_(None)
    else:
        values = {"channel": "b_channel", "message_ts": "b_ts"}
        unset = _OFFERS.c.message_ts.is_(None)
        if timed:
            values |= {"card_posted_at": "b_posted_at", "sla_due_at": "b_due"}
            values |= {"remind_at": "b_remind"}
    return (
        update(_OFFERS)
        .where(_OFFERS.c.id == bindparam("b_id"), unset)
        .values({column: bindparam(name) for column, name in values.items()})
    )


def insert_offers(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Insert offers in bulk, at most one per lead; their ids by lead id."""
    if not rows:
        return {}
    leads = [row["lead_id"] for row in rows]
    if len(set(leads)) != len(leads):
        raise ValueError("insert_offers takes at most one offer per lead")
    result = session.execute(_INSERT_OFFERS, rows)
    return {lead_id: offer_id for offer_id, lead_id in result}


def outbox_values(
    *,
    kind: str,
    dedupe_key: str,
    payload: Mapping[str, Any],
    now: datetime,
    lane: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "lane": lane,
        "payload": dict(payload),
        "attempts": 0,
        "lease_token": None,
        "next_attempt_at": now,
        "created_at": now,
    }


async def count_open_offers(*, session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(OfferRow)
        .where(col(OfferRow.status).in_(OPEN_OFFER_STATUSES))
    )
    return int(result.scalar_one())


async def unmatched_queue(*, session: AsyncSession) -> tuple[int, datetime | None]:
    """How many leads wait in a queue, and when the one waiting longest arrived."""
    result = await session.execute(
        select(func.count(), func.min(col(LeadRow.created_at))).where(
            col(LeadRow.status) == LeadStatus.QUEUED.value
        )
    )
    size, oldest = result.one()
    return int(size), oldest


async def outbox_depth(*, session: AsyncSession) -> int:
    """Outbox items still to carry out (not done, not given up on)."""
    result = await session.execute(
        select(func.count())
        .select_from(OutboxRow)
        .where(col(OutboxRow.done_at).is_(None), col(OutboxRow.failed_at).is_(None))
    )
    return int(result.scalar_one())


# --- accounts -----------------------------------------------------------------------------------


def upsert_accounts(
    *,
    session: Session,
    accounts: Sequence[Account],
    now: datetime,
    crm_system: str | None = None,
) -> tuple[int, int]:
    """Insert or replace accounts and their name keys in bulk. Returns (created, updated)."""
    ids = [account.id for account in accounts]
    existing: set[str] = set()
    for chunk in _chunks(ids):
        rows = session.execute(select(col(AccountRow.id)).where(col(AccountRow.id).in_(chunk)))
        existing.update(account_id for (account_id,) in rows.all())
    for chunk in _chunks(existing):
        session.execute(delete(AccountKeyRow).where(col(AccountKeyRow.account_id).in_(chunk)))
        session.execute(delete(AccountRow).where(col(AccountRow.id).in_(chunk)))
    insert_rows(
        session=session,
        table=AccountRow,
        rows=[
            {
                "id": account.id,
                "name": account.name,
                "domain": registrable_domain(account.domain),
                "website": account.domain,
                "owner_rep": account.owner,
                "tier": account.tier,
                "country": country,
                "state": state,
                "crm_system": crm_system,
                "updated_at": now,
            }
            for account in accounts
            for country, state in [account_location(account.country, account.state)]
        ],
    )
    insert_rows(
        session=session,
        table=AccountKeyRow,
        rows=[
            {"account_id": account.id, "key": key}
            for account in accounts
            for key in name_blocking_keys(company_key(account.name))
        ],
    )
    return len(accounts) - len(existing), len(existing)


# --- the outbox ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """An item taken for one attempt. `unsure`: an earlier attempt ended (or its process died)
    without knowing whether its call took effect, so this one must look before acting."""

    item: OutboxRow
    unsure: bool


UNSURE = "unsure"  # the lease token an attempt leaves when it cannot tell what its call did


def _lane_free(now: datetime) -> Any:
    lanes = _table(SlackLaneRow)
    held = select(lanes.c.lane).where(lanes.c.lane == _OUTBOX.c.lane, lanes.c.not_before > now)
    return or_(_OUTBOX.c.lane.is_(None), ~held.exists())


def claim_outbox(
    *,
    session: Session,
    kinds: Sequence[str],
    now: datetime,
    until: datetime,
    token: str,
    limit: int,
    skip_locked: bool,
) -> list[Claimed]:
    """Take up to `limit` items of these kinds that are due, oldest first, each for one
    attempt named `token` and leased until `until`. Items whose lane is held (Slack's pace or
    Retry-After) are left. `skip_locked` (PostgreSQL): rows another replica is taking are
    passed over rather than waited for."""
    query = (
        select(OutboxRow)
        .where(
            col(OutboxRow.kind).in_(kinds),
            col(OutboxRow.done_at).is_(None),
            col(OutboxRow.failed_at).is_(None),
            col(OutboxRow.next_attempt_at) <= now,
            _lane_free(now),
        )
        .order_by(col(OutboxRow.id))
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    found = list(session.execute(query).scalars().all())
    if not found:
        return []
    ids = [row.id for row in found]
    session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id).in_(ids))
        .values(next_attempt_at=until, lease_token=token, attempts=OutboxRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    claimed = []
    for row in found:
        session.expunge(row)
        unsure = row.lease_token is not None
        row.next_attempt_at, row.lease_token, row.attempts = until, token, row.attempts + 1
        claimed.append(Claimed(row, unsure))
    return claimed


def renew_outbox(*, session: Session, held: Mapping[int, str], until: datetime) -> set[int]:
    """Extend the leases of attempts still running (item id -> its token) to `until`. Returns
    the ids still held: an item missing was taken by another worker (its lease had run out)."""
    if not held:
        return set()
    renewed = session.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.id).in_(list(held)),
            col(OutboxRow.lease_token).in_(set(held.values())),
            col(OutboxRow.done_at).is_(None),
            col(OutboxRow.failed_at).is_(None),
        )
        .values(next_attempt_at=until)
        .returning(col(OutboxRow.id), col(OutboxRow.lease_token))
        .execution_options(synchronize_session=False)
    )
    return {item_id for item_id, token in renewed.all() if item_id and held.get(item_id) == token}


def finish_outbox(
    *,
    session: Session,
    item_id: int,
    token: str | None,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
    unsure: bool = False,
) -> bool:
    """End an attempt: done (no error), to be tried again at `retry_at`, or given up (an error,
    no retry). Only the attempt holding the item may end it (compare-and-set on `token`); False
    if another had taken it meanwhile. `unsure`: the attempt cannot tell whether its call took
    effect, so the next one is told to look first."""
    ending = "done" if error is None else "retry" if retry_at is not None else "failed"
    result = session.execute(
        _finish_outbox(ending=ending, held=token is not None),
        {
            "b_id": item_id,
            "b_token": token,
            "b_left": UNSURE if unsure else None,
            "b_now": now,
            "b_retry_at": retry_at,
            "b_error": error,
        },
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@cache
def _finish_outbox(*, ending: str, held: bool) -> Update:
    """`finish_outbox`'s statement, built once for each of its shapes: how the attempt ends
    (done, retry, failed) and whether it held a lease token."""
    values: dict[str, Any] = {"lease_token": bindparam("b_left")}
    if ending == "done":
        values |= {"done_at": bindparam("b_now"), "last_error": None}
    elif ending == "retry":
        values |= {"next_attempt_at": bindparam("b_retry_at"), "last_error": bindparam("b_error")}
    else:
        values |= {"failed_at": bindparam("b_now"), "last_error": bindparam("b_error")}
    token = _OUTBOX.c.lease_token
    return (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == bindparam("b_id"),
            token == bindparam("b_token") if held else token.is_(None),
            _OUTBOX.c.done_at.is_(None),
            _OUTBOX.c.failed_at.is_(None),
        )
        .values(values)
    )


def pace_lane(*, session: Session, lane: str, not_before: datetime) -> None:
    """Nothing goes to `lane` before `not_before` (a later time already set stands)."""
    statement = _pace_lane(session.get_bind().dialect.name)
    session.execute(statement, {"b_lane": lane, "b_not_before": not_before})


@cache
def _pace_lane(dialect: str) -> Insert:
    """`pace_lane`'s upsert for `dialect`, built once."""
    lanes = _table(SlackLaneRow)
    upsert = (sqlite_insert if dialect == "sqlite" else pg_insert)(lanes).values(
        lane=bindparam("b_lane"), not_before=bindparam("b_not_before")
    )
    later = case(
        (upsert.excluded.not_before > lanes.c.not_before, upsert.excluded.not_before),
        else_=lanes.c.not_before,
    )
    return upsert.on_conflict_do_update(index_elements=[lanes.c.lane], set_={"not_before": later})


def lane_free_at(*, session: Session, lane: str) -> datetime | None:
    """When `lane` may be posted to next, as every replica has agreed so far (None: any time)."""
    row = session.get(SlackLaneRow, lane, populate_existing=True)
    return row.not_before if row is not None else None


async def outbox_pending(*, session: AsyncSession, dedupe_key: str) -> bool:
    """Whether the item queued under `dedupe_key` is still to be done (not done, not given up)."""
    result = await session.execute(
        select(func.count())
        .select_from(OutboxRow)
        .where(
            col(OutboxRow.dedupe_key) == dedupe_key,
            col(OutboxRow.done_at).is_(None),
            col(OutboxRow.failed_at).is_(None),
        )
    )
    return bool(result.scalar_one())


def queue_outbox_once(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue items whose dedupe key is not queued yet (a webhook sent twice queues once).
    Returns how many were new."""
    if not rows:
        return 0
    keys = [row["dedupe_key"] for row in rows]
    queued: set[str] = set()
    for chunk in _chunks(keys):
        found = session.execute(
            select(col(OutboxRow.dedupe_key)).where(col(OutboxRow.dedupe_key).in_(chunk))
        )
        queued.update(key for (key,) in found.all())
    fresh = {row["dedupe_key"]: row for row in rows if row["dedupe_key"] not in queued}
    insert_rows(session=session, table=OutboxRow, rows=list(fresh.values()))
    return len(fresh)


# --- CRM sync -----------------------------------------------------------------------------------


async def crm_cursor(*, session: AsyncSession, name: str) -> datetime | None:
    row = await session.get(CrmCursorRow, name)
    return row.watermark if row is not None else None


def move_crm_cursor(*, session: Session, name: str, watermark: datetime, now: datetime) -> None:
    """Move the cursor forward to `watermark` (never back: a slower replica's older page must
    not undo a newer one's progress)."""
    moved = session.execute(
        update(CrmCursorRow)
        .where(col(CrmCursorRow.name) == name, col(CrmCursorRow.watermark) < watermark)
        .values(watermark=watermark, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(CrmCursorRow, name) is None:
        session.add(CrmCursorRow(name=name, watermark=watermark, updated_at=now))
        session.flush()


async def stored_crm_ids(
    *, session: AsyncSession, crm_system: str, crm_ids: Iterable[str]
) -> set[str]:
    """Which of these CRM record ids already arrived as leads (by any route)."""
    stored: set[str] = set()
    for chunk in _chunks(crm_ids):
        rows = await session.execute(
            select(col(LeadRow.crm_id)).where(
                col(LeadRow.crm_system) == crm_system, col(LeadRow.crm_id).in_(chunk)
            )
        )
        stored.update(crm_id for (crm_id,) in rows.all() if crm_id is not None)
    return stored
