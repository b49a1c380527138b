"""`leadrouter serve` as a real process changes its policy without a restart: it activates its file
at start, and SIGHUP makes it read the file again at once (the periodic look is set to an hour
here, so nothing else could)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import aiohttp

from routing.policy_version import version_of
from tests.bot.test_serve import Servers, post, terminate, wait_until_ready
from tests.service.support import TRIO_POLICY

TURNED_POLICY = TRIO_POLICY.replace("name: Everyone", "name: Everyone since the change")
SWITCH_TIMEOUT_S = 10


def activations(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT version, how FROM policy_activations ORDER BY id"
        ).fetchall()


async def test_sighup_makes_serve_read_its_policy_file_again_without_a_restart(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(TRIO_POLICY, encoding="utf-8")
    database = tmp_path / "leads.db"
    server = servers.start(
        database,
        extra_env={"LEADROUTER_RULES": str(rules), "LEADROUTER_POLICY_CHECK_SECONDS": "3600"},
    )
    await wait_until_ready(server)
    assert activations(database) == [(version_of(TRIO_POLICY), "serve at start")]

    async with aiohttp.ClientSession() as session:
        status, first = await post(session, server, {"id": "L-1", "company": "Acme"})
        assert (status, first["rule"]) == (201, "Everyone")
        rules.write_text(TURNED_POLICY, encoding="utf-8")
        status, unchanged = await post(session, server, {"id": "L-2", "company": "Acme"})
        assert (status, unchanged["rule"]) == (201, "Everyone")  # nothing looked yet

        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + SWITCH_TIMEOUT_S
        n = 3
        while True:
            status, answer = await post(session, server, {"id": f"L-{n}", "company": "Acme"})
            assert status == 201
            if answer["rule"] == "Everyone since the change":
                break
            assert time.monotonic() < deadline, server.output()
            n += 1
            await asyncio.sleep(0.05)

    assert server.process.poll() is None  # SIGHUP did not stop it
    assert activations(database)[-1] == (version_of(TURNED_POLICY), "SIGHUP")
    assert terminate(server) == 0, server.output()
    assert "serving version" in server.output()
    assert "Traceback" not in server.output()


BROKEN_POLICY = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, zed]")


async def test_a_restart_on_a_file_that_fails_its_checks_serves_the_active_version(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(TRIO_POLICY, encoding="utf-8")
    database = tmp_path / "leads.db"
    env = {"LEADROUTER_RULES": str(rules)}
    first = servers.start(database, extra_env=env)
    await wait_until_ready(first)
    assert terminate(first) == 0, first.output()
    rules.write_text(BROKEN_POLICY, encoding="utf-8")  # a typo saved while it was down

    again = servers.start(database, extra_env=env)
    await wait_until_ready(again)
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, again, {"id": "L-1", "company": "Acme"})

    assert (status, answer["rule"]) == (201, "Everyone")
    assert terminate(again) == 0, again.output()
    output = again.output()
    assert "`zed` is not a rep defined under reps" in output
    short = version_of(TRIO_POLICY)[:12]
    assert f"version {short}, active in the database, serves until it is fixed" in output
    assert activations(database) == [(version_of(TRIO_POLICY), "serve at start")]
    assert "Traceback" not in output


async def test_a_first_start_on_a_file_that_fails_its_checks_stops_with_its_problems(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(BROKEN_POLICY, encoding="utf-8")

    server = servers.start(tmp_path / "leads.db", extra_env={"LEADROUTER_RULES": str(rules)})
    returned = server.process.wait(timeout=30)

    assert returned == 1
    assert "`zed` is not a rep defined under reps" in server.output()
    assert "Traceback" not in server.output()
