"""The service layer's side of the CRMs: when write-backs are queued, CRM leads routed once,
HubSpot's announced contacts queued once, sync cursors that only move forward."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.crm import crm_cursor, move_crm_cursor, queue_crm_contacts
from bot.service.intake import intake, intake_from_crm
from bot.service.kinds import OutboxKind
from bot.service.offers import claim, reject
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from routing.policy import Policy
from storage.db import Database
from storage.models import LeadRow, OutboxRow
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, count_rows, new_lead, write_policy


def _policy(tmp_path: Path, write_on: str) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY + f"crm:\n  write_on: {write_on}\n"))


async def _outbox(db: Database, kind: str) -> list[OutboxRow]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(rows.scalars().all())


async def test_by_default_the_owner_is_written_back_when_the_rep_claims_not_before(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = UnitOfWork(
        db=db, policy=lambda: _policy(tmp_path, "claim"), clock=clock, crms={"salesforce"}
    )
    await intake(uow, new_lead("L-1", crm_system="salesforce", crm_id="00Q5e00000AbCdEFGH"))
    assert await _outbox(db, OutboxKind.SALESFORCE_OWNER) == []
    await claim(uow, "L-1", by="ann")
    (write,) = await _outbox(db, OutboxKind.SALESFORCE_OWNER)
    assert write.payload["rep"] == "ann"


async def test_with_write_on_assign_every_offer_writes_the_owner_and_the_claim_adds_nothing(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = UnitOfWork(
        db=db, policy=lambda: _policy(tmp_path, "assign"), clock=clock, crms={"hubspot"}
    )
    await intake(uow, new_lead("L-1", crm_system="hubspot", crm_id="501"))
    await reject(uow, "L-1", by="ann", reason="not my patch")
    await claim(uow, "L-1", by="ben")
    await intake(uow, new_lead("L-2"))  # no CRM record: nothing to write
    writes = await _outbox(db, OutboxKind.HUBSPOT_OWNER)
    assert [w.payload["rep"] for w in writes] == ["ann", "ben"]
    assert await _outbox(db, OutboxKind.SALESFORCE_OWNER) == []


@pytest.mark.parametrize("write_on", ["claim", "assign"])
async def test_no_owner_write_is_queued_for_a_crm_that_is_not_configured(
    db: Database, tmp_path: Path, clock: Clock, write_on: str
) -> None:
    uow = UnitOfWork(
        db=db, policy=lambda: _policy(tmp_path, write_on), clock=clock, crms={"hubspot"}
    )
    await intake(uow, new_lead("L-1", crm_system="salesforce", crm_id="00Q5e00000AbCdEFGH"))
    await claim(uow, "L-1", by="mia")
    alone = UnitOfWork(db=db, policy=lambda: _policy(tmp_path, write_on), clock=clock)
    await intake(alone, new_lead("L-2", crm_system="hubspot", crm_id="502"))
    await claim(alone, "L-2", by="mia")
    assert await _outbox(db, OutboxKind.SALESFORCE_OWNER) == []
    assert await _outbox(db, OutboxKind.HUBSPOT_OWNER) == []


async def test_a_crm_record_already_routed_under_another_id_is_not_routed_again(
    db: Database, make_uow: Callable[[Database], UnitOfWork], tmp_path: Path
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("web-7", crm_system="hubspot", crm_id="77"))
    created, repeated = await intake_from_crm(
        uow,
        [
            new_lead("hubspot:77", crm_system="hubspot", crm_id="77"),
            new_lead("hubspot:78", crm_system="hubspot", crm_id="78"),
            new_lead("salesforce:77", crm_system="salesforce", crm_id="77"),  # another CRM's 77
        ],
    )
    assert (created, repeated) == (2, 1)
    again = await intake_from_crm(uow, [new_lead("hubspot:78", crm_system="hubspot", crm_id="78")])
    assert again == (0, 1)


async def test_a_crm_record_without_an_email_read_again_after_an_edit_is_a_repeat(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    # Another name under the same id is another lead for POST /leads (told_apart), but a CRM
    # record is its crm_id, whatever was edited in it since it was first read.
    uow = make_uow(db)
    record = {"id": "hubspot:90", "crm_system": "hubspot", "crm_id": "90", "country": "US"}
    first = parse_lead({**record, "first_name": "Ana", "company": "BigCo"})
    edited = parse_lead({**record, "first_name": "Anastasia", "company": "BigCo Holding"})
    assert await intake_from_crm(uow, [first]) == (1, 0)
    assert await intake_from_crm(uow, [edited]) == (0, 1)
    assert await count_rows(db, LeadRow) == 1


async def test_each_announced_contact_is_queued_once_however_often_hubspot_sends_it(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    assert await queue_crm_contacts(uow, ["1", "2", "2"]) == 2
    assert await queue_crm_contacts(uow, ["2", "3"]) == 1
    items = await _outbox(db, OutboxKind.HUBSPOT_CONTACT)
    assert [item.payload["contact_id"] for item in items] == ["1", "2", "3"]


async def test_a_sync_cursor_moves_forward_and_never_back(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    assert await crm_cursor(uow, "salesforce:leads") is None
    first = clock.now - timedelta(hours=1)
    await move_crm_cursor(uow, "salesforce:leads", first)
    await move_crm_cursor(uow, "salesforce:leads", first - timedelta(minutes=5))
    assert await crm_cursor(uow, "salesforce:leads") == first
    await move_crm_cursor(uow, "salesforce:leads", clock.now)
    assert await crm_cursor(uow, "salesforce:leads") == clock.now
    assert await crm_cursor(uow, "hubspot:accounts") is None


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))
