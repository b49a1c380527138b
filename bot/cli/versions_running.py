"""What the policy version commands run (`bot.cli.versions`), with the modules they need imported at
the top: this module itself is imported only once one of those commands runs."""

from __future__ import annotations

import string
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.common import CliError, first_line
from bot.cli.running import existing, upgrade
from bot.policy_file import (
    PolicyFileMissing,
    holds_its_candidates,
    read_policy_source,
    read_policy_text,
    write_policy_text,
)
from bot.service import experiments
from bot.service.errors import ServiceError
from bot.service.experiments import Ended
from bot.service.policies import (
    SHORTEST_PREFIX,
    Activated,
    Activation,
    Leaving,
    PolicyActivated,
    StoredPolicy,
    activate_policy,
    find_policy_version,
    policy_history,
    unclaimed_offers_leaving,
)
from bot.service.unit_of_work import UnitOfWork
from bot.settings import Settings
from routing.policy import Policy
from routing.policy_bundle import bundle
from routing.policy_version import short_version
from storage.db import open_database

T = TypeVar("T")


async def history(settings: Settings, *, limit: int) -> list[PolicyActivated]:
    return await _with_database(
        settings, lambda uow: policy_history(uow, limit=limit), reads_only=True
    )


async def show(settings: Settings, version: str) -> StoredPolicy:
    return await _with_database(
        settings, lambda uow: find_policy_version(uow, version), reads_only=True
    )


async def activate(settings: Settings, file: Path, *, by: str) -> tuple[Activated, list[Leaving]]:
    """The activation, and the reps it leaves out who hold unclaimed offers, each with how
    many (read just before). PolicyError, with every problem, for a file that fails the
    checks."""
    try:
        text = read_policy_text(file)
    except PolicyFileMissing:
        stored = await _stored_version_named(settings, str(file))
        if stored is None:
            raise CliError(f"{file}: no such policy file") from None
        # A rollback typed as in Slack: the file a server starts on must hold it too.
        version, rules = short_version(stored.version), settings.rules
        raise CliError(
            f"{file} is a stored policy version, not a file: to serve it again, `leadrouter "
            f"policy show {version} > {rules}`, then `leadrouter policy activate {rules}` (or "
            f"`/routing policy activate {version}` in Slack)"
        ) from None

    async def use(uow: UnitOfWork) -> tuple[Activated, list[Leaving]]:
        leaving = await unclaimed_offers_leaving(uow, text)
        activated = await activate_policy(
            uow, text, source=str(file), how=Activation.COMMAND, by=by
        )
        return activated, leaving if activated.activated else []

    return await _with_database(settings, use)


async def serving_unless(settings: Settings, file: Path) -> StoredPolicy | None:
    """The version serving, when the policy file is not it (None when it is, or none is)."""
    text, _ = read_policy_source(file, missing_ok=True)
    return await _with_database(settings, lambda uow: experiments.serving_unless_it_is(uow, text))


async def _stored_version_named(settings: Settings, name: str) -> StoredPolicy | None:
    """The stored version `name` is the start of, when it looks like one and is stored."""
    if len(name) < SHORTEST_PREFIX or not set(name.lower()) <= set(string.hexdigits.lower()):
        return None
    try:
        return await _with_database(settings, lambda uow: find_policy_version(uow, name))
    except CliError:  # none, or several: the file it names is missing, as said
        return None


async def end_experiment(
    settings: Settings, file: Path, name: str, *, promote: bool, by: str
) -> Ended:
    """NoSuchExperiment (as a CliError) or PolicyError, and nothing changes; else the new
    version activated, then written to `file`."""
    try:
        # Stopping an experiment whose candidate file is gone is what its admin wants to do.
        text, candidates = read_policy_source(file, missing_ok=not promote)
        # A stored version written back to the file holds its candidates: so does the edit.
        was_bundle = holds_its_candidates(file)
    except PolicyFileMissing:
        raise CliError(f"{file}: no such policy file") from None
    ended = await _with_database(
        settings,
        lambda uow: experiments.end_experiment(
            uow, text, name, promote=promote, source=str(file), by=by, candidates=candidates
        ),
    )
    try:
        write_policy_text(file, bundle(ended.text, candidates) if was_bundle else ended.text)
    except OSError as exc:
        version = short_version(ended.activated.policy.version)
        raise CliError(
            f"version {version} is active, but {file} could not be written ({exc}): "
            f"`leadrouter policy show {version}` prints its text to copy there"
        ) from None
    return ended


async def _with_database(
    settings: Settings, use: Callable[[UnitOfWork], Awaitable[T]], *, reads_only: bool = False
) -> T:
    """`use` on the database, migrated first. `reads_only`: a SQLite file that is not there is
    an error, not a new empty database (a mistyped path would read as one without versions)."""
    if reads_only:
        existing(settings.database_url)
    upgrade(settings.database_url)
    db = open_database(settings.database_url)
    try:
        return await use(UnitOfWork(db=db, policy=_routes_nothing))
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"the database failed: {first_line(exc)}") from None
    finally:
        await db.dispose()


def _routes_nothing() -> Policy:
    raise AssertionError("the policy version commands route nothing")
