"""This week's figures in words: a manager's (the digest's weekly section, App Home) and a rep's
share of their teams' leads (App Home). A figure with no data is a dash, never 0; the contact
SLA's is left out where there is no contact SLA to keep.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, DividerBlock

from bot.service.weekly import ManagerWeek, Mover, RepWeek
from bot.slack.blocks import clip, escape, list_section, section
from routing.durations import format_duration
from routing.report import GroupReport
from routing.report.stats import Proportion


def week_line(week: ManagerWeek) -> str:
    """Every lead's week against the week before, in one line."""
    total, before = week.total, week.total_before
    contact = f"contact SLA met {_rate(total.contact_sla)} · " if week.contact_sla else ""
    return (
        f"*This week:* {_plural(total.leads, 'lead')} ({_change(total.leads, before.leads)}) · "
        f"claim SLA met {_rate(total.claim_sla)} ({_rate(before.claim_sla)} the week before) · "
        f"{contact}"
        f"claimed in {_seconds(total.time_to_claim.p50)} (median) · "
        f"queued {_rate(total.queued)} (no rule matched {_rate(total.unmatched)})"
    )


def team_lines(week: ManagerWeek) -> list[str]:
    return [
        f"• {_name(name)}: "
        + (
            "no lead"
            if group is None
            else f"{_plural(group.leads, 'lead')}, claim SLA met {_rate(group.claim_sla)}"
            + (f", contact SLA met {_rate(group.contact_sla)}" if week.contact_sla else "")
        )
        for name, group in week.teams
    ] or ["• no team"]


def week_blocks(week: ManagerWeek) -> list[Block]:
    """The digest's weekly section: the week's line, the manager's teams' SLAs, and the rules
    and the sources whose volume moved most."""
    rules = [_mover(mover, "No rule matched") for mover in week.movers]
    sources = [_mover(mover, "No source") for mover in week.source_movers]
    return [
        DividerBlock(),
        section(week_line(week)),
        list_section("*Your teams' SLAs this week*", team_lines(week)),
        list_section(
            "*Top movers, by rule* (leads the week before → this week)",
            rules or ["• none: every rule had as many leads as the week before"],
        ),
        list_section(
            "*Top movers, by source*",
            sources or ["• none: every source sent as many leads as the week before"],
        ),
    ]


def rep_week_lines(week: RepWeek) -> list[str]:
    """A rep's share of each of their teams' rotation this week, and their claim SLA."""
    lines = []
    for team in week.teams:
        name = _name(team.team)
        if team.share is None:
            lines.append(f"• {name}: the rotation gave out no lead this week")
            continue
        lines.append(
            f"• {name}: you got {team.leads} of its {_plural(team.team_leads, 'lead')} "
            f"({team.share:.0%}); your share is {team.expected_share:.0%}"
        )
    claims = f"Your claim SLA met this week: {_rate(week.claim_sla)}"
    others = [f"{_name(team)} {_rate(sla)}" for team, sla in week.team_claim_sla.items()]
    if others:
        claims += f" (your teams': {', '.join(others)})"
    return [*lines, claims]


def _mover(mover: Mover, unnamed: str) -> str:
    group = unnamed if mover.group is None else mover.group
    now, before = mover.now, mover.before
    line = f"• {_name(group)}: {_leads(before)} → {_leads(now)} leads"
    if now is not None and now.too_few:
        line += " (too few to go by)"
    claim_now, claim_before = _claim(now), _claim(before)
    if claim_now != claim_before:
        line += f"; claim SLA met {claim_before} → {claim_now}"
    return line


def _name(name: str) -> str:
    return clip(escape(name), 150)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _leads(group: GroupReport | None) -> int:
    return 0 if group is None else group.leads


def _claim(group: GroupReport | None) -> str:
    return "–" if group is None else _rate(group.claim_sla)


def _rate(share: Proportion) -> str:
    return "–" if share.rate is None else f"{share.rate:.0%}"


def _seconds(seconds: float | None) -> str:
    return "–" if seconds is None else format_duration(seconds)


def _change(now: int, before: int) -> str:
    if before == 0:
        return "none the week before" if now else "none the week before either"
    return f"{(now - before) / before:+.0%} on the week before"
