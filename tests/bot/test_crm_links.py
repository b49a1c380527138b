"""Links to a lead's CRM record: the addresses `record_url` builds, the settings they come from
and how those are checked, and the "Open in CRM" link on the cards of leads POSTed to /leads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.bootstrap import bootstrap
from bot.card import card_content_of
from bot.cli import app as cli
from bot.crm_links import record_url
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.settings import Settings, SettingsError, load_settings
from bot.slack.cards import CardView, offer_card
from routing.leads import MAX_ID_LENGTH
from routing.model import CrmSystem
from routing.policy import parse_policy
from storage.db import Database
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import rich_texts
from tests.bot.webhook import SECRET, as_body, signed
from tests.fakes.slack import FakeSlack, action_body, slack_signed_headers

SALESFORCE = "https://acme.my.salesforce.com"
HUBSPOT = "https://app.hubspot.com"
HUBSPOT_EU = "https://app-eu1.hubspot.com"
PORTAL = "1234567"


def url(
    crm_system: str | None,
    crm_id: str | None,
    *,
    salesforce: str | None = SALESFORCE,
    portal: str | None = PORTAL,
    hubspot: str = HUBSPOT,
) -> str | None:
    return record_url(
        crm_system,
        crm_id,
        salesforce_instance_url=salesforce,
        hubspot_portal_id=portal,
        hubspot_app_url=hubspot,
    )


# --- record_url -----------------------------------------------------------------------------


def test_a_salesforce_lead_links_to_its_lightning_record_page() -> None:
    assert url("salesforce", "00Q5e00000AbCdEFGH") == (
        "https://acme.my.salesforce.com/lightning/r/Lead/00Q5e00000AbCdEFGH/view"
    )


def test_a_hubspot_lead_links_to_its_contact_record_in_the_portal() -> None:
    assert url("hubspot", "51") == "https://app.hubspot.com/contacts/1234567/record/0-1/51"


def test_a_hubspot_account_in_the_eu_links_to_the_eu_app() -> None:
    assert url("hubspot", "51", hubspot=HUBSPOT_EU) == (
        "https://app-eu1.hubspot.com/contacts/1234567/record/0-1/51"
    )


def test_the_crm_system_may_be_given_as_the_enum() -> None:
    assert url(CrmSystem.HUBSPOT, "51") == url("hubspot", "51")


@pytest.mark.parametrize(
    ("crm_system", "crm_id", "salesforce", "portal"),
    [
        ("salesforce", "00Q5e00000AbCdE", None, PORTAL),  # Salesforce not configured
        ("hubspot", "51", SALESFORCE, None),  # HubSpot not configured
        ("pipedrive", "51", SALESFORCE, PORTAL),  # a CRM leadrouter does not know
        (None, "51", SALESFORCE, PORTAL),
        ("salesforce", None, SALESFORCE, PORTAL),
        ("salesforce", "", SALESFORCE, PORTAL),
        ("hubspot", "   ", SALESFORCE, PORTAL),
        ("hubspot", "9" * (MAX_ID_LENGTH + 1), SALESFORCE, PORTAL),
    ],
)
def test_no_link_without_a_known_configured_crm_and_an_id(
    crm_system: str | None, crm_id: str | None, salesforce: str | None, portal: str | None
) -> None:
    assert url(crm_system, crm_id, salesforce=salesforce, portal=portal) is None


def test_an_id_from_outside_is_quoted_and_cannot_leave_its_path_segment() -> None:
    link = url("salesforce", "../../secur/logout.jsp?x=1#top|<b> &")
    assert link == (
        "https://acme.my.salesforce.com/lightning/r/Lead/"
        "..%2F..%2Fsecur%2Flogout.jsp%3Fx%3D1%23top%7C%3Cb%3E%20%26/view"
    )


def test_surrounding_spaces_of_an_id_are_not_part_of_it() -> None:
    assert url("hubspot", " 51 ") == url("hubspot", "51")


@given(st.text(min_size=1, max_size=MAX_ID_LENGTH).filter(lambda s: s.strip() == s and s))
def test_any_id_stays_one_segment_of_the_crm_site_and_makes_a_card_slack_accepts(
    crm_id: str,
) -> None:
    link = url("hubspot", crm_id)
    assert link is not None
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == (
        "https",
        "app.hubspot.com",
        "",
        "",
    )
    prefix = "/contacts/1234567/record/0-1/"
    assert parts.path.startswith(prefix)
    assert unquote(parts.path.removeprefix(prefix)) == crm_id
    # The card renders it (blocks.py refuses a link it cannot carry safely).
    content = card_content_of(
        {},
        parse_policy("reps: []"),
        lead_id="L-1",
        reason="r",
        sla_seconds=None,
        offered_at=_NOON,
    )
    message = offer_card(CardView(lead_id="L-1", content=content, crm_url=link))
    assert "|Open in CRM>" in json.dumps(message.blocks)


_NOON = datetime(2026, 11, 17, 12, tzinfo=UTC)


# --- the settings ----------------------------------------------------------------------------


def test_the_crm_settings_are_optional_and_hubspot_defaults_to_its_us_app() -> None:
    settings = Settings()
    assert settings.salesforce_instance_url is None
    assert settings.hubspot_portal_id is None
    assert settings.hubspot_app_url == HUBSPOT


def test_the_crm_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com/")
    monkeypatch.setenv("HUBSPOT_PORTAL_ID", " 1234567 ")
    monkeypatch.setenv("HUBSPOT_APP_URL", HUBSPOT_EU)

    settings = load_settings()

    assert settings.salesforce_instance_url == SALESFORCE  # without the trailing slash
    assert settings.hubspot_portal_id == PORTAL
    assert settings.hubspot_app_url == HUBSPOT_EU


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        (
            "salesforce_instance_url",
            "http://acme.my.salesforce.com",
            "SALESFORCE_INSTANCE_URL: must be an https:// address such as "
            "https://acme.my.salesforce.com",
        ),
        (
            "salesforce_instance_url",
            "acme.my.salesforce.com",
            "SALESFORCE_INSTANCE_URL: must be an https:// address",
        ),
        (
            "salesforce_instance_url",
            "https://acme.lightning.force.com/lightning/page/home",
            "SALESFORCE_INSTANCE_URL: must be the site address alone, such as "
            "https://acme.my.salesforce.com, with no path",
        ),
        (
            "salesforce_instance_url",
            "https://acme.my.salesforce .com",
            "SALESFORCE_INSTANCE_URL: must be an https:// address",
        ),
        (
            "salesforce_instance_url",
            "https://acme.my.salesforce.com:https",
            "SALESFORCE_INSTANCE_URL: must be an https:// address",
        ),
        (
            "hubspot_portal_id",
            "acme",
            "HUBSPOT_PORTAL_ID: must be the HubSpot account id, digits only",
        ),
        ("hubspot_portal_id", "12 34", "HUBSPOT_PORTAL_ID: must be the HubSpot account id"),
        ("hubspot_portal_id", "١٢٣", "HUBSPOT_PORTAL_ID: must be the HubSpot account id"),
        (
            "hubspot_app_url",
            "https://app.hubspot.com/contacts/1234567",
            "HUBSPOT_APP_URL: must be the site address alone, such as https://app.hubspot.com",
        ),
        ("hubspot_app_url", "ftp://app.hubspot.com", "HUBSPOT_APP_URL: must be an https://"),
    ],
)
def test_a_malformed_crm_setting_is_refused_with_a_sentence_naming_it(
    setting: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(**{setting: value})
    assert expected in str(raised.value)


def test_every_crm_setting_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(salesforce_instance_url="acme", hubspot_portal_id="acme")
    message = str(raised.value)
    assert "SALESFORCE_INSTANCE_URL:" in message and "HUBSPOT_PORTAL_ID:" in message


def test_serve_refuses_to_start_with_a_malformed_crm_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve"],
        env={
            "LEADROUTER_WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
            "HUBSPOT_PORTAL_ID": "acme",
        },
    )
    assert result.exit_code == 1
    assert "HUBSPOT_PORTAL_ID: must be the HubSpot account id" in result.stderr
    assert "Traceback" not in result.output


# --- the card of a lead POSTed to /leads -----------------------------------------------------

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""

SIGNING_SECRET = "slack-signing-secret-for-tests"
Post = Callable[[dict[str, Any]], Awaitable[int]]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def http(
    tmp_path: Path, sqlite_db: Database, clock: Clock, slack: FakeSlack
) -> AsyncIterator[TestClient]:
    """The real server, built by bootstrap from settings naming both CRMs."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        webhook_secret=SecretStr(SECRET),
        slack_bot_token=SecretStr("xoxb-test-token"),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=slack.api_url,
        salesforce_instance_url=SALESFORCE,
        hubspot_portal_id=PORTAL,
        hubspot_app_url=HUBSPOT_EU,
    )
    application = bootstrap(settings, db=sqlite_db, policy=parse_policy(POLICY), clock=clock)
    client = TestClient(TestServer(build_http_app(application, metrics=Metrics())))
    await client.start_server()
    yield client
    await client.close()
    await application.uow.aclose()


