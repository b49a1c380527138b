"""What `leadrouter serve` logs: a line per routed lead and per delivered card with the lead's id
(and nothing a person could be reached by), APScheduler's runs and health checks only at DEBUG,
no warning from slack_bolt at start, a shutdown line, and `LOG_FORMAT=json` for log shippers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.bootstrap import App
from bot.crm.hubspot import HubSpotCrm
from bot.crm.hubspot import client as hubspot_client
from bot.logs import configure_logging
from bot.service.intake import intake
from bot.settings import Settings, SettingsError, load_settings
from bot.slack.app import build_client, build_slack_app
from bot.slack.parts import SlackParts
from routing.leads import parse_lead
from tests.bot.test_serve import Server, Servers, post, terminate, wait_until_ready
from tests.bot.test_start_up import serve
from tests.fakes.hubspot import TOKEN, FakeHubSpot
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""
BOT_TOKEN = "xoxb-logs-test-token-0000"
SIGNING_SECRET = "logs-test-signing-secret"
# What a person could be reached by: none of it is ever logged.
CONTACT = {
    "email": "jane.doe@acme-widgets.com",
    "phone": "+1 415 555 0100",
    "first_name": "Janine",
    "last_name": "Doemeyer",
}


@pytest.fixture
def slack_policy() -> str:
    return POLICY


@pytest.fixture
def logged() -> Iterator[Any]:
    """Configure logging as `serve` does, into a buffer; the root logger as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(level: str = "INFO", fmt: str = "json") -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(level, fmt, stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


# --- the format ---------------------------------------------------------------------------------


def test_a_json_line_has_time_level_logger_message_and_the_lead_id_where_there_is_one(
    logged: Any,
) -> None:
    buffer = logged()
    logging.getLogger("bot.service").info("lead %s routed", "L-1", extra={"lead_id": "L-1"})
    logging.getLogger("bot.http").warning("no lead here")
    about_lead, other = lines_of(buffer)
    assert about_lead["level"] == "INFO" and about_lead["logger"] == "bot.service"
    assert about_lead["message"] == "lead L-1 routed" and about_lead["lead_id"] == "L-1"
    assert about_lead["time"].endswith("Z") and "T" in about_lead["time"]
    assert set(other) == {"time", "level", "logger", "message"}


def test_a_traceback_stays_on_its_lines_one_json_object(logged: Any) -> None:
    buffer = logged()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logging.getLogger("bot.http").exception("internal error abc")
    (line,) = lines_of(buffer)
    assert line["level"] == "ERROR" and line["message"] == "internal error abc"
    assert "ValueError: boom" in line["exception"]


def test_text_is_the_default_format_one_line_per_event(logged: Any) -> None:
    buffer = logged(fmt="text")
    logging.getLogger("bot.service").info("lead %s routed", "L-1", extra={"lead_id": "L-1"})
    assert buffer.getvalue().rstrip().endswith("INFO bot.service: lead L-1 routed")


def test_apschedulers_run_lines_are_debug_lines(logged: Any) -> None:
    buffer = logged("INFO")
    scheduler = logging.getLogger("apscheduler.executors.default")
    scheduler.info('Running job "sla-sweep (trigger: interval[0:00:10])"')
    scheduler.warning("Run time of job was missed")
    assert [line["level"] for line in lines_of(buffer)] == ["WARNING"]

    buffer = logged("DEBUG")
    scheduler.info('Running job "sla-sweep (trigger: interval[0:00:10])"')
    assert [line["level"] for line in lines_of(buffer)] == ["DEBUG"]


def test_health_checks_and_scrapes_answered_200_are_not_logged_at_info(logged: Any) -> None:
    buffer = logged("INFO")
    access = logging.getLogger("aiohttp.access")
    for line, status in (
        ("GET /healthz HTTP/1.1", 200),
        ("GET /metrics HTTP/1.1", 200),
        ("GET /healthz HTTP/1.1", 503),
        ("POST /leads HTTP/1.1", 201),
    ):
        access.info(
            f'"{line}" {status}', extra={"first_request_line": line, "response_status": status}
        )
    assert [line["message"] for line in lines_of(buffer)] == [
        '"GET /healthz HTTP/1.1" 503',
        '"POST /leads HTTP/1.1" 201',
    ]


def test_log_format_is_text_or_json_and_anything_else_is_refused_with_a_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "logfmt")
    with pytest.raises(SettingsError, match=r"^LOG_FORMAT: must be text or json"):
        load_settings()


# --- what is logged -----------------------------------------------------------------------------


