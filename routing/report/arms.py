"""An experiment's two arms side by side, from a report grouped by arm, and whether the
difference between them is yet meaningful.

For each proportion the arms are compared on (claim SLA and contact SLA kept, conversion to an
opportunity) the difference candidate − control gets a 95% interval by Newcombe's method (1998,
"method 10"): built from each arm's Wilson interval, it keeps the Wilson interval's honesty with
extreme shares. Under `TOO_FEW` leads in an arm nothing is judged: too few to tell yet. From
there, an interval that excludes zero is a meaningful difference; one that spans zero is not yet,
and the sentence says how many leads per arm a test at 95% confidence and 80% power would need if
the difference seen so far held. Speeds are shown (p50, p90) but not
judged: a median's interval would need the durations, where the report keeps histograms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from routing.experiments import CANDIDATE, CONTROL
from routing.report.figures import TOO_FEW, GroupReport, Report
from routing.report.stats import Z_95, Proportion, proportion

_Z_POWER_80 = NormalDist().inv_cdf(0.80)


@dataclass(frozen=True, slots=True)
class Difference:
    """One figure's difference between the arms, candidate − control, and what it means."""

    figure: str  # "conversion", "claim SLA", "contact SLA"
    control: Proportion
    candidate: Proportion
    difference: float | None  # in rate (0.05: five points more for the candidate)
    low: float | None
    high: float | None
    verdict: str  # a plain sentence


@dataclass(frozen=True, slots=True)
class ArmComparison:
    experiment: str
    control: GroupReport | None  # None: no lead in this arm in the window
    candidate: GroupReport | None
    differences: tuple[Difference, ...]


def compare_arms(report: Report) -> tuple[ArmComparison, ...]:
    """Each experiment met in `report` (grouped by "arm"), its arms and their differences."""
    if report.by != "arm":
        raise ValueError(f"arms are compared in a report grouped by arm, not by {report.by}")
    arms: dict[str, dict[str, GroupReport]] = {}
    for group in report.groups:
        if group.group is None or "/" not in group.group:
            continue
        experiment, _, arm = group.group.rpartition("/")
        arms.setdefault(experiment, {})[arm] = group
    comparisons = []
    for experiment in sorted(arms):
        control = arms[experiment].get(CONTROL)
        candidate = arms[experiment].get(CANDIDATE)
        comparisons.append(
            ArmComparison(experiment, control, candidate, tuple(_differences(control, candidate)))
        )
    return tuple(comparisons)


def _differences(
    control: GroupReport | None, candidate: GroupReport | None
) -> Iterable[Difference]:
    if control is None or candidate is None:
        return
    yield difference("conversion", control.converted, candidate.converted)
    yield difference("claim SLA", control.claim_sla, candidate.claim_sla)
    yield difference("contact SLA", control.contact_sla, candidate.contact_sla)


def arms_of_rows(
    rows: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Rows of a report by arm, as `leadrouter report --json` prints them: experiment -> arm ->
    its row (the leads in no experiment left out)."""
    arms: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        group = row.get("group")
        if isinstance(group, str) and "/" in group:
            experiment, _, arm = group.rpartition("/")
            arms.setdefault(experiment, {})[arm] = row
    return dict(sorted(arms.items()))


def row_differences(
    control: Mapping[str, Any], candidate: Mapping[str, Any]
) -> tuple[Difference, ...]:
    """`_differences` from two arms' rows: each proportion back from its share and its count."""
    figures = (
        ("conversion", "conversion_rate", "leads"),
        ("claim SLA", "claim_sla_met", "claim_sla_checked"),
        ("contact SLA", "contact_sla_met", "contact_sla_checked"),
    )
    return tuple(
        difference(figure, _share(control, rate, of), _share(candidate, rate, of))
        for figure, rate, of in figures
    )


def _share(row: Mapping[str, Any], rate_key: str, of_key: str) -> Proportion:
    of = int(row.get(of_key) or 0)
    rate = row.get(rate_key)
    # The share is count / of in floats: rounding gives the count back exactly.
    return proportion(round(rate * of) if rate is not None else 0, of)


def difference(figure: str, control: Proportion, candidate: Proportion) -> Difference:
    """The difference candidate − control in `figure`'s rate, its 95% interval and a sentence."""
    if control.rate is None or candidate.rate is None:
        return Difference(
            figure, control, candidate, None, None, None, f"{figure}: no data in an arm yet"
        )
    assert control.low is not None and control.high is not None
    assert candidate.low is not None and candidate.high is not None
    p1, l1, u1 = candidate.rate, candidate.low, candidate.high
    p2, l2, u2 = control.rate, control.low, control.high
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    span = f"{_points(d)} (95% interval {_points(low)} to {_points(high)})"
    fewest = min(control.of, candidate.of)
    spans_zero = low <= 0 <= high
    if fewest < TOO_FEW:
        # The intervals' approximations run thin on a handful of leads: 5 of 8 against 0 of 4
        # leaves zero out, where Fisher's exact test gives p = 0.08. Judge nothing yet.
        verdict = (
            f"{figure}: too few leads to tell yet ({control.of} in the control, {candidate.of} "
            f"in the candidate; {TOO_FEW} in each at least), {span}"
        )
        if spans_zero and d != 0:
            more = max(leads_needed(p2, p1), TOO_FEW) - fewest
            verdict += f"; if the difference holds, about {more:,} more leads per arm would tell"
    elif not spans_zero:
        better = "higher" if d > 0 else "lower"
        verdict = f"{figure}: the candidate's is {better}, {span}: a meaningful difference"
    elif d == 0:
        verdict = f"{figure}: no difference seen yet, {span}"
    else:
        more = max(0, leads_needed(p2, p1) - fewest)
        verdict = (
            f"{figure}: not yet meaningful, {span}; if the difference holds, about "
            f"{more:,} more leads per arm would tell"
        )
    return Difference(figure, control, candidate, d, low, high, verdict)


def leads_needed(p_control: float, p_candidate: float) -> int:
    """Leads per arm for a two-sided test at 95% confidence to find the difference between
    these rates with 80% power (the normal approximation for two proportions)."""
    d = abs(p_candidate - p_control)
    if d == 0:
        raise ValueError("no difference to find")
    mean = (p_control + p_candidate) / 2
    root = Z_95 * math.sqrt(2 * mean * (1 - mean)) + _Z_POWER_80 * math.sqrt(
        p_control * (1 - p_control) + p_candidate * (1 - p_candidate)
    )
    return math.ceil(root * root / (d * d))


def _points(rate: float) -> str:
    """A difference of rates in percentage points, signed."""
    return f"{rate * 100:+.1f} pts"
