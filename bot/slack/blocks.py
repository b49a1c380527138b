"""Block Kit for leadrouter: the lead card (the rep's, its team channel's copy, a queue's post),
the Assign picker, the reject modal and the App Home.

Every builder goes through `slack_sdk.models` (the card's classes by way of `bot.slack.kit`, which
finds their validators faster) and ends in `to_dict()`, so Slack's own validators check the
limits before anything is sent, and returns plain data ready for the Web API. Whatever a lead or
the policy supplies (names, companies, reasons, field values, contact details) passes through
`escape` wherever Slack parses mrkdwn (and in a message's notification text), so a company called
"<!channel>" is shown as text and pings nobody. Plain text (a header, a button) is never parsed:
it goes as written, since an escape there would be shown as "&lt;".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    RadioButtonsElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.card import CardContent, Contact
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.kit import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from routing.durations import format_duration
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
MAX_NOTE = 500
MAX_BLOCK_ID = 255
MAX_OPTIONS = 100  # of a select, and of option groups in one
MAX_OPTION_TEXT = 75
ELLIPSIS = "…"

REJECT_REASONS = (
    "Not my territory",
    "Existing customer / already working it",
    "Not a fit / junk",
    "Conflict of interest",
    "Other",
)

MAX_LABEL = 300  # a contact link's text
MAX_LINK = MAX_FIELD_TEXT - 20  # a contact link, with its label, in one field

_DATE_STYLE_FORBIDDEN = re.compile(r"[\^|<>]")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+$")  # a dotted name (IDNs too), or an IPv4 address
_EXTENSION = re.compile(r"(?i)\s*(ext\.?|extension|x|#)\s*\d+\s*$")


@dataclass(frozen=True, slots=True)
class Message:
    text: str  # the notification fallback
    blocks: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CardView:
    lead_id: str  # the lead's external id: every button's value
    content: CardContent
    crm_url: str | None = None
    # Already-safe mrkdwn: how a reassigned lead came to its rep ("rejected by Ann · waiting 5m").
    note: str | None = None
    assignee: str | None = None  # already-safe mrkdwn naming the rep: a mention, or their name


@dataclass(frozen=True, slots=True)
class HomeOffer:
    lead_id: str
    title: str
    reason: str
    offered_at: datetime
    sla_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class RepLoad:
    name: str
    open: int
    capacity: int | None
    away: bool
    away_until: datetime | None


@dataclass(frozen=True, slots=True)
class TeamLoad:
    team: str
    reps: tuple[RepLoad, ...]


@dataclass(frozen=True, slots=True)
class HomeData:
    name: str  # the viewer's name
    is_rep: bool
    offers: tuple[HomeOffer, ...]  # the viewer's open offers, oldest first
    away: bool
    away_until: datetime | None
    away_reason: str | None
    is_manager: bool
    teams: tuple[TeamLoad, ...]  # managers only
    queue_size: int  # managers only
    queue_oldest_at: datetime | None  # managers only
    now: datetime


# --- text ----------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Make a string safe to show in mrkdwn: it can no longer mention, link or format anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


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


def _how_many_fit(sizes: Sequence[int], budget: int, reserve: int) -> int:
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


def _and_more(count: int) -> str:
    return f"{ELLIPSIS} and {count} more"


def _mrkdwn(text: str, limit: int = MAX_TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def _plain(text: str, limit: int) -> PlainTextObject:
    """Plain text: Slack shows it as written (no mentions, links or entities), so it is neither
    escaped nor cut with care for entities."""
    if len(text) > limit:
        text = text[: limit - len(ELLIPSIS)] + ELLIPSIS
    return PlainTextObject(text=text, emoji=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(text))


def _button_value(lead_id: str) -> str:
    if not lead_id or len(lead_id) > MAX_VALUE:
        raise ValueError(
            f"lead id must be 1 to {MAX_VALUE} characters to fit a button's value; "
            f"got {len(lead_id)}"
        )
    return lead_id


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


def _claim_button(value: str) -> ButtonElement:
    return ButtonElement(
        text=_plain("Claim", 75), action_id=ActionId.CLAIM, value=value, style="primary"
    )


def _reject_button(value: str) -> ButtonElement:
    confirm = ConfirmObject(
        title=_plain("Reject this lead?", 100),
        text=_mrkdwn("You'll be asked why, then it goes to another rep."),
        confirm=_plain("Reject", 30),
        deny=_plain("Keep it", 30),
    )
    return ButtonElement(
        text=_plain("Reject", 75), action_id=ActionId.REJECT, value=value, confirm=confirm
    )


# One click would otherwise move every lead the rep holds: Slack asks first.
_OUT_CONFIRM = ConfirmObject(
    title=_plain("Mark yourself out?", 100),
    text=_mrkdwn(
        "You'll get no new leads until your next working day, and all your unclaimed leads "
        "go to other reps now."
    ),
    confirm=_plain("I'm out", 30),
    deny=_plain("Cancel", 30),
    style="danger",
)


def _messages(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    if len(blocks) > MAX_MESSAGE_BLOCKS:  # the card has a fixed shape; this guards future edits
        raise ValueError(f"a message may hold {MAX_MESSAGE_BLOCKS} blocks; built {len(blocks)}")
    return [b.to_dict() for b in blocks]


# --- the lead card -------------------------------------------------------------------------------


def _title(content: CardContent) -> str:
    """The lead's title as plain text (the header); `escape` it for mrkdwn."""
    return content.title.strip() or "New lead"


