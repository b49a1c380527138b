"""What the service layer needs from a CRM, whichever CRM it is.

Both vendors' clients are synchronous (requests, urllib3). `CrmCalls` runs them on a thread pool
of its own, sized to the concurrency bound, so a slow CRM neither blocks the event loop nor takes
the threads other work uses; and it holds every call back while the CRM has asked us to wait
(429 with Retry-After), so one rate-limit answer slows all callers, not just the one that got it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from routing.policy import Rep
from routing.policy_schema import CrmSpec
from routing.report import OutcomeEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long no call goes to a CRM whose daily API limit is reached, before one call finds out
# whether it has reset: two probes an hour, where each queued write trying every few minutes
# would spend hundreds of refused calls an hour and be given up before the limit resets.
DAILY_LIMIT_WAIT_S = 1800.0


def is_hubspot_id(value: str) -> bool:
    """HubSpot's object ids (contacts, owners) are numbers."""
    return value.isascii() and value.isdigit() and 0 < len(value) <= 20


class CrmError(Exception):
    """A CRM call failed; the message is a sentence for people and carries no credential."""


class CrmTransient(CrmError):
    """Worth trying again: a rate limit (with the wait the CRM asked for), a 5xx, a timeout."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrmDailyLimit(CrmTransient):
    """The CRM's API calls for the day are used up (HubSpot's DAILY policy, Salesforce's
    requests of the last 24 hours): nothing passes for hours. `CrmCalls` then makes no call to
    that CRM for `retry_after` (at least its `daily_limit_wait_s`), refusing each at once with
    this message, and afterwards lets one call at a time find out whether the limit reset."""


class CrmPermanent(CrmError):
    """Will not succeed by trying again: the record is gone, the owner invalid, no permission."""


class CrmOwnerRefused(CrmPermanent):
    """The CRM refused the owner id itself (no such user, or a deactivated one): what to fix
    is the rep's owner in the policy or the user in the CRM, not the record."""


class CrmNotConfigured(CrmError):
    """The settings name no credentials for this CRM."""


@dataclass(frozen=True, slots=True)
class CrmOwner:
    id: str
    email: str | None


@dataclass(frozen=True, slots=True)
class CrmAccount:
    """An account (Salesforce Account, HubSpot company) as the accounts table keeps it: its
    country and state through `routing.geo.account_location`, as every account's are."""

    id: str
    name: str
    website: str | None
    owner_id: str | None
    tier: str | None
    modified_at: datetime
    country: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class AccountPage:
    accounts: Sequence[CrmAccount]
    last_modified: datetime | None  # the newest modification time on this page


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """A new lead as the CRM holds it, in the field names `routing.leads.parse_lead` reads."""

    crm_id: str
    values: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CrmOutcome:
    """An outcome event a CRM record tells of a lead: a call, e-mail or meeting with it (its
    first touch, if the earliest), an opportunity or deal for it, won or lost.

    `record_id` is the lead's record (Salesforce Lead, HubSpot contact); `key` the record that
    tells it ("Task/00T...", "calls/4821"), the same each time it is read; `by` the CRM owner
    who made the call or sent the e-mail (None for what no person did by hand)."""

    record_id: str
    event: OutcomeEvent
    key: str
    via: str
    by: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomePage:
    outcomes: Sequence[CrmOutcome]
    read_up_to: datetime | None  # the newest change this page covers (its cursor's next mark)


