"""What a person's App Home shows: a rep's open offers (titled and explained as their cards are),
the leads they claimed and have yet to contact, availability and share of their teams' leads
this week; a manager's teams' load, the unmatched queue and this week's figures
(`bot.service.weekly`).

Plain data out, no Slack formatting: `bot.slack.home_view` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.card import CardContent, card_content_of, lead_title
from bot.service.digests import QueuedLead
from bot.service.weekly import ManagerWeek, RepWeek, manager_week, rep_week
from routing.policy import Policy
from storage import reads
from storage import repository as repo
from storage.models import RepStateRow

HOME_QUEUED = 5  # the queued leads a manager's App Home lists, oldest first, each with Assign


@dataclass(frozen=True, slots=True)
class HomeOffer:
    lead_id: str
    content: CardContent  # as the lead's card says it, with the deadline its SLA runs to
    offered_at: datetime


@dataclass(frozen=True, slots=True)
class ContactLead:
    """A lead the rep claimed and has yet to touch, with the contact SLA's deadline."""

    lead_id: str
    title: str  # as its card titles it
    due_at: datetime | None


@dataclass(frozen=True, slots=True)
class RepLoad:
    name: str
    open: int
    capacity: int | None
    away: bool
    away_until: datetime | None


@dataclass(frozen=True, slots=True)
class TeamLoad:
    team: str
    reps: tuple[RepLoad, ...]


@dataclass(frozen=True, slots=True)
class HomeData:
    name: str  # the viewer's name
    is_rep: bool
    offers: tuple[HomeOffer, ...]  # the viewer's open offers, oldest first
    away: bool
    away_until: datetime | None
    away_reason: str | None
    is_manager: bool
    teams: tuple[TeamLoad, ...]  # managers only
    queue_size: int  # managers only
    queue_oldest_at: datetime | None  # managers only
    now: datetime
    rep_week: RepWeek | None = None  # reps only
    week: ManagerWeek | None = None  # managers only
    keeps_hours: bool = True  # a rep with working hours is out until the next one (I'm out)
    queued: tuple[QueuedLead, ...] = ()  # managers only: the oldest of the queue, to assign
    to_contact: tuple[ContactLead, ...] = ()  # reps only: claimed, a contact SLA, no touch yet


async def load_home(
    session: AsyncSession,
    policy: Policy,
    *,
    rep_id: str | None,
    manager_id: str | None,
    now: datetime,
) -> HomeData:
    """The App Home of the person who is `rep_id` and/or `manager_id` in the policy (neither:
    someone the policy does not know)."""
    states = await reads.rep_state_rows(session=session)
    offers: tuple[HomeOffer, ...] = ()
    if rep_id is not None:
        offers = tuple(
            HomeOffer(
                lead_id=lead.external_id,
                content=card_content_of(
                    lead.facts,
                    policy,
                    lead_id=lead.external_id,
                    reason=lead.reason,
                    sla_seconds=offer.sla_seconds,
                    offered_at=offer.offered_at,
                    sla_due_at=offer.sla_due_at,
                ),
                offered_at=offer.offered_at,
            )
            for offer, lead in await reads.open_offers_of_rep(session=session, rep_id=rep_id)
        )
    to_contact = await leads_to_contact(session, rep_id) if rep_id is not None else ()
    mine = states.get(rep_id) if rep_id else None
    away = is_away(mine, now)
    teams: tuple[TeamLoad, ...] = ()
    size, oldest_at = 0, None
    queued: tuple[QueuedLead, ...] = ()
    week = None
    if manager_id is not None:
        teams = tuple(
            TeamLoad(
                team=team.name,
                reps=tuple(
                    _load(policy, member, states.get(member), now) for member in team.members
                ),
            )
            for team in policy.teams.values()
            if team.manager == manager_id
        )
        size, oldest = await repo.queued_leads(session=session, limit=HOME_QUEUED)
        queued = tuple(
            QueuedLead(lead.external_id, lead.company, lead.source, lead.queue, lead.created_at)
            for lead in oldest
        )
        oldest_at = queued[0].created_at if queued else None
        week = await manager_week(session, policy, manager_id=manager_id, now=now)
    name = (
        policy.rep_name(rep_id)
        if rep_id
        else (policy.managers[manager_id].name if manager_id else "there")
    )
    return HomeData(
        name=name,
        is_rep=rep_id is not None,
        offers=offers,
        away=away,
        away_until=mine.away_until if mine and away else None,
        away_reason=mine.away_reason if mine and away else None,
        is_manager=manager_id is not None,
        teams=teams,
        queue_size=size,
        queue_oldest_at=oldest_at,
        now=now,
        rep_week=await rep_week(session, policy, rep_id=rep_id, now=now) if rep_id else None,
        week=week,
        keeps_hours=rep_id is None or policy.reps[rep_id].hours is not None,
        queued=queued,
        to_contact=to_contact,
    )


async def leads_to_contact(session: AsyncSession, rep_id: str) -> tuple[ContactLead, ...]:
    """The leads `rep_id` claimed, with a contact SLA, and has yet to touch."""
    return tuple(
        ContactLead(
            lead.external_id, lead_title(lead.facts, lead.external_id), offer.contact_due_at
        )
        for offer, lead in await reads.claimed_to_contact(session=session, rep_id=rep_id)
    )


def _load(policy: Policy, rep_id: str, state: RepStateRow | None, now: datetime) -> RepLoad:
    return RepLoad(
        name=policy.rep_name(rep_id),
        open=state.open_count if state is not None else 0,
        capacity=policy.reps[rep_id].capacity,
        away=is_away(state, now),
        away_until=state.away_until if state is not None else None,
    )


def is_away(state: RepStateRow | None, now: datetime) -> bool:
    """Whether the rep of `state` is out of office at `now` (an absence past its end is over)."""
    if state is None or not state.away:
        return False
    return state.away_until is None or state.away_until > now
