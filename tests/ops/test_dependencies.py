"""The dependencies, kept honest: every package the code imports is declared in pyproject.toml,
each declared one is bounded to the release series it is locked at, the lock files pin every
package to one release with its hashes and agree with each other, the image installs the runtime
lock (and compiles the routing core with the native lock's tools), and this virtualenv holds
exactly the releases locked (what the suite runs on is what was locked)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.ops.test_deployment import ROOT, dockerfile

FIRST_PARTY = {"bot", "routing", "storage", "tests", "bench", "ops"}
RUNTIME_LOCK = "requirements.txt"
NATIVE_LOCK = "requirements-native.txt"
TEST_LOCK = "requirements-test.txt"


def declared(*extras: str) -> dict[NormalizedName, Requirement]:
    """pyproject.toml's dependencies, and those of the optional groups named."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


@dataclass(frozen=True)
class Entry:
    requirement: Requirement
    hashes: list[str]


def lock(name: str) -> dict[NormalizedName, Entry]:
    """A lock file's entries (continuation lines joined, comments dropped), by package."""
    text = (ROOT / name).read_text().replace("\\\n", " ")
    entries: dict[NormalizedName, Entry] = {}
    for line in text.splitlines():
        line = line.partition("#")[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        hashes = [option.removeprefix("--hash=") for option in options]
        assert all(option.startswith("--hash=") for option in options), line
        parsed = Requirement(requirement)
        entries[canonicalize_name(parsed.name)] = Entry(parsed, hashes)
    return entries


def locked_version(entry: Entry) -> Version:
    (specifier,) = entry.requirement.specifier
    assert specifier.operator == "==", entry.requirement
    return Version(specifier.version)


def third_party_imports(*folders: str) -> dict[str, Path]:
    """Each top-level module that the code under `folders` imports and that is neither in the
    standard library nor leadrouter's own, with the first file that imports it."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, path.relative_to(ROOT))
    return found


@pytest.mark.parametrize(
    ("folders", "extras", "seen"),
    [
        (("bot", "routing", "storage"), (), {"sqlalchemy", "slack_bolt", "rapidfuzz", "ruamel"}),
        (("tests", "bench"), ("test",), {"pytest", "hypothesis", "sqlalchemy", "aiohttp"}),
    ],
    ids=["the app", "tests and benchmarks"],
)
def test_every_package_the_code_imports_is_declared(
    folders: tuple[str, ...], extras: tuple[str, ...], seen: set[str]
) -> None:
    imports = third_party_imports(*folders)
    assert seen <= set(imports)  # the scan sees the imports it is there to check
    owners = metadata.packages_distributions()
    wanted = set(declared(*extras))
    undeclared = {
        module: f"{path} imports it; installed by {owners.get(module, 'nothing')}"
        for module, path in imports.items()
        if not {canonicalize_name(owner) for owner in owners.get(module, [])} & wanted
    }
    assert not undeclared, "declare these in pyproject.toml, then `make lock`"


def next_series(version: Version) -> Version:
    """The first release outside `version`'s series: the next major version, or for a 0.x
    release the next minor one."""
    if version.major:
        return Version(f"{version.major + 1}")
    return Version(f"0.{version.minor + 1}")


@pytest.mark.parametrize(
    ("lock_file", "extras"),
    [(RUNTIME_LOCK, ()), (NATIVE_LOCK, ("native",)), (TEST_LOCK, ("test",))],
)
def test_every_declared_dependency_is_locked_within_a_bound_that_admits_only_its_series(
    lock_file: str, extras: tuple[str, ...]
) -> None:
    pins = lock(lock_file)
    for name, requirement in declared(*extras).items():
        assert name in pins, f"{name} is declared but not in {lock_file}: run `make lock`"
        version = locked_version(pins[name])
        assert requirement.specifier.contains(version), (
            f"{lock_file} has {name} {version}, outside {requirement.specifier}: run `make lock`"
        )
        operators = {specifier.operator for specifier in requirement.specifier}
        assert {">=", "<"} <= operators, f"{requirement}: a floor and a cap, please"
        assert not requirement.specifier.contains(next_series(version)), requirement


@pytest.mark.parametrize("lock_file", [RUNTIME_LOCK, NATIVE_LOCK, TEST_LOCK])
def test_every_locked_package_is_one_release_with_its_hashes(lock_file: str) -> None:
    pins = lock(lock_file)
    assert len(pins) > len(declared()), "the lock holds the dependencies of dependencies too"
    for name, entry in pins.items():
        locked_version(entry)
        assert not entry.requirement.extras and not entry.requirement.marker, entry.requirement
        assert entry.hashes, f"{name} has no hash"
        for digest in entry.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (name, digest)


@pytest.mark.parametrize(
    ("inner", "outer", "extra"),
    [(RUNTIME_LOCK, NATIVE_LOCK, "native"), (NATIVE_LOCK, TEST_LOCK, "test")],
    ids=["native holds runtime", "test holds native"],
)
def test_each_lock_holds_the_one_before_unchanged(inner: str, outer: str, extra: str) -> None:
    held, holding = lock(inner), lock(outer)
    for name, entry in held.items():
        assert name in holding, name
        assert holding[name].requirement == entry.requirement, name
        assert holding[name].hashes == entry.hashes, name
    assert set(declared(extra)) - set(declared()) <= set(holding) - set(lock(RUNTIME_LOCK))


def test_this_virtualenv_holds_exactly_the_releases_locked() -> None:
    wrong = {}
    for name, entry in lock(TEST_LOCK).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed != locked_version(entry):
            wrong[name] = f"{installed or 'not installed'}, locked {locked_version(entry)}"
    assert not wrong, "`make test` installs the lock; run it, or `make lock` if pyproject changed"


def locked_python() -> str:
    header = (ROOT / RUNTIME_LOCK).read_text()
    match = re.search(r"autogenerated by pip-compile with Python (3\.\d+)", header)
    assert match, "the lock's header names the Python it was made for"
    return match.group(1)


def test_the_image_installs_the_runtime_lock_by_hash_on_the_python_it_was_made_for() -> None:
    instructions = dockerfile()
    bases = {i.arguments.split()[0] for i in instructions if i.keyword == "FROM"}
    assert bases == {f"python:{locked_python()}-slim"}
    runs = [i.arguments for i in instructions if i.keyword == "RUN"]
    locked = [run for run in runs if "--require-hashes -r requirements.txt" in run]
    # The routing core is compiled in place by tools of their own lock, in a virtualenv of
    # their own (left in the build stage), before the project is installed with it.
    native = [run for run in runs if "--require-hashes -r requirements-native.txt" in run]
    compiled = [run for run in runs if "ops/native.py build" in run]
    project = [run for run in runs if re.search(r"pip install --no-deps \.$", run)]
    assert locked and native and project and compiled
    assert runs.index(locked[0]) < runs.index(project[0])
    assert runs.index(native[0]) < runs.index(compiled[0]) <= runs.index(project[0])
    assert "/opt/leadrouter/" not in native[0], "the compiler stays out of the image's venv"
    installs = locked + native + project
    assert not [run for run in runs if "pip install" in run and run not in installs]
