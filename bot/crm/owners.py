"""Which CRM owner each rep is, and which rep each CRM owner is.

A rep's owner id is the policy's explicit one (`salesforce_user_id`, `hubspot_owner_id`) when
given, else the CRM user whose email is the rep's. Lookups by email are cached for `ttl_s` and
refreshed together, so a thousand write-backs cost one owners query, not a thousand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.crm.base import CrmCalls, CrmClient, CrmPermanent
from bot.crm_links import crm_name
from routing.policy import Policy


@dataclass(frozen=True, slots=True)
class OwnerMap:
    owners: dict[str, str]  # rep id -> CRM owner id
    missing: dict[str, str]  # rep id -> why it has none (a sentence)
    explicit: frozenset[str]  # reps whose owner id the policy gives


@dataclass
class OwnerDirectory:
    crm: CrmClient
    calls: CrmCalls
    policy: Callable[[], Policy]
    ttl_s: float = 600.0
    _by_email: dict[str, str] = field(default_factory=dict)
    _fetched_at: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def owner_of(self, rep_id: str) -> str:
        """The rep's owner id; CrmPermanent with a sentence saying what to fix when none."""
        mapping = await self.mapping()
        if rep_id in mapping.owners:
            return mapping.owners[rep_id]
        raise CrmPermanent(mapping.missing.get(rep_id, f"{rep_id} is not a rep in the policy"))

    async def rep_of(self, owner_id: str) -> str | None:
        mapping = await self.mapping()
        return next((rep for rep, owner in mapping.owners.items() if owner == owner_id), None)

    async def mapping(self, *, fresh: bool = False) -> OwnerMap:
        policy = self.policy()
        await self._refresh(policy, force=fresh)
        crm, setting = crm_name(self.crm.system), self.crm.owner_setting
        owners: dict[str, str] = {}
        missing: dict[str, str] = {}
        explicit: set[str] = set()
        for rep in policy.reps.values():
            given = self.crm.owner_given(rep)
            if given:
                owners[rep.id] = given
                explicit.add(rep.id)
            elif not rep.email:
                missing[rep.id] = (
                    f"rep {rep.id} has no email in the policy to find their {crm} user by "
                    f"(or set {setting} on the rep)"
                )
            elif rep.email.lower() in self._by_email:
                owners[rep.id] = self._by_email[rep.email.lower()]
            else:
                missing[rep.id] = (
                    f"no active {crm} user has rep {rep.id}'s email {rep.email} "
                    f"(or set {setting} on the rep)"
                )
        return OwnerMap(owners, missing, frozenset(explicit))

    async def _refresh(self, policy: Policy, *, force: bool) -> None:
        emails = [r.email for r in policy.reps.values() if r.email and not self.crm.owner_given(r)]
        async with self._lock:
            stale = self._fetched_at is None or time.monotonic() - self._fetched_at > self.ttl_s
            if not (force or stale):
                return
            if emails:
                self._by_email = await self.calls(self.crm.owners_by_email, emails)
            self._fetched_at = time.monotonic()
