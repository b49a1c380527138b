"""The policy's experiments: `experiment list` (each with its arms' figures), `experiment
promote NAME` and `experiment stop NAME` (each a new policy version, written to the file too).

What promote and stop run is in `bot.cli.versions_running`, imported once one of them runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from bot.cli.common import CliError, RulesOption, err, experiment_app, friendly, out
from bot.cli.versions import _user
from bot.policy_file import load_policy
from routing.experiments import ARMS, CANDIDATE, CONTROL, arm_label
from routing.policy import PolicyError
from routing.policy_version import short_version
from routing.report.figures import TOO_FEW
from routing.report.stats import Proportion
from routing.report.window import DEFAULT_SINCE, BadWindow, window_of

if TYPE_CHECKING:
    from bot.settings import Settings
    from routing.report.arms import ArmComparison
    from routing.report.figures import GroupReport

NameArgument = Annotated[str, typer.Argument(help="The experiment's name, as the policy gives it.")]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who does it, for the history (default: your user name)."),
]


@experiment_app.command("list")
@friendly
def list_experiments(
    since: Annotated[
        str, typer.Option(help="The arms' figures over leads that arrived this long ago: 7d.")
    ] = DEFAULT_SINCE,
    rules: RulesOption = None,
) -> None:
    """The policy's experiments, each with what its candidate tries and its arms' figures:
    leads, claim SLA and conversion (95% intervals), and whether the difference is meaningful
    yet. Reads DATABASE_URL and LEADROUTER_RULES (without a file, the active version), as
    `report` does."""
    from bot.cli import running, versions_running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active
    from routing.report.arms import compare_arms

    settings = load_settings(rules=rules)
    policy = policy_or_active(rules, settings)
    try:
        window = window_of(since=since, start=None, end=None, now=datetime.now(UTC), options="--")
    except BadWindow as exc:
        raise CliError(str(exc)) from None
    serving = None  # without the file, the serving version is the policy, said already
    if settings.rules.exists():
        serving = asyncio.run(versions_running.serving_unless(settings, settings.rules))
    if serving is not None:
        version = short_version(serving.version)
        err.print(
            Text(
                f"note: {settings.rules} is not the policy serving: version {version} is (read "
                f"from {serving.source}); these are the file's experiments. The servers': "
                f"`leadrouter policy show {version}`, or --rules the file it came from.",
                style="yellow",
            )
        )
    report = asyncio.run(running.report(settings, policy, window, by="arm"))
    comparisons = {c.experiment: c for c in compare_arms(report)}
    groups = {group.group: group for group in report.groups}
    # An experiment promoted or stopped goes on being shown while its leads are in the window.
    ended = sorted(set(comparisons) - {experiment.name for experiment in policy.experiments})
    if not policy.experiments and not ended:
        named = settings.rules if settings.rules.exists() else "The active version"
        out.print(Text(f"{named} has no experiments."))
        return
    for experiment in policy.experiments:
        leads = "the leads its when: matches" if experiment.when is not None else "leads"
        out.print(
            Text(
                f"{experiment.name}: {experiment.describe()} on {experiment.share:g}% of "
                f"{leads}, by {experiment.by}",
                style="bold",
            )
        )
        _arms(experiment.name, groups, comparisons, since)
    for name in ended:
        out.print(Text(f"{name}: no longer in the policy; its leads since {since}", style="bold"))
        _arms(name, groups, comparisons, since)


def _arms(
    name: str,
    groups: dict[str | None, GroupReport],
    comparisons: dict[str, ArmComparison],
    since: str,
) -> None:
    for arm in ARMS:
        group = groups.get(arm_label(name, arm))
        if group is None:
            out.print(Text(f"  {arm}: no lead since {since}"))
            continue
        out.print(
            Text(
                f"  {arm}: {group.leads} leads, claim SLA {_rate(group.claim_sla)}, "
                f"converted {_rate(group.converted)}"
            )
        )
    comparison = comparisons.get(name)
    for difference in comparison.differences if comparison else ():
        out.print(Text(f"  {difference.verdict}"))


@experiment_app.command("promote")
@friendly
def promote(name: NameArgument, by: ByOption = None, rules: RulesOption = None) -> None:
    """Make the experiment's candidate the policy for every lead: a new version, with the
    candidate applied and the experiment gone, activated on every server and written to the
    policy file. Reads DATABASE_URL and LEADROUTER_RULES."""
    _end(name, promote=True, by=by, rules=rules)


@experiment_app.command("stop")
@friendly
def stop(name: NameArgument, by: ByOption = None, rules: RulesOption = None) -> None:
    """End the experiment: a new version without it (every lead routed as the control arm is),
    activated on every server and written to the policy file. Reads DATABASE_URL and
    LEADROUTER_RULES."""
    _end(name, promote=False, by=by, rules=rules)


def _end(name: str, *, promote: bool, by: str | None, rules: Path | None) -> None:
    from bot.cli import versions_running
    from bot.cli.environment import settings as load_settings

    settings = load_settings(rules=rules)
    file = settings.rules
    arms = _arms_since(settings, file, name) if promote else None
    try:
        ended = asyncio.run(
            versions_running.end_experiment(settings, file, name, promote=promote, by=by or _user())
        )
    except PolicyError as exc:
        err.print(Text(exc.report()))
        raise CliError(
            f"{file}: the policy without experiment {name} has problems: nothing changed"
        ) from None
    activated = ended.activated
    done = "promoted" if promote else "stopped"
    version = short_version(activated.policy.version)
    was = f"was {short_version(activated.previous)}" if activated.previous else "none was before"
    out.print(
        Text(
            f"experiment {name} {done}: version {version} activated ({was}) and written to "
            f"{file}; running servers switch to it within {settings.policy_check_seconds:g} s"
        )
    )
    if arms is not None and min(arms.values()) < TOO_FEW:
        err.print(
            Text(
                f"note: experiment {name} had {arms[CONTROL]} leads in the control and "
                f"{arms[CANDIDATE]} in the candidate since {DEFAULT_SINCE}: too few to tell "
                f"whether the candidate does better ({TOO_FEW} in each at least; `leadrouter "
                "experiment list`)",
                style="yellow",
            )
        )


def _arms_since(settings: Settings, file: Path, name: str) -> dict[str, int] | None:
    """Each arm's leads of the experiment over the last `DEFAULT_SINCE`, as `list` counts them;
    None when the file cannot be read (the promotion says why)."""
    from bot.cli import running

    try:
        policy = load_policy(file)
    except PolicyError:
        return None
    window = window_of(
        since=DEFAULT_SINCE, start=None, end=None, now=datetime.now(UTC), options="--"
    )
    running.upgrade(settings.database_url)
    report = asyncio.run(running.report(settings, policy, window, by="arm"))
    groups = {group.group: group.leads for group in report.groups}
    return {arm: groups.get(arm_label(name, arm), 0) for arm in ARMS}


def _rate(proportion: Proportion) -> str:
    if proportion.rate is None:
        return "no data"
    assert proportion.low is not None and proportion.high is not None
    return (
        f"{proportion.rate:.0%} ({proportion.low:.0%}–{proportion.high:.0%}, "
        f"{proportion.count} of {proportion.of})"
    )
