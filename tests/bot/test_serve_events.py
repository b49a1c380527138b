"""`POST /events` against a real `leadrouter serve` killed with SIGKILL part-way through a stream:
no event it acknowledged is lost, and sent again, none is stored twice."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.bot.test_serve import STOP_TIMEOUT_S, Server, Servers, terminate, wait_until_ready
from tests.bot.webhook import as_body, signed

LEADS = 60
CONCURRENCY = 20
KILL_AFTER = 60  # acknowledged events


def lead_events(n: int, base: datetime) -> list[dict[str, Any]]:
    """A touch, the opportunity and the win of lead S-n, each with the sender's own id."""
    lead = f"S-{n}"
    return [
        {"lead": lead, "kind": "first_touch", "at": (base + timedelta(minutes=5)).isoformat()},
        {
            "lead": lead,
            "kind": "converted",
            "at": (base + timedelta(hours=2)).isoformat(),
            "id": f"opp-{n}",
        },
        {
            "lead": lead,
            "kind": "won",
            "at": (base + timedelta(hours=3)).isoformat(),
            "id": f"opp-{n}",
            "amount": 1000 + n,
        },
    ]


async def post(session: aiohttp.ClientSession, server: Server, path: str, data: Any) -> int:
    body = as_body(data)
    async with session.post(
        f"{server.url}{path}", data=body, headers=signed(body, at=time.time())
    ) as response:
        return response.status


async def send_all(
    server: Server, events: list[dict[str, Any]], *, kill_after: int | None = None
) -> set[int]:
    """POST each event, CONCURRENCY at a time; the indexes of those acknowledged (200). With
    kill_after, SIGKILL the server once that many were."""
    acknowledged: set[int] = set()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(index: int) -> None:
            try:
                status = await post(session, server, "/events", events[index])
            except (aiohttp.ClientError, TimeoutError):
                return  # the server died under it: whether it was stored is the question
            if status == 200:
                acknowledged.add(index)
            killing = kill_after is not None and len(acknowledged) >= kill_after
            if killing and server.process.poll() is None:
                server.process.kill()

        await asyncio.wait_for(asyncio.gather(*(send(i) for i in range(len(events)))), 120)
    return acknowledged


async def test_a_server_killed_mid_stream_of_events_loses_none_it_acknowledged_and_doubles_none(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    first = servers.start(database)
    await wait_until_ready(first)
    async with aiohttp.ClientSession() as session:
        for n in range(LEADS):
            lead = {"id": f"S-{n}", "email": f"ops@firm{n}.de", "country": "DE", "employees": 300}
            assert await post(session, first, "/leads", lead) == 201
    base = datetime.now(UTC) - timedelta(days=1)
    events = [event for n in range(LEADS) for event in lead_events(n, base)]

    before_kill = await send_all(first, events, kill_after=KILL_AFTER)
    assert first.process.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
    assert KILL_AFTER <= len(before_kill) < len(events)
    with sqlite3.connect(database) as db:
        stored_at_kill = db.execute("SELECT count(*) FROM lead_events").fetchone()[0]
    assert stored_at_kill >= len(before_kill)

    second = servers.start(database)
    await wait_until_ready(second)
    assert await send_all(second, events) == set(range(len(events)))
    assert terminate(second) == 0, second.output()

    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT l.external_id, e.kind, e.source_key, e.amount FROM lead_events e"
            " JOIN leads l ON l.id = e.lead_id"
        ).fetchall()
    assert len(rows) == len(events) == len({(lead, kind) for lead, kind, _, _ in rows})
    won = {lead: amount for lead, kind, _, amount in rows if kind == "won"}
    assert won == {f"S-{n}": 1000 + n for n in range(LEADS)}
