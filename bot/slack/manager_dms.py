"""What a manager gets in a DM, and who else hears of it when that DM cannot take it.

A queued lead's alert, a missed contact SLA, the digest, the word on a backlog, a refused policy
and the note that another manager cannot be reached are each a few lines here, beside what
becomes of them when Slack has deactivated the manager (asked with `users.info` before posting:
Slack takes a post to a deactivated user's DM all the same, and nobody reads it) or refuses
their DM for good. What happens next is the service layer's (`bot.service.escalations`): a
lead's alert goes to the other managers instead; the rest to nobody else, but the others hear
once a day that the manager cannot be reached (`escalate`, called by `CardDelivery` once the
item is given up, or by the watchdog's sweep should that call be lost).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.home import is_away
from bot.outbox import Attempt, GiveUp
from bot.reading import Reader
from bot.service.digests import load_digest
from bot.slack.assign import assignees_of
from bot.slack.blocks import Message, who
from bot.slack.cards import CardView, queued_post
from bot.slack.contact_sla import ContactMiss, contact_missed_alert
from bot.slack.digest import (
    backlog_summary,
    digest_message,
    policy_refused_message,
    unreachable_note,
)
from bot.slack.posting import delivered, in_words
from routing.policy import Policy
from routing.policy_version import short_version
from storage.db import Database
from storage.models import OfferStatus


class Delivery(Protocol):
    """What a manager's DM needs of the delivery that carries it out (`CardDelivery`)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def reader(self) -> Reader: ...

    @property
    def policy(self) -> Callable[[], Policy]: ...

    async def _active(self, slack_id: str) -> str: ...

    async def _slack_id(self, person_id: str) -> str: ...

    async def _post(
        self, attempt: Attempt, channel: str, message: Message, *, thread_ts: str | None = None
    ) -> tuple[str, str]: ...


class ManagerDms:
    """The managers' DMs of `CardDelivery`, which it inherits them from."""

    async def _alert_manager(self: Delivery, attempt: Attempt, payload: dict[str, Any]) -> None:
        """The watchdog gave up on a lead (or its card or queue post could not go out, `why`):
        its manager gets it in a DM, with Assign."""
        manager = str(payload["manager"])
        slack_id = await self._slack_id(manager)
        queued = await self.reader.queued_card(int(payload["lead_id"]))
        if queued is None:
            return  # assigned meanwhile
        await self._active(slack_id)  # a DM nobody reads: others are told
        view = CardView(lead_id=queued.lead_id, content=queued.content)
        why = payload.get("why")
        message = queued_post(
            view,
            queued.queue,
            assignees_of(self.policy()),
            alert=True,
            why=in_words(str(why)) if why else None,
        )
        await self._post(attempt, slack_id, message)
        delivered(attempt, queued.lead_id, f"manager {manager} alerted (queue {queued.queue})")

    async def _alert_contact_missed(
        self: Delivery, attempt: Attempt, payload: dict[str, Any]
    ) -> None:
        """A claimed lead was not touched in time: a manager hears of it in a DM, with where
        the lead is now (and Assign, if it waits in a queue)."""
        manager = str(payload["manager"])
        slack_id = await self._slack_id(manager)
        card = await self.reader.offer_card(int(payload["offer_id"]))
        if card is None:
            return
        policy = self.policy()
        settled = card.settled if card.status == OfferStatus.UNCONTACTED.value else None
        state = (await self.reader.rep_states()).get(card.rep)
        away = settled is None and is_away(state, self.clock())
        touched = payload.get("touched_at")
        due = payload.get("due_at")
        miss = ContactMiss(
            rep=who(policy, card.rep),
            due_at=datetime.fromisoformat(due) if due else None,
            touched_at=datetime.fromisoformat(touched) if touched else None,
            holder=who(policy, settled.holder) if settled and settled.holder else None,
            queue=(settled.queue or "unmatched") if settled and not settled.holder else None,
            instead=in_words(str(payload["why"])) if payload.get("why") else None,
            away=away,
            away_until=state.away_until if away and state is not None else None,
        )
        view = CardView(lead_id=card.lead_id, content=card.content)
        await self._active(slack_id)  # a DM nobody reads: the other managers are told
        await self._post(attempt, slack_id, contact_missed_alert(view, miss, assignees_of(policy)))
        delivered(attempt, card.lead_id, f"manager {manager} told of a missed contact SLA")

    async def _post_digest(self: Delivery, attempt: Attempt, payload: dict[str, Any]) -> None:
        manager_id = str(payload["manager"])
        policy = self.policy()
        manager = policy.managers.get(manager_id)
        if manager is None:
            raise GiveUp(f"manager {manager_id} is no longer in the policy")
        slack_id = await self._active(await self._slack_id(manager_id))
        async with self.db.reading() as session:
            digest = await load_digest(
                session,
                policy,
                manager_id=manager_id,
                since=datetime.fromisoformat(payload["since"]),
                now=datetime.fromisoformat(payload["until"]),
                read_at=self.clock(),
            )
        message = digest_message(digest, manager_tz=manager.tz, assignees=assignees_of(policy))
        await self._post(attempt, slack_id, message)
        delivered(attempt, None, f"digest posted to manager {manager_id}")

    async def _post_backlog(self: Delivery, attempt: Attempt, payload: dict[str, Any]) -> None:
        """Leads arrived while no Slack app ran: their manager hears of them once, in a DM."""
        slack_id = await self._active(await self._slack_id(str(payload["manager"])))
        policy = self.policy()
        reps = {policy.rep_name(rep): int(count) for rep, count in payload["reps"].items()}
        since = datetime.fromisoformat(payload["since"])
        await self._post(attempt, slack_id, backlog_summary(int(payload["leads"]), since, reps))
        delivered(attempt, None, f"backlog of {payload['leads']} told to {payload['manager']}")

    async def _tell_policy_refused(
        self: Delivery, attempt: Attempt, payload: dict[str, Any]
    ) -> None:
        """A policy file failed its checks: its problems, to a manager in a DM."""
        manager = str(payload["manager"])
        slack_id = await self._active(await self._slack_id(manager))
        message = policy_refused_message(
            str(payload["source"]),
            short_version(payload["version"]),
            short_version(payload.get("serving")),
            str(payload["problems"]),
        )
        await self._post(attempt, slack_id, message)
        delivered(attempt, None, f"manager {manager} told of the policy refused")

    async def _tell_unreachable(self: Delivery, attempt: Attempt, payload: dict[str, Any]) -> None:
        """A manager Slack cannot reach, said to another once a day (a note that cannot go
        either goes no further)."""
        missing = self.policy().managers.get(str(payload["missing"]))
        if missing is None:
            return  # taken out of the policy meanwhile: what the note would ask is done
        manager = str(payload["manager"])
        slack_id = await self._active(await self._slack_id(manager))
        why = in_words(str(payload["why"]))
        note = unreachable_note(missing.name, why, str(payload["missed"]))
        await self._post(attempt, slack_id, note)
        delivered(attempt, None, f"manager {manager} told that {missing.id} cannot be reached")
