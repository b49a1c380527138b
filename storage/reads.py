"""The read side's queries: a card's rows, a lead's story (its outcome events too), a rep's open
offers and claimed leads still to contact, the reps' states.

Each runs in the caller's `AsyncSession` (`Database.reading`, on the read engine, so it never
waits behind a routing transaction) and returns rows; `bot.reading`, `bot.story` and `bot.home`
make of them what Slack shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from routing.report import EventKind
from storage.models import (
    AuditEventRow,
    DecisionRow,
    LeadEventRow,
    LeadRow,
    OfferRow,
    OfferStatus,
    PolicyActivationRow,
    RepStateRow,
)
from storage.repository.common import id_chunks
from storage.repository.outcomes import lead_events

# The audit events that close an offer, one of which a settled card tells of.
_SETTLING_KINDS = (
    "claimed",
    "rejected",
    "reassigned",
    "rep_out_of_office",
    "sla_missed",
    "contact_missed",
    "rep_left_policy",
)


@dataclass(frozen=True, slots=True)
class CardRows:
    offer: OfferRow
    lead: LeadRow
    decision: DecisionRow | None  # the decision that made the offer
    previous: OfferRow | None  # the lead's offer before this one
    settled_by: AuditEventRow | None  # for a closed offer, the event that closed it
    # For a lead a rep rejected before this offer, their reason (their words for the next rep).
    previous_reason: str | None = None


async def card_rows(*, session: AsyncSession, offer_id: int) -> CardRows | None:
    found = (await session.execute(_CARD_ROWS, {"offer_id": offer_id})).one_or_none()
    if found is None:
        return None
    offer, lead, decision, previous = found
    settled_by = None
    if offer.status != OfferStatus.OFFERED.value:
        settled_by = await _settling_event(session, lead, offer)
    previous_reason = None
    if previous is not None and previous.status == OfferStatus.REJECTED.value:
        rejected = await _settling_event(session, lead, previous)
        previous_reason = rejected.reason if rejected is not None else None
    return CardRows(offer, lead, decision, previous, settled_by, previous_reason)


async def _settling_event(
    session: AsyncSession, lead: LeadRow, offer: OfferRow
) -> AuditEventRow | None:
    """The event that closed `offer`: the first settling event from its close that is about its
    rep (each records it). On a clock that did not move between two transactions, an earlier
    offer's close is at the same instant, and would otherwise be taken for this one's."""
    events = await session.execute(
        select(AuditEventRow)
        .where(
            col(AuditEventRow.lead_id) == lead.id,
            col(AuditEventRow.at) >= (offer.closed_at or offer.offered_at),
            col(AuditEventRow.kind).in_(_SETTLING_KINDS),
        )
        .order_by(col(AuditEventRow.id))
    )
    return next(
        (e for e in events.scalars() if (e.data or {}).get("rep", offer.rep_id) == offer.rep_id),
        None,
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


async def lead_by_id(*, session: AsyncSession, lead_id: int) -> LeadRow | None:
    return await session.get(LeadRow, lead_id)


async def leads_by_ids(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, LeadRow]:
    """These leads, by id (those that exist)."""
    found: dict[int, LeadRow] = {}
    for chunk in id_chunks(ids):
        rows = await session.execute(select(LeadRow).where(col(LeadRow.id).in_(chunk)))
        found.update((row.id or 0, row) for row in rows.scalars())
    return found


async def lead_by_external_id(*, session: AsyncSession, external_id: str) -> LeadRow | None:
    result = await session.execute(select(LeadRow).where(col(LeadRow.external_id) == external_id))
    return result.scalar_one_or_none()


async def latest_offer_of_lead(*, session: AsyncSession, lead_id: int) -> OfferRow | None:
    """The lead's latest offer (the one its card's buttons act on), None before any."""
    result = await session.execute(
        select(OfferRow)
        .where(col(OfferRow.lead_id) == lead_id)
        .order_by(col(OfferRow.id).desc())
        .limit(1)
    )
    return result.scalars().first()


async def leads_by_external_ids(
    *, session: AsyncSession, external_ids: Sequence[str]
) -> list[LeadRow]:
    if not external_ids:
        return []
    result = await session.execute(
        select(LeadRow).where(col(LeadRow.external_id).in_(list(external_ids)))
    )
    return list(result.scalars())


async def find_lead_id(*, session: AsyncSession, reference: str) -> str | None:
    """A lead's external id from its external id, e-mail or CRM id (the newest match)."""
    ref = reference.strip()
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


