"""`leadrouter crm check` on HubSpot: the token's scopes as HubSpot tells them (the private-app
token-info call), write scope included, and the account it belongs to; read through the real
command and the real hubspot-api-client against a fake HubSpot on a loopback port."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from bot.bootstrap import crm_links
from bot.cli import app as cli
from bot.crm import hubspot_scopes as scopes
from bot.crm.sync import check
from bot.settings import Settings
from routing.policy import parse_policy
from tests.fakes.hubspot import EVERY_SCOPE, HUB_ID, TOKEN, TOKEN_INFO_PATH, FakeHubSpot

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, email: ann@acme.example}
  - {id: ben, name: Ben Baker, email: ben@acme.example}
teams:
  duo: {members: [ann, ben]}
rules:
  - name: Everyone
    assign: {team: duo}
"""
OUTCOMES = POLICY + "crm:\n  hubspot:\n    poll_outcomes_every: 5m\n"
READS = {"crm.objects.owners.read", "crm.objects.contacts.read"}


def crm_check(fake: FakeHubSpot, tmp_path: Path, policy: str = POLICY, **env: str) -> Result:
    rules = tmp_path / "routing.yml"
    rules.write_text(policy, encoding="utf-8")
    settings = {"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_API_URL": fake.url, **env}
    return CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=settings)


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def with_owners(fake: FakeHubSpot) -> None:
    for rep in ("ann", "ben"):
        fake.add_owner(f"{rep}@acme.example")


def test_a_token_without_the_write_scope_fails_the_check_naming_the_scope_its_use_and_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeHubSpot.in_thread(scopes=READS) as fake:
        with_owners(fake)
        contact = fake.add_contact(email="lead@bigco.example")
        result = crm_check(fake, tmp_path)

    assert result.exit_code == 1, result.output
    output = flat(result)
    assert "crm.objects.contacts.write" in output
    assert "owner write-back" in output
    assert "Settings → Integrations → Private Apps → the app → Scopes" in output
    assert "1 problem(s) to fix" in output  # the scope; every rep has an owner
    # Asked of HubSpot, never tried: the token went in the request's body, nothing was written.
    (asked,) = fake.calls("POST", TOKEN_INFO_PATH)
    assert asked.body == {"tokenKey": TOKEN}
    assert fake.patches == [] and not fake.calls("PATCH")
    assert contact in fake.contacts
    assert TOKEN not in result.output and TOKEN not in caplog.text


def test_a_token_with_every_scope_in_use_passes_with_a_line_of_what_was_verified(
    tmp_path: Path,
) -> None:
    with FakeHubSpot.in_thread() as fake:
        with_owners(fake)
        result = crm_check(fake, tmp_path, OUTCOMES, HUBSPOT_PORTAL_ID=str(HUB_ID))

    assert result.exit_code == 0, result.output
    output = flat(result)
    verified = output.split("verified: ", 1)[1]
    for scope in EVERY_SCOPE:  # the policy reads outcomes; not companies, which it does not sync
        assert (scope in verified) == (scope != "crm.objects.companies.read"), scope
    assert f"HubSpot account {HUB_ID}" in output
    assert f"HUBSPOT_PORTAL_ID {HUB_ID} is the token's account" in output
    assert "problem" not in output
    assert TOKEN not in result.output


def test_each_scope_the_policy_uses_and_the_token_lacks_is_a_problem_of_its_own(
    tmp_path: Path,
) -> None:
    policy = OUTCOMES + "    sync_accounts_every: 15m\n"
    with FakeHubSpot.in_thread(scopes=READS | {"crm.objects.contacts.write"}) as fake:
        with_owners(fake)
        result = crm_check(fake, tmp_path, policy)

    assert result.exit_code == 1, result.output
    problems = [line for line in result.output.split("  problem: ")[1:]]
    assert len(problems) == 3, result.output
    companies, deals, emails = (" ".join(p.split()) for p in problems)
    assert "crm.objects.companies.read" in companies and "companies sync" in companies
    assert "crm.objects.deals.read" in deals and "outcomes" in deals
    assert "sales-email-read" in emails and "e-mails" in emails
    assert "3 problem(s) to fix" in flat(result)


