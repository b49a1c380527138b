"""What managers do in Slack: assign a queued lead with its Assign picker, and `/routing digest`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import Viewer, viewer_of
from bot.service.digests import digest_now
from bot.service.offers import assign
from bot.slack import blocks
from bot.slack.assign import assigned_lead, assignees_of
from bot.slack.digest import digest_message
from bot.slack.home import publish_home
from bot.slack.ids import ActionId
from bot.slack.parts import SlackParts, tell

ONLY_MANAGERS = "Only managers named in the routing policy can assign leads from the queue."


def register_managers(app: AsyncApp, parts: SlackParts) -> None:
    @app.action(ActionId.ASSIGN)
    async def assigned(
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: Callable[..., Awaitable[Any]] | None,
    ) -> None:
        await ack()
        answer = await _assign(parts, body)
        if (body.get("view") or {}).get("type") == "home" or respond is None:
            # App Home: no message to answer in. A refusal is said in a DM; the Home is shown
            # again either way, the lead gone from its queue once assigned.
            if isinstance(answer, str):
                await tell(client, body, answer)
            await publish_home(client, parts, body["user"]["id"])
        elif isinstance(answer, str):
            await respond(text=answer, response_type="ephemeral", replace_original=False)
        else:
            # The post (queue channel, manager's DM or digest) now says who has the lead, and
            # its picker is gone, so nobody assigns it twice from a stale message.
            text, kept = answer
            await respond(text=text, blocks=kept, replace_original=True)


async def _assign(parts: SlackParts, body: dict[str, Any]) -> str | tuple[str, list[Any]]:
    policy = parts.policy()
    action = body["actions"][0]
    lead_id = assigned_lead(str(action.get("block_id", "")))
    rep = str((action.get("selected_option") or {}).get("value") or "")
    viewer = viewer_of(policy, body["user"]["id"])
    if viewer.manager is None:
        return ONLY_MANAGERS
    if lead_id is None or not rep:
        return "Pick a rep to assign the lead to."
    chosen = policy.slack_of(rep)
    if rep not in policy.reps or chosen is None:  # a post from before the policy changed
        return f"{blocks.escape(rep)} is no longer a rep in the routing policy with a Slack id."
    view = await assign(parts.uow, lead_id, rep_id=rep, by=viewer.manager)
    due = f", to claim by {blocks.slack_date(view.sla_due_at)}" if view.sla_due_at else ""
    line = (
        f":white_check_mark: Assigned to {blocks.mention(chosen)} by "
        f"{blocks.mention(body['user']['id'])}{due}."
    )
    said = {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}
    message = body.get("message") or {}
    # The line takes the picker's place: in a digest listing ten leads, under the one assigned.
    kept = [
        said if assigned_lead(str(block.get("block_id", ""))) == lead_id else block
        for block in message.get("blocks") or []
    ]
    if said not in kept:
        kept.append(said)
    return line, kept


async def digest_on_demand(parts: SlackParts, viewer: Viewer) -> str | blocks.Message:
    """`/routing digest`: the caller's digest now, covering the time since their last one."""
    if viewer.manager is None:
        return "Digests are for managers named in the routing policy."
    policy = parts.policy()
    manager = policy.managers[viewer.manager]
    digest = await digest_now(parts.uow, manager.id)
    return digest_message(digest, manager_tz=manager.tz, assignees=assignees_of(policy))
