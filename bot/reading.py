"""The service layer's read side: what Slack shows (cards, `/routing why`, the queue, App Home).

Plain data out, no Slack formatting: `bot/slack` renders it. Each function reads in one session
from the read engine, so it never waits behind a routing transaction.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.card import CardContent, card_content_of
from bot.crm_links import CrmLinks, crm_name, no_links
from bot.service import CRM_OWNER_SET, CRM_WRITE_FAILED, NewOffer
from routing.decision import Decision, Stage, Step
from routing.durations import format_duration
from routing.explain import explain
from routing.model import Outcome
from routing.policy import Policy
from storage import repository as repo
from storage.db import Database
from storage.models import (
    AuditEventRow,
    DecisionRow,
    LeadRow,
    LeadStatus,
    OfferRow,
    OfferStatus,
    RepStateRow,
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking, as the policy knows them (a person may be both a rep and a manager)."""

    rep: str | None
    manager: str | None

    @property
    def known(self) -> bool:
        return self.rep is not None or self.manager is not None

    @property
    def id(self) -> str | None:
        return self.rep or self.manager


def viewer_of(policy: Policy, slack_user: str) -> Viewer:
    return Viewer(policy.rep_of_slack(slack_user), policy.manager_of_slack(slack_user))


@dataclass(frozen=True, slots=True)
class OfferCard:
    """Everything needed to post or update one offer's card."""

    offer_id: int
    lead_id: str
    status: str
    rep: str
    rep_slack: str | None
    team_channel: str | None
    content: CardContent
    # for a reassignment: how it came to this rep and how long the lead has waited
    # ("rejected by Ann Archer · waiting 5m")
    note: str | None
    channel: str | None  # where the card was posted (the rep's DM), once it was
    message_ts: str | None
    team_message_ts: str | None
    settled: str | None  # for a closed offer: what happened, as a sentence with ids in it
    crm_url: str | None = None  # the lead's record in its CRM, when the CRM is configured
    sla_seconds: int | None = None
    sla_due_at: datetime | None = None  # None until the SLA runs (see `OfferRow.card_posted_at`)


@dataclass(frozen=True, slots=True)
class QueuedCard:
    lead_id: str  # the external id
    queue: str
    content: CardContent


@dataclass(frozen=True, slots=True)
class StoryEvent:
    at: datetime
    what: str


@dataclass(frozen=True, slots=True)
class LeadStory:
    lead_id: str
    explanation: str
    events: tuple[StoryEvent, ...]
    notes: tuple[str, ...] = ()  # what a reader of the story should know besides


class NotVisible(Exception):
    """The lead exists but this viewer may not see it; the message says so in a sentence."""


# How long a new offer's card is shown as intake made it (`Reader.new_offer_card`) rather than
# read back: long enough for the hand-over to the card delivery, short enough that a card which
# waited (a channel's pace, a retry) is read as it stands when it goes out.
NEW_OFFER_FRESH_S = 2.0
NEW_OFFERS_KEPT = 10_000


