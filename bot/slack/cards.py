"""A lead's card as Block Kit: the rep's, its team channel's copy, a queue's post, the settled card
and the reminder. What a card says is `bot.card`'s; this lays it out, in reading order, and puts
every lead-supplied string where Slack shows it as written (rich text, plain text), never in
mrkdwn, where `*`, `_`, `~` and backticks would format it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from slack_sdk.models.blocks import Block
from slack_sdk.models.blocks.block_elements import RichTextElement

from bot.card import (
    CLAIM,
    FOR_THE_REP,
    FOR_THE_TEAM,
    REJECT,
    CameFrom,
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
    Said,
    and_more,
    button,
    button_value,
    clip,
    date_element,
    emoji,
    emoji_said,
    escape,
    link_element,
    literal,
    message_blocks,
    mrkdwn,
    plain,
    plainly,
    rich,
    section,
    slack_date,
    strong,
)
from bot.slack.ids import ActionId, BlockId
from bot.slack.kit import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    RichTextBlock,
)

MAX_LABEL = 300  # a contact link's text
MAX_LINK = MAX_FIELD_TEXT - 20  # a contact link's target; a longer one is shown as text
MAX_WHY = 1000  # why a manager is alerted of a queued lead (Slack's own refusal, quoted)

_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+$")  # a dotted name (IDNs too), or an IPv4 address
_EXTENSION = re.compile(r"(?i)\s*(ext\.?|extension|x|#)\s*\d+\s*$")


@dataclass(frozen=True, slots=True)
class CardView:
    lead_id: str  # the lead's external id: every button's value
    content: CardContent
    crm_url: str | None = None
    note: CameFrom | None = None  # how a reassigned lead came to its rep
    assignee: Said | None = None  # the rep: a mention, or their name
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
    return Message(text=text, blocks=message_blocks(blocks), mrkdwn=False)


def team_copy(view: CardView) -> Message:
    """The offer as the team's channel sees it: whose lead it is, and no buttons."""
    who = view.assignee or plainly("a rep")
    blocks = _card_blocks(view, FOR_THE_TEAM, status=plainly("New lead for ") + who)
    text = clip(f"New lead for {who.text}: {named(view)}", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks), mrkdwn=False)


def settled_card(
    view: CardView, status: Said, *, team: bool = False, moved: bool = False
) -> Message:
    """The card (or with `team`, its copy in the team's channel) once nobody needs to act on it;
    `status` says what happened (`bot.card.Settlement`). Its text is the status alone:
    chat.update cannot turn mrkdwn off for it, so it names no lead, and an update notifies
    nobody."""
    blocks = _card_blocks(view, settled_wording(team=team, moved=moved), status=status)
    return Message(text=clip(status.text, MAX_TEXT), blocks=message_blocks(blocks))


def queued_post(
    view: CardView,
    queue: str,
    assignees: Sequence[Assignee],
    *,
    alert: bool = False,
    why: str | None = None,
) -> Message:
    """A lead waiting in a queue with an Assign picker of `assignees`: posted to the queue's
    channel, or with `alert` to a manager when the SLA watchdog gave up on it (or, `why`, for
    another reason: its card or its queue post could not go out)."""
    status = plainly("Waiting in the ") + strong(queue, 150) + plainly(" queue")
    if alert:
        said = f" {clip(why, MAX_WHY)}. " if why else " Nobody claimed this lead in time. "
        status = emoji_said("rotating_light") + plainly(said) + status
    blocks = _card_blocks(view, queued_wording(alert=alert), status=status)
    if assignees:
        blocks.append(assign_control(view.lead_id, assignees))
    else:
        blocks.append(ContextBlock(elements=[mrkdwn(NOBODY_TO_ASSIGN)]))
    title = named(view)
    text = clip(f"{title}: waiting in the {escape(queue)} queue", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks), mrkdwn=False)


def reminder(view: CardView) -> Message:
    """Half the SLA has passed and the lead is still unclaimed: one line, in the card's thread."""
    due = view.content.sla_due_at
    line = [
        emoji("hourglass_flowing_sand"),
        literal(" Still yours to claim, "),
        literal(view.content.heading, MAX_HEADER, bold=True),
    ]
    if due is not None:
        line += [literal(": claim it by "), date_element(due)]
    when = f": claim it by {slack_date(due)}" if due is not None else ""
    text = clip(f"Still yours to claim, {named(view)}{when}", MAX_TEXT)
    claim = claim_button(view.lead_id)
    blocks = [rich([line]), ActionsBlock(block_id=BlockId.CARD_ACTIONS, elements=[claim])]
    return Message(text=text, blocks=message_blocks(blocks), mrkdwn=False)


def named(view: CardView) -> str:
    """The lead's title in a card's notification, cut as the card's header is (a notification
    shows a line, not a 1,000-character company), `escape`d: it goes with mrkdwn off."""
    return clip(escape(view.content.heading), MAX_HEADER)


