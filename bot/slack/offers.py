"""A rep's answers to an offer's card: Claim, and Reject with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import viewer_of
from bot.service.offers import claim, reject
from bot.service.views import LeadView, Move
from bot.slack import blocks
from bot.slack.home import publish_home
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.modals import reject_modal, reject_reason
from bot.slack.parts import NOT_IN_POLICY, SlackParts, action_value, tell
from routing.policy import Policy
from storage.models import LeadStatus


def register_offers(app: AsyncApp, parts: SlackParts) -> None:
    @app.action(ActionId.CLAIM)
    async def claimed(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user, lead_id = body["user"]["id"], action_value(body)
        viewer = viewer_of(parts.policy(), user)
        if not viewer.known:
            await tell(client, body, NOT_IN_POLICY)
            return
        result = await claim(parts.uow, lead_id, by=viewer.id or "")
        if not result.claimed:
            holder = parts.policy().rep_name(result.holder)
            mine = result.holder == viewer.rep
            await tell(
                client,
                body,
                "You already hold this lead." if mine else f"{holder} holds this lead.",
            )
        if body.get("view") is not None:  # clicked in App Home: show it as it stands now
            await publish_home(client, parts, user)

    @app.action(ActionId.REJECT)
    async def asked_to_reject(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        lead_id = action_value(body)
        title = await parts.reader.lead_title(lead_id) or f"Lead {lead_id}"
        await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(lead_id, title))

    @app.view(CallbackId.REJECT_MODAL)
    async def rejected(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        view = body["view"]
        reason = reject_reason(view["state"]["values"])
        if reason is None:
            await ack(
                response_action="errors",
                errors={BlockId.REJECT_REASON: "Pick a reason or write one."},
            )
            return
        await ack()
        user = body["user"]["id"]
        lead_id = view["private_metadata"]
        viewer = viewer_of(parts.policy(), user)
        if viewer.rep is None:
            await client.chat_postMessage(channel=user, text=NOT_IN_POLICY)
            return
        move = await reject(parts.uow, lead_id, by=viewer.rep, reason=reason)
        title = await parts.reader.lead_title(lead_id) or f"Lead {lead_id}"
        await client.chat_postMessage(channel=user, text=rejected_text(parts.policy(), title, move))
        await publish_home(client, parts, user)  # rejected from App Home: it shows the lead


def rejected_text(policy: Policy, title: str, move: Move) -> str:
    """What a rep who rejected a lead is told: which lead it was, and where it went."""
    where = where_now(policy, move.to)
    if move.to.rep:
        now = f"now with {where}"
    elif move.to.status == LeadStatus.QUEUED.value:
        now = f"waiting in {where}"
    else:
        now = f"now marked {where}"
    return f"You rejected {lead_named(title, move.lead_id)}. It is {now}."


def lead_named(title: str, lead_id: str) -> str:
    """A lead in a sentence, as mrkdwn: its card's title in bold, then its id (what `/routing
    why` takes) unless the title is made of the id already ("Lead L-2")."""
    named = f"*{blocks.clip(blocks.escape(title), blocks.MAX_HEADER)}*"
    if title != f"Lead {lead_id}":
        named += f" ({blocks.clip(blocks.escape(lead_id), 300)})"
    return named


def where_now(policy: Policy, lead: LeadView) -> str:
    """Where a lead that moved went, as mrkdwn: its rep's name, or the queue it waits in."""
    if lead.rep:
        return blocks.escape(policy.rep_name(lead.rep))
    if lead.status == LeadStatus.QUEUED.value:
        return f"the {blocks.escape(lead.queue or 'unmatched')} queue"
    return blocks.escape(lead.status)  # routed again to no one: nurture, disqualified


def moved(policy: Policy, moves: list[Move], titles: Mapping[str, str]) -> str:
    """Where a rep's leads went, in one sentence (ten named at most, by their cards' titles)."""
    if not moves:
        return "No open leads had to move."
    parts = [
        f"{lead_named(titles.get(move.lead_id, f'Lead {move.lead_id}'), move.lead_id)} → "
        f"{where_now(policy, move.to)}"
        for move in moves[:10]
    ]
    more = f" and {len(moves) - 10} more" if len(moves) > 10 else ""
    return (
        f"Moved {len(moves)} open lead{'s' if len(moves) != 1 else ''}: {'; '.join(parts)}{more}."
    )