def _fields(fields: Sequence[tuple[str, str]]) -> SectionBlock | None:
    if not fields:
        return None
    shown = fields if len(fields) <= MAX_FIELDS else fields[: MAX_FIELDS - 1]
    texts = [
        _mrkdwn(f"*{clip(escape(label), 100)}*\n{escape(value)}", MAX_FIELD_TEXT)
        for label, value in shown
    ]
    if len(shown) < len(fields):
        texts.append(_mrkdwn(f"_{_and_more(len(fields) - len(shown))}_", MAX_FIELD_TEXT))
    return SectionBlock(fields=texts)


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


def _contact(contact: Contact, *, personal: bool) -> SectionBlock | None:
    """The lead's contact details as links a rep can click: with `personal`, the e-mail and phone
    too (see `offer_card` for who gets those)."""
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
        fields=[_mrkdwn(f"*{label}*\n{text}", MAX_FIELD_TEXT) for label, text in shown],
    )


def _footer(view: CardView) -> ContextBlock:
    """The lead's id (what `/routing why` takes) and its CRM record, when there is one."""
    parts = [f"Lead {clip(escape(view.lead_id), 300)}"]
    if view.crm_url:
        parts.append(_crm_link(view.crm_url))
    return ContextBlock(elements=[_mrkdwn(" · ".join(parts))])


def _deadline(content: CardContent, words: str) -> str | None:
    if content.sla_due_at is None:
        return None
    text = f"{words} {slack_date(content.sla_due_at)}"
    if content.sla_seconds:
        text += f" (within {format_duration(content.sla_seconds)})"
    return text


def _card_blocks(
    view: CardView,
    *,
    status: str | None,
    note: str | None,
    why: str | None,
    personal: bool,
    deadline: str | None = None,
) -> list[Block]:
    """The blocks every card shares, in reading order; each caller words its own lines (who
    the card speaks to: the rep, their team, a manager) and says whether the lead's e-mail and
    phone are for its reader (`personal`)."""
    content = view.content
    blocks: list[Block] = [HeaderBlock(text=_plain(_title(content), MAX_HEADER))]
    if status is not None:
        blocks.append(_section(status))
    contact = _contact(content.contact, personal=personal)
    if contact is not None:
        blocks.append(contact)
    fields = _fields(content.fields)
    if fields is not None:
        blocks.append(fields)
    if note:
        blocks.append(_section(note))
    if why is not None:
        blocks.append(_section(f"*{why}:* {escape(content.reason)}"))
    if deadline:
        blocks.append(_section(deadline))
    blocks.append(_footer(view))
    return blocks


