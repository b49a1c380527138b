"""A person who arrives again under another lead id goes to the rep holding their open lead, on
each database: the holders are loaded with the routing state, by e-mail address in any spelling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.availability import set_out_of_office
from bot.service.intake import intake, intake_many
from bot.service.offers import claim, reject
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from storage.models import DecisionRow, LeadRow
from tests.service.support import TRIO_POLICY, new_lead, write_policy

ANNA = "anna@xn--mnchner-bau-thb.de"  # stored as given: the domain in punycode
ANNA_AGAIN = "Anna@Münchner-Bau.de"


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def last_trace(db: Database, external_id: str) -> list[dict[str, Any]]:
    async with db.reading() as session:
        trace = (
            await session.execute(
                select(DecisionRow.trace)
                .join(LeadRow, col(LeadRow.id) == col(DecisionRow.lead_id))
                .where(col(LeadRow.external_id) == external_id)
                .order_by(col(DecisionRow.id).desc())
                .limit(1)
            )
        ).scalar_one()
    return list(trace)


async def test_a_person_arriving_again_goes_to_the_rep_holding_their_open_lead(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    first = await intake(uow, new_lead("L-0", email=ANNA))
    again = await intake(uow, new_lead("L-1", email=ANNA_AGAIN))
    someone = await intake(uow, new_lead("L-2"))

    assert (first.lead.rep, again.lead.rep) == ("ann", "ann")
    assert again.lead.rule == "Same person"
    assert again.lead.reason == "Same person as open lead L-0 · Ann Archer holds it"
    assert {
        "stage": "person",
        "subject": "anna@münchner-bau.de",
        "ok": True,
        "detail": "ann holds their open lead L-0",
        "field": None,
        "value": None,
        "note": None,
    } in await last_trace(db, "L-1")
    assert someone.lead.rep == "ben"  # the rotation was not used up by the same person


async def test_a_claimed_lead_holds_the_person_and_a_moved_one_takes_them_along(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0", email=ANNA))
    await claim(uow, "L-0", by="ann")
    assert (await intake(uow, new_lead("L-1", email=ANNA_AGAIN))).lead.rep == "ann"

    moved = await reject(uow, "L-1", by="ann", reason="a colleague should have it")
    assert moved.to.rep in {"ben", "cat"}
    # Ann still holds L-0 and Ben or Cat L-1: the most recent holder gets the next one.
    third = await intake(uow, new_lead("L-2", email=ANNA))
    assert (third.lead.rep, third.lead.rule) == (moved.to.rep, "Same person")


async def test_a_holder_who_is_away_does_not_hold_the_person_and_the_trace_says_why(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0", email=ANNA))
    await claim(uow, "L-0", by="ann")  # claimed: it stays with Ann while she is away
    await set_out_of_office(uow, "ann", until=None, reason="On leave")

    again = await intake(uow, new_lead("L-1", email=ANNA_AGAIN))

    assert again.lead.rule == "Everyone" and again.lead.rep in {"ben", "cat"}
    assert "Ann Archer is out of office" in again.lead.reason
    steps = [(s["stage"], s["subject"], s["ok"], s["detail"]) for s in await last_trace(db, "L-1")]
    assert ("rep", "ann", False, "is out of office") in steps
    detail = "no rep holding their open lead is available"
    assert ("person", "anna@münchner-bau.de", False, detail) in steps


async def test_a_person_twice_in_one_batch_goes_to_one_rep(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    results = await intake_many(
        uow, [new_lead("L-0", email=ANNA), new_lead("L-1"), new_lead("L-2", email=ANNA_AGAIN)]
    )
    assert [r.lead.rep for r in results] == ["ann", "ben", "ann"]
    assert results[2].lead.rule == "Same person"
