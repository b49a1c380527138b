"""History as a replay reads it (`routing.replay`): the leads of a window in the order they
arrived, each with the first decision made for it and when it stopped being open; and the state
at the window's start: the leads then open, where each team's rotation stood, who was away.

Reads only, each in the caller's `AsyncSession`. The leads come a chunk at a time from one
streamed query, so a window of any size is never in memory at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, and_, case, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from routing.decision import Stage
from routing.domains import canonical_email
from routing.model import Lead, Outcome, OutOfOffice
from routing.replay import Absence, HeldLead, Opening, Routed, StoredLead
from storage.decisions import lead_of_raw
from storage.models import OPEN_OFFER_STATUSES, AuditEventRow, DecisionRow, UtcDateTime
from storage.repository.common import LEADS, OFFERS, table_of

DECISIONS = table_of(DecisionRow)
AUDIT = table_of(AuditEventRow)
CHUNK = 2000  # leads per chunk of the stream

# The lead's own offers and decisions, for subqueries inside queries of the offers or decisions.
_ITS_OFFERS = OFFERS.alias("its_offers")
_ITS_DECISIONS = DECISIONS.alias("its_decisions")

# When a lead stopped being open: when its last offer closed, unless one is open still (then
# None, as for a lead never offered).
_RELEASED_AT = (
    select(
        type_coerce(
            case(
                (
                    func.max(case((_ITS_OFFERS.c.status.in_(OPEN_OFFER_STATUSES), 1), else_=0))
                    == 1,
                    None,
                ),
                else_=func.max(_ITS_OFFERS.c.closed_at),
            ),
            UtcDateTime(),
        )
    )
    .where(_ITS_OFFERS.c.lead_id == LEADS.c.id)
    .correlate(LEADS)
    .scalar_subquery()
)

_FIRST_DECISION = (
    select(func.min(_ITS_DECISIONS.c.id))
    .where(_ITS_DECISIONS.c.lead_id == LEADS.c.id)
    .correlate(LEADS)
    .scalar_subquery()
)

# A decision's trace is read only where it can tell an unmatched lead (queued by no rule) from
# one queued for an ambiguous account: for every other lead it would be most of the bytes read.
_QUEUED_BY_NO_RULE = and_(DECISIONS.c.outcome == Outcome.QUEUED.value, DECISIONS.c.rule.is_(None))
_TRACE_IF_QUEUED = type_coerce(case((_QUEUED_BY_NO_RULE, DECISIONS.c.trace), else_=None), JSON)

_LEADS_OF_WINDOW = (
    select(
        LEADS.c.raw,
        LEADS.c.created_at,
        _RELEASED_AT,
        DECISIONS.c.outcome,
        DECISIONS.c.rep_id,
        DECISIONS.c.team,
        DECISIONS.c.rule,
        DECISIONS.c.reason,
        DECISIONS.c.sla_seconds,
        _TRACE_IF_QUEUED,
        DECISIONS.c.policy_version,
    )
    .select_from(LEADS)
    .join(DECISIONS, DECISIONS.c.id == _FIRST_DECISION)
    .order_by(LEADS.c.created_at, LEADS.c.id)
)


async def stored_leads(
    *, session: AsyncSession, since: datetime, until: datetime, chunk: int = CHUNK
) -> AsyncGenerator[list[StoredLead], None]:
    """The leads that arrived in [since, until), in arrival order, `chunk` at a time. A caller
    that may stop before the end closes it first (`contextlib.aclosing`).

    The next chunk is asked for before this one is handed over: the database finds it (on its
    driver's thread, or its server) while the caller works through this one."""
    statement = _LEADS_OF_WINDOW.where(
        LEADS.c.created_at >= since, LEADS.c.created_at < until
    ).execution_options(yield_per=chunk)
    result = await session.stream(statement)
    partitions = result.partitions()
    following = asyncio.ensure_future(anext(partitions, None))
    try:
        while (rows := await following) is not None:
            following = asyncio.ensure_future(anext(partitions, None))
            await asyncio.sleep(0)  # the request for it reaches the driver before work starts
            yield [_stored_lead(row) for row in rows]
    finally:
        # A caller that stops early (`aclosing`) waits for the fetch under way to end: the
        # session must not be closed under it.
        if not following.done():
            following.cancel()
            await asyncio.wait([following])
        if not following.cancelled():
            following.exception()  # seen, whatever it was: the caller's own error is the news


# What an account lookup reads of each lead (`routing.lookups_in_advance`), straight from its
# stored JSON: a replay's second process needs these alone, not the whole lead decoded.
LOOKUP_FIELDS = ("email", "domain", "website", "company", "country", "state")
_LOOKUP_FACTS = (
    select(LEADS.c.external_id, *(LEADS.c.raw[name].as_string() for name in LOOKUP_FIELDS))
    # The leads `stored_leads` lists: those with a decision.
    .where(select(DECISIONS.c.id).where(DECISIONS.c.lead_id == LEADS.c.id).exists())
    .order_by(LEADS.c.created_at, LEADS.c.id)
)


async def lookup_facts(
    *, session: AsyncSession, since: datetime, until: datetime, chunk: int = CHUNK
) -> AsyncGenerator[list[Lead], None]:
    """The leads of `stored_leads`, in the same order and chunks, each with only its id and
    what an account lookup reads (`LOOKUP_FIELDS`)."""
    statement = _LOOKUP_FACTS.where(
        LEADS.c.created_at >= since, LEADS.c.created_at < until
    ).execution_options(yield_per=chunk)
    result = await session.stream(statement)
    async for rows in result.partitions():
        yield [
            Lead(
                id,
                email=email,
                domain=domain,
                website=website,
                company=company,
                country=country,
                state=state,
            )
            for id, email, domain, website, company, country, state in rows
        ]


async def count_leads(*, session: AsyncSession, since: datetime, until: datetime) -> int:
    """How many leads arrived in [since, until)."""
    counted = await session.execute(
        select(func.count()).where(LEADS.c.created_at >= since, LEADS.c.created_at < until)
    )
    return int(counted.scalar_one())


def _stored_lead(row: Any) -> StoredLead:
    raw, arrived_at, released_at, outcome, rep, team, rule, reason, sla_seconds, trace, version = (
        row
    )
    unmatched = trace is not None and _no_rule_matched(trace)
    before = Routed(_OUTCOMES[outcome], rep, team, rule, reason, sla_seconds, unmatched, version)
    return StoredLead(lead_of_raw(raw), arrived_at, before, released_at)


_OUTCOMES = {outcome.value: outcome for outcome in Outcome}  # a dict: Outcome(...) costs more


def _no_rule_matched(trace: list[dict[str, Any]]) -> bool:
    """Whether a queued decision's trace ends in the policy's fallback: no rule matched (a lead
    queued for an ambiguous account has no such step)."""
    return bool(trace) and trace[-1].get("stage") == Stage.FALLBACK.value


async def opening(*, session: AsyncSession, since: datetime, until: datetime) -> Opening:
    """The state at `since`: the leads then held (an offer made before it and open at it), each
    team's last rep before it, and the absences recorded before `until`."""
    held = await session.execute(
        select(
            OFFERS.c.rep_id,
            LEADS.c.external_id,
            OFFERS.c.offered_at,
            LEADS.c.account_id,
            LEADS.c.email,
            _RELEASED_AT,
        )
        .select_from(OFFERS)
        .join(LEADS, LEADS.c.id == OFFERS.c.lead_id)
        .where(
            OFFERS.c.offered_at < since,
            or_(OFFERS.c.closed_at.is_(None), OFFERS.c.closed_at > since),
        )
    )
    last = (
        select(func.max(DECISIONS.c.id))
        .where(
            DECISIONS.c.at < since, DECISIONS.c.team.is_not(None), DECISIONS.c.rep_id.is_not(None)
        )
        .group_by(DECISIONS.c.team)
    )
    last_reps = await session.execute(
        select(DECISIONS.c.team, DECISIONS.c.rep_id).where(DECISIONS.c.id.in_(last))
    )
    return Opening(
        held=[
            HeldLead(
                rep,
                lead_id,
                offered_at,
                account_id,
                canonical_email(email) if email else None,
                released_at,
            )
            for rep, lead_id, offered_at, account_id, email, released_at in held
        ],
        last_reps={team: rep for team, rep in last_reps},
        absences=await absences(session=session, until=until),
    )


# What `bot.service.availability` records when a rep goes away and comes back.
_AWAY, _BACK = "out_of_office", "back"


async def absences(*, session: AsyncSession, until: datetime) -> list[Absence]:
    """Every absence recorded before `until` (as long as the audit trail keeps them), in order."""
    rows = await session.execute(
        select(AUDIT.c.at, AUDIT.c.kind, AUDIT.c.reason, AUDIT.c.data)
        .where(AUDIT.c.lead_id.is_(None), AUDIT.c.kind.in_((_AWAY, _BACK)), AUDIT.c.at < until)
        .order_by(AUDIT.c.at, AUDIT.c.id)
    )
    found = []
    for at, kind, reason, data in rows:
        rep = data.get("rep")
        if not isinstance(rep, str):
            continue
        away = None
        if kind == _AWAY:
            ends = data.get("until")
            away = OutOfOffice(
                until=datetime.fromisoformat(ends) if ends else None, reason=reason, since=at
            )
        found.append(Absence(at, rep, away))
    return found
