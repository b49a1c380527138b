"""The lead lifecycle on a real database: POST latency, import throughput, serve's memory.

    python -m bench.bench_intake                 # all three, SQLite and PostgreSQL
    python -m bench.bench_intake --quick         # 10 s of POSTs, smaller files and tables
    python -m bench.bench_intake --only post     # or: import, rss

- post: `leadrouter serve` on SQLite as a subprocess; signed leads POSTed at a fixed rate (open
  loop: a lead is sent on schedule whether or not earlier answers have come back) for a fixed
  time; the latency is from sending to the 201, which the server gives after the decision is
  committed.
- import: `leadrouter import` of a generated CSV, end to end (process start included), on SQLite
  and on PostgreSQL (a throwaway server started from the installed binaries).
- rss: a SQLite database filled with 100,000 accounts and 100,000 routed leads, then `serve`
  started on it and fed leads; its resident memory sampled throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
LEADROUTER = str(Path(sys.executable).parent / "leadrouter")
SECRET = "bench-webhook-secret-0123456789abcdef"
RESULTS = ROOT / "bench" / "results" / "intake.json"

POLICY = """\
timezone: UTC
reps:
{reps}
teams:
  na: {{members: [{na}], distribution: weighted}}
  emea: {{members: [{emea}], distribution: least_loaded}}
  smb: {{members: [{smb}], distribution: round_robin}}
qualify:
  - {{name: Free mail, when: {{email_domain_type: free}}, outcome: nurture}}
accounts: {{fuzzy_threshold: 90, sticky: true}}
rules:
  - {{name: Owner, when: {{account.owner: {{exists: true}}}}, assign: account_owner}}
  - {{name: EMEA, when: {{region: EMEA}}, assign: {{team: emea}}}}
  - name: NA enterprise
    when: {{region: NA, segment: [MidMarket, Enterprise]}}
    assign: {{team: na}}
  - {{name: Small, when: {{segment: SMB}}, assign: {{team: smb}}}}
"""
COUNTRIES = ["US", "US", "CA", "GB", "DE", "FR", "NL", "JP", "BR"]
WORDS = [
    "North",
    "Blue",
    "River",
    "Stone",
    "Peak",
    "Cedar",
    "Iron",
    "Bright",
    "Nova",
    "Atlas",
    "Harbor",
    "Summit",
    "Pixel",
    "Quantum",
    "Vertex",
    "Orbit",
    "Maple",
    "Silver",
    "Falcon",
]
KINDS = ["Analytics", "Logistics", "Labs", "Systems", "Foods", "Health", "Energy", "Media"]


def write_policy(folder: Path) -> Path:
    reps = [f"r{n:02d}" for n in range(24)]
    lines = "\n".join(
        f"  - {{id: {rep}, capacity: 100000, weight: {1 + n % 3}}}" for n, rep in enumerate(reps)
    )
    path = folder / "policy.yml"
    path.write_text(
        POLICY.format(
            reps=lines, na=", ".join(reps[:8]), emea=", ".join(reps[8:16]), smb=", ".join(reps[16:])
        )
    )
    return path


def company(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)} {rng.choice(WORDS)}{rng.randint(1, 999)} {rng.choice(KINDS)}"


def leads(count: int, seed: int, prefix: str = "L") -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for n in range(count):
        name = company(rng)
        domain = name.lower().replace(" ", "") + ".com"
        yield {
            "id": f"{prefix}-{seed}-{n}",
            "email": f"p{n}@{'gmail.com' if rng.random() < 0.05 else domain}",
            "company": name,
            "country": rng.choice(COUNTRIES),
            "employees": rng.choice([5, 40, 150, 400, 900, 2500, 12000]),
            "source": rng.choice(["website", "demo_request", "webinar"]),
        }


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Leadrouter-Timestamp": timestamp,
        "X-Leadrouter-Signature": f"sha256={digest.hexdigest()}",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(
    database_url: str, policy: Path, port: int = 3000, source: Path = ROOT
) -> dict[str, str]:
    """The environment of a `leadrouter` subprocess running the code under `source`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADROUTER_", "DATABASE_"))}
    env.update(
        PYTHONPATH=str(source),
        DATABASE_URL=database_url,
        LEADROUTER_RULES=str(policy),
        LEADROUTER_WEBHOOK_SECRET=SECRET,
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="WARNING",
    )
    return env


