"""The CRM settings: which credentials make a CRM, and sentences for the ones that cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from bot.settings import SettingsError, load_settings

INSTANCE = "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"salesforce_access_token": "00D!tok-secret-value"},
            "SALESFORCE_ACCESS_TOKEN needs SALESFORCE_INSTANCE_URL",
        ),
        (
            {"salesforce_username": "ops@acme.example"},
            "SALESFORCE_USERNAME needs SALESFORCE_PASSWORD",
        ),
        (
            {"salesforce_client_id": "3MVG9-client", "salesforce_client_secret": "cs-secret-value"},
            "SALESFORCE_CLIENT_ID needs SALESFORCE_CLIENT_SECRET and SALESFORCE_DOMAIN",
        ),
        ({"hubspot_api_url": "api.hubapi.com"}, "HUBSPOT_API_URL: must be an http(s) URL"),
        (
            {"salesforce_domain": "acme my"},
            "SALESFORCE_DOMAIN: must be login, test, or your My Domain",
        ),
        ({"crm_concurrency": 0}, "CRM_CONCURRENCY"),
        (  # the address a browser shows: the API is not served there
            {"salesforce_instance_url": "https://acme.lightning.force.com"},
            "SALESFORCE_INSTANCE_URL: https://acme.lightning.force.com is Lightning's address "
            "in a browser; the API's is https://acme.my.salesforce.com",
        ),
        (
            {"salesforce_instance_url": "https://acme--uat.sandbox.lightning.force.com/"},
            "the API's is https://acme--uat.sandbox.my.salesforce.com",
        ),
    ],
)
def test_crm_settings_that_cannot_work_stop_with_a_sentence_and_no_secret(
    given: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(**given)
    assert expected in str(raised.value)
    assert "secret-value" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "salesforce", "hubspot"),
    [
        ({}, False, False),
        ({"salesforce_instance_url": INSTANCE}, False, False),  # links only, no API
        ({"salesforce_instance_url": INSTANCE, "salesforce_access_token": "t"}, True, False),
        ({"salesforce_username": "u", "salesforce_password": "p"}, True, False),
        (
            {
                "salesforce_client_id": "c",
                "salesforce_client_secret": "s",
                "salesforce_domain": "acme.my.salesforce.com",
            },
            True,
            False,
        ),
        ({"hubspot_access_token": "pat-na1-x"}, False, True),
    ],
)
def test_a_crm_is_on_exactly_when_its_credentials_are_whole(
    given: dict[str, Any], salesforce: bool, hubspot: bool
) -> None:
    settings = load_settings(**given)
    assert (settings.salesforce_enabled, settings.hubspot_enabled) == (salesforce, hubspot)


def test_the_my_domain_is_kept_without_salesforce_com_and_the_api_url_without_its_slash() -> None:
    settings = load_settings(
        salesforce_domain="acme.my.salesforce.com", hubspot_api_url="http://127.0.0.1:9/"
    )
    assert settings.salesforce_domain == "acme.my"
    assert settings.hubspot_api_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "name",
    [
        "hubspot_access_token",
        "hubspot_client_secret",
        "salesforce_access_token",
        "salesforce_security_token",
        "salesforce_client_secret",
    ],
)
def test_a_token_pasted_with_a_line_break_or_spaces_around_it_is_taken_without_them(
    name: str,
) -> None:
    given: dict[str, Any] = {
        name: "  tok-secret-value\n",
        "salesforce_instance_url": INSTANCE,
        "salesforce_username": "ops@acme.example",
        "salesforce_password": "pw",
    }
    if name == "salesforce_client_secret":
        given |= {"salesforce_client_id": "3MVG9-client", "salesforce_domain": "acme.my"}
    settings = load_settings(**given)
    assert getattr(settings, name).get_secret_value() == "tok-secret-value"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer pat-na1-secret-value", "the token alone, without 'Bearer '"),
        ("pat-na1-secret value", "a space or a line break inside"),
    ],
)
def test_a_token_that_cannot_be_sent_as_given_stops_with_a_sentence_and_not_the_token(
    value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(hubspot_access_token=value)
    assert "HUBSPOT_ACCESS_TOKEN" in str(raised.value) and expected in str(raised.value)
    assert "secret" not in str(raised.value)
