"""CRM owner write-back: 1,000 claims written to a slow, rate-limiting HubSpot.

    python -m bench.bench_crm             # 1,000 claims, 100 ms per call, every 200th call a 429
    python -m bench.bench_crm --quick     # 200 claims

The real stack on SQLite: `bootstrap` with HUBSPOT_ACCESS_TOKEN and HUBSPOT_API_URL pointed at
the fake HubSpot of the tests (`tests/fakes/hubspot.py`), which runs on a thread and event loop
of its own so its clock and its answers do not wait on leadrouter's loop. Every call to it takes
`--latency` seconds; every `--rate-limit-every`th call is answered 429 with
`Retry-After: --retry-after`, and the fake counts each request that arrives inside such a window
(after 50 ms of grace for requests already on their way) as a violation.

1,000 leads with HubSpot contact ids are routed and claimed through the service layer (which
queues one write-back each, committed with the claim); then the CRM worker starts and the clock
runs until every item is done. Reported: the time from the worker's start to the last item done,
the 429s received, the violations (target 0), the most calls in flight, and whether each contact
ends up owned by its rep's HubSpot owner (all 1,000, each written exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "crm.json"
REPS = 20
TARGET_S = 15.0


def policy_text() -> str:
    reps = "\n".join(f"  - {{id: rep{n}, email: rep{n}@bench.example}}" for n in range(REPS))
    members = ", ".join(f"rep{n}" for n in range(REPS))
    return (
        f"reps:\n{reps}\n"
        f"teams:\n  pool: {{members: [{members}], distribution: round_robin}}\n"
        "rules:\n  - name: Everyone\n    assign: {team: pool}\n"
    )


@contextmanager
def fake_in_thread(**options: Any) -> Iterator[Any]:
    """The fake HubSpot serving from a thread of its own until the block ends."""
    from tests.fakes.hubspot import FakeHubSpot

    loop = asyncio.new_event_loop()
    fake = FakeHubSpot(**options)
    thread = threading.Thread(target=loop.run_forever, name="fake-hubspot", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


async def bench(claims: int, latency: float, every: int, retry_after: float) -> dict[str, Any]:
    from bot.bootstrap import bootstrap
    from bot.policy_file import load_policy
    from bot.service.intake import intake
    from bot.service.kinds import OutboxKind
    from bot.service.offers import claim
    from bot.settings import Settings
    from routing.leads import parse_lead
    from storage.models import OutboxRow

    with (
        tempfile.TemporaryDirectory() as folder,
        fake_in_thread(latency_s=0.0, rate_limit_every=None, retry_after_s=retry_after) as fake,
    ):
        rules = Path(folder) / "routing.yml"
        rules.write_text(policy_text(), encoding="utf-8")
        owners = {f"rep{n}": fake.add_owner(f"rep{n}@bench.example") for n in range(REPS)}
        contacts = [fake.add_contact(email=f"buyer{n}@corp.example") for n in range(claims)]
        settings = Settings(
            DATABASE_URL=f"sqlite+aiosqlite:///{Path(folder) / 'crm.db'}",
            HUBSPOT_ACCESS_TOKEN=fake.token,
            HUBSPOT_API_URL=fake.url,
        )
        app = bootstrap(settings, policy=load_policy(rules))
        await app.db.create_tables()
        rep_of: dict[str, str] = {}
        for n, contact in enumerate(contacts):
            lead = parse_lead({"id": f"L-{n}", "crm_system": "hubspot", "crm_id": contact})
            result = await intake(app.uow, lead)
            assert result.lead.rep is not None
            await claim(app.uow, f"L-{n}", by=result.lead.rep)
            rep_of[contact] = result.lead.rep
        print(f"{claims:,} claims queued; writing back …", flush=True)

        fake.latency_s, fake.rate_limit_every = latency, every
        fake.requests.clear()
        (worker,) = app.crm_workers
        began = time.monotonic()
        task = asyncio.create_task(worker.run())
        kind = OutboxKind.HUBSPOT_OWNER
        while True:
            async with app.db.reading() as session:
                left = (
                    await session.execute(
                        select(func.count())
                        .select_from(OutboxRow)
                        .where(
                            col(OutboxRow.kind) == kind,
                            col(OutboxRow.done_at).is_(None),
                            col(OutboxRow.failed_at).is_(None),
                        )
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - began
        task.cancel()
        async with app.db.reading() as session:
            failed = (
                await session.execute(
                    select(func.count())
                    .select_from(OutboxRow)
                    .where(col(OutboxRow.kind) == kind, col(OutboxRow.failed_at).isnot(None))
                )
            ).scalar_one()
        await app.close()

    writes = Counter(contact for contact, _ in fake.patches)
    owned_right = sum(
        1
        for contact, rep in rep_of.items()
        if fake.contacts[contact].properties.get("hubspot_owner_id") == owners[rep]
    )
    statuses = Counter(r.status for r in fake.requests)
    return {
        "claims": claims,
        "latency_ms": round(latency * 1000),
        "rate_limit_every": every,
        "retry_after_s": retry_after,
        "concurrency": settings.crm_concurrency,
        "elapsed_s": round(elapsed, 2),
        "requests": len(fake.requests),
        "answered_429": statuses.get(429, 0),
        "retry_after_violations": fake.retry_after_violations,
        "max_in_flight": fake.max_in_flight,
        "contacts_owned_right": owned_right,
        "contacts_written_more_than_once": sum(1 for n in writes.values() if n > 1),
        "given_up": failed,
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 claims")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per HubSpot call")
    parser.add_argument("--rate-limit-every", type=int, default=200)
    parser.add_argument("--retry-after", type=float, default=1.0)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    claims = 200 if args.quick else 1000
    figures = await bench(claims, args.latency, args.rate_limit_every, args.retry_after)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "writeback": figures,
    }
    ok = (
        figures["elapsed_s"] <= TARGET_S
        and figures["retry_after_violations"] == 0
        and figures["contacts_owned_right"] == claims
        and figures["contacts_written_more_than_once"] == 0
    )
    print(json.dumps(figures, indent=2))
    print(
        f"\n{claims:,} write-backs in {figures['elapsed_s']:.2f} s "
        f"({figures['answered_429']} answered 429, {figures['retry_after_violations']} "
        f"Retry-After violations): target ≤ {TARGET_S:.0f} s, 0 violations: "
        + ("met" if ok else "MISSED")
    )
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
