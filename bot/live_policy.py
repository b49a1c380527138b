"""The policy a server serves, changed while it runs, on every replica, without a restart.

    live = LivePolicy(policy)          # what every part reads: `live.current()`
    watch = PolicyWatch(live, uow, path, every_s=2.0, runner="host:pid")
    await watch.start()                # the file activated if it is not the active version
    asyncio.create_task(watch.run())   # then a look every `every_s`, or at once on `wake()`

Each look reads two things. The policy file: when it was saved since the last look (or on SIGHUP,
`wake`), its text is checked and activated (`bot.service.policies`); a file that fails the checks
is refused, its problems logged and sent to the managers once, and the version serving goes on.
The database: when another replica, or `leadrouter policy activate`, made another version the
active one, this replica switches to it. Either way a switch moves on the open offers of reps the
new policy no longer has. Rotations, loads and absences are stored by team and rep id, so they
carry over to the new version as they are.

A poll rather than PostgreSQL's LISTEN/NOTIFY: the question is one row by its primary key every
few seconds, the same on SQLite and PostgreSQL, and a poll would be needed anyway to catch what
a listener misses while its connection is down. A policy changes a few times a week; a switch
within seconds of it is soon enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from bot.policy_file import read_policy_text
from bot.service.policies import (
    Activation,
    UnknownVersion,
    activate_policy,
    active_version,
    move_from_departed,
    refuse_policy,
    stored_policy_of,
)
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy, PolicyError
from routing.policy_version import short_version, version_of

log = logging.getLogger(__name__)

# A file saved since the last look is read once it has stayed the same this long: an editor or a
# copy still writing it would otherwise be read half-written, and refused.
SETTLE_S = 0.25

Switched = Callable[[Policy, Policy], None]  # (the policy served until now, the one from now on)


class LivePolicy:
    """The policy serving now. `switch` replaces it at once for everything that reads `current`;
    a use case reads it once per transaction, so each decision is made by exactly one version."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._listeners: list[Switched] = []

    def current(self) -> Policy:
        return self._policy

    def on_switch(self, listener: Switched) -> Callable[[], None]:
        """Call `listener` after each switch; returns what stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def switch(self, policy: Policy) -> Policy:
        """Serve `policy` from now on; returns the one served until now."""
        before, self._policy = self._policy, policy
        for listener in list(self._listeners):
            listener(before, policy)
        return before


class PolicyWatch:
    """Looks at the policy file and at the active version, and switches `live` (see above)."""

    def __init__(
        self, live: LivePolicy, uow: UnitOfWork, path: Path, *, every_s: float, runner: str
    ) -> None:
        self.live = live
        self.uow = uow
        self.path = path
        self.every_s = every_s
        self.runner = runner  # who activates, in the history: this replica
        self._woken = asyncio.Event()
        self._seen: tuple[int, int, int] | None = None  # the file as last read: mtime, size, inode
        self._unusable: set[str] = set()  # active versions this release cannot use (said once)
        self._missing = False  # the file was not there at the last look (said once)
        self._failing = False  # the last look failed (said once)

    async def start(self) -> None:
        """At start: the file becomes the active version if it is not (the admin who restarts
        a server on a file means it), and offers of reps it does not have move on."""
        text = self._read()
        try:
            if text is not None:
                await self._activate(text, Activation.START)
            await self._look_at_database()
        except BaseException:
            self._seen = None  # the next look reads the file again, as if saved since
            raise
        await move_from_departed(self.uow, self.live.current())

    def wake(self) -> None:
        """Read the file now, whether or not it looks saved since (SIGHUP)."""
        self._woken.set()

    async def run(self) -> None:
        """Look every `every_s` seconds, and at once when woken, until cancelled."""
        while True:
            try:
                async with asyncio.timeout(self.every_s):
                    await self._woken.wait()
            except TimeoutError:
                pass
            asked = self._woken.is_set()
            self._woken.clear()
            try:
                await self.look(asked=asked)
            except Exception:
                # Said once while it keeps failing (the database down, say), not every look.
                if not self._failing:
                    log.exception("policy: the look failed; trying again every %g s", self.every_s)
                self._failing = True
            else:
                if self._failing:
                    log.info("policy: looking works again")
                self._failing = False

    async def look(self, *, asked: bool = False) -> None:
        """One look at the file (`asked`: read it even if it does not look saved since), then
        at the database."""
        await self._look_at_file(asked=asked)
        await self._look_at_database()

    async def _look_at_file(self, *, asked: bool) -> None:
        seen = self._stat(asked=asked)
        if seen is None or (seen == self._seen and not asked):
            return
        if not asked:
            await asyncio.sleep(SETTLE_S)
            if self._stat() != seen:
                return  # still being written: the next look reads it
        text = self._read()
        if text is None:
            return
        if version_of(text) == self.live.current().version:
            if asked:
                log.info("policy: %s is the version serving already", self.path)
            return
        try:
            await self._activate(text, Activation.SIGHUP if asked else Activation.FILE)
        except BaseException:
            self._seen = None  # not done (the database failed): the next look reads it again
            raise

    async def _look_at_database(self) -> None:
        active = await active_version(self.uow)
        if active is None or active == self.live.current().version or active in self._unusable:
            return
        try:
            policy = await stored_policy_of(self.uow, active)
        except (PolicyError, UnknownVersion) as exc:
            self._unusable.add(active)
            problems = exc.report() if isinstance(exc, PolicyError) else str(exc)
            log.error(
                "policy: version %s is active but this release cannot serve it; version %s "
                "goes on here:\n%s",
                short_version(active),
                short_version(self.live.current().version),
                problems,
            )
            return
        await self._serve(policy, f"activated elsewhere; was {self._serving()}")

    async def _activate(self, text: str, how: Activation) -> None:
        try:
            activated = await activate_policy(
                self.uow, text, source=str(self.path), how=how, by=self.runner
            )
        except PolicyError as error:
            errors = sum(1 for problem in error.problems if problem.severity == "error")
            log.error(
                "policy: %s refused (%s): %d error%s; version %s goes on serving:\n%s",
                self.path,
                how.value,
                errors,
                "" if errors == 1 else "s",
                self._serving(),
                error.report(),
            )
            await refuse_policy(self.uow, error, text, serving=self.live.current())
            return
        if activated.activated:
            log.info(
                "policy: version %s of %s activated (%s; %s)",
                short_version(activated.policy.version),
                self.path,
                how.value,
                f"was {short_version(activated.previous)}" if activated.previous else "the first",
            )
        await self._serve(activated.policy, how.value)

    async def _serve(self, policy: Policy, why: str) -> None:
        if policy.version == self.live.current().version:
            return
        before = self.live.switch(policy)
        log.info("policy: serving version %s (%s)", short_version(policy.version), why)
        for warning in policy.warnings:
            log.warning("%s", warning.format(policy.source))
        await move_from_departed(self.uow, policy, before=before)

    def _serving(self) -> str:
        return short_version(self.live.current().version)

    def _stat(self, *, asked: bool = False) -> tuple[int, int, int] | None:
        """The file's mtime, size and inode; None when it cannot be looked at, said once while
        it stays so, and again each time someone asks for it to be read (SIGHUP)."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            if asked:
                log.warning("policy: SIGHUP: cannot look at %s (%s); serving on", self.path, exc)
            elif not self._missing:
                log.warning("policy: cannot look at %s (%s); serving on", self.path, exc)
            self._missing = True
            return None
        self._missing = False
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _read(self) -> str | None:
        """The file's text; None (said once per save) when it cannot be read."""
        self._seen = self._stat()
        try:
            return read_policy_text(self.path)
        except PolicyError as exc:
            log.warning("policy: %s; serving on", exc.report())
            return None
