"""A server's policy changed while it runs (`bot.live_policy`): its file activated at start and
whenever it is saved, a file that fails its checks refused (logged, the managers told once, the
old version serving on), another replica's activation followed within the poll, SIGHUP, and the
offers of a rep who left moved on. The watch runs over the real unit of work on SQLite; the
replicas of PostgreSQL are two applications on one database, as two processes would be."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from bot.bootstrap import App, bootstrap
from bot.http import build_http_app
from bot.live_policy import PolicyWatch
from bot.metrics import Metrics
from bot.service.intake import intake
from bot.service.kinds import REP_LEFT_POLICY, OutboxKind
from bot.service.policies import Activation, activate_policy, active_version
from bot.service.unit_of_work import Transaction
from bot.settings import Settings
from routing.policy import parse_policy
from routing.policy_version import short_version, version_of
from storage import repository as repo
from storage.db import Database, open_database
from storage.migrate import upgrade as migrate
from storage.models import DecisionRow, LeadRow, OutboxRow, PolicyActivationRow
from tests.bot.conftest import Clock
from tests.bot.webhook import SECRET, as_body, signed
from tests.service.support import TRIO_POLICY, audit_of, new_lead, offers_of

LEADROUTER = Path(sys.executable).parent / "leadrouter"
DUO_POLICY = TRIO_POLICY.replace("  - {id: cat, name: Cat Cole}\n", "").replace(
    "members: [ann, ben, cat]", "members: [ann, ben]"
)
BAD_POLICY = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, zed]")
EVERY_S = 0.1  # the watch's poll in these tests


def settings_on(rules: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        rules=rules,
        policy_check_seconds=EVERY_S,
        webhook_secret=SecretStr(SECRET),
    )


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yml"
    path.write_text(TRIO_POLICY, encoding="utf-8")
    return path


@pytest.fixture
async def app(rules: Path, sqlite_db: Database, clock: Clock) -> AsyncIterator[App]:
    application = bootstrap(
        settings_on(rules, "sqlite:///unused.db"),
        db=sqlite_db,
        policy=parse_policy(TRIO_POLICY, source=str(rules)),
        clock=clock,
    )
    yield application
    await application.uow.aclose()


def watch_of(app: App) -> PolicyWatch:
    return PolicyWatch(app.live, app.uow, app.settings.rules, every_s=EVERY_S, runner="host:1")


def save(path: Path, text: str) -> None:
    """Save the file as an editor would, its modification time moved on for certain."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10_000_000, before + 10_000_000))


def remove(path: Path) -> None:
    path.unlink()


async def activations(db: Database) -> list[PolicyActivationRow]:
    async with db.reading() as session:
        rows = await session.execute(select(PolicyActivationRow).order_by(PolicyActivationRow.id))
        return list(rows.scalars())


async def refusals(db: Database) -> list[OutboxRow]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == OutboxKind.POLICY_REFUSED)
        )
        return list(rows.scalars())


async def until(condition: Callable[[], Awaitable[bool] | bool], within: float = 5) -> float:
    """Wait until `condition` holds; how long it took."""
    start = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return time.monotonic() - start
            await asyncio.sleep(0.01)


# --- at start ------------------------------------------------------------------------------------


async def test_a_server_starting_on_a_file_that_is_not_the_active_version_activates_it(
    app: App, sqlite_db: Database, rules: Path
) -> None:
    await activate_policy(app.uow, DUO_POLICY, source="other.yml", how=Activation.COMMAND, by="al")

    await watch_of(app).start()

    assert await active_version(app.uow) == version_of(TRIO_POLICY)
    last = (await activations(sqlite_db))[-1]
    assert (last.how, last.by) == ("serve at start", "host:1")
    assert app.policy.version == version_of(TRIO_POLICY)


async def test_a_server_starting_on_the_active_version_records_nothing_more(
    app: App, sqlite_db: Database
) -> None:
    await watch_of(app).start()
    await watch_of(app).start()  # a second replica, or a restart

    assert [a.how for a in await activations(sqlite_db)] == ["serve at start"]


# --- the file ------------------------------------------------------------------------------------


