"""A rep's answers to an offer's card: Claim, and Reject with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import OfferNow, viewer_of
from bot.service.errors import UnknownLead
from bot.service.offers import claim, reject
from bot.service.views import LeadView, Move
from bot.slack import blocks
from bot.slack.home import publish_home
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.lead_lines import lead_named
from bot.slack.modals import reject_modal, reject_reason
from bot.slack.parts import NOT_IN_POLICY, SlackParts, action_value, tell
from routing.policy import Policy
from storage.models import LeadStatus, OfferStatus

ONLY_ITS_REP_REJECTS = "Only the rep a lead is offered to can reject it."


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
        user, lead_id = body["user"]["id"], action_value(body)
        viewer = viewer_of(parts.policy(), user)
        if viewer.rep is None:
            await tell(client, body, ONLY_ITS_REP_REJECTS if viewer.known else NOT_IN_POLICY)
            return
        offer = await parts.reader.offer_now(lead_id)
        if offer is None:
            raise UnknownLead(f"no lead with id {lead_id}")
        # Asked before the modal: a rep whose card went stale (claimed, moved on meanwhile)
        # would otherwise write a reason only to be told there was nothing to reject.
        refused = reject_refused(parts.policy(), viewer.rep, offer)
        if refused is not None:
            await tell(client, body, refused)
            if body.get("view") is not None:  # a stale App Home: show it as it stands now
                await publish_home(client, parts, user)
            return
        view = reject_modal(lead_id, offer.title)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

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
        told = rejected_text(parts.policy(), title, move)
        await client.chat_postMessage(
            channel=user, text=told.text, blocks=told.blocks, mrkdwn=told.mrkdwn
        )
        await publish_home(client, parts, user)  # rejected from App Home: it shows the lead


def reject_refused(policy: Policy, rep: str, offer: OfferNow) -> blocks.Message | None:
    """Why `rep` cannot reject the lead now, in a sentence naming it; None when they can."""
    if offer.status == OfferStatus.OFFERED.value and offer.rep == rep:
        return None
    named = lead_named(offer.title, offer.lead_id)
    if offer.status == OfferStatus.CLAIMED.value and offer.rep == rep:
        said = blocks.plainly("You claimed ") + named + blocks.plainly(": it stays yours.")
    elif offer.status == OfferStatus.CLAIMED.value and offer.rep is not None:
        holder = blocks.plainly(policy.rep_name(offer.rep))
        said = named + blocks.plainly(" is no longer offered to you: ") + holder
        said += blocks.plainly(" holds it.")
    else:
        said = named + blocks.plainly(
            " is no longer offered to you, so there is nothing to reject."
        )
    return blocks.one_line(said)


def rejected_text(policy: Policy, title: str, move: Move) -> blocks.Message:
    """What a rep who rejected a lead is told: which lead it was, and where it went."""
    where = where_now(policy, move.to)
    if move.to.rep:
        now = blocks.plainly("now with ") + where
    elif move.to.status == LeadStatus.QUEUED.value:
        now = blocks.plainly("waiting in ") + where
    else:
        now = blocks.plainly("now marked ") + where
    said = blocks.plainly("You rejected ") + lead_named(title, move.lead_id)
    return blocks.one_line(said + blocks.plainly(". It is ") + now + blocks.plainly("."))


def where_now(policy: Policy, lead: LeadView) -> blocks.Said:
    """Where a lead that moved went: its rep's name, or the queue it waits in."""
    if lead.rep:
        return blocks.plainly(policy.rep_name(lead.rep))
    if lead.status == LeadStatus.QUEUED.value:
        return blocks.plainly(f"the {lead.queue or 'unmatched'} queue")
    return blocks.plainly(lead.status)  # routed again to no one: nurture, disqualified


def moved(policy: Policy, moves: list[Move], titles: Mapping[str, str]) -> blocks.Said:
    """Where a rep's leads went, in one sentence (ten named at most, by their cards' titles)."""
    if not moves:
        return blocks.plainly("No unclaimed leads had to move.")
    said = blocks.plainly(f"Moved {len(moves)} unclaimed lead{'s' if len(moves) != 1 else ''}: ")
    for number, move in enumerate(moves[:10]):
        title = titles.get(move.lead_id, f"Lead {move.lead_id}")
        if number:
            said += blocks.plainly("; ")
        said += lead_named(title, move.lead_id) + blocks.plainly(" → ") + where_now(policy, move.to)
    more = f" and {len(moves) - 10} more" if len(moves) > 10 else ""
    return said + blocks.plainly(f"{more}.")
