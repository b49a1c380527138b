"""The Slack manifest creates the app the code expects, with no scope it does not use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.slack.check import REQUIRED_SCOPES
from bot.slack.ids import ActionId
from tests.fakes.slack import DEFAULT_SCOPES

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def manifest() -> Any:
    return YAML(typ="safe").load(MANIFEST.read_text(encoding="utf-8"))


def test_the_manifest_asks_for_exactly_the_scopes_the_app_uses() -> None:
    assert sorted(manifest()["oauth_config"]["scopes"]["bot"]) == [
        "channels:history",
        "chat:write",
        "commands",
        "groups:history",
        "im:history",
        "im:write",
        "users:read",
        "users:read.email",
    ]


def test_the_fake_slack_grants_the_manifests_scopes_by_default() -> None:
    assert sorted(DEFAULT_SCOPES) == sorted(manifest()["oauth_config"]["scopes"]["bot"])


def test_slack_check_asks_for_the_manifests_scopes_each_with_its_reason() -> None:
    assert set(REQUIRED_SCOPES) == set(manifest()["oauth_config"]["scopes"]["bot"])
    assert all(REQUIRED_SCOPES.values())


def test_the_manifest_declares_the_command_home_tab_events_and_socket_mode() -> None:
    app = manifest()
    (command,) = app["features"]["slash_commands"]
    assert command["command"] == "/routing"
    assert command["should_escape"] is True  # the pto parser reads <@U123|name> mentions
    assert "pto" in command["usage_hint"] and "why" in command["usage_hint"]
    assert app["features"]["app_home"]["home_tab_enabled"] is True
    assert app["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert app["settings"]["interactivity"]["is_enabled"] is True
    assert app["settings"]["socket_mode_enabled"] is True


def test_the_http_mode_urls_are_documented_at_the_one_endpoint_the_server_serves() -> None:
    text = MANIFEST.read_text(encoding="utf-8")
    assert text.count("/slack/events") >= 3


def test_the_card_buttons_keep_the_action_ids_the_issue_names() -> None:
    assert (ActionId.CLAIM, ActionId.REJECT, ActionId.MARK_OOO) == (
        "claim_lead",
        "reject_lead",
        "mark_ooo",
    )
