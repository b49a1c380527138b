"""docs/http.md's examples, run exactly as written against the real app on a loopback port: each
signs its lead with the real time and the secret, and leadrouter routes it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.bot.conftest import Client, Clock
from tests.bot.webhook import SECRET

DOCS = Path(__file__).resolve().parents[2] / "docs" / "http.md"


@pytest.fixture
def clock() -> Clock:
    # The examples sign with the machine's clock, so the server must read the same one.
    return Clock(datetime.now(UTC))


def example(language: str) -> str:
    (code,) = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.S)
    return str(code)


async def run(client: Client, *command: str) -> str:
    """What the example printed: the status, then the answer."""
    env = {
        **os.environ,
        "LEADROUTER_URL": str(client.make_url("")).rstrip("/"),
        "LEADROUTER_WEBHOOK_SECRET": SECRET,
        "LC_ALL": "C.UTF-8",
    }
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_python_example_sends_a_lead_that_is_routed(client: Client) -> None:
    out = await run(client, sys.executable, "-c", example("python"))
    assert out.startswith('201 {"id": "form-1002"'), out


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed here")
async def test_the_javascript_example_sends_a_lead_that_is_routed(client: Client) -> None:
    out = await run(client, "node", "-e", example("javascript"))
    assert out.startswith('201 {"id": "form-1003"'), out


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl or openssl is not installed here",
)
async def test_the_shell_example_sends_a_lead_that_is_routed(client: Client) -> None:
    out = await run(client, "bash", "-c", example("sh"))
    assert out.startswith('{"id": "form-1001", "status": "offered"'), out
