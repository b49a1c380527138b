"""Carry the outbox's Slack items out: post cards, update them when settled, post queued leads.

Each item is leased by compare-and-set before it is tried (so two workers or two replicas never
both try it), and finished or rescheduled afterwards. A card is posted at most once per offer:
the message ts is stored on the offer in the transaction that ends the item, and an item whose
offer already has one is done. Posts are
paced per channel under Slack's one message per second per channel, with channels served side
by side; 429s (after the client's own Retry-After retries), 5xx and timeouts are tried again
with backoff; anything else is recorded as given up, with Slack's error code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.digest import load_digest
from bot.outbox import GiveUp, OutboxWorker, Retry
from bot.reading import OfferCard, Reader
from bot.service import OutboxKind
from bot.slack.blocks import (
    CardView,
    Message,
    escape,
    mention,
    offer_card,
    queued_post,
    reminder,
    settled_card,
)
from bot.slack.digest import digest_message
from routing.policy import Policy
from storage import repository as repo
from storage.models import OutboxRow

log = logging.getLogger(__name__)

SLACK_KINDS = (
    OutboxKind.OFFER_CARD,
    OutboxKind.SETTLE_CARD,
    OutboxKind.QUEUE_POST,
    OutboxKind.REMINDER,
    OutboxKind.MANAGER_ALERT,
    OutboxKind.DIGEST,
)
POST_INTERVAL_S = 1.0  # Slack: about one message per second per channel
# Slack errors worth trying again; any other error code will not go away by itself.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)


@dataclass(kw_only=True)
class CardDelivery(OutboxWorker):
    reader: Reader
    client: AsyncWebClient
    policy: Callable[[], Policy]
    kinds: tuple[str, ...] = SLACK_KINDS
    _next_post: dict[str, float] = field(default_factory=dict)  # channel -> monotonic slot
    _channel_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # item id -> (offer id, where its card went): stored with the item's end, in one transaction
    _posted: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)

    def failure(self, exc: Exception) -> Retry | GiveUp | None:
        if isinstance(exc, SlackApiError):
            code = str(exc.response.get("error", "")) if exc.response is not None else ""
            status = exc.response.status_code if exc.response is not None else 0
            error = f"Slack answered {status} {code}".strip()
            if status == 429 or status >= 500 or code in _TRANSIENT_ERRORS:
                return Retry(error)
            return GiveUp(error)
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            return Retry(f"Slack could not be reached ({type(exc).__name__})")
        return None

    async def carry_out(self, item: OutboxRow) -> None:
        payload = item.payload
        if item.kind == OutboxKind.OFFER_CARD:
            assert item.id is not None
            await self._post_card(item.id, int(payload["offer_id"]))
        elif item.kind == OutboxKind.SETTLE_CARD:
            await self._settle_card(int(payload["offer_id"]))
        elif item.kind == OutboxKind.QUEUE_POST:
            await self._post_queued(payload)
        elif item.kind == OutboxKind.REMINDER:
            await self._remind(int(payload["offer_id"]))
        elif item.kind == OutboxKind.MANAGER_ALERT:
            await self._alert_manager(payload)
        elif item.kind == OutboxKind.DIGEST:
            await self._post_digest(payload)

    async def finished(
        self, session: AsyncSession, item: OutboxRow, *, error: str | None, gave_up: bool
    ) -> None:
        # Also after a failure: a DM posted before the team channel's post failed stays posted.
        if item.id is not None and item.id in self._posted:
            offer_id, posted = self._posted.pop(item.id)
            await repo.record_card_posted(session=session, offer_id=offer_id, posted=posted)

    async def _post_card(self, item_id: int, offer_id: int) -> None:
        card = await self.reader.new_offer_card(offer_id)
        if card is None or card.status != "offered":
            return  # claimed or moved before its card went out: nobody needs it now
        if card.rep_slack is None:
            raise GiveUp(f"rep {card.rep} has no slack id in the policy")
        message = offer_card(_view(card))
        posted: dict[str, str] = {}
        self._posted[item_id] = (offer_id, posted)
        if card.message_ts is None:
            channel, ts = await self._post(card.rep_slack, message)
            posted |= {"channel": channel, "message_ts": ts}
        if card.team_channel and card.team_message_ts is None:
            channel, ts = await self._post(card.team_channel, message)
            posted |= {"team_channel": channel, "team_message_ts": ts}

    async def _settle_card(self, offer_id: int) -> None:
        card = await self.reader.offer_card(offer_id)
        if card is None or card.settled is None:
            return
        if card.message_ts is None:
            async with self.db.reading() as session:
                waiting = await repo.outbox_pending(
                    session=session, dedupe_key=f"offer-card:{offer_id}"
                )
            if waiting:
                raise Retry("the card itself is not posted yet")
            return  # it never went out: nothing to update
        message = settled_card(_view(card), self._sentence(card.settled))
        await self.client.chat_update(
            channel=card.channel or "", ts=card.message_ts, text=message.text, blocks=message.blocks
        )
        if card.team_channel and card.team_message_ts:
            await self.client.chat_update(
                channel=card.team_channel,
                ts=card.team_message_ts,
                text=message.text,
                blocks=message.blocks,
            )

    async def _post_queued(self, payload: dict[str, Any]) -> None:
        channel = payload.get("channel")
        if not channel:
            return
        queued = await self.reader.queued_card(int(payload["lead_id"]))
        if queued is None:
            return  # assigned meanwhile
        view = CardView(lead_id=queued.lead_id, content=queued.content)
        await self._post(str(channel), queued_post(view, queued.queue))

    async def _remind(self, offer_id: int) -> None:
        """Half the SLA has gone: a nudge in the card's thread (or the DM, if it has none yet)."""
        card = await self.reader.offer_card(offer_id)
        if card is None or card.status != "offered":
            return  # claimed or moved meanwhile: nothing to remind of
        if card.rep_slack is None:
            raise GiveUp(f"rep {card.rep} has no slack id in the policy")
        message = reminder(_view(card))
        await self._post(card.channel or card.rep_slack, message, thread_ts=card.message_ts)

    async def _alert_manager(self, payload: dict[str, Any]) -> None:
        """The watchdog gave up on a lead: its manager gets it in a DM, with Assign."""
        manager = str(payload["manager"])
        slack_id = self.policy().slack_of(manager)
        if slack_id is None:
            raise GiveUp(f"manager {manager} has no slack id in the policy")
        queued = await self.reader.queued_card(int(payload["lead_id"]))
        if queued is None:
            return  # assigned meanwhile
        view = CardView(lead_id=queued.lead_id, content=queued.content)
        await self._post(slack_id, queued_post(view, queued.queue, alert=True))

    async def _post_digest(self, payload: dict[str, Any]) -> None:
        manager_id = str(payload["manager"])
        policy = self.policy()
        manager = policy.managers.get(manager_id)
        if manager is None:
            raise GiveUp(f"manager {manager_id} is no longer in the policy")
        if manager.slack is None:
            raise GiveUp(f"manager {manager_id} has no slack id in the policy")
        async with self.db.reading() as session:
            digest = await load_digest(
                session,
                policy,
                manager_id=manager_id,
                since=datetime.fromisoformat(payload["since"]),
                now=datetime.fromisoformat(payload["until"]),
            )
        await self._post(manager.slack, digest_message(digest, manager_tz=manager.tz))

    async def _post(
        self, channel: str, message: Message, *, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """chat.postMessage, paced per channel. Returns (channel, ts) as Slack answered."""
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            wait = self._next_post.get(channel, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_post[channel] = time.monotonic() + POST_INTERVAL_S
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                thread_ts=thread_ts,
            )
        return str(response["channel"]), str(response["ts"])

    def _sentence(self, settled: str) -> str:
        """The reader's `{rep:ID}` placeholders as Slack mentions (or escaped names)."""
        policy = self.policy()
        out: list[str] = []
        for part in settled.split("{rep:"):
            if not out:
                out.append(escape(part))
                continue
            rep_id, _, rest = part.partition("}")
            slack_id = policy.slack_of(rep_id)
            out.append(mention(slack_id) if slack_id else escape(policy.rep_name(rep_id)))
            out.append(escape(rest))
        return "".join(out)


def _view(card: OfferCard) -> CardView:
    return CardView(
        lead_id=card.lead_id,
        content=card.content,
        crm_url=card.crm_url,
        note=escape(card.note) if card.note else None,
    )