@dataclass(frozen=True, slots=True)
class SetupCheck:
    """What a CRM will refuse of what leadrouter is set to do, found without writing: each
    problem a sentence saying what to fix; what was seen to be in place; and notes (what could
    not be checked, and why, or a setting worth giving). Each a sentence without a credential."""

    problems: tuple[str, ...] = ()
    verified: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class CrmClient(Protocol):
    """One CRM, as the service layer, the jobs and the write-back use it, whichever CRM it is:
    nothing outside `bot.bootstrap` (which builds one) names an adapter. Every method is
    synchronous and is called through `CrmCalls`; each raises CrmTransient (worth trying again)
    or CrmPermanent (will not pass by itself), never a vendor's exception."""

    system: str  # "salesforce" | "hubspot", as in a lead's crm_system
    owner_setting: str  # the key on a rep in the policy naming their owner id here
    # The reads that find leads' outcome events (`outcomes_since`), each with a cursor of its own.
    outcome_streams: tuple[str, ...]

    def configure(self, spec: CrmSpec) -> None:
        """Read from now on as the policy's `crm` section says (its fields, its queue): called
        at start and with each new version of the policy."""
        ...

    def owner_given(self, rep: Rep) -> str | None:
        """The owner id the policy gives `rep` in this CRM (`owner_setting`), if any."""
        ...

    def whoami(self) -> str:
        """Check the credentials with one cheap call; a sentence naming who we are connected as."""
        ...

    def setup_check(self, *, reads_accounts: bool, reads_outcomes: bool) -> SetupCheck:
        """What this CRM will refuse of what leadrouter is set to do, found without writing:
        a permission or scope the credentials lack, a field the policy names that is not
        there; and what was verified. No problem when all is in place."""
        ...

    def owners_by_email(self, emails: Sequence[str]) -> dict[str, str]:
        """The CRM owner (user) id for each email that has one, keyed by lowercased email."""
        ...

    def owners_unknown(self, owner_ids: Sequence[str]) -> dict[str, str]:
        """Which of these owner ids (the policy's, given outright) no write could set: each
        with a phrase saying why ("is no user in this Salesforce", "is a deactivated HubSpot
        owner"). Those that are active owners are left out."""
        ...

    def set_owner(self, record_id: str, owner_id: str) -> None:
        """Make `owner_id` the owner of the lead or contact `record_id`; never creates one."""
        ...

    def accounts_modified_since(self, since: datetime | None) -> Iterator[AccountPage]:
        """Accounts changed at or after `since` (all of them for None), oldest change first."""
        ...

    def new_leads(self, since: datetime | None) -> Iterator[Sequence[LeadRecord]]:
        """Leads created at or after `since` (all of them for None), oldest first, in pages.
        A CRM that announces its new leads instead (HubSpot, by webhook) says so with
        CrmPermanent."""
        ...

    def lead(self, record_id: str) -> LeadRecord:
        """The lead (or contact) `record_id`, as a lead to route: one a webhook announced."""
        ...

    def outcomes_since(self, stream: str, since: datetime) -> Iterator[OutcomePage]:
        """The outcome events told by the records of `stream` changed at or after `since`,
        oldest change first, a page at a time; every lead's, routed here or not."""
        ...


@dataclass
class CrmCalls:
    """Runs one CRM's synchronous calls off the event loop, at most `concurrency` at a time,
    and none while a Retry-After the CRM sent is still running. Past a daily limit, none for
    `daily_limit_wait_s`: each call is refused at once (CrmDailyLimit), with no request sent."""

    concurrency: int = 16
    daily_limit_wait_s: float = DAILY_LIMIT_WAIT_S
    _pool: ThreadPoolExecutor | None = None
    _paused_until: float = 0.0  # time.monotonic() before which no call starts
    _slots: asyncio.Semaphore | None = None
    # The daily limit the last answer met, until a call passes: calls go one at a time then.
    _limit: CrmDailyLimit | None = None
    _limits_met: int = 0  # how many answers met a daily limit
    _probe: asyncio.Lock | None = None
    paused: int = field(default=0)  # how many times a Retry-After held the calls back

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="crm")
            self._slots = asyncio.Semaphore(self.concurrency)
            self._probe = asyncio.Lock()
        assert self._slots is not None and self._probe is not None
        async with self._slots:
            await self._while_paused()
            if self._limit is None:
                return await self._run(fn, *args)
            # The wait after a daily limit is over: one call finds out whether it has reset,
            # rather than every call queued meanwhile at once.
            async with self._probe:
                self._refuse_past_the_limit()
                return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        limits_met = self._limits_met
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except CrmDailyLimit as exc:
            self._limits_met += 1
            exc.retry_after = max(exc.retry_after or 0.0, self.daily_limit_wait_s)
            if self._paused_until <= time.monotonic():  # said once per wait, not per call
                log.warning(
                    "%s; no call goes to it for %.0f minutes, then one tries again",
                    exc,
                    exc.retry_after / 60,
                )
            self._limit = exc
            self.pause(exc.retry_after)
            raise
        except CrmTransient as exc:
            if exc.retry_after:
                self.pause(exc.retry_after)
            raise
        except CrmPermanent:
            self._passed(limits_met)  # an answer about something else
            raise
        self._passed(limits_met)
        return result

    def _passed(self, limits_met: int) -> None:
        """A call passed the CRM's limits: the calls pass again, unless another call met a
        daily limit while this one was under way (its answer was given before the limit)."""
        if self._limits_met == limits_met:
            self._limit = None

    def _refuse_past_the_limit(self) -> None:
        wait = self._paused_until - time.monotonic()
        if self._limit is not None and wait > 0:
            raise CrmDailyLimit(str(self._limit), retry_after=wait)

    async def _while_paused(self) -> None:
        while True:  # a call that ends while we sleep may extend the pause
            self._refuse_past_the_limit()
            wait = self._paused_until - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Start no call for `seconds` (a later pause extends, an earlier one never shortens)."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.paused += 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
