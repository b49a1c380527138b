"""What every Slack message of leadrouter is made of: text made safe, Slack's limits, a Message.

Builders go through `slack_sdk.models` (the card's classes by way of `bot.slack.kit`, which finds
their validators faster) and end in `to_dict()`, so Slack's own validators check the limits before
anything is sent. Whatever a lead or the policy supplies (names, companies, reasons, field values,
contact details) passes through `escape` wherever Slack parses mrkdwn (and in a message's
notification text), so a company called "<!channel>" is shown as text and pings nobody. Plain text
(a header, a button) is never parsed: it goes as written, since an escape there would show "&lt;".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from slack_sdk.models.blocks import Block

from bot.card import Button, Confirm, Person, Words
from bot.slack.kit import (
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from routing.policy import Policy

# Slack's published limits. slack_sdk checks most of them when a block is serialised; the builders
# stay under them by construction so a long lead never turns into a failed post.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_VALUE = 2000  # a button's value, and so the longest lead id a card can carry
MAX_BLOCK_ID = 255
MAX_OPTIONS = 100  # of a select, and of option groups in one
MAX_OPTION_TEXT = 75
ELLIPSIS = "…"

_DATE_STYLE_FORBIDDEN = re.compile(r"[\^|<>]")


@dataclass(frozen=True, slots=True)
class Message:
    text: str  # the notification fallback
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Make a string safe to show in mrkdwn: it can no longer mention, link or format anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def who(policy: Policy, rep_id: str) -> str:
    """A rep as mrkdwn: a mention when the policy knows their Slack id, else their name."""
    slack_id = policy.slack_of(rep_id)
    return mention(slack_id) if slack_id else escape(policy.rep_name(rep_id))


def said(words: Words, policy: Policy) -> str:
    """A card's sentence as mrkdwn: its words escaped, its people mentioned (or named)."""
    return "".join(
        who(policy, part.rep_id) if isinstance(part, Person) else escape(part) for part in words
    )


def slack_date(when: datetime, style: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback for old clients."""
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no time zone; Slack dates need an aware datetime")
    if _DATE_STYLE_FORBIDDEN.search(style):
        raise ValueError(f"date style {style!r} may not contain ^, |, < or >")
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{style}|{fallback}>"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut.

    The cut never leaves half an entity ("&am") or half a Slack token ("<!date^17") behind: after
    `escape` every "&" starts an entity and every "<" starts a token we wrote ourselves.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut + ELLIPSIS


def how_many_fit(sizes: Sequence[int], budget: int, reserve: int) -> int:
    """How many leading items fit in `budget`, keeping `reserve` free for an "… and N more" line
    whenever some are left out. Callers pass a budget of at least `reserve`."""
    if sum(sizes) <= budget:
        return len(sizes)
    used = 0
    for count, size in enumerate(sizes):
        if used + size + reserve > budget:
            return count
        used += size
    return len(sizes)


def and_more(count: int) -> str:
    return f"{ELLIPSIS} and {count} more"


def mrkdwn(text: str, limit: int = MAX_TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def plain(text: str, limit: int) -> PlainTextObject:
    """Plain text: Slack shows it as written (no mentions, links or entities), so it is neither
    escaped nor cut with care for entities."""
    if len(text) > limit:
        text = text[: limit - len(ELLIPSIS)] + ELLIPSIS
    return PlainTextObject(text=text, emoji=True)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text))


def list_section(head: str, lines: Sequence[str]) -> SectionBlock:
    """`head` and as many of `lines` as fit in one section, then "… and N more"."""
    return section(list_text(head, lines))


def list_text(head: str, lines: Sequence[str]) -> str:
    """`head` and as many of `lines` as fit in one section's text, then "… and N more"."""
    text = head
    for shown, line in enumerate(lines):
        rest = len(lines) - shown
        more = f"\n{and_more(rest - 1)}" if rest > 1 else ""
        if len(text) + 1 + len(line) + len(more) > MAX_TEXT:
            return f"{text}\n{and_more(rest)}"
        text += "\n" + line
    return text


def button_value(lead_id: str) -> str:
    if not lead_id or len(lead_id) > MAX_VALUE:
        raise ValueError(
            f"lead id must be 1 to {MAX_VALUE} characters to fit a button's value; "
            f"got {len(lead_id)}"
        )
    return lead_id


def button(kind: Button, action_id: str, value: str | None = None) -> ButtonElement:
    """A card's button (`bot.card` says what it reads and asks) acting as `action_id`."""
    return ButtonElement(
        text=plain(kind.label, 75),
        action_id=action_id,
        value=value,
        style="primary" if kind.primary else None,
        confirm=_confirm_object(kind.confirm) if kind.confirm is not None else None,
    )


@cache  # the same few questions on every card: built once
def _confirm_object(confirm: Confirm) -> ConfirmObject:
    return ConfirmObject(
        title=plain(confirm.title, 100),
        text=mrkdwn(confirm.text),
        confirm=plain(confirm.confirm, 30),
        deny=plain(confirm.deny, 30),
        style="danger" if confirm.danger else None,
    )


def message_blocks(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    if len(blocks) > MAX_MESSAGE_BLOCKS:  # each message has a fixed shape; this guards future edits
        raise ValueError(f"a message may hold {MAX_MESSAGE_BLOCKS} blocks; built {len(blocks)}")
    return [b.to_dict() for b in blocks]
