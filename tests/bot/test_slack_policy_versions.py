"""`/routing policy` in Slack, through the real app against the fake Slack: a manager lists the
policy versions and serves an earlier one again, recorded as activated in Slack, by them."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.service.intake import intake
from bot.service.policies import Activation, activate_policy, policy_history
from routing.leads import parse_lead
from routing.policy_version import short_version
from tests.bot.conftest import SLACK_SIGNING_SECRET
from tests.fakes.slack import FakeSlack, command_body, slack_signed_headers

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
rules:
  - {name: Everyone, assign: {rep: ann}}
"""
CHANGED = POLICY.replace("assign: {rep: ann}", "assign: {rep: ben}")


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def ask(http: TestClient, slack: FakeSlack, text: str, user: str, n: int) -> str:
    """`/routing TEXT` from `user`; the `n`th answer of the test, its text."""
    body = command_body(text, user, response_url=slack.response_url(f"r{n}"), trigger_id=f"t{n}")
    headers = slack_signed_headers(body, SLACK_SIGNING_SECRET)
    assert (await http.post("/slack/events", data=body, headers=headers)).status == 200
    answers = await slack.wait_for("response", count=n)
    assert answers[-1].params["response_type"] == "ephemeral"
    text_: str = answers[-1].params["text"]
    return text_


async def test_a_manager_lists_the_versions_and_serves_an_earlier_one_again(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    first = await activate_policy(
        app.uow, POLICY, source="routing.yml", how=Activation.START, by=None
    )
    second = await activate_policy(
        app.uow, CHANGED, source="routing.yml", how=Activation.COMMAND, by="root"
    )
    old, new = short_version(first.policy.version), short_version(second.policy.version)

    listed = await ask(http, slack, "policy", "UMIA", 1)
    assert listed.index(f"`{new}` · *active*") < listed.index(f"`{old}`")
    assert "by root" in listed and f"/routing policy activate {old}" in listed

    done = await ask(http, slack, f"policy activate {old}", "UMIA", 2)
    assert f"Version `{old}` activated (was `{new}`)" in done

    (latest, *_) = await policy_history(app.uow)
    assert (latest.version, latest.how, latest.by) == (
        first.policy.version,
        Activation.SLACK.value,
        "Mia Moss (mia)",
    )
    again = await ask(http, slack, f"policy activate {old}", "UMIA", 3)
    assert "is the active one already" in again


async def test_versions_are_for_managers_and_a_wrong_version_is_refused_with_a_sentence(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await activate_policy(app.uow, POLICY, source="routing.yml", how=Activation.START, by=None)

    assert "for managers" in await ask(http, slack, "policy", "UANN", 1)
    assert "for managers" in await ask(http, slack, "policy activate abcdef12", "UANN", 2)
    unknown = await ask(http, slack, "policy activate abcdef12", "UMIA", 3)
    assert "no stored policy version starts with abcdef12" in unknown
    assert "give at least" in await ask(http, slack, "policy activate zz", "UMIA", 4)
    usage = await ask(http, slack, "policy activate", "UMIA", 5)
    assert "say which version" in usage and "Traceback" not in usage
    (only,) = await policy_history(app.uow)
    assert only.how == Activation.START.value


async def test_serving_a_version_without_a_rep_says_their_unclaimed_leads_move_on(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    without_ann = POLICY.replace("  - {id: ann, name: Ann Archer, slack: UANN}\n", "").replace(
        "{rep: ann}", "{rep: ben}"
    )
    await activate_policy(app.uow, POLICY, source="routing.yml", how=Activation.START, by=None)
    gone = await activate_policy(
        app.uow, without_ann, source="routing.yml", how=Activation.COMMAND, by="root"
    )
    await activate_policy(app.uow, POLICY, source="routing.yml", how=Activation.COMMAND, by="root")
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme"}))  # offered to ann
    version = short_version(gone.policy.version)

    done = await ask(http, slack, f"policy activate {version}", "UMIA", 1)

    assert f"Version `{version}` activated" in done
    assert (
        "ann (Ann Archer) is not a rep of it: the 1 lead offered to them and not yet claimed "
        "moves on to others as the servers switch to it (claimed leads stay theirs)"
    ) in done