@pytest.fixture
def post_lead(http: TestClient, clock: Clock) -> Post:
    async def post(lead: dict[str, Any]) -> int:
        body = as_body(lead)
        response = await http.post("/leads", data=body, headers=signed(body, at=clock.timestamp()))
        return response.status

    return post


async def card_blocks(slack: FakeSlack, count: int = 1) -> str:
    posts = await slack.wait_for("chat.postMessage", count=count)
    return json.dumps(posts[count - 1].params["blocks"])


async def test_the_card_of_a_salesforce_lead_opens_its_record(
    post_lead: Post, slack: FakeSlack
) -> None:
    lead = {"id": "L-1", "company": "Acme", "crm_system": "salesforce", "crm_id": "00Q5e00000AbCdE"}
    assert await post_lead(lead) == 201
    blocks = await card_blocks(slack)
    assert "<https://acme.my.salesforce.com/lightning/r/Lead/00Q5e00000AbCdE/view|Open in CRM>" in (
        blocks
    )


async def test_the_card_of_a_hubspot_lead_opens_its_contact_in_the_configured_app(
    post_lead: Post, slack: FakeSlack
) -> None:
    assert await post_lead({"id": "L-2", "crm_system": "HubSpot", "crm_id": "51"}) == 201
    blocks = await card_blocks(slack)
    assert "<https://app-eu1.hubspot.com/contacts/1234567/record/0-1/51|Open in CRM>" in blocks