def test_a_token_of_another_hubspot_account_than_hubspot_portal_id_is_a_problem(
    tmp_path: Path,
) -> None:
    with FakeHubSpot.in_thread(hub_id=11112222) as fake:
        with_owners(fake)
        result = crm_check(fake, tmp_path, HUBSPOT_PORTAL_ID="33334444")

    assert result.exit_code == 1, result.output
    output = flat(result)
    assert "problem: the token belongs to HubSpot account 11112222, not" in output
    assert "HUBSPOT_PORTAL_ID 33334444" in output
    assert "links" in output  # what goes wrong: cards would open records in another account


@pytest.mark.parametrize(
    ("unavailable", "answered"),
    [({"token_info": False}, "404"), ({"private_app": False}, "400")],
    ids=["an older account without the call", "a token that is no private app's"],
)
def test_when_hubspot_will_not_tell_the_scopes_the_check_reads_as_before_with_a_note(
    tmp_path: Path, unavailable: dict[str, bool], answered: str
) -> None:
    with FakeHubSpot.in_thread(scopes=READS, **unavailable) as fake:
        with_owners(fake)
        result = crm_check(fake, tmp_path)

    assert result.exit_code == 0, result.output  # the reads it needs work: no failure
    output = flat(result)
    assert "note:" in output and f"answered {answered}" in output
    assert "crm.objects.contacts.write" in output  # said to be unchecked
    assert fake.calls("GET", "/crm/v3/objects/contacts")  # read, as before
    assert TOKEN not in result.output


def test_without_the_call_a_missing_read_scope_is_still_found_by_reading(tmp_path: Path) -> None:
    with FakeHubSpot.in_thread(scopes={"crm.objects.owners.read"}, token_info=False) as fake:
        with_owners(fake)
        result = crm_check(fake, tmp_path)

    assert result.exit_code == 1, result.output
    assert "lacks the scope crm.objects.contacts.read" in flat(result)


async def test_the_check_says_what_it_verified_and_finds_no_problem_in_a_full_token() -> None:
    async with FakeHubSpot() as fake:
        settings = Settings(hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=fake.url)
        link = crm_links(settings, lambda: parse_policy(POLICY))["hubspot"]
        try:
            result = await check(link)
        finally:
            link.calls.close()

    assert result.problems == ()
    (verified,) = result.verified
    assert "crm.objects.contacts.write for owner write-back" in verified
    assert "crm.objects.deals.read" not in verified  # outcomes are not read: not asked for
    # No HUBSPOT_PORTAL_ID: nothing to compare; the account is said, for the setting.
    assert f"HubSpot account {HUB_ID}" in verified
    (note,) = result.notes
    assert f"HUBSPOT_PORTAL_ID={HUB_ID}" in note


def test_a_token_info_call_that_fails_for_a_while_is_a_note_and_the_check_reads_as_before(
    tmp_path: Path,
) -> None:
    with FakeHubSpot.in_thread(scopes=READS) as fake:
        with_owners(fake)
        fake.fail_after(1, 503)  # the owners read that connects passes; the next is refused
        result = crm_check(fake, tmp_path)

    assert result.exit_code == 0, result.output
    assert "answered 503" in flat(result)
    assert [r.status for r in fake.calls("POST", TOKEN_INFO_PATH)] == [503]


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"hubId": 62515},
        {"scopes": ["crm.objects.contacts.read"]},
        {"hubId": "acme", "scopes": ["crm.objects.contacts.read"]},
        {"hubId": True, "scopes": ["crm.objects.contacts.read"]},
        {"hubId": 62515, "scopes": "crm.objects.contacts.read"},
        {"hubId": 62515, "scopes": [{"name": "crm.objects.contacts.read"}]},
    ],
)
def test_an_answer_not_in_the_shape_hubspot_documents_is_not_taken_for_the_tokens_scopes(
    answer: object,
) -> None:
    assert scopes.token_info(answer) is None


def test_an_answer_in_hubspots_shape_gives_the_account_app_and_scopes() -> None:
    info = scopes.token_info(
        {"userId": 1, "hubId": 62515, "appId": 1553569, "scopes": ["crm.objects.owners.read"]}
    )
    assert info == scopes.TokenInfo("62515", "1553569", frozenset({"crm.objects.owners.read"}))
