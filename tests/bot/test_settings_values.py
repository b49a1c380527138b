"""Settings as an operator writes them into `.env`: a line left empty, a number that is not one,
an address with a typo. Each stops `serve` with a sentence naming the variable, and none is
taken as if it were a value that works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import SettingsError, load_settings, unknown_settings
from tests.bot.conftest import EXAMPLES
from tests.bot.webhook import SECRET

runner = CliRunner()

# Settings that are unset by default: an empty line for one (`SLACK_SIGNING_SECRET=`, as an
# uncommented line of .env.example reads) is a mistake, not a secret or an address.
UNSET_BY_DEFAULT = [
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SALESFORCE_INSTANCE_URL",
    "HUBSPOT_PORTAL_ID",
    "SALESFORCE_ACCESS_TOKEN",
    "SALESFORCE_USERNAME",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "SALESFORCE_DOMAIN",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_WEBHOOK_URL",
    "LEADROUTER_PUBLIC_URL",
    "LEADROUTER_DASHBOARD_TOKEN",
    "LEADROUTER_METRICS_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "LEADROUTER_CURRENCY",
]


def problem(**env: Any) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET, **env)
    return str(raised.value)


@pytest.mark.parametrize("name", UNSET_BY_DEFAULT)
@pytest.mark.parametrize("empty", ["", "   "])
def test_a_setting_left_empty_is_refused_as_empty_not_taken_as_a_value(
    name: str, empty: str
) -> None:
    assert problem(**{name: empty}) == (
        f"{name}: is empty; give it a value, or remove the line to leave it unset"
    )


def test_an_empty_webhook_secret_says_what_to_set_it_to() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(LEADROUTER_WEBHOOK_SECRET="")

    assert str(raised.value) == (
        "LEADROUTER_WEBHOOK_SECRET: is empty; set it to a long random string (16+ characters), "
        "such as the output of `openssl rand -hex 32`"
    )


def test_an_empty_signing_secret_stops_serve_rather_than_failing_every_slack_request() -> None:
    result = runner.invoke(
        app,
        ["serve"],
        env={
            "LEADROUTER_WEBHOOK_SECRET": SECRET,
            "SLACK_BOT_TOKEN": "xoxb-1-secret-bot-token",
            "SLACK_SIGNING_SECRET": "",
        },
    )

    assert result.exit_code == 1
    assert "SLACK_SIGNING_SECRET: is empty" in result.stderr
    assert "Traceback" not in result.output
    assert "secret-bot-token" not in result.output


def test_an_empty_policy_file_setting_is_named_rather_than_read_as_the_working_folder() -> None:
    assert problem(LEADROUTER_RULES="") == (
        "LEADROUTER_RULES: is empty; name the policy file, such as routing.yml, or remove "
        "the line for routing.yml in the working directory"
    )


@pytest.mark.parametrize("given", ["", "abc", "nan", "inf", "0", "-2", "3601"])
def test_a_policy_check_interval_that_is_not_a_number_of_seconds_gets_our_sentence(
    given: str,
) -> None:
    assert problem(LEADROUTER_POLICY_CHECK_SECONDS=given) == (
        "LEADROUTER_POLICY_CHECK_SECONDS: must be a number of seconds from more than 0 to "
        "3600, such as 2"
    )


@pytest.mark.parametrize("given", ["0.5", "2", " 30 ", "3600"])
def test_a_policy_check_interval_in_range_is_taken(given: str) -> None:
    settings = load_settings(
        LEADROUTER_WEBHOOK_SECRET=SECRET, LEADROUTER_POLICY_CHECK_SECONDS=given
    )

    assert settings.policy_check_seconds == float(given)


@pytest.mark.parametrize("given", ["", "abc", "0", "65", "2.5", "-1"])
def test_a_crm_concurrency_that_is_not_a_whole_number_in_range_gets_our_sentence(
    given: str,
) -> None:
    assert problem(CRM_CONCURRENCY=given) == (
        "CRM_CONCURRENCY: must be a whole number from 1 to 64, such as 16"
    )


@pytest.mark.parametrize(
    "given",
    [
        "leads.example.com/webhooks/hubspot",
        "htps://leads.example.com/webhooks/hubspot",
        "https://leads example.com/webhooks/hubspot",
        "https:///webhooks/hubspot",
    ],
)
def test_a_hubspot_webhook_url_that_is_not_an_address_is_refused(given: str) -> None:
    assert problem(HUBSPOT_WEBHOOK_URL=given) == (
        "HUBSPOT_WEBHOOK_URL: must be the full public address HubSpot posts to, such as "
        "https://leads.example.com/webhooks/hubspot"
    )


def test_a_hubspot_webhook_url_is_kept_as_written() -> None:
    url = "https://leads.example.com/webhooks/hubspot"

    settings = load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET, HUBSPOT_WEBHOOK_URL=url)

    assert settings.hubspot_webhook_url == url


@pytest.mark.parametrize("given", ["https://slack com/api/", "https:///api/", "https://"])
def test_a_slack_api_url_without_a_host_is_refused(given: str) -> None:
    assert problem(SLACK_API_URL=given) == (
        "SLACK_API_URL: must be an http(s) URL such as https://slack.com/api/"
    )


@pytest.mark.parametrize(
    ("name", "given"),
    [
        ("SLACK_API_URL", "http://slack.example.com/api/"),
        ("SLACK_API_URL", "http://10.0.0.7:8080/api/"),
        ("HUBSPOT_API_URL", "http://api.hubapi.com"),
    ],
)
def test_an_api_url_in_plain_http_beyond_this_machine_is_refused_as_it_would_carry_the_token(
    name: str, given: str
) -> None:
    said = problem(**{name: given})

    assert said.startswith(f"{name}: ")
    assert "https" in said


@pytest.mark.parametrize(
    ("name", "given"),
    [("SLACK_API_URL", "http://127.0.0.1:8080/api/"), ("HUBSPOT_API_URL", "http://localhost:9")],
)
def test_an_api_url_in_plain_http_on_this_machine_is_kept_for_tests_and_fakes(
    name: str, given: str
) -> None:
    settings = load_settings(**{name: given})

    assert getattr(settings, name.lower()).rstrip("/") == given.rstrip("/")


@pytest.mark.parametrize(
    "given",
    ["sqlite://", "sqlite:///", "sqlite+aiosqlite://", "sqlite:///:memory:", " sqlite:/// "],
)
def test_a_sqlite_url_without_a_file_is_refused_rather_than_keeping_the_leads_in_memory(
    given: str,
) -> None:
    assert problem(DATABASE_URL=given) == (
        "DATABASE_URL: names no SQLite file, and a database in memory is lost when the process "
        "ends: give its path, such as sqlite:///leadrouter.db (three slashes: under the "
        "working directory) or sqlite:////data/leadrouter.db (four: from the root)"
    )


@pytest.mark.parametrize("given", ["sqlite://leads.db", "sqlite+aiosqlite://data/leads.db"])
def test_a_sqlite_url_with_two_slashes_says_how_many_it_takes(given: str) -> None:
    assert problem(DATABASE_URL=given) == (
        "DATABASE_URL: a SQLite URL has three slashes before a path under the working "
        "directory (sqlite:///leadrouter.db), four before one from the root "
        "(sqlite:////data/leadrouter.db)"
    )


@pytest.mark.parametrize(
    "given", ["sqlite:///leads.db", "sqlite:////data/leads.db", "sqlite+aiosqlite:///./x.db"]
)
def test_a_sqlite_url_naming_a_file_is_taken(given: str) -> None:
    settings = load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET, DATABASE_URL=given)

    assert settings.database_url.startswith("sqlite+aiosqlite:///")


def test_check_reads_the_policy_file_dotenv_names_as_serve_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.yml").write_text((EXAMPLES / "routing.yml").read_text())
    (tmp_path / ".env").write_text("LEADROUTER_RULES=mine.yml\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEADROUTER_RULES", raising=False)

    result = runner.invoke(app, ["check"])

    assert load_settings().rules == Path("mine.yml")  # what serve reads
    assert result.exit_code == 0, result.output
    assert "routing.yml: no such policy file" not in result.output


def test_the_environment_wins_over_dotenv_for_the_policy_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LEADROUTER_RULES=mine.yml\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADROUTER_RULES", "theirs.yml")

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert "theirs.yml: no such policy file" in result.stderr


@pytest.mark.parametrize("name", ["SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET"])
@pytest.mark.parametrize("token", ["xoxb-1-secret-bot-token", "xapp-1-A1-secret-app-token"])
def test_a_slack_token_pasted_where_a_secret_belongs_is_named_as_the_wrong_kind(
    name: str, token: str
) -> None:
    env = {name: token, "SLACK_BOT_TOKEN": "xoxb-1-the-bot-token"}
    if name == "SLACK_CLIENT_SECRET":
        env |= {"SLACK_CLIENT_ID": "123.456", "LEADROUTER_PUBLIC_URL": "https://leads.example.com"}
    else:
        env |= {"SLACK_APP_TOKEN": "xapp-1-the-app-token"}

    message = problem(**env)

    assert message == (
        f"{name}: is a Slack token, not a secret: copy it from the app's Basic Information, "
        "App Credentials"
    )
    assert "secret-bot-token" not in message and "secret-app-token" not in message


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"SALESFORCE_PASSWORD": "pw-secret"}, "SALESFORCE_USERNAME"),
        ({"SALESFORCE_SECURITY_TOKEN": "tok-secret"}, "SALESFORCE_USERNAME"),
        ({"SALESFORCE_CLIENT_SECRET": "cs-secret"}, "SALESFORCE_CLIENT_ID"),
    ],
)
def test_salesforce_credentials_without_the_name_they_go_with_are_a_sentence_not_ignored(
    given: dict[str, str], missing: str
) -> None:
    (name,) = given

    message = problem(**given)

    assert message == f"{name} is set but {missing} is not: set both, or neither"
    assert "secret" not in message.lower().replace("_secret", "")


def test_serve_warns_of_a_variable_it_does_not_know_that_looks_like_one_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("SALESFORCE_USER=ops@acme.example\nPOSTGRES_PASSWORD=x\n")
    monkeypatch.chdir(tmp_path)
    environ = {
        "SLACK_BOT_TOKN": "xoxb-1-secret",
        "SLACK_WEBHOOK": "unrelated",
        "LEADROUTER_PLAIN_PYTHON": "1",
        "LEADROUTER_DOMAIN": "leads.example.com",  # compose's, in the same .env
        "PATH": "/bin",
    }

    found = unknown_settings(environ)

    assert found == [
        "SALESFORCE_USER (in .env) is not a setting leadrouter reads: did you mean "
        "SALESFORCE_USERNAME?",
        "SLACK_BOT_TOKN is not a setting leadrouter reads: did you mean SLACK_BOT_TOKEN?",
    ]
    assert not [line for line in found if "secret" in line]


@pytest.mark.parametrize("given", ["dollars", "US", "USDX", "XAU", "XXX", "$", "12"])
def test_a_currency_that_is_not_an_iso_4217_code_is_refused_with_what_to_write(given: str) -> None:
    assert problem(LEADROUTER_CURRENCY=given) == (
        "LEADROUTER_CURRENCY: must be the ISO 4217 code of the currency every amount is in, "
        "such as USD, EUR or GBP"
    )


@pytest.mark.parametrize(("given", "taken"), [("USD", "USD"), (" eur ", "EUR"), ("gbp", "GBP")])
def test_a_currency_code_is_taken_in_capitals_whatever_case_it_is_written_in(
    given: str, taken: str
) -> None:
    settings = load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET, LEADROUTER_CURRENCY=given)

    assert settings.currency == taken


def test_no_currency_is_set_unless_the_operator_names_one() -> None:
    assert load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET).currency is None


# --- TRUSTED_PROXIES ---------------------------------------------------------------------------


def test_trusted_proxies_are_read_from_the_environment_as_addresses_and_networks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", " 172.18.0.0/16, 10.0.0.7 fd00::/8")
    proxies = load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET).trusted_proxies
    assert [str(network) for network in proxies] == ["172.18.0.0/16", "10.0.0.7/32", "fd00::/8"]


def test_no_proxy_is_trusted_unless_named() -> None:
    assert load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET).trusted_proxies == ()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            "10.0.0.0/33",
            "TRUSTED_PROXIES: '10.0.0.0/33' is not an IP address or a network such as "
            "172.18.0.0/16",
        ),
        ("caddy", "TRUSTED_PROXIES: 'caddy' is not an IP address or a network such as"),
        (
            "10.0.0.0/8, 10.1.2.3/8",
            "TRUSTED_PROXIES: '10.1.2.3/8' has bits set past its prefix: write 10.0.0.0/8 for "
            "the network, or 10.1.2.3 for the one address",
        ),
        ("  ", "TRUSTED_PROXIES: is empty;"),
    ],
)
def test_a_trusted_proxy_that_is_no_address_or_network_stops_the_start_naming_it(
    written: str, expected: str
) -> None:
    assert problem(TRUSTED_PROXIES=written).startswith(expected)