def _assignee(view: CardView) -> str:
    return view.assignee or "a rep"


def offer_card(view: CardView) -> Message:
    """The card a rep gets when a lead is offered to them: who it is and how to reach them, the
    facts, why them, three buttons.

    The lead's e-mail and phone go to the rep it is offered to from the start, and stay on their
    card once they claim it: speed to lead is the point, and the rep may look the person up
    before claiming. Nobody else gets them: not the team's channel, not a queue's channel, and
    not a rep the lead has moved on from (the card they keep loses them), so that one person
    calls the lead. A manager alerted in a DM gets them, to act for the team."""
    value = _button_value(view.lead_id)
    blocks = _card_blocks(
        view,
        status=None,
        note=f"Reassigned to you: {view.note}" if view.note else None,
        why="Why you",
        personal=True,
        deadline=_deadline(view.content, "Claim by"),
    )
    out = ButtonElement(
        text=_plain("I'm out", 75), action_id=ActionId.MARK_OOO, value=value, confirm=_OUT_CONFIRM
    )
    blocks.append(
        ActionsBlock(
            block_id=BlockId.CARD_ACTIONS,
            elements=[_claim_button(value), _reject_button(value), out],
        )
    )
    text = clip(f"New lead for you: {escape(_title(view.content))}", MAX_TEXT)
    return Message(text=text, blocks=_messages(blocks))


def team_copy(view: CardView) -> Message:
    """The offer as the team's channel sees it: whose lead it is, and no buttons. Every button
    acts on whoever clicks it, and in a channel that is seldom the rep the lead is for."""
    who = _assignee(view)
    blocks = _card_blocks(
        view,
        status=f"New lead for {who}",
        note=f"Reassigned: {view.note}" if view.note else None,  # `who` is named just above
        why="Why",
        personal=False,
        deadline=_deadline(view.content, "To be claimed by"),
    )
    text = clip(f"New lead for {who}: {escape(_title(view.content))}", MAX_TEXT)
    return Message(text=text, blocks=_messages(blocks))


def settled_card(
    view: CardView, status: str, *, team: bool = False, moved: bool = False
) -> Message:
    """The card (or with `team`, its copy in the team's channel) once nobody needs to act on it;
    `status` is mrkdwn the caller made safe, saying what happened. It drops the deadline: once
    claimed or moved, "Claim by" would only mislead. A lead that `moved` on (rejected, taken
    away, not claimed in time) drops why it came and how, too: the status says where it went."""
    note = None
    if view.note and not moved:
        note = f"Reassigned{'' if team else ' to you'}: {view.note}"
    why = None if moved else ("Why" if team else "Why you")
    personal = not team and not moved
    blocks = _card_blocks(view, status=status, note=note, why=why, personal=personal)
    text = clip(f"{escape(_title(view.content))}: {status}", MAX_TEXT)
    return Message(text=text, blocks=_messages(blocks))


@dataclass(frozen=True, slots=True)
class Assignee:
    """A rep a manager may assign a queued lead to."""

    rep_id: str
    name: str
    team: str | None  # the first team they are in, to group a long list by


def assignees_of(policy: Policy) -> tuple[Assignee, ...]:
    """The policy's reps who can be assigned from Slack (those with a Slack id: a card can reach
    them), by name."""
    reps = [rep for rep in policy.reps.values() if rep.slack]
    return tuple(
        Assignee(rep.id, rep.name, policy.first_team_of(rep.id))
        for rep in sorted(reps, key=lambda rep: (rep.name.casefold(), rep.id))
    )


def _rep_option(assignee: Assignee) -> Option:
    return Option(value=assignee.rep_id, text=_plain(assignee.name, MAX_OPTION_TEXT))


