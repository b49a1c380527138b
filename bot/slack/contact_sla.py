"""The contact SLA's messages as Block Kit: the rep's reminder at half of it, in the thread of the
card they claimed, and the alert a manager gets in a DM when it lapsed (with Assign when the lead
went to a queue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.slack.assign import NOBODY_TO_ASSIGN, Assignee, assign_control
from bot.slack.blocks import (
    MAX_HEADER,
    MAX_TEXT,
    Message,
    clip,
    date_element,
    emoji,
    escape,
    literal,
    message_blocks,
    mrkdwn,
    plain,
    rich,
    section,
    slack_date,
)
from bot.slack.cards import MAX_WHY, CardView, named
from bot.slack.kit import ContextBlock, HeaderBlock


def contact_reminder(view: CardView, due: datetime | None) -> Message:
    """Half the contact SLA has passed and the lead the rep claimed is not touched yet."""
    line = [
        emoji("telephone_receiver"),
        literal(" Half your time to reach "),
        literal(view.content.heading, MAX_HEADER, bold=True),
        literal(" has gone: call, e-mail or meet them"),
    ]
    if due is not None:
        line += [literal(" by "), date_element(due)]
    line.append(literal(", and log it in the CRM"))
    by = f" by {slack_date(due)}" if due is not None else ""
    text = clip(
        f"Half your time to reach {named(view)} has gone: call, e-mail or meet them{by}, "
        "and log it in the CRM",
        MAX_TEXT,
    )
    return Message(text=text, blocks=message_blocks([rich([line])]), mrkdwn=False)


@dataclass(frozen=True, slots=True)
class ContactMiss:
    """What a manager is told of a lapsed contact SLA; every mrkdwn field is already safe."""

    rep: str  # who claimed the lead and did not touch it in time
    due_at: datetime | None
    touched_at: datetime | None  # the first touch, after the deadline; None: none yet
    holder: str | None  # who holds the lead now, if it was moved to another rep
    queue: str | None  # the queue it waits in, if it was moved to one
    # The rep still holding it is out of office (a manager marked them, say): until when; a
    # manager reading "it is still theirs" would otherwise not know nobody is working it.
    away: bool = False
    away_until: datetime | None = None
    # why this manager is told: the one it was meant for could not be (as Slack said it)
    instead: str | None = None


def contact_missed_alert(
    view: CardView, miss: ContactMiss, assignees: Sequence[Assignee]
) -> Message:
    """A manager's DM: the rep did not touch the lead they claimed in time, and where the lead
    is now; with an Assign picker when it waits in a queue."""
    due = f" by {slack_date(miss.due_at)}" if miss.due_at is not None else " in time"
    if miss.touched_at is not None:
        what = (
            f":warning: {miss.rep} claimed this lead and was to contact them{due}; the first "
            f"touch came {slack_date(miss.touched_at)}, late."
        )
    else:
        what = f":rotating_light: {miss.rep} claimed this lead and did not contact them{due}."
    if miss.holder is not None:
        where = f"It is now offered to {miss.holder}."
    elif miss.queue is not None:
        where = f"It waits in the *{escape(miss.queue)}* queue."
    elif miss.away:
        until = slack_date(miss.away_until) if miss.away_until else "further notice"
        where = f"It is still {miss.rep}'s, who is out of office until {until}."
    else:
        where = f"It is still {miss.rep}'s."
    status = f"{what} {where}"
    if miss.instead is not None:
        status = f"{status}\n{escape(clip(miss.instead, MAX_WHY))}."
    blocks: list[Block] = [HeaderBlock(text=plain(view.content.heading, MAX_HEADER))]
    blocks.append(section(status))
    if miss.queue is not None and miss.holder is None:
        if assignees:
            blocks.append(assign_control(view.lead_id, assignees))
        else:
            blocks.append(ContextBlock(elements=[mrkdwn(NOBODY_TO_ASSIGN)]))
    text = clip(f"{named(view)}: not contacted in time", MAX_TEXT)
    return Message(text=text, blocks=message_blocks(blocks), mrkdwn=False)
