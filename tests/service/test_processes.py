"""Several OS processes, each with its own unit of work and engine, routing into one PostgreSQL
database at the same moment: what a deployment with more than one worker does."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from storage.models import LeadRow, OfferRow
from tests.service.support import (
    count_rows,
    lead_statuses,
    leads_with_several_open_offers,
    open_offers_by_rep,
    stored_open_counts,
    team_policy,
    team_version,
    write_policy,
)

ROOT = Path(__file__).resolve().parents[2]
READY_S = 30  # for a worker to import everything and connect
RUN_S = 60  # for every worker to finish


async def run_workers(
    url: str, policy: Path, batches: list[tuple[int, int]], *, at_once: int
) -> list[dict[str, Any]]:
    """One worker process per (first, count) batch, released together; their JSON summaries."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for first, count in batches:
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.service.intake_worker",
                    url,
                    str(policy),
                    "P",
                    str(first),
                    str(count),
                    str(at_once),
                    cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            line = await asyncio.wait_for(process.stdout.readline(), READY_S)
            if line.strip() != b"ready":
                await asyncio.wait_for(process.wait(), READY_S)
                error = await process.stderr.read()
                pytest.fail(f"a worker did not start: {line.decode()}{error.decode()}")
        outputs = await asyncio.wait_for(
            asyncio.gather(*(process.communicate(b"go\n") for process in processes)), RUN_S
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await asyncio.wait_for(process.wait(), 10)
    summaries = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        summaries.append(json.loads(out.decode().splitlines()[-1]))
    return summaries


async def test_three_processes_intaking_a_thousand_leads_into_one_round_robin_team_share_them(
    postgres_url: str, postgres_db: Database, tmp_path: Path
) -> None:
    db = postgres_db
    policy = write_policy(tmp_path, team_policy(4))

    summaries = await run_workers(
        postgres_url, policy, [(0, 334), (334, 333), (667, 333)], at_once=10
    )

    assert [s["errors"] for s in summaries] == [[], [], []]
    assert sum(s["created"] for s in summaries) == 1000
    assert await count_rows(db, LeadRow) == 1000
    assert await lead_statuses(db) == {"offered": 1000}
    per_rep = await open_offers_by_rep(db)
    assert sorted(per_rep) == ["rep0", "rep1", "rep2", "rep3"]
    assert max(per_rep.values()) - min(per_rep.values()) <= 1, per_rep
    assert await count_rows(db, OfferRow) == 1000
    assert await leads_with_several_open_offers(db) == {}
    # Each committed transaction (group commit routes several leads in one) rotated the team once.
    assert await team_version(db, "pool") == sum(s["transactions"] for s in summaries)
    assert await stored_open_counts(db) == per_rep
    # One team: each decision waited for the team's scope; none was made and thrown away.
    assert sum(s["decisions"] for s in summaries) == 1000
    assert sum(s["decisions_redone"] for s in summaries) == 0
    assert sum(s["conflicts"] for s in summaries) == 0


async def test_capacity_is_never_exceeded_when_three_processes_intake_at_once(
    postgres_url: str, postgres_db: Database, tmp_path: Path
) -> None:
    db = postgres_db
    policy = write_policy(tmp_path, team_policy(3, capacity=5))

    summaries = await run_workers(postgres_url, policy, [(0, 10), (10, 10), (20, 10)], at_once=10)

    assert [s["errors"] for s in summaries] == [[], [], []]
    assert await lead_statuses(db) == {"offered": 15, "queued": 15}
    assert await open_offers_by_rep(db) == {"rep0": 5, "rep1": 5, "rep2": 5}
    assert await stored_open_counts(db) == {"rep0": 5, "rep1": 5, "rep2": 5}
    assert await leads_with_several_open_offers(db) == {}
