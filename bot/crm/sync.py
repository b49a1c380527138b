"""Reading from a CRM: new Salesforce leads, accounts, what became of leads, the mapping check.

Each reads a page from the CRM (off the event loop, through `CrmCalls`) and hands it to the
service layer (`bot.service.crm`), which commits what it holds and only then moves the page's
cursor: a run stopped half way resumes from the last committed page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from bot.crm.base import CrmError, CrmOutcome
from bot.crm.link import CrmLink
from bot.crm.owners import OwnerMap
from bot.service.crm import crm_cursor, take_accounts_page, take_leads_page
from bot.service.intake import intake_from_crm
from bot.service.outcomes import Recorded, Reported, take_crm_events_page
from bot.service.unit_of_work import UnitOfWork
from routing.leads import InvalidLead, parse_lead
from routing.model import Account, Lead

log = logging.getLogger(__name__)
T = TypeVar("T")

LEADS_CURSOR = "salesforce:leads"
# Every read from a CRM cursor (new leads, accounts, outcomes) starts this far behind it: a
# record's time (CreatedDate, SystemModstamp) is when its transaction began, so one that commits
# slowly (a flow, a trigger, a bulk load) appears after a later one moved the cursor past it,
# and a CRM's search index lags its writes. What is read again is taken once (intake by record,
# the account upsert, each report stored once).
READ_OVERLAP = timedelta(minutes=2)


def accounts_cursor(system: str) -> str:
    return f"{system}:accounts"


def outcomes_cursor(system: str, stream: str) -> str:
    return f"{system}:outcomes:{stream}"


@dataclass(frozen=True, slots=True)
class PollResult:
    created: int = 0
    repeated: int = 0
    invalid: int = 0


@dataclass(frozen=True, slots=True)
class SyncResult:
    created: int = 0
    updated: int = 0
    unowned: int = 0  # accounts whose CRM owner is no rep of the policy


def lead_of(system: str, crm_id: str, values: dict[str, Any]) -> Lead:
    """A CRM record as a lead; its external id names the CRM, so it never meets another's."""
    identity = {"id": f"{system}:{crm_id}", "crm_system": system, "crm_id": crm_id}
    return parse_lead({**values, **identity})


async def poll_salesforce_leads(
    uow: UnitOfWork, link: CrmLink, *, first_look_back: timedelta
) -> PollResult:
    """Route Salesforce leads created since the cursor (less `READ_OVERLAP`). The first poll
    looks back only `first_look_back`: switching polling on must not route years of old leads."""
    mark = await crm_cursor(uow, LEADS_CURSOR)
    since = mark - READ_OVERLAP if mark is not None else uow.clock() - first_look_back
    pages = link.crm.new_leads(since)
    created = repeated = invalid = 0
    while (page := await link.next_page(pages)) is not None:
        leads: list[Lead] = []
        for record in page:
            try:
                leads.append(lead_of(link.system, record.crm_id, dict(record.values)))
            except InvalidLead as exc:
                invalid += 1
                log.warning("%s lead %s not routed: %s", link.system, record.crm_id, exc)
        read_up_to = max(r.created_at for r in page)
        new, again = await take_leads_page(uow, LEADS_CURSOR, leads, read_up_to=read_up_to)
        created, repeated = created + new, repeated + again
    return PollResult(created, repeated, invalid)


async def sync_accounts(uow: UnitOfWork, link: CrmLink) -> SyncResult:
    """Bring accounts changed in the CRM since the cursor into the accounts table, owners
    mapped to reps (an owner who is no rep leaves the account unowned, and is counted)."""
    name = accounts_cursor(link.system)
    mark = await crm_cursor(uow, name)
    since = mark - READ_OVERLAP if mark is not None else None
    mapping = await link.owners.mapping()
    rep_of = {owner: rep for rep, owner in mapping.owners.items()}
    pages = link.crm.accounts_modified_since(since)
    created = updated = unowned = 0
    while (page := await link.next_page(pages)) is not None:
        accounts = []
        for found in {a.id: a for a in page.accounts}.values():  # newest copy of each
            owner = rep_of.get(found.owner_id) if found.owner_id else None
            unowned += found.owner_id is not None and owner is None
            accounts.append(
                Account(
                    found.id,
                    found.name,
                    found.website,
                    owner,
                    found.tier,
                    country=found.country,
                    state=found.state,
                )
            )
        new, changed = await take_accounts_page(
            uow, name, accounts, crm_system=link.system, read_up_to=page.last_modified
        )
        created, updated = created + new, updated + changed
    return SyncResult(created, updated, unowned)


