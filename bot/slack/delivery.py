"""Carry the outbox's Slack items out: post cards, update them when settled, post queued leads.

Every post goes to its lane (the rep's DM, a channel): one post a second per lane, lanes side by
side, and a lane Slack answers 429 waits out its Retry-After (see `bot.outbox`). Each post
carries the outbox item's key in its message metadata, and the message ts is stored the moment
Slack returns it, in the transaction that ends the attempt. An attempt that cannot tell whether
its post went out (a timeout, a 5xx, a process that died) leaves that said on the item, and the
next attempt looks for the message in the channel's history before posting again (the posting
itself is `bot.slack.posting`'s). The DM card and its copy in the team's channel are two items,
each posted at most once; the SLA of an offer runs from its DM card's post. What goes to
managers, and who else hears of it when their DM cannot take it, is `bot.slack.manager_dms`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy.orm import Session

from bot.card import Person, sla_deadlines
from bot.home import ContactLead
from bot.logs import about
from bot.outbox import Attempt, GiveUp, Hold, OutboxWorker, Retry
from bot.reading import OfferCard, Reader
from bot.service.cards import PostedCard, card_still_queued, record_posted
from bot.service.escalations import ESCALATED_KINDS
from bot.service.kinds import OutboxKind
from bot.service.views import Move
from bot.slack import posting
from bot.slack.assign import assignees_of
from bot.slack.availability import absence_dm
from bot.slack.blocks import Message, Said, said, say
from bot.slack.cards import CardView, offer_card, queued_post, reminder, settled_card, team_copy
from bot.slack.contact_sla import contact_reminder
from bot.slack.manager_dms import ManagerDms
from bot.slack.people import SlackPeople
from routing.policy import Policy
from storage.models import OfferStatus, OutboxRow

log = logging.getLogger(__name__)

SLACK_KINDS = (
    OutboxKind.OFFER_CARD,
    OutboxKind.TEAM_CARD,
    OutboxKind.SETTLE_CARD,
    OutboxKind.QUEUE_POST,
    OutboxKind.REMINDER,
    OutboxKind.MANAGER_ALERT,
    OutboxKind.CONTACT_REMINDER,
    OutboxKind.CONTACT_MISSED,
    OutboxKind.DIGEST,
    OutboxKind.BACKLOG,
    OutboxKind.POLICY_REFUSED,
    OutboxKind.MANAGER_UNREACHABLE,
    OutboxKind.ABSENCE_TOLD,
)
POST_INTERVAL_S = 1.0  # Slack: about one message per second per channel
CALL_TIMEOUT_S = 10.0  # one Web API call, well within the outbox lease that it renews


Undeliverable = Callable[[int, str], Awaitable[None]]  # (offer id, why)
# A given-up item of `ESCALATED_KINDS` (a queue post, a manager's DM), and why.
GivenUp = Callable[[OutboxRow, str], Awaitable[object]]


@dataclass(kw_only=True)
class CardDelivery(ManagerDms, OutboxWorker):
    reader: Reader
    client: AsyncWebClient
    policy: Callable[[], Policy]
    kinds: tuple[str, ...] = SLACK_KINDS
    pace_s: float = POST_INTERVAL_S
    call_timeout_s: float = CALL_TIMEOUT_S
    # A DM card Slack will not take (no slack id, channel_not_found): the lead moves on.
    on_undeliverable: Undeliverable | None = None
    # A queued lead's post its queue's channel will not take (its managers are told in DMs)
    # or a manager's DM that refused an alert or digest (the others hear of it): `escalate`.
    on_given_up: GivenUp | None = None
    people: SlackPeople | None = None  # finds people the policy names by e-mail alone
    # Why Slack refuses the bot token, while it does (said once in the log, not per post).
    token_refused: str | None = None

    def failure(self, exc: Exception) -> Retry | Hold | GiveUp | None:
        outcome = posting.slack_failure(exc, timeout_s=self.call_timeout_s)
        if isinstance(outcome, posting.TokenRefused) and self.token_refused is None:
            self.token_refused = str(outcome)
            log.error(
                "outbox: Slack refuses the bot token (%s); every card, alert and digest waits "
                "in the outbox, its SLA not started, until the token is fixed",
                outcome,
            )
        return outcome

    async def carry_out(self, attempt: Attempt) -> None:
        kind, payload = attempt.item.kind, attempt.item.payload
        if kind in (OutboxKind.OFFER_CARD, OutboxKind.TEAM_CARD):
            await self._post_card(attempt, int(payload["offer_id"]), kind == OutboxKind.TEAM_CARD)
        elif kind == OutboxKind.SETTLE_CARD:
            await self._settle_card(attempt, int(payload["offer_id"]))
        elif kind == OutboxKind.QUEUE_POST:
            await self._post_queued(attempt, payload)
        elif kind == OutboxKind.REMINDER:
            await self._remind(attempt, int(payload["offer_id"]))
        elif kind == OutboxKind.MANAGER_ALERT:
            await self._alert_manager(attempt, payload)
        elif kind == OutboxKind.CONTACT_REMINDER:
            await self._remind_to_contact(attempt, int(payload["offer_id"]))
        elif kind == OutboxKind.CONTACT_MISSED:
            await self._alert_contact_missed(attempt, payload)
        elif kind == OutboxKind.DIGEST:
            await self._post_digest(attempt, payload)
        elif kind == OutboxKind.BACKLOG:
            await self._post_backlog(attempt, payload)
        elif kind == OutboxKind.POLICY_REFUSED:
            await self._tell_policy_refused(attempt, payload)
        elif kind == OutboxKind.MANAGER_UNREACHABLE:
            await self._tell_unreachable(attempt, payload)
        elif kind == OutboxKind.ABSENCE_TOLD:
            await self._tell_absence(attempt, payload)

    def finished(
        self, session: Session, attempt: Attempt, *, error: str | None, gave_up: bool
    ) -> None:
        # Whatever became of the attempt: a card Slack accepted is recorded, never posted again.
        card = attempt.notes.get("card")
        if not isinstance(card, PostedCard):
            return
        if not record_posted(session, card):
            attempt.notes["duplicate"] = card

    async def after_end(self, attempt: Attempt, *, error: str | None, gave_up: bool) -> None:
        duplicate = attempt.notes.get("duplicate")
        delivered = attempt.notes.get("delivered")
        if self.token_refused is not None and delivered is not None and error is None:
            self.token_refused = None
            log.warning("outbox: Slack takes the bot token again; what waited goes out now")
        if error is None and not isinstance(duplicate, PostedCard) and delivered is not None:
            lead_id, what = delivered
            if lead_id is None:
                log.info("%s", what)
            else:
                log.info("lead %s: %s", lead_id, what, extra=about(lead_id))
        if isinstance(duplicate, PostedCard):
            # Another attempt's copy was recorded first (a lease that ran out under a frozen
            # process): this one is taken back, so the rep sees one card.
            log.warning("outbox: offer %s had two cards; deleting the second", duplicate.offer_id)
            await self._call(self.client.chat_delete, channel=duplicate.channel, ts=duplicate.ts)
        if gave_up and attempt.item.kind == OutboxKind.OFFER_CARD and self.on_undeliverable:
            await self.on_undeliverable(int(attempt.item.payload["offer_id"]), error or "")
        # Lost with a crash before it, the escalation is the watchdog's sweep's to do instead.
        if gave_up and attempt.item.kind in ESCALATED_KINDS and self.on_given_up:
            await self.on_given_up(attempt.item, error or "")

    async def _post_card(self, attempt: Attempt, offer_id: int, to_team: bool) -> None:
        card = await self.reader.new_offer_card(offer_id)
        if card is None or card.status != "offered":
            return  # claimed or moved before its card went out: nobody needs it now
        if to_team:
            if card.team_channel is None or card.team_message_ts is not None:
                return
            channel = card.team_channel
        else:
            if card.message_ts is not None:
                return
            channel = await self._active(card.rep_slack or await self._slack_id(card.rep))
        now = self.clock()
        due, remind_at = self._deadlines(card, now)
        view = self._view(card)
        if due is not None:
            view = replace(view, content=replace(view.content, sla_due_at=due))
        message = team_copy(view) if to_team else offer_card(view)
        posted_channel, ts = await self._post(attempt, channel, message)
        starts_sla = not to_team and card.sla_due_at is None
        attempt.notes["card"] = PostedCard(
            offer_id,
            to_team,
            posted_channel,
            ts,
            posted_at=now if not to_team else None,
            sla_due_at=due if starts_sla else card.sla_due_at,
            remind_at=remind_at if starts_sla else None,
        )
        if to_team:
            posting.delivered(attempt, card.lead_id, f"copy of the card posted in {posted_channel}")
        else:
            posting.delivered(attempt, card.lead_id, f"card posted to {card.rep}")

    def _deadlines(self, card: OfferCard, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The SLA deadline (and reminder) of a card posted now, or the one already running."""
        if card.sla_due_at is not None:
            return card.sla_due_at, None
        return sla_deadlines(self.policy(), card.rep, card.sla_seconds, now)

    async def _settle_card(self, attempt: Attempt, offer_id: int) -> None:
        card = await self.reader.offer_card(offer_id)
        if card is None or card.settled is None:
            return
        if card.message_ts is None and await card_still_queued(self.db, offer_id):
            raise Retry("the card itself is not posted yet")
        policy = self.policy()
        view = self._view(card)
        moved = card.settled.moved
        for channel, ts, team in (
            (card.channel, card.message_ts, False),
            (card.team_channel, card.team_message_ts, True),
        ):
            if channel and ts:
                # The team's channel: without the note of a rep who rejected it (`bot.card`).
                words = card.settled.words(team=team)
                # The rep's own words (a reject's reason) stay out of the text: chat.update
                # cannot turn mrkdwn off for it. The blocks quote them as written.
                quiet = said(replace(card.settled, reason=None).words(team=team), policy)
                status = Said(say(words, policy).rich, quiet)
                message = settled_card(view, status, team=team, moved=moved)
                await self._call(
                    self.client.chat_update,
                    channel=channel,
                    ts=ts,
                    text=message.text,
                    blocks=message.blocks,
                )
                posting.delivered(attempt, card.lead_id, f"card updated ({card.status})")

    async def _post_queued(self, attempt: Attempt, payload: dict[str, Any]) -> None:
        channel = payload.get("channel")
        if not channel:
            return
        queued = await self.reader.queued_card(int(payload["lead_id"]))
        if queued is None:
            return  # assigned meanwhile
        view = CardView(lead_id=queued.lead_id, content=queued.content)
        assignees = assignees_of(self.policy())
        await self._post(attempt, str(channel), queued_post(view, queued.queue, assignees))
        posting.delivered(attempt, queued.lead_id, f"posted in queue {queued.queue}'s channel")

    async def _remind(self, attempt: Attempt, offer_id: int) -> None:
        """Half the SLA has gone: a nudge in the card's thread (or the DM, if it has none yet)."""
        card = await self.reader.offer_card(offer_id)
        if card is None or card.status != "offered":
            return  # claimed or moved meanwhile: nothing to remind of
        channel = card.channel or card.rep_slack or await self._slack_id(card.rep)
        message = reminder(self._view(card))
        await self._post(attempt, channel, message, thread_ts=card.message_ts)
        posting.delivered(attempt, card.lead_id, f"reminder posted to {card.rep}")

    async def _remind_to_contact(self, attempt: Attempt, offer_id: int) -> None:
        """Half the contact SLA has gone untouched: a nudge in the thread of the claimed card."""
        card = await self.reader.offer_card(offer_id)
        if card is None or card.status != OfferStatus.CLAIMED.value:
            return  # taken from the rep meanwhile: nothing to remind of
        channel = card.channel or card.rep_slack or await self._slack_id(card.rep)
        message = contact_reminder(self._view(card), card.contact_due_at)
        await self._post(attempt, channel, message, thread_ts=card.message_ts)
        posting.delivered(attempt, card.lead_id, f"contact reminder posted to {card.rep}")

    async def _active(self, slack_id: str) -> str:
        """`slack_id`, unless Slack has deactivated that user (it takes a post to their DM all
        the same, and nobody reads it): GiveUp then, saying so."""
        if self.people is not None and await self.people.deactivated(slack_id):
            raise GiveUp(posting.user_gone(slack_id))
        return slack_id

    async def _tell_absence(self, attempt: Attempt, payload: dict[str, Any]) -> None:
        """Someone else marked a rep out of office or back: the rep hears of it in a DM, with
        where their leads went, once those have moved."""
        rep = str(payload["rep"])
        slack_id = await self._slack_id(rep)
        moves: list[Move] = []
        to_contact: Sequence[ContactLead] = ()
        if payload["away"]:
            offers = [int(offer_id) for offer_id in payload["offers"]]
            found = await self.reader.absence_moves(rep, offers)
            if found is None:
                raise Retry("the rep's leads are still being moved on", after=1.0)
            moves = found
            to_contact = await self.reader.to_contact(rep)
        titles = await self.reader.lead_titles([move.lead_id for move in moves[:10]])
        until = payload.get("until")
        message = absence_dm(
            self.policy(),
            by=str(payload["by"]),
            away=bool(payload["away"]),
            until=datetime.fromisoformat(until) if until else None,
            moves=moves,
            titles=titles,
            to_contact=to_contact,
            now=self.clock(),
        )
        await self._post(attempt, slack_id, message)
        marked = "out" if payload["away"] else "back"
        posting.delivered(attempt, None, f"{rep} told they were marked {marked}")

    async def _slack_id(self, person_id: str) -> str:
        """The member id to reach a rep or manager at: the policy's, else the one Slack has for
        their e-mail. GiveUp, saying what to set, when there is none."""
        policy = self.policy()
        found = policy.slack_of(person_id)
        if found is None and self.people is not None:
            found = await self.people.slack_id(person_id)
        if found is not None:
            return found
        person = policy.reps.get(person_id) or policy.managers.get(person_id)
        if person is None:
            raise GiveUp(f"{person_id} is no longer in the policy")
        if person.email:
            raise GiveUp(
                f"{person_id} has no slack id in the policy and no Slack user has the e-mail "
                f"{person.email}: set their `slack:` member id, or their e-mail as in Slack"
            )
        raise GiveUp(
            f"{person_id} has neither a slack id nor an e-mail in the policy: set `slack:` to "
            "their member id (their Slack profile, ⋮, Copy member ID) or `email:`"
        )

    async def _post(
        self, attempt: Attempt, channel: str, message: Message, *, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """The message posted in the attempt's lane, tagged with the item's key. For an attempt
        after one that cannot tell whether it posted, the message that one posted, if Slack has
        it."""
        key = attempt.item.dedupe_key
        if attempt.unsure:
            found = await posting.find_post(
                self.client,
                channel,
                key,
                since=attempt.item.created_at,
                timeout_s=self.call_timeout_s,
            )
            if found is not None:
                log.info("outbox: %s was posted already (%s); not posting it again", key, found[1])
                return found
        attempt.notes["paced_at"] = self.clock()
        return await posting.post(
            self.client,
            channel,
            message,
            key=key,
            timeout_s=self.call_timeout_s,
            thread_ts=thread_ts,
        )

    async def _call(
        self, method: Callable[..., Awaitable[AsyncSlackResponse]], **arguments: Any
    ) -> AsyncSlackResponse:
        return await posting.call(method, timeout_s=self.call_timeout_s, **arguments)

    def _view(self, card: OfferCard) -> CardView:
        policy = self.policy()
        rep = policy.reps.get(card.rep)
        return CardView(
            lead_id=card.lead_id,
            content=card.content,
            crm_url=card.crm_url,
            note=card.note,
            assignee=say((Person(card.rep),), policy),
            keeps_hours=rep is None or rep.hours is not None,
        )
