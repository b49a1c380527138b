"""The contact SLA, from a rep's claim to the lead's first touch: which one a lead has, and when it
falls due and its reminder with it, on the claim SLA's clock (`sla.clock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from routing.policy import Policy, Rep
from routing.working_time import sla_deadline


def contact_sla_seconds(policy: Policy, *, rule: str | None, source: str | None) -> int | None:
    """The time a rep has from claiming a lead to its first touch: the `contact_sla` of `rule`
    (the one that routed the lead), else `sla.contact_by_source` for its source (trimmed, any
    case, as `sla.by_source`), else `sla.contact`; None when the policy sets none."""
    for candidate in policy.rules:
        if candidate.name == rule and candidate.contact_sla_seconds is not None:
            return candidate.contact_sla_seconds
    sla = policy.sla
    if source:
        seconds = sla.contact_by_source.get(source.strip().casefold())
        if seconds is not None:
            return seconds
    return sla.contact


def contact_deadlines(
    policy: Policy, rep: Rep | None, claimed_at: datetime, seconds: int
) -> tuple[datetime, datetime | None]:
    """When a contact SLA of `seconds` given to `rep` on their claim at `claimed_at` falls due
    (a first touch after it is late), and when they are reminded: at half of it. Counted as
    the claim SLA is (`sla_deadline`); a rep no longer in the policy counts wall time."""
    if rep is None:
        start = claimed_at.astimezone(UTC)
        due, half = start + timedelta(seconds=seconds), start + timedelta(seconds=seconds // 2)
    else:
        due = sla_deadline(policy.sla, rep, claimed_at, seconds)
        half = sla_deadline(policy.sla, rep, claimed_at, seconds // 2)
    return due, half if seconds >= 2 else None
