from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy_file import PolicyFileMissing, default_policy_path, load_policy
from routing.policy import PolicyError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_missing_file_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "nope.yml")
    assert caught.value.report().endswith("no such policy file")
    assert isinstance(caught.value, PolicyFileMissing)


def test_a_file_that_is_not_text_is_a_sentence_too(tmp_path: Path) -> None:
    file = tmp_path / "routing.yml"
    file.write_bytes(b"reps: \xff\xfe\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    assert "cannot read the policy file" in caught.value.report()
    assert not isinstance(caught.value, PolicyFileMissing)


def test_a_folder_given_as_the_policy_is_a_sentence_about_the_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)
    assert caught.value.report() == (
        f"{tmp_path}: is a folder, not a policy file: name the YAML file in it, such as "
        f"{tmp_path / 'routing.yml'}"
    )


def test_a_policy_file_is_parsed_with_its_path_in_every_problem(tmp_path: Path) -> None:
    file = tmp_path / "routing.yml"
    file.write_text("reps:\n  - id: alice\nrules: {}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    assert caught.value.report().startswith(f"{file}:")


def test_the_reference_policy_loads_from_its_file() -> None:
    policy = load_policy(EXAMPLES / "routing.yml")
    assert policy.source == str(EXAMPLES / "routing.yml")
    assert "alice" in policy.reps


def test_without_rules_a_command_reads_leadrouter_rules_else_routing_yml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LEADROUTER_RULES", raising=False)
    assert default_policy_path() == Path("routing.yml")
    monkeypatch.setenv("LEADROUTER_RULES", "/config/policy.yml")
    assert default_policy_path() == Path("/config/policy.yml")