def test_building_the_slack_app_with_the_token_in_the_environment_warns_nothing(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and warns that the client
    # given to it (built from that very setting) wins over it.
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    settings = Settings(
        slack_bot_token=SecretStr(BOT_TOKEN), slack_signing_secret=SecretStr(SIGNING_SECRET)
    )
    parts = SlackParts(
        uow=app.uow, reader=app.reader, policy=lambda: app.policy, clock=app.uow.clock
    )
    with caplog.at_level(logging.INFO):
        build_slack_app(settings, parts, build_client(settings))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    # Only that warning is dropped: Bolt's others still reach the log.
    logging.getLogger("slack_bolt.AsyncApp").warning("something else")
    assert caplog.records[-1].getMessage() == "something else"


async def test_a_routed_lead_and_its_delivered_card_are_one_info_line_each_with_its_id(
    app: App, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    assert app.delivery is not None
    caplog.set_level(logging.INFO)
    await intake(app.uow, parse_lead({"id": "L-7", "company": "Acme", **CONTACT}))
    await intake(app.uow, parse_lead({"id": "L-7", "company": "Acme", **CONTACT}))  # a repeat
    await app.delivery.deliver_due()
    about = [r for r in caplog.records if getattr(r, "lead_id", None) == "L-7"]
    assert [(r.levelname, r.name) for r in about] == [
        ("INFO", "bot.service"),
        ("INFO", "bot.slack.delivery"),
    ]
    routed, carded = (r.getMessage() for r in about)
    assert routed == "lead L-7 routed: offered to ann (team solo, rule Everyone)"
    assert carded == "lead L-7: card posted to ann"
    for value in CONTACT.values():
        assert value not in caplog.text


# --- serve, as a process ------------------------------------------------------------------------


async def test_serve_with_log_format_json_writes_one_json_object_per_line(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    # A rule after the catch-all: the policy's warning is a log line like any other.
    rules.write_text(
        POLICY + "  - name: Never\n    when: {source: web}\n    assign: {team: solo}\n"
    )
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "LEADROUTER_RULES": str(rules),
                "LOG_FORMAT": "json",
            },
        )
        await wait_until_ready(server)
        async with aiohttp.ClientSession() as session:
            status, _ = await post(session, server, {"id": "L-1", "company": "Acme", **CONTACT})
            assert status == 201
            slack.wait_for_blocking("chat.postMessage", timeout=15)
            async with session.get(f"{server.url}/healthz") as response:
                assert response.status == 200
        # The card's line is written once its post is recorded, just after Slack answers.
        await _until_logged(server, "lead L-1: card posted to ann")
        assert terminate(server) == 0, server.output()
    output = server.output()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    about = [(line["logger"], line["message"]) for line in lines if line.get("lead_id") == "L-1"]
    assert about == [
        ("bot.service", "lead L-1 routed: offered to ann (team solo, rule Everyone)"),
        ("bot.slack.delivery", "lead L-1: card posted to ann"),
    ]
    (warning,) = [line for line in lines if line["level"] in ("WARNING", "ERROR")]
    assert warning["message"].endswith("can never match")
    assert not [line for line in lines if line["logger"].startswith("apscheduler")]
    assert not [line for line in lines if "/healthz" in line["message"]]
    messages = [line["message"] for line in lines]
    assert "SIGTERM received: stopping" in " ".join(messages)
    assert messages[-1] == "leadrouter stopped"
    for secret in (BOT_TOKEN, SIGNING_SECRET, *CONTACT.values()):
        assert secret not in output


async def test_serve_with_log_format_json_gives_each_request_its_status_and_duration_as_fields(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start(tmp_path / "leads.db", extra_env={"LOG_FORMAT": "json"})
    await wait_until_ready(server)
    async with aiohttp.ClientSession() as session:
        assert (await post(session, server, {"id": "L-1", "company": "Acme"}))[0] == 201
        async with session.get(f"{server.url}/nowhere") as response:
            assert response.status == 404
    assert terminate(server) == 0, server.output()
    lines = [json.loads(line) for line in server.output().splitlines()]
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert [(line["request"], line["status"]) for line in access] == [
        ("POST /leads HTTP/1.1", 201),
        ("GET /nowhere HTTP/1.1", 404),
    ]
    assert all(isinstance(line["duration_s"], float) for line in access)
    assert all(0 <= line["duration_s"] < 10 for line in access)


@pytest.mark.parametrize(
    ("trusted", "logged_as"),
    [(None, "127.0.0.1"), ("127.0.0.1", "203.0.113.9"), ("10.0.0.0/8", "127.0.0.1")],
    ids=["no proxy trusted", "the proxy trusted", "another proxy trusted"],
)
async def test_the_access_log_names_the_client_behind_a_trusted_proxy_only(
    servers: Servers, tmp_path: Path, trusted: str | None, logged_as: str
) -> None:
    env = {"LOG_FORMAT": "json"} | ({"TRUSTED_PROXIES": trusted} if trusted else {})
    server = servers.start(tmp_path / "leads.db", extra_env=env)
    await wait_until_ready(server)
    # The client wrote an address of its own; the proxy (this test, on 127.0.0.1) appended the
    # client's as it saw it.
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/nowhere", headers=forwarded) as response,
    ):
        assert response.status == 404
    assert terminate(server) == 0, server.output()
    lines = [json.loads(line) for line in server.output().splitlines()]
    (access,) = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert access["message"].startswith(f'{logged_as} "GET /nowhere HTTP/1.1" 404 ')
    assert (access["request"], access["status"]) == ("GET /nowhere HTTP/1.1", 404)


async def test_serve_at_info_logs_the_migrations_it_runs_and_not_alembics_chatter(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    first = servers.start(database)
    await wait_until_ready(first)
    assert terminate(first) == 0, first.output()
    again = servers.start(database)  # nothing left to migrate
    await wait_until_ready(again)
    assert terminate(again) == 0, again.output()

    assert "Running upgrade  -> 0001" in first.output()
    for chatter in ("Context impl", "Will assume"):
        assert chatter not in first.output() + again.output()
    assert "alembic" not in again.output()


async def _until_logged(server: Server, text: str) -> None:
    deadline = time.monotonic() + 15
    while text not in server.output():
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} was not logged:\n{server.output()}")
        await asyncio.sleep(0.05)


async def test_serve_at_debug_logs_no_contact_detail_or_token_either(
    servers: Servers, tmp_path: Path
) -> None:
    """DEBUG is what an operator turns on to see why something fails, in production too: the
    Slack libraries' own lines there would carry each card's text (who the lead is, how to
    reach them) and each request Slack sends."""
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "LEADROUTER_RULES": str(rules),
                "LOG_LEVEL": "DEBUG",
            },
        )
        await wait_until_ready(server)
        async with aiohttp.ClientSession() as session:
            status, _ = await post(session, server, {"id": "L-1", "company": "Acme", **CONTACT})
            assert status == 201
        await _until_logged(server, "lead L-1: card posted to ann")
        assert terminate(server) == 0, server.output()
    output = server.output()
    assert " DEBUG " in output  # DEBUG it is
    for secret in (BOT_TOKEN, SIGNING_SECRET, *CONTACT.values()):
        assert secret not in output


