"""The reference policy of `examples/`, as the routing tests read it: its text, parsed."""

from __future__ import annotations

from pathlib import Path

from routing.policy import Policy, parse_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_policy() -> Policy:
    path = EXAMPLES / "routing.yml"
    return parse_policy(path.read_text(encoding="utf-8"), source=str(path))
