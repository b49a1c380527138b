"""Leads that arrived while no Slack app ran (imported, or routed by a server without Slack):
their cards still go to the reps, each SLA starting at its card's post, and each manager is told
of them once, in one message, instead of one alert per lead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.intake import intake
from bot.service.kinds import OutboxKind
from bot.service.unit_of_work import UnitOfWork
from bot.service.watchdog import summarise_backlog
from routing.policy import Policy
from storage.db import Database
from storage.models import OutboxRow
from tests.service.conftest import Clock
from tests.service.support import new_lead, write_policy

POLICY = """\
reps:
  - {id: ann, name: Ann Archer}
  - {id: ben, name: Ben Baker}
  - {id: cat, name: Cat Cole}
managers:
  - {id: mia, name: Mia Moss}
  - {id: max, name: Max Mann}
teams:
  north: {members: [ann, ben], manager: mia}
  south: {members: [cat]}            # no manager of its own: every manager hears of it
rules:
  - {name: North, when: {country: US}, assign: {team: north}}
  - {name: South, assign: {team: south}}
"""


class Carrier:
    """A card delivery running in the service's process, as the service sees it."""

    birth_token = "test:born"
    in_order = False

    def __init__(self) -> None:
        self.taken: list[OutboxRow] = []

    def take(self, items: Sequence[OutboxRow]) -> None:
        self.taken.extend(items)


def policy_in(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, POLICY))


async def items(db: Database, kind: str) -> list[OutboxRow]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(rows.scalars())


async def route_three(uow: UnitOfWork) -> None:
    await intake(uow, new_lead("L-1", country="US"))
    await intake(uow, new_lead("L-2", country="US"))
    await intake(uow, new_lead("L-3", country="FR"))


async def test_each_manager_hears_once_of_the_leads_that_arrived_without_slack(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy_in(tmp_path), clock=clock)
    await route_three(uow)
    clock.advance(minutes=10)
    assert await summarise_backlog(uow) == 2
    summaries = {item.payload["manager"]: item.payload for item in await items(db, "slack.backlog")}
    assert summaries["mia"]["leads"] == 3 and summaries["mia"]["reps"] == {
        "ann": 1,
        "ben": 1,
        "cat": 1,
    }
    assert summaries["max"]["leads"] == 1 and summaries["max"]["reps"] == {"cat": 1}
    # The cards themselves still go out, one per lead.
    assert len(await items(db, OutboxKind.OFFER_CARD)) == 3


async def test_a_replica_starting_alongside_or_just_after_adds_no_second_summary(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    first = UnitOfWork(db=db, policy=lambda: policy_in(tmp_path), clock=clock)
    second = UnitOfWork(db=db, policy=lambda: policy_in(tmp_path), clock=clock)
    await route_three(first)
    assert await summarise_backlog(first) == 2
    # The first replica's delivery has posted two of the cards meanwhile.
    cards = await items(db, OutboxKind.OFFER_CARD)
    now = clock()
    await db.run(
        lambda session: session.execute(
            update(OutboxRow)
            .where(col(OutboxRow.id).in_([card.id for card in cards[:2]]))
            .values(done_at=now)
        )
    )
    clock.advance(minutes=1)
    assert await summarise_backlog(second) == 0
    assert len(await items(db, "slack.backlog")) == 2


async def test_leads_carded_as_they_arrive_are_no_backlog(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    carrier = Carrier()
    uow = UnitOfWork(
        db=db,
        policy=lambda: policy_in(tmp_path),
        clock=clock,
        takers=lambda: {OutboxKind.OFFER_CARD: carrier},
    )
    await route_three(uow)
    assert len(carrier.taken) == 3
    assert await summarise_backlog(uow) == 0


async def test_without_managers_there_is_nobody_to_tell(db: Database, tmp_path: Path) -> None:
    no_managers = "reps:\n  - {id: ann}\nrules:\n  - {name: All, assign: {rep: ann}}\n"
    policy = load_policy(write_policy(tmp_path, no_managers))
    uow = UnitOfWork(db=db, policy=lambda: policy)
    await route_three(uow)
    assert await summarise_backlog(uow) == 0
