"""The CRM use cases on leadrouter's side: pages read from a CRM taken in, contacts a CRM
announced queued to be fetched, and what an owner write-back needs and leaves in the lead's story.

Reading a CRM is `bot.crm.sync`'s part: it reads pages from the cursor (`crm_cursor`) and hands
each to `take_leads_page` or `take_accounts_page`, which commit what the page holds and only then
move the cursor. A run stopped half way resumes from the last committed page, and reading a page
twice is harmless because intake and the account upsert are idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from bot.service.accounts import import_accounts
from bot.service.intake import intake_from_crm
from bot.service.kinds import (
    CRM_OWNER_SET,
    CRM_WRITE_FAILED,
    CRM_WRITE_RETRYING,
    OWNER_WRITE_KINDS,
    OutboxKind,
)
from bot.service.unit_of_work import UnitOfWork
from routing.model import Account, Lead
from storage import repository as repo


async def take_leads_page(
    uow: UnitOfWork, cursor: str, leads: Sequence[Lead], *, read_up_to: datetime
) -> tuple[int, int]:
    """A page of leads read from a CRM: routed (each record once, `intake_from_crm`), then the
    cursor moved to `read_up_to`. Returns (created, repeated)."""
    created, repeated = await intake_from_crm(uow, leads)
    await move_crm_cursor(uow, cursor, read_up_to)
    return created, repeated


async def take_accounts_page(
    uow: UnitOfWork,
    cursor: str,
    accounts: Sequence[Account],
    *,
    crm_system: str,
    read_up_to: datetime | None,
) -> tuple[int, int]:
    """A page of accounts read from a CRM: stored, then the cursor moved to `read_up_to` (if
    the page says how far it read). Returns (created, updated)."""
    created, updated = await import_accounts(uow, accounts, crm_system=crm_system)
    if read_up_to is not None:
        await move_crm_cursor(uow, cursor, read_up_to)
    return created, updated


async def queue_crm_contacts(uow: UnitOfWork, contact_ids: Sequence[str]) -> int:
    """Contacts HubSpot announced: queue each once to be fetched and routed (the webhook's
    answer must not wait on HubSpot's API). Returns how many were new."""
    now = uow.clock()
    rows = [
        repo.outbox_values(
            kind=OutboxKind.HUBSPOT_CONTACT,
            dedupe_key=f"hubspot-contact:{contact_id}",
            payload={"contact_id": contact_id},
            now=now,
        )
        for contact_id in dict.fromkeys(contact_ids)
    ]
    queued = await uow.write(lambda tx: repo.queue_outbox_once(session=tx.session, rows=rows))
    uow.outbox_written()
    return queued


# What a CRM's worker carries out: owner write-backs, and contacts HubSpot announced.
CRM_KINDS = (*OWNER_WRITE_KINDS.values(), OutboxKind.HUBSPOT_CONTACT)


async def retry_given_up(uow: UnitOfWork) -> int:
    """CRM items given up (an expired token, a missing permission, a rep with no CRM user,
    now fixed) queued to be tried again from their first attempt. A write-back for a lead
    that has since moved to another rep is still skipped when its turn comes (that offer
    queued its own). Returns how many."""
    now = uow.clock()
    queued = await uow.write(
        lambda tx: repo.requeue_given_up(session=tx.session, kinds=CRM_KINDS, now=now)
    )
    uow.outbox_written()
    return queued


async def unfinished_crm_items(uow: UnitOfWork) -> list[repo.Unfinished]:
    """The CRM items given up, and those failing and tried again, by kind (for `crm check`)."""
    async with uow.reading() as session:
        return await repo.unfinished_outbox(session=session, kinds=CRM_KINDS)


async def crm_cursor(uow: UnitOfWork, name: str) -> datetime | None:
    """How far the sync called `name` has read: the newest time already committed here."""
    async with uow.reading() as session:
        return await repo.crm_cursor(session=session, name=name)


async def move_crm_cursor(uow: UnitOfWork, name: str, watermark: datetime) -> None:
    """The sync called `name` committed what it read up to `watermark` (never moved back)."""
    now = uow.clock()
    await uow.write(
        lambda tx: repo.move_crm_cursor(session=tx.session, name=name, watermark=watermark, now=now)
    )


async def record_to_own(uow: UnitOfWork, lead_id: int, rep_id: str) -> str | None:
    """The CRM record whose owner a write-back for `rep_id` sets: the lead's, while the lead is
    still the rep's. None when it is gone or has moved on (that offer queued its own write)."""
    leads = await uow.read(lambda session: repo.leads_by_id(session=session, ids=[lead_id]))
    lead = leads.get(lead_id)
    if lead is None or not lead.crm_id or lead.rep_id != rep_id:
        return None
    return lead.crm_id


def owner_write_ended(
    session: Session,
    *,
    lead_id: int,
    rep_id: str,
    system: str,
    owner: str | None,
    error: str | None,
    at: datetime,
    retrying: bool = False,
) -> None:
    """In the transaction that ends a write-back's attempt: the lead's story says the owner was
    written (`owner`), that it could not be yet and is tried again (`retrying`, said once, at
    the first failure), or that it could not be and will not be (`error`)."""
    if owner is not None:
        kind = CRM_OWNER_SET
    else:
        kind = CRM_WRITE_RETRYING if retrying else CRM_WRITE_FAILED
    repo.add_audit(
        session=session,
        lead_id=lead_id,
        at=at,
        kind=kind,
        reason=error,
        data={"rep": rep_id, "system": system, "owner": owner},
    )
