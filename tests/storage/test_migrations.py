"""Migrations as an upgrade runs them: from an empty database and from rows each revision
found, on SQLite and PostgreSQL, up to head and back down. Past 400 lines: the tests share the
upgrade and downgrade helpers and the rows of the revisions before.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from storage.migrate import MIGRATIONS, current, upgrade
from tests.pg import PostgresServer

HEAD = "0021"  # the newest revision in storage/migrations/versions
BEFORE_NEWEST_SCHEMA = "0019"  # 0020 changed the schema last (0021 fills in data)


def differences(url: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync), SQLModel.metadata
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def test_a_fresh_database_is_migrated_to_exactly_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert current(url) is None
    upgrade(url)
    assert current(url) == HEAD
    assert differences(url) == []


def test_the_newest_revision_goes_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'down.db'}"
    upgrade(url)

    _downgrade(url, "-1")
    assert current(url) not in (None, HEAD)
    _downgrade(url, BEFORE_NEWEST_SCHEMA)
    assert differences(url) != []  # the newest schema change is undone
    upgrade(url)

    assert current(url) == HEAD
    assert differences(url) == []


def test_upgrading_twice_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'twice.db'}"
    upgrade(url)
    upgrade(url)
    assert current(url) == HEAD


async def test_upgrade_works_from_inside_a_running_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'loop.db'}"
    upgrade(url)  # `serve` migrates with its loop already running
    assert current(url) == HEAD


def test_a_migrated_sqlite_file_is_left_in_wal_mode(tmp_path: Path) -> None:
    """Before a server opens it: its first connections need not race to switch it."""
    path = tmp_path / "fresh.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def _upgrade_in_a_process(url: str) -> str | None:
    upgrade(url)
    return current(url)


def _at_once(url: str, replicas: int) -> list[str | None]:
    context = multiprocessing.get_context("spawn")  # each a process of its own, as replicas are
    with context.Pool(replicas) as pool:
        return pool.map(_upgrade_in_a_process, [url] * replicas, chunksize=1)


def test_three_replicas_starting_at_once_on_a_new_sqlite_file_all_come_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert _at_once(url, 3) == [HEAD] * 3
    assert differences(url) == []


async def test_three_replicas_starting_at_once_on_a_new_postgres_database_all_come_up(
    postgres_server: PostgresServer,
) -> None:
    name = await postgres_server.create_database()
    url = postgres_server.url(name)
    try:
        assert await asyncio.to_thread(_at_once, url, 3) == [HEAD] * 3
    finally:
        await postgres_server.drop_database(name)


def test_accounts_stored_before_domains_had_one_spelling_are_respelt_and_rekeyed(
    tmp_path: Path,
) -> None:
    """Rows as the previous version wrote them: the domain in the spelling it was imported in,
    and name keys that kept legal forms it did not know (Oyj)."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0005")
    old = {
        ("A1", "Münchner Bau", "xn--mnchner-bau-thb.de", "https://www.xn--mnchner-bau-thb.de"): (
            "t:munchner",
            "t:bau",
            "p:munc",
        ),
        ("A2", "Abc Oyj", "abc.fi", "abc.fi"): ("t:abc", "t:oyj", "p:abco"),
        ("A3", "Initech", "initech.com", "https://initech.com"): ("t:initech", "p:init"),
        ("A4", "No Domain", None, None): ("t:no", "t:domain", "p:nodo"),
    }
    raw = sqlite3.connect(path)
    try:
        with raw:
            for (account_id, name, domain, website), keys in old.items():
                raw.execute(
                    "INSERT INTO accounts (id, name, domain, website, updated_at)"
                    " VALUES (?, ?, ?, ?, '2026-11-01 00:00:00.000000')",
                    (account_id, name, domain, website),
                )
                raw.executemany(
                    "INSERT INTO account_keys (account_id, key) VALUES (?, ?)",
                    [(account_id, key) for key in keys],
                )
    finally:
        raw.close()

    upgrade(url)

    raw = sqlite3.connect(path)
    try:
        domains = dict(raw.execute("SELECT id, domain FROM accounts"))
        keys: dict[str, set[str]] = {}
        for account_id, key in raw.execute("SELECT account_id, key FROM account_keys"):
            keys.setdefault(account_id, set()).add(key)
    finally:
        raw.close()
    assert domains == {"A1": "münchner-bau.de", "A2": "abc.fi", "A3": "initech.com", "A4": None}
    assert keys == {
        "A1": {"t:munchner", "t:bau", "p:munc"},
        "A2": {"t:abc", "p:abc"},
        "A3": {"t:initech", "p:init"},
        "A4": {"t:no", "t:domain", "p:nodo"},
    }