class Serve:
    """`leadrouter serve` as a subprocess, up until closed."""

    def __init__(self, database_url: str, policy: Path, source: Path = ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [LEADROUTER, "serve"],
            env=environment(database_url, policy, self.port, source),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"serve exited: {self.process.stderr.read().decode()[-2000:]}"
                    )  # type: ignore[union-attr]
                try:
                    async with http.get(f"{self.url}/healthz") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("serve did not become healthy")

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the server process, MB."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


async def post_at_rate(url: str, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    bodies = [json.dumps(lead).encode() for lead in leads(int(rate * seconds), seed, "P")]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(body: bytes) -> None:
            began = time.perf_counter()
            async with http.post(f"{url}/leads", data=body, headers=signed(body)) as answer:
                await answer.read()
                latencies.append(time.perf_counter() - began)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started = time.perf_counter()
        tasks = []
        for n, body in enumerate(bodies):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": len(bodies),
        "statuses": statuses,
        "achieved_rate": round(len(bodies) / elapsed, 1),
        **percentiles(latencies),
    }


def export_revision(revision: str, folder: Path) -> Path:
    """The project's files at `revision` (a commit or branch of this checkout), for a before run:
    its `leadrouter` is then run with them first on the path, in this same virtualenv."""
    target = folder / f"source-{revision.replace('/', '-')}"
    if target.exists():
        return target
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


async def bench_post(
    folder: Path, seconds: float, rate: float, source: Path = ROOT, name: str = "post"
) -> dict[str, Any]:
    policy = write_policy(folder)
    server = Serve(f"sqlite+aiosqlite:///{folder / f'{name}.db'}", policy, source)
    try:
        await server.ready()
        await post_at_rate(server.url, 50, 2, seed=99)  # warm up: imports, caches, the policy
        result = await post_at_rate(server.url, rate, seconds, seed=1)
        result["serve_rss_mb"] = round(server.rss_mb()[1], 1)
        return result
    finally:
        server.close()


def write_csv(path: Path, count: int, seed: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["id", "email", "company", "country", "employees", "source"]
        )
        writer.writeheader()
        writer.writerows(leads(count, seed, "I"))


