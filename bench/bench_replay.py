"""How long `leadrouter replay` takes over 100,000 stored leads on SQLite.

    .venv/bin/python -m bench.bench_replay              # 100,000 leads and accounts
    .venv/bin/python -m bench.bench_replay --quick      # 10,000 of each, printed only

Fills a SQLite database once, through the service layer as imports would (`import_accounts`,
then `intake_many` 100 leads a transaction, the clock moving 30 days over the leads): the
routing benchmark's policy (500 reps in 20 teams, 50 rules), accounts and leads
(`bench.bench_routing`, same seed). The fill takes minutes. Then runs `leadrouter replay` over
the whole window three times as a subprocess, end to end (process start, reading the accounts
and the leads, routing, printing), under that policy changed a little (a shorter default SLA,
two teams distributing otherwise): the summary twice, `--json` into /dev/null once, each timed
on the wall clock and in CPU seconds (on a shared machine the wall clock adds the wait for a
core). The median summary run is the figure. The database file is checked unchanged by the
replays. `--database FILE` keeps the filled database there for the next run. The full run writes
`bench/results/replay.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from bench.bench_routing import (
    DEFAULT_SEED,
    iter_leads,
    make_accounts,
    make_policy_text,
    routing_core,
)
from routing.accounts import AccountIndex
from routing.leads import parse_lead
from routing.policy import parse_policy

ROOT = Path(__file__).resolve().parents[1]
LEADROUTER = str(Path(sys.executable).parent / "leadrouter")
RESULTS = ROOT / "bench" / "results" / "replay.json"
FIRST_DAY = datetime(2025, 6, 1, tzinfo=UTC)
DAYS = 30
GROUP = 100  # leads a transaction while filling; the clock moves between groups
TARGET_SECONDS = 10.0


def changed_policy(text: str) -> str:
    """The benchmark's policy, changed as an admin might: a shorter default SLA, and two teams
    distributing otherwise (round robin to least loaded, weighted to round robin)."""
    text = text.replace("default: 15m", "default: 10m", 1)
    text = text.replace("distribution: round_robin", "distribution: least_loaded", 1)
    text = text.replace("distribution: weighted", "distribution: round_robin", 1)
    return text


async def fill(url: str, policy_text: str, count: int, seed: int) -> dict[str, float]:
    from bot.service.accounts import import_accounts
    from bot.service.intake import intake_many
    from bot.service.unit_of_work import UnitOfWork
    from storage.db import open_database
    from storage.migrate import upgrade

    upgrade(url)
    policy = parse_policy(policy_text, source="bench-policy.yml")
    # The generator's accounts of former reps keep no owner: an import refuses unknown owners.
    accounts = [
        account if account.owner in policy.reps else replace(account, owner=None)
        for account in make_accounts(seed, count, sorted(policy.reps))
    ]
    moment = [FIRST_DAY]
    db = open_database(url)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: moment[0])
    began = time.perf_counter()
    for start in range(0, len(accounts), 5000):
        await import_accounts(uow, accounts[start : start + 5000])
    filled_accounts = time.perf_counter() - began
    leads = iter_leads(seed, accounts, AccountIndex(accounts))
    step = timedelta(days=DAYS) * GROUP / count
    began = time.perf_counter()
    done = 0
    while done < count:
        group = [parse_lead(raw) for _, _, raw in islice(leads, min(GROUP, count - done))]
        await intake_many(uow, group)
        done += len(group)
        moment[0] += step
    filled_leads = time.perf_counter() - began
    await uow.aclose()
    await db.dispose()
    return {"accounts_s": round(filled_accounts, 1), "leads_s": round(filled_leads, 1)}


def replay(url: str, rules: Path, *extra: str) -> dict[str, float]:
    """One `leadrouter replay` of the whole window, end to end: its wall-clock seconds, and the
    CPU seconds it used (on a shared machine, wall time is CPU time plus waiting for a core)."""
    last_day = (FIRST_DAY + timedelta(days=DAYS)).date().isoformat()
    command = [LEADROUTER, "replay", "--rules", str(rules), "--from", "2025-06-01"]
    command += ["--to", last_day, *extra]
    cpu_before = _children_cpu()
    began = time.perf_counter()
    with open(os.devnull, "w") as sink:
        done = subprocess.run(
            command,
            env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
            stdout=sink if extra else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"replay failed: {done.stderr[-2000:]}")
    if not extra:
        print(done.stdout.splitlines()[0], file=sys.stderr)
    return {"wall_s": round(elapsed, 2), "cpu_s": round(_children_cpu() - cpu_before, 2)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_replay", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 leads and accounts")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--database",
        type=Path,
        help="keep the filled database in this file, and use it as it is if it exists already",
    )
    args = parser.parse_args(argv)
    count = 10_000 if args.quick else 100_000
    text = make_policy_text(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as folder:
        path = args.database or Path(folder) / "replay.db"
        url = f"sqlite:///{path}"
        rules = Path(folder) / "new.yml"
        rules.write_text(changed_policy(text), encoding="utf-8")
        filled: dict[str, float] | str = "kept from an earlier run"
        if not path.exists():
            print(f"filling {count:,} accounts and leads …", file=sys.stderr)
            filled = asyncio.run(fill(url, text, count, args.seed))
            print(f"filled: {filled}", file=sys.stderr)
        before = digest(path)
        summaries = [replay(url, rules) for _ in range(2)]
        as_json = replay(url, rules, "--json")
        unchanged = digest(path) == before
    walls = [run["wall_s"] for run in summaries]
    result = {
        "leads": count,
        "accounts": count,
        "fill": filled,
        "summary_runs": summaries,
        "json_run": as_json,
        "median_summary_s": round(statistics.median(walls), 2),
        "leads_per_s": round(count / statistics.median(walls)),
        "load_average": os.getloadavg(),
        "database_unchanged": unchanged,
        "target_s": TARGET_SECONDS,
    }
    print(json.dumps(result, indent=2))
    if not args.quick:
        RESULTS.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "routing_core": routing_core(),
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "when": datetime.now().astimezone().isoformat(timespec="seconds"),
                    **result,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"written to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 0 if unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
