"""A throwaway PostgreSQL server for the test suite, run from the installed binaries.

One server per test session, in a temporary directory, listening on 127.0.0.1 only, with trust
authentication and durability switched off (a crash loses nothing a test needs). Each test that
asks for PostgreSQL gets a database of its own on it.

PostgreSQL refuses to run as root, and CI runs as root: there the server runs as `nobody`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

REQUIRED_BINARIES = ("initdb", "pg_ctl")
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
STARTS_BEFORE_GIVING_UP = 3  # another process may take the free port we picked before we bind it

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresDidNotStart(RuntimeError):
    pass


def missing_binaries() -> list[str]:
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


def _binary(name: str) -> str:
    """The absolute path, so that the user we switch to runs the very binary found on our PATH."""
    path = shutil.which(name)
    if path is None:
        raise PostgresDidNotStart(f"{name} is not on PATH")
    return path


@dataclass
class PostgresServer:
    """A running server; `stop()` it (any number of times) when done."""

    directory: Path
    port: int
    _as_user: list[str]
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _running: bool = True

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=10
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close(timeout=10)
        return name

    async def drop_database(self, name: str) -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=10
        )
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close(timeout=10)

    def restart(self) -> None:
        """Stop the server (every connection cut, as a crash or a failover cuts them; but
        cleanly, so what was committed is kept: these servers commit without waiting for the
        disk) and start it again on the same port and data."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server as `restart` does, and leave it stopped until `resume`."""
        _stop(self._as_user, self.data, mode="fast")

    def resume(self) -> None:
        log = self.directory / "server.log"
        if not _pg_ctl_start(self._as_user, self.data, log, self.directory, self.port):
            raise PostgresDidNotStart(f"PostgreSQL did not start again; its log:\n{_read(log)}")

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        try:
            _stop(self._as_user, self.data)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb a fresh cluster and start it; PostgresDidNotStart (with the log) if it will not."""
    as_user = _unprivileged_prefix()
    directory = Path(tempfile.mkdtemp(prefix="leadrouter-pg-"))
    try:
        if as_user:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(directory, user.pw_uid, user.pw_gid)
        data = directory / "data"
        initdb = _run(
            [
                *as_user,
                _binary("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=START_TIMEOUT_S,
        )
        if initdb.returncode != 0:
            raise PostgresDidNotStart(f"initdb failed:\n{initdb.stdout}")
        log = directory / "server.log"
        for _ in range(STARTS_BEFORE_GIVING_UP):
            port = _free_port()
            try:
                if _pg_ctl_start(as_user, data, log, directory, port):
                    return PostgresServer(directory, port, as_user)
            except subprocess.TimeoutExpired:
                pass
            if "could not bind" not in _read(log):
                break
        raise PostgresDidNotStart(f"PostgreSQL did not start; its log:\n{_read(log)}")
    except BaseException:
        if (directory / "data" / "postmaster.pid").exists():  # half started: stop it
            with contextlib.suppress(Exception):
                _stop(as_user, directory / "data")
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _pg_ctl_start(as_user: list[str], data: Path, log: Path, sockets: Path, port: int) -> bool:
    settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": str(sockets)}
    options = " ".join(f"-c {key}={value}" for key, value in settings.items())
    started = _run(
        [
            *as_user,
            _binary("pg_ctl"),
            "start",
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
        ],
        timeout=START_TIMEOUT_S + 5,
    )
    return started.returncode == 0


def _stop(as_user: list[str], data: Path, *, mode: str = "immediate") -> None:
    _run(
        [
            *as_user,
            _binary("pg_ctl"),
            "stop",
            "-D",
            str(data),
            "-m",
            mode,
            "-w",
            "-t",
            str(STOP_TIMEOUT_S),
        ],
        timeout=STOP_TIMEOUT_S + 5,
    )


def _unprivileged_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise PostgresDidNotStart("running as root, and `runuser` is not there to drop to nobody")
    return [runuser, "-u", UNPRIVILEGED_USER, "--"]


def _run(command: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    # The server pg_ctl starts writes to its -l log, not to our pipe, so `run` returns when
    # pg_ctl does rather than when the server ends.
    return subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
