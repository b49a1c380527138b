"""The dashboard's settings: Sign in with Slack needs the app's client id and secret and the
address browsers reach leadrouter at; the token must be long; each mistake stops the start with a
sentence naming the variable."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

CLIENT_ID = "1234567890.1234567890123"


@pytest.fixture(autouse=True)
def no_dashboard_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "LEADROUTER_PUBLIC_URL",
        "LEADROUTER_DASHBOARD_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def test_by_default_neither_sign_in_is_set_up() -> None:
    settings = load_settings()
    assert not settings.sign_in_with_slack and settings.dashboard_token is None


def test_sign_in_with_slack_takes_the_client_id_and_secret_and_the_public_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", f" {CLIENT_ID} ")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "client-secret")
    monkeypatch.setenv("LEADROUTER_PUBLIC_URL", "https://leads.example.com/")
    settings = load_settings()
    assert settings.sign_in_with_slack
    assert settings.slack_client_id == CLIENT_ID
    assert settings.public_url == "https://leads.example.com"
    assert "client-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "sentence"),
    [
        (
            {"SLACK_CLIENT_ID": CLIENT_ID, "LEADROUTER_PUBLIC_URL": "https://leads.example.com"},
            "Sign in with Slack needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET",
        ),
        (
            {"SLACK_CLIENT_SECRET": "s", "LEADROUTER_PUBLIC_URL": "https://leads.example.com"},
            "Sign in with Slack needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET",
        ),
        (
            {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": "s"},
            "Sign in with Slack needs LEADROUTER_PUBLIC_URL, the address browsers reach "
            "leadrouter at (such as https://leads.example.com), to send people back to",
        ),
        (
            {"SLACK_CLIENT_ID": "A0123ABC"},
            "SLACK_CLIENT_ID: must be the Slack app's Client ID (Basic Information, App "
            "Credentials), such as 1234567890.1234567890123",
        ),
        (
            {"LEADROUTER_PUBLIC_URL": "http://leads.example.com"},
            "LEADROUTER_PUBLIC_URL: must be an https:// address such as https://leads.example.com",
        ),
        (
            {"LEADROUTER_PUBLIC_URL": "https://leads.example.com/dashboard"},
            "LEADROUTER_PUBLIC_URL: must be the site address alone",
        ),
        (
            {"LEADROUTER_DASHBOARD_TOKEN": "short"},
            "LEADROUTER_DASHBOARD_TOKEN: must be at least 32 characters, such as "
            "`openssl rand -hex 32`",
        ),
    ],
)
def test_a_dashboard_setting_that_cannot_work_stops_the_start_with_a_sentence(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], sentence: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert sentence in str(raised.value)
    assert "short" not in str(raised.value)  # a secret's value is never repeated


@pytest.mark.parametrize("url", ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]"])
def test_plain_http_is_taken_only_for_an_address_of_this_machine(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("LEADROUTER_PUBLIC_URL", url)
    assert load_settings().public_url == url
