"""The full, human explanation of a decision, read off its trace.

The one-line reason travels with the decision itself (`Decision.reason`); this is the long form
behind `leadrouter simulate --explain` and `/routing why`: every rule tried and why, every rep
considered and why they were skipped, and the outcome.
"""

from __future__ import annotations

from typing import Any

from routing.decision import Decision, Stage, Step
from routing.durations import format_duration
from routing.model import Outcome
from routing.policy import Policy

_YES = "✓"
_NO = "✗"
_SKIP = "–"


def show_value(value: Any) -> str:
    if value is None or value == "":
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _condition_line(step: Step) -> str:
    mark = _YES if step.ok else _NO
    if step.ok:
        return f"  {mark} {step.subject}: {step.detail}"
    line = f"  {mark} {step.subject}: needs {step.detail}"
    if step.field is not None:
        line += f"; {step.field} is {show_value(step.value)}"
    return line


def describe_lead(facts: dict[str, Any] | Any) -> str:
    parts = []
    for key, label in (("region", "region"), ("segment", "segment"), ("country", "country")):
        if facts.get(key):
            parts.append(f"{label} {facts[key]}")
    if facts.get("employees") is not None:
        parts.append(f"{facts['employees']:,} employees")
    if facts.get("domain"):
        parts.append(f"domain {facts['domain']}")
    if facts.get("email_domain_type"):
        parts.append(f"{facts['email_domain_type']} e-mail")
    if facts.get("source"):
        parts.append(f"source {facts['source']}")
    return " · ".join(parts) or "nothing known beyond its id"


def explain(decision: Decision, policy: Policy) -> str:
    facts = decision.facts
    who = facts.get("name") or decision.lead_id
    company = f", {facts['company']}" if facts.get("company") else ""
    lines = [f"Lead {decision.lead_id}: {who}{company}", f"Normalised: {describe_lead(facts)}"]
    section: Stage | None = None
    headings = {
        Stage.QUALIFY: "Qualification (first match ends routing):",
        Stage.RULE: "Rules (top-down, first match wins):",
        Stage.REP: "Reps considered:",
    }
    for step in decision.trace:
        stage = Stage.REP if step.stage in (Stage.PERSON, Stage.STICKY) else step.stage
        if stage in headings and stage is not section:
            lines.append(headings[stage])
        section = stage
        if step.stage in (Stage.QUALIFY, Stage.RULE):
            lines.append(_condition_line(step))
        elif step.stage is Stage.REP:
            name = policy.rep_name(step.subject)
            if step.ok:
                lines.append(f"  {_YES} {name}: chosen ({step.detail})")
            else:
                lines.append(
                    f"  {_SKIP} {name} {step.detail}" + (f" ({step.note})" if step.note else "")
                )
        elif step.stage is Stage.ACCOUNT:
            lines.append(
                f"Account: {step.subject}, {step.detail}" if step.ok else f"Account: {step.detail}"
            )
        elif step.stage is Stage.NORMALISE:
            lines.append(f"Note: {step.detail}")
        elif step.stage is Stage.EXPERIMENT:
            lines.append(f"Experiment: {step.detail}")
        elif step.stage is Stage.PERSON:
            lines.append(f"  {_YES if step.ok else _NO} same person {step.subject}: {step.detail}")
        elif step.stage is Stage.STICKY:
            lines.append(
                f"  {_YES if step.ok else _NO} sticky account {step.subject}: {step.detail}"
            )
        elif step.stage is Stage.TARGET:
            lines.append(f"  {_NO} {step.subject}: {step.detail}")
        elif step.stage is Stage.FALLBACK:
            lines.append(f"Fallback: {step.subject} ({step.detail})")
    lines.append(f"Outcome: {outcome_sentence(decision, policy)}")
    lines.append(f"Reason: {decision.reason}")
    return "\n".join(lines)


def outcome_sentence(decision: Decision, policy: Policy) -> str:
    if decision.outcome is Outcome.ASSIGNED:
        team = f" (team {decision.team})" if decision.team else ""
        sla = ""
        if decision.sla_seconds:
            sla = f", to be claimed within {format_duration(decision.sla_seconds)}"
            if policy.sla.clock == "business":
                sla += " of working hours"
        return f"assigned to {policy.rep_name(decision.rep)}{team}{sla}"
    if decision.outcome is Outcome.QUEUED:
        channel = f" (posted to {decision.channel})" if decision.channel else ""
        return f"queued in {decision.queue}{channel}"
    return f"{decision.outcome.value} by qualification rule {decision.rule}"