async def test_a_lead_from_no_crm_gets_a_card_without_a_link(
    post_lead: Post, slack: FakeSlack
) -> None:
    assert await post_lead({"id": "L-3", "company": "Acme"}) == 201
    blocks = await card_blocks(slack)
    assert "Acme" in blocks
    assert "Open in CRM" not in blocks


async def test_a_crm_id_full_of_link_syntax_still_gets_its_card_with_the_id_quoted(
    post_lead: Post, slack: FakeSlack
) -> None:
    lead = {"id": "L-4", "crm_system": "hubspot", "crm_id": "51|<!channel>&x=1 >"}
    assert await post_lead(lead) == 201
    blocks = await card_blocks(slack)
    assert (
        "<https://app-eu1.hubspot.com/contacts/1234567/record/0-1/"
        "51%7C%3C%21channel%3E%26x%3D1%20%3E|Open in CRM>"
    ) in blocks
    assert "<!channel>" not in blocks


async def test_the_claimed_card_keeps_its_link(
    http: TestClient, post_lead: Post, slack: FakeSlack
) -> None:
    assert await post_lead({"id": "L-5", "crm_system": "hubspot", "crm_id": "51"}) == 201
    await slack.wait_for("chat.postMessage")
    click = action_body("claim_lead", "L-5", "UANN", channel="DANN")
    headers = slack_signed_headers(click, SIGNING_SECRET)
    assert (await http.post("/slack/events", data=click, headers=headers)).status == 200
    (update,) = await slack.wait_for("chat.update")
    blocks = json.dumps(update.params["blocks"])
    assert "Claimed by <@UANN>" in rich_texts(update.params["blocks"])
    assert "<https://app-eu1.hubspot.com/contacts/1234567/record/0-1/51|Open in CRM>" in blocks