@dataclass(frozen=True, slots=True)
class StoryRows:
    lead: LeadRow
    offers: Sequence[OfferRow]  # oldest first
    first_decision: DecisionRow | None
    audits: Sequence[AuditEventRow]  # oldest first
    outcomes: Sequence[LeadEventRow] = ()  # first touch, opportunity, won, lost; as they happened
    # How the first decision's policy version came to serve: its latest activation before the
    # decision (None for a decision of no version, or of a version never activated).
    activation: PolicyActivationRow | None = None


async def story_rows(*, session: AsyncSession, external_id: str) -> StoryRows:
    lead = (
        await session.execute(select(LeadRow).where(col(LeadRow.external_id) == external_id))
    ).scalar_one()
    offers = (
        await session.execute(
            select(OfferRow).where(col(OfferRow.lead_id) == lead.id).order_by(col(OfferRow.id))
        )
    ).scalars()
    first = (
        await session.execute(
            select(DecisionRow)
            .where(col(DecisionRow.lead_id) == lead.id)
            .order_by(col(DecisionRow.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    audits = (
        await session.execute(
            select(AuditEventRow)
            .where(col(AuditEventRow.lead_id) == lead.id)
            .order_by(col(AuditEventRow.id))
        )
    ).scalars()
    activation = None
    if first is not None and first.policy_version is not None:
        # The latest activation before the decision; failing that (a clock behind the
        # database's), the version's first.
        before = col(PolicyActivationRow.at) <= first.at
        activation = (
            await session.execute(
                select(PolicyActivationRow)
                .where(col(PolicyActivationRow.version) == first.policy_version)
                .order_by(
                    before.desc(),
                    case((before, -col(PolicyActivationRow.id)), else_=col(PolicyActivationRow.id)),
                )
                .limit(1)
            )
        ).scalar_one_or_none()
    outcomes = await lead_events(session=session, lead_id=lead.id or 0)
    return StoryRows(lead, offers.all(), first, audits.all(), outcomes, activation)


async def open_offers_of_rep(
    *, session: AsyncSession, rep_id: str
) -> list[tuple[OfferRow, LeadRow]]:
    """The rep's offers still waiting to be claimed, oldest first, each with its lead."""
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


async def claimed_to_contact(
    *, session: AsyncSession, rep_id: str
) -> list[tuple[OfferRow, LeadRow]]:
    """The leads the rep claimed, with a contact SLA, and had no first touch for yet, the one
    due first first, each with its lead. One whose deadline passed stays listed while it stays
    the rep's (the policy does not move it on, or the watchdog has yet to look)."""
    touched = (
        select(col(LeadEventRow.id))
        .where(
            col(LeadEventRow.lead_id) == col(OfferRow.lead_id),
            col(LeadEventRow.kind) == EventKind.FIRST_TOUCH.value,
        )
        .exists()
    )
    result = await session.execute(
        select(OfferRow, LeadRow)
        .join(LeadRow, col(LeadRow.id) == col(OfferRow.lead_id))
        .where(
            col(OfferRow.rep_id) == rep_id,
            col(OfferRow.status) == OfferStatus.CLAIMED.value,
            col(OfferRow.contact_due_at).is_not(None),
            ~touched,
        )
        .order_by(col(OfferRow.contact_due_at), col(OfferRow.id))
    )
    return [(offer, lead) for offer, lead in result.all()]


async def rep_state_rows(*, session: AsyncSession) -> dict[str, RepStateRow]:
    rows = (await session.execute(select(RepStateRow))).scalars().all()
    return {row.rep_id: row for row in rows}
