"""A policy's text edited as an admin would edit it: an experiment stopped or promoted.

The YAML is read round-trip (ruamel keeps comments, order and layout), changed, and written
back, so the new version differs from the old by the lines the change needs. Pure: text in,
text out; the bot reads and writes the file (`bot.service.experiments`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, MutableMapping, MutableSequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent


class UnknownExperiment(ValueError):
    """The policy has no experiment of that name; the message names those it has."""

    def __init__(self, name: str, known: list[str]) -> None:
        has = f"its experiments: {', '.join(known)}" if known else "it has none"
        super().__init__(f"the policy has no experiment named `{name}` ({has})")
        self.name = name
        self.known = known


def experiment_names(text: str) -> list[str]:
    """The names of the experiments written in a policy's text, in order."""
    tree = _load(text)
    return [str(item.get("name")) for item in _experiments(tree)]


def stop_experiment(text: str, name: str) -> str:
    """The policy's text without the experiment `name`: every lead goes the control's way."""
    tree = _load(text)
    _remove(tree, name)
    return _dump(tree, text)


def promote_experiment(text: str, name: str, candidates: Mapping[str, str] | None = None) -> str:
    """The policy's text with the experiment `name`'s candidate applied and the experiment
    gone: every lead goes the candidate's way. A team candidate's distribution becomes the
    team's; a candidate policy (its text in `candidates`, by the name `policy:` gives) becomes
    the policy, whole."""
    tree = _load(text)
    experiment = _remove(tree, name)
    candidate_file = experiment.get("policy")
    others = [str(item.get("name")) for item in _experiments(tree)]
    if candidate_file is not None and others:
        # The candidate becomes the whole policy: the other experiments would go with the old
        # one, unasked.
        raise ValueError(
            f"promoting `{name}` makes its candidate policy the whole policy, which would end "
            f"the other experiments too: stop or promote {', '.join(others)} first"
        )
    if candidate_file is not None:
        candidate = (candidates or {}).get(str(candidate_file))
        if candidate is None:
            raise ValueError(f"the candidate policy {candidate_file} was not read")
        return candidate
    team, distribution = experiment.get("team"), experiment.get("distribution")
    teams = tree.get("teams")
    if not isinstance(teams, MutableMapping) or not isinstance(teams.get(team), MutableMapping):
        raise ValueError(f"experiment `{name}` names team `{team}`, which the policy does not have")
    teams[team]["distribution"] = distribution
    if distribution != "performance":
        # Keys only a performance team may have (`ReferenceChecker.check_team`).
        for key in ("performance", "fairness"):
            teams[team].pop(key, None)
    return _dump(tree, text)


def _load(text: str) -> Any:
    try:
        tree = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise ValueError(f"the policy is not valid YAML{where}: {problem}") from None
    if not isinstance(tree, MutableMapping):
        raise ValueError("the policy is not a YAML mapping of keys")
    return tree


def _experiments(tree: MutableMapping[str, Any]) -> list[MutableMapping[str, Any]]:
    section = tree.get("experiments")
    if not isinstance(section, MutableSequence):
        return []
    return [item for item in section if isinstance(item, MutableMapping)]


def _remove(tree: MutableMapping[str, Any], name: str) -> MutableMapping[str, Any]:
    """Take the experiment `name` out of the tree (and the section, left empty); return it."""
    experiments = _experiments(tree)
    found = next((item for item in experiments if item.get("name") == name), None)
    if found is None:
        raise UnknownExperiment(name, [str(item.get("name")) for item in experiments])
    section = tree["experiments"]
    section.remove(found)
    if not section:
        del tree["experiments"]
    return found


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the admin wrote on one
    return yaml


def _dump(tree: Any, text: str) -> str:
    """The tree as YAML, indented as `text` was."""
    # ruamel's guess: where a sequence item's content starts, and where its dash stands.
    _, content, dash = load_yaml_guess_indent(text)
    yaml = _yaml()
    if content is not None and dash:
        yaml.indent(mapping=dash, sequence=content, offset=dash)
    elif content is not None:
        yaml.indent(mapping=content, sequence=content, offset=0)
    stream = io.StringIO()
    yaml.dump(tree, stream)
    return stream.getvalue()
