"""`/routing`: parsed (`bot.slack.commands`), answered in one ephemeral response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.models.blocks import Block
from slack_sdk.models.blocks.block_elements import RichTextElement

from bot.card import lead_title
from bot.reading import NotVisible, Viewer, viewer_of
from bot.slack import blocks
from bot.slack.availability import pto
from bot.slack.commands import USAGE, Digest, Help, Pto, Queue, Versions, Why, parse_command
from bot.slack.lead_lines import lead_named, to_contact_head, to_contact_lines
from bot.slack.managers import digest_on_demand
from bot.slack.parts import NOT_IN_POLICY, SlackParts, respond_privately
from bot.slack.policy_versions import versions_answer
from routing.durations import format_duration
from routing.policy import Policy

MAX_STORY = 12_000  # characters of a decision's explanation; a long trace is far shorter
MAX_EVENTS = 100  # of a lead's story, the first, then "… and N more"


def register_routing_command(app: AsyncApp, parts: SlackParts) -> None:
    @app.command("/routing")
    async def routing_command(
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        await ack()
        await respond_privately(respond, await _answer(parts, command))


async def _answer(parts: SlackParts, command: dict[str, Any]) -> str | blocks.Message:
    policy = parts.policy()
    viewer = viewer_of(policy, command["user_id"])
    tz = _viewer_tz(policy, viewer)
    parsed = parse_command(command.get("text") or "", now=parts.clock(), tz=tz)
    if isinstance(parsed, Help):
        return f"{blocks.escape(parsed.problem)}\n\n{USAGE}" if parsed.problem else USAGE
    if not viewer.known:
        return NOT_IN_POLICY
    if isinstance(parsed, Pto):
        return await pto(parts, viewer, parsed)
    if isinstance(parsed, Why):
        return await _why(parts, viewer, parsed.lead)
    if isinstance(parsed, Queue):
        return await _queue(parts, viewer)
    if isinstance(parsed, Versions):
        return await versions_answer(parts, viewer, parsed)
    assert isinstance(parsed, Digest)
    return await digest_on_demand(parts, viewer)


def _viewer_tz(policy: Policy, viewer: Viewer) -> Any:
    if viewer.rep is not None:
        return policy.reps[viewer.rep].tz
    if viewer.manager is not None:
        return policy.managers[viewer.manager].tz
    return policy.timezone


async def _why(parts: SlackParts, viewer: Viewer, reference: str) -> str | blocks.Message:
    """A lead's story: the explanation as monospaced text, then what happened since. Rich text,
    so whatever the lead wrote (its company, its id) is shown as written."""
    try:
        story = await parts.reader.story(reference, viewer)
    except NotVisible:
        story = None  # said as for no lead at all: a rep learns nothing of leads not theirs
    if story is None:
        return (
            f"No lead of yours found for {blocks.escape(reference)} (try its id, e-mail or "
            "CRM id; a manager can look up any lead)."
        )
    parts_: list[Block] = [blocks.preformatted(story.explanation, MAX_STORY)]
    lines: list[list[RichTextElement]] = []
    decided_by = story.decided_by
    if decided_by is not None:
        line = [
            blocks.literal("Policy version ", italic=True),
            blocks.literal(decided_by.version, 100, code=True),
        ]
        if decided_by.activated_at is not None:
            line += [blocks.literal(", activated ", italic=True)]
            line.append(blocks.date_element(decided_by.activated_at))
            if decided_by.activated_by:
                line.append(blocks.literal(f" by {decided_by.activated_by}", 300, italic=True))
        lines.append(line)
    if story.events:
        lines.append([blocks.literal("Since then", bold=True)])
        shown = story.events[:MAX_EVENTS]
        for event in shown:
            what = blocks.literal(event.what, 1000)
            lines.append(
                [blocks.literal("• "), blocks.date_element(event.at), blocks.literal(": "), what]
            )
        if len(story.events) > len(shown):
            lines.append([blocks.literal(blocks.and_more(len(story.events) - len(shown)))])
    lines.extend([blocks.literal(note, 1000, italic=True)] for note in story.notes)
    if lines:
        parts_.append(blocks.rich(lines))
    return blocks.Message(
        text="How the lead was routed, and what happened since",
        blocks=blocks.message_blocks(parts_),
    )


async def _queue(parts: SlackParts, viewer: Viewer) -> str | blocks.Message:
    """A manager's unmatched queue, a rep's open leads: each lead as its card titles it, as
    written (rich text), as many as one block holds."""
    now = parts.clock()
    if viewer.manager is not None:
        size, oldest = await parts.reader.queued_leads()
        if size == 0:
            return "The unmatched queue is empty."
        head = f"Unmatched queue: {size} lead{'s' if size != 1 else ''}"
        if size > len(oldest):
            head += f" (the oldest {len(oldest)})"
        lines = []
        several = len({lead.queue for lead in oldest}) > 1  # as the digest: name them then
        for lead in oldest:
            waited = format_duration(int((now - lead.created_at).total_seconds()))
            line = [blocks.literal("• "), blocks.literal(lead.external_id, 300)]
            for fact in (lead.company, lead.source):
                if fact:
                    line += [blocks.literal(" · "), blocks.literal(fact, 150)]
            if several and lead.queue:
                line += [blocks.literal(" · in "), blocks.literal(lead.queue, 150)]
            line.append(blocks.literal(f" · waiting {waited}"))
            lines.append(line)
        return _listed((head, lines))
    assert viewer.rep is not None
    offers = await parts.reader.open_offers(viewer.rep)
    to_contact = await parts.reader.to_contact(viewer.rep)
    if not offers and not to_contact:
        return "You have no leads to claim or to contact."
    lists: list[tuple[str, list[list[RichTextElement]]]] = []
    if offers:
        lines = []
        for offer, lead in offers:
            said = blocks.plainly("• ") + lead_named(
                lead_title(lead.facts, lead.external_id), lead.external_id
            )
            if offer.sla_due_at:
                said += blocks.plainly(" · claim by ") + blocks.dated(offer.sla_due_at)
            lines.append(list(said.rich))
        lists.append((f"Your leads to claim: {len(offers)}", lines))
    if to_contact:
        lists.append((to_contact_head(len(to_contact)), to_contact_lines(to_contact, now)))
    return _listed(*lists)


def _listed(*lists: tuple[str, list[list[RichTextElement]]]) -> blocks.Message:
    """Lists under their heads, a block each; the notification's text is the heads."""
    shown = [
        blocks.rich_list_text([blocks.literal(head, bold=True)], lines) for head, lines in lists
    ]
    text = ". ".join(head for head, _ in lists)
    return blocks.Message(text=text, blocks=blocks.message_blocks(shown))