def _rep_select(assignees: Sequence[Assignee]) -> StaticSelectElement:
    """One list when it fits Slack's 100 options; else a group per team (Slack: 100 groups of
    100 at most), cut into parts when a team outgrows one."""
    placeholder = _plain("Assign to…", 150)
    if len(assignees) <= MAX_OPTIONS:
        options = [_rep_option(a) for a in assignees]
        return StaticSelectElement(
            placeholder=placeholder, action_id=ActionId.ASSIGN, options=options
        )
    by_team: dict[str, list[Assignee]] = {}
    for assignee in assignees:
        by_team.setdefault(assignee.team or "No team", []).append(assignee)
    groups: list[OptionGroup] = []
    for team, members in sorted(by_team.items()):
        parts = [members[i : i + MAX_OPTIONS] for i in range(0, len(members), MAX_OPTIONS)]
        for number, part in enumerate(parts, start=1):
            label = team if len(parts) == 1 else f"{team} ({number})"
            groups.append(
                OptionGroup(
                    label=_plain(label, MAX_OPTION_TEXT), options=[_rep_option(a) for a in part]
                )
            )
    return StaticSelectElement(
        placeholder=placeholder, action_id=ActionId.ASSIGN, option_groups=groups[:MAX_OPTIONS]
    )


def assign_control(lead_id: str, assignees: Sequence[Assignee]) -> ActionsBlock:
    """A picker that offers a queued lead to one of the policy's reps, as a manager chooses.
    Not a user picker: that would offer everyone in the workspace.

    A select carries no value of its own, so the lead's id travels in the block id."""
    block_id = f"{BlockId.ASSIGN_PREFIX}{_button_value(lead_id)}"
    if len(block_id) > MAX_BLOCK_ID:
        raise ValueError(f"lead id is too long for an Assign control ({len(lead_id)} characters)")
    if not assignees:
        raise ValueError("an Assign control needs at least one rep to offer")
    return ActionsBlock(block_id=block_id, elements=[_rep_select(assignees)])


NOBODY_TO_ASSIGN = (
    "No rep in the policy has a Slack id, so none can be assigned from here: add `slack:` to "
    "the reps in the policy."
)


def assigned_lead(block_id: str) -> str | None:
    """The lead id an Assign control's block id carries; None for any other block."""
    prefix = BlockId.ASSIGN_PREFIX.value
    if not block_id.startswith(prefix):
        return None
    return block_id[len(prefix) :] or None


def queued_post(
    view: CardView, queue: str, assignees: Sequence[Assignee], *, alert: bool = False
) -> Message:
    """A lead waiting in a queue with an Assign picker of `assignees`: posted to the queue's
    channel, or with `alert` to a manager when the SLA watchdog gave up on it."""
    status = f"Waiting in the *{escape(queue)}* queue"
    if alert:
        status = f":rotating_light: Nobody claimed this lead in time. {status}"
    blocks = _card_blocks(view, status=status, note=None, why="Why", personal=alert)
    if assignees:
        blocks.append(assign_control(view.lead_id, assignees))
    else:
        blocks.append(ContextBlock(elements=[_mrkdwn(NOBODY_TO_ASSIGN)]))
    title = escape(_title(view.content))
    text = clip(f"{title}: waiting in the {escape(queue)} queue", MAX_TEXT)
    return Message(text=text, blocks=_messages(blocks))


def reminder(view: CardView) -> Message:
    """Half the SLA has passed and the lead is still unclaimed: one line, in the card's thread."""
    due = view.content.sla_due_at
    when = f": claim it by {slack_date(due)}" if due is not None else ""
    text = clip(
        f":hourglass_flowing_sand: Still yours to claim, *{escape(_title(view.content))}*{when}",
        MAX_TEXT,
    )
    claim = _claim_button(_button_value(view.lead_id))
    blocks = [_section(text), ActionsBlock(block_id=BlockId.CARD_ACTIONS, elements=[claim])]
    return Message(text=text, blocks=_messages(blocks))


