"""Experiments: a candidate tried on a share of live leads, each lead's arm by a stable hash.

An experiment of the policy (`experiments:`) names a share, what the hash is of (`by: account`
keeps a buying committee in one arm; `by: lead`), an optional `when:` for the leads that take
part, and its candidate: another distribution for one team, or a whole candidate policy. The
engine (`routing.engine.route`) asks `choose_arm` which arm a lead is in, routes it with the
policy of that arm, and records the arm in the decision and its trace.

The hash is SHA-256 of the experiment's name and the key, not Python's `hash()` (salted per
process): every replica, and every run of `simulate` or `replay`, puts a lead in the same arm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routing.conditions import Condition
from routing.distribution import Distribution

if TYPE_CHECKING:
    from routing.policy import Policy

CONTROL = "control"
CANDIDATE = "candidate"
ARMS = (CONTROL, CANDIDATE)

_SCALE = float(1 << 64)


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    share: float  # the percent of taking-part leads in the candidate arm, above 0, below 100
    by: str  # "account" or "lead"
    when: Condition | None
    candidate: Policy  # the policy the candidate arm is routed by (no experiments of its own)
    team: str | None = None  # a team-distribution candidate: the team and its new distribution
    distribution: Distribution | None = None
    policy_file: str | None = None  # a whole candidate policy: its file, as `policy:` names it

    def describe(self) -> str:
        """What the candidate arm does differently, in a few words."""
        if self.team is not None and self.distribution is not None:
            return f"team {self.team} by {self.distribution.value}"
        return f"the policy {self.policy_file}"


@dataclass(frozen=True, slots=True)
class ArmChoice:
    experiment: Experiment
    arm: str  # CONTROL or CANDIDATE
    position: float  # where the key's hash falls in [0, 1)
    key: str  # what was hashed, as the trace names it ("account 001A", "domain acme.com")

    def detail(self) -> str:
        share = self.experiment.share / 100
        sign = "<" if self.arm == CANDIDATE else "≥"
        # Two decimals, unless they would show the hash equal to the share (0.299 < 0.30).
        digits = 2
        while f"{self.position:.{digits}f}" == f"{share:.{digits}f}" and digits < 8:
            digits += 1
        return (
            f"experiment {self.experiment.name}: {self.arm} arm "
            f"(hash {self.position:.{digits}f} {sign} share {share:.{digits}f}, by {self.key})"
        )


def position_of(experiment: str, key: str) -> float:
    """Where `key` falls in [0, 1) for `experiment`: the first 8 bytes of a SHA-256, so the same
    in every process, and independent from one experiment to the next."""
    digest = hashlib.sha256(f"{experiment}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def hash_key(by: str, values: Mapping[str, Any], lead_id: str) -> str:
    """What a lead's arm is the hash of. `by: account`: the matched account's id, else the
    company's registrable domain (the lead's domain or website, else its business e-mail's; a
    free-mail domain is no company's), else the lead's id; `by: lead`: the lead's id."""
    if by == "account":
        account_id = values.get("account.id")
        if account_id:
            return f"account {account_id}"
        domain = values.get("domain")
        if domain:
            return f"domain {domain}"
    return f"lead {lead_id}"


def choose_arm(
    experiments: Sequence[Experiment],
    values: Mapping[str, Any],
    folded: Mapping[str, Any],
    lead_id: str,
) -> ArmChoice | None:
    """The arm of the first experiment the lead takes part in (its `when:` holds), or None
    when it takes part in none. `values` and `folded` are the lead's facts with its account's."""
    for experiment in experiments:
        if experiment.when is not None and experiment.when.check(folded) is not None:
            continue
        key = hash_key(experiment.by, values, lead_id)
        position = position_of(experiment.name, key)
        arm = CANDIDATE if position < experiment.share / 100 else CONTROL
        return ArmChoice(experiment, arm, position, key)
    return None


def with_candidates(policy: Policy) -> tuple[Policy, ...]:
    """The policy and each of its experiments' candidates: every policy that routes leads now
    (what the outcome rates of performance teams are read for, say)."""
    return (policy, *(experiment.candidate for experiment in policy.experiments))


def arm_label(experiment: str | None, arm: str) -> str:
    """How the report names an arm: "experiment/arm", so two experiments' arms stay apart."""
    return f"{experiment}/{arm}" if experiment else arm
