"""Who is who in Slack: the policy's `slack:` member ids and, for people it names by e-mail
alone, the member id Slack has for that address (`users.lookupByEmail`), remembered.

Everything that reads the policy in a process with Slack reads `SlackPeople.policy()`: the
policy serving now (`base()`), with the ids found so far filled in. So a card, a mention, the lane
a post is paced in and the person behind a click all see a rep found by e-mail as if the admin
had copied their member id into the file. The ids are kept by person id, so a new version of the
policy keeps those of the people it still has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from routing.policy import Manager, Policy, Rep

log = logging.getLogger(__name__)

# Slack's "no such user" is asked again after this long: the person may have joined since.
NOT_FOUND_AGAIN_S = 600.0
# A user's profile is read while Slack waits for the ack (3 s): no longer than this.
WHO_IS_TIMEOUT_S = 2.0
# Whether a rep's Slack account is deactivated is asked again after this long.
ACTIVE_AGAIN_S = 600.0
ACTIVE_TIMEOUT_S = 5.0
# An ask that got no answer (rate limited, a timeout) is not made again for every card: each
# is a wait before a card goes out, and one more call to Slack while it says to slow down.
UNANSWERED_AGAIN_S = 60.0


@dataclass
class SlackPeople:
    base: Callable[[], Policy]  # the policy serving now
    client: AsyncWebClient
    _found: dict[str, str] = field(default_factory=dict)  # person id -> member id
    _missing: dict[str, float] = field(default_factory=dict)  # e-mail -> when Slack said none
    _strangers: dict[str, float] = field(default_factory=dict)  # member id -> when not ours
    # member id -> (when to ask Slack again, whether it said deactivated)
    _deactivated: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _policy: Policy | None = None
    _made_from: Policy | None = None  # the policy `_policy` was made from

    def policy(self) -> Policy:
        """The policy with every member id found so far filled in."""
        base = self.base()
        if self._policy is None or self._made_from is not base:
            self._policy, self._made_from = _with_ids(base, self._found), base
        return self._policy

    def unknown(self) -> list[Rep | Manager]:
        """People the policy names by e-mail alone whose member id is not known yet."""
        policy = self.policy()
        people: list[Rep | Manager] = [*policy.reps.values(), *policy.managers.values()]
        return [person for person in people if person.slack is None and person.email]

    async def slack_id(self, person_id: str) -> str | None:
        """The person's member id: the policy's, else the one Slack has for their e-mail, else
        None (no e-mail, or no user with it). Slack's errors other than "no such user" (a
        missing scope, a timeout) are raised for the caller to handle."""
        policy = self.policy()
        person = policy.reps.get(person_id) or policy.managers.get(person_id)
        if person is None or person.slack is not None or not person.email:
            return person.slack if person is not None else None
        email = person.email.strip().lower()
        asked = self._missing.get(email)
        if asked is not None and time.monotonic() - asked < NOT_FOUND_AGAIN_S:
            return None
        try:
            response = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            if exc.response is not None and exc.response.get("error") == "users_not_found":
                self._missing[email] = time.monotonic()
                return None
            raise
        member = str(response["user"]["id"])
        self._learn(person_id, member)
        return member

    async def who_is(self, member_id: str) -> None:
        """Make sure a Slack user who is someone of the policy named by e-mail alone is known
        as them (their first click or command may come before any card of theirs went out).
        Best effort and quick: a failure leaves them unknown this once."""
        policy = self.policy()
        if policy.rep_of_slack(member_id) or policy.manager_of_slack(member_id):
            return
        waiting = {(p.email or "").strip().lower(): p.id for p in self.unknown()}
        seen = self._strangers.get(member_id)
        if not waiting or (seen is not None and time.monotonic() - seen < NOT_FOUND_AGAIN_S):
            return
        try:
            async with asyncio.timeout(WHO_IS_TIMEOUT_S):
                response = await self.client.users_info(user=member_id)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.info("slack: could not read the profile of %s (%s)", member_id, exc)
            return
        profile = response["user"].get("profile") or {}
        person_id = waiting.get(str(profile.get("email") or "").strip().lower())
        if person_id is None:
            self._strangers[member_id] = time.monotonic()
            return
        self._learn(person_id, member_id)

    async def deactivated(self, member_id: str) -> bool:
        """Whether Slack has deactivated this user (a rep who left): Slack takes a post to
        their DM all the same, and nobody reads it. Asked again every ten minutes; an answer
        that does not come (or is refused) counts as active, so the card goes out, and is
        not asked for again for a minute."""
        known = self._deactivated.get(member_id)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        try:
            async with asyncio.timeout(ACTIVE_TIMEOUT_S):
                response = await self.client.users_info(user=member_id)
        except (SlackApiError, TimeoutError, OSError, aiohttp.ClientError) as exc:
            log.info("slack: could not ask whether %s is active (%s)", member_id, exc)
            self._deactivated[member_id] = (time.monotonic() + UNANSWERED_AGAIN_S, False)
            return False
        gone = bool((response.get("user") or {}).get("deleted"))
        self._deactivated[member_id] = (time.monotonic() + ACTIVE_AGAIN_S, gone)
        return gone

    def _learn(self, person_id: str, member_id: str) -> None:
        if self._found.get(person_id) == member_id:
            return
        log.info("slack: %s is %s (found by e-mail)", person_id, member_id)
        self._found[person_id] = member_id
        self._policy = None


def _with_ids(policy: Policy, found: dict[str, str]) -> Policy:
    if not found:
        return policy
    reps = {
        rep_id: replace(rep, slack=found[rep_id]) if rep_id in found and not rep.slack else rep
        for rep_id, rep in policy.reps.items()
    }
    managers = {
        manager_id: (
            replace(manager, slack=found[manager_id])
            if manager_id in found and not manager.slack
            else manager
        )
        for manager_id, manager in policy.managers.items()
    }
    return replace(policy, reps=reps, managers=managers)
