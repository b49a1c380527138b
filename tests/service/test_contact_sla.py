"""The contact SLA, from claim to first touch: started on the claim, a reminder at half of it, the
managers told once when it lapses, the lead moved on where the policy says, on the business clock
as the claim SLA; once however many sweepers run and wherever one dies."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.home import leads_to_contact
from bot.policy_file import load_policy
from bot.service.intake import intake, intake_many
from bot.service.kinds import OutboxKind
from bot.service.offers import claim
from bot.service.outcomes import Reported, record_posted_events
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import SweepResult
from bot.service.watchdog import sweep
from routing.policy import Policy
from routing.report import EventKind, OutcomeEvent
from storage.db import Database, open_database
from storage.models import AuditEventRow, DecisionRow, OutboxRow
from tests.service.conftest import Clock
from tests.service.support import (
    TRIO_POLICY,
    audit_of,
    lead_statuses,
    leads_out_of_step_with_their_offers,
    new_lead,
    offers_of,
    stored_open_counts,
    team_policy,
    write_policy,
)

TWO_HOURS = timedelta(hours=2)


def policy_with(tmp_path: Path, sla: str, *, text: str = TRIO_POLICY) -> Policy:
    return load_policy(write_policy(tmp_path, f"{text}sla: {{{sla}}}\n", name="sla.yml"))


def uow_with(db: Database, clock: Clock, policy: Policy) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


async def claimed(uow: UnitOfWork, db: Database, external_id: str) -> str:
    """The lead taken in and claimed by the rep it was offered to (returned)."""
    await intake(uow, new_lead(external_id))
    rep = (await offers_of(db, external_id))[-1].rep_id
    assert (await claim(uow, external_id, by=rep)).claimed
    return rep


async def touched(uow: UnitOfWork, external_id: str, at: datetime, key: str = "call-1") -> None:
    """The lead's first touch, reported as a team on another CRM would (`POST /events`)."""
    event = OutcomeEvent(EventKind.FIRST_TOUCH, at)
    report = Reported(lead=external_id, event=event, source="dialer", source_key=key, via="call")
    assert (await record_posted_events(uow, [report])).stored == 1


async def outbox(db: Database, kind: str) -> list[OutboxRow]:
    async with db.reading() as session:
        result = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(result.scalars().all())


async def contact_misses(db: Database) -> Counter[str]:
    """Contact SLA misses recorded per rep."""
    async with db.reading() as session:
        rows = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == "contact_missed")
        )
        return Counter(str(row.data["rep"]) for row in rows.scalars())


