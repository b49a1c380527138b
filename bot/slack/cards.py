"""A lead's card as Block Kit: the rep's, its team channel's copy, a queue's post, the settled card
and the reminder. What a card says is `bot.card`'s; this lays it out, in reading order, and makes
every lead-supplied string safe on its way to Slack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from slack_sdk.models.blocks import Block

from bot.card import (
    CLAIM,
    FOR_THE_REP,
    FOR_THE_TEAM,
    REJECT,
    CardContent,
    Contact,
    Wording,
    deadline_line,
    go_out,
    queued_wording,
    settled_wording,
)
from bot.slack.assign import NOBODY_TO_ASSIGN, Assignee, assign_control
from bot.slack.blocks import (
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_HEADER,
    MAX_TEXT,
    Message,
    and_more,
    button,
    button_value,
    clip,
    escape,
    message_blocks,
    mrkdwn,
    plain,
    section,
    slack_date,
)
from bot.slack.ids import ActionId, BlockId
from bot.slack.kit import ActionsBlock, ButtonElement, ContextBlock, HeaderBlock, SectionBlock

MAX_LABEL = 300  # a contact link's text
MAX_LINK = MAX_FIELD_TEXT - 20  # a contact link, with its label, in one field

_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+$")  # a dotted name (IDNs too), or an IPv4 address
_EXTENSION = re.compile(r"(?i)\s*(ext\.?|extension|x|#)\s*\d+\s*$")


@dataclass(frozen=True, slots=True)
class CardView:
    lead_id: str  # the lead's external id: every button's value
    content: CardContent
    crm_url: str | None = None
    # Already-safe mrkdwn: how a reassigned lead came to its rep ("rejected by Ann · waiting 5m").
    note: str | None = None
    assignee: str | None = None  # already-safe mrkdwn naming the rep: a mention, or their name
    keeps_hours: bool = True  # the rep has working hours: I'm out lasts until the next one


def claim_button(lead_id: str) -> ButtonElement:
    return button(CLAIM, ActionId.CLAIM, button_value(lead_id))


def reject_button(lead_id: str) -> ButtonElement:
    return button(REJECT, ActionId.REJECT, button_value(lead_id))


def offer_card(view: CardView) -> Message:
    """The card a rep gets when a lead is offered to them: who it is and how to reach them, the
    facts, why them, three buttons (`bot.card.FOR_THE_REP` says who sees what)."""
    value = button_value(view.lead_id)
    blocks = _card_blocks(view, FOR_THE_REP, status=None)
    out = button(go_out(keeps_hours=view.keeps_hours), ActionId.MARK_OOO, value)
    blocks.append(
        ActionsBlock(
            block_id=BlockId.CARD_ACTIONS,
            elements=[claim_button(value), reject_button(value), out],
        )
    )
    text = clip(f"New lead for you: {named(view)}", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks))


def team_copy(view: CardView) -> Message:
    """The offer as the team's channel sees it: whose lead it is, and no buttons."""
    who = view.assignee or "a rep"
    blocks = _card_blocks(view, FOR_THE_TEAM, status=f"New lead for {who}")
    text = clip(f"New lead for {who}: {named(view)}", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks))


def settled_card(
    view: CardView, status: str, *, team: bool = False, moved: bool = False
) -> Message:
    """The card (or with `team`, its copy in the team's channel) once nobody needs to act on it;
    `status` is mrkdwn the caller made safe, saying what happened (`bot.card.Settlement`)."""
    blocks = _card_blocks(view, settled_wording(team=team, moved=moved), status=status)
    text = clip(f"{named(view)}: {status}", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks))


def queued_post(
    view: CardView, queue: str, assignees: Sequence[Assignee], *, alert: bool = False
) -> Message:
    """A lead waiting in a queue with an Assign picker of `assignees`: posted to the queue's
    channel, or with `alert` to a manager when the SLA watchdog gave up on it."""
    status = f"Waiting in the *{escape(queue)}* queue"
    if alert:
        status = f":rotating_light: Nobody claimed this lead in time. {status}"
    blocks = _card_blocks(view, queued_wording(alert=alert), status=status)
    if assignees:
        blocks.append(assign_control(view.lead_id, assignees))
    else:
        blocks.append(ContextBlock(elements=[mrkdwn(NOBODY_TO_ASSIGN)]))
    title = named(view)
    text = clip(f"{title}: waiting in the {escape(queue)} queue", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks))


def reminder(view: CardView) -> Message:
    """Half the SLA has passed and the lead is still unclaimed: one line, in the card's thread."""
    due = view.content.sla_due_at
    when = f": claim it by {slack_date(due)}" if due is not None else ""
    text = clip(
        f":hourglass_flowing_sand: Still yours to claim, *{named(view)}*{when}",
        MAX_TEXT,
    )
    claim = claim_button(view.lead_id)
    blocks = [section(text), ActionsBlock(block_id=BlockId.CARD_ACTIONS, elements=[claim])]
    return Message(text=text, blocks=message_blocks(blocks))


