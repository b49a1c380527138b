"""Replicas on one PostgreSQL: a burst of leads over 1, 3 and 10 `leadrouter serve` processes.

    python -m bench.bench_replicas             # 1, 3 and 10 replicas, 600 leads each (~1 minute)
    python -m bench.bench_replicas --quick     # 1 and 3 replicas, 300 leads

One throwaway PostgreSQL 15 (started from the installed binaries, as in the tests); for each
replica count a fresh database and that many `serve` processes on it, started at once (they
take turns migrating it). Each run: 30 clients, each POSTing its share of the leads one after
another (a closed loop: the next once the last was answered, which is after its decision was
committed), client n to replica n mod N. The policy and leads are bench_intake's: three teams
(weighted, least loaded, round robin), a nurture rule, 24 reps; no Slack, so the figures are
the deciding alone.

A last run puts 10 clients on one replica: as many as each of three replicas has in the main
runs, so its group commit forms batches of the same size, which separates what replicas cost
from what smaller batches cost.

Each configuration bursts five times (`--repeat`) on the same replicas; the burst with the
median leads/s is reported, with the spread of leads/s and CPU of all five.

Per burst: leads/s from the first POST to the last answer; POST-to-201 percentiles; from each
replica's /metrics, the routing transactions retried, the decisions redone (thrown away with a
rolled-back transaction and made again) and replanned (made again within their transaction after
waiting for their team), and the team locks found held by another replica; leads per routing
transaction; CPU seconds per transaction and per 1,000 leads, of the replicas and of all
PostgreSQL processes, from /proc.

Before the replicas, a floor: the CPU of the least transaction a replica could send for a
batch (bare driver, no Python between statements). After them, a cost model fitted from one
replica's two runs, CPU per lead = p + F / batch, with the F the 1.2x goal would need and the
ratio the floor would give (bench/README.md explains the arithmetic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_intake import ROOT, environment, free_port, leads, percentiles, signed
from bench.bench_intake import write_policy as write_intake_policy
from bench.bench_slack import Server, cpu_seconds

RESULTS = ROOT / "bench" / "results" / "replicas.json"
CLIENTS = 30
WARM_LEADS = 10  # per replica, before the burst: pools open, policy compiled, tables warm
TARGETS = {"redone_pct": 1.0, "cpu_ratio": 1.2, "rate_ratio": 0.6}
COUNTERS = (
    "leadrouter_decisions_total",
    "leadrouter_decisions_redone_total",
    "leadrouter_decisions_replanned_total",
    "leadrouter_routing_transactions_total",
    "leadrouter_routing_retries_total",
    "leadrouter_routing_lock_waits_total",
)


def start_replica(folder: Path, url: str, policy: Path, name: str) -> Server:
    port = free_port()
    env = environment(url, policy, port)
    leadrouter = str(Path(sys.executable).parent / "leadrouter")
    return Server([leadrouter, "serve"], env, port, folder / f"{name}.log")


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL process on the machine (the postmaster and its backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that ended meanwhile
    return total


async def counters(http: aiohttp.ClientSession, replica: Server) -> dict[str, float]:
    async with http.get(f"{replica.url}/metrics") as answer:
        text = await answer.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in COUNTERS:
            values[name] = float(value)
    return values


async def post_one(http: aiohttp.ClientSession, url: str, lead: dict[str, Any]) -> float:
    body = json.dumps(lead).encode()
    began = time.monotonic()
    async with http.post(f"{url}/leads", data=body, headers=signed(body)) as answer:
        await answer.read()
        if answer.status != 201:
            raise RuntimeError(f"POST /leads answered {answer.status}")
    return time.monotonic() - began


async def burst(
    replicas: list[Server], batch: list[dict[str, Any]], clients: int
) -> dict[str, Any]:
    shares = [batch[n::clients] for n in range(clients)]
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client(n: int) -> list[float]:
            url = replicas[n % len(replicas)].url
            return [await post_one(http, url, lead) for lead in shares[n]]

        before = [await counters(http, replica) for replica in replicas]
        cpu_before = (
            sum(cpu_seconds(replica.process.pid) for replica in replicas),
            postgres_cpu_s(),
        )
        began = time.monotonic()
        latencies = [s for run in await asyncio.gather(*map(client, range(clients))) for s in run]
        elapsed = time.monotonic() - began
        replicas_cpu = sum(cpu_seconds(replica.process.pid) for replica in replicas) - cpu_before[0]
        postgres_cpu = postgres_cpu_s() - cpu_before[1]
        after = [await counters(http, replica) for replica in replicas]
    totals = {
        name.removeprefix("leadrouter_").removesuffix("_total"): int(
            sum(a.get(name, 0) - b.get(name, 0) for a, b in zip(after, before, strict=True))
        )
        for name in COUNTERS
    }
    per_thousand = 1000 / len(batch)
    decisions = totals["decisions"] or 1
    transactions = totals["routing_transactions"] or 1
    return {
        "replicas": len(replicas),
        "clients": clients,
        "leads": len(batch),
        "seconds": round(elapsed, 2),
        "leads_per_s": round(len(batch) / elapsed, 1),
        "answer": percentiles(latencies),
        **totals,
        "redone_pct": round(100 * totals["decisions_redone"] / decisions, 2),
        "replanned_pct": round(100 * totals["decisions_replanned"] / decisions, 2),
        "leads_per_transaction": round(len(batch) / transactions, 1),
        "cpu_ms_per_transaction": round(1000 * (replicas_cpu + postgres_cpu) / transactions, 2),
        "cpu_s_per_1000": {
            "replicas": round(replicas_cpu * per_thousand, 2),
            "postgresql": round(postgres_cpu * per_thousand, 2),
            "total": round((replicas_cpu + postgres_cpu) * per_thousand, 2),
        },
    }


async def run(
    folder: Path, server: Any, count: int, size: int, clients: int, seed: int, repeat: int
) -> dict[str, Any]:
    """`repeat` bursts on the same replicas (new leads each time); the burst with the median
    leads/s, with every burst's leads/s and CPU per 1,000 leads beside it."""
    policy = write_intake_policy(folder)
    name = await server.create_database()
    replicas = [
        start_replica(folder, server.url(name), policy, f"replica-{size}-{n}") for n in range(size)
    ]
    try:
        await asyncio.gather(*(replica.ready() for replica in replicas))
        async with aiohttp.ClientSession() as http:
            warm = list(leads(WARM_LEADS * size, seed + 1, f"W{size}"))
            for n, lead in enumerate(warm):
                await post_one(http, replicas[n % size].url, lead)
        bursts = [
            await burst(replicas, list(leads(count, seed + 100 * n, f"R{size}")), clients)
            for n in range(repeat)
        ]
        bursts.sort(key=lambda b: b["leads_per_s"])
        median = dict(bursts[len(bursts) // 2])
        median["all_leads_per_s"] = [b["leads_per_s"] for b in bursts]
        median["all_cpu_s_per_1000"] = sorted(b["cpu_s_per_1000"]["total"] for b in bursts)
        median["all_redone"] = sum(b["decisions_redone"] for b in bursts)
        median["all_decisions"] = sum(b["decisions"] for b in bursts)
        return median
    finally:
        for replica in replicas:
            replica.close()
        await server.drop_database(name)


FLOOR_TRANSACTIONS = 1000
FLOOR_BATCHES = (1, 5, 15)


async def transaction_floor(
    server: Any, transactions: int = FLOOR_TRANSACTIONS
) -> dict[str, float]:
    """CPU ms (this process + PostgreSQL) of the least a routing transaction could be, per batch
    size: on the bare driver, with no ORM and no Python between statements, BEGIN, one read of
    the batch's ids, the team locks, one read of state, one INSERT of the batch, COMMIT. A
    transaction that decides anything does all of this and more, so its fixed cost is above
    this one's."""
    import asyncpg  # type: ignore[import-untyped]

    name = await server.create_database()
    connection = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user="postgres", database=name
    )
    numbers = iter(range(10**9))
    try:
        await connection.execute(
            "CREATE TABLE probe (id serial PRIMARY KEY, lead text UNIQUE, team text)"
        )

        async def transaction(size: int) -> None:
            ids = [f"L{next(numbers)}" for _ in range(size)]
            async with connection.transaction():
                await connection.fetch("SELECT lead FROM probe WHERE lead = ANY($1::text[])", ids)
                await connection.fetch(
                    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", [1, 2]
                )
                await connection.fetch("SELECT count(*) FROM probe WHERE team = $1", "t1")
                await connection.fetch(
                    "INSERT INTO probe (lead, team) SELECT * FROM unnest($1::text[], $2::text[]) "
                    "RETURNING id",
                    ids,
                    ["t1"] * size,
                )

        floor = {}
        for size in FLOOR_BATCHES:
            for _ in range(50):  # statements prepared, caches warm
                await transaction(size)
            began = time.process_time(), postgres_cpu_s()
            for _ in range(transactions):
                await transaction(size)
            spent = time.process_time() - began[0] + postgres_cpu_s() - began[1]
            floor[str(size)] = round(1000 * spent / transactions, 3)
        return floor
    finally:
        await connection.close()
        await server.drop_database(name)


def cost_model(runs: list[dict[str, Any]], floor: dict[str, float]) -> dict[str, float] | None:
    """CPU per lead = p + F / b (b leads per transaction), fitted from one replica's two runs
    (30 clients and 10: two batch sizes); what F would have to be for three replicas to stay
    within the 1.2x goal at their batches; and the ratio the floor's F would give."""
    try:
        big = next(r for r in runs if r["replicas"] == 1 and r["clients"] == CLIENTS)
        small = next(r for r in runs if r["replicas"] == 1 and r["clients"] != CLIENTS)
        three = next(r for r in runs if r["replicas"] == 3)
    except StopIteration:
        return None
    b1, b0, b3 = (r["leads_per_transaction"] for r in (big, small, three))
    c1, c0 = _median_cpu(big), _median_cpu(small)  # s per 1,000 leads = ms per lead
    fixed = (c0 - c1) / (1 / b0 - 1 / b1)
    per_lead = c1 - fixed / b1
    goal = TARGETS["cpu_ratio"]
    fixed_allowed = (goal - 1) * per_lead / (1 / b3 - goal / b1)
    # The floor's own fixed part: its cost at one lead less what a lead adds to it.
    least, most = FLOOR_BATCHES[0], FLOOR_BATCHES[-1]
    floor_per_lead = (floor[str(most)] - floor[str(least)]) / (most - least)
    floor_fixed = round(floor[str(least)] - least * floor_per_lead, 3)
    return {
        "fixed_ms_per_transaction": round(fixed, 2),
        "ms_per_lead": round(per_lead, 3),
        "fixed_ms_allowed_for_goal": round(fixed_allowed, 2),
        "floor_fixed_ms": floor_fixed,
        "floor_cpu_ratio": round((per_lead + floor_fixed / b3) / (per_lead + floor_fixed / b1), 2),
        "equal_batch_cpu_ratio": round(_median_cpu(three) / c0, 2),
    }


def _median_cpu(run: dict[str, Any]) -> float:
    values = run["all_cpu_s_per_1000"]
    return float(values[len(values) // 2])


def table(runs: list[dict[str, Any]]) -> list[str]:
    """A Markdown table: the median burst of each configuration (see `run`)."""
    one = next(r for r in runs if r["replicas"] == 1 and r["clients"] == CLIENTS)
    header = (
        "| replicas (clients) | leads/s (all bursts) | vs 1 | p50 / p99 to 201 "
        "| decisions redone | lock waits | leads per transaction | CPU ms per transaction "
        "| CPU s per 1,000 leads (replicas + PostgreSQL) | vs 1 |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in runs:
        cpu = r["cpu_s_per_1000"]
        spread = ", ".join(f"{v:,.0f}" for v in r["all_leads_per_s"])
        lines.append(
            f"| {r['replicas']} ({r['clients']}) | {r['leads_per_s']:,.0f} ({spread}) | "
            f"{r['leads_per_s'] / one['leads_per_s']:.2f}x | "
            f"{r['answer']['p50_ms']} / {r['answer']['p99_ms']} ms | "
            f"{r['all_redone']} of {r['all_decisions']} | {r['routing_lock_waits']} | "
            f"{r['leads_per_transaction']} | {r['cpu_ms_per_transaction']} | "
            f"{_median_cpu(r)} (this burst {cpu['replicas']} + {cpu['postgresql']}) | "
            f"{_median_cpu(r) / _median_cpu(one):.2f}x |"
        )
    return lines


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_replicas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--leads", type=int, default=600)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--repeat", type=int, default=5, help="bursts per configuration")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.pg import missing_binaries, start_postgres

    if missing_binaries():
        print(f"PostgreSQL binaries missing: {', '.join(missing_binaries())}")
        return 1
    count, sizes = (300, [1, 3]) if args.quick else (args.leads, args.replicas)
    # (replicas, clients): each size with all the clients, and one replica with as many
    # clients as each of three replicas has (the same group-commit batches: see bench/README.md).
    plan = [(size, CLIENTS) for size in sizes] + [(1, CLIENTS // 3)]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "clients": CLIENTS,
        "loadavg_before": [round(n, 2) for n in os.getloadavg()],
        "runs": [],
    }
    server = start_postgres()
    try:
        results["floor_ms_per_transaction"] = await transaction_floor(server)
        print("transaction floor, CPU ms by batch size:", results["floor_ms_per_transaction"])
        with tempfile.TemporaryDirectory(prefix="leadrouter-bench-replicas-") as temp:
            for n, (size, clients) in enumerate(plan):
                result = await run(
                    Path(temp), server, count, size, clients, seed=50 + n, repeat=args.repeat
                )
                results["runs"].append(result)
                print(json.dumps(result), flush=True)
    finally:
        server.stop()
    results["loadavg_after"] = [round(n, 2) for n in os.getloadavg()]
    print()
    for line in table(results["runs"]):
        print(line)
    model = cost_model(results["runs"], results["floor_ms_per_transaction"])
    if model is not None:
        results["cost_model"] = model
        print(
            f"CPU per lead = {model['ms_per_lead']} ms + {model['fixed_ms_per_transaction']} ms "
            "/ leads per transaction (fitted from one replica's two runs); the 1.2x goal at three "
            f"replicas' batches needs a fixed cost of at most {model['fixed_ms_allowed_for_goal']}"
            f" ms; the bare driver's floor is {model['floor_fixed_ms']} ms, which alone would give "
            f"{model['floor_cpu_ratio']}x; at equal batches three replicas cost "
            f"{model['equal_batch_cpu_ratio']}x one"
        )
    print(f"load average before / after: {results['loadavg_before']} / {results['loadavg_after']}")
    if not args.quick and argv is None:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
