"""A long replay on two cores: a second process matches the window's leads to accounts while
this one routes them (`bot.service.replay`).

Routing a window's leads again is sequential: each decision depends on the state the ones
before it left. Matching a lead to an account depends on nothing of that state, and is a third
of the work. So a second process, started here, reads the accounts (and indexes them) and the
window's leads in the order they arrived, and sends back each lead's account lookup
(`routing.lookups_in_advance`), a chunk at a time through a pipe, while this process reads the
same leads and routes them, chunk by chunk. Only the lookups cross the pipe: sending the leads
themselves would cost more to unpickle than to read them here again.

The second process reads a moment later than this one. Its chunks must list this one's leads,
in order; once one does not (a lead deleted, or stored, in between), or it fails, this process
stops it and matches the rest itself, against the accounts it read (the same answers, later).
Worth it only for a window of many leads: the second process takes about a second to start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import struct
import sys
from contextlib import aclosing
from datetime import datetime
from typing import IO, Any

from routing.accounts import AccountIndex
from routing.lookups_in_advance import Packed, look_up, pack
from routing.model import Lead
from storage import history
from storage import repository as repo
from storage.db import open_database

log = logging.getLogger("bot.service")

Chunk = list[tuple[str, Packed | None]]  # (lead id, its lookup; None: no accounts)

# Each message on the pipe: its length (8 bytes, big-endian), then a pickled (kind, value).
_LENGTH = struct.Struct(">Q")
# What this process reads ahead of the router from the pipe; beyond it the second process waits.
_PIPE_LIMIT = 2**20
# How long a message may take before the second process is given up for stuck: the first comes
# after its start and the accounts indexed (seconds for a million), the next a chunk later.
FIRST_WAIT_S = 120.0
NEXT_WAIT_S = 60.0


class ReadingFailed(Exception):
    """The reading process stopped with an error (its first line is the message)."""


class ReadingStage:
    """The second process of one replay.

        async with ReadingStage(url, since, until, threshold=90) as stage:
            for leads in chunks:        # the window's leads, read here, a chunk at a time
                lookups = await stage.lookups_for([stored.lead.id for stored in leads])

    The process is this program run again (`python -m bot.service.replay_stage`), told what to
    read on its standard input (the database's URL among it: never on its command line, which
    anyone on the machine may list), answering on its standard output; its errors go to the
    standard error it shares with this one.
    """

    def __init__(self, url: str, since: datetime, until: datetime, *, threshold: float) -> None:
        self._asked = {"url": url, "since": since, "until": until, "threshold": threshold}
        self._process: asyncio.subprocess.Process | None = None
        self._out_of_step = False
        self._first = True

    async def __aenter__(self) -> ReadingStage:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.service.replay_stage",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_PIPE_LIMIT,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(pickle.dumps(self._asked))
        self._process.stdin.close()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        # Stopped early (an error, or a reader of `--json` gone): the reader may be blocked on
        # a full pipe, or still reading; it is told to stop, not waited for.
        process = self._process
        if process is not None:
            if process.returncode is None:
                process.kill()
            await process.wait()

    async def lookups_for(self, lead_ids: list[str]) -> list[Packed | None] | None:
        """The lookups made for the next chunk of leads, which must be `lead_ids` in order;
        None once the reading process is out of step (it read the window a moment later: a lead
        deleted or stored in between) or has stopped: the caller matches the rest itself."""
        if self._out_of_step:
            return None
        wait = FIRST_WAIT_S if self._first else NEXT_WAIT_S
        self._first = False
        try:
            kind, value = await asyncio.wait_for(self._next_message(), wait)
        except (ReadingFailed, TimeoutError) as exc:
            why = exc if isinstance(exc, ReadingFailed) else f"nothing for {wait:g} s"
            log.warning("replay: the second process stopped (%s); matching here instead", why)
            self._give_up()
            return None
        if kind != "lookups" or [lead_id for lead_id, _ in value] != lead_ids:
            self._give_up()
            return None
        return [looked for _, looked in value]

    def _give_up(self) -> None:
        self._out_of_step = True
        if self._process is not None and self._process.returncode is None:
            self._process.kill()

    async def _next_message(self) -> tuple[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        try:
            (length,) = _LENGTH.unpack(await self._process.stdout.readexactly(_LENGTH.size))
            kind, value = pickle.loads(await self._process.stdout.readexactly(length))
        except asyncio.IncompleteReadError:
            code = await self._process.wait()
            raise ReadingFailed(f"it ended (exit code {code})") from None
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError) as exc:
            raise ReadingFailed(f"it sent what cannot be read ({type(exc).__name__})") from None
        if kind == "error":
            raise ReadingFailed(value)
        return kind, value


def main() -> None:
    """The reading process: what to read from standard input, the messages to standard output."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Nothing else may write to the pipe: Python's prints and whatever writes to descriptor 1.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    asked = pickle.load(sys.stdin.buffer)
    try:
        asyncio.run(_read_and_match(out=out, **asked))
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        _send(out, "error", f"{type(exc).__name__}: {lines[0] if lines else ''}")
    out.close()


def _send(out: IO[bytes], kind: str, value: Any) -> None:
    message = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(message)))
    out.write(message)
    out.flush()


async def _read_and_match(
    *, url: str, since: datetime, until: datetime, threshold: float, out: IO[bytes]
) -> None:
    # What it builds lives until it ends, or is sent and dropped: nothing for the collector.
    gc.disable()
    db = open_database(url, pool_size=1)
    try:
        async with db.reading() as session:
            accounts = await repo.all_accounts(session=session)
            index = AccountIndex(accounts) if accounts else None
            leads = history.lookup_facts(session=session, since=since, until=until)
            async with aclosing(leads) as chunks:
                async for chunk in chunks:
                    _send(out, "lookups", _matched(chunk, index, threshold))
        _send(out, "end", None)
    finally:
        await db.dispose()


def _matched(leads: list[Lead], index: AccountIndex | None, threshold: float) -> Chunk:
    if index is None:
        return [(lead.id, None) for lead in leads]
    return [(lead.id, pack(look_up(lead, index, threshold=threshold))) for lead in leads]


if __name__ == "__main__":
    main()