def backlog_summary(leads: int, since: datetime, reps: Mapping[str, int]) -> Message:
    """A manager's one word on the leads that arrived while no Slack app ran, instead of an
    alert for each as their cards go out."""
    who = ", ".join(f"{escape(name)} {count}" for name, count in reps.items())
    text = clip(
        f"*{leads} lead{'s' if leads != 1 else ''} arrived while leadrouter was not connected "
        f"to Slack* (the first {slack_date(since)}). Their cards are going out to the reps now: "
        f"{who}. Each rep's SLA starts when their card arrives, so nobody is charged for the "
        "wait.",
        MAX_TEXT,
    )
    return Message(text=text, blocks=_messages([_section(text)]))


# --- the reject modal ----------------------------------------------------------------------------


def reject_modal(lead_id: str, title: str) -> dict[str, Any]:
    # Both inputs are optional for Slack: the handler asks for a reason itself (`reject_reason`), so
    # a rep may give a choice, a note, or both.
    view = View(
        type="modal",
        callback_id=CallbackId.REJECT_MODAL,
        private_metadata=_button_value(lead_id),
        title=_plain("Reject lead", 24),
        submit=_plain("Reject", 24),
        close=_plain("Cancel", 24),
        blocks=[
            _section(f"*{escape(title) or 'New lead'}*"),
            InputBlock(
                block_id=BlockId.REJECT_REASON,
                label=_plain("Why are you passing on this lead?", 2000),
                optional=True,
                element=RadioButtonsElement(
                    action_id=ActionId.REJECT_REASON,
                    options=[Option(value=r, text=_plain(r, 75)) for r in REJECT_REASONS],
                ),
            ),
            InputBlock(
                block_id=BlockId.REJECT_NOTE,
                label=_plain("Anything the next rep or RevOps should know?", 2000),
                optional=True,
                element=PlainTextInputElement(
                    action_id=ActionId.REJECT_NOTE, multiline=True, max_length=MAX_NOTE
                ),
            ),
        ],
    )
    return view.to_dict()


def reject_reason(state_values: Mapping[str, Any]) -> str | None:
    """The reason from a reject modal's `view.state.values`; None when the rep gave neither."""
    choice_state = state_values.get(BlockId.REJECT_REASON, {}).get(ActionId.REJECT_REASON, {})
    selected = choice_state.get("selected_option") or {}
    choice = (selected.get("value") or "").strip()
    note_state = state_values.get(BlockId.REJECT_NOTE, {}).get(ActionId.REJECT_NOTE, {})
    note = (note_state.get("value") or "").strip()
    if choice and note:
        return f"{choice}: {note}"
    return choice or note or None


# --- the App Home --------------------------------------------------------------------------------


def _offer_blocks(index: int, offer: HomeOffer) -> list[Block]:
    value = _button_value(offer.lead_id)
    lines = [
        f"*{clip(escape(offer.title), 300) or 'New lead'}*",
        clip(escape(offer.reason), 2000),
    ]
    when = f"Offered {slack_date(offer.offered_at)}"
    if offer.sla_due_at is not None:
        when += f" · Claim by {slack_date(offer.sla_due_at)}"
    lines.append(when)
    return [
        _section("\n".join(lines)),
        ActionsBlock(
            block_id=f"home_offer_{index}",
            elements=[_claim_button(value), _reject_button(value)],
        ),
    ]


def _capped_groups(groups: Sequence[list[Block]], budget: int) -> list[Block]:
    """The first groups that fit in `budget` blocks, then "… and N more"; never over budget."""
    if budget < 1:
        return []
    count = _how_many_fit([len(g) for g in groups], budget, reserve=1)
    blocks = [block for group in groups[:count] for block in group]
    if count < len(groups):
        blocks.append(ContextBlock(elements=[_mrkdwn(_and_more(len(groups) - count))]))
    return blocks


def _availability(home: HomeData) -> SectionBlock:
    if not home.away:
        return SectionBlock(
            text=_mrkdwn("You're available for new leads."),
            accessory=ButtonElement(
                text=_plain("I'm out", 75), action_id=ActionId.HOME_AWAY, confirm=_OUT_CONFIRM
            ),
        )
    until = slack_date(home.away_until) if home.away_until else "further notice"
    text = f"You're out of office until {until}."
    if home.away_reason:
        text += f"\n{clip(escape(home.away_reason), 1000)}"
    return SectionBlock(
        text=_mrkdwn(text),
        accessory=ButtonElement(text=_plain("I'm back", 75), action_id=ActionId.HOME_BACK),
    )


