"""The backups docs/operations.md describes, done as it says: SQLite copied online (VACUUM INTO, the
sqlite3 shell's .backup) while `leadrouter serve` writes to it, and restored by serving the copy;
PostgreSQL dumped with pg_dump and restored with pg_restore, at the same migration."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.service.intake import intake_many
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from routing.policy import parse_policy
from storage import migrate
from storage.db import open_database
from storage.models import LeadRow
from tests.bot.test_serve import Server, Servers, post, terminate, wait_until_ready
from tests.bot.webhook import row_counts
from tests.ops.test_readme import OPERATIONS, section
from tests.pg import PostgresServer

BATCHES = 40
PER_BATCH = 50


@pytest.fixture
def servers(tmp_path: Path) -> Servers:
    return Servers(tmp_path)


async def send_leads(server: Server) -> int:
    async with aiohttp.ClientSession() as session:
        for batch in range(BATCHES):
            leads = [
                {"id": f"B{batch}-{n}", "email": f"ops@firm{batch}-{n}.de"}
                for n in range(PER_BATCH)
            ]
            status, _ = await post(session, server, {"leads": leads})
            assert status == 200
    return BATCHES * PER_BATCH


async def run(argv: list[str]) -> None:
    await asyncio.to_thread(subprocess.run, argv, check=True, timeout=120)


@contextlib.asynccontextmanager
async def asyncpg_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(libpq(url))
    try:
        yield connection
    finally:
        await connection.close()


def vacuum_into(database: Path, backup: Path) -> None:
    """The documented copy without the sqlite3 shell (the image has none): Python's sqlite3."""
    with sqlite3.connect(database) as connection:
        connection.execute("VACUUM INTO ?", (str(backup),))


def sound(backup: Path) -> int:
    """The copy's lead count, once SQLite has checked the whole file."""
    with sqlite3.connect(backup) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count: int = connection.execute("SELECT count(*) FROM leads").fetchone()[0]
        return count


