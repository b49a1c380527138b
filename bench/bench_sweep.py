"""The SLA watchdog's sweep over a large table of open offers, on SQLite and PostgreSQL.

    python -m bench.bench_sweep             # 100,000 open offers, 1,000 of them overdue
    python -m bench.bench_sweep --quick     # 10,000 open offers, 100 overdue

For each database: open offers are made through the service layer (as live traffic would), then
- idle: a sweep when nothing is due, timed 30 times (it runs every `sla.check_every`, so its cost
  is paid all day long); target at most 20 ms;
- overdue: the deadlines of a random sample of offers are moved into the past and one sweep
  reassigns them all (each expired, re-routed, recorded, carded); target within 1 s for 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sweep.json"
START = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)
REPS = 100
IDLE_RUNS = 30


def policy_text() -> str:
    reps = "\n".join(f"  - {{id: rep{n:03}}}" for n in range(REPS))
    members = ", ".join(f"rep{n:03}" for n in range(REPS))
    return (
        f"reps:\n{reps}\n"
        f"teams:\n  pool: {{members: [{members}], distribution: round_robin}}\n"
        "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
        "sla: {default: 1h}\n"
    )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def bench_database(url: str, offers: int, overdue: int) -> dict[str, Any]:
    from bot.service.intake import intake_many
    from bot.service.unit_of_work import UnitOfWork
    from bot.service.watchdog import sweep
    from routing.leads import parse_lead
    from routing.policy import parse_policy
    from storage.db import open_database
    from storage.migrate import upgrade
    from storage.models import OfferRow

    upgrade(url)
    db = open_database(url)
    policy = parse_policy(policy_text())
    clock = Clock()
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    try:
        began = time.perf_counter()
        for start in range(0, offers, 1000):
            await intake_many(
                uow,
                [
                    parse_lead({"id": f"L{n}", "email": f"buyer{n}@company{n % 5000}.example"})
                    for n in range(start, min(offers, start + 1000))
                ],
            )
        filled = time.perf_counter() - began

        clock.now = START + timedelta(minutes=30)  # nothing is due for another half hour
        idle = []
        for _ in range(IDLE_RUNS):
            began = time.perf_counter()
            result = await sweep(uow)
            idle.append((time.perf_counter() - began) * 1000)
            assert result.expired == 0, result

        chosen = random.Random(5).sample(range(1, offers + 1), overdue)
        await db.run(
            lambda session: session.execute(
                update(OfferRow)
                .where(col(OfferRow.id).in_(chosen))
                .values(sla_due_at=START + timedelta(minutes=5))
            )
        )
        began = time.perf_counter()
        result = await sweep(uow)
        swept = time.perf_counter() - began
        assert result.expired == overdue and result.reassigned == overdue, result
    finally:
        await uow.aclose()
        await db.dispose()
    idle.sort()
    return {
        "open_offers": offers,
        "fill_seconds": round(filled, 1),
        "idle_sweep_ms": {
            "p50": round(statistics.median(idle), 2),
            "max": round(idle[-1], 2),
        },
        "overdue": overdue,
        "overdue_sweep_s": round(swept, 3),
        "reassigned_per_s": round(overdue / swept),
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 offers, 100 overdue")
    args = parser.parse_args(argv)
    offers, overdue = (10_000, 100) if args.quick else (100_000, 1_000)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory() as folder:
        print(f"SQLite: {offers:,} open offers, {overdue:,} overdue …", flush=True)
        results["sqlite"] = await bench_database(
            f"sqlite+aiosqlite:///{Path(folder) / 'sweep.db'}", offers, overdue
        )
    sys.path.insert(0, str(ROOT))
    from tests.pg import missing_binaries, start_postgres

    if missing_binaries():
        results["postgresql"] = f"skipped: {', '.join(missing_binaries())} not installed"
    else:
        print(f"PostgreSQL: {offers:,} open offers, {overdue:,} overdue …", flush=True)
        server = start_postgres()
        try:
            results["postgresql"] = await bench_database(server.url("postgres"), offers, overdue)
        finally:
            server.stop()

    print(f"\n{'database':<12}{'idle p50':>10}{'idle max':>10}{'overdue sweep':>15}  targets")
    for name in ("sqlite", "postgresql"):
        figures = results[name]
        if isinstance(figures, str):
            print(f"{name:<12}{figures}")
            continue
        idle, swept = figures["idle_sweep_ms"], figures["overdue_sweep_s"]
        verdict = "met" if idle["p50"] <= 20 and swept <= 1 else "MISSED"
        print(
            f"{name:<12}{idle['p50']:>8.1f}ms{idle['max']:>8.1f}ms{swept:>13.3f} s"
            f"  idle ≤ 20 ms, {figures['overdue']:,} overdue ≤ 1 s: {verdict}"
        )
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