async def test_a_saved_file_is_activated_at_the_next_look_and_served(
    app: App, sqlite_db: Database, rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = watch_of(app)
    await watch.start()
    save(rules, DUO_POLICY)

    with caplog.at_level(logging.INFO, logger="bot.live_policy"):
        await watch.look()

    assert app.policy.version == version_of(DUO_POLICY)
    assert app.uow.policy().version == version_of(DUO_POLICY)
    assert [(a.how, a.by) for a in await activations(sqlite_db)][-1] == ("file watch", "host:1")
    assert f"serving version {short_version(version_of(DUO_POLICY))}" in caplog.text
    # Looking again at a file that has not changed does nothing.
    await watch.look()
    assert len(await activations(sqlite_db)) == 2


async def test_a_file_that_fails_its_checks_is_refused_logged_and_told_once(
    app: App, sqlite_db: Database, rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch, other_replica = watch_of(app), watch_of(app)
    await watch.start()
    await other_replica.start()
    save(rules, BAD_POLICY)

    with caplog.at_level(logging.INFO, logger="bot.live_policy"):
        await watch.look()
        await other_replica.look()
        await watch.look(asked=True)  # and a SIGHUP on top

    assert app.policy.version == version_of(TRIO_POLICY)  # the old version serves on
    assert await active_version(app.uow) == version_of(TRIO_POLICY)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "1 error; version" in errors[0].getMessage()
    assert "`zed` is not a rep defined under reps" in errors[0].getMessage()
    (told,) = await refusals(sqlite_db)  # one manager (mia), told once
    assert (told.payload["manager"], told.payload["version"]) == ("mia", version_of(BAD_POLICY))


async def test_a_file_fixed_after_a_refusal_is_activated(
    app: App, sqlite_db: Database, rules: Path
) -> None:
    watch = watch_of(app)
    await watch.start()
    save(rules, BAD_POLICY)
    await watch.look()
    save(rules, DUO_POLICY)
    await watch.look()

    assert app.policy.version == version_of(DUO_POLICY)


async def test_sighup_reads_the_file_back_over_a_version_activated_elsewhere(
    app: App, sqlite_db: Database, rules: Path
) -> None:
    watch = watch_of(app)
    await watch.start()
    await activate_policy(app.uow, DUO_POLICY, source="duo.yml", how=Activation.COMMAND, by="al")
    await watch.look()  # the file is as it was: the version activated elsewhere serves
    assert app.policy.version == version_of(DUO_POLICY)

    watch.wake()
    task = asyncio.create_task(watch.run())
    try:
        await until(lambda: app.policy.version == version_of(TRIO_POLICY))
    finally:
        task.cancel()

    assert (await activations(sqlite_db))[-1].how == "SIGHUP"


async def test_a_missing_file_is_said_once_and_the_policy_serves_on(
    app: App, rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = watch_of(app)
    await watch.start()
    remove(rules)

    with caplog.at_level(logging.WARNING, logger="bot.live_policy"):
        for _ in range(3):
            await watch.look()

    assert len(caplog.records) == 1 and "cannot look at" in caplog.text
    assert app.policy.version == version_of(TRIO_POLICY)


async def test_sighup_on_a_missing_file_says_so_each_time_it_is_sent(
    app: App, rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = watch_of(app)
    await watch.start()
    remove(rules)
    await watch.look()  # the watch's own look says it once
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="bot.live_policy"):
        await watch.look(asked=True)
        await watch.look(asked=True)

    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert all(f"cannot look at {rules}" in line and "SIGHUP" in line for line in said)
    assert app.policy.version == version_of(TRIO_POLICY)


# --- the database --------------------------------------------------------------------------------


async def test_a_version_activated_elsewhere_is_served_within_the_poll(
    app: App, rules: Path
) -> None:
    watch = watch_of(app)
    await watch.start()
    task = asyncio.create_task(watch.run())
    try:
        await activate_policy(app.uow, DUO_POLICY, source="d.yml", how=Activation.COMMAND, by="al")
        waited = await until(lambda: app.policy.version == version_of(DUO_POLICY))
    finally:
        task.cancel()
    assert waited < 3 * EVERY_S + 0.5


async def test_an_active_version_this_release_cannot_serve_is_said_once_and_skipped(
    app: App, sqlite_db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watch = watch_of(app)
    await watch.start()
    newer = "reps: [{id: ann}]\nfuture_key: {}\n"  # a key a later release knows

    def activate_newer(tx: Transaction) -> None:
        session = tx.session
        latest = repo.latest_activation(session=session)
        assert latest is not None and latest.id is not None
        version = version_of(newer)
        repo.store_policy_version(
            session=session, version=version, text=newer, source="x.yml", now=clock()
        )
        repo.record_activation(
            session=session,
            version=version,
            replaces=latest.id,
            at=clock(),
            how="x",
            by=None,
            source="x.yml",
        )

    await app.uow.write(activate_newer)
    with caplog.at_level(logging.ERROR, logger="bot.live_policy"):
        await watch.look()
        await watch.look()

    assert len(caplog.records) == 1
    assert "is active but this release cannot serve it" in caplog.text
    assert app.policy.version == version_of(TRIO_POLICY)


# --- a rep who left ------------------------------------------------------------------------------


async def test_a_switch_moves_on_the_open_offers_of_a_rep_the_new_version_has_not(
    app: App, sqlite_db: Database, rules: Path
) -> None:
    watch = watch_of(app)
    await watch.start()
    reps = [(await intake(app.uow, new_lead(f"L-{n}"))).lead.rep for n in range(3)]
    assert reps == ["ann", "ben", "cat"]

    save(rules, DUO_POLICY)
    await watch.look()

    offers = await offers_of(sqlite_db, "L-2")
    assert (offers[0].rep_id, offers[0].status) == ("cat", "reassigned")
    (moved,) = [a for a in await audit_of(sqlite_db, "L-2") if a.kind == REP_LEFT_POLICY]
    assert moved.reason is not None and moved.reason.startswith("Cat Cole left the routing policy")
    routed_again = (await audit_of(sqlite_db, "L-2"))[-1]
    assert routed_again.kind == "rerouted"
    assert routed_again.data["policy_version"] == version_of(DUO_POLICY)


# --- under load, and across replicas -------------------------------------------------------------

# The same reps; another rule, to another team: a decision's rule says which version made it.
TURNED_POLICY = (
    TRIO_POLICY.replace("name: Everyone", "name: Everyone since the change")
    .replace(
        "  trio: {members: [ann, ben, cat], distribution: round_robin, manager: mia}\n",
        "  trio: {members: [ann, ben, cat], distribution: round_robin, manager: mia}\n"
        "  pair: {members: [ben, cat], distribution: round_robin, manager: mia}\n",
    )
    .replace("assign: {team: trio}", "assign: {team: pair}")
)
BEFORE = 80  # leads answered before the file is saved
AFTER = 80  # leads posted once the new version serves
POSTERS = 4
MOST = 5000  # leads, should the change never be seen


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind (PostgreSQL's looked up only when its turn comes)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'load.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    migrate(url)
    return url


async def test_leads_flowing_while_the_file_changes_are_each_decided_by_exactly_one_version(
    database_url: str, rules: Path, clock: Clock
) -> None:
    db = open_database(database_url)
    app = bootstrap(
        settings_on(rules, database_url),
        db=db,
        policy=parse_policy(TRIO_POLICY, source=str(rules)),
        clock=clock,
    )
    submitted: list[str] = []
    before_switch: list[set[str]] = []  # the leads posted before the switch, once it happened
    app.live.on_switch(lambda _old, _new: before_switch.append(set(submitted)))
    http = TestClient(TestServer(build_http_app(app, metrics=Metrics(), watch_policy=True)))
    await http.start_server()
    answers: list[int] = []

    def more() -> bool:
        after = len(submitted) - len(before_switch[0]) if before_switch else 0
        return after < AFTER and len(submitted) < MOST

    async def poster() -> None:
        while more():
            lead_id = f"L-{len(submitted)}"
            submitted.append(lead_id)
            body = as_body({"id": lead_id, "company": "Acme"})
            headers = signed(body, at=clock.timestamp())
            response = await http.post("/leads", data=body, headers=headers)
            answers.append(response.status)
            if len(answers) == BEFORE:
                save(rules, TURNED_POLICY)

    try:
        await asyncio.gather(*(poster() for _ in range(POSTERS)))
    finally:
        await http.close()
        await app.uow.aclose()
        stored = await stored_decisions(db)
        await db.dispose()

    assert len(before_switch) == 1, "the file change was not seen while leads flowed"
    assert answers == [201] * len(submitted)  # none lost
    assert sorted(stored) == sorted(submitted)
    versions = {
        version_of(TRIO_POLICY): "Everyone",
        version_of(TURNED_POLICY): "Everyone since the change",
    }
    for lead_id, (lead_version, decision) in stored.items():
        decision_version, rule = decision  # its one decision (`stored_decisions` checks)
        assert decision_version == lead_version and versions[decision_version] == rule
        if lead_id not in before_switch[0]:
            assert decision_version == version_of(TURNED_POLICY), lead_id
    made_by = Counter(version for _lead, (version, _rule) in stored.values())
    assert made_by[version_of(TRIO_POLICY)] >= BEFORE
    assert made_by[version_of(TURNED_POLICY)] >= AFTER


Stored = dict[str, tuple[str | None, tuple[str | None, str | None]]]


async def stored_decisions(db: Database) -> Stored:
    """Each lead's version, with that of its one decision and the decision's rule."""
    async with db.reading() as session:
        rows = (
            await session.execute(
                select(
                    col(LeadRow.external_id),
                    col(LeadRow.policy_version),
                    col(DecisionRow.policy_version),
                    col(DecisionRow.rule),
                ).join(DecisionRow, col(DecisionRow.lead_id) == col(LeadRow.id))
            )
        ).all()
    found: Stored = {}
    for external_id, lead_version, decision_version, rule in rows:
        assert external_id not in found, f"{external_id} has two decisions"
        found[external_id] = (lead_version, (decision_version, rule))
    return found


REPLICA_POLL_S = 0.5


async def test_policy_activate_reaches_every_replica_on_postgresql_within_its_poll(
    postgres_url: str, rules: Path, tmp_path: Path
) -> None:
    migrate(postgres_url)
    replicas = []
    for _ in range(2):
        db = open_database(postgres_url)
        app = bootstrap(
            settings_on(rules, postgres_url),
            db=db,
            policy=parse_policy(TRIO_POLICY, source=str(rules)),
        )
        watch = PolicyWatch(app.live, app.uow, rules, every_s=REPLICA_POLL_S, runner="host:1")
        await watch.start()
        replicas.append((app, asyncio.create_task(watch.run())))
    duo = tmp_path / "duo.yml"
    duo.write_text(DUO_POLICY, encoding="utf-8")
    try:
        command = await asyncio.create_subprocess_exec(
            str(LEADROUTER),
            "policy",
            "activate",
            str(duo),
            "--by",
            "maria",
            env={**os.environ, "DATABASE_URL": postgres_url, "LEADROUTER_RULES": str(rules)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await command.communicate()
        activated_at = time.monotonic()
        assert command.returncode == 0, output.decode()
        assert f"version {short_version(version_of(DUO_POLICY))} activated" in output.decode()
        for app, _task in replicas:
            await until(lambda app=app: app.policy.version == version_of(DUO_POLICY))
        assert time.monotonic() - activated_at < REPLICA_POLL_S + 1.0  # its poll, and the look
    finally:
        for app, task in replicas:
            task.cancel()
            await app.uow.aclose()
            await app.db.dispose()


async def test_a_saved_file_the_database_could_not_take_is_read_again_at_the_next_look(
    app: App, rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = watch_of(app)
    await watch.start()
    save(rules, DUO_POLICY)
    working = app.uow.db
    app.uow.db = open_database("sqlite+aiosqlite:////nonexistent/folder/leads.db")
    try:
        with pytest.raises(OperationalError):  # unable to open database file
            await watch.look()
    finally:
        await app.uow.db.dispose()
        app.uow.db = working

    await watch.look()

    assert app.policy.version == version_of(DUO_POLICY)
