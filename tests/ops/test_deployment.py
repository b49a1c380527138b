"""The deployment files, checked against the code they deploy: the Dockerfile (slim Python 3.11+,
no root, `leadrouter serve`, a health check that really asks /healthz), compose.yaml (PostgreSQL
and two replicas behind a TLS proxy), the proxy's Caddyfile, and .env.example naming every
setting. No Docker here: what a container would do is run as a process instead."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from ruamel.yaml import YAML

from bot.bootstrap import bootstrap
from bot.http import build_http_app
from bot.http.serving import SHUTDOWN_TIMEOUT_S
from bot.metrics import Metrics
from bot.settings import ENV_NAMES, Settings
from routing.policy import parse_policy
from storage.db import check_url
from tests.bot.test_serve import Servers, terminate, wait_until_ready
from tests.bot.webhook import free_port

ROOT = Path(__file__).resolve().parents[2]
# Names compose.yaml reads from .env for itself; leadrouter does not read them.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "LEADROUTER_DOMAIN"}
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""


def settings_names() -> set[str]:
    return {field.alias or name.upper() for name, field in Settings.model_fields.items()}


def test_env_names_lists_every_setting() -> None:
    assert set(ENV_NAMES.values()) == settings_names()


# --- Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions: continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return instructions


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = instructions[-1].stage
    return [i for i in instructions if i.stage == last]


def one(instructions: list[Instruction], keyword: str) -> str:
    (found,) = [i.arguments for i in instructions if i.keyword == keyword]
    return found


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in (i.arguments for i in final_stage() if i.keyword == "ENV"):
        env.update(re.findall(r"(\w+)=(\S+)", arguments))
    return env


def test_the_image_runs_leadrouter_serve_on_a_slim_python_3_11_or_newer_as_no_root() -> None:
    stage = final_stage()
    base = one(stage, "FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", base)
    assert match and int(match.group(1)) >= 11, base
    keywords = [i.keyword for i in stage]
    user = one(stage, "USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    command = json.loads(one(stage, "ENTRYPOINT")) + json.loads(one(stage, "CMD"))
    assert command == ["leadrouter", "serve"]


def test_the_images_settings_are_leadrouters_and_its_port_is_the_one_exposed() -> None:
    env = image_env()
    leadrouter_env = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "PIP"))}
    leadrouter_env.pop("PATH")
    assert set(leadrouter_env) <= settings_names()
    settings = Settings(**leadrouter_env)  # type: ignore[arg-type]
    assert one(final_stage(), "EXPOSE") == str(settings.port)
    assert settings.database_url.startswith("sqlite+aiosqlite:////data/")
    volume = json.loads(one(final_stage(), "VOLUME"))
    assert volume == ["/data"]


def test_the_build_copies_everything_the_package_is_built_from_and_nothing_ignored() -> None:
    copied = set()
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
            *sources, _target = instruction.arguments.split()
            copied.update(sources)
    for source in copied:
        assert (ROOT / source).exists(), source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {project["project"]["readme"], "pyproject.toml", *wheel["packages"]}
    needed |= set(wheel["force-include"])
    assert needed <= copied
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not copied & ignored
    # What must never end up in an image, or only slows the build.
    assert {".env", ".git", ".venv", "*.db"} <= ignored


def healthcheck() -> list[str]:
    arguments = one(final_stage(), "HEALTHCHECK")
    options, _, command = arguments.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv: list[str] = json.loads(command)
    assert argv[0] == "python"  # the image has no curl
    return [sys.executable, *argv[1:]]


def run_healthcheck(port: int, host: str | None = None) -> int:
    env = {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    if host is not None:
        env["HOST"] = host
    return subprocess.run(healthcheck(), env=env, capture_output=True, timeout=20).returncode


async def test_the_health_check_passes_against_a_running_serve_and_fails_once_it_stops(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start(tmp_path / "leads.db")
    await wait_until_ready(server)
    port = int(server.url.rsplit(":", 1)[1])
    assert run_healthcheck(port) == 0
    assert terminate(server) == 0
    assert run_healthcheck(port) != 0


@pytest.fixture
async def unhealthy() -> AsyncIterator[int]:
    """/healthz as leadrouter answers it while its database does not."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "unavailable"}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = TestServer(app, port=free_port())
    await server.start_server()
    yield server.port or 0
    await server.close()


async def test_the_health_check_fails_while_healthz_answers_503(unhealthy: int) -> None:
    assert await asyncio.to_thread(run_healthcheck, unhealthy) != 0


