"""The replica benchmark's cost model recovers what it is fitted to, and its floor probe runs.

These check the arithmetic and the probe, not how fast anything is."""

from __future__ import annotations

from typing import Any

import pytest

from bench.bench_replicas import CLIENTS, cost_model, transaction_floor
from tests.pg import PostgresServer


def _run(replicas: int, clients: int, batch: float, cpu_ms_per_lead: float) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "clients": clients,
        "leads_per_transaction": batch,
        "all_cpu_s_per_1000": [cpu_ms_per_lead - 0.01, cpu_ms_per_lead, cpu_ms_per_lead + 0.02],
    }


def test_the_cost_model_recovers_the_fixed_and_per_lead_cost_it_was_built_from() -> None:
    per_lead, fixed = 0.3, 3.0
    runs = [
        _run(1, CLIENTS, 15, per_lead + fixed / 15),
        _run(3, CLIENTS, 5, 1.1 * (per_lead + fixed / 5)),  # three processes cost 10% more
        _run(1, CLIENTS // 3, 5, per_lead + fixed / 5),
    ]
    # The floor: 0.45 ms fixed, 0.05 ms per lead.
    floor = {"1": 0.5, "5": 0.7, "15": 1.2}

    model = cost_model(runs, floor)

    assert model is not None
    assert model["fixed_ms_per_transaction"] == pytest.approx(3.0, abs=0.01)
    assert model["ms_per_lead"] == pytest.approx(0.3, abs=0.001)
    # (p + F/5) / (p + F/15) = 1.2 with p = 0.3: F = 0.06 / (1/5 - 1.2/15) = 0.5
    assert model["fixed_ms_allowed_for_goal"] == pytest.approx(0.5, abs=0.01)
    assert model["floor_fixed_ms"] == pytest.approx(0.45, abs=0.001)
    assert model["floor_cpu_ratio"] == pytest.approx((0.3 + 0.09) / (0.3 + 0.03), abs=0.01)
    assert model["equal_batch_cpu_ratio"] == pytest.approx(1.1, abs=0.01)


def test_without_one_replica_at_two_batch_sizes_there_is_no_model() -> None:
    runs = [_run(1, CLIENTS, 15, 0.5), _run(3, CLIENTS, 5, 1.0)]
    assert cost_model(runs, {"1": 0.5, "5": 0.7, "15": 1.2}) is None


async def test_the_floor_probe_times_each_batch_size_and_leaves_no_database(
    postgres_server: PostgresServer,
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def databases() -> set[str]:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=postgres_server.port, user="postgres", database="postgres"
        )
        try:
            return {row[0] for row in await connection.fetch("SELECT datname FROM pg_database")}
        finally:
            await connection.close()

    before = await databases()
    floor = await transaction_floor(postgres_server, transactions=20)

    assert set(floor) == {"1", "5", "15"}
    assert all(cost > 0 for cost in floor.values())
    assert await databases() == before
