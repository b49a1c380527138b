"""Policy versions: a policy activated (its text kept, and made the version every replica serves)
or refused, which version is active, the history, a version found by the start of its hash, and
the open offers of reps the active policy no longer has moved on to others.

The version is the hash of the policy's text (`routing.policy_version`), so the same file read by
three replicas is one version, activated once. Every decision records the version that made it
(`storage.decisions`).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.service.errors import ServiceError
from bot.service.kinds import REP_LEFT_POLICY
from bot.service.offers import reassign
from bot.service.outbox_items import policy_refused
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import Move
from routing.policy import Policy, PolicyError, parse_policy
from routing.policy_version import short_version, version_of
from storage import repository as repo
from storage.models import MoveReason, OfferStatus, PolicyActivationRow, PolicyVersionRow

log = logging.getLogger("bot.service")

ACTIVATION_TRIES = 5  # a replica activating at the very moment another does looks again
PROBLEMS_KEPT = 4000  # characters of a refused policy's problems told to the managers
SHORTEST_PREFIX = 4  # hex digits a version is looked up by, at least


class Activation(StrEnum):
    """How a version came to be activated."""

    START = "serve at start"
    FILE = "file watch"
    SIGHUP = "SIGHUP"
    COMMAND = "leadrouter policy activate"
    SLACK = "Slack"
    PROMOTE = "leadrouter experiment promote"
    STOP = "leadrouter experiment stop"


class UnknownVersion(ServiceError):
    pass


@dataclass(frozen=True, slots=True)
class Activated:
    policy: Policy
    activated: bool  # False: it was the active version already
    previous: str | None  # the version active before (None: none was)


@dataclass(frozen=True, slots=True)
class PolicyActivated:
    """One activation, as `leadrouter policy history` lists it."""

    version: str
    at: datetime
    how: str
    by: str | None
    source: str
    active: bool  # the latest activation: what every replica serves


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version: str
    text: str
    source: str
    stored_at: datetime
    activations: tuple[PolicyActivated, ...]  # newest first; none for a version never active


async def activate_policy(
    uow: UnitOfWork, text: str, *, source: str, how: Activation, by: str | None
) -> Activated:
    """Check the policy written in `text` and make it the version every replica serves (they
    each switch to it within their poll). PolicyError, with every problem, when it fails the
    checks: nothing is stored and the active version stays."""
    policy = parse_policy(text, source=source)
    now = uow.clock()

    def work(tx: Transaction) -> Activated:
        session = tx.session
        repo.store_policy_version(
            session=session, version=policy.version, text=text, source=source, now=now
        )
        latest = repo.latest_activation(session=session)
        previous = latest.version if latest is not None else None
        if previous == policy.version:
            return Activated(policy, activated=False, previous=previous)
        repo.record_activation(
            session=session,
            version=policy.version,
            replaces=(latest.id or 0) if latest is not None else 0,
            at=now,
            how=how.value,
            by=by,
            source=source,
        )
        return Activated(policy, activated=True, previous=previous)

    for _ in range(ACTIVATION_TRIES - 1):
        try:
            return await uow.retrying(work)
        except repo.ActivatedMeanwhile:
            continue  # the next try reads the activation that won
    return await uow.retrying(work)


async def keep_policy(uow: UnitOfWork, text: str, *, source: str) -> str:
    """Keep the policy written in `text` without activating it (`leadrouter import` decides by
    its own file): every version a decision records can be shown. Returns its version."""
    version = version_of(text)
    now = uow.clock()
    await uow.retrying(
        lambda tx: repo.store_policy_version(
            session=tx.session, version=version, text=text, source=source, now=now
        )
    )
    return version


async def refuse_policy(uow: UnitOfWork, error: PolicyError, text: str, *, serving: Policy) -> int:
    """Tell the managers of `serving` (the policy that goes on) that the policy written in
    `text` failed its checks, with its problems: once per version refused, whichever replicas
    read it and however often. Returns the messages queued here."""
    now = uow.clock()
    problems = error.report()
    if len(problems) > PROBLEMS_KEPT:
        problems = problems[:PROBLEMS_KEPT] + "\n…"
    rows = [
        policy_refused(
            serving,
            manager,
            version=version_of(text),
            source=error.filename,
            problems=problems,
            now=now,
        )
        for manager in sorted(serving.managers)
    ]
    try:
        queued = await uow.write(lambda tx: repo.queue_outbox_once(session=tx.session, rows=rows))
    except repo.AlreadyQueued:
        return 0  # a replica reading the same file at the same moment queued them first
    if queued:
        uow.outbox_written()
    return queued


async def active_version(uow: UnitOfWork) -> str | None:
    """The version every replica is to serve; None until one was activated."""
    async with uow.reading() as session:
        return await repo.active_policy_version(session=session)


async def stored_policy_of(uow: UnitOfWork, version: str) -> Policy:
    """The stored version, compiled. PolicyError when this release cannot use it (a version
    activated by a newer one, during a rolling upgrade); UnknownVersion when it is not stored."""
    async with uow.reading() as session:
        row = await repo.policy_version(session=session, version=version)
    if row is None:
        raise UnknownVersion(f"no policy version {short_version(version)} is stored")
    return parse_policy(row.text, source=row.source)


async def policy_history(uow: UnitOfWork, *, limit: int | None = None) -> list[PolicyActivated]:
    """The activations, newest first: the first is the active version."""
    async with uow.reading() as session:
        rows = await repo.policy_activations(session=session, limit=limit)
    return _activations(rows, active=rows[0][0].id if rows else None)


async def find_policy_version(uow: UnitOfWork, prefix: str) -> StoredPolicy:
    """The stored version whose hash starts with `prefix` (as `leadrouter policy history`
    prints it, or longer). UnknownVersion when none does, or more than one."""
    wanted = prefix.strip().lower()
    if len(wanted) < SHORTEST_PREFIX or not set(wanted) <= set(string.hexdigits.lower()):
        raise UnknownVersion(
            f"{prefix!r} is not a version: give at least {SHORTEST_PREFIX} of its hex digits, "
            "as `leadrouter policy history` prints them"
        )
    async with uow.reading() as session:
        found = await repo.policy_versions_starting(session=session, prefix=wanted)
        if len(found) > 1:
            shown = ", ".join(short_version(row.version) for row in found)
            raise UnknownVersion(
                f"{prefix} is the start of {len(found)} versions ({shown}): give more digits"
            )
        if not found:
            raise UnknownVersion(f"no stored policy version starts with {prefix}")
        (row,) = found
        activations = await repo.policy_activations(session=session, version=row.version)
        latest = await repo.policy_activations(session=session, limit=1)
    active = latest[0][0].id if latest else None
    return _stored(row, _activations(activations, active=active))


@dataclass(frozen=True, slots=True)
class Leaving:
    """A rep a policy leaves out who holds offers not yet claimed."""

    rep: str
    name: str  # as the version serving names them; their id when it does not
    offers: int

    def sentence(self) -> str:
        who = self.rep if self.name == self.rep else f"{self.rep} ({self.name})"
        leads, move = ("lead", "moves") if self.offers == 1 else ("leads", "move")
        return (
            f"{who} is not a rep of it: the {self.offers} {leads} offered to them and not yet "
            f"claimed {move} on to others as the servers switch to it (claimed leads stay theirs)"
        )


async def unclaimed_offers_leaving(uow: UnitOfWork, text: str) -> list[Leaving]:
    """The reps holding offers not yet claimed whom the policy written in `text` does not have,
    each with how many: the offers that move on once it serves (`move_from_departed`). Empty
    for a text that fails the checks, which will not serve."""
    try:
        policy = parse_policy(text)
    except PolicyError:
        return []
    async with uow.reading() as session:
        departed = sorted(await repo.reps_with_unclaimed_offers(session=session) - set(policy.reps))
        counts = {
            rep: len(await repo.unclaimed_offers_of_rep(session=session, rep_id=rep))
            for rep in departed
        }
        active = await repo.active_policy_version(session=session) if departed else None
        stored = await repo.policy_version(session=session, version=active) if active else None
    try:
        serving = parse_policy(stored.text) if stored is not None else None
    except PolicyError:  # a version of a newer release: ids will do
        serving = None
    return [
        Leaving(rep, serving.rep_name(rep) if serving is not None else rep, offers)
        for rep, offers in counts.items()
    ]


async def move_from_departed(
    uow: UnitOfWork, policy: Policy, *, before: Policy | None = None
) -> list[Move]:
    """Move on every unclaimed offer held by a rep `policy` does not have (a rep removed from
    it), each through the same reassignment as a rep going out of office. `before`, the policy
    served until now, names them. Safe on any number of replicas at once: an offer moves once."""
    async with uow.reading() as session:
        departed = sorted(await repo.reps_with_unclaimed_offers(session=session) - set(policy.reps))
        held = [
            (offer.id, rep)
            for rep in departed
            for offer in await repo.unclaimed_offers_of_rep(session=session, rep_id=rep)
            if offer.id is not None
        ]
    moves = []
    for offer_id, rep in held:
        name = before.rep_name(rep) if before is not None else rep
        moved = await reassign(
            uow,
            offer_id,
            because=MoveReason.LEFT_POLICY,
            reason=f"{name} left the routing policy (version {short_version(policy.version)})",
            kind=REP_LEFT_POLICY,
            expected_status=OfferStatus.OFFERED,
        )
        if moved is not None:
            moves.append(moved)
    if moves:
        log.info(
            "%d open lead%s moved on from %s, who left the policy",
            len(moves),
            "" if len(moves) == 1 else "s",
            ", ".join(departed),
        )
    return moves


def _activations(
    rows: Sequence[tuple[PolicyActivationRow, PolicyVersionRow]], *, active: int | None
) -> list[PolicyActivated]:
    return [
        PolicyActivated(
            version=activation.version,
            at=activation.at,
            how=activation.how,
            by=activation.by,
            source=activation.source or stored.source,
            active=activation.id == active,
        )
        for activation, stored in rows
    ]


def _stored(row: PolicyVersionRow, activations: list[PolicyActivated]) -> StoredPolicy:
    return StoredPolicy(row.version, row.text, row.source, row.stored_at, tuple(activations))
