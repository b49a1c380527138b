"""Leads named in our sentences and lists, as every surface names them: the card's title in
bold, then the id `/routing why` takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks.block_elements import RichTextElement

from bot.home import ContactLead
from bot.slack import blocks


def lead_named(title: str, lead_id: str) -> blocks.Said:
    """A lead in a sentence, as written: its card's title in bold, then its id (what `/routing
    why` takes) unless the title is made of the id already ("Lead L-2")."""
    named = blocks.strong(title, blocks.MAX_HEADER)
    if title != f"Lead {lead_id}":
        named += blocks.plainly(f" ({blocks.cut(lead_id, 300)})")
    return named


def to_contact_head(count: int) -> str:
    return f"To contact: {count} claimed lead{'s' if count != 1 else ''} with no first touch yet"


def to_contact_lines(leads: Sequence[ContactLead], now: datetime) -> list[list[RichTextElement]]:
    """A rep's claimed leads still to contact, a line each: title, id, and by when (or since
    when, once the deadline has passed)."""
    lines = []
    for lead in leads:
        said = blocks.plainly("• ") + lead_named(lead.title, lead.lead_id)
        if lead.due_at is not None:
            due = "was due " if lead.due_at <= now else "contact by "
            said += blocks.plainly(f" · {due}") + blocks.dated(lead.due_at)
        lines.append(list(said.rich))
    return lines