@dataclass
class Reader:
    db: Database
    policy: Callable[[], Policy]
    clock: Callable[[], datetime]
    crm_links: CrmLinks = no_links
    crms: Collection[str] = frozenset()  # the CRMs owners are written back to (configured)
    # offer id -> (the offer as intake made it, time.monotonic() when told), oldest first
    _new_offers: OrderedDict[int, tuple[NewOffer, float]] = field(default_factory=OrderedDict)

    # --- cards ---------------------------------------------------------------------------------

    def remember_new_offers(self, offers: Sequence[NewOffer]) -> None:
        """Intake's `on_new_offers`: cards about to go out, as committed."""
        now = time.monotonic()
        for offer in offers:
            self._new_offers[offer.offer_id] = (offer, now)
        # Oldest first: drop what is too old to be used, and keep the number bounded anyway.
        kept = self._new_offers
        while kept and (
            len(kept) > NEW_OFFERS_KEPT or now - next(iter(kept.values()))[1] > NEW_OFFER_FRESH_S
        ):
            kept.popitem(last=False)

    async def new_offer_card(self, offer_id: int) -> OfferCard | None:
        """The card of an offer intake has just made, without a read if it was made within
        NEW_OFFER_FRESH_S (posting it is then the very next thing); otherwise `offer_card`."""
        # Not taken out: the DM card and its copy in the team's channel both read it.
        remembered = self._new_offers.get(offer_id)
        if remembered is None or time.monotonic() - remembered[1] > NEW_OFFER_FRESH_S:
            return await self.offer_card(offer_id)
        offer = remembered[0]
        policy = self.policy()
        return _offer_card(
            policy,
            offer_id=offer_id,
            lead_id=offer.external_id,
            rep=offer.rep,
            team=offer.team,
            content=card_content_of(
                offer.facts,
                policy,
                lead_id=offer.external_id,
                reason=offer.reason,
                sla_seconds=offer.sla_seconds,
                offered_at=offer.offered_at,
            ),
            crm_url=self.crm_links(offer.crm_system, offer.crm_id),
            sla_seconds=offer.sla_seconds,
            sla_due_at=offer.sla_due_at,
        )

    async def offer_card(self, offer_id: int) -> OfferCard | None:
        async with self.db.reading() as session:
            found = (await session.execute(_CARD_ROWS, {"offer_id": offer_id})).one_or_none()
            if found is None:
                return None
            offer, lead, decision, previous = found
            settled = (
                await _settled_sentence(session, offer, lead) if offer.status != "offered" else None
            )
        policy = self.policy()
        content = card_content_of(
            lead.facts,
            policy,
            lead_id=lead.external_id,
            reason=decision.reason if decision else lead.reason,
            sla_seconds=decision.sla_seconds if decision else None,
            offered_at=offer.offered_at,
        )
        return _offer_card(
            policy,
            offer_id=offer_id,
            lead_id=lead.external_id,
            rep=offer.rep_id,
            team=offer.team,
            content=content,
            crm_url=self.crm_links(lead.crm_system, lead.crm_id),
            status=offer.status,
            note=_reassignment_note(policy, previous, lead, offer),
            channel=offer.channel,
            message_ts=offer.message_ts,
            team_message_ts=offer.team_message_ts,
            settled=settled,
            sla_seconds=offer.sla_seconds,
            sla_due_at=offer.sla_due_at,
        )

    async def queued_card(self, lead_id: int) -> QueuedCard | None:
        """A lead waiting in a queue, as its card; None once it is not queued any more."""
        async with self.db.reading() as session:
            lead = await session.get(LeadRow, lead_id)
        if lead is None or lead.status != LeadStatus.QUEUED.value:
            return None
        content = card_content_of(
            lead.facts,
            self.policy(),
            lead_id=lead.external_id,
            reason=lead.reason,
            sla_seconds=None,
            offered_at=lead.created_at,
        )
        return QueuedCard(lead.external_id, lead.queue or "unmatched", content)

    # --- /routing why --------------------------------------------------------------------------

    async def find_lead_id(self, reference: str) -> str | None:
        """A lead's external id from its external id, e-mail or CRM id (the newest match)."""
        ref = reference.strip()
        async with self.db.reading() as session:
            result = await session.execute(
                select(col(LeadRow.external_id))
                .where(
                    or_(
                        col(LeadRow.external_id) == ref,
                        col(LeadRow.email) == ref.lower(),
                        col(LeadRow.crm_id) == ref,
                    )
                )
                .order_by((col(LeadRow.external_id) == ref).desc(), col(LeadRow.id).desc())
                .limit(1)
            )
            return result.scalar_one_or_none()

    async def story(self, reference: str, viewer: Viewer) -> LeadStory | None:
        """The full explanation and what happened since; None for an unknown lead.

        Reps see leads that were offered to them; managers see every lead."""
        external_id = await self.find_lead_id(reference)
        if external_id is None:
            return None
        policy = self.policy()
        async with self.db.reading() as session:
            lead = (
                await session.execute(
                    select(LeadRow).where(col(LeadRow.external_id) == external_id)
                )
            ).scalar_one()
            offers = (
                (
                    await session.execute(
                        select(OfferRow)
                        .where(col(OfferRow.lead_id) == lead.id)
                        .order_by(col(OfferRow.id))
                    )
                )
                .scalars()
                .all()
            )
            if viewer.manager is None and viewer.rep not in {o.rep_id for o in offers}:
                raise NotVisible(
                    f"lead {external_id} was never offered to you; ask your manager about it"
                )
            first = (
                await session.execute(
                    select(DecisionRow)
                    .where(col(DecisionRow.lead_id) == lead.id)
                    .order_by(col(DecisionRow.id))
                    .limit(1)
                )
            ).scalar_one_or_none()
            audits = (
                (
                    await session.execute(
                        select(AuditEventRow)
                        .where(col(AuditEventRow.lead_id) == lead.id)
                        .order_by(col(AuditEventRow.id))
                    )
                )
                .scalars()
                .all()
            )
        explanation = explain(_decision_of(lead, first), policy) if first else lead.reason
        events = tuple(_story_event(policy, a) for a in audits)
        return LeadStory(external_id, explanation, events, self._notes(lead))

    def _notes(self, lead: LeadRow) -> tuple[str, ...]:
        if lead.crm_system and lead.crm_id and lead.crm_system not in self.crms:
            crm = crm_name(lead.crm_system)
            return (
                f"{crm} is not configured here, so the owner is not written back to this "
                f"lead's {crm} record; an admin can set its credentials (`leadrouter crm check` "
                "tests them) for later claims to be written.",
            )
        return ()

    # --- queue and App Home ----------------------------------------------------------------------

    async def open_offers(self, rep_id: str) -> Sequence[tuple[OfferRow, LeadRow]]:
        async with self.db.reading() as session:
            result = await session.execute(
                select(OfferRow, LeadRow)
                .join(LeadRow, col(LeadRow.id) == col(OfferRow.lead_id))
                .where(
                    col(OfferRow.rep_id) == rep_id,
                    col(OfferRow.status) == OfferStatus.OFFERED.value,
                )
                .order_by(col(OfferRow.id))
            )
            return [(offer, lead) for offer, lead in result.all()]

    async def queued_leads(self, limit: int = 10) -> tuple[int, Sequence[LeadRow]]:
        """How many leads wait in the unmatched queue, and the oldest `limit` of them."""
        async with self.db.reading() as session:
            return await repo.queued_leads(session=session, limit=limit)

    async def rep_states(self) -> dict[str, RepStateRow]:
        async with self.db.reading() as session:
            rows = (await session.execute(select(RepStateRow))).scalars().all()
            return {row.rep_id: row for row in rows}