def named(view: CardView) -> str:
    """The lead's title in a card's words (its notification, a reminder), as mrkdwn cut as the
    card's header is: a notification shows a line, not a 1,000-character company."""
    return clip(escape(view.content.heading), MAX_HEADER)


# --- the parts every card shares -----------------------------------------------------------------


def _card_blocks(view: CardView, wording: Wording, *, status: str | None) -> list[Block]:
    """The blocks every card shares, in reading order, as `wording` words them for its reader."""
    content = view.content
    blocks: list[Block] = [HeaderBlock(text=plain(content.heading, MAX_HEADER))]
    if status is not None:
        blocks.append(section(status))
    contact = _contact(content.contact, personal=wording.personal)
    if contact is not None:
        blocks.append(contact)
    fields = _fields(content.fields)
    if fields is not None:
        blocks.append(fields)
    if view.note and wording.reassigned:
        blocks.append(section(f"{wording.reassigned}: {view.note}"))
    if wording.why is not None:
        blocks.append(section(f"*{wording.why}:* {escape(content.reason)}"))
    line = deadline_line(content, wording.deadline) if wording.deadline else None
    if line is not None:
        words, due, within = line
        blocks.append(section(f"{words} {slack_date(due)}" + (f" ({within})" if within else "")))
    blocks.append(_footer(view))
    return blocks


def _fields(fields: Sequence[tuple[str, str]]) -> SectionBlock | None:
    if not fields:
        return None
    shown = fields if len(fields) <= MAX_FIELDS else fields[: MAX_FIELDS - 1]
    texts = [
        mrkdwn(f"*{clip(escape(label), 100)}*\n{escape(value)}", MAX_FIELD_TEXT)
        for label, value in shown
    ]
    if len(shown) < len(fields):
        texts.append(mrkdwn(f"_{and_more(len(fields) - len(shown))}_", MAX_FIELD_TEXT))
    return SectionBlock(fields=texts)


def _contact(contact: Contact, *, personal: bool) -> SectionBlock | None:
    """The lead's contact details as links a rep can click: with `personal`, the e-mail and phone
    too."""
    shown: list[tuple[str, str]] = []
    if personal and contact.email:
        shown.append(("E-mail", _mailto(contact.email)))
    if personal and contact.phone:
        shown.append(("Phone", _tel(contact.phone)))
    if contact.website:
        shown.append(("Website", _website(contact.website)))
    if not shown:
        return None
    return SectionBlock(
        block_id=BlockId.CARD_CONTACT,
        fields=[mrkdwn(f"*{label}*\n{text}", MAX_FIELD_TEXT) for label, text in shown],
    )


def _footer(view: CardView) -> ContextBlock:
    """The lead's id (what `/routing why` takes) and its CRM record, when there is one."""
    parts = [f"Lead {clip(escape(view.lead_id), 300)}"]
    if view.crm_url:
        parts.append(_crm_link(view.crm_url))
    return ContextBlock(elements=[mrkdwn(" · ".join(parts))])


# --- links ---------------------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """An http(s) URL as a link target: "|" and ">" would end the link early; "&" is escaped as
    Slack itself writes links."""
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def _crm_link(url: str) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or _URL_FORBIDDEN.search(url)
    ):
        raise ValueError(f"CRM link {url[:100]!r} is not an http(s) URL")
    link = f"<{_safe_url(url)}|Open in CRM>"
    if len(link) > MAX_TEXT:
        raise ValueError(f"CRM link is {len(url)} characters, too long for a Slack message")
    return link


def _link(target: str | None, label: str) -> str:
    """`label` (already escaped) as a link to `target`, or as text when there is no target or the
    link would not fit a field."""
    if target is None:
        return label
    link = f"<{target}|{label}>"
    return link if len(link) <= MAX_LINK else label


def _mailto(email: str) -> str:
    # Percent-encoded whole: nothing an address holds can end the link or start a token.
    return _link(f"mailto:{quote(email, safe='@+.-_~')}", clip(escape(email), MAX_LABEL))


def _tel(phone: str) -> str:
    label = clip(escape(phone), MAX_LABEL)
    number = _EXTENSION.sub("", phone)
    digits = re.sub(r"\D", "", number)
    if not 3 <= len(digits) <= 20:
        return label  # "ask reception": nothing to dial
    plus = "+" if number.lstrip().startswith("+") else ""
    return _link(f"tel:{plus}{digits}", label)


def _website(website: str) -> str:
    label = clip(escape(_SCHEME.sub("", website).rstrip("/")), MAX_LABEL)
    url = website if _SCHEME.match(website) else f"https://{website}"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  # raises for "javascript:alert(1)" read as host and port
    except ValueError:
        return label
    host = parts.hostname or ""
    if (
        parts.scheme.lower() not in ("http", "https")
        or not _HOST.match(host)
        or _URL_FORBIDDEN.search(url)
    ):
        return label
    return _link(_safe_url(url), label)