def test_with_log_format_json_the_error_serve_stops_on_is_a_json_line_too(
    tmp_path: Path,
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, output = serve(tmp_path, PORT=str(port), LOG_FORMAT="json")

    assert code == 1
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one object
    assert lines[-1]["level"] == "ERROR"
    assert lines[-1]["message"] == (
        f"cannot listen on 127.0.0.1:{port}: another program listens there already; stop it, "
        "or set PORT to a free port"
    )


def test_with_log_format_text_the_error_serve_stops_on_stays_one_plain_sentence(
    tmp_path: Path,
) -> None:
    code, output = serve(tmp_path, LEADROUTER_RULES=str(tmp_path / "none.yml"))

    assert code == 1
    assert output.startswith(f"error: {tmp_path / 'none.yml'}: no such policy file.")


async def test_at_debug_a_contact_read_from_hubspot_is_not_written_to_the_log(
    logged: Any,
) -> None:
    """HubSpot's client can log each answer's whole body at DEBUG (a contact's name, e-mail and
    phone), which the log never holds: today its own configuration keeps that off."""
    buffer = logged("DEBUG", "text")
    async with FakeHubSpot() as hubspot:
        contact = hubspot.add_contact(
            email="dana.secret@contact.example", firstname="Dana", phone="+1 555 0199"
        )
        crm = HubSpotCrm(hubspot_client(access_token=TOKEN, api_url=hubspot.url, concurrency=1))

        record = await asyncio.to_thread(crm.lead, contact)

    assert record.values["email"] == "dana.secret@contact.example"  # the contact was read
    assert logging.getLogger().isEnabledFor(logging.DEBUG)  # DEBUG it is
    assert "dana.secret@contact.example" not in buffer.getvalue()
    assert "+1 555 0199" not in buffer.getvalue()
    assert TOKEN not in buffer.getvalue()
