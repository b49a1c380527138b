"""Intake: new leads routed, each exactly once per external id, and found again by it.

A use case loads the state the pure router needs, calls it, and saves the outcome, the audit
trail and the side effects to carry out (the outbox) in the same transaction, so a lead is never
half-routed. Slack and the CRMs are never called from here: they are reached through the
outbox, after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from bot.logs import about
from bot.service.steps import find, record, stored_view
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import IntakeResult, LeadView, new_offers, routed, view_of_decision
from routing.leads import told_apart
from routing.model import Lead
from storage import repository as repo
from storage.decisions import Decided, lead_of_raw, lead_values

# The service layer's lines go to one logger, the name they have always had.
log = logging.getLogger("bot.service")

QUICK_LEADS = 10  # leads routed in a transaction quick enough for the event loop's thread


async def intake(uow: UnitOfWork, lead: Lead) -> IntakeResult:
    """Route a new lead, exactly once per external id. It joins the group commit
    (`bot.service.group_commit`): under load, leads arriving together share a transaction."""
    return await uow.group_commit.join(lead, partial(intake_many, uow))


async def intake_many(uow: UnitOfWork, leads: Sequence[Lead]) -> list[IntakeResult]:
    """Route a batch of leads in one transaction, in order, exactly once per external id.

    The state is loaded once and carried from lead to lead in memory, as `simulate` does, so
    a batch costs a handful of queries rather than a dozen per lead. An id already stored,
    or repeated within the batch, answers with the stored (or first) decision, flagged as a
    clash when that was another lead (`told_apart`: the id reused, not a retry).
    """
    results = await uow.routing(
        partial(_intake_in, uow, leads=leads),
        f"{len(leads)} new leads",
        quick=len(leads) <= QUICK_LEADS,
    )
    if log.isEnabledFor(logging.INFO):
        for result in results:
            if result.created:
                view = result.lead
                log.info("lead %s routed: %s", view.id, routed(view), extra=about(view.id))
    return results


def _intake_in(uow: UnitOfWork, tx: Transaction, *, leads: Sequence[Lead]) -> list[IntakeResult]:
    stored = repo.find_leads(session=tx.session, external_ids=[lead.id for lead in leads])
    fresh: dict[str, Lead] = {}
    for lead in leads:
        if lead.id not in stored and lead.id not in fresh:
            fresh[lead.id] = lead
    policy = uow.policy()
    views: dict[str, LeadView] = {}
    if fresh:
        now = uow.clock()
        world = tx.world(policy, list(fresh.values()), now=now, plan=True)
        decided = [(lead, world.route(lead, now, excluded={})) for lead in fresh.values()]
        world.settle()
        rows = [lead_values(lead, decision, now, policy) for lead, decision in decided]
        ids = repo.insert_leads(session=tx.session, rows=rows)
        saved = record(
            uow,
            tx,
            [Decided(ids[lead.id], lead.id, decision, 0) for lead, decision in decided],
            now,
            kind="routed",
            actor=None,
            policy=policy,
        )
        world.commit(tx.session, now)
        if tx.new_offers is not None:
            stored_due = {} if uow.cards else saved.deadlines
            tx.offered(new_offers(rows, ids, saved.offer_ids, decided, now, stored_due))
        views = {
            lead.id: view_of_decision(lead.id, decision, saved.deadlines.get(lead.id))
            for lead, decision in decided
        }
    results = []
    answered: set[str] = set()
    for lead in leads:
        if lead.id in stored:
            row = stored[lead.id]
            view = stored_view(tx.session, row, policy)
            clash = told_apart(lead_of_raw(row.raw), lead)
            results.append(IntakeResult(False, view, clash=clash))
        else:
            clash = told_apart(fresh[lead.id], lead)
            results.append(IntakeResult(lead.id not in answered, views[lead.id], clash=clash))
            answered.add(lead.id)
    return results


async def intake_from_crm(uow: UnitOfWork, leads: Sequence[Lead]) -> tuple[int, int]:
    """Route leads read from a CRM, each record once even if it also came in another way
    (POST /leads with its crm_id; both the webhook and the poll). Returns (created,
    repeated)."""
    by_system: dict[str, list[str]] = {}
    for lead in leads:
        if lead.crm_system is not None and lead.crm_id:
            by_system.setdefault(lead.crm_system.value, []).append(lead.crm_id)
    async with uow.reading() as session:
        stored = {
            (system, crm_id)
            for system, ids in by_system.items()
            for crm_id in await repo.stored_crm_ids(session=session, crm_system=system, crm_ids=ids)
        }
    fresh = [
        lead
        for lead in leads
        if (lead.crm_system.value if lead.crm_system else None, lead.crm_id) not in stored
    ]
    results = await intake_many(uow, fresh) if fresh else []
    created = sum(1 for result in results if result.created)
    return created, len(leads) - created


async def find_lead(uow: UnitOfWork, external_id: str) -> LeadView:
    """A lead as `POST /leads` answered with it; UnknownLead if there is none."""
    policy = uow.policy()
    return await uow.read(lambda session: stored_view(session, find(session, external_id), policy))
