"""The routing report over a database: `python -m bench.bench_report --database`.

On a SQLite file and on a throwaway PostgreSQL (started from the installed binaries, as the tests
start theirs), each migrated as `serve` migrates:

- fill: `--stories` leads (1,000,000 by default) over `--days` days, each with its story as the
  refresh stores it (outcome, rule, team, rep, card, claim, SLAs, rejects, first touch, opportunity,
  won or lost, amount: `bench.bench_report.make_stories`), in batches of 20,000;
- rollups: every past day's leads tallied per grouping (`roll_up_days`), as the report job does
  once after an upgrade and then for the days that change;
- report: `routing_report` for the last 7 and 90 days, by rule and by rep, the first call and the
  median of three more (the figures a dashboard page or `leadrouter report` waits for), and the
  7 days tallied from the stories alone, for what the rollups save;
- refresh: 20,000 leads routed through the service layer (`intake_many`: decisions, offers, audit
  rows), one in ten claimed, then every story made from those rows (`refresh_report`): the cost
  per lead of the first refresh after an upgrade, and of keeping stories up to date.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_report import NOW, make_stories
from bot.policy_file import load_policy
from bot.service.intake import intake_many
from bot.service.offers import claim
from bot.service.report import refresh_report, roll_up_days, routing_report
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.leads import parse_lead
from routing.policy import Policy
from routing.report import LeadStory, Report, tally_by
from routing.report.window import Window
from storage import migrate
from storage import repository as repo
from storage.db import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
FILL_BATCH = 20_000
REFRESH_LEADS = 20_000
REPEATS = 3


def policy_file(folder: Path) -> Path:
    """50 reps in 5 teams, and rules that read the fields `make_stories` leaves missing."""
    reps = "\n".join(f"  - {{id: rep{n:02}}}" for n in range(50))
    teams = "\n".join(
        f"  team{t}: {{members: [{', '.join(f'rep{n:02}' for n in range(t * 10, t * 10 + 10))}]}}"
        for t in range(5)
    )
    rules = "\n".join(
        f"  - name: rule{t}\n    when: {{industry: I{t}, employees: {{gte: 10}}, country: US}}\n"
        f"    assign: {{team: team{t}}}"
        for t in range(5)
    )
    path = folder / "routing.yml"
    path.write_text(
        f"reps:\n{reps}\nteams:\n{teams}\nrules:\n{rules}\n"
        "  - name: Everyone\n    when: {source: [web, event]}\n    assign: {team: team0}\n",
        encoding="utf-8",
    )
    return path


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await work()
    return time.perf_counter() - began, result


def lead_row(external_id: str, story: LeadStory) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "status": "claimed" if story.claimed_at else "queued",
        "rep_id": story.rep,
        "team": story.team,
        "rule": story.rule,
        "queue": None,
        "reason": "",
        "account_id": None,
        "email": None,
        "company": None,
        "crm_system": None,
        "crm_id": None,
        "source": story.source,
        "raw": {},
        "facts": {},
        "created_at": story.created_at,
        "updated_at": story.created_at,
    }


async def fill(uow: UnitOfWork, count: int, days: int, rules: int, seed: int) -> None:
    for batch, start in enumerate(range(0, count, FILL_BATCH)):
        stories = make_stories(min(FILL_BATCH, count - start), days, rules, seed + batch)

        def work(tx: Transaction, stories: list[LeadStory] = stories, batch: int = batch) -> None:
            rows = [lead_row(f"B{batch}-{n}", story) for n, story in enumerate(stories)]
            ids = repo.insert_leads(session=tx.session, rows=rows)
            repo.save_stories(
                session=tx.session,
                stories={ids[row["external_id"]]: s for row, s in zip(rows, stories, strict=True)},
                now=NOW,
            )

        await uow.write(work)


async def reports(uow: UnitOfWork) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for days in (7, 90):
        window = Window(NOW - timedelta(days=days), NOW)
        for by in ("rule", "rep"):

            def report(window: Window = window, by: str = by) -> Awaitable[Report]:
                return routing_report(uow, window, by=by)

            first, result = await timed(report)
            again = [(await timed(report))[0] for _ in range(REPEATS)]
            found[f"{days}d_by_{by}"] = {
                "leads": result.total.leads,
                "groups": len(result.groups),
                "first_s": round(first, 3),
                "median_s": round(statistics.median(again), 3),
            }
    week = Window(NOW - timedelta(days=7), NOW)

    async def from_stories() -> Any:
        stories = await uow.read(
            lambda session: repo.stories_between(session=session, start=week.since, end=week.until)
        )
        return tally_by(stories, by="rule", now=NOW, since=week.since, until=week.until)

    seconds, _ = await timed(from_stories)
    found["7d_by_rule_from_stories_alone_s"] = round(seconds, 3)
    return found


async def refresh(url: str, policy: Policy, count: int) -> dict[str, Any]:
    """Stories made from the rows routing writes, on a database of their own."""
    migrate.upgrade(url)
    db = open_database(url)
    clock = {"now": NOW - timedelta(hours=1)}
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: clock["now"], cards=True)
    try:
        leads = [
            parse_lead(
                {
                    "id": f"R{n}",
                    "email": f"buyer@r{n}.example",
                    "country": "US",
                    "source": "web",
                    "employees": n % 500,
                }
            )
            for n in range(count)
        ]
        for start in range(0, count, 500):
            await intake_many(uow, leads[start : start + 500])
        clock["now"] += timedelta(minutes=5)
        for n in range(0, count, 10):
            await claim(uow, f"R{n}", by=uow.policy().teams["team0"].members[0])
        clock["now"] += timedelta(minutes=5)
        seconds, done = await timed(lambda: refresh_report(uow))
        again, _ = await timed(lambda: refresh_report(uow))
    finally:
        await db.dispose()
    return {
        "leads": count,
        "stories_written": done.written,
        "first_refresh_s": round(seconds, 2),
        "stories_per_s": round(done.written / seconds) if seconds else None,
        "refresh_again_s": round(again, 2),
    }


async def one_database(
    url: str, refresh_url: str, count: int, days: int, rules: int, seed: int, policy: Policy
) -> dict[str, Any]:
    migrate.upgrade(url)
    db: Database = open_database(url)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: NOW)
    try:
        fill_s, _ = await timed(lambda: fill(uow, count, days, rules, seed))
        rollup_s, rolled = await timed(lambda: roll_up_days(uow, limit=days + 1))
        result: dict[str, Any] = {
            "fill_s": round(fill_s, 1),
            "rollups": {"days": rolled, "seconds": round(rollup_s, 1)},
            "report": await reports(uow),
        }
    finally:
        await db.dispose()
    result["refresh"] = await refresh(refresh_url, policy, REFRESH_LEADS)
    return result


def run_databases(count: int, days: int, rules: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {"leads": count, "days": days, "rules": rules}
    with tempfile.TemporaryDirectory() as folder:
        policy = load_policy(policy_file(Path(folder)))
        path = Path(folder) / "report.db"
        results["sqlite"] = asyncio.run(
            one_database(
                f"sqlite+aiosqlite:///{path}",
                f"sqlite+aiosqlite:///{Path(folder) / 'refresh.db'}",
                count,
                days,
                rules,
                seed,
                policy,
            )
        )
        results["sqlite"]["file_mb"] = round(os.path.getsize(path) / 2**20)
        sys.path.insert(0, str(ROOT))
        from tests.pg import missing_binaries, start_postgres

        if missing_binaries():
            results["postgresql"] = f"skipped: {', '.join(missing_binaries())} not installed"
            return results
        server = start_postgres()
        try:
            names = [asyncio.run(server.create_database()) for _ in range(2)]
            results["postgresql"] = asyncio.run(
                one_database(
                    server.url(names[0]), server.url(names[1]), count, days, rules, seed, policy
                )
            )
        finally:
            server.stop()
    return results