async def test_a_sqlite_database_is_copied_whole_while_serve_writes_and_the_copy_serves(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    server = servers.start(database)
    try:
        await wait_until_ready(server)
        sending = asyncio.create_task(send_leads(server))
        copies = []
        while not sending.done():  # copies taken in the middle of the writes
            copy = tmp_path / f"during-{len(copies)}.db"
            await asyncio.to_thread(vacuum_into, database, copy)
            copies.append(copy)
        sent = await sending
        counts = [sound(copy) for copy in copies]
        assert all(0 <= count <= sent for count in counts)
        assert any(0 < count < sent for count in counts), counts  # one was mid-stream
        final = tmp_path / "final.db"
        await asyncio.to_thread(vacuum_into, database, final)
        assert sound(final) == sent
        shell = shutil.which("sqlite3")
        if shell is not None:
            dotted = tmp_path / "dotted.db"
            await run([shell, "-cmd", ".timeout 5000", str(database), f".backup '{dotted}'"])
            assert sound(dotted) == sent
        assert terminate(server) == 0, server.output()
    finally:
        servers.stop_all()

    # Restored: serve the copy, and it knows every lead it held.
    restored = servers.start(final)
    try:
        await wait_until_ready(restored)
        async with aiohttp.ClientSession() as session:
            status, body = await post(session, restored, {"id": "B0-0", "email": "ops@firm0-0.de"})
        assert (status, body["id"]) == (200, "B0-0")  # a repeat: it was in the backup
        assert terminate(restored) == 0
    finally:
        servers.stop_all()
    assert row_counts(final)["leads"] == sent


POLICY = """\
reps:
  - {id: ann, name: Ann Archer}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_a_postgresql_database_dumped_with_pg_dump_restores_with_pg_restore(
    postgres_url: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if pg_dump is None or pg_restore is None:
        pytest.skip("pg_dump and pg_restore are not installed here (PostgreSQL's client tools)")
    await asyncio.to_thread(migrate.upgrade, postgres_url)
    db = open_database(postgres_url)
    uow = UnitOfWork(db=db, policy=lambda: parse_policy(POLICY))
    try:
        await intake_many(uow, [parse_lead({"id": f"P-{n}"}) for n in range(25)])
    finally:
        await uow.aclose()
        await db.dispose()

    dump = tmp_path / "leadrouter.dump"
    await run([pg_dump, "--format=custom", f"--file={dump}", libpq(postgres_url)])
    name = await postgres_server.create_database()
    target = postgres_server.url(name)
    try:
        restore = [pg_restore, "--clean", "--if-exists", "--no-owner"]
        await run([*restore, f"--dbname={libpq(target)}", str(dump)])
        assert await asyncio.to_thread(migrate.current, target) == await asyncio.to_thread(
            migrate.current, postgres_url
        )
        restored = open_database(target)
        try:
            async with restored.reading() as session:
                count = (await session.execute(select(func.count()).select_from(LeadRow))).scalar()
        finally:
            await restored.dispose()
        assert count == 25
    finally:
        await postgres_server.drop_database(name)


def test_the_containers_backup_steps_as_written_work_day_after_day(tmp_path: Path) -> None:
    """docs/operations.md's steps for the image (no sqlite3 shell), run here with the volume as
    a folder and `docker exec`/`docker cp` as what they do: the copy leaves the container, and
    the next day's runs too (VACUUM INTO never writes over a file)."""
    block = section("## Backups", OPERATIONS)
    steps = [line for line in block.splitlines() if line.startswith(("docker exec", "docker cp"))]
    assert steps, "the Backups section has no steps for the container"
    volume, host = tmp_path / "data", tmp_path / "host"
    volume.mkdir()
    host.mkdir()
    with sqlite3.connect(volume / "leadrouter.db") as connection:
        connection.execute("CREATE TABLE leads (id TEXT)")
        connection.execute("INSERT INTO leads VALUES ('L-1')")
    connection.close()
    for day in ("2026-11-17", "2026-11-18"):
        for step in steps:
            for part in step.split(" && "):
                command = shlex.split(part.replace("$(date +%F)", day))
                if command[:2] == ["docker", "exec"]:
                    command = [sys.executable if c == "python" else c for c in command[3:]]
                elif command[:2] == ["docker", "cp"]:
                    command = ["cp", command[2].split(":", 1)[1], command[3]]
                else:
                    pytest.fail(f"a step the test cannot follow: {part}")
                command = [c.replace("/data/", f"{volume}/") for c in command]
                done = subprocess.run(command, cwd=host, capture_output=True, text=True)
                assert done.returncode == 0, (part, done.stderr)
        with sqlite3.connect(host / f"leadrouter-{day}.db") as copy:
            assert copy.execute("SELECT id FROM leads").fetchall() == [("L-1",)]
        copy.close()


async def test_an_older_postgresql_backup_restored_as_written_over_a_newer_database_migrates(
    postgres_url: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The page's restore, into the server the replicas use, of a backup taken before an
    upgrade (tables added since): "a newer leadrouter migrates it at start" holds there too."""
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if pg_dump is None or pg_restore is None:
        pytest.skip("pg_dump and pg_restore are not installed here (PostgreSQL's client tools)")
    (line,) = [row for row in section("## Backups", OPERATIONS).splitlines() if "pg_restore" in row]
    written = shlex.split(line)
    options = written[written.index("pg_restore") + 1 : written.index("<")]
    database = make_url(postgres_url).database
    await asyncio.to_thread(migrate.upgrade, postgres_url, "0010")
    async with asyncpg_connection(postgres_url) as connection:
        await connection.execute("CREATE TABLE kept_by_the_backup (id int)")
    dump = tmp_path / "before-the-upgrade.dump"
    await run([pg_dump, "--format=custom", f"--file={dump}", libpq(postgres_url)])
    await asyncio.to_thread(migrate.upgrade, postgres_url)  # the upgrade, then the restore

    command = [pg_restore]
    while options:
        option = options.pop(0)
        if option == "-U":
            options.pop(0)  # the test server's user is in the URL
        elif option == "-d":
            name = {"leadrouter": database}.get(options.pop(0), "postgres")
            command.append(f"--dbname={libpq(postgres_server.url(name))}")
        else:
            command.append(option)
    with dump.open("rb") as stdin:
        done = await asyncio.to_thread(subprocess.run, command, stdin=stdin, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()

    await asyncio.to_thread(migrate.upgrade, postgres_url)  # what serve does at start
    assert await asyncio.to_thread(migrate.current, postgres_url) == migrate.head()
    async with asyncpg_connection(postgres_url) as connection:  # the backup's, restored
        assert await connection.fetchval("SELECT to_regclass('kept_by_the_backup')") is not None


def test_the_containers_restore_as_written_puts_the_copy_in_place_with_no_stale_wal(
    tmp_path: Path,
) -> None:
    """The page's restore for the image, run here with the volume and the folder mounted at
    /backup as folders: the copy replaces the database, and a `-wal` left by a process that was
    killed is gone rather than read into it."""
    block = section("## Backups", OPERATIONS)
    (line,) = [row for row in block.splitlines() if row.startswith("docker run --rm")]
    written = shlex.split(line)
    script = written[written.index("-c") + 1]
    copy_name = re.search(r"/backup/(\S+)", script)
    assert copy_name is not None, script
    volume, here = tmp_path / "data", tmp_path / "here"
    volume.mkdir()
    here.mkdir()
    for folder, lead in ((volume, "L-new"), (here, "L-backed-up")):
        database = folder / ("leadrouter.db" if folder is volume else copy_name.group(1))
        with closing(sqlite3.connect(database)) as connection:
            connection.execute("CREATE TABLE leads (id TEXT)")
            connection.execute("INSERT INTO leads VALUES (?)", (lead,))
            connection.commit()
    (volume / "leadrouter.db-wal").write_bytes(b"left by a process that was killed")
    (volume / "leadrouter.db-shm").write_bytes(b"")

    script = script.replace("/data/", f"{volume}/").replace("/backup/", f"{here}/")
    subprocess.run(["sh", "-c", script], check=True, timeout=30)

    assert sorted(path.name for path in volume.iterdir()) == ["leadrouter.db"]
    with closing(sqlite3.connect(volume / "leadrouter.db")) as connection:
        assert connection.execute("SELECT id FROM leads").fetchall() == [("L-backed-up",)]