def test_accounts_stored_before_they_had_a_place_are_kept_and_crm_accounts_are_read_again(
    tmp_path: Path,
) -> None:
    """Rows as 0006 left them: accounts without a country or state, and the cursors of the CRM
    syncs that read them. The next accounts sync must read every account again to learn where
    each is; the leads poll must not route old leads again."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0006")
    when = "'2026-11-01 00:00:00.000000'"
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.executemany(
                "INSERT INTO accounts (id, name, domain, website, owner_rep, tier, crm_system,"
                f" updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, {when})",
                [
                    ("A1", "Initech", "initech.com", "https://initech.com", "ann", "Gold", None),
                    ("0015e00000Acct0001", "Globex", None, None, None, None, "salesforce"),
                ],
            )
            raw.executemany(
                "INSERT INTO account_keys (account_id, key) VALUES (?, ?)",
                [("A1", "t:initech"), ("A1", "p:init"), ("0015e00000Acct0001", "t:globex")],
            )
            raw.executemany(
                f"INSERT INTO crm_cursors (name, watermark, updated_at) VALUES (?, {when}, {when})",
                [("salesforce:leads",), ("salesforce:accounts",), ("hubspot:accounts",)],
            )
    finally:
        raw.close()

    upgrade(url)

    raw = sqlite3.connect(path)
    try:
        accounts = raw.execute(
            "SELECT id, name, domain, owner_rep, tier, crm_system, country, state FROM accounts"
            " ORDER BY id"
        ).fetchall()
        keys = raw.execute("SELECT count(*) FROM account_keys").fetchone()[0]
        cursors = [name for (name,) in raw.execute("SELECT name FROM crm_cursors")]
    finally:
        raw.close()
    assert accounts == [
        ("0015e00000Acct0001", "Globex", None, None, None, "salesforce", None, None),
        ("A1", "Initech", "initech.com", "ann", "Gold", None, None, None),
    ]
    assert keys == 3
    assert cursors == ["salesforce:leads"]
    assert differences(url) == []


def test_stories_and_rollups_made_before_the_report_judged_arrival_routing_are_made_again(
    tmp_path: Path,
) -> None:
    """Rows as 0012's report left them: a story grouped by the lead's latest decision, its
    day's and week's rollups made from it, and the cursor saying the stories are up to date.
    The next refresh must make every story and every rollup again; the performance rates,
    which read the rep holding the lead, must read the same meanwhile."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0012")
    when = "'2026-11-18 00:00:00.000000'"
    arrived = 1_763_287_200_000_000  # 2026-11-16 10:00 UTC, in microseconds
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.execute(
                "INSERT INTO lead_stories (lead_id, created_at, outcome, rule, team, rep,"
                " unmatched, fallback, claim_misses, contact_misses, made_at)"
                f" VALUES (1, {arrived}, 'assigned', 'Software', 'trio', 'ben', 0, 0, 1, 0, {when})"
            )
            raw.execute(
                "INSERT INTO report_days (day, changed, rolled, good_until, rolled_at)"
                f" VALUES ('2026-11-16', 3, 3, {when}, {when})"
            )
            raw.execute(
                "INSERT INTO report_weeks (week, made_from, good_until, rolled_at)"
                f" VALUES ('2026-11-16', 3, NULL, {when})"
            )
            raw.executemany(
                "INSERT INTO report_rollups (day, days, by, group_key, tally)"
                " VALUES ('2026-11-16', ?, 'team', 'trio', '{\"leads\": 1}')",
                [(1,), (7,)],
            )
            raw.execute(
                "INSERT INTO report_cursor (name, watermark, fields, updated_at)"
                f" VALUES ('stories', {when}, '[\"industry\"]', {when})"
            )
    finally:
        raw.close()

    upgrade(url)

    raw = sqlite3.connect(path)
    try:
        days = raw.execute("SELECT day, changed, rolled, good_until FROM report_days").fetchall()
        left = {
            table: raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("report_weeks", "report_rollups", "report_cursor")
        }
        story = raw.execute("SELECT rep, current_rep FROM lead_stories").fetchall()
    finally:
        raw.close()
    assert days == [("2026-11-16", 3, None, None)]  # its rollups as never made
    assert left == {"report_weeks": 0, "report_rollups": 0, "report_cursor": 0}
    assert story == [("ben", "ben")]
    assert differences(url) == []


