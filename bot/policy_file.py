"""The policy file: where it is, and reading it. The routing core takes its text (`parse_policy`).

`serve` reads the path from the settings (`Settings.rules`); the other commands take `--rules`,
else `$LEADROUTER_RULES`, else `routing.yml` in the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from routing.policy import Policy, PolicyError, parse_policy
from routing.policy_problems import Problem


class PolicyFileMissing(PolicyError):
    """There is no file at the policy's path."""


def default_policy_path() -> Path:
    """`$LEADROUTER_RULES`, else `routing.yml`: where a command looks without `--rules`."""
    return Path(os.environ.get("LEADROUTER_RULES") or "routing.yml")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and compile a policy file. Raises PolicyFileMissing when there is no file there,
    and PolicyError with every problem found in one that cannot be used."""
    return parse_policy(read_policy_text(path), source=str(Path(path)))


def read_policy_text(path: str | os.PathLike[str]) -> str:
    """The policy file's text, as it is compiled and as its version is the hash of.
    PolicyFileMissing when there is no file there, PolicyError when it cannot be read."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileMissing(str(file), [Problem((), "no such policy file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(file), [Problem((), f"cannot read the policy file: {exc}")]) from None


def write_policy_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace the policy file's text at once: a file watch never reads half of it."""
    file = Path(path)
    temporary = file.with_name(f".{file.name}.new")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, file)
