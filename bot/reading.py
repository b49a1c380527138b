# Just over 400 lines on purpose: `Reader` is the read side's one door (cards, `/routing why`,
# the queue, App Home, where an absence moved a rep's leads); split, each would re-read the rows.
"""The service layer's read side: what Slack shows (cards, `/routing why`, the queue, App Home).

Plain data out, no Slack formatting: `bot/slack` renders it. Each function reads in one session
from the read engine (`storage.reads`), so it never waits behind a routing transaction; what a
card says is `bot.card`'s, a lead's story `bot.story`'s, the App Home `bot.home`'s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.card import (
    CameFrom,
    CardContent,
    Settlement,
    card_content_of,
    lead_title,
    reassignment_note,
)
from bot.crm_links import CrmLinks, no_links
from bot.home import ContactLead, HomeData, leads_to_contact, load_home
from bot.service.views import Move, NewOffer, view_of
from bot.story import LeadStory, lead_story
from routing.policy import Policy
from storage import reads
from storage import repository as repo
from storage.db import Database
from storage.models import LeadRow, LeadStatus, OfferRow, OfferStatus, RepStateRow


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
    note: CameFrom | None
    channel: str | None  # where the card was posted (the rep's DM), once it was
    message_ts: str | None
    team_message_ts: str | None
    settled: Settlement | None  # for a closed offer: what became of it
    crm_url: str | None = None  # the lead's record in its CRM, when the CRM is configured
    sla_seconds: int | None = None
    sla_due_at: datetime | None = None  # None until the SLA runs (see `OfferRow.card_posted_at`)
    contact_due_at: datetime | None = None  # once claimed: the first touch is due by then


@dataclass(frozen=True, slots=True)
class QueuedCard:
    lead_id: str  # the external id
    queue: str
    content: CardContent


@dataclass(frozen=True, slots=True)
class OfferNow:
    """A lead's latest offer as it stands, for a button to check before it asks anything."""

    lead_id: str  # the external id
    title: str  # as its card titles it
    status: str | None  # the offer's `OfferStatus` value; None: never offered (queued, new)
    rep: str | None  # whose offer it is


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
    currency: str | None = None  # what amounts are in (`LEADROUTER_CURRENCY`)
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
                sla_due_at=offer.sla_due_at,
            ),
            crm_url=self.crm_links(offer.crm_system, offer.crm_id),
            sla_seconds=offer.sla_seconds,
            sla_due_at=offer.sla_due_at,
        )

    async def offer_card(self, offer_id: int) -> OfferCard | None:
        async with self.db.reading() as session:
            rows = await reads.card_rows(session=session, offer_id=offer_id)
        if rows is None:
            return None
        offer, lead, decision, previous = rows.offer, rows.lead, rows.decision, rows.previous
        policy = self.policy()
        content = card_content_of(
            lead.facts,
            policy,
            lead_id=lead.external_id,
            reason=decision.reason if decision else lead.reason,
            sla_seconds=decision.sla_seconds if decision else None,
            offered_at=offer.offered_at,
            sla_due_at=offer.sla_due_at,
        )
        note = None
        if previous is not None:
            note = reassignment_note(
                policy,
                previous_status=previous.status,
                previous_rep=previous.rep_id,
                rep=offer.rep_id,
                reason=rows.previous_reason,
                moved_because=previous.moved_because,
                waited_seconds=(offer.offered_at - lead.created_at).total_seconds(),
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
            note=note,
            channel=offer.channel,
            message_ts=offer.message_ts,
            team_message_ts=offer.team_message_ts,
            settled=_settlement(rows) if offer.status != OfferStatus.OFFERED.value else None,
            sla_seconds=offer.sla_seconds,
            sla_due_at=offer.sla_due_at,
            contact_due_at=offer.contact_due_at,
        )

    async def queued_card(self, lead_id: int) -> QueuedCard | None:
        """A lead waiting in a queue, as its card; None once it is not queued any more."""
        async with self.db.reading() as session:
            lead = await reads.lead_by_id(session=session, lead_id=lead_id)
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

    async def lead_title(self, lead_id: str) -> str | None:
        """A lead's title as its card shows it ("Jo · Acme Corp"), by external id; None for an
        unknown lead."""
        async with self.db.reading() as session:
            lead = await reads.lead_by_external_id(session=session, external_id=lead_id)
        return lead_title(lead.facts, lead.external_id) if lead is not None else None

    async def offer_now(self, lead_id: str) -> OfferNow | None:
        """The lead's title and its latest offer, by external id; None for an unknown lead."""
        async with self.db.reading() as session:
            lead = await reads.lead_by_external_id(session=session, external_id=lead_id)
            if lead is None:
                return None
            offer = await reads.latest_offer_of_lead(session=session, lead_id=lead.id or 0)
        title = lead_title(lead.facts, lead.external_id)
        if offer is None:
            return OfferNow(lead.external_id, title, None, None)
        return OfferNow(lead.external_id, title, offer.status, offer.rep_id)

    async def absence_moves(self, rep_id: str, offer_ids: Sequence[int]) -> list[Move] | None:
        """Where the rep's unclaimed offers as they were marked out (`offer_ids`) went: one
        move for each lead the absence moved on, in that order, to where it is now. None while
        one is still offered to them (its move is under way)."""
        async with self.db.reading() as session:
            offers = await repo.offers_by_id(session=session, ids=offer_ids)
            if any(
                offer.status == OfferStatus.OFFERED.value and offer.rep_id == rep_id
                for offer in offers.values()
            ):
                return None
            moved = [
                offers[offer_id]
                for offer_id in offer_ids
                if offer_id in offers and offers[offer_id].status == OfferStatus.REASSIGNED.value
            ]
            leads = await reads.leads_by_ids(session=session, ids=[o.lead_id for o in moved])
        return [
            Move(leads[offer.lead_id].external_id, rep_id, view_of(leads[offer.lead_id], None))
            for offer in moved
            if offer.lead_id in leads
        ]

    async def lead_titles(self, lead_ids: Sequence[str]) -> dict[str, str]:
        """The titles of these leads (by external id) as their cards show them, in one read."""
        async with self.db.reading() as session:
            leads = await reads.leads_by_external_ids(session=session, external_ids=lead_ids)
        return {lead.external_id: lead_title(lead.facts, lead.external_id) for lead in leads}

    # --- /routing why --------------------------------------------------------------------------

    async def find_lead_id(self, reference: str) -> str | None:
        """A lead's external id from its external id, e-mail or CRM id (the newest match)."""
        async with self.db.reading() as session:
            return await reads.find_lead_id(session=session, reference=reference)

    async def story(self, reference: str, viewer: Viewer | None) -> LeadStory | None:
        """The full explanation and what happened since; None for an unknown lead.

        Reps see leads that were offered to them; managers see every lead, and so does the
        command line (`viewer` None), whose user holds the database itself."""
        async with self.db.reading() as session:
            external_id = await reads.find_lead_id(session=session, reference=reference)
            if external_id is None:
                return None
            rows = await reads.story_rows(session=session, external_id=external_id)
        if (
            viewer is not None
            and viewer.manager is None
            and viewer.rep not in {o.rep_id for o in rows.offers}
        ):
            raise NotVisible(
                f"lead {external_id} was never offered to you; ask your manager about it"
            )
        left = None
        if viewer is not None and viewer.manager is None and viewer.rep is not None:
            rows, left = _as_far_as_theirs(rows, viewer.rep)
        detail = viewer is None or viewer.manager is not None
        story = lead_story(
            rows, self.policy(), crms=self.crms, currency=self.currency, detail=detail
        )
        if left is not None:
            story = replace(story, notes=(*story.notes, LEFT_YOU))
        return story

    # --- queue and App Home ----------------------------------------------------------------------

    async def open_offers(self, rep_id: str) -> Sequence[tuple[OfferRow, LeadRow]]:
        async with self.db.reading() as session:
            return await reads.open_offers_of_rep(session=session, rep_id=rep_id)

    async def to_contact(self, rep_id: str) -> tuple[ContactLead, ...]:
        async with self.db.reading() as session:
            return await leads_to_contact(session, rep_id)

    async def queued_leads(self, limit: int = 10) -> tuple[int, Sequence[LeadRow]]:
        """How many leads wait in the unmatched queue, and the oldest `limit` of them."""
        async with self.db.reading() as session:
            return await repo.queued_leads(session=session, limit=limit)

    async def rep_states(self) -> dict[str, RepStateRow]:
        async with self.db.reading() as session:
            return await reads.rep_state_rows(session=session)

    async def home(self, slack_user: str) -> HomeData:
        """The App Home of whoever `slack_user` is in the policy."""
        policy = self.policy()
        viewer = viewer_of(policy, slack_user)
        async with self.db.reading() as session:
            return await load_home(
                session, policy, rep_id=viewer.rep, manager_id=viewer.manager, now=self.clock()
            )