def run_import(
    database_url: str, policy: Path, path: Path, count: int, source: Path = ROOT
) -> dict[str, Any]:
    env = environment(database_url, policy, source=source)
    subprocess.run([LEADROUTER, "db", "upgrade"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    done = subprocess.run(
        [LEADROUTER, "import", str(path)], env=env, capture_output=True, text=True, timeout=1800
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
    return {
        "leads": count,
        "seconds": round(elapsed, 2),
        "leads_per_s": round(count / elapsed),
        "summary": done.stdout.strip().splitlines()[-1:],
    }


def bench_import(
    folder: Path, count: int, source: Path = ROOT, name: str = "import"
) -> dict[str, Any]:
    policy = write_policy(folder)
    path = folder / "leads.csv"
    write_csv(path, count, seed=7)
    results: dict[str, Any] = {
        "sqlite": run_import(
            f"sqlite+aiosqlite:///{folder / f'{name}.db'}", policy, path, count, source
        )
    }
    sys.path.insert(0, str(ROOT))
    from tests.pg import missing_binaries, start_postgres

    if missing_binaries():
        results["postgresql"] = f"skipped: {', '.join(missing_binaries())} not installed"
        return results
    server = start_postgres()
    try:
        url = server.url("postgres")
        results["postgresql"] = run_import(url, policy, path, count, source)
    finally:
        server.stop()
    return results


async def fill(database_url: str, policy_path: Path, accounts: int, stored: int) -> None:
    """Fill a database through the service layer, as imports and earlier traffic would."""
    from bot.policy_file import load_policy
    from bot.service.accounts import import_accounts
    from bot.service.intake import intake_many
    from bot.service.unit_of_work import UnitOfWork
    from routing.leads import parse_lead
    from routing.model import Account
    from storage.db import open_database
    from storage.migrate import upgrade

    upgrade(database_url)
    db = open_database(database_url)
    policy = load_policy(policy_path)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: datetime.now(UTC))
    rng = random.Random(3)
    reps = sorted(policy.reps)
    batch: list[Account] = []
    for n in range(accounts):
        name = company(rng) + f" {n}"
        owner = rng.choice(reps) if rng.random() < 0.3 else None
        batch.append(Account(f"A{n}", name, name.lower().replace(" ", "") + ".io", owner))
        if len(batch) == 5000:
            await import_accounts(uow, batch)
            batch = []
    if batch:
        await import_accounts(uow, batch)
    pending = []
    for lead in leads(stored, seed=11, prefix="S"):
        pending.append(parse_lead(lead))
        if len(pending) == 1000:
            await intake_many(uow, pending)
            pending = []
    if pending:
        await intake_many(uow, pending)
    await db.dispose()


async def bench_rss(folder: Path, accounts: int, stored: int) -> dict[str, Any]:
    policy = write_policy(folder)
    database_url = f"sqlite+aiosqlite:///{folder / 'rss.db'}"
    began = time.perf_counter()
    await fill(database_url, policy, accounts, stored)
    filled = time.perf_counter() - began
    server = Serve(database_url, policy)
    samples = []
    try:
        await server.ready()
        samples.append(server.rss_mb()[0])
        result = await post_at_rate(server.url, 100, 10, seed=5)
        current, peak = server.rss_mb()
        samples.append(current)
    finally:
        server.close()
    return {
        "accounts": accounts,
        "stored_leads": stored,
        "fill_seconds": round(filled, 1),
        "rss_after_start_mb": round(samples[0], 1),
        "rss_after_traffic_mb": round(samples[-1], 1),
        "peak_rss_mb": round(peak, 1),
        "post_p99_ms": result["p99_ms"],
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["post", "import", "rss"])
    parser.add_argument("--rate", type=float, default=100, help="POSTs per second (post)")
    parser.add_argument(
        "--before",
        metavar="REVISION",
        help="also run post and import at this git revision in the same run, e.g. main",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    with tempfile.TemporaryDirectory(prefix="leadrouter-bench-") as temp:
        folder = Path(temp)
        before = export_revision(args.before, folder) if args.before else None
        if args.only in (None, "post"):
            seconds = 10 if args.quick else 60
            if before is not None:
                earlier = await bench_post(folder, seconds, args.rate, before, "post-before")
                results["post_before"] = {"revision": args.before, **earlier}
                print("post before:", json.dumps(results["post_before"]), flush=True)
            results["post"] = await bench_post(folder, seconds, args.rate)
            print("post:", json.dumps(results["post"]), flush=True)
        if args.only in (None, "import"):
            count = 5000 if args.quick else 20000
            if before is not None:
                earlier = bench_import(folder, count, before, "import-before")
                results["import_before"] = {"revision": args.before, **earlier}
                print("import before:", json.dumps(results["import_before"]), flush=True)
            results["import"] = bench_import(folder, count)
            print("import:", json.dumps(results["import"]), flush=True)
        if args.only in (None, "rss"):
            size = 10_000 if args.quick else 100_000
            results["rss"] = await bench_rss(folder, size, size)
            print("rss:", json.dumps(results["rss"]), flush=True)
    if not args.quick and args.only is None:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
