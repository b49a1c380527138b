"""What `crm check` reads of the outbox: the CRM items given up, and those failing and tried
again, by kind, each with its newest error; on each supported database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.service.crm import unfinished_crm_items
from bot.service.kinds import OutboxKind
from bot.service.unit_of_work import UnitOfWork
from storage import repository as repo
from storage.db import Database

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


def item(kind: str, key: str, **state: Any) -> dict[str, Any]:
    row = repo.outbox_values(kind=kind, dedupe_key=key, payload={}, now=NOW)
    return {"done_at": None, "failed_at": None, "last_error": None, **row, **state}


async def test_crm_items_given_up_and_failing_are_counted_by_kind_with_the_newest_error(
    db: Database, make_uow: Any
) -> None:
    later = NOW + timedelta(minutes=5)
    rows = [
        item(OutboxKind.SALESFORCE_OWNER, "a", failed_at=NOW, last_error="record gone"),
        item(OutboxKind.SALESFORCE_OWNER, "b", failed_at=later, last_error="owner inactive"),
        item(OutboxKind.SALESFORCE_OWNER, "c", attempts=3, last_error="answered 503"),
        item(OutboxKind.SALESFORCE_OWNER, "d", done_at=NOW, last_error="answered 503"),  # done
        item(OutboxKind.SALESFORCE_OWNER, "e"),  # waiting for its first attempt: no failure
        item(OutboxKind.HUBSPOT_CONTACT, "f", failed_at=NOW, last_error="not a lead"),
        item(OutboxKind.OFFER_CARD, "g", failed_at=NOW, last_error="not_in_channel"),  # Slack's
    ]

    def insert(session: Session) -> None:
        repo.insert_outbox(session=session, rows=rows)

    await db.run(insert)
    uow: UnitOfWork = make_uow(db)
    found = {u.kind: u for u in await unfinished_crm_items(uow)}

    assert found == {
        OutboxKind.SALESFORCE_OWNER: repo.Unfinished(
            OutboxKind.SALESFORCE_OWNER, 2, 1, "owner inactive", "answered 503"
        ),
        OutboxKind.HUBSPOT_CONTACT: repo.Unfinished(
            OutboxKind.HUBSPOT_CONTACT, 1, 0, "not a lead", None
        ),
    }
