"""A rep's answers to an offer's card: Claim, and Reject with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import viewer_of
from bot.service.offers import claim, reject
from bot.service.views import Move
from bot.slack import blocks
from bot.slack.home import publish_home
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.modals import reject_modal, reject_reason
from bot.slack.parts import NOT_IN_POLICY, SlackParts, action_value, tell
from routing.policy import Policy


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
        elif body.get("view") is not None:  # clicked in App Home
            await publish_home(client, parts, user)

    @app.action(ActionId.REJECT)
    async def asked_to_reject(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        lead_id = action_value(body)
        await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(lead_id, lead_id))

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
        await client.chat_postMessage(
            channel=user,
            text=f"Rejected {blocks.escape(lead_id)}: {moved(parts.policy(), [move])}",
        )


def moved(policy: Policy, moves: list[Move]) -> str:
    """Where a rep's leads went, in one sentence (ten named at most)."""
    if not moves:
        return "No open leads had to move."
    parts = []
    for move in moves[:10]:
        to = (
            f"{blocks.escape(policy.rep_name(move.to.rep))}"
            if move.to.rep
            else f"the {blocks.escape(move.to.status)} queue"
        )
        parts.append(f"{blocks.escape(move.lead_id)} → {to}")
    more = f" and {len(moves) - 10} more" if len(moves) > 10 else ""
    return (
        f"Moved {len(moves)} open lead{'s' if len(moves) != 1 else ''}: {'; '.join(parts)}{more}."
    )
