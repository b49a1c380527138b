"""The routing report: one pure computation behind `leadrouter report`, the digest's weekly
section, App Home's figures and the dashboard.

    build_report(stories, by="rule", now=now, since=now - timedelta(days=7)) -> Report

No I/O and no clock: the leads' stories (`LeadStory`), the window and `now` come in, plain
figures come out (`GroupReport`), and `lines` writes them as JSON lines or CSV rows.

How it scales. The figures are computed from a `Tally` per group, and every part of a tally adds
up: counts, sums of amounts, and durations kept as histograms of logarithmic buckets (1% relative
accuracy, `stats`) rather than as lists. So tallies of any split of the leads merge into exactly
the tally of the whole (`Tally.merge`), and the report can be built from pre-aggregated rows
(`report_of_tallies`) instead of a million stories in memory: per group and day rollups merged
over the window, plus the leads of the window's partial days tallied as they are; or straight
from `GROUP BY` queries, since a histogram is a count per stored bucket number (`bucket_of`),
which SQLite and PostgreSQL can both sum. Exact percentiles cannot be merged from parts, and
mergeable sketches that need floating-point merging (t-digest) depend on the order of merging;
1% of a five-minute claim time is three seconds, which no decision here turns on. A rollup row
merges in about 20 µs in Python (`bench/bench_report.py`), so a year of per-rule day rollups
(18,000 rows) would take about 0.4 s.

A tally counts an SLA not yet due as pending, so a rollup is as of when it was made: it is made
again when one of its leads gets an event, and a lapse is an event (the watchdog records a
missed claim, and the contact SLA's watchdog a missed touch), so no rollup keeps a lapsed SLA
pending for longer than a sweep.

What counts as what (`tally`): a lead belongs to the window it arrived in, with everything that
happened to it by `now`, and to the groups of the routing it got on arrival (its rule, team,
rep: the report judges routing; its outcome is where it is now); times run from its arrival; a
claim SLA is charged only once its card reached Slack, as the watchdog charges it; conversion is
to an opportunity, of all the group's leads; the win rate is of the opportunities won or lost.
"""

from routing.report.figures import (
    TOO_FEW,
    FieldHealth,
    GroupReport,
    Report,
    RepShare,
    Speed,
    TeamFairness,
    build_report,
    report_of_tallies,
    team_weights,
)
from routing.report.lines import COLUMNS, csv_row, json_line, json_object
from routing.report.stats import Proportion, bucket_of, percentile, proportion, wilson_interval
from routing.report.story import (
    EventKind,
    LeadStory,
    OutcomeEvent,
    Outcomes,
    fields_read,
    outcomes_of,
    story_of_decision,
)
from routing.report.tally import GROUPINGS, SlaStatus, Tally, merge_all, tally_by

__all__ = [
    "COLUMNS",
    "GROUPINGS",
    "TOO_FEW",
    "EventKind",
    "FieldHealth",
    "GroupReport",
    "LeadStory",
    "OutcomeEvent",
    "Outcomes",
    "Proportion",
    "RepShare",
    "Report",
    "SlaStatus",
    "Speed",
    "Tally",
    "TeamFairness",
    "bucket_of",
    "build_report",
    "csv_row",
    "fields_read",
    "json_line",
    "json_object",
    "merge_all",
    "outcomes_of",
    "percentile",
    "proportion",
    "report_of_tallies",
    "story_of_decision",
    "tally_by",
    "team_weights",
    "wilson_interval",
]
