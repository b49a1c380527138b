"""One lead's owner write-backs land in the CRM in the order they were queued, whichever replica
takes each: two bootstraps (two replicas) over one database, the real hubspot-api-client
against a fake HubSpot on a loopback port that records the writes in the order it applies them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.bootstrap import App, bootstrap
from bot.outbox import LEASE, OutboxWorker
from bot.service.intake import intake
from bot.service.kinds import CRM_OWNER_SET
from bot.service.offers import reject
from bot.settings import Settings
from routing.leads import parse_lead
from routing.policy import parse_policy
from storage.models import AuditEventRow, OutboxRow
from tests.fakes.hubspot import TOKEN, FakeHubSpot, Request
from tests.service.conftest import Clock

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
POLICY = parse_policy(
    """\
reps:
  - {id: ann, name: Ann Archer, email: ann@acme.example}
  - {id: ben, name: Ben Baker, email: ben@acme.example}
teams:
  duo: {members: [ann, ben], distribution: round_robin}
rules:
  - name: Everyone
    assign: {team: duo}
crm:
  write_on: assign
"""
)
SLOW_S = 1.0  # the first write's time on the wire: the lead moves on meanwhile
# Long enough for another replica to route a lead and write its owner meanwhile, however busy
# the machine.
SLOWER_S = 3.0


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database for both replicas: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'replicas.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot() as fake:
        fake.add_owner("ann@acme.example")
        fake.add_owner("ben@acme.example")
        yield fake


@asynccontextmanager
async def replica(url: str, hubspot: FakeHubSpot, clock: Clock) -> AsyncIterator[App]:
    """A replica as `serve` builds it, over the shared database, its CRM owners already read
    (so the only calls that go to HubSpot from here on are the owner writes)."""
    settings = Settings(
        database_url=url, hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=hubspot.url
    )
    app = bootstrap(settings, policy=POLICY, clock=clock)
    try:
        await app.db.create_tables()
        await app.crm["hubspot"].owners.mapping()
        yield app
    finally:
        await app.close()


def worker(app: App) -> OutboxWorker:
    (crm_worker,) = app.crm_workers
    return crm_worker


async def patch_arrived(hubspot: FakeHubSpot, count: int = 1) -> list[Request]:
    for _ in range(1_000):
        patches = hubspot.calls("PATCH")
        if len(patches) >= count:
            return patches
        await asyncio.sleep(0.01)
    raise AssertionError(f"HubSpot got {len(hubspot.calls('PATCH'))} writes, not {count}")


async def answered(request: Request) -> None:
    for _ in range(1_000):
        if request.answered_at is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"HubSpot never answered {request.method} {request.path}")


async def drain(*workers: OutboxWorker) -> None:
    """Every replica takes what it may until nothing is left to take."""
    while sum([await w.deliver_due() for w in workers]):
        pass


def owners_written(hubspot: FakeHubSpot, contact: str) -> list[str | None]:
    """The owners HubSpot set on `contact`, in the order it applied the writes."""
    return [
        change["hubspot_owner_id"]
        for contact_id, change in hubspot.patches
        if contact_id == contact and "hubspot_owner_id" in change
    ]


def owner_of(hubspot: FakeHubSpot, rep: str) -> str:
    return next(o.id for o in hubspot.owners.values() if o.email == f"{rep}@acme.example")


async def write_backs_left(app: App) -> list[OutboxRow]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(
                OutboxRow.kind == "crm.set_owner.hubspot",  # type: ignore[arg-type]
                OutboxRow.done_at.is_(None),  # type: ignore[union-attr]
                OutboxRow.failed_at.is_(None),  # type: ignore[union-attr]
            )
        )
        return list(rows.scalars().all())


async def owners_set_in_story(app: App) -> list[str]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(AuditEventRow)
            .where(AuditEventRow.kind == CRM_OWNER_SET)  # type: ignore[arg-type]
            .order_by(AuditEventRow.id)  # type: ignore[arg-type]
        )
        return [row.data["rep"] for row in rows.scalars().all()]


async def route(app: App, contact: str, external_id: str = "L-1") -> str:
    lead = parse_lead(
        {
            "id": external_id,
            "email": f"cto@{external_id.lower()}.example",
            "crm_system": "hubspot",
            "crm_id": contact,
        }
    )
    rep = (await intake(app.uow, lead)).lead.rep
    assert rep is not None
    return rep


async def test_a_lead_moved_while_one_replica_writes_its_owner_ends_with_the_newest_owner(
    database_url: str, hubspot: FakeHubSpot
) -> None:
    contact = hubspot.add_contact(email="cto@bigco.example")
    clock = Clock(NOW)
    async with (
        replica(database_url, hubspot, clock) as one,
        replica(database_url, hubspot, clock) as two,
    ):
        first = await route(one, contact)
        hubspot.delays.append(SLOW_S)  # the first write is slow on the wire...
        writing = asyncio.create_task(worker(one).deliver_due())
        (slow,) = await patch_arrived(hubspot)  # ...and on its way when the rep passes it on
        second = (await reject(two.uow, "L-1", by=first, reason="busy")).to.rep
        assert second is not None and second != first

        await worker(two).deliver_due()  # the other replica, free, looks for work at once
        await writing
        await drain(worker(one), worker(two))

        left = await write_backs_left(one)
        story = await owners_set_in_story(one)

    assert owners_written(hubspot, contact) == [owner_of(hubspot, first), owner_of(hubspot, second)]
    assert hubspot.contacts[contact].properties["hubspot_owner_id"] == owner_of(hubspot, second)
    (_, later) = hubspot.calls("PATCH")
    assert slow.answered_at is not None and later.at >= slow.answered_at  # one after the other
    assert story == [first, second]
    assert left == []


async def test_a_newer_write_queued_where_a_worker_runs_waits_for_the_older_one_elsewhere(
    database_url: str, hubspot: FakeHubSpot
) -> None:
    """The reassignment is committed on the replica whose worker runs: the newer write must not
    be handed straight to that worker while the other replica's older write is on the wire."""
    contact = hubspot.add_contact(email="cto@l-1.example")
    clock = Clock(NOW)
    async with (
        replica(database_url, hubspot, clock) as one,
        replica(database_url, hubspot, clock) as two,
    ):
        first = await route(one, contact)
        hubspot.delays.append(SLOW_S)
        writing = asyncio.create_task(worker(one).deliver_due())
        (slow,) = await patch_arrived(hubspot)
        running = asyncio.create_task(worker(two).run())
        try:
            await asyncio.sleep(0)  # the worker starts: what this replica commits is its
            assert worker(two).running
            second = (await reject(two.uow, "L-1", by=first, reason="busy")).to.rep
            assert second is not None
            await writing
            for _ in range(1_000):  # the running worker's poll takes it next
                left = await write_backs_left(one)
                if not left:
                    break
                await asyncio.sleep(0.01)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    (_, later) = hubspot.calls("PATCH")
    assert slow.answered_at is not None and later.at >= slow.answered_at
    assert owners_written(hubspot, contact) == [owner_of(hubspot, first), owner_of(hubspot, second)]
    assert hubspot.contacts[contact].properties["hubspot_owner_id"] == owner_of(hubspot, second)
    assert left == []


