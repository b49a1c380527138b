"""Carry out the outbox's CRM items: owner write-backs, and contacts HubSpot announced.

A write-back sets the owner the lead has *now*: an item queued for a rep the lead has since
moved away from is done without a call (the later offer queued its own). Rate limits and
outages are retried (never before a Retry-After runs out, see `CrmCalls`); after
`max_attempts`, or at once for an error that will not pass (record gone, owner invalid, no
permission), the item is given up and the lead's story says so, where `/routing why` and the
manager digest show it. A first failure that is tried again is in the story too, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.crm.base import CrmOwnerRefused, CrmPermanent, CrmTransient
from bot.crm.link import CrmLink
from bot.crm.sync import take_hubspot_contact
from bot.crm_links import crm_name
from bot.outbox import Attempt, GiveUp, OutboxWorker, Retry
from bot.service.crm import owner_write_ended, record_to_own
from bot.service.kinds import OWNER_WRITE_KINDS, OutboxKind
from bot.service.unit_of_work import UnitOfWork
from routing.leads import InvalidLead


@dataclass(kw_only=True)
class CrmWorker(OutboxWorker):
    uow: UnitOfWork
    link: CrmLink
    # With backoff capped at 5 minutes, 300 attempts span about a day (at least 19 hours): a
    # CRM's maintenance window or outage passes, and what was queued meanwhile goes out after.
    max_attempts: int | None = 300
    # One lead's writes (their lane, `owner_write`) one after another in the order they were
    # queued, across replicas: a write still on its way when the lead moved to another rep
    # would otherwise land after the new rep's and leave the record with the old owner.
    # Different leads go side by side.
    in_order: bool = True

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
                await take_hubspot_contact(self.uow, self.link, str(item.payload["contact_id"]))
            except InvalidLead as exc:
                raise GiveUp(f"the contact is not a lead leadrouter can route: {exc}") from None
            return
        await self._set_owner(attempt)

    async def _set_owner(self, attempt: Attempt) -> None:
        item = attempt.item
        lead_id, rep_id = int(item.payload["lead_id"]), str(item.payload["rep"])
        crm_id = await record_to_own(self.uow, lead_id, rep_id)
        if crm_id is None:
            return  # gone, or moved on to another rep: that offer queued its own write
        attempt.notes["record"] = crm_id
        owner_id = await self.link.owners.owner_of(rep_id)
        try:
            await self.link.calls(self.link.crm.set_owner, crm_id, owner_id)
        except CrmOwnerRefused as exc:
            raise GiveUp(await self._owner_refused(rep_id, exc)) from None
        attempt.notes["owner"] = owner_id

    async def _owner_refused(self, rep_id: str, exc: CrmOwnerRefused) -> str:
        """The CRM's refusal of a rep's owner id, with where that id came from and the fix:
        the CRM says only that the id is wrong, not which setting to change."""
        crm, setting = crm_name(self.link.system), self.link.crm.owner_setting
        if rep_id in (await self.link.owners.mapping()).explicit:
            where = f"rep {rep_id}'s {setting} in the policy: give an active {crm} "
            where += "owner's id (`leadrouter crm check` checks them)"
        else:
            where = f"the {crm} user with rep {rep_id}'s email: reactivate the user, or set "
            where += f"{setting} on the rep"
        return f"{exc}; it is {where}, then `leadrouter crm retry`"

    def describe(self, attempt: Attempt) -> str:
        """With the lead's CRM record and rep, which `/routing why <record id>` finds the lead
        by: the item's number alone leads nowhere."""
        item, record = attempt.item, attempt.notes.get("record")
        if item.kind == OutboxKind.HUBSPOT_CONTACT:
            return f"item {attempt.id} ({item.kind}: contact {item.payload['contact_id']})"
        if record is None:
            return f"item {attempt.id} ({item.kind}: rep {item.payload['rep']})"
        crm = crm_name(self.link.system)
        return f"item {attempt.id} ({item.kind}: {crm} record {record}, rep {item.payload['rep']})"

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
        retrying = written is None and not gave_up
        if retrying and (error is None or item.attempts != 1):
            return  # skipped (the lead moved on), or a retry the story already tells of
        owner_write_ended(
            session,
            lead_id=int(item.payload["lead_id"]),
            rep_id=item.payload["rep"],
            system=self.link.system,
            owner=written,
            error=error,
            at=self.clock(),
            retrying=retrying,
        )
