"""A rolling restart as compose runs one: two `leadrouter serve` replicas on one PostgreSQL, one
sent SIGTERM while leads stream into both. The one stopping answers every request it took,
exits 0, and no lead is lost or routed twice; what it no longer takes, the other does (as the
proxy in front sends it there)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from tests.bot.test_serve import STOP_TIMEOUT_S, Server, Servers, terminate, wait_until_ready
from tests.bot.webhook import as_body, signed

LEADS = 400
CONCURRENCY = 16
STOP_AFTER = 120  # acknowledged leads


def lead(n: int) -> dict[str, Any]:
    return {"id": f"R-{n:04d}", "email": f"ops@firm{n}.de", "country": "DE", "employees": 300}


async def send(
    session: aiohttp.ClientSession, server: Server, body: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    """The answer, or None when the server would not take the request (it is stopping)."""
    data = as_body(body)
    try:
        async with session.post(
            f"{server.url}/leads", data=data, headers=signed(data, at=time.time())
        ) as response:
            return response.status, await response.json()
    except aiohttp.ClientConnectionError:
        return None


async def test_a_replica_sent_sigterm_mid_stream_answers_what_it_took_and_loses_no_lead(
    servers: Servers, tmp_path: Path, postgres_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url}
    stopping, staying = (servers.start(tmp_path / "unused.db", extra_env=env) for _ in range(2))
    await asyncio.gather(wait_until_ready(stopping), wait_until_ready(staying))
    answers: dict[str, tuple[int, dict[str, Any]]] = {}
    refused_by_stopping: list[str] = []
    slots = asyncio.Semaphore(CONCURRENCY)
    sigterm_sent = asyncio.Event()
    at_stopping: set[str] = set()  # requests the stopping replica is handling
    in_flight_at_sigterm: set[str] = set()

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        body = lead(n)
        async with slots:
            first = stopping if n % 2 == 0 else staying
            if first is stopping:
                at_stopping.add(body["id"])
            answer = await send(session, first, body)
            at_stopping.discard(body["id"])
            if answer is None and first is stopping:
                refused_by_stopping.append(body["id"])
                answer = await send(session, staying, body)  # as the proxy tries the other
            assert answer is not None, body["id"]
            answers[body["id"]] = answer
            if len(answers) >= STOP_AFTER and not sigterm_sent.is_set():
                sigterm_sent.set()
                in_flight_at_sigterm.update(at_stopping)
                stopping.process.terminate()

    connector = aiohttp.TCPConnector(force_close=True)  # no kept-alive socket outlives SIGTERM
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.wait_for(
            asyncio.gather(*(one(session, n) for n in range(LEADS))), timeout=120
        )

    assert sigterm_sent.is_set()
    assert stopping.process.wait(timeout=STOP_TIMEOUT_S) == 0, stopping.output()
    assert refused_by_stopping, "every lead was answered before the replica stopped"
    assert in_flight_at_sigterm - set(refused_by_stopping), "none was in flight at SIGTERM"
    assert "Traceback" not in stopping.output()
    assert sorted({status for status, _ in answers.values()}) == [201]
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        stored = await connection.fetch("SELECT external_id FROM leads")
        offered = await connection.fetchval("SELECT count(*) FROM offers")
    finally:
        await connection.close()
    assert sorted(row["external_id"] for row in stored) == sorted(
        lead(n)["id"] for n in range(LEADS)
    )
    assert offered == LEADS
    assert terminate(staying) == 0, staying.output()
