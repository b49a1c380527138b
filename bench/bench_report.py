"""The routing report: its pure core, and the report over a database of a million leads.

    python -m bench.bench_report                 # 200,000 stories over 365 days, 50 rules
    python -m bench.bench_report --quick         # 20,000 stories
    python -m bench.bench_report --stories 1000000 --days 365
    python -m bench.bench_report --database      # 1,000,000 leads on SQLite and PostgreSQL
    python -m bench.bench_report --database --stories 50000   # a smaller database

Without --database, no database: the Python side of the report, which the storage side feeds.
- raw: `tally_by` over every story in memory, per grouping (the cost per lead when a report is
  built from the leads themselves, as for a short window);
- rollups: the stories tallied once per (day, group), as a rollup table would hold them, then a
  year's report merged from those rows (`merge_all`, `report_of_tallies`): the cost a report over
  any number of leads pays once its rollups are read.

With --database (`bench.bench_report_db`), the same stories stored as a million leads' stories
(each with its touches, opportunities, wins and losses), the day rollups made, then
`routing_report` timed for a 7-day and a 90-day window by rule and by rep, on a SQLite file and
on a throwaway PostgreSQL. Prints one JSON object; nothing else is written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from routing.model import Outcome
from routing.report import LeadStory, Tally, merge_all, report_of_tallies, tally_by

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REASONS = ("Not my territory", "Existing customer / already working it", "Not a fit / junk")
FIELDS = ("industry", "employees", "country", "source")


def make_stories(count: int, days: int, rules: int, seed: int) -> list[LeadStory]:
    rng = random.Random(seed)
    reps = [f"rep{n:02}" for n in range(50)]
    stories = []
    for n in range(count):
        arrived = NOW - timedelta(seconds=rng.uniform(0, days * 86400))
        outcome = rng.choices(list(Outcome), weights=(80, 10, 7, 3))[0]
        assigned = outcome is Outcome.ASSIGNED
        claimed = arrived + timedelta(seconds=rng.lognormvariate(5, 1)) if assigned else None
        touched = claimed + timedelta(seconds=rng.lognormvariate(7, 1.5)) if claimed else None
        converted = touched is not None and rng.random() < 0.2
        closed = converted and rng.random() < 0.6
        later = (touched or arrived) + timedelta(days=rng.uniform(1, 60))
        stories.append(
            LeadStory(
                f"L{n}",
                created_at=arrived,
                outcome=outcome,
                rule=f"rule{rng.randrange(rules):02}",
                team=f"team{rng.randrange(5)}" if assigned else None,
                rep=rng.choice(reps) if assigned else None,
                method="round_robin" if assigned else None,
                source=rng.choice(("web", "demo_request", "content_download", "event")),
                segment=rng.choice(("SMB", "MidMarket", "Enterprise")),
                region=rng.choice(("NA", "EMEA", "APAC", "LATAM")),
                unmatched=outcome is Outcome.QUEUED and rng.random() < 0.5,
                missing=frozenset(f for f in FIELDS if rng.random() < 0.1),
                card_posted_at=arrived + timedelta(seconds=0.004) if assigned else None,
                claimed_at=claimed,
                claim_due_at=arrived + timedelta(minutes=15) if assigned else None,
                first_touch_at=touched,
                contact_due_at=claimed + timedelta(hours=4) if claimed else None,
                rejects=(rng.choice(REASONS),) if rng.random() < 0.05 else (),
                converted_at=later if converted else None,
                won_at=later + timedelta(days=30) if closed and rng.random() < 0.4 else None,
                amount=Decimal(rng.randrange(1000, 100000)) if converted else None,
            )
        )
    return stories


def timed(work: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def run(count: int, days: int, rules: int, seed: int) -> dict[str, Any]:
    stories = make_stories(count, days, rules, seed)
    since = NOW - timedelta(days=days)
    raw = {}
    for by in ("all", "rule", "rep"):
        seconds, _ = timed(lambda by=by: tally_by(stories, by=by, now=NOW, since=since))
        raw[by] = {"seconds": round(seconds, 3), "stories_per_s": round(count / seconds)}
    by_day: dict[datetime, list[LeadStory]] = defaultdict(list)
    for story in stories:
        by_day[story.created_at.replace(hour=0, minute=0, second=0, microsecond=0)].append(story)
    rollups: list[dict[str | None, Tally]] = [
        tally_by(day, by="rule", now=NOW) for day in by_day.values()
    ]
    rows = sum(len(rollup) for rollup in rollups)

    def from_rollups() -> Any:
        keys = {key for rollup in rollups for key in rollup}
        merged = {key: merge_all(r[key] for r in rollups if key in r) for key in keys}
        return report_of_tallies(merged, by="rule", now=NOW, since=since, until=NOW)

    seconds, report = timed(from_rollups)
    return {
        "stories": count,
        "days": days,
        "rules": rules,
        "raw": raw,
        "rollups": {"rows": rows, "seconds": round(seconds, 3), "groups": len(report.groups)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--quick", action="store_true", help="20,000 stories")
    parser.add_argument(
        "--database",
        action="store_true",
        help="the report over SQLite and PostgreSQL (1,000,000 leads unless --stories)",
    )
    args = parser.parse_args(argv)
    count = 20_000 if args.quick else args.stories
    began = time.process_time(), time.perf_counter()
    if args.database:
        from bench.bench_report_db import run_databases

        leads = args.stories if "--stories" in (argv or sys.argv) else 1_000_000
        result = run_databases(20_000 if args.quick else leads, args.days, args.rules, args.seed)
    else:
        result = run(count, args.days, args.rules, args.seed)
    cpu, wall = time.process_time() - began[0], time.perf_counter() - began[1]
    result["cpu_share"] = round(cpu / wall, 2) if wall else None
    result["python"] = platform.python_version()
    result["cpus"] = os.cpu_count()
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
