"""What an assignment card says, independent of how it is drawn.

`card_content` picks and words the facts a rep needs to act in one glance; the terminal preview in
`leadrouter demo` and the Slack blocks both render this one structure, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from routing.durations import format_duration
from routing.engine import Decision
from routing.policy import Policy


@dataclass(frozen=True, slots=True)
class CardContent:
    title: str
    fields: tuple[tuple[str, str], ...]
    reason: str
    rep_name: str
    sla_due_at: datetime | None
    sla_seconds: int | None


def card_content(decision: Decision, policy: Policy, *, offered_at: datetime) -> CardContent:
    return card_content_of(
        decision.facts,
        lead_id=decision.lead_id,
        reason=decision.reason,
        rep_name=policy.rep_name(decision.rep),
        sla_seconds=decision.sla_seconds,
        offered_at=offered_at,
    )


def card_content_of(
    facts: Mapping[str, Any],
    *,
    lead_id: str,
    reason: str,
    rep_name: str,
    sla_seconds: int | None,
    offered_at: datetime,
) -> CardContent:
    """The card from a decision's facts, also as stored (the lead's `facts`, the decision row)."""
    name = facts.get("name") or lead_id
    title = f"{name} · {facts['company']}" if facts.get("company") else str(name)
    fields: list[tuple[str, str]] = []
    if facts.get("title"):
        fields.append(("Title", str(facts["title"])))
    size = []
    if facts.get("employees") is not None:
        size.append(f"{facts['employees']:,} employees")
    if facts.get("segment"):
        size.append(str(facts["segment"]))
    if size:
        fields.append(("Company size", " · ".join(size)))
    place = [str(facts[k]) for k in ("region", "country") if facts.get(k)]
    if place:
        fields.append(("Region", " · ".join(place)))
    for key, label in (("source", "Source"), ("score", "Score"), ("product", "Product")):
        value = facts.get(key)
        if value is not None and value != "":
            text = f"{value:g}" if isinstance(value, float) else str(value)
            fields.append((label, text))
    due = offered_at + timedelta(seconds=sla_seconds) if sla_seconds else None
    return CardContent(
        title=title,
        fields=tuple(fields),
        reason=reason,
        rep_name=rep_name,
        sla_due_at=due,
        sla_seconds=sla_seconds,
    )


def render_text(card: CardContent) -> str:
    """A plain-text picture of the card, as the demo prints it."""
    lines = [f"New lead for {card.rep_name}: {card.title}", ""]
    width = max((len(label) for label, _ in card.fields), default=0)
    lines.extend(f"  {label.ljust(width)}  {value}" for label, value in card.fields)
    lines += ["", f"  Why you: {card.reason}"]
    if card.sla_due_at is not None and card.sla_seconds is not None:
        lines.append(
            f"  Claim by {card.sla_due_at:%H:%M %Z} (within {format_duration(card.sla_seconds)}; "
            "Slack shows it in each reader's own time zone)"
        )
    lines += ["", "  [ Claim ]  [ Reject ]  [ I'm out ]"]
    return "\n".join(lines)
