"""A policy with its experiments' candidate policies, as one text: what is hashed, stored,
activated and served, so that a version holds everything that routes under it.

    <the policy file's text>
    --- # leadrouter candidate: candidate.yml
    <candidate.yml's text>

An experiment's `policy: candidate.yml` names a file beside the policy file; the bot reads it
(`bot.policy_file`) and bundles it here. Every replica then parses the same bundle from the
database, whether or not it has the candidate's file, and a change to the candidate is a new
version. A policy with no candidate policy is its own text, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

_MARKER = "--- # leadrouter candidate: "
_SPLIT = re.compile(r"^--- # leadrouter candidate: (.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  # as the experiment's `policy:` writes it
    text: str
    first_line: int  # the line of the bundle its first line is (for problems' lines)


def is_bundle(text: str) -> bool:
    return _SPLIT.search(text) is not None


def candidate_files(text: str) -> list[str]:
    """The candidate policies a policy's experiments name (`policy:`), in order, each once;
    none for a text that is not a readable policy (its parse will say why)."""
    if "experiments" not in text:
        return []  # no experiments at all: not worth a parse (a second for a big policy)
    try:
        tree: Any = YAML(typ="safe").load(text)
    except Exception:  # the policy's own parse reports what is wrong with it
        return []
    experiments = tree.get("experiments") if isinstance(tree, Mapping) else None
    if not isinstance(experiments, list):
        return []
    names = [e.get("policy") for e in experiments if isinstance(e, Mapping)]
    return list(dict.fromkeys(name for name in names if isinstance(name, str) and name))


def bundle(text: str, candidates: Mapping[str, str]) -> str:
    """`text` with the candidates it names appended, each after its marker line."""
    if not candidates:
        return text
    parts = [text if text.endswith("\n") or not text else text + "\n"]
    for name in candidate_files(text):
        if name in candidates:
            body = candidates[name]
            parts.append(f"{_MARKER}{name}\n{body if body.endswith(chr(10)) else body + chr(10)}")
    return "".join(parts) if len(parts) > 1 else text


def split(text: str) -> tuple[str, dict[str, Candidate]]:
    """The policy's own text and its bundled candidates by name."""
    markers = list(_SPLIT.finditer(text))
    if not markers:
        return text, {}
    candidates: dict[str, Candidate] = {}
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        first_line = text.count("\n", 0, marker.end()) + 2
        name = marker.group(1).strip()
        candidates[name] = Candidate(name, text[marker.end() + 1 : end], first_line)
    return text[: markers[0].start()], candidates
