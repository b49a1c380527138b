"""Locks on the named parts of the routing state (`routing.scope`), held until the transaction
ends: PostgreSQL's transaction-level advisory locks. SQLite needs none (its write transactions
never overlap), so `scope_locks` gives None there.

Deadlocks are ruled out by order: a lock is waited for only if it comes after every lock
already held; one before is only tried, and if it is taken, `ScopeBusy` says which scopes the
transaction wanted, so the caller can roll back and start again taking all of them first, in
order. The order puts every team's scope before every rep's (then by key): a transaction waits
for its teams holding no rep, so a rep is held only by a transaction already past its teams,
and the rep a decision finally lands on (not always the one guessed) can be waited for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Result, TextClause, text
from sqlalchemy.orm import Session

_TRY = text("SELECT pg_try_advisory_xact_lock(:key)")
# Every key of the list, one after another in the list's order (a function scan, no sort), as
# long as it takes; and how long that was, in the same trip.
_WAIT = text(
    "SELECT count(*) AS taken,"
    " extract(epoch FROM clock_timestamp() - statement_timestamp()) AS waited"
    " FROM (SELECT pg_advisory_xact_lock(key)"
    " FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS asked(key, n)) AS locked"
)
WAITED_S = 0.001  # a lock that took longer than this to get was held by another transaction


class ScopeBusy(Exception):
    """A scope below one already held is held elsewhere: start again, taking `wanted` first."""

    def __init__(self, wanted: frozenset[str]) -> None:
        super().__init__(f"routing scopes busy: {', '.join(sorted(wanted))}")
        self.wanted = wanted


def _place(scope: str) -> tuple[int, int]:
    """Where a scope's lock comes in the one order all transactions take them in."""
    return (0 if scope.startswith("team:") else 1, lock_key(scope))


def lock_key(scope: str) -> int:
    """A scope's advisory lock key: 64 bits of a hash of its name, the same in every process
    (a collision only makes two scopes wait for each other)."""
    digest = hashlib.blake2b(f"leadrouter:{scope}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ScopeLocks:
    """The scopes one PostgreSQL transaction holds, and how often it waited for one."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.held: set[str] = set()
        self._keys: set[int] = set()
        self._places: set[tuple[int, int]] = set()  # (team 0 or rep 1, key) of each held
        self.waits = 0  # locks that were held elsewhere when asked for
        self.waited_s = 0.0

    def take_first(self, scopes: Iterable[str]) -> None:
        """At the start of a transaction (nothing held yet): every one of `scopes`, waiting
        for each in key order."""
        assert not self._keys, "take_first is for a transaction that holds no scope yet"
        self.take(scopes)

    def take(self, scopes: Iterable[str]) -> frozenset[str]:
        """Hold `scopes` too; returns the ones newly taken. Raises `ScopeBusy` (holding what it
        held) when one ordered before a held one is busy: waiting for it could deadlock."""
        missing = sorted((_place(scope), scope) for scope in set(scopes) - self.held)
        wanted = frozenset(self.held | {scope for _, scope in missing})
        last = max(self._places, default=None)
        in_order: list[int] = []
        for place, _scope in missing:
            key = place[1]
            if key in self._keys or key in in_order:  # another name with the same key
                continue
            if last is not None and place < last:
                if not self._try(key):
                    raise ScopeBusy(wanted)
            else:
                in_order.append(key)
            self._places.add(place)
        if in_order:
            self._wait(in_order)
        self._keys.update(place[1] for place, _ in missing)
        taken = frozenset(scope for _, scope in missing)
        self.held |= taken
        return taken

    def _try(self, key: int) -> bool:
        return bool(self._run(_TRY, {"key": key}).scalar())

    def _wait(self, keys: list[int]) -> None:
        waited = float(self._run(_WAIT, {"keys": keys}).mappings().one()["waited"])
        if waited > WAITED_S:
            self.waits += 1
            self.waited_s += waited

    def _run(self, statement: TextClause, parameters: dict[str, Any]) -> Result[Any]:
        return self.session.execute(statement, parameters)


def scope_locks(session: Session) -> ScopeLocks | None:
    """Locks for the routing scopes of `session`'s transaction, or None where transactions
    never overlap (SQLite)."""
    if session.get_bind().dialect.name == "sqlite":
        return None
    return ScopeLocks(session)
