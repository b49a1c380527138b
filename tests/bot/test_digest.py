"""A manager's digest: what it reads from the database, and how it reads in Slack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from bot.policy_file import load_policy
from bot.service.availability import set_out_of_office
from bot.service.digests import (
    CrmFailure,
    ManagerDigest,
    QueuedLead,
    RepAway,
    RepLoad,
    RepMisses,
    load_digest,
    reps_of_manager,
)
from bot.service.errors import ServiceError
from bot.service.intake import intake
from bot.service.kinds import SLA_MISSED
from bot.service.offers import claim
from bot.service.unit_of_work import UnitOfWork
from bot.slack.blocks import MAX_MESSAGE_BLOCKS
from bot.slack.digest import digest_message, period_start
from bot.slack.ids import ActionId
from routing.leads import parse_lead
from routing.model import Lead
from routing.policy import Policy
from storage import repository as repo
from storage.db import Database
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import (
    ASSIGNEES,
    assert_safe,
    assert_within_limits,
    literal_texts,
    mrkdwn,
    rich_texts,
    texts,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# Monday 16 Nov 2026, 09:00 in New York: the start of the period in most tests below.
MONDAY_9AM = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)

POLICY = """\
timezone: America/New_York
reps:
  - {id: ann, name: Ann Archer, capacity: 3}
  - {id: ben, name: Ben Baker, capacity: 2}
  - {id: cat, name: Cat Cole}
  - {id: dot, name: Dot Drake, capacity: 5}
managers:
  - {id: mia, name: Mia Moss, timezone: Europe/Berlin, digest: "0 9 * * mon-fri"}
  - {id: max, name: Max Mohr}
  - {id: ola, name: Ola Olsen}
teams:
  north: {members: [ann, ben], manager: mia}
  south: {members: [ben, cat], manager: mia}
  west: {members: [dot], manager: max}
rules:
  - name: Webinars wait
    when: {source: webinar}
    assign: queue
  - name: Partners wait elsewhere
    when: {source: partner}
    assign: {queue: partners}
  - name: Ann's
    when: {fields.owner: ann}
    assign: {rep: ann}
  - name: Ben's
    when: {fields.owner: ben}
    assign: {rep: ben}
  - name: Dot's
    when: {fields.owner: dot}
    assign: {rep: dot}
fallback: {queue: unmatched}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "routing.yml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path)


@pytest.fixture
def uow(db: Database, policy: Policy, clock: Clock) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


def lead(external_id: str, **fields: Any) -> Lead:
    return parse_lead(
        {"id": external_id, "email": f"buyer@{external_id.lower()}.example", **fields}
    )


async def miss(db: Database, rep: str, at: datetime, *, kind: str = SLA_MISSED) -> None:
    """What the SLA watchdog records when a rep lets an offer expire."""
    await db.run(
        lambda session: repo.add_audit(
            session=session, lead_id=None, at=at, kind=kind, data={"rep": rep}
        )
    )


async def digest_of(
    db: Database, policy: Policy, manager: str, *, since: datetime | None, now: datetime
) -> ManagerDigest:
    async with db.reading() as session:
        return await load_digest(session, policy, manager_id=manager, since=since, now=now)


# --- what the digest reads -----------------------------------------------------------------------


