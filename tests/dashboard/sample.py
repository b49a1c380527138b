"""SAMPLE figures, for the tests only: the shape `leadrouter report --json` gives a group
(`bot.dashboard.figures`), with numbers made up to be told apart. Every group's name says
"Sample", so a page showing them can never pass for a real report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.dashboard.figures import FigureRow, Window

GROUPS = ("Sample rule A", "Sample rule B", "Sample rule <C>")
TEAM = {
    "team": "Sample team",
    "leads": 40,
    "max_deviation": 4.0,
    "reps": [
        {
            "rep": "sample-ann",
            "leads": 24,
            "share": 0.6,
            "expected_share": 0.5,
            "expected": 20.0,
            "deviation": 4.0,
        },
        {
            "rep": "sample-bob",
            "leads": 16,
            "share": 0.4,
            "expected_share": 0.5,
            "expected": 20.0,
            "deviation": -4.0,
        },
    ],
}


class SampleFigures:
    """A `Figures` that records what it was asked: (window, by) per call."""

    def __init__(self) -> None:
        self.asked: list[tuple[Window, str]] = []

    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        self.asked.append((window, by))
        if by == "all":
            return [row("all", leads=60, fairness=[TEAM])]
        days = max(1, round(window.length / timedelta(days=1)))
        # A and B grow with the window; <C> stays too small to go by, and nobody touched its
        # leads (no first touch, no contact SLA).
        speed = {"time_to_claim_p50_s": 60.0, "time_to_first_touch_p50_s": 3600.0}
        return [
            row(GROUPS[0], leads=30 * days, **speed, claim_sla_met=0.95, contact_sla_met=0.75),
            row(
                GROUPS[1],
                leads=20 * days,
                time_to_claim_p50_s=150.0,
                time_to_first_touch_p50_s=5400.0,
                claim_sla_met=0.8,
                contact_sla_met=0.5,
            ),
            row(GROUPS[2], leads=7, time_to_claim_p50_s=95.0, claim_sla_met=0.9),
        ]


def row(group: str, *, leads: int, **more: Any) -> dict[str, Any]:
    return {
        "by": "rule",
        "group": group,
        "leads": leads,
        "too_few": leads < 30,
        "assigned": leads // 2,
        "assigned_share": 0.5,
        "queued": leads // 4,
        "queued_share": 0.25,
        "nurture": leads // 8,
        "nurture_share": 0.125,
        "disqualified": 0,
        "disqualified_share": 0.0,
        "unmatched_share": 0.1,
        "time_to_card_p50_s": 0.004,
        "time_to_claim_p90_s": 600.0,
        "time_to_first_touch_p50_s": None,
        "time_to_first_touch_p90_s": None,
        "contact_sla_met": None,
        "rejects": 2,
        "rejects_per_100": 6.67,
        "rejects_per_100_by_reason": {"Not my territory": 4.44, "=cmd|' /C calc'!A0": 2.22},
        "reassignments": 1,
        "reassignments_per_100": 3.33,
        "reassignments_per_100_by_reason": {"sla_missed": 3.33},
        "converted": 3,
        "conversion_rate": 0.1,
        "conversion_ci_low": 0.0346,
        "conversion_ci_high": 0.2562,
        "won": 1,
        "lost": 1,
        "win_rate": 0.5,
        "win_ci_low": 0.0945,
        "win_ci_high": 0.9055,
        "pipeline": 12500.0,
        **more,
    }