async def test_the_health_check_asks_the_address_serve_listens_on() -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    # Another loopback address than 127.0.0.1, as a HOST set to one interface would be.
    server = TestServer(app, host="127.0.0.2", port=free_port())
    await server.start_server()
    try:
        port = server.port or 0
        assert await asyncio.to_thread(run_healthcheck, port, "127.0.0.2") == 0
        assert await asyncio.to_thread(run_healthcheck, port, "0.0.0.0") != 0  # loopback: not there
    finally:
        await server.close()


# --- compose.yaml and the proxy -------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((ROOT / "compose.yaml").read_text())
    return loaded


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return rest
        raise AssertionError(f"{name} is required: {rest}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def leadrouter_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {
        name: service
        for name, service in services.items()
        if service.get("image", "").startswith("leadrouter") or "build" in service
    }


def test_compose_runs_two_replicas_on_postgresql_started_once_it_is_healthy() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    replicas = leadrouter_services()
    assert len(replicas) == 2
    env = {"POSTGRES_PASSWORD": "0123abcd"}
    for service in replicas.values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        settings = Settings(
            **{k: interpolate(str(v), env) for k, v in service["environment"].items()}
        )
        url = check_url(settings.database_url)
        assert url == (
            f"postgresql+asyncpg://{postgres['environment']['POSTGRES_USER']}:0123abcd"
            f"@postgres:5432/{postgres['environment']['POSTGRES_DB']}"
        )
        # The policy is mounted where LEADROUTER_RULES says, read-only.
        (mount,) = service["volumes"]
        source, target, mode = mount.split(":")
        assert source == "./routing.yml"
        assert (target, mode) == (str(settings.rules), "ro")
        assert str(settings.port) in service["expose"]
        # Compose waits this long after SIGTERM before it kills: more than serve needs.
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > SHUTDOWN_TIMEOUT_S
        assert "healthcheck" not in service  # the image's own, which asks /healthz


def test_compose_passes_leadrouter_only_its_own_settings() -> None:
    for service in leadrouter_services().values():
        assert set(service["environment"]) <= settings_names()
        assert service["env_file"] == ".env"


def test_every_variable_compose_reads_is_explained_in_env_example() -> None:
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used == COMPOSE_ONLY
    assert used <= set(env_example())


def caddyfile() -> str:
    return (ROOT / "ops" / "Caddyfile").read_text()


def test_the_proxy_forwards_to_each_replica_and_mounts_the_caddyfile_shipped() -> None:
    services = compose()["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "./ops/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    (upstreams,) = re.findall(r"reverse_proxy ([^{]+)\{", caddyfile())
    expected = {
        f"{name}:{service['environment']['PORT']}"
        for name, service in leadrouter_services().items()
    }
    assert set(upstreams.split()) == expected
    assert set(proxy["depends_on"]) == set(leadrouter_services())


async def test_the_proxy_opens_only_the_doors_callers_outside_need_and_they_exist(
    tmp_path: Path,
) -> None:
    (paths,) = re.findall(r"@callers path (.+)", caddyfile())
    forwarded = set(paths.split())
    (health_uri,) = re.findall(r"health_uri (\S+)", caddyfile())
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        SLACK_BOT_TOKEN=SecretStr("xoxb-compose-test"),
        SLACK_SIGNING_SECRET=SecretStr("compose-test-signing-secret"),
    )
    app = bootstrap(settings, policy=parse_policy(POLICY))
    try:
        http = build_http_app(app, metrics=Metrics())
        routes = {route.resource.canonical for route in http.router.routes() if route.resource}
    finally:
        await app.close()
    assert forwarded == {
        "/leads",
        "/events",
        "/slack/events",
        "/webhooks/hubspot",
        "/dashboard",
        "/dashboard/*",
    }
    exact = {path for path in forwarded if not path.endswith("/*")}
    assert exact <= routes and health_uri in routes
    # Everything under a forwarded prefix is the dashboard's, and the dashboard has such routes.
    prefixes = {path.removesuffix("*") for path in forwarded - exact}
    for prefix in prefixes:
        assert any(route.startswith(prefix) for route in routes)
    assert not any(route.startswith(p) for p in prefixes for route in ("/metrics", "/healthz"))
    assert "/metrics" not in forwarded and "/healthz" not in forwarded


# --- .env.example ---------------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    """Each name .env.example gives, commented out or not, with its example value."""
    found: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_names_every_setting_and_nothing_else() -> None:
    names = set(env_example())
    assert names == settings_names() | COMPOSE_ONLY


def test_every_example_value_in_env_example_is_one_leadrouter_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in settings_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env_example().items():
        if name in COMPOSE_ONLY or not value:
            continue
        Settings(**{name: value})  # type: ignore[arg-type]


def test_env_example_sets_nothing_and_holds_no_secret() -> None:
    text = (ROOT / ".env.example").read_text()
    live = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert live == []
    secrets = [
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    ]
    for name in secrets:
        assert env_example()[ENV_NAMES[name]] == "", name
