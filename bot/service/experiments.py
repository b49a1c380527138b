"""Experiments ended: one promoted (its candidate becomes the policy) or stopped (the policy
goes on without it), either way as a new policy version every replica switches to.

The text is the policy file's, edited as an admin would (`routing.policy_edits`); the new text
is activated as `leadrouter policy activate` does (`bot.service.policies`), so a version that
fails the checks is refused and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.service.errors import ServiceError
from bot.service.policies import Activated, Activation, activate_policy
from bot.service.unit_of_work import UnitOfWork
from routing.policy_bundle import bundle
from routing.policy_edits import promote_experiment, stop_experiment


class NoSuchExperiment(ServiceError):
    pass


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
