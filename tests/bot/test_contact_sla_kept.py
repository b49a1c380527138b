"""Where the policy does not move an untouched lead on at its contact deadline, it stays the
rep's: App Home and `/routing queue` keep listing it, as due since then, and going out says so
with the deadlines. Signed requests through the real app, against the fake Slack."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.service.intake import intake
from bot.service.watchdog import sweep
from bot.slack.blocks import slack_date
from routing.leads import parse_lead
from tests.bot.conftest import Clock
from tests.bot.test_contact_sla_slack import claimed_by_ann, home_of
from tests.bot.test_slack_app import send
from tests.bot.test_slack_surfaces import routing
from tests.bot.test_watchdog_slack import posted_offers
from tests.fakes.slack import FakeSlack, action_payload

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  solo: {members: [ann], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: solo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, contact: 2h, contact_by_source: {chat: 30m}}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def test_a_missed_lead_the_policy_keeps_with_the_rep_stays_listed_as_due_since(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    due = clock.now + timedelta(hours=2)
    clock.advance(hours=2, minutes=1)
    await sweep(app.uow)  # the watchdog looks: missed, the managers told, the lead stays Ann's

    assert f"(L-1) · was due {slack_date(due)}" in await home_of(http, slack, "UANN")
    answer = await routing(http, slack, "UANN", "pto for 2d")
    assert answer["text"].endswith(
        f"The lead you claimed and have yet to contact stays yours; it was due {slack_date(due)}."
    )


async def test_leads_to_contact_come_due_first_first_and_going_out_names_the_first_deadline(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    """L-1 claimed first with two hours to its first touch, L-2 a minute later from chat with
    thirty minutes: L-2 is listed first, and its deadline is the one going out names."""
    await claimed_by_ann(app, http, slack)
    clock.advance(minutes=1)
    await intake(app.uow, parse_lead({"id": "L-2", "company": "Bolt Ltd", "source": "chat"}))
    await slack.wait_for("chat.postMessage", count=2)
    await posted_offers(app.uow.db)
    click = action_payload("claim_lead", "L-2", "UANN", channel="DANN", trigger_id="trig.2")
    click["actions"][0]["action_ts"] = "1700000002.000100"  # another click than L-1's
    assert await send(http, urlencode({"payload": json.dumps(click)})) == 200
    await slack.wait_for("chat.update", count=2)
    first_due = clock.now + timedelta(minutes=30)  # claimed now

    answer = await routing(http, slack, "UANN", "queue")
    assert answer["text"] == "To contact: 2 claimed leads with no first touch yet"
    home = await home_of(http, slack, "UANN")
    assert home.index("(L-2)") < home.index("(L-1)")
    answer = await routing(http, slack, "UANN", "pto for 2d")
    assert answer["text"].endswith(
        "The 2 leads you claimed and have yet to contact stay yours; the first is due "
        f"{slack_date(first_due)}."
    )
