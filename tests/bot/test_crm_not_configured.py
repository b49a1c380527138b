"""Only what can be carried out is queued: a claim queues an owner write-back only for a CRM
this deployment has credentials for, so the outbox drains to 0 without one, and `/routing why`
says when the lead's CRM is not configured."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App, bootstrap
from bot.service.intake import intake
from bot.service.kinds import OWNER_WRITE_KINDS
from bot.service.offers import claim
from bot.settings import Settings
from routing.leads import parse_lead
from routing.policy import parse_policy
from storage.db import Database
from storage.models import OutboxRow
from tests.bot.conftest import SLACK_SIGNING_SECRET, Clock
from tests.bot.test_slack_blocks import rich_texts
from tests.fakes.slack import FakeSlack, command_body, slack_signed_headers

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""
SALESFORCE_LEAD = {"id": "L-1", "company": "Acme", "crm_system": "salesforce", "crm_id": "00Q1"}


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def owner_writes(db: Database) -> list[OutboxRow]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind).in_(list(OWNER_WRITE_KINDS.values())))
        )
        return list(rows.scalars())


async def test_without_a_crm_a_claim_queues_no_write_back_and_the_outbox_drains(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    await intake(app.uow, parse_lead(SALESFORCE_LEAD))
    await slack.wait_for("chat.postMessage")
    await claim(app.uow, "L-1", by="ann")
    await slack.wait_for("chat.update")
    assert await owner_writes(sqlite_db) == []
    for _ in range(200):
        async with sqlite_db.reading() as session:
            pending = await session.execute(
                select(OutboxRow).where(col(OutboxRow.done_at).is_(None))
            )
            if not pending.scalars().all():
                break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the outbox did not drain")


async def test_with_the_crm_configured_the_claim_queues_its_write_back(
    tmp_path: Path, sqlite_db: Database, clock: Clock
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        salesforce_access_token=SecretStr("00D!token-for-tests"),
        salesforce_instance_url="https://acme.my.salesforce.com",
    )
    application = bootstrap(settings, db=sqlite_db, policy=parse_policy(POLICY), clock=clock)
    try:
        await intake(application.uow, parse_lead(SALESFORCE_LEAD))
        await claim(application.uow, "L-1", by="ann")
        (write,) = await owner_writes(sqlite_db)
        assert write.payload["rep"] == "ann"
    finally:
        await application.close()


async def test_routing_why_says_the_leads_crm_is_not_configured(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await intake(app.uow, parse_lead(SALESFORCE_LEAD))
    body = command_body("why L-1", "UANN", response_url=slack.response_url("why"))
    headers = slack_signed_headers(body, SLACK_SIGNING_SECRET)
    assert (await http.post("/slack/events", data=body, headers=headers)).status == 200
    (answer,) = await slack.wait_for("response")
    text = "\n".join(rich_texts(answer.params["blocks"]))
    assert "Salesforce is not configured" in text
    assert "owner is not written back" in text
