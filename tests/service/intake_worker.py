"""One of several processes intaking leads into the same database, for the multi-process tests.

    python -m tests.service.intake_worker URL POLICY PREFIX FIRST COUNT CONCURRENCY

Intakes leads PREFIX-FIRST .. PREFIX-(FIRST+COUNT-1), CONCURRENCY at a time, with a UnitOfWork
and a Database of its own. Prints "ready" once connected and waits for a line on stdin, so that
the test can start every process at the same moment; then prints one JSON line of what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from bot.policy_file import load_policy
from bot.service.intake import intake
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import IntakeResult
from storage.db import open_database
from tests.service.support import new_lead


async def main(
    url: str, policy_path: str, prefix: str, first: int, count: int, at_once: int
) -> int:
    policy = load_policy(policy_path)
    db = open_database(url)
    try:
        if not await db.ping():
            print(json.dumps({"error": f"cannot connect to {url}"}), flush=True)
            return 1
        uow = UnitOfWork(db=db, policy=lambda: policy)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        slots = asyncio.Semaphore(at_once)

        async def send(n: int) -> IntakeResult:
            async with slots:
                return await intake(uow, new_lead(f"{prefix}-{n}"))

        results = await asyncio.gather(
            *(send(n) for n in range(first, first + count)), return_exceptions=True
        )
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        done = [r for r in results if isinstance(r, IntakeResult)]
        summary = {
            "created": sum(r.created for r in done),
            "statuses": Counter(r.lead.status for r in done),
            "conflicts": uow.tally.conflicts,
            "decisions": uow.tally.decisions,
            "decisions_redone": uow.tally.decisions_redone,
            "lock_waits": uow.tally.lock_waits,
            "transactions": uow.tally.transactions,
            "errors": errors[:5],
            "error_count": len(errors),
        }
        print(json.dumps(summary), flush=True)
        return 0
    finally:
        await db.dispose()


if __name__ == "__main__":
    url, policy_path, prefix, first, count, at_once = sys.argv[1:]
    sys.exit(asyncio.run(main(url, policy_path, prefix, int(first), int(count), int(at_once))))