_OUTBOX_ROWS = [
    # (kind, dedupe key, lane, payload, done, failed)
    ("crm.set_owner.hubspot", "crm-owner:1", None, '{"lead_id": 7, "rep": "ann"}', False, False),
    ("crm.set_owner.salesforce", "crm-owner:2", None, '{"lead_id": 8, "rep": "ann"}', True, False),
    ("crm.set_owner.hubspot", "crm-owner:3", None, '{"lead_id": 9, "rep": "ben"}', False, True),
    ("slack.offer_card", "offer-card:1", "U1", '{"offer_id": 1, "lead_id": 7}', False, False),
    ("crm.take_contact.hubspot", "hubspot-contact:5", None, '{"contact_id": "5"}', False, False),
]


async def _outbox_lanes(url: str, *, insert: bool = False) -> dict[str, str | None]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            if insert:
                when = datetime(2026, 12, 7, 17, 0)
                await connection.execute(
                    text(
                        "INSERT INTO outbox (kind, dedupe_key, lane, payload, attempts,"
                        " next_attempt_at, done_at, failed_at, created_at) VALUES (:kind, :key,"
                        " :lane, :payload, 0, :when, :done, :failed, :when)"
                    ),
                    [
                        {
                            "kind": kind,
                            "key": key,
                            "lane": lane,
                            "payload": payload,
                            "when": when,
                            "done": when if done else None,
                            "failed": when if failed else None,
                        }
                        for kind, key, lane, payload, done, failed in _OUTBOX_ROWS
                    ],
                )
            rows = await connection.execute(text("SELECT dedupe_key, lane FROM outbox"))
            return {key: lane for key, lane in rows.all()}
    finally:
        await engine.dispose()


def _downgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, revision)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database with no tables yet: a new SQLite file, or PostgreSQL's."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_owner_writes_still_to_do_are_put_in_their_leads_lane_and_taken_out_on_downgrade(
    empty_database: str,
) -> None:
    """Rows as 0014 left them: no owner write in a lane (the worker kept a lead's writes in
    order within its process, from the payload). Those still to do join their lead's lane,
    which the claim keeps in order across replicas; a downgrade leaves them as they were."""
    url = empty_database
    await asyncio.to_thread(upgrade, url, "0014")
    before = await _outbox_lanes(url, insert=True)

    await asyncio.to_thread(upgrade, url)
    after = await _outbox_lanes(url)
    await asyncio.to_thread(_downgrade, url, "0014")
    undone = await _outbox_lanes(url)
    await asyncio.to_thread(upgrade, url)

    assert after == {**before, "crm-owner:1": "crm-lead:7"}
    assert undone == before
    assert await asyncio.to_thread(current, url) == HEAD
    assert await asyncio.to_thread(differences, url) == []


async def test_signs_out_everywhere_become_generations_and_come_back_on_downgrade(
    empty_database: str,
) -> None:
    """Rows as 0016 left them: Maria had signed out everywhere (a time), Ann's laptop had signed
    out (one session). Maria starts at generation 1, so her sessions of generation 0 (every
    cookie signed before 0019) stay ended; both rows stay, for replicas not yet upgraded. A
    downgrade dates a sign-out everywhere of Maria's then, which ends all of her sessions."""
    url = empty_database
    await asyncio.to_thread(upgrade, url, "0016")
    when = datetime(2020, 1, 6, 9, 0)
    await _run(
        url,
        "INSERT INTO dashboard_sign_outs (key, at, expires_at) VALUES (:key, :at, :expires)",
        [
            {"key": key, "at": when, "expires": when + timedelta(hours=12)}
            for key in ("everywhere:manager:maria", "session:0a1b")
        ],
    )

    await asyncio.to_thread(upgrade, url)
    after = await _sign_out_rows(url)
    await asyncio.to_thread(_downgrade, url, "0016")
    undone = await _run(url, "SELECT key, at FROM dashboard_sign_outs ORDER BY key")
    await asyncio.to_thread(upgrade, url)

    assert after == ({"manager:maria": 1}, ["everywhere:manager:maria", "session:0a1b"])
    assert [key for key, _ in undone] == ["everywhere:manager:maria", "session:0a1b"]
    # Dated at the downgrade (SQLite gives the text it stores): every session before it ends.
    assert str(undone[0][1]) > str(when + timedelta(hours=12))
    assert await _sign_out_rows(url) == after
    assert await asyncio.to_thread(current, url) == HEAD
    assert await asyncio.to_thread(differences, url) == []


