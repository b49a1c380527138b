"""The week's figures from the routing report: in a manager's first digest of the week (and on
demand), on a manager's App Home, and a rep's share of their teams' leads on theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.home import load_home
from bot.policy_file import load_policy
from bot.service.digests import digest_now, first_of_week, load_digest, queue_digest
from bot.service.intake import intake
from bot.service.report import refresh_report
from bot.service.unit_of_work import UnitOfWork
from bot.slack.blocks import MAX_MESSAGE_BLOCKS
from bot.slack.digest import digest_message
from bot.slack.home_view import home_view
from routing.leads import parse_lead
from routing.policy import Policy
from storage.db import Database, open_database
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import ASSIGNEES, assert_within_limits, texts
from tests.service.test_digest_ticks import digests

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_9AM = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
FRIDAY_9AM = MONDAY_9AM - timedelta(days=3)
POLICY = """\
timezone: Europe/Berlin
reps:
  - {id: ann, name: Ann Archer}
  - {id: ben, name: Ben Baker}
  - {id: cat, name: Cat Cole}
managers:
  - {id: mia, name: Mia Moss, timezone: Europe/Berlin, digest: "0 9 * * mon-fri"}
teams:
  north: {members: [ann, ben], manager: mia}
  south: {members: [cat], manager: mia}
rules:
  - name: Webinars wait
    when: {source: webinar}
    assign: queue
  - name: North
    when: {country: NO}
    assign: {team: north}
  - name: South
    when: {country: IT}
    assign: {team: south}
fallback: {queue: unmatched}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "routing.yml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'week.db'}")
    await db.create_tables()
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def uow(db: Database, policy: Policy, clock: Clock) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


async def two_weeks(uow: UnitOfWork, clock: Clock) -> None:
    """Two South leads from a partner the week before; four North leads from the web form this
    week, a webinar's and one no rule takes (from no source); the report brought up to date on
    Monday at 9:00 in Berlin."""
    partner, web = {"country": "IT", "source": "partner"}, {"country": "NO", "source": "web"}
    leads = [
        (MONDAY_9AM - timedelta(days=11), "S-1", partner),
        (MONDAY_9AM - timedelta(days=10), "S-2", partner),
        *((MONDAY_9AM - timedelta(days=4 - n), f"N-{n}", web) for n in range(4)),
        (MONDAY_9AM - timedelta(days=2), "W-1", {"source": "webinar"}),
        (MONDAY_9AM - timedelta(days=2), "J-1", {"country": "JP"}),
    ]
    for at, lead_id, fields in leads:
        clock.now = at
        await intake(uow, parse_lead({"id": lead_id, "email": f"x@{lead_id}.example", **fields}))
    clock.now = MONDAY_9AM
    await refresh_report(uow)


