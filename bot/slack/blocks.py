"""What every Slack message of leadrouter is made of: text made safe, Slack's limits, a Message.

Builders go through `slack_sdk.models` (the card's classes by way of `bot.slack.kit`, which finds
their validators faster) and end in `to_dict()`, so Slack's own validators check the limits before
anything is sent. Whatever a lead or the policy supplies (names, companies, reasons, field values,
contact details) goes where Slack shows text as written: a `rich_text` block's `text` elements
(`literal`, with our own labels bold by style, links, mentions and dates as elements of their own)
or a `plain_text` object (a header, a button). mrkdwn has no escape for `*`, `_`, `~` or a
backtick, so a company called "*URGENT* Corp" in mrkdwn would show bold; in rich text it shows its
stars, and "<!channel>" pings nobody. What mrkdwn is left holds only our own words, or passes the
lead's through `escape` (a message's notification text, posted with mrkdwn off where Slack allows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from slack_sdk.models.blocks import Block, RichTextElementParts
from slack_sdk.models.blocks.block_elements import RichTextElement

from bot.card import Button, Confirm, Person, Words
from bot.slack.kit import (
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
    RichDate,
    RichEmoji,
    RichLink,
    RichText,
    RichTextBlock,
    RichTextPreformattedElement,
    RichTextSectionElement,
    RichUser,
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
    # False: `text` names what a lead wrote, and goes with mrkdwn off (chat.postMessage's
    # `mrkdwn`), so Slack formats none of it; it still holds `escape`d text and maybe mentions.
    mrkdwn: bool = True


def escape(text: str) -> str:
    """Make a string safe to show in mrkdwn: it can no longer mention, link or format anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def who(policy: Policy, rep_id: str) -> str:
    """A rep as mrkdwn: a mention when the policy knows their Slack id, else their name."""
    slack_id = policy.slack_of(rep_id)
    return mention(slack_id) if slack_id else escape(policy.rep_name(rep_id))


@dataclass(frozen=True, slots=True)
class Said:
    """A line of ours that names people or quotes someone: as rich text for the blocks, and as
    safe mrkdwn for a notification's text (`+` joins two)."""

    rich: tuple[RichTextElement, ...]
    text: str

    def __add__(self, other: Said) -> Said:
        return Said(self.rich + other.rich, self.text + other.text)


def plainly(text: str) -> Said:
    """Words shown as written."""
    return Said((literal(text),) if text else (), escape(text))


def strong(text: str, limit: int = MAX_TEXT) -> Said:
    """Words in bold, shown as written (the notification's text leaves the bold out)."""
    return Said((literal(text, limit, bold=True),), escape(cut(text, limit)))


def emoji_said(name: str) -> Said:
    return Said((emoji(name),), f":{name}:")


def mentioned(user_id: str) -> Said:
    return Said((RichUser(user_id=user_id),), mention(user_id))


def dated(when: datetime) -> Said:
    """A Slack date, in each reader's own time zone."""
    return Said((date_element(when),), slack_date(when))


def one_line(said: Said) -> Message:
    """A sentence of ours quoting what a lead wrote, as a message: rich text, its notification
    text with mrkdwn off."""
    return Message(
        text=clip(said.text, MAX_TEXT), blocks=message_blocks([rich([said.rich])]), mrkdwn=False
    )


def say(words: Words, policy: Policy) -> Said:
    """A card's sentence both ways (`told` and `said`)."""
    return Said(tuple(told(words, policy)), said(words, policy))


def said(words: Words, policy: Policy) -> str:
    """A card's sentence as mrkdwn: its words escaped, its people mentioned (or named)."""
    return "".join(
        who(policy, part.rep_id) if isinstance(part, Person) else escape(part) for part in words
    )


def who_element(policy: Policy, rep_id: str) -> RichTextElement:
    """A rep in rich text: a mention when the policy knows their Slack id, else their name."""
    slack_id = policy.slack_of(rep_id)
    if slack_id:
        return RichUser(user_id=slack_id)
    return literal(policy.rep_name(rep_id), 150)


def told(words: Words, policy: Policy) -> list[RichTextElement]:
    """A card's sentence as rich text: its words as written, its people mentioned (or named)."""
    return [
        who_element(policy, part.rep_id) if isinstance(part, Person) else literal(part)
        for part in words
        if isinstance(part, Person) or part
    ]


