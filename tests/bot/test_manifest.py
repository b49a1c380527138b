"""The Slack manifest creates the app the code expects, with no scope it does not use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from slack_sdk.web.async_client import AsyncWebClient

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


# --- the manifest against Slack's manifest reference, and against the code -----------------------

CODE = Path(__file__).resolve().parents[2] / "bot"

# Every key Slack's app manifest reference defines where this manifest could use it, spelt as
# Slack spells it (a misspelt key is refused when the manifest is pasted, or ignored).
SLACK_KEYS: dict[str, Any] = {
    "_metadata": {"major_version": None, "minor_version": None},
    "display_information": {
        "name": None,
        "description": None,
        "long_description": None,
        "background_color": None,
    },
    "features": {
        "app_home": {
            "home_tab_enabled": None,
            "messages_tab_enabled": None,
            "messages_tab_read_only_enabled": None,
        },
        "bot_user": {"display_name": None, "always_online": None},
        "shortcuts": [{"name": None, "type": None, "callback_id": None, "description": None}],
        "slash_commands": [
            {
                "command": None,
                "url": None,
                "description": None,
                "usage_hint": None,
                "should_escape": None,
            }
        ],
        "unfurl_domains": None,
    },
    "oauth_config": {
        "redirect_urls": None,
        "scopes": {"bot": None, "user": None},
        "token_management_enabled": None,
    },
    "settings": {
        "allowed_ip_address_ranges": None,
        "event_subscriptions": {"request_url": None, "bot_events": None, "user_events": None},
        "incoming_webhooks": {"incoming_webhooks_enabled": None},
        "interactivity": {
            "is_enabled": None,
            "request_url": None,
            "message_menu_options_url": None,
        },
        "org_deploy_enabled": None,
        "socket_mode_enabled": None,
        "token_rotation_enabled": None,
    },
}

# The bot scopes each Web API method the code calls needs (Slack's method reference), for the
# kinds of conversation leadrouter uses: DMs with the app, public and private channels.
# Methods that take another token need none of the bot's: apps.connections.open takes the
# app-level token (connections:write), openid.connect.* the sign-in's own.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "conversations.open": ("im:write",),
    "conversations.history": ("im:history", "channels:history", "groups:history"),
    "users.info": ("users:read",),
    "users.lookupByEmail": ("users:read.email", "users:read"),  # Slack asks for both
    "views.open": (),
    "views.publish": (),
    "views.update": (),
    "openid.connect.token": (),
    "openid.connect.userInfo": (),
}
_CALL = re.compile(r"\.([a-z]+_[A-Za-z_]+)\b")


def unknown_keys(node: Any, schema: Any, path: str = "") -> list[str]:
    if isinstance(node, list) and isinstance(schema, list):
        return [key for item in node for key in unknown_keys(item, schema[0], f"{path}[]")]
    if not isinstance(node, dict) or schema is None:
        return []
    found = []
    for key, value in node.items():
        if key not in schema:
            found.append(f"{path}.{key}")
        else:
            found += unknown_keys(value, schema[key], f"{path}.{key}")
    return found


def code() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(CODE.rglob("*.py")))


def web_api_methods() -> set[str]:
    """The Web API methods the code calls, as slack_sdk's client names them (chat_postMessage),
    turned into Slack's names (chat.postMessage)."""
    names = {
        name for name in _CALL.findall(code()) if callable(getattr(AsyncWebClient, name, None))
    }
    return {name.replace("_", ".") for name in names}


def test_every_key_of_the_manifest_is_one_slack_defines() -> None:
    assert unknown_keys(manifest(), SLACK_KEYS) == []


def test_the_manifest_keeps_within_slacks_limits() -> None:
    app = manifest()
    info, bot = app["display_information"], app["features"]["bot_user"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}", info["background_color"])
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", bot["display_name"])
    for command in app["features"]["slash_commands"]:
        assert command["command"].startswith("/") and len(command["command"]) <= 32
        assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000


def test_the_code_calls_only_web_api_methods_whose_scopes_are_known_here() -> None:
    called = web_api_methods()
    assert {"chat.postMessage", "users.lookupByEmail", "conversations.history"} <= called
    assert called - set(METHOD_SCOPES) == set(), "add each new method's scopes to METHOD_SCOPES"


def test_the_manifest_asks_for_the_scopes_the_code_needs_and_no_others() -> None:
    needed = {scope for method in web_api_methods() for scope in METHOD_SCOPES[method]}
    if manifest()["features"].get("slash_commands"):
        needed.add("commands")
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


def test_the_events_and_commands_subscribed_are_those_the_app_listens_to() -> None:
    text, app = code(), manifest()
    assert set(re.findall(r'@app\.event\("([a-z_]+)"\)', text)) == set(
        app["settings"]["event_subscriptions"]["bot_events"]
    )
    assert set(re.findall(r'@app\.command\("(/[a-z_-]+)"\)', text)) == {
        command["command"] for command in app["features"]["slash_commands"]
    }
    assert re.search(r"@app\.(action|view)\(", text)
    assert app["settings"]["interactivity"]["is_enabled"] is True
    assert "views_publish" in text and app["features"]["app_home"]["home_tab_enabled"] is True


def test_uncommenting_the_request_urls_gives_a_valid_http_mode_manifest() -> None:
    text = MANIFEST.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s*)# (url|request_url): ", r"\1\2: ", text)
    text = text.replace("socket_mode_enabled: true", "socket_mode_enabled: false")
    app = YAML(typ="safe").load(text)
    assert unknown_keys(app, SLACK_KEYS) == []
    urls = [
        app["features"]["slash_commands"][0]["url"],
        app["settings"]["event_subscriptions"]["request_url"],
        app["settings"]["interactivity"]["request_url"],
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls)


def test_the_commands_usage_hint_names_every_subcommand_routing_knows() -> None:
    text = (CODE / "slack" / "commands.py").read_text(encoding="utf-8")
    known = set(re.findall(r'case "([a-z]+)":', text))
    assert {"pto", "why", "help"} <= known
    (command,) = manifest()["features"]["slash_commands"]
    hint = set(re.findall(r"[a-z]+", command["usage_hint"]))
    assert known - hint == set()