async def test_a_claim_starts_the_contact_clock_and_its_reminder_at_half(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await intake(uow, new_lead("L-0"))
    (offered,) = await offers_of(db, "L-0")
    assert offered.contact_due_at is None  # not while it waits to be claimed
    clock.advance(minutes=3)

    await claim(uow, "L-0", by="ann")

    (offer,) = await offers_of(db, "L-0")
    assert offer.contact_sla_seconds == 7200
    assert offer.contact_due_at == clock.now + TWO_HOURS
    assert offer.contact_remind_at == clock.now + TWO_HOURS / 2


async def test_a_lead_gets_its_rules_contact_sla_else_its_sources_else_the_default(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    demos_first = (
        "  - name: Demos\n"
        "    when: {product: demo}\n"
        "    assign: {team: trio}\n"
        "    contact_sla: 30m\n"
        "  - name: Everyone\n"
    )
    text = TRIO_POLICY.replace("  - name: Everyone\n", demos_first)
    policy = policy_with(tmp_path, "contact: 4h, contact_by_source: {webinar: 1d}", text=text)
    uow = uow_with(db, clock, policy)
    leads = [
        new_lead("L-demo", product="demo", source="webinar"),
        new_lead("L-webinar", source=" Webinar"),
        new_lead("L-other", source="ads"),
    ]
    for lead in leads:
        await intake(uow, lead)
        rep = (await offers_of(db, lead.id))[-1].rep_id
        await claim(uow, lead.id, by=rep)

    assert [(await offers_of(db, lead.id))[-1].contact_sla_seconds for lead in leads] == [
        30 * 60,
        86400,
        4 * 3600,
    ]


async def test_without_a_contact_sla_a_claim_starts_no_clock_and_the_sweep_does_nothing(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "default: 15m"))
    await claimed(uow, db, "L-0")
    clock.advance(days=3)

    assert await sweep(uow) == SweepResult()
    (offer,) = await offers_of(db, "L-0")
    assert (offer.contact_due_at, offer.contact_remind_at) == (None, None)


async def test_the_rep_is_reminded_once_at_half_the_contact_sla(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await claimed(uow, db, "L-0")
    clock.advance(minutes=59, seconds=59)
    assert await sweep(uow) == SweepResult()
    clock.advance(seconds=1)

    assert await sweep(uow) == SweepResult(contact_reminded=1)
    assert await sweep(uow) == SweepResult()

    reminders = await outbox(db, OutboxKind.CONTACT_REMINDER)
    assert [r.payload["offer_id"] for r in reminders] == [(await offers_of(db, "L-0"))[0].id]
    assert [r.lane for r in reminders] == [None]  # ann has no Slack id in this policy


async def test_a_lead_touched_before_half_its_contact_sla_needs_no_reminder(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await claimed(uow, db, "L-0")
    await touched(uow, "L-0", clock.now + timedelta(minutes=20))
    clock.advance(hours=1, minutes=30)

    assert await sweep(uow) == SweepResult()
    assert await outbox(db, OutboxKind.CONTACT_REMINDER) == []


async def test_a_first_touch_by_the_deadline_keeps_the_contact_sla(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true"))
    await claimed(uow, db, "L-0")
    due = clock.now + TWO_HOURS
    clock.advance(hours=2, minutes=5)
    await touched(uow, "L-0", due)  # reported late by the CRM, but made in time

    assert await sweep(uow) == SweepResult()

    assert await contact_misses(db) == Counter()
    assert await outbox(db, OutboxKind.CONTACT_MISSED) == []
    assert [o.status for o in await offers_of(db, "L-0")] == ["claimed"]
    assert (await offers_of(db, "L-0"))[0].contact_due_at == due  # kept, for the report


async def test_a_touch_before_the_claim_counts_as_the_first_touch(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    """The rep called first and clicked Claim after."""
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await intake(uow, new_lead("L-0"))
    await touched(uow, "L-0", clock.now + timedelta(minutes=1))
    clock.advance(minutes=4)
    await claim(uow, "L-0", by="ann")
    clock.advance(hours=3)

    assert await sweep(uow) == SweepResult()
    assert await contact_misses(db) == Counter()


async def test_an_untouched_lead_is_a_miss_its_managers_hear_of_once(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await claimed(uow, db, "L-0")
    (offer,) = await offers_of(db, "L-0")
    clock.advance(hours=1, minutes=59, seconds=59)
    assert await sweep(uow) == SweepResult(contact_reminded=1)
    clock.advance(seconds=1)

    assert await sweep(uow) == SweepResult(contact_missed=1)
    assert await sweep(uow) == SweepResult()
    clock.advance(hours=5)
    assert await sweep(uow) == SweepResult()

    assert await contact_misses(db) == Counter({"ann": 1})
    (missed,) = [e for e in await audit_of(db, "L-0") if e.kind == "contact_missed"]
    assert missed.reason == "not contacted within 2h of the claim"
    (alert,) = await outbox(db, OutboxKind.CONTACT_MISSED)
    assert alert.payload["manager"] == "mia" and alert.payload["offer_id"] == offer.id
    assert alert.payload["moved"] is False and alert.payload["touched_at"] is None
    # Without reassign_on_contact_miss the lead stays with its rep.
    assert [o.status for o in await offers_of(db, "L-0")] == ["claimed"]
    assert await stored_open_counts(db) == {"ann": 1}


async def test_a_sweep_that_finds_a_contact_sla_lapsed_skips_its_reminder(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    """Nobody swept while the reminder fell due (a restart): the miss is told, not a late nudge."""
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h"))
    await claimed(uow, db, "L-0")
    clock.advance(hours=2, minutes=30)

    assert await sweep(uow) == SweepResult(contact_missed=1)
    assert await outbox(db, OutboxKind.CONTACT_REMINDER) == []


async def test_a_first_touch_after_the_deadline_is_late_and_leaves_the_lead_with_its_rep(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true"))
    await claimed(uow, db, "L-0")
    due = clock.now + TWO_HOURS
    clock.advance(hours=2, minutes=15)
    await touched(uow, "L-0", due + timedelta(minutes=10))

    assert await sweep(uow) == SweepResult(contact_missed=1)

    (missed,) = [e for e in await audit_of(db, "L-0") if e.kind == "contact_missed"]
    assert missed.reason == "first touch 10m late"
    (alert,) = await outbox(db, OutboxKind.CONTACT_MISSED)
    assert alert.payload["touched_at"] == (due + timedelta(minutes=10)).isoformat()
    assert alert.payload["moved"] is False
    assert [o.status for o in await offers_of(db, "L-0")] == ["claimed"]


async def test_with_reassign_on_contact_miss_an_untouched_lead_goes_to_the_next_rep(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true"))
    await claimed(uow, db, "L-0")
    clock.advance(hours=2, minutes=1)

    assert await sweep(uow) == SweepResult(contact_missed=1, reassigned=1)

    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status, o.reassignments) for o in offers] == [
        ("ann", "uncontacted", 0),
        ("ben", "offered", 1),
    ]
    assert offers[1].contact_due_at is None  # Ben's clock starts when he claims
    assert await stored_open_counts(db) == {"ben": 1}
    assert await lead_statuses(db) == Counter({"offered": 1})
    assert await leads_out_of_step_with_their_offers(db) == {}
    rerouted = [e for e in await audit_of(db, "L-0") if e.kind == "rerouted"]
    assert rerouted[-1].data["outcome"] == "assigned"
    (alert,) = await outbox(db, OutboxKind.CONTACT_MISSED)
    assert alert.payload["moved"] is True
    settles = [i.dedupe_key for i in await outbox(db, OutboxKind.SETTLE_CARD)]
    assert settles == [f"settle-card:{offers[0].id}", f"settle-card:{offers[0].id}:uncontacted"]
    cards = [i.payload["offer_id"] for i in await outbox(db, OutboxKind.OFFER_CARD)]
    assert cards == [offers[0].id, offers[1].id]


async def test_the_trace_of_the_new_decision_says_why_the_rep_was_passed_over(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    text = TRIO_POLICY.replace("distribution: round_robin", "distribution: least_loaded")
    policy = policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true", text=text)
    uow = uow_with(db, clock, policy)
    await claimed(uow, db, "L-0")
    clock.advance(hours=3)

    await sweep(uow)

    async with db.reading() as session:
        rows = await session.execute(select(DecisionRow).order_by(col(DecisionRow.id)))
        last = list(rows.scalars())[-1]
    skipped = [step for step in last.trace if step["subject"] == "ann"]
    assert skipped and skipped[0]["detail"] == "did not contact this lead in time"
    assert "Ann Archer did not contact this lead in time" in last.reason


async def test_after_max_reassignments_a_contact_miss_sends_the_lead_to_the_queue(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    sla = "contact: 2h, reassign_on_contact_miss: true, max_reassignments: 1"
    uow = uow_with(db, clock, policy_with(tmp_path, sla))
    await intake(uow, new_lead("L-0"))
    clock.advance(minutes=16)
    assert await sweep(uow) == SweepResult(expired=1, reassigned=1)  # ann let it lapse
    assert (await claim(uow, "L-0", by="ben")).claimed
    clock.advance(hours=2, minutes=1)

    assert await sweep(uow) == SweepResult(contact_missed=1, queued=1)

    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status) for o in offers] == [("ann", "expired"), ("ben", "uncontacted")]
    assert await lead_statuses(db) == Counter({"queued": 1})
    assert await stored_open_counts(db) == {}
    rerouted = [e for e in await audit_of(db, "L-0") if e.kind == "rerouted"]
    assert (
        rerouted[-1].reason
        == "Not contacted in time after 2 offers (Ann Archer, Ben Baker) → unmatched queue"
    )
    assert [a.payload["manager"] for a in await outbox(db, OutboxKind.CONTACT_MISSED)] == ["mia"]
    # The contact alert carries the Assign picker: no second alert of the queued lead.
    assert await outbox(db, OutboxKind.MANAGER_ALERT) == []
    assert len(await outbox(db, OutboxKind.QUEUE_POST)) == 1


async def test_a_lead_taken_back_after_its_claim_starts_afresh_with_its_next_claim(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    """Claimed by Ann, released when she did not touch it: her clock is done with (no reminder,
    no second alert); Ben's runs from his own claim, and a touch in his time keeps it."""
    uow = uow_with(db, clock, policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true"))
    await claimed(uow, db, "L-0")
    clock.advance(hours=2, minutes=1)
    await sweep(uow)
    clock.advance(minutes=4)
    assert (await claim(uow, "L-0", by="ben")).claimed
    bens = (await offers_of(db, "L-0"))[-1]
    assert bens.contact_due_at == clock.now + TWO_HOURS
    await touched(uow, "L-0", clock.now + timedelta(minutes=30))
    clock.advance(hours=1)

    assert await sweep(uow) == SweepResult()  # touched: no reminder
    clock.advance(hours=3)
    assert await sweep(uow) == SweepResult()

    assert await contact_misses(db) == Counter({"ann": 1})
    assert len(await outbox(db, OutboxKind.CONTACT_MISSED)) == 1
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-0")] == [
        ("ann", "uncontacted"),
        ("ben", "claimed"),
    ]


# Friday 18 Dec 2026, 21:30 UTC: 16:30 in New York, half an hour before Nia's day ends.
FRIDAY_EVENING = datetime(2026, 12, 18, 21, 30, tzinfo=UTC)
NEW_YORK_REP = """\
reps:
  - {id: nia, name: Nia North, timezone: America/New_York, hours: "09:00-17:00"}
managers:
  - {id: mia, name: Mia Moss}
teams:
  east: {members: [nia], manager: mia}
rules:
  - name: Everyone
    assign: {team: east}
"""


async def test_on_the_business_clock_a_claim_on_friday_evening_falls_due_on_monday(
    db: Database, tmp_path: Path
) -> None:
    clock = Clock(FRIDAY_EVENING)
    policy = policy_with(tmp_path, "clock: business, contact: 2h", text=NEW_YORK_REP)
    uow = uow_with(db, clock, policy)
    await claimed(uow, db, "L-0")  # 16:30 on Friday: 30 minutes of her day left

    (offer,) = await offers_of(db, "L-0")
    monday = datetime(2026, 12, 21, 14, 0, tzinfo=UTC)  # 09:00 in New York
    assert offer.contact_remind_at == monday + timedelta(minutes=30)
    assert offer.contact_due_at == monday + timedelta(hours=1, minutes=30)
    clock.now = monday + timedelta(minutes=29)
    assert await sweep(uow) == SweepResult()  # the weekend does not count
    clock.now = monday + timedelta(minutes=30)
    assert await sweep(uow) == SweepResult(contact_reminded=1)
    clock.now = monday + timedelta(hours=1, minutes=30)
    assert await sweep(uow) == SweepResult(contact_missed=1)


class Crash(Exception):
    pass


async def test_a_sweep_cut_short_between_batches_loses_and_repeats_no_contact_miss(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true")
    first = uow_with(db, clock, policy)
    await intake_many(first, [new_lead(f"L-{n:02}") for n in range(25)])
    for n in range(25):
        lead = f"L-{n:02}"
        await claim(first, lead, by=(await offers_of(db, lead))[0].rep_id)
    clock.advance(hours=3)

    def crash_after_commit() -> None:
        raise Crash  # the process dies right after its first batch committed

    first.on_outbox = crash_after_commit
    with pytest.raises(Crash):
        await sweep(first, batch=10)
    assert sum((await contact_misses(db)).values()) == 10

    restarted = uow_with(db, clock, policy)
    assert await sweep(restarted, batch=10) == SweepResult(contact_missed=15, reassigned=15)

    assert sum((await contact_misses(db)).values()) == 25
    for n in range(25):
        statuses = [o.status for o in await offers_of(db, f"L-{n:02}")]
        assert statuses == ["uncontacted", "offered"]
    assert len(await outbox(db, OutboxKind.CONTACT_MISSED)) == 25
    assert await leads_out_of_step_with_their_offers(db) == {}


async def test_two_sweepers_on_one_postgres_act_on_each_lapsed_contact_sla_once(
    postgres_url: str, tmp_path: Path, clock: Clock
) -> None:
    policy = policy_with(tmp_path, "contact: 2h, reassign_on_contact_miss: true")
    databases = [open_database(postgres_url) for _ in range(2)]
    try:
        await databases[0].create_tables()
        replicas = [uow_with(db, clock, policy) for db in databases]
        leads = [f"L-{n:03}" for n in range(120)]
        await intake_many(replicas[0], [new_lead(lead) for lead in leads])
        offered = {lead: (await offers_of(databases[0], lead))[0].rep_id for lead in leads}
        for lead, rep in offered.items():
            await claim(replicas[0], lead, by=rep)
        clock.advance(hours=1)

        reminded = await asyncio.gather(*(sweep(replica, batch=20) for replica in replicas))

        assert sum(r.contact_reminded for r in reminded) == 120
        assert len(await outbox(databases[0], OutboxKind.CONTACT_REMINDER)) == 120
        clock.advance(hours=1, minutes=1)

        results = await asyncio.gather(*(sweep(replica, batch=20) for replica in replicas))

        assert sum(r.contact_missed for r in results) == 120
        assert sum(r.reassigned for r in results) == 120
        assert sum((await contact_misses(databases[0])).values()) == 120
        assert len(await outbox(databases[0], OutboxKind.CONTACT_MISSED)) == 120
        for lead in leads[::7]:
            statuses = [o.status for o in await offers_of(databases[0], lead)]
            assert statuses == ["uncontacted", "offered"]
        assert await leads_out_of_step_with_their_offers(databases[0]) == {}
        assert sum((await stored_open_counts(databases[0])).values()) == 120
    finally:
        for db in databases:
            await db.dispose()


async def test_a_reps_leads_to_contact_are_their_claimed_untouched_ones_due_first_first(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    """What App Home and `/routing queue` list (`bot.home.leads_to_contact`), on each database:
    claimed, the contact clock running, no first touch; the one due first first."""
    policy = policy_with(tmp_path, "contact: 2h", text=team_policy(1))
    uow = uow_with(db, clock, policy)
    for external_id in ("A", "B", "C"):
        await claimed(uow, db, external_id)
        clock.advance(minutes=5)
    await intake(uow, new_lead("D"))  # offered, not claimed
    await touched(uow, "B", clock.now)

    async with db.reading() as session:
        listed = await leads_to_contact(session, "rep0")
        nobody = await leads_to_contact(session, "someone-else")
    assert [lead.lead_id for lead in listed] == ["A", "C"]
    due_a, due_c = (lead.due_at for lead in listed)
    assert due_a is not None and due_c is not None
    assert due_c - due_a == timedelta(minutes=10)
    assert nobody == ()


async def test_a_claimed_lead_with_no_contact_sla_is_not_listed_to_contact(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = load_policy(write_policy(tmp_path, team_policy(1), name="no-contact.yml"))
    uow = uow_with(db, clock, policy)
    await claimed(uow, db, "A")
    async with db.reading() as session:
        assert await leads_to_contact(session, "rep0") == ()
