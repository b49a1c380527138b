"""Experiments ended: one promoted (its candidate becomes the policy) or stopped (the policy
goes on without it), either way as a new policy version every replica switches to.

The text is the policy file's, edited as an admin would (`routing.policy_edits`); the new text
is activated as `leadrouter policy activate` does (`bot.service.policies`), so a version that
fails the checks is refused and nothing changes. A file that is not the version serving is
refused too: the edit of it would also serve, unsaid, whatever else it differs by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.service.errors import ServiceError
from bot.service.policies import (
    Activated,
    Activation,
    StoredPolicy,
    activate_policy,
    active_version,
    find_policy_version,
)
from bot.service.unit_of_work import UnitOfWork
from routing.policy_bundle import bundle, split
from routing.policy_edits import promote_experiment, stop_experiment
from routing.policy_version import short_version


class NoSuchExperiment(ServiceError):
    pass


class NotServing(ServiceError):
    """The policy file is not the version serving: ending an experiment from it would also
    serve whatever else the file differs by."""


@dataclass(frozen=True, slots=True)
class Ended:
    activated: Activated
    text: str  # the policy file's new text (the version's, less any candidate bundled in)


async def end_experiment(
    uow: UnitOfWork,
    text: str,
    name: str,
    *,
    promote: bool,
    source: str,
    by: str | None,
    candidates: Mapping[str, str] | None = None,
) -> Ended:
    """Activate the policy written in `text` (the file's own text; `candidates`, the candidate
    policies it names, by name) with the experiment `name` promoted or stopped.
    NoSuchExperiment, naming those there are, when it has none of that name; PolicyError when
    the new text fails the checks (nothing is activated)."""
    candidates = candidates or {}
    serving = await serving_unless_it_is(uow, text)
    if serving is not None:
        done = "promoting" if promote else "stopping"
        raise NotServing(
            f"{source} is not the policy serving: version {short_version(serving.version)} is "
            f"(read from {serving.source}), and {done} {name} from the file would serve the "
            f"file's other differences too. Put the version serving in the file first "
            f"(`leadrouter policy show {short_version(serving.version)} > {source}`), or "
            f"activate the file (`leadrouter policy activate {source}`), then run this again; "
            "nothing changed"
        )
    try:
        if promote:
            edited = promote_experiment(text, name, candidates)
        else:
            edited = stop_experiment(text, name)
    except ValueError as exc:  # UnknownExperiment, or a text these cannot edit
        raise NoSuchExperiment(f"{source}: {exc}") from None
    how = Activation.PROMOTE if promote else Activation.STOP
    served = bundle(edited, candidates)
    activated = await activate_policy(uow, served, source=source, how=how, by=by)
    return Ended(activated, edited)


async def serving_unless_it_is(uow: UnitOfWork, text: str) -> StoredPolicy | None:
    """The version serving when the policy written in `text` (a file's own text, its candidates
    left out) is not it; None when it is, or when no version was activated yet."""
    active = await active_version(uow)
    if active is None:
        return None
    serving = await find_policy_version(uow, active)
    own, _ = split(serving.text)
    return None if own.rstrip("\n") == text.rstrip("\n") else serving