# --- the parts every card shares -----------------------------------------------------------------


def _card_blocks(view: CardView, wording: Wording, *, status: Said | None) -> list[Block]:
    """The blocks every card shares, in reading order, as `wording` words them for its reader.
    Whatever came from the lead is rich text or plain text: shown as written."""
    content = view.content
    blocks: list[Block] = [HeaderBlock(text=plain(content.heading, MAX_HEADER))]
    if status is not None and status.rich:
        blocks.append(rich([status.rich]))
    contact = _contact(content.contact, personal=wording.personal)
    if contact is not None:
        blocks.append(contact)
    fields = _fields(content.fields)
    if fields is not None:
        blocks.append(fields)
    if view.note and wording.reassigned:
        came = view.note.words(wording)
        blocks.append(rich([[literal(f"{wording.reassigned}: "), literal(came)]]))
    if wording.why is not None:
        why = [literal(f"{wording.why}:", bold=True), literal(" "), literal(content.reason)]
        blocks.append(rich([why]))
    line = deadline_line(content, wording.deadline) if wording.deadline else None
    if line is not None:
        words, due, within = line
        blocks.append(section(f"{words} {slack_date(due)}" + (f" ({within})" if within else "")))
    blocks.append(_footer(view))
    return blocks


def _labelled(label: str, value: list[RichTextElement]) -> list[RichTextElement]:
    return [literal(f"{label}:", 100, bold=True), literal(" "), *value]


def _fields(fields: Sequence[tuple[str, str]]) -> RichTextBlock | None:
    """The lead's facts, a line each: the label in bold, the value as the lead gave it."""
    if not fields:
        return None
    shown = fields if len(fields) <= MAX_FIELDS else fields[: MAX_FIELDS - 1]
    # Each line its share of the block's text, so a long first value leaves the rest shown.
    share = MAX_TEXT // (len(shown) + 1) - 4
    lines = [
        _labelled(label, [literal(value, max(share - min(len(label), 100), 20))])
        for label, value in shown
    ]
    if len(shown) < len(fields):
        lines.append([literal(and_more(len(fields) - len(shown)), italic=True)])
    return rich(lines)


def _contact(contact: Contact, *, personal: bool) -> RichTextBlock | None:
    """The lead's contact details as links a rep can click: with `personal`, the e-mail and phone
    too."""
    shown: list[list[RichTextElement]] = []
    if personal and contact.email:
        shown.append(_labelled("E-mail", [_mailto(contact.email)]))
    if personal and contact.phone:
        shown.append(_labelled("Phone", [_tel(contact.phone)]))
    if contact.website:
        shown.append(_labelled("Website", [_website(contact.website)]))
    if not shown:
        return None
    return rich(shown, block_id=BlockId.CARD_CONTACT)


def _footer(view: CardView) -> ContextBlock:
    """The lead's id (what `/routing why` takes), as written, and its CRM record, when there is
    one."""
    elements: list[PlainTextObject | MarkdownTextObject] = [plain(f"Lead {view.lead_id}", 300)]
    if view.crm_url:
        elements.append(mrkdwn(f"· {_crm_link(view.crm_url)}"))
    return ContextBlock(elements=elements)


# --- links ---------------------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """An http(s) URL as a mrkdwn link target: "|" and ">" would end the link early; "&" is
    escaped as Slack itself writes links."""
    return _encoded(url).replace("&", "&amp;")


def _encoded(url: str) -> str:
    """`url` with "<", ">" and "|" percent-encoded: no URL holds them as they are."""
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


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


def _link(target: str | None, label: str) -> RichTextElement:
    """`label` as a link to `target`, or as text when there is no target or it is too long."""
    if target is None or len(target) > MAX_LINK:
        return literal(label, MAX_LABEL)
    return link_element(target, label, MAX_LABEL)


def _mailto(email: str) -> RichTextElement:
    # Percent-encoded whole: nothing an address holds can end the link or start a token.
    return _link(f"mailto:{quote(email, safe='@+.-_~')}", email)


def _tel(phone: str) -> RichTextElement:
    number = _EXTENSION.sub("", phone)
    digits = re.sub(r"\D", "", number)
    if not 3 <= len(digits) <= 20:
        return literal(phone, MAX_LABEL)  # "ask reception": nothing to dial
    plus = "+" if number.lstrip().startswith("+") else ""
    return _link(f"tel:{plus}{digits}", phone)


def _website(website: str) -> RichTextElement:
    label = _SCHEME.sub("", website).rstrip("/")
    url = website if _SCHEME.match(website) else f"https://{website}"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  # raises for "javascript:alert(1)" read as host and port
    except ValueError:
        return literal(label, MAX_LABEL)
    host = parts.hostname or ""
    if (
        parts.scheme.lower() not in ("http", "https")
        or not _HOST.match(host)
        or _URL_FORBIDDEN.search(url)
    ):
        return literal(label, MAX_LABEL)
    return _link(_encoded(url), label)