async def test_another_leads_write_goes_on_another_replica_while_the_first_is_on_the_wire(
    database_url: str, hubspot: FakeHubSpot
) -> None:
    contacts = [hubspot.add_contact(email=f"cto@l-{n}.example") for n in (1, 2)]
    clock = Clock(NOW)
    async with (
        replica(database_url, hubspot, clock) as one,
        replica(database_url, hubspot, clock) as two,
    ):
        await route(one, contacts[0], "L-1")
        hubspot.delays.append(SLOWER_S)
        writing = asyncio.create_task(worker(one).deliver_due())
        (slow,) = await patch_arrived(hubspot)
        await route(two, contacts[1], "L-2")
        taken_beside = await worker(two).deliver_due()
        still_writing = not writing.done()
        await writing
        left = await write_backs_left(one)

    assert taken_beside == 1 and still_writing
    (_, beside) = hubspot.calls("PATCH")
    assert beside.answered_at is not None and slow.answered_at is not None
    assert beside.answered_at < slow.answered_at  # side by side, not one after the other
    assert [contact for contact, _ in hubspot.patches] == [contacts[1], contacts[0]]
    assert left == []


async def test_a_write_taken_by_a_replica_that_died_holds_its_lead_only_until_its_lease_ends(
    database_url: str, hubspot: FakeHubSpot
) -> None:
    contact = hubspot.add_contact(email="cto@bigco.example")
    clock = Clock(NOW)
    async with replica(database_url, hubspot, clock) as survivor:
        async with replica(database_url, hubspot, clock) as dying:
            first = await route(dying, contact)
            hubspot.delays.append(SLOW_S)
            running = asyncio.create_task(worker(dying).run())
            (sent,) = await patch_arrived(hubspot)
            running.cancel()  # the process dies with its write taken and not finished
            await asyncio.gather(running, return_exceptions=True)
        await answered(sent)  # HubSpot applied it all the same: nobody heard
        second = (await reject(survivor.uow, "L-1", by=first, reason="busy")).to.rep
        assert second is not None

        nothing_yet = await worker(survivor).deliver_due()
        written_meanwhile = owners_written(hubspot, contact)
        clock.advance(seconds=LEASE.total_seconds() + 1)  # the dead replica's lease runs out
        await drain(worker(survivor))

        left = await write_backs_left(survivor)
        story = await owners_set_in_story(survivor)

    assert nothing_yet == 0  # the lead's newer write waits behind the one taken
    assert written_meanwhile == [owner_of(hubspot, first)]
    # The write taken is tried again: the lead is no longer the first rep's, so it is
    # skipped, and the newer write follows.
    assert owners_written(hubspot, contact) == [owner_of(hubspot, first), owner_of(hubspot, second)]
    assert hubspot.contacts[contact].properties["hubspot_owner_id"] == owner_of(hubspot, second)
    assert story == [second]
    assert left == []


async def test_a_write_whose_replica_died_is_written_again_to_the_same_owner_then_the_lead_moves_on(
    database_url: str, hubspot: FakeHubSpot
) -> None:
    contact = hubspot.add_contact(email="cto@bigco.example")
    clock = Clock(NOW)
    async with replica(database_url, hubspot, clock) as survivor:
        async with replica(database_url, hubspot, clock) as dying:
            first = await route(dying, contact)
            hubspot.delays.append(SLOW_S)
            running = asyncio.create_task(worker(dying).run())
            (sent,) = await patch_arrived(hubspot)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await answered(sent)

        assert await worker(survivor).deliver_due() == 0  # leased to the dead replica
        clock.advance(seconds=LEASE.total_seconds() + 1)
        retried = await worker(survivor).deliver_due()
        second = (await reject(survivor.uow, "L-1", by=first, reason="busy")).to.rep
        assert second is not None
        await drain(worker(survivor))

        left = await write_backs_left(survivor)
        story = await owners_set_in_story(survivor)

    old, new = owner_of(hubspot, first), owner_of(hubspot, second)
    assert retried == 1
    # The same owner twice (setting an owner is idempotent), then the newer one.
    assert owners_written(hubspot, contact) == [old, old, new]
    assert hubspot.contacts[contact].properties["hubspot_owner_id"] == new
    assert story == [first, second]  # each write told once, by the attempt that finished it
    assert left == []