def _rep_line(rep: RepLoad) -> str:
    load = f"{rep.open}/{rep.capacity}" if rep.capacity is not None else f"{rep.open} (no cap)"
    line = f"• {clip(escape(rep.name), 150)}: {load}"
    if rep.away:
        line += f" · out until {slack_date(rep.away_until) if rep.away_until else 'further notice'}"
    return line


def _team_section(team: TeamLoad) -> SectionBlock:
    head = f"*{clip(escape(team.team), 150) or 'Unnamed team'}*"
    lines = [_rep_line(rep) for rep in team.reps] or ["_no reps_"]
    more = "\n" + _and_more(len(lines))
    count = _how_many_fit(
        [len(line) + 1 for line in lines], MAX_TEXT - len(head), reserve=len(more)
    )
    text = "\n".join([head, *lines[:count]])
    if count < len(lines):
        text += "\n" + _and_more(len(lines) - count)
    return _section(text)


def _queue_line(home: HomeData) -> str:
    if home.queue_size <= 0:
        return "*Unmatched queue:* empty"
    noun = "lead" if home.queue_size == 1 else "leads"
    text = f"*Unmatched queue:* {home.queue_size} {noun}"
    if home.queue_oldest_at is not None:
        waited = max(0.0, (home.now - home.queue_oldest_at).total_seconds())
        text += f", oldest waiting {format_duration(waited)}"
    return text


def _split_budget(budget: int, offers_need: int, teams_need: int) -> tuple[int, int]:
    """Share `budget` blocks between a rep's offers and a manager's teams; each gets at least half
    when both want more than fits."""
    if offers_need + teams_need <= budget:
        return offers_need, budget - offers_need
    offers = min(offers_need, max(budget // 2, budget - teams_need))
    return offers, budget - offers


def home_view(home: HomeData) -> dict[str, Any]:
    """The App Home: a rep's open leads and availability, a manager's team load and queue."""
    if not home.is_rep and not home.is_manager:
        text = (
            f"Hi {clip(escape(home.name), 150)}. You're not in the routing policy, so no leads are "
            "routed to you here. Ask a RevOps admin to add your Slack id to the policy."
        )
        return View(type="home", blocks=[_section(text)]).to_dict()

    rep_head: list[Block] = []
    rep_tail: list[Block] = []
    offer_groups: list[list[Block]] = []
    if home.is_rep:
        rep_head = [HeaderBlock(text=_plain("Your leads", MAX_HEADER))]
        offer_groups = [_offer_blocks(i, offer) for i, offer in enumerate(home.offers)]
        if not offer_groups:
            offer_groups = [[_section("No open leads.")]]
        rep_tail = [DividerBlock(), _availability(home)]

    manager_head: list[Block] = []
    manager_tail: list[Block] = []
    team_groups: list[list[Block]] = []
    if home.is_manager:
        manager_head = [HeaderBlock(text=_plain("Your teams", MAX_HEADER))]
        if home.is_rep:
            manager_head.insert(0, DividerBlock())
        team_groups = [[_team_section(team)] for team in home.teams]
        if not team_groups:
            team_groups = [[_section("No teams in the policy.")]]
        manager_tail = [_section(_queue_line(home))]

    fixed = len(rep_head) + len(rep_tail) + len(manager_head) + len(manager_tail)
    offers_budget, teams_budget = _split_budget(
        MAX_VIEW_BLOCKS - fixed,
        sum(len(g) for g in offer_groups),
        sum(len(g) for g in team_groups),
    )
    blocks = [
        *rep_head,
        *_capped_groups(offer_groups, offers_budget),
        *rep_tail,
        *manager_head,
        *_capped_groups(team_groups, teams_budget),
        *manager_tail,
    ]
    return View(type="home", blocks=blocks).to_dict()