def slack_date(when: datetime, style: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback for old clients."""
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no time zone; Slack dates need an aware datetime")
    if _DATE_STYLE_FORBIDDEN.search(style):
        raise ValueError(f"date style {style!r} may not contain ^, |, < or >")
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{style}|{fallback}>"


def date_element(when: datetime, style: str = "{date_short_pretty} at {time}") -> RichTextElement:
    """`slack_date` as a rich text element."""
    token = slack_date(when, style)  # checks the zone and the style
    fallback = token[token.index("|") + 1 : -1]
    return RichDate(timestamp=int(when.timestamp()), format=style, fallback=fallback)


def literal(
    text: str,
    limit: int = MAX_TEXT,
    *,
    bold: bool = False,
    italic: bool = False,
    code: bool = False,
) -> RichTextElement:
    """Text Slack shows exactly as written, cut to `limit`: no mention, link, entity or
    formatting in it takes effect. `bold`, `italic` and `code` style the whole of it."""
    styled = None
    if bold or italic or code:
        styled = RichTextElementParts.TextStyle(
            bold=bold or None, italic=italic or None, code=code or None
        )
    return RichText(text=cut(text, limit), style=styled)


def link_element(url: str, label: str, limit: int = MAX_TEXT) -> RichTextElement:
    """A link whose text is shown as written."""
    return RichLink(url=url, text=cut(label, limit))


def emoji(name: str) -> RichTextElement:
    return RichEmoji(name=name)


def rich(
    lines: Sequence[Sequence[RichTextElement]], *, block_id: str | None = None
) -> RichTextBlock:
    """Lines of rich text as one block (each line's elements side by side), cut to `MAX_TEXT`
    characters of text in all, as a section's text is: Slack documents no limit of its own for
    rich text, and refuses a message whose blocks are too long in all."""
    elements: list[RichTextElement] = []
    for number, line in enumerate(lines):
        if number:
            elements.append(RichText(text="\n"))
        # Slack refuses an empty text element (a lead without a reason, say): left out.
        elements.extend(e for e in line if not isinstance(e, RichTextElementParts.Text) or e.text)
    return RichTextBlock(
        block_id=block_id, elements=[RichTextSectionElement(elements=_within(elements, MAX_TEXT))]
    )


_Texts = (RichTextElementParts.Text, RichTextElementParts.Link)


def _within(elements: list[RichTextElement], budget: int) -> list[RichTextElement]:
    """The leading `elements` whose text fits in `budget` characters, the last one cut (a copy:
    the same words may go in another block)."""
    kept: list[RichTextElement] = []
    for element in elements:
        size = _size(element)
        if size <= budget:
            kept.append(element)
            budget -= size
            continue
        if budget > len(ELLIPSIS):
            if isinstance(element, RichTextElementParts.Text):
                kept.append(RichText(text=cut(element.text, budget), style=element.style))
            elif isinstance(element, RichTextElementParts.Link):
                kept.append(link_element(element.url, element.text or element.url, budget))
        break
    return kept


def _size(element: RichTextElement) -> int:
    """An element's length in a block's text: a mention or a date counted as roughly what it
    stands for."""
    if isinstance(element, _Texts):
        return len(element.text or "")
    if isinstance(element, RichTextElementParts.Date):
        return len(element.fallback or "")
    return len("@someone")


def preformatted(text: str, limit: int) -> RichTextBlock:
    """A block of monospaced text, shown as written (nothing in it can end the block early)."""
    element = RichTextPreformattedElement(elements=[literal(text, limit)])
    return RichTextBlock(elements=[element])


def rich_list_text(
    head: Sequence[RichTextElement], lines: Sequence[Sequence[RichTextElement]]
) -> RichTextBlock:
    """`head` and as many of `lines` as fit in `MAX_TEXT` characters of text, then "… and N
    more": `list_section`'s limit, kept for rich text."""

    def size(line: Sequence[RichTextElement]) -> int:
        return sum(_size(element) for element in line) + 1  # and its line's end

    room = MAX_TEXT - size(head)
    more = len(and_more(len(lines))) + 1
    count = how_many_fit([size(line) for line in lines], room, reserve=more)
    shown = [list(head), *(list(line) for line in lines[:count])]
    if count < len(lines):
        shown.append([literal(and_more(len(lines) - count))])
    return rich(shown)


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut: for text shown as
    written (rich text, plain text), where nothing is an entity or token."""
    if len(text) > limit:
        return text[: limit - len(ELLIPSIS)] + ELLIPSIS
    return text


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
    return PlainTextObject(text=cut(text, limit), emoji=True)


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
