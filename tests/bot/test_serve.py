"""`leadrouter serve` as a real process: it starts, answers, stops cleanly, and a `kill -9` in
the middle of a stream of leads loses no lead it acknowledged and doubles none.
Also `db upgrade` and the settings checks, in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.bot.conftest import EXAMPLES
from tests.bot.webhook import SECRET, as_body, free_port, row_counts, signed

LEADROUTER = Path(sys.executable).parent / "leadrouter"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
runner = CliRunner()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Servers:
    """Starts `leadrouter serve` processes and kills any still running when the test ends."""

    folder: Path
    started: list[Server] = field(default_factory=list)

    def start(
        self, database: Path, *, secret: str = SECRET, extra_env: dict[str, str] | None = None
    ) -> Server:
        port = free_port()
        log = self.folder / f"serve-{len(self.started)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "LEADROUTER_WEBHOOK_SECRET": secret,
            "LEADROUTER_RULES": str(EXAMPLES / "routing.yml"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(LEADROUTER), "serve"],
                env=env,
                cwd=self.folder,  # no stray .env is read
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait(timeout=STOP_TIMEOUT_S)


async def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"serve exited with {server.process.returncode}:\n{server.output()}")
            try:
                async with session.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail(f"serve did not answer within {START_TIMEOUT_S} s:\n{server.output()}")


def terminate(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=STOP_TIMEOUT_S)


async def post(
    session: aiohttp.ClientSession, server: Server, data: Any
) -> tuple[int, dict[str, Any]]:
    body = as_body(data)
    async with session.post(
        f"{server.url}/leads", data=body, headers=signed(body, at=time.time())
    ) as response:
        return response.status, await response.json()


async def test_serve_routes_a_signed_lead_and_stops_cleanly_on_sigterm(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start(tmp_path / "leads.db")
    await wait_until_ready(server)
    async with aiohttp.ClientSession() as session:
        status, body = await post(session, server, {"id": "L-1", "email": "ops@firm.de"})
    assert status == 201
    assert body["id"] == "L-1"
    assert terminate(server) == 0, server.output()  # the log says why, if not
    log = server.output()
    assert f"leadrouter listening on {server.url}" in log
    assert SECRET not in log
    assert "Traceback" not in log
    assert row_counts(tmp_path / "leads.db")["leads"] == 1


async def test_on_sigterm_serve_stops_accepting_and_finishes_the_requests_in_flight(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start(tmp_path / "leads.db")
    await wait_until_ready(server)
    batches = [
        {"leads": [{"id": f"B{b}-{i}", "email": f"ops@firm{i}.de"} for i in range(1000)]}
        for b in range(8)
    ]
    async with aiohttp.ClientSession() as session:
        # SQLite routes one batch at a time (a few tenths of a second each): when the first
        # answer arrives, the other seven are being handled, waiting their turn.
        requests = [asyncio.create_task(post(session, server, batch)) for batch in batches]
        await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED, timeout=20)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as new:
            with pytest.raises(aiohttp.ClientConnectionError):
                await new.get(f"{server.url}/healthz")
        still_in_flight = sum(not request.done() for request in requests)
        answers = await asyncio.wait_for(asyncio.gather(*requests), timeout=STOP_TIMEOUT_S)
    assert still_in_flight > 0
    assert [(status, len(body["results"])) for status, body in answers] == [(200, 1000)] * 8
    assert server.process.wait(timeout=STOP_TIMEOUT_S) == 0
    assert row_counts(tmp_path / "leads.db")["leads"] == 8000


# --- kill -9 part-way through a stream ----------------------------------------------------------

STREAM = 1000
CONCURRENCY = 20
KILL_AFTER = 300  # acknowledged leads


def stream_lead(i: int) -> dict[str, Any]:
    """A mix that ends in every outcome whatever the day and hour: offers (Erin and Carol keep
    no hours), queued (an enterprise in Japan: no rule of the example policy matches it, where
    one in the US queued only while Alice and Bob were both off), nurtured."""
    kind = i % 4
    if kind == 0:
        return {"id": f"S-{i}", "email": f"ops@firm{i}.de", "country": "DE", "employees": 300}
    if kind == 1:
        return {"id": f"S-{i}", "email": f"it@clinic{i}.com", "country": "US", "employees": 40}
    if kind == 2:
        return {"id": f"S-{i}", "email": f"me{i}@gmail.com"}
    return {"id": f"S-{i}", "email": f"cto@big{i}.co.jp", "country": "JP", "employees": 5000}


async def send_all(
    server: Server, *, kill_after: int | None = None
) -> dict[str, tuple[int, dict[str, Any]]]:
    """POST every stream lead, CONCURRENCY at a time; the answers that arrived, by lead id.
    With kill_after, SIGKILL the server once that many leads were acknowledged."""
    answers: dict[str, tuple[int, dict[str, Any]]] = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(i: int) -> None:
            try:
                answers[f"S-{i}"] = await post(session, server, stream_lead(i))
            except (aiohttp.ClientError, TimeoutError):
                return  # the server died under it: whether it was stored is the question
            killing = kill_after is not None and len(answers) >= kill_after
            if killing and server.process.poll() is None:
                server.process.kill()

        await asyncio.wait_for(asyncio.gather(*(send(i) for i in range(STREAM))), timeout=120)
    return answers


async def test_a_server_killed_mid_stream_loses_no_acknowledged_lead_and_doubles_none(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    first = servers.start(database)
    await wait_until_ready(first)
    before_kill = await send_all(first, kill_after=KILL_AFTER)
    assert first.process.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
    acknowledged = {i: body for i, (status, body) in before_kill.items() if status in (200, 201)}
    assert all(status == 201 for status, _ in before_kill.values())
    assert KILL_AFTER <= len(acknowledged) < STREAM

    second = servers.start(database)
    await wait_until_ready(second)
    resent = await send_all(second)
    assert terminate(second) == 0, second.output()  # the log says why, if not

    assert len(resent) == STREAM
    assert {status for status, _ in resent.values()} <= {200, 201}
    for lead_id, body in acknowledged.items():
        assert resent[lead_id] == (200, body), lead_id

    with sqlite3.connect(database) as db:
        leads = dict(db.execute("SELECT external_id, id FROM leads").fetchall())
        assert len(leads) == STREAM
        decisions = dict(db.execute("SELECT lead_id, count(*) FROM decisions GROUP BY lead_id"))
        assert all(decisions.get(lead) == 1 for lead in leads.values())
        offers = db.execute("SELECT lead_id, count(*) FROM offers GROUP BY lead_id").fetchall()
        assert all(count == 1 for _, count in offers), "a lead was offered twice"
        cards = db.execute(
            "SELECT count(*) FROM offers o JOIN outbox b ON b.dedupe_key = 'offer-card:' || o.id"
        ).fetchone()[0]
        queued = db.execute("SELECT id FROM leads WHERE status = 'queued'").fetchall()
        posts = db.execute(
            "SELECT count(*) FROM leads l JOIN outbox b "
            "ON b.dedupe_key = 'queue-post:' || l.id || ':0' WHERE l.status = 'queued'"
        ).fetchone()[0]
        team_cards = db.execute(
            "SELECT count(*) FROM offers o JOIN outbox b ON b.dedupe_key = 'team-card:' || o.id"
        ).fetchone()[0]
        outbox = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        statuses = dict(db.execute("SELECT external_id, status FROM leads"))
    assert cards == len(offers) > 0
    assert posts == len(queued) > 0
    assert outbox == cards + team_cards + posts  # each once: no item queued twice
    assert {statuses[i] for i in leads} >= {"offered", "queued", "nurture"}
    assert all(statuses[i] == body["status"] for i, body in acknowledged.items())


# --- settings and migrations, in-process ----------------------------------------------------


def test_serve_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve"],
        env={
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
            "LEADROUTER_WEBHOOK_SECRET": None,
        },
    )
    assert result.exit_code == 1
    assert "LEADROUTER_WEBHOOK_SECRET is not set" in result.stderr
    assert not (tmp_path / "leads.db").exists()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://db/leads"}, "DATABASE_URL: must be a SQLite or PostgreSQL URL"),
        ({"LEADROUTER_WEBHOOK_SECRET": "short"}, "must be at least 16 characters"),
        ({"PORT": "http"}, "PORT:"),
    ],
)
def test_serve_with_bad_settings_exits_1_with_a_sentence_and_no_secret(
    env: dict[str, str], expected: str
) -> None:
    result = runner.invoke(app, ["serve"], env={"LEADROUTER_WEBHOOK_SECRET": SECRET, **env})
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert SECRET not in result.output


def test_db_upgrade_migrates_and_prints_the_revision(tmp_path: Path) -> None:
    database = tmp_path / "leads.db"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    first = runner.invoke(app, ["db", "upgrade"], env=env)
    again = runner.invoke(app, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().startswith("database upgraded: at revision ")
    assert first.stdout == again.stdout
    assert "None" not in first.stdout
    assert row_counts(database)["leads"] == 0


def test_db_upgrade_of_a_file_that_is_not_a_database_says_so(tmp_path: Path) -> None:
    # Not a missing folder: aiosqlite's failed connect races its own event loop's end and
    # leaves a thread warning behind (aiosqlite 0.22, core.py Connection._connect).
    database = tmp_path / "leads.db"
    database.write_bytes(b"these are not the tables you are looking for" * 100)
    result = runner.invoke(
        app, ["db", "upgrade"], env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    )
    assert result.exit_code == 1
    assert "cannot migrate the database: (sqlite3.DatabaseError) file is not a database" in (
        result.stderr
    )
    assert "Traceback" not in result.output