@dataclass(frozen=True, slots=True)
class OutcomesResult:
    recorded: Recorded = field(default_factory=Recorded)
    not_by_a_rep: int = 0  # touches by someone who is no rep (marketing e-mail, a bot): left out


def reported(system: str, outcome: CrmOutcome) -> Reported:
    return Reported(outcome.record_id, outcome.event, system, outcome.key, outcome.via)


async def poll_outcomes(
    uow: UnitOfWork, link: CrmLink, *, first_look_back: timedelta
) -> OutcomesResult:
    """Record what the CRM's records changed since each stream's cursor tell of the leads
    routed here, a page at a time (each page with its cursor, `take_crm_events_page`). The
    first poll of a stream looks back `first_look_back`.

    A touch counts when one of the policy's reps made it (their CRM user, `link.owners`): a
    marketing tool logs e-mails on leads too, and that is no rep getting back to the lead."""
    mapping = await link.owners.mapping()
    reps = set(mapping.owners.values())
    recorded, not_by_a_rep = Recorded(), 0
    for stream in link.crm.outcome_streams:
        name = outcomes_cursor(link.system, stream)
        mark = await crm_cursor(uow, name)
        since = mark - READ_OVERLAP if mark is not None else uow.clock() - first_look_back
        pages = link.crm.outcomes_since(stream, since)
        while (page := await link.next_page(pages)) is not None:
            kept = [o for o in page.outcomes if o.by is None or o.by in reps]
            not_by_a_rep += len(page.outcomes) - len(kept)
            recorded += await take_crm_events_page(
                uow,
                link.system,
                [reported(link.system, outcome) for outcome in kept],
                cursor=name,
                read_up_to=page.read_up_to,
            )
    return OutcomesResult(recorded, not_by_a_rep)


async def take_hubspot_contact(uow: UnitOfWork, link: CrmLink, contact_id: str) -> bool:
    """Fetch a contact HubSpot announced and route it. True if it was new here."""
    record = await link.calls(link.crm.lead, contact_id)
    lead = lead_of(link.system, record.crm_id, dict(record.values))
    created, _ = await intake_from_crm(uow, [lead])
    return created == 1


@dataclass(frozen=True, slots=True)
class CrmCheck:
    system: str
    connected: str | None  # who we are connected as; None when the credentials failed
    error: str | None
    mapping: OwnerMap | None
    problems: tuple[str, ...] = ()  # what the CRM will refuse of what the policy asks
    verified: tuple[str, ...] = ()  # what was seen to be in place (a token's scopes)
    notes: tuple[str, ...] = ()  # what could not be checked, and why; a setting worth giving


async def check(link: CrmLink) -> CrmCheck:
    """Credentials, what the policy asks of the CRM (permissions, scopes, fields) and the
    rep-to-owner mapping, for `leadrouter crm check`."""
    spec = link.owners.policy().crm
    wants = spec.salesforce if link.system == "salesforce" else spec.hubspot
    try:
        connected = await link.calls(link.crm.whoami)
        setup = await link.calls(
            partial(
                link.crm.setup_check,
                reads_accounts=wants.sync_accounts_every is not None,
                reads_outcomes=wants.poll_outcomes_every is not None,
            )
        )
        mapping = await link.owners.mapping(fresh=True)
        given = {rep: mapping.owners[rep] for rep in sorted(mapping.explicit)}
        unknown = await link.calls(link.crm.owners_unknown, list(given.values())) if given else {}
    except CrmError as exc:
        return CrmCheck(link.system, None, str(exc), None)
    # An owner id the policy gives outright is used as it is: one the CRM does not have (a
    # typo, a user since deactivated) would fail each of that rep's write-backs.
    refused = tuple(
        f"rep {rep}'s {link.crm.owner_setting} {owner} {unknown[owner]}: give an active user's "
        "id, or remove it to find the rep by their email; their write-backs fail until then"
        for rep, owner in given.items()
        if owner in unknown
    )
    return CrmCheck(
        link.system,
        connected,
        None,
        mapping,
        (*setup.problems, *refused),
        setup.verified,
        setup.notes,
    )
