"""The policy file: where it is, and reading it. The routing core takes its text (`parse_policy`).

`serve` reads the path from the settings (`Settings.rules`); the other commands take `--rules`,
else LEADROUTER_RULES (the environment, else `.env`, as serve reads it), else `routing.yml` in
the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot import env_file
from routing.policy import Policy, PolicyError, parse_policy
from routing.policy_bundle import bundle, candidate_files, is_bundle, split
from routing.policy_problems import Problem


class PolicyFileMissing(PolicyError):
    """There is no file at the policy's path."""


class _PolicySetting(BaseSettings):
    """LEADROUTER_RULES alone, read as `Settings` reads it (the environment, then `.env`), so a
    command checks the very file `serve` would serve without stumbling on the other settings."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    rules: str = Field("", alias="LEADROUTER_RULES")


def default_policy_path() -> Path:
    """LEADROUTER_RULES (from the environment, else `.env`), else `routing.yml`: where a command
    looks without `--rules`. `bot.env_file.NotText` when `.env` is not text."""
    with env_file.quiet():  # `bot.env_file.problems` says which lines were skipped, and why
        rules = _PolicySetting().rules
    return Path(rules.strip() or "routing.yml")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and compile a policy file. Raises PolicyFileMissing when there is no file there,
    and PolicyError with every problem found in one that cannot be used."""
    return parse_policy(read_policy_text(path), source=str(Path(path)))


def read_policy_text(path: str | os.PathLike[str]) -> str:
    """The policy file's text, as it is compiled and as its version is the hash of: with the
    candidate policies its experiments name (`policy: candidate.yml`, beside it) bundled in
    (`routing.policy_bundle`). PolicyFileMissing when there is no file there, PolicyError when
    it, or a candidate it names, cannot be read."""
    text, candidates = read_policy_source(path)
    return bundle(text, candidates)


def read_policy_source(
    path: str | os.PathLike[str], *, missing_ok: bool = False
) -> tuple[str, dict[str, str]]:
    """The policy file's own text, and the text of each candidate policy it names by the name
    it gives (read relative to the policy file's folder). A file that is a bundle already (a
    stored version written back to a file) keeps the candidates it holds. `missing_ok`: a
    candidate file that is not there is left out (to stop its experiment) rather than refused."""
    file = Path(path)
    text = _read(file)
    if is_bundle(text):
        own, bundled = split(text)
        return own, {name: candidate.text for name, candidate in bundled.items()}
    candidates = {}
    for name in candidate_files(text):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise PolicyError(
                str(file),
                [
                    Problem(
                        ("experiments",),
                        f"candidate policy {name}: name a file in the policy's folder (or below "
                        "it), not an absolute path or one through ..",
                    )
                ],
            )
        candidate = file.parent / name
        try:
            candidates[name] = candidate.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                continue
            raise PolicyError(
                str(file),
                [Problem(("experiments",), f"no candidate policy file {name} ({candidate})")],
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(
                str(file), [Problem(("experiments",), f"cannot read {candidate}: {exc}")]
            ) from None
    return text, candidates


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileMissing(str(file), [Problem((), "no such policy file")]) from None
    except IsADirectoryError:
        sentence = (
            "is a folder, not a policy file: name the YAML file in it, such as "
            f"{file / 'routing.yml'}"
        )
        raise PolicyError(str(file), [Problem((), sentence)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(file), [Problem((), f"cannot read the policy file: {exc}")]) from None


def holds_its_candidates(path: str | os.PathLike[str]) -> bool:
    """Whether the file is a stored version written back (its candidates bundled in it)."""
    return is_bundle(_read(Path(path)))


def write_policy_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace the policy file's text at once: a file watch never reads half of it."""
    file = Path(path)
    temporary = file.with_name(f".{file.name}.new")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, file)