def _offer_card(
    policy: Policy,
    *,
    offer_id: int,
    lead_id: str,
    rep: str,
    team: str | None,
    content: CardContent,
    crm_url: str | None,
    status: str = OfferStatus.OFFERED.value,
    note: str | None = None,
    channel: str | None = None,
    message_ts: str | None = None,
    team_message_ts: str | None = None,
    settled: str | None = None,
    sla_seconds: int | None = None,
    sla_due_at: datetime | None = None,
) -> OfferCard:
    """A card, with who it goes to looked up in the policy; by default, a new offer's."""
    team_of = policy.teams.get(team) if team else None
    return OfferCard(
        offer_id=offer_id,
        lead_id=lead_id,
        status=status,
        rep=rep,
        rep_slack=policy.slack_of(rep),
        team_channel=team_of.channel if team_of else None,
        content=content,
        note=note,
        channel=channel,
        message_ts=message_ts,
        team_message_ts=team_message_ts,
        settled=settled,
        crm_url=crm_url,
        sla_seconds=sla_seconds,
        sla_due_at=sla_due_at,
    )


def _card_rows() -> Select[OfferRow, LeadRow, DecisionRow, OfferRow]:
    """In one query, a card's rows: the offer (`:offer_id`), its lead, the decision that made
    it (the lead's latest up to the moment it was offered) and the lead's offer before it, if
    any. A card is read for every offer made, so this is one trip to the database rather than
    four, and the statement is built once (building its aliases cost more than running it)."""
    made_by = aliased(DecisionRow)
    previous = aliased(OfferRow)
    offer_lead = col(OfferRow.lead_id)
    latest_decision = (
        select(func.max(col(made_by.id)))
        .where(col(made_by.lead_id) == offer_lead, col(made_by.at) <= col(OfferRow.offered_at))
        .scalar_subquery()
    )
    earlier = aliased(OfferRow)
    previous_offer = (
        select(func.max(col(earlier.id)))
        .where(col(earlier.lead_id) == offer_lead, col(earlier.id) < col(OfferRow.id))
        .scalar_subquery()
    )
    return (
        select(OfferRow, LeadRow, DecisionRow, previous)
        .join(LeadRow, col(LeadRow.id) == offer_lead)
        .outerjoin(DecisionRow, col(DecisionRow.id) == latest_decision)
        .outerjoin(previous, col(previous.id) == previous_offer)
        .where(col(OfferRow.id) == bindparam("offer_id"))
    )


