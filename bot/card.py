"""What an assignment card says, independent of how it is drawn.

`card_content_of` picks and words the facts a rep needs to act in one glance: who the lead is,
how to reach them, and the fields the policy's `card.fields` chooses. The Slack blocks render
this one structure, and `leadrouter demo` prints those very blocks, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from routing.conditions import CUSTOM_FIELD_PREFIX
from routing.decision import Decision
from routing.policy import Policy


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach the lead, as they gave it (the Slack side makes links of it)."""

    email: str | None = None
    phone: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class CardContent:
    title: str  # the person and their company: "Priya Shah · Initech"
    contact: Contact
    fields: tuple[tuple[str, str], ...]  # (label, value) of `card.fields`, those the lead has
    reason: str
    sla_due_at: datetime | None
    sla_seconds: int | None


def card_content(decision: Decision, policy: Policy, *, offered_at: datetime) -> CardContent:
    """The card of a decision just made (`leadrouter demo`), with the deadline it computed on
    the policy's SLA clock."""
    content = card_content_of(
        decision.facts,
        policy,
        lead_id=decision.lead_id,
        reason=decision.reason,
        sla_seconds=decision.sla_seconds,
        offered_at=offered_at,
    )
    if decision.sla_due_at is not None:
        content = replace(content, sla_due_at=decision.sla_due_at)
    return content


def card_content_of(
    facts: Mapping[str, Any],
    policy: Policy,
    *,
    lead_id: str,
    reason: str,
    sla_seconds: int | None,
    offered_at: datetime,
) -> CardContent:
    """The card from a decision's facts, also as stored (the lead's `facts`, the decision row)."""
    fields: list[tuple[str, str]] = []
    for name in policy.card_fields:
        value = facts.get(name)
        if name == "account.owner" and isinstance(value, str):
            value = policy.rep_name(value)  # a rep id: people read names
        text = _shown(name, value)
        if text is not None:
            fields.append((field_label(name), text))
    due = offered_at + timedelta(seconds=sla_seconds) if sla_seconds else None
    return CardContent(
        title=_title(facts, lead_id),
        contact=Contact(
            email=_text(facts.get("email")),
            phone=_text(facts.get("phone")),
            website=_text(facts.get("website")),
        ),
        fields=tuple(fields),
        reason=reason,
        sla_due_at=due,
        sla_seconds=sla_seconds,
    )


def _title(facts: Mapping[str, Any], lead_id: str) -> str:
    """The person and their company. Never the e-mail, which goes only where the contact details
    go (`name` falls back to it, so it is not used here)."""
    person = " ".join(
        p for p in (_text(facts.get("first_name")), _text(facts.get("last_name"))) if p
    )
    company = _text(facts.get("company"))
    if person and company:
        return f"{person} · {company}"
    return person or company or f"Lead {lead_id}"


_LABELS = {
    "crm_id": "CRM id",
    "crm_system": "CRM",
    "email_domain": "E-mail domain",
    "email_domain_type": "E-mail type",
    "email_disposable": "Disposable e-mail",
    "account.name": "Account",
    "account.id": "Account id",
    "account.matched": "Known account",
    "account.match_method": "Account matched by",
    "account.match_score": "Account match score",
}


def field_label(name: str) -> str:
    """How a card labels a fact: "Industry", "Account tier", "Plan tier" for fields.plan_tier."""
    label = _LABELS.get(name)
    if label is not None:
        return label
    words = name.removeprefix(CUSTOM_FIELD_PREFIX).replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _shown(name: str, value: Any) -> str | None:
    """A fact as a card shows it; None for one the lead lacks."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if name == "employees" else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value if item is not None) or None
    return str(value)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
