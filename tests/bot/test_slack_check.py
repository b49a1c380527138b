"""`leadrouter slack check` against the fake Slack: the token, its scopes, every person's Slack
id and every channel the policy names, each problem with its fix, exit 1 while any is left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-slack-check-token"
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: bob, name: Bob Brown, email: bob@acme.example}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  north: {members: [ann, bob], manager: mia, channel: CNORTH}
rules:
  - {name: Partners, when: {source: partner}, assign: {queue: partners, channel: CPARTNERS}}
  - {name: Everyone, assign: {team: north}}
fallback: {queue: unmatched, channel: CTRIAGE}
"""
runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack.in_thread() as fake:
        fake.user_email["UBOB"] = "bob@acme.example"
        yield fake


def check(
    slack: FakeSlack, tmp_path: Path, policy: str = POLICY, app_token: str | None = None
) -> Result:
    rules = tmp_path / "routing.yml"
    rules.write_text(policy)
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.api_url}
    if app_token is None:
        env["SLACK_SIGNING_SECRET"] = "slack-check-secret"
    else:
        env["SLACK_APP_TOKEN"] = app_token
    return runner.invoke(app, ["slack", "check", "--rules", str(rules)], env=env)


def test_a_workspace_set_up_right_passes_every_check(slack: FakeSlack, tmp_path: Path) -> None:
    result = check(slack, tmp_path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Leadrouter Test" in out  # the workspace the token belongs to
    assert "ann: UANN" in out
    assert "bob: UBOB (found by e-mail)" in out
    assert "mia: UMIA" in out
    for channel in ("CNORTH", "CPARTNERS", "CTRIAGE"):
        assert f"{channel}: the bot can post there" in out
    assert "no problems" in out
    assert TOKEN not in result.output


def test_every_problem_is_listed_with_its_fix_and_exit_1(slack: FakeSlack, tmp_path: Path) -> None:
    slack.unknown_users.add("UGONE")
    slack.channel_errors["CNORTH"] = "not_in_channel"
    slack.channel_errors["CTRIAGE"] = "channel_not_found"
    policy = (
        POLICY.replace("slack: UANN", "slack: UGONE")
        .replace("email: bob@acme.example", "email: robert@acme.example")
        .replace("  - {id: mia, name: Mia Moss, slack: UMIA}", "  - {id: mia, slack: '@mia'}")
        + ""
    )
    policy = policy.replace("reps:\n", "reps:\n  - {id: cy, name: Cy Cole}\n")
    result = check(slack, tmp_path, policy)
    assert result.exit_code == 1
    out = result.stdout
    assert "ann: no Slack user UGONE" in out
    assert "bob: no Slack user has the e-mail robert@acme.example" in out
    assert "cy: neither a Slack id nor an e-mail" in out
    assert "mia: `@mia` is a name, not a member id" in out
    assert "CNORTH: the bot is not in this channel (team north)" in out
    assert "invite it: /invite @leadrouter in that channel" in out
    assert "CTRIAGE: the bot cannot see this channel (the unmatched queue)" in out
    assert out.count("fix:") == 6
    assert "6 problems to fix" in result.output
    assert "CPARTNERS: the bot can post there" in out


def test_a_manager_who_left_is_said_with_who_is_told_instead(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.deactivated_users.add("UMIA")
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert (
        "mia: UMIA is deactivated in Slack (no alert or digest reaches them: the other managers "
        "are told instead)" in out
    )
    assert "fix: take them out of the policy, or set `slack:`" in out


def test_a_rep_who_left_and_a_channel_archived_are_said_with_what_to_do(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.deactivated_users.add("UANN")
    # Archiving a channel takes the bot out of it: its history answers not_in_channel.
    slack.channel_errors["CNORTH"] = "not_in_channel"
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "ann: UANN is deactivated in Slack" in out
    assert "fix: take them out of the policy, or set `slack:`" in out
    assert "unarchive it first, or name another channel" in out


def test_a_missing_scope_is_named_with_what_it_is_for(slack: FakeSlack, tmp_path: Path) -> None:
    slack.scopes.remove("users:read.email")
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    assert "missing scope users:read.email" in result.stdout
    assert "OAuth & Permissions" in result.stdout and "reinstall" in result.stdout
    # Pasting the stock manifest again would drop what the admin set by hand (HTTP mode's URLs,
    # Sign in with Slack's redirect URL): not the advice for one missing scope.
    assert "manifest.yml" not in result.stdout
    assert "bob: not looked up" in result.stdout  # the scope it needs is the problem


def test_a_refused_token_is_the_one_problem_and_is_not_printed(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.fail("auth.test", status=200, error="invalid_auth")
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in result.stdout
    assert "Bot User OAuth Token" in result.stdout
    assert TOKEN not in result.output
    assert len(slack.calls) == 0  # nothing else was asked


def test_without_a_bot_token_slack_check_says_what_to_set(tmp_path: Path) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    result = runner.invoke(app, ["slack", "check", "--rules", str(rules)])
    assert result.exit_code == 1
    assert "SLACK_BOT_TOKEN is not set" in result.stderr


def test_a_revoked_bot_token_says_to_install_the_app_again(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.fail("auth.test", status=200, error="token_revoked")
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    assert "Slack refused SLACK_BOT_TOKEN (token_revoked)" in result.stdout
    assert "revoked" in result.stdout.split("fix:")[1]  # not only "copy it again"
    assert "Install App" in result.stdout
    assert TOKEN not in result.output


def test_without_chat_write_no_channel_is_said_to_take_posts(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.scopes.remove("chat:write")
    result = check(slack, tmp_path)
    assert result.exit_code == 1
    assert "missing scope chat:write" in result.stdout
    assert "the bot can post there" not in result.stdout
    assert "CNORTH: the bot is in this channel, but cannot post without chat:write" in result.stdout


def test_a_channel_given_by_name_asks_for_its_id(slack: FakeSlack, tmp_path: Path) -> None:
    result = check(slack, tmp_path, POLICY.replace("channel: CNORTH", "channel: '#sales'"))
    assert result.exit_code == 1
    assert "#sales: a channel's name, not its id (team north)" in result.stdout
    assert "About tab" in result.stdout
    assert [call.params["channel"] for call in slack.calls_to("conversations.history")] == [
        "CPARTNERS",
        "CTRIAGE",
    ]


APP_TOKEN = "xapp-1-A0001-slack-check-app-token"


def test_in_socket_mode_the_app_token_is_checked_too(slack: FakeSlack, tmp_path: Path) -> None:
    result = check(slack, tmp_path, app_token=APP_TOKEN)
    assert result.exit_code == 0, result.output
    assert "SLACK_APP_TOKEN: Socket Mode can connect" in result.stdout
    assert len(slack.calls_to("apps.connections.open")) == 1
    assert slack.connections == []  # the URL it answered is never opened
    assert APP_TOKEN not in result.output


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("invalid_auth", "App-Level Tokens"),
        ("token_revoked", "App-Level Tokens"),
        ("missing_scope", "connections:write"),
        ("not_allowed_token_type", "App-Level Tokens"),
    ],
)
def test_an_app_token_slack_refuses_is_a_problem_with_its_fix(
    slack: FakeSlack, tmp_path: Path, error: str, fix: str
) -> None:
    slack.fail("apps.connections.open", status=200, error=error)
    result = check(slack, tmp_path, app_token=APP_TOKEN)
    assert result.exit_code == 1
    assert f"Slack refused SLACK_APP_TOKEN ({error})" in result.stdout
    assert fix in result.stdout.split("fix:")[1]
    assert "1 problem to fix" in result.output
    assert APP_TOKEN not in result.output
    assert "ann: UANN" in result.stdout  # the bot token's checks ran all the same


def test_a_bot_token_in_the_app_tokens_place_says_where_the_app_token_is(
    slack: FakeSlack, tmp_path: Path
) -> None:
    result = check(slack, tmp_path, app_token="xoxb-pasted-in-the-wrong-place")
    assert result.exit_code == 1
    assert "SLACK_APP_TOKEN" in result.stderr
    assert "App-Level Tokens" in result.stderr
    assert "xoxb-pasted-in-the-wrong-place" not in result.output
    assert slack.calls == []
