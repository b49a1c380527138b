"""A rep's availability from Slack: I'm out (a card, App Home), I'm back, and `/routing pto`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.home import ContactLead
from bot.reading import Viewer, viewer_of
from bot.service.availability import set_back, set_out_of_office
from bot.service.views import Move
from bot.slack import blocks
from bot.slack.commands import Pto
from bot.slack.home import publish_home
from bot.slack.ids import ActionId
from bot.slack.offers import moved
from bot.slack.parts import NOT_IN_POLICY, SlackParts, clicked_in, tell
from routing.policy import Policy
from routing.working_time import next_working_start

OUT_ONLY_FROM_YOUR_CARD = (
    "That button is on a card in a channel and would mark out whoever clicks it, so it does "
    "nothing here. To go out yourself, use App Home or `/routing pto`."
)


def register_availability(app: AsyncApp, parts: SlackParts) -> None:
    @app.action(ActionId.MARK_OOO)
    async def mark_out(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        # Only the rep's own card (their DM) carries I'm out; a channel copy posted before its
        # buttons were taken off still does, and there it must not act on a bystander.
        channel = clicked_in(body)
        if channel is not None and not channel.startswith("D"):
            await tell(client, body, OUT_ONLY_FROM_YOUR_CARD)
            return
        await tell(client, body, await go_out(parts, body["user"]["id"]))

    @app.action(ActionId.HOME_AWAY)
    async def home_away(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        # Told as from a card: which leads went where (in a DM, App Home having no thread).
        await tell(client, body, await go_out(parts, body["user"]["id"]))
        await publish_home(client, parts, body["user"]["id"])

    @app.action(ActionId.HOME_BACK)
    async def home_back(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        viewer = viewer_of(parts.policy(), body["user"]["id"])
        if viewer.rep is not None:
            await set_back(parts.uow, viewer.rep)
        await publish_home(client, parts, body["user"]["id"])


async def go_out(
    parts: SlackParts, slack_user: str, until: datetime | None = None
) -> str | blocks.Message:
    """The rep is out until the start of their next working day (or until further notice when
    they keep no working hours); their unclaimed offers move on."""
    policy = parts.policy()
    viewer = viewer_of(policy, slack_user)
    if viewer.rep is None:
        return NOT_IN_POLICY
    rep = policy.reps[viewer.rep]
    if until is None and rep.hours is not None:
        until = next_working_start(rep.hours, parts.clock())
    moves = await set_out_of_office(
        parts.uow, viewer.rep, until=until, reason="marked out in Slack", by=viewer.rep
    )
    titles = await parts.reader.lead_titles([move.lead_id for move in moves[:10]])
    said = blocks.plainly("You're out of office ") + _until(until) + blocks.plainly(". ")
    to_contact = await parts.reader.to_contact(viewer.rep)
    kept = claimed_stay(to_contact, policy, parts.clock(), name=None)
    return blocks.one_line(said + moved(policy, moves, titles) + kept)


def claimed_stay(
    leads: Sequence[ContactLead], policy: Policy, now: datetime, *, name: str | None
) -> blocks.Said:
    """What becomes of the leads a rep going out claimed and has yet to contact: they stay the
    rep's (nobody can move a claimed lead), until their contact deadlines where the policy moves
    an untouched one on then; so the rep, or the manager who marked them out, knows to see to
    them, and by when. `name`: the rep's, said to someone else; None to the rep."""
    if not leads:
        return blocks.plainly("")
    one = len(leads) == 1
    head = "The lead" if one else f"The {len(leads)} leads"
    claimed = "you claimed and have" if name is None else f"{name} claimed and has"
    owner = "yours" if name is None else "theirs"
    said = blocks.plainly(f" {head} {claimed} yet to contact {'stays' if one else 'stay'} {owner}")
    if policy.sla.reassign_on_contact_miss:
        deadlines = "its contact deadline" if one else "their contact deadlines"
        said += blocks.plainly(f" until {deadlines}, then {'moves' if one else 'move'} on")
    first = min((lead.due_at for lead in leads if lead.due_at is not None), default=None)
    if first is not None:
        was = "was" if first <= now else "is"
        said += blocks.plainly(f"; {'it' if one else 'the first'} {was} due ") + blocks.dated(first)
    return said + blocks.plainly(".")


def _until(when: datetime | None) -> blocks.Said:
    if when is None:
        return blocks.plainly("until further notice")
    return blocks.plainly("until ") + blocks.dated(when)


async def pto(parts: SlackParts, viewer: Viewer, command: Pto) -> str | blocks.Message:
    """`/routing pto`: the caller (or, for a manager, the rep they mention) is out or back. A rep
    someone else marks is told so in a DM, by whom and where their leads went (otherwise they
    would find their cards taken and no word why): queued with the change, posted by the
    outbox (`outbox_items.absence_told`), so the manager's answer never waits for Slack."""
    policy = parts.policy()
    target = viewer.rep
    if command.user is not None:
        target = policy.rep_of_slack(command.user)
        if target is None:
            return f"{blocks.mention(command.user)} is not a rep in the routing policy."
        if target != viewer.rep and viewer.manager is None:
            return "Only managers can set someone else's out of office."
    if target is None:
        return "You are not a rep in the routing policy, so there is nothing to mark."
    name = "You're" if target == viewer.rep else f"{blocks.escape(policy.rep_name(target))} is"
    if command.back:
        await set_back(parts.uow, target, by=viewer.id)
        return f"{name} available again."
    setter = policy.managers[viewer.manager].name if viewer.manager else policy.rep_name(viewer.id)
    marked = target != viewer.rep
    reason = f"set by {setter} with /routing pto" if marked else "set with /routing pto"
    moves = await set_out_of_office(
        parts.uow, target, until=command.until, reason=reason, by=viewer.id
    )
    titles = await parts.reader.lead_titles([move.lead_id for move in moves[:10]])
    who = "You're" if target == viewer.rep else f"{policy.rep_name(target)} is"
    said = blocks.plainly(f"{who} out of office ") + _until(command.until) + blocks.plainly(". ")
    to_contact = await parts.reader.to_contact(target)
    named = policy.rep_name(target) if marked else None
    kept = claimed_stay(to_contact, policy, parts.clock(), name=named)
    return blocks.one_line(said + moved(policy, moves, titles) + kept)


def absence_dm(
    policy: Policy,
    *,
    by: str,
    away: bool,
    until: datetime | None,
    moves: list[Move],
    titles: Mapping[str, str],
    now: datetime,
    to_contact: Sequence[ContactLead] = (),
) -> blocks.Message:
    """The DM to a rep `by` marked out of office (`moves`: where their leads went;
    `to_contact`: the leads they claimed and have yet to contact, which stay theirs, as of
    `now`) or back."""
    setter = policy.managers[by].name if by in policy.managers else policy.rep_name(by)
    if not away:
        return blocks.one_line(blocks.plainly(f"{setter} marked you available again."))
    told = blocks.plainly(f"{setter} marked you out of office ") + _until(until)
    kept = claimed_stay(to_contact, policy, now, name=None)
    return blocks.one_line(told + blocks.plainly(". ") + moved(policy, moves, titles) + kept)
