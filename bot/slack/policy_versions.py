"""`/routing policy`: a manager sees the policy versions and serves a stored one again (a rollback
without a shell), recorded in the history as activated in Slack, by them."""

from __future__ import annotations

from bot.reading import Viewer
from bot.service.policies import (
    Activation,
    PolicyActivated,
    activate_policy,
    find_policy_version,
    policy_history,
    unclaimed_offers_leaving,
)
from bot.slack import blocks
from bot.slack.commands import Versions
from bot.slack.parts import SlackParts
from routing.policy import PolicyError
from routing.policy_version import short_version

SHOWN = 8  # versions listed, newest first

FOR_MANAGERS = "Policy versions are for managers named in the routing policy."


async def versions_answer(parts: SlackParts, viewer: Viewer, asked: Versions) -> str:
    if viewer.manager is None:
        return FOR_MANAGERS
    if asked.activate is not None:
        return await _activate(parts, viewer.manager, asked.activate)
    history = await policy_history(parts.uow, limit=SHOWN)
    if not history:
        return (
            "No policy version has been activated yet: `leadrouter serve` activates its file "
            "when it starts."
        )
    lines = ["*Policy versions*, newest first:"]
    lines += [_line(activation) for activation in history]
    if len(history) > 1:
        earlier = short_version(history[1].version)
        lines.append(f"To serve an earlier one again: `/routing policy activate {earlier}`")
    return "\n".join(lines)


def _line(activation: PolicyActivated) -> str:
    by = f" by {blocks.escape(activation.by)}" if activation.by else ""
    state = " · *active*" if activation.active else ""
    return (
        f"• `{short_version(activation.version)}`{state} · activated "
        f"{blocks.slack_date(activation.at)} ({blocks.escape(activation.how)}){by}"
    )


async def _activate(parts: SlackParts, manager_id: str, prefix: str) -> str:
    stored = await find_policy_version(parts.uow, prefix)  # UnknownVersion: said as it is
    manager = parts.policy().managers.get(manager_id)
    # Their name, and their id in the policy: names need not be unique.
    by = f"{manager.name} ({manager_id})" if manager is not None else manager_id
    leaving = await unclaimed_offers_leaving(parts.uow, stored.text)
    try:
        activated = await activate_policy(
            parts.uow, stored.text, source=stored.source, how=Activation.SLACK, by=by
        )
    except PolicyError as error:
        errors = sum(1 for problem in error.problems if problem.severity == "error")
        return (
            f"Version `{short_version(stored.version)}` was not activated: this release finds "
            f"{errors} error(s) in it (`leadrouter policy show` it, then `leadrouter check`)."
        )
    version = short_version(activated.policy.version)
    if not activated.activated:
        return f"Version `{version}` is the active one already."
    was = f" (was `{short_version(activated.previous)}`)" if activated.previous else ""
    moving = "".join(f" {blocks.escape(rep.sentence())}." for rep in leaving)
    return (
        f"Version `{version}` activated{was}: every replica switches to it within seconds.{moving} "
        "A server that restarts activates its policy file again, so put this version's text in "
        f"that file too: `leadrouter policy show {version} > routing.yml`."
    )