async def test_the_queue_shows_its_whole_size_and_the_ten_oldest_by_arrival(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    start = clock.now
    # Twelve queued leads arriving out of id order: Q-0 newest, Q-11 oldest.
    for n in range(12):
        clock.now = start - timedelta(minutes=5 * n)
        await intake(uow, lead(f"Q-{n}", company=f"Co {n}", source="webinar"))
    clock.now = start - timedelta(hours=2)
    await intake(uow, lead("P-1", company="Partner Co", source="partner"))
    clock.now = start
    await intake(uow, lead("A-1", owner="ann"))  # offered, so not in the queue

    digest = await digest_of(db, policy, "mia", since=None, now=start)

    assert digest.queue_size == 13
    assert [q.lead_id for q in digest.oldest] == ["P-1", *[f"Q-{n}" for n in range(11, 2, -1)]]
    assert digest.oldest[0] == QueuedLead(
        "P-1", "Partner Co", "partner", "partners", start - timedelta(hours=2)
    )
    assert digest.oldest[1] == QueuedLead(
        "Q-11", "Co 11", "webinar", "unmatched", start - timedelta(minutes=55)
    )


async def test_the_queue_is_the_same_whole_queue_for_every_manager(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, lead("Q-1", source="webinar"))
    sizes = {
        m: (await digest_of(db, policy, m, since=None, now=clock.now)).queue_size
        for m in ("mia", "max", "ola")
    }
    assert sizes == {"mia": 1, "max": 1, "ola": 1}


async def test_misses_are_counted_per_rep_only_from_since_up_to_now(
    db: Database, policy: Policy, clock: Clock
) -> None:
    now = clock.now
    await miss(db, "ann", MONDAY_9AM - timedelta(seconds=1))  # the previous period
    await miss(db, "ann", MONDAY_9AM)
    await miss(db, "ben", MONDAY_9AM + timedelta(hours=1))
    await miss(db, "ben", MONDAY_9AM + timedelta(hours=2))
    await miss(db, "ben", now - timedelta(seconds=1))
    await miss(db, "cat", now)  # belongs to the next period
    await miss(db, "cat", MONDAY_9AM + timedelta(hours=3), kind="sla_expired")

    digest = await digest_of(db, policy, "mia", since=MONDAY_9AM, now=now)

    assert digest.since == MONDAY_9AM
    assert digest.misses == (RepMisses("ben", "Ben Baker", 3), RepMisses("ann", "Ann Archer", 1))


async def test_consecutive_periods_count_every_miss_exactly_once(
    db: Database, policy: Policy, clock: Clock
) -> None:
    tuesday_9am = MONDAY_9AM + timedelta(days=1)
    for minutes in (0, 30, 24 * 60 - 1, 24 * 60, 24 * 60 + 1):
        await miss(db, "ann", MONDAY_9AM + timedelta(minutes=minutes))

    monday = await digest_of(db, policy, "mia", since=MONDAY_9AM, now=tuesday_9am)
    tuesday = await digest_of(db, policy, "mia", since=tuesday_9am, now=clock.now)

    assert [m.count for m in monday.misses] == [3]
    assert [m.count for m in tuesday.misses] == [2]


async def test_a_first_digest_counts_the_misses_of_the_last_24_hours(
    db: Database, policy: Policy, clock: Clock
) -> None:
    now = clock.now
    await miss(db, "cat", now - timedelta(hours=25))
    await miss(db, "cat", now - timedelta(hours=23))

    digest = await digest_of(db, policy, "mia", since=None, now=now)

    assert digest.since == now - timedelta(hours=24)
    assert digest.misses == (RepMisses("cat", "Cat Cole", 1),)


async def test_a_manager_sees_the_reps_of_their_own_teams_each_once(
    db: Database, policy: Policy, clock: Clock
) -> None:
    for rep in ("ann", "ben", "cat", "dot"):
        await miss(db, rep, clock.now - timedelta(minutes=1))

    mia = await digest_of(db, policy, "mia", since=None, now=clock.now)
    max_ = await digest_of(db, policy, "max", since=None, now=clock.now)

    assert [load.rep_id for load in mia.loads] == ["ann", "ben", "cat"]  # ben is in both teams
    assert [m.rep_id for m in mia.misses] == ["ann", "ben", "cat"]
    assert [load.rep_id for load in max_.loads] == ["dot"]
    assert [m.rep_id for m in max_.misses] == ["dot"]


async def test_a_manager_of_no_team_sees_every_rep(
    db: Database, policy: Policy, clock: Clock
) -> None:
    await miss(db, "dot", clock.now - timedelta(minutes=1))
    digest = await digest_of(db, policy, "ola", since=None, now=clock.now)
    assert reps_of_manager(policy, "ola") == ("ann", "ben", "cat", "dot")
    assert [load.rep_id for load in digest.loads] == ["ann", "ben", "cat", "dot"]
    assert [m.rep_id for m in digest.misses] == ["dot"]


async def test_each_rep_shows_open_leads_against_capacity(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    for n in range(2):
        await intake(uow, lead(f"A-{n}", owner="ann"))
    await intake(uow, lead("B-0", owner="ben"))
    await claim(uow, "A-0", by="ann")  # claimed leads still count against capacity

    digest = await digest_of(db, policy, "mia", since=None, now=clock.now)

    assert digest.loads == (
        RepLoad("ann", "Ann Archer", 2, 3),
        RepLoad("ben", "Ben Baker", 1, 2),
        RepLoad("cat", "Cat Cole", 0, None),
    )
    assert not digest.empty


async def test_out_of_office_shows_until_when_and_why_and_not_an_absence_that_ended(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    back = clock.now + timedelta(days=3)
    await set_out_of_office(uow, "ben", until=clock.now + timedelta(hours=1), reason="lunch")
    await set_out_of_office(uow, "ann", until=back, reason="dentist")
    await set_out_of_office(uow, "cat", until=None, reason="parental leave")
    await set_out_of_office(uow, "dot", until=back, reason="offsite")  # not mia's
    clock.advance(hours=2)

    digest = await digest_of(db, policy, "mia", since=None, now=clock.now)

    assert digest.away == (
        RepAway("ann", "Ann Archer", back, "dentist"),
        RepAway("cat", "Cat Cole", None, "parental leave"),
    )


async def test_a_quiet_day_is_an_empty_digest(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await miss(db, "ann", clock.now - timedelta(days=3))  # long before the period
    await set_out_of_office(uow, "dot", until=None, reason="offsite")  # not mia's rep
    digest = await digest_of(db, policy, "mia", since=None, now=clock.now)
    assert digest.empty
    assert (digest.queue_size, digest.misses, digest.away) == (0, (), ())


async def test_an_unknown_manager_is_refused(
    sqlite_db: Database, policy: Policy, clock: Clock
) -> None:
    with pytest.raises(ServiceError, match="no manager with id zed"):
        await digest_of(sqlite_db, policy, "zed", since=None, now=clock.now)


async def test_the_digest_takes_the_same_few_statements_however_much_there_is(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", count)

    await digest_of(db, policy, "ola", since=None, now=clock.now)
    few = len(statements)
    for n in range(15):
        await intake(uow, lead(f"Q-{n}", source="webinar"))
        await intake(uow, lead(f"A-{n}", owner=("ann", "ben", "dot")[n % 3]))
    for rep in ("ann", "ben", "cat", "dot"):
        await set_out_of_office(uow, rep, until=None, reason="away")
        await miss(db, rep, clock.now - timedelta(minutes=1))
    statements.clear()
    digest = await digest_of(db, policy, "ola", since=None, now=clock.now)

    assert digest.queue_size > 10 and len(digest.misses) == 4 and len(digest.away) == 4
    assert len(statements) == few + 1  # the ten oldest are read only when the queue has any
    assert len(statements) <= 6  # rep state is two narrow reads


# --- how it reads in Slack -----------------------------------------------------------------------

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)  # Tuesday, 12:15 in New York


def digest(**overrides: Any) -> ManagerDigest:
    values: dict[str, Any] = {
        "manager_id": "mia",
        "since": MONDAY_9AM,
        "now": NOW,
        "queue_size": 0,
        "oldest": (),
        "misses": (),
        "loads": (RepLoad("ann", "Ann Archer", 0, 3),),
        "away": (),
    }
    values.update(overrides)
    return ManagerDigest(**values)


def queued(n: int, **overrides: Any) -> QueuedLead:
    values: dict[str, Any] = {
        "lead_id": f"L-{n}",
        "company": f"Company {n}",
        "source": "webinar",
        "queue": "unmatched",
        "created_at": NOW - timedelta(hours=2, minutes=5 + n),
    }
    values.update(overrides)
    return QueuedLead(**values)


def all_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(texts(blocks))


def assign_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b.get("block_id", "").startswith("assign:")]


def test_an_empty_digest_is_one_line_naming_the_period() -> None:
    message = digest_message(digest(), manager_tz=NEW_YORK, assignees=ASSIGNEES)
    line = (
        "All clear: nothing in the queue, no SLA misses since Mon 09:00 EST, nobody out, "
        "no open leads."
    )
    assert message.text == line
    assert len(message.blocks) == 1
    assert list(texts(message.blocks)) == [line]


def test_the_header_names_the_period_in_the_managers_own_zone() -> None:
    busy = digest(queue_size=1, oldest=(queued(0),))
    new_york = digest_message(busy, manager_tz=NEW_YORK, assignees=ASSIGNEES).blocks[0]
    berlin = digest_message(busy, manager_tz=BERLIN, assignees=ASSIGNEES).blocks[0]
    assert new_york["type"] == "header"
    assert new_york["text"]["text"] == "Routing digest since Mon 09:00 EST"
    assert berlin["text"]["text"] == "Routing digest since Mon 15:00 CET"


def test_a_period_longer_than_a_week_names_its_date() -> None:
    assert period_start(NOW - timedelta(days=6), NOW, NEW_YORK) == "Wed 12:15 EST"
    assert period_start(NOW - timedelta(days=7), NOW, NEW_YORK) == "Tue 10 Nov 12:15 EST"
    summer = datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert period_start(summer, summer, NEW_YORK) == "Wed 09:00 EDT"


def test_each_queued_lead_shows_company_source_and_age_with_its_own_assign_picker() -> None:
    oldest = tuple(queued(n) for n in range(10))
    message = digest_message(
        digest(queue_size=12, oldest=oldest), manager_tz=NEW_YORK, assignees=ASSIGNEES
    )
    blocks = message.blocks

    pickers = assign_blocks(blocks)
    assert [b["block_id"] for b in pickers] == [f"assign:L-{n}" for n in range(10)]
    for picker in pickers:
        [element] = picker["elements"]
        assert (element["type"], element["action_id"]) == ("static_select", ActionId.ASSIGN.value)
        assert [o["value"] for o in element["options"]] == ["ann", "ben"]
    text = all_text(blocks)
    assert "*Unmatched queue:* 12 leads, oldest waiting 2h 5m" in text
    assert "*L-3* · Company 3 · webinar · waiting 2h 8m" in text
    assert "… and 2 more" in text
    assert " in unmatched" not in text  # one queue: no need to name it on every line
    # each picker sits right under the line of the lead it assigns
    first = blocks.index(pickers[0])
    assert rich_texts(blocks[first - 1])[0].startswith("*L-0*")
    assert message.text == "Routing digest: 12 leads in the queue, 0 SLA misses, 0 out of office"


def test_leads_from_several_queues_name_their_queue() -> None:
    oldest = (queued(0, queue="partners"), queued(1))
    text = all_text(
        digest_message(
            digest(queue_size=2, oldest=oldest), manager_tz=NEW_YORK, assignees=ASSIGNEES
        ).blocks
    )
    assert "*L-0* · Company 0 · webinar · in partners · waiting" in text
    assert "*L-1* · Company 1 · webinar · in unmatched · waiting" in text
    assert "more" not in text


def test_misses_load_and_absences_each_have_their_lines() -> None:
    back = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    message = digest_message(
        digest(
            misses=(RepMisses("ben", "Ben Baker", 3), RepMisses("ann", "Ann Archer", 1)),
            loads=(
                RepLoad("ann", "Ann Archer", 3, 3),
                RepLoad("ben", "Ben Baker", 1, 2),
                RepLoad("cat", "Cat Cole", 4, None),
            ),
            away=(
                RepAway("ann", "Ann Archer", back, "dentist"),
                RepAway("cat", "Cat Cole", None, None),
            ),
        ),
        manager_tz=NEW_YORK,
        assignees=ASSIGNEES,
    )
    sections = [t for t in texts(message.blocks) if t.startswith("*")]
    assert "*Unmatched queue:* empty" in sections
    assert "*SLA misses since Mon 09:00 EST:* 4\n• Ben Baker: 3\n• Ann Archer: 1" in sections
    assert (
        "*Open leads against capacity*\n• Ann Archer: 3/3 · full\n• Ben Baker: 1/2\n"
        "• Cat Cole: 4 (no cap)"
    ) in sections
    away = next(s for s in sections if s.startswith("*Out of office*"))
    assert away.splitlines()[1:] == [
        "• Ann Archer until <!date^1795183200^{date_short_pretty} at {time}|2026-11-20 14:00 UTC>"
        " · dentist",
        "• Cat Cole until further notice",
    ]
    assert message.text == "Routing digest: 0 leads in the queue, 4 SLA misses, 2 out of office"


def test_nothing_to_report_in_a_part_says_so() -> None:
    text = all_text(
        digest_message(digest(), manager_tz=NEW_YORK, assignees=ASSIGNEES).blocks
    )  # empty: one line
    assert text.startswith("All clear")
    busy = digest(loads=(RepLoad("ann", "Ann Archer", 1, 3),))
    text = all_text(digest_message(busy, manager_tz=NEW_YORK, assignees=ASSIGNEES).blocks)
    assert "*SLA misses since Mon 09:00 EST:* none" in text
    assert "*Out of office:* nobody" in text
    assert "*Unmatched queue:* empty" in text
    assert (
        assign_blocks(digest_message(busy, manager_tz=NEW_YORK, assignees=ASSIGNEES).blocks) == []
    )


def test_crm_write_backs_given_up_are_listed_escaped_with_the_rest_counted() -> None:
    failures = tuple(
        CrmFailure(f"L-{n}", "Ann Archer", "salesforce", "Salesforce has no such record")
        for n in range(10)
    )
    hostile = CrmFailure("<!channel>", "Ben Baker", "hubspot", "HubSpot answered 400: <b>&</b>")
    message = digest_message(
        digest(crm_failures=(hostile, *failures[:9]), crm_failures_total=14),
        manager_tz=NEW_YORK,
        assignees=ASSIGNEES,
    )
    (section,) = [t for t in texts(message.blocks) if t.startswith("*CRM owner write-backs")]
    lines = section.splitlines()
    assert lines[0].startswith("*CRM owner write-backs given up:* 14")
    assert (
        lines[1] == "• `&lt;!channel&gt;` (Ben Baker, HubSpot): "
        "HubSpot answered 400: &lt;b&gt;&amp;&lt;/b&gt;"
    )
    assert lines[2] == "• `L-0` (Ann Archer, Salesforce): Salesforce has no such record"
    assert lines[-1].endswith("and 4 more")
    # the lead's id and the CRM's words are rich text, shown as written and never parsed
    assert "HubSpot answered 400: <b>&</b>" in literal_texts(message.blocks)
    assert "<!channel>" in literal_texts(message.blocks)
    assert not any("<b>" in t or "HubSpot answered" in t for t in mrkdwn(message.blocks))
    assert not digest(crm_failures_total=1).empty
    quiet = digest_message(digest(), manager_tz=NEW_YORK, assignees=ASSIGNEES)
    assert "CRM" not in all_text(quiet.blocks)


HOSTILE = "<!channel> & <http://evil.example|click>"


def test_every_lead_and_policy_string_is_escaped() -> None:
    hostile = digest(
        queue_size=2,
        oldest=(
            queued(0, company=HOSTILE, source="<!here>", queue="<#C1>"),
            queued(1, lead_id="<@U1>&"),
        ),
        misses=(RepMisses("ann", HOSTILE, 1),),
        loads=(RepLoad("ann", HOSTILE, 1, 3),),
        away=(RepAway("ann", HOSTILE, NOW + timedelta(days=1), HOSTILE),),
    )
    message = digest_message(hostile, manager_tz=NEW_YORK, assignees=ASSIGNEES)
    assert_within_limits(message.blocks, MAX_MESSAGE_BLOCKS)
    for text in texts(message.blocks):
        assert_safe(text)
    text = all_text(message.blocks)
    assert "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;" in text
    assert "&lt;!here&gt;" in text and "in &lt;#C1&gt;" in text and "*&lt;@U1&gt;&amp;*" in text
    # the block id is not shown to anyone: it carries the lead id as it is
    assert [b["block_id"] for b in assign_blocks(message.blocks)] == ["assign:L-0", "assign:<@U1>&"]
    # what a lead wrote is rich text, as written, in no mrkdwn at all
    assert {HOSTILE, "<!here>", "<@U1>&"} <= set(literal_texts(message.blocks))
    assert not any("<@U1>" in t or "&lt;@U1" in t for t in mrkdwn(message.blocks))


def test_a_lead_id_too_long_for_a_block_id_is_listed_without_a_picker() -> None:
    long_id = "L" * 250
    message = digest_message(
        digest(queue_size=2, oldest=(queued(0, lead_id=long_id), queued(1))),
        manager_tz=NEW_YORK,
        assignees=ASSIGNEES,
    )
    assert [b["block_id"] for b in assign_blocks(message.blocks)] == ["assign:L-1"]
    assert f"*{long_id}*" in all_text(message.blocks)


def lines_and_more(section: str) -> tuple[int, int]:
    """(rep lines shown, the N of "… and N more") in a list section."""
    lines = section.splitlines()[1:]
    more = int(lines[-1].split()[2]) if lines[-1].startswith("…") else 0
    return len([line for line in lines if line.startswith("•")]), more


def test_hundreds_of_reps_and_a_long_queue_stay_within_slack_limits() -> None:
    names = [f"Representative {n:03} of the very long named sales team <{n}>" for n in range(600)]
    many = digest(
        queue_size=5000,
        oldest=tuple(queued(n, company="C" * 1000, source="S" * 1000) for n in range(10)),
        misses=tuple(RepMisses(f"r{n}", name, 600 - n) for n, name in enumerate(names)),
        loads=tuple(RepLoad(f"r{n}", name, n % 7, 5) for n, name in enumerate(names)),
        away=tuple(
            RepAway(f"r{n}", name, NOW + timedelta(days=n + 1), "R" * 1000)
            for n, name in enumerate(names)
        ),
    )
    message = digest_message(many, manager_tz=NEW_YORK, assignees=ASSIGNEES)

    assert_within_limits(message.blocks, MAX_MESSAGE_BLOCKS)
    for text in texts(message.blocks):
        assert_safe(text)
    assert len(assign_blocks(message.blocks)) == 10
    assert "… and 4990 more" in all_text(message.blocks)
    loads = next(t for t in texts(message.blocks) if t.startswith("*Open leads"))
    assert lines_and_more(loads)[0] >= 30  # a 3,000-character section still lists dozens
    for head in ("*SLA misses", "*Open leads", "*Out of office"):
        section = next(t for t in texts(message.blocks) if t.startswith(head))
        shown, more = lines_and_more(section)
        assert shown > 0 and more > 0
        assert shown + more == 600


# --- from the database to Slack ------------------------------------------------------------------


async def test_a_hostile_company_arriving_in_the_queue_reaches_the_digest_escaped(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, lead("L-1", company="<!channel>", source="webinar"))
    clock.advance(minutes=90)
    loaded = await digest_of(db, policy, "mia", since=MONDAY_9AM, now=clock.now)

    message = digest_message(loaded, manager_tz=policy.managers["mia"].tz, assignees=ASSIGNEES)

    text = all_text(message.blocks)
    assert "*L-1* · &lt;!channel&gt; · webinar · waiting 1h 30m" in text
    assert "<!channel>" in literal_texts(message.blocks)  # shown as written: pings nobody
    assert not any("channel" in t for t in mrkdwn(message.blocks))
    assert [b["block_id"] for b in assign_blocks(message.blocks)] == ["assign:L-1"]
    assert message.blocks[0]["text"]["text"] == "Routing digest since Mon 15:00 CET"


async def test_a_digest_that_goes_out_late_tells_the_queue_and_absences_as_they_are_then(
    db: Database, policy: Policy, uow: UnitOfWork, clock: Clock
) -> None:
    # The tick was at `due`; Slack was down, and the digest goes out two hours later. A lead
    # that came into the queue meanwhile has waited an hour, not "0s".
    due = clock.now
    clock.advance(hours=1)
    await intake(uow, lead("Q-late", company="Late Co", source="webinar"))
    await set_out_of_office(uow, "ann", until=due + timedelta(hours=1, minutes=30), reason="gym")
    clock.advance(hours=1)

    async with db.reading() as session:
        late = await load_digest(
            session, policy, manager_id="mia", since=MONDAY_9AM, now=due, read_at=clock.now
        )

    assert late.away == ()  # back before the digest went out
    text = all_text(digest_message(late, manager_tz=BERLIN, assignees=ASSIGNEES).blocks)
    assert "*Unmatched queue:* 1 lead, oldest waiting 1h" in text
    assert "*Q-late* · Late Co · webinar · waiting 1h" in text
    assert text.splitlines()[0] == "Routing digest since Mon 15:00 CET"  # the period, as due