async def test_the_first_digest_of_a_week_tells_the_week_against_the_one_before(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await two_weeks(uow, clock)

    async with db.reading() as session:
        digest = await load_digest(
            session, policy, manager_id="mia", since=FRIDAY_9AM, now=MONDAY_9AM
        )

    week = digest.week
    assert week is not None
    assert (week.total.leads, week.total_before.leads) == (6, 2)
    assert [(name, group.leads if group else 0) for name, group in week.teams] == [
        ("north", 4),
        ("south", 0),
    ]
    assert [(m.group, m.before and m.before.leads, m.now and m.now.leads) for m in week.movers] == [
        ("North", None, 4),
        ("South", 2, None),
        (None, None, 1),
    ]
    # The same week by source: the partner who stopped sending is there, beside the web form.
    assert [
        (m.group, m.before and m.before.leads, m.now and m.now.leads) for m in week.source_movers
    ] == [("web", None, 4), ("partner", 2, None), (None, None, 1)]
    message = digest_message(digest, manager_tz=BERLIN, assignees=ASSIGNEES)
    assert_within_limits(message.blocks, MAX_MESSAGE_BLOCKS)
    words = "\n".join(texts(message.blocks))
    assert "*This week:* 6 leads (+200% on the week before)" in words
    assert "claim SLA met – (– the week before)" in words  # no card went out: no SLA to judge
    assert "queued 33% (no rule matched 17%)" in words
    # No contact SLA in the policy: none to tell of, rather than a dash that reads as missing.
    assert "• north: 4 leads, claim SLA met –\n" in words
    assert "contact SLA" not in words
    assert "• North: 0 → 4 leads (too few to go by)" in words
    assert "• South: 2 → 0 leads" in words
    by_source = words[words.index("*Top movers, by source*") :]
    assert "• web: 0 → 4 leads (too few to go by)" in by_source
    assert "• partner: 2 → 0 leads" in by_source
    assert "• No source: 0 → 1 leads" in by_source


async def test_a_digest_within_a_week_has_no_weekly_section(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await two_weeks(uow, clock)

    async with db.reading() as session:
        digest = await load_digest(
            session,
            policy,
            manager_id="mia",
            since=MONDAY_9AM,
            now=MONDAY_9AM + timedelta(days=1),
        )

    assert digest.week is None
    words = "\n".join(texts(digest_message(digest, manager_tz=BERLIN, assignees=()).blocks))
    assert "This week" not in words


async def test_the_digest_on_demand_always_has_the_week(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await two_weeks(uow, clock)
    clock.now = MONDAY_9AM + timedelta(days=2)

    digest = await digest_now(uow, "mia")

    assert digest.week is not None and digest.week.total.leads == 6


def test_a_week_starts_on_monday_in_the_managers_time_zone() -> None:
    sunday_night_in_berlin = datetime(2026, 11, 15, 22, 30, tzinfo=UTC)  # Monday in Auckland
    assert first_of_week(FRIDAY_9AM, MONDAY_9AM, BERLIN)
    assert not first_of_week(MONDAY_9AM, MONDAY_9AM + timedelta(days=4), BERLIN)
    assert first_of_week(sunday_night_in_berlin, MONDAY_9AM, BERLIN)
    assert not first_of_week(sunday_night_in_berlin, MONDAY_9AM, ZoneInfo("Pacific/Auckland"))
    assert first_of_week(MONDAY_9AM, MONDAY_9AM + timedelta(days=7), BERLIN)


async def test_a_manager_sees_this_weeks_figures_on_their_app_home(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await two_weeks(uow, clock)

    async with db.reading() as session:
        home = await load_home(session, policy, rep_id=None, manager_id="mia", now=MONDAY_9AM)

    view = home_view(home)
    words = "\n".join(texts(view["blocks"]))
    assert "*This week:* 6 leads (+200% on the week before)" in words
    assert "• north: 4 leads" in words and "• south: no lead" in words


async def test_a_rep_sees_their_share_of_their_teams_leads_against_what_they_should_get(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await two_weeks(uow, clock)

    async with db.reading() as session:
        ann = await load_home(session, policy, rep_id="ann", manager_id=None, now=MONDAY_9AM)
        cat = await load_home(session, policy, rep_id="cat", manager_id=None, now=MONDAY_9AM)

    assert ann.rep_week is not None and cat.rep_week is not None
    (north,) = ann.rep_week.teams
    assert (north.team, north.leads, north.team_leads, north.expected_share) == (
        "north",
        2,
        4,
        0.5,
    )
    ann_words = "\n".join(texts(home_view(ann)["blocks"]))
    assert "• north: you got 2 of its 4 leads (50%); your share is 50%" in ann_words
    assert "Your claim SLA met this week: –" in ann_words
    cat_words = "\n".join(texts(home_view(cat)["blocks"]))
    assert "• south: the rotation gave out no lead this week" in cat_words


# The last Sunday of October 2026 the clocks go back in Berlin: Monday 26 October, 09:00 is
# 08:00 UTC, and the Monday before, 09:00 was 07:00 UTC.
MONDAY_AFTER_THE_CHANGE = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)


async def test_a_week_the_clocks_change_in_is_the_managers_week_from_monday_9_to_monday_9(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    # Just after the Monday digest a week earlier (09:30 in Berlin): in no earlier digest's
    # week, so it is this one's, though it came 168 h 30 m before. Just before that digest
    # (08:30): the week before's.
    previous_monday_9am = datetime(2026, 10, 19, 7, 0, tzinfo=UTC)
    for at, lead_id in (
        (previous_monday_9am + timedelta(minutes=30), "N-after"),
        (previous_monday_9am - timedelta(minutes=30), "N-before"),
    ):
        clock.now = at
        await intake(uow, parse_lead({"id": lead_id, "email": f"x@{lead_id}.example"}))
    clock.now = MONDAY_AFTER_THE_CHANGE
    await refresh_report(uow)

    async with db.reading() as session:
        digest = await load_digest(
            session,
            policy,
            manager_id="mia",
            since=MONDAY_AFTER_THE_CHANGE - timedelta(days=3),
            now=MONDAY_AFTER_THE_CHANGE,
        )

    week = digest.week
    assert week is not None
    assert week.window.since == previous_monday_9am
    assert (week.total.leads, week.total_before.leads) == (1, 1)


async def test_a_policy_with_a_contact_sla_tells_it_in_the_week_even_before_any_claim(
    db: Database, uow: UnitOfWork, clock: Clock, tmp_path: Path
) -> None:
    await two_weeks(uow, clock)
    path = tmp_path / "contact.yml"
    path.write_text(POLICY + "sla: {contact: 4h}\n", encoding="utf-8")
    with_contact = load_policy(path)

    async with db.reading() as session:
        digest = await load_digest(
            session, with_contact, manager_id="mia", since=FRIDAY_9AM, now=MONDAY_9AM
        )

    words = "\n".join(texts(digest_message(digest, manager_tz=BERLIN, assignees=()).blocks))
    assert "claim SLA met – (– the week before) · contact SLA met – · claimed in" in words
    assert "• north: 4 leads, claim SLA met –, contact SLA met –" in words


async def test_the_weeks_first_digest_counts_the_lead_of_the_minute_before_its_tick(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    clock.now = MONDAY_9AM - timedelta(minutes=1)
    await refresh_report(uow)  # the report job's last run before the tick
    clock.now = MONDAY_9AM - timedelta(seconds=30)
    await intake(uow, parse_lead({"id": "N-late", "email": "x@late.example", "country": "NO"}))
    clock.now = MONDAY_9AM

    assert await queue_digest(uow, "mia", due_at=MONDAY_9AM, runner="r")

    (payload,) = await digests(db)
    async with db.reading() as session:
        digest = await load_digest(
            session,
            policy,
            manager_id="mia",
            since=datetime.fromisoformat(payload["since"]),
            now=datetime.fromisoformat(payload["until"]),
        )
    assert digest.week is not None and digest.week.total.leads == 1