async def _sign_out_rows(url: str) -> tuple[dict[str, int], list[str]]:
    generations = await _run(url, "SELECT who, generation FROM dashboard_session_generations")
    sign_outs = await _run(url, "SELECT key FROM dashboard_sign_outs ORDER BY key")
    return {who: generation for who, generation in generations}, [key for (key,) in sign_outs]


async def _run(url: str, sql: str, rows: list[dict[str, object]] | None = None) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), rows)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_queue_posts_and_alerts_given_up_before_escalations_were_marked_are_not_told_again(
    empty_database: str,
) -> None:
    """Rows as 0016 left them: a queue post and a manager's alert given up (their managers
    told as they ended, or not, which nothing recorded). They are marked escalated as of their
    give-up, so the sweep does not tell anyone of them again; an item still to do, or of
    another kind, is not."""
    url = empty_database
    await asyncio.to_thread(upgrade, url, "0016")
    when = datetime(2026, 12, 7, 17, 0)
    rows = [
        ("slack.queue_post", "queue-post:1:0", when),
        ("slack.manager_alert", "manager-alert:2:mia", when),
        ("slack.digest", "digest:mia:5", when),
        ("slack.queue_post", "queue-post:3:0", None),
        ("slack.offer_card", "offer-card:4", when),
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO outbox (kind, dedupe_key, payload, attempts, next_attempt_at,"
                    " failed_at, created_at) VALUES (:kind, :key, '{}', 1, :when, :failed, :when)"
                ),
                [{"kind": k, "key": key, "failed": f, "when": when} for k, key, f in rows],
            )
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT dedupe_key, escalated_at FROM outbox"))
            escalated = {key: at is not None for key, at in found.all()}
    finally:
        await engine.dispose()

    assert escalated == {
        "queue-post:1:0": True,
        "manager-alert:2:mia": True,
        "digest:mia:5": True,
        "queue-post:3:0": False,
        "offer-card:4": False,
    }


async def test_reps_already_out_before_absences_kept_their_time_get_it_from_the_audit(
    empty_database: str,
) -> None:
    """Rows as 0020 left them: reps out with no `away_at`. Ann's is her latest out-of-office
    event (not Ben's, not the earlier one); Cat, with none, gets when her state last changed;
    Dot's is kept; Eve, not out, gets none."""
    url = empty_database
    await asyncio.to_thread(upgrade, url, "0020")
    t = [datetime(2026, 12, 1, 9, 0) + timedelta(hours=n) for n in range(6)]
    states = [
        ("ann", True, None, t[5]),
        ("cat", True, None, t[4]),
        ("dot", True, t[0], t[5]),
        ("eve", False, None, t[5]),
    ]
    events = [(t[1], "ann"), (t[2], "ben"), (t[3], "ann")]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO rep_state (rep_id, open_count, away, away_at, updated_at)"
                    " VALUES (:rep, 0, :away, :away_at, :updated)"
                ),
                [{"rep": r, "away": a, "away_at": at, "updated": u} for r, a, at, u in states],
            )
            await connection.execute(
                text(
                    "INSERT INTO audit_events (lead_id, at, kind, actor, data)"
                    " VALUES (NULL, :at, 'out_of_office', :rep, :data)"
                ),
                [{"at": at, "rep": rep, "data": json.dumps({"rep": rep})} for at, rep in events],
            )
            await connection.execute(  # not an absence, whatever rep it names
                text(
                    "INSERT INTO audit_events (lead_id, at, kind, data) VALUES"
                    " (NULL, :at, 'back', :data)"
                ),
                {"at": t[4], "data": json.dumps({"rep": "ann"})},
            )
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT rep_id, away_at FROM rep_state"))
            away_at = {rep: _naive(at) for rep, at in found.all()}
    finally:
        await engine.dispose()

    assert away_at == {"ann": t[3], "cat": t[4], "dot": t[0], "eve": None}


def _naive(value: Any) -> datetime | None:
    """A time as read back raw: a datetime (PostgreSQL) or its text (SQLite), without zone."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=None)
