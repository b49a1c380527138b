"""Carry out the outbox's CRM items: owner write-backs, and contacts HubSpot announced.

A write-back sets the owner the lead has *now*: an item queued for a rep the lead has since
moved away from is done without a call (the later offer queued its own). Rate limits and
outages are retried (never before a Retry-After runs out, see `CrmCalls`); after
`max_attempts`, or at once for an error that will not pass (record gone, owner invalid, no
permission), the item is given up and the lead's story says so, where `/routing why` and the
manager digest show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.crm.base import CrmPermanent, CrmTransient
from bot.crm.sync import CrmLink, take_hubspot_contact
from bot.outbox import Attempt, GiveUp, OutboxWorker, Retry
from bot.service import CRM_OWNER_SET, CRM_WRITE_FAILED, OWNER_WRITE_KINDS, OutboxKind, Service
from routing.leads import InvalidLead
from storage import repository as repo


@dataclass(kw_only=True)
class CrmWorker(OutboxWorker):
    service: Service
    link: CrmLink
    max_attempts: int | None = 12  # with backoff capped at 5 minutes: about half an hour

    def __post_init__(self) -> None:
        system = self.link.system
        kinds = [OWNER_WRITE_KINDS[system]]
        if system == "hubspot":
            kinds.append(OutboxKind.HUBSPOT_CONTACT)
        self.kinds = tuple(kinds)

    async def carry_out(self, attempt: Attempt) -> None:
        item = attempt.item
        if item.kind == OutboxKind.HUBSPOT_CONTACT:
            try:
                await take_hubspot_contact(self.service, self.link, str(item.payload["contact_id"]))
            except InvalidLead as exc:
                raise GiveUp(f"the contact is not a lead leadrouter can route: {exc}") from None
            return
        await self._set_owner(attempt)

    async def _set_owner(self, attempt: Attempt) -> None:
        item = attempt.item
        lead_id, rep_id = int(item.payload["lead_id"]), str(item.payload["rep"])
        async with self.service.db.reading() as session:
            leads = await session.run_sync(
                lambda sync: repo.leads_by_id(session=sync, ids=[lead_id])
            )
        lead = leads.get(lead_id)
        if lead is None or not lead.crm_id or lead.rep_id != rep_id:
            return  # gone, or moved on to another rep: that offer queued its own write
        owner_id = await self.link.owners.owner_of(rep_id)
        await self.link.calls(self.link.crm.set_owner, lead.crm_id, owner_id)
        attempt.notes["owner"] = owner_id

    def failure(self, exc: Exception) -> Retry | GiveUp | None:
        if isinstance(exc, CrmTransient):
            return Retry(str(exc), after=exc.retry_after)
        if isinstance(exc, CrmPermanent):
            return GiveUp(str(exc))
        return None

    def finished(
        self, session: Session, attempt: Attempt, *, error: str | None, gave_up: bool
    ) -> None:
        item = attempt.item
        if item.kind == OutboxKind.HUBSPOT_CONTACT:
            return
        written = attempt.notes.get("owner")
        if written is None and not gave_up:
            return
        repo.add_audit(
            session=session,
            lead_id=int(item.payload["lead_id"]),
            at=self.clock(),
            kind=CRM_OWNER_SET if written is not None else CRM_WRITE_FAILED,
            reason=error,
            data={"rep": item.payload["rep"], "system": self.link.system, "owner": written},
        )
