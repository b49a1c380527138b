"""A group's figures as `leadrouter report` prints them: one JSON object a line (`--json`), or a
CSV row (`--csv`, and the dashboard's export). The same keys in both; JSON adds the figures that
are lists (fairness per team, data health per field), which CSV leaves to their own tables.

Times are in seconds to three significant digits, shares in [0, 1], amounts as numbers; null (an
empty CSV cell) where there is no data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from routing.report.figures import GroupReport, Speed, per_100
from routing.report.stats import Proportion

# The keys of a line, in order; `leadrouter report --json` promises at least the issue's:
# group, leads, assigned, queued, time_to_claim_p50_s, time_to_first_touch_p50_s, claim_sla_met,
# contact_sla_met, rejects, reassignments, converted, won, conversion_rate, conversion_ci_low and
# conversion_ci_high.
COLUMNS = (
    "by",
    "group",
    "leads",
    "too_few",
    "assigned",
    "assigned_share",
    "queued",
    "queued_share",
    "nurture",
    "nurture_share",
    "disqualified",
    "disqualified_share",
    "unmatched",
    "unmatched_share",
    "fallback",
    "fallback_share",
    "time_to_card_p50_s",
    "time_to_card_p90_s",
    "time_to_claim_p50_s",
    "time_to_claim_p90_s",
    "time_to_first_touch_p50_s",
    "time_to_first_touch_p90_s",
    "claim_sla_met",  # the share met of the claim SLAs met or missed
    "claim_sla_ci_low",
    "claim_sla_ci_high",
    "claim_sla_checked",  # how many were met or missed
    "claim_sla_pending",
    "contact_sla_met",
    "contact_sla_ci_low",
    "contact_sla_ci_high",
    "contact_sla_checked",
    "contact_sla_pending",
    "rejects",
    "rejects_per_100",
    "rejects_per_100_by_reason",
    "reassignments",
    "reassignments_per_100",
    "reassignments_per_100_by_reason",
    "converted",
    "conversion_rate",
    "conversion_ci_low",
    "conversion_ci_high",
    "won",
    "lost",
    "win_rate",  # won, of the opportunities won or lost
    "win_ci_low",
    "win_ci_high",
    "pipeline",
    "priced",
    "won_amount",
    "currency",  # what pipeline and won_amount are in (`LEADROUTER_CURRENCY`); null: not named
    "amounts_left_out",  # opportunities whose amount was in another currency: in neither sum
)
# JSON only: lists of their own.
JSON_ONLY = ("fairness", "data_health")


def json_object(group: GroupReport) -> dict[str, Any]:
    """A group's figures as `leadrouter report --json` prints them (COLUMNS, then JSON_ONLY)."""
    figures = _figures(group)
    figures["fairness"] = [
        {
            "team": team.team,
            "leads": team.leads,
            "max_deviation": _round(team.max_deviation, 2),
            "reps": [
                {
                    "rep": rep.rep,
                    "leads": rep.leads,
                    "share": _round(rep.share, 4),
                    "expected_share": _round(rep.expected_share, 4),
                    "expected": _round(rep.expected, 2),
                    "deviation": _round(rep.deviation, 2),
                }
                for rep in team.reps
            ],
        }
        for team in group.fairness
    ]
    figures["data_health"] = [
        {
            "field": health.field,
            "missing": health.missing.count,
            "missing_share": _share(health.missing),
            "unmatched_for_want_of": health.unmatched_for_want_of,
        }
        for health in group.data_health
    ]
    return figures


def json_line(group: GroupReport) -> str:
    return json.dumps(json_object(group), ensure_ascii=False, separators=(",", ":"))


def csv_row(group: GroupReport) -> dict[str, str]:
    """A group's figures as a CSV row of COLUMNS: empty where JSON has null, reasons as
    "reason: per 100; ...", booleans as true/false."""
    return {key: _cell(value) for key, value in _figures(group).items()}


def _figures(group: GroupReport) -> dict[str, Any]:
    leads = group.leads
    figures: dict[str, Any] = {"by": group.by, "group": group.group, "leads": leads}
    figures["too_few"] = group.too_few
    for name in ("assigned", "queued", "nurture", "disqualified", "unmatched", "fallback"):
        share: Proportion = getattr(group, name)
        figures[name] = share.count
        figures[f"{name}_share"] = _share(share)
    for name in ("time_to_card", "time_to_claim", "time_to_first_touch"):
        speed: Speed = getattr(group, name)
        figures[f"{name}_p50_s"] = _seconds(speed.p50)
        figures[f"{name}_p90_s"] = _seconds(speed.p90)
    for name in ("claim_sla", "contact_sla"):
        sla: Proportion = getattr(group, name)
        figures[f"{name}_met"] = _share(sla)
        figures[f"{name}_ci_low"] = _round(sla.low, 4)
        figures[f"{name}_ci_high"] = _round(sla.high, 4)
        figures[f"{name}_checked"] = sla.of
        figures[f"{name}_pending"] = getattr(group, f"{name}_pending")
    for name in ("rejects", "reassignments"):
        reasons: Mapping[str, int] = getattr(group, name)
        figures[name] = sum(reasons.values())
        figures[f"{name}_per_100"] = _round(per_100(figures[name], leads), 2)
        figures[f"{name}_per_100_by_reason"] = {
            reason: _round(per_100(count, leads), 2) for reason, count in reasons.items()
        }
    converted, won = group.converted, group.won
    figures["converted"] = converted.count
    figures["conversion_rate"] = _share(converted)
    figures["conversion_ci_low"] = _round(converted.low, 4)
    figures["conversion_ci_high"] = _round(converted.high, 4)
    figures["won"] = won.count
    figures["lost"] = group.lost
    figures["win_rate"] = _share(won)
    figures["win_ci_low"] = _round(won.low, 4)
    figures["win_ci_high"] = _round(won.high, 4)
    figures["pipeline"] = _amount(group.pipeline)
    figures["priced"] = group.priced
    figures["won_amount"] = _amount(group.won_amount)
    figures["currency"] = group.currency
    figures["amounts_left_out"] = group.amounts_left_out
    return figures


def _share(share: Proportion) -> float | None:
    return _round(share.rate, 4)


def _seconds(value: float | None) -> float | None:
    # Three significant digits: the percentiles are good to 1% (`stats`), and 181.744 s would
    # claim a precision they do not have.
    return None if value is None else float(f"{value:.3g}")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _amount(value: Decimal | None) -> float | None:
    # A JSON number, as the dashboard's charts and most readers want; two decimals are cents.
    return None if value is None else float(round(value, 2))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_cell(count)}" for key, count in value.items())
    return str(value)