_CARD_ROWS = _card_rows()


_MOVED_WHY = {
    OfferStatus.REJECTED.value: "rejected by",
    OfferStatus.REASSIGNED.value: "taken from",
    OfferStatus.EXPIRED.value: "not claimed in time by",
}


def _reassignment_note(
    policy: Policy, last: OfferRow | None, lead: LeadRow, offer: OfferRow
) -> str | None:
    if last is None:
        return None
    how = _MOVED_WHY.get(last.status, "moved from")
    waited = format_duration(int((offer.offered_at - lead.created_at).total_seconds()))
    return f"{how} {policy.rep_name(last.rep_id)} · waiting {waited}"


async def _settled_sentence(session: AsyncSession, offer: OfferRow, lead: LeadRow) -> str:
    """What became of a closed offer, for its card. Names people by `{rep:ID}` placeholders
    that the Slack side turns into mentions (the reader knows no Slack formatting)."""
    audit = (
        await session.execute(
            select(AuditEventRow)
            .where(
                col(AuditEventRow.lead_id) == lead.id,
                col(AuditEventRow.at) >= (offer.closed_at or offer.offered_at),
                col(AuditEventRow.kind).in_(
                    ["claimed", "rejected", "reassigned", "rep_out_of_office", "sla_missed"]
                ),
            )
            .order_by(col(AuditEventRow.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    if offer.status == OfferStatus.CLAIMED.value:
        return f"Claimed by {{rep:{offer.rep_id}}}"
    now_with = f"{{rep:{lead.rep_id}}}" if lead.rep_id else f"the {lead.queue or 'unmatched'} queue"
    reason = audit.reason if audit is not None and audit.reason else None
    if reason is not None:  # a rep's own words must not read as one of our placeholders
        reason = reason.replace("{rep:", "{rep :")
    if offer.status == OfferStatus.REJECTED.value:
        because = f": {reason}" if reason else ""
        return f"Rejected by {{rep:{offer.rep_id}}}{because} · now with {now_with}"
    because = f": {reason}" if reason else ""
    return f"Reassigned to {now_with}{because}"


def _decision_of(lead: LeadRow, row: DecisionRow) -> Decision:
    """A stored decision back as the engine's `Decision`, so `explain` reads it as it was made."""
    trace = tuple(
        Step(
            Stage(step["stage"]),
            step["subject"],
            step["ok"],
            step.get("detail", ""),
            step.get("field"),
            step.get("value"),
            step.get("note"),
        )
        for step in row.trace
    )
    return Decision(
        lead_id=lead.external_id,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        rep=row.rep_id,
        team=row.team,
        rule=row.rule,
        queue=lead.queue if row.outcome == Outcome.QUEUED.value else None,
        sla_seconds=row.sla_seconds,
        trace=trace,
        facts=lead.facts,
    )


_EVENT_WORDS = {
    "routed": "routed",
    "rerouted": "routed again",
    "claimed": "claimed",
    "rejected": "rejected",
    "reassigned": "reassigned",
    "rep_out_of_office": "moved: the rep went out of office",
    "sla_missed": "moved: not claimed in time",
}


def _story_event(policy: Policy, audit: AuditEventRow) -> StoryEvent:
    data = audit.data or {}
    words = _EVENT_WORDS.get(audit.kind, audit.kind.replace("_", " "))
    crm = crm_name(data.get("system"))
    if audit.kind == CRM_OWNER_SET:
        words = f"owner set in {crm}"
    elif audit.kind == CRM_WRITE_FAILED:
        words = f"owner NOT set in {crm}, given up"
    parts = [words[0].upper() + words[1:]]
    rep = data.get("rep")
    if audit.kind in ("routed", "rerouted"):
        outcome = data.get("outcome")
        if outcome == Outcome.ASSIGNED.value:
            parts.append(f"to {policy.rep_name(rep)}")
        elif outcome:
            parts.append(f"→ {outcome}")
    elif rep:
        parts.append(f"({policy.rep_name(rep)})")
    if audit.actor and audit.actor != rep:
        parts.append(f"by {policy.rep_name(audit.actor)}")
    if audit.reason:
        parts.append(f"· {audit.reason}")
    return StoryEvent(audit.at, " ".join(parts))