LEFT_YOU = "What happened after this lead left you is for its new rep and your manager to see."


def _as_far_as_theirs(rows: reads.StoryRows, rep: str) -> tuple[reads.StoryRows, datetime | None]:
    """A rep's view of a lead that moved on from them: its story up to the moment it left them
    (where it went, as they were told), not what its next rep did with it (a claim, a deal
    won and its amount). An outcome is theirs to see if it was reported before the lead left
    them: the date its source gives it is no guide (a CRM dates a deal by its close date, a
    day, often hours before the next rep won it). With the moment it left them; None when they
    still hold it."""
    mine = [offer for offer in rows.offers if offer.rep_id == rep]
    if not mine or mine[-1] is rows.offers[-1] or mine[-1].closed_at is None:
        return rows, None
    left = mine[-1].closed_at
    return replace(
        rows,
        audits=[audit for audit in rows.audits if audit.at <= left],
        outcomes=[event for event in rows.outcomes if event.recorded_at <= left],
    ), left


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
    note: CameFrom | None = None,
    channel: str | None = None,
    message_ts: str | None = None,
    team_message_ts: str | None = None,
    settled: Settlement | None = None,
    sla_seconds: int | None = None,
    sla_due_at: datetime | None = None,
    contact_due_at: datetime | None = None,
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
        contact_due_at=contact_due_at,
    )


def _settlement(rows: reads.CardRows) -> Settlement:
    offer, lead, audit = rows.offer, rows.lead, rows.settled_by
    return Settlement(
        status=offer.status,
        rep=offer.rep_id,
        holder=lead.rep_id,
        queue=lead.queue,
        reason=audit.reason if audit is not None and audit.reason else None,
        moved_because=offer.moved_because,
    )
