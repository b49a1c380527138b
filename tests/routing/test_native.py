"""The routing core compiled with mypyc (`ops/native.py`): what `make test` runs is what ships,
the compiled modules decide exactly as their sources do, and a build that does not match the
sources as they are is never run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import routing
from ops import native

ROOT = Path(__file__).resolve().parents[2]
PLAIN_PASS = bool(os.environ.get("LEADROUTER_PLAIN_PYTHON"))

# Routes generated leads against a generated policy and accounts (the engine benchmark's, at a
# small size) and prints where the engine came from and a digest of every decision: its outcome,
# rep, reason, account match with the evidence, and trace.
PROBE = """
import hashlib, sys
from itertools import islice
from bench.bench_routing import START, iter_leads, make_accounts, make_policy_text, out_of_office
from routing import engine
from routing.accounts import AccountIndex
from routing.decision import RoutingState
from routing.leads import parse_lead
from routing.policy import parse_policy
from routing.simulation import Simulation

policy = parse_policy(make_policy_text(7), source="probe.yml")
accounts = make_accounts(7, 5_000, sorted(policy.reps))
index = AccountIndex(accounts)
away = out_of_office(policy, 7, START)
sim = Simulation(policy=policy, now=START, accounts=index, out_of_office=away)
state = RoutingState(sim.loads, sim.out_of_office, sim.teams, sim.account_reps)
digest = hashlib.sha256()
for _, _, raw in islice(iter_leads(7, accounts, index), 3_000):
    decision = engine.route(parse_lead(raw), policy=policy, now=START, accounts=index, state=state)
    sim.apply(decision)
    digest.update(repr((decision.outcome, decision.rep, decision.team, decision.reason,
                        decision.account, decision.trace)).encode())
print(engine.__file__.rsplit(".", 1)[-1], digest.hexdigest())
"""

WHERE = "import routing, routing.engine as e; print(e.__file__); print(routing.compiled_modules())"


def _needs_a_build() -> None:
    if not native.up_to_date():
        pytest.skip(native.missing_toolchain() or "routing/ is not compiled here: `make native`")


def _python(code: str, *, cwd: Path, plain: bool = False) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(cwd), "PYTHONHASHSEED": "0"}
    environment.pop("LEADROUTER_PLAIN_PYTHON", None)
    if plain:
        environment["LEADROUTER_PLAIN_PYTHON"] = "1"
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_test_runs_the_routing_core_compiled() -> None:
    if PLAIN_PASS:
        pytest.skip("this is `make test`'s second pass, over the plain sources")
    missing = native.missing_toolchain()
    if missing is not None:
        pytest.skip(f"the routing core runs as plain Python here: {missing}")
    assert set(routing.compiled_modules()) == set(native.MODULES), (
        "`make test` compiles the routing core first (`make native`): the suite runs what ships"
    )
    from routing import accounts, calendar, engine

    assert Path(engine.__file__).parent == ROOT / "routing" / "compiled"
    assert Path(accounts.__file__).suffix in (".so", ".pyd")
    assert Path(calendar.__file__).suffix == ".py"  # not among the modules compiled


def test_the_plain_pass_runs_the_sources() -> None:
    if not PLAIN_PASS:
        pytest.skip("only in `make test`'s second pass (LEADROUTER_PLAIN_PYTHON=1)")
    from routing import engine

    assert routing.compiled_modules() == ()
    assert Path(engine.__file__).suffix == ".py"


def test_the_compiled_core_decides_exactly_as_its_sources_do() -> None:
    _needs_a_build()
    compiled = _python(PROBE, cwd=ROOT)
    plain = _python(PROBE, cwd=ROOT, plain=True)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    assert plain.returncode == 0, plain.stderr[-3000:]
    compiled_kind, compiled_digest = compiled.stdout.split()
    plain_kind, plain_digest = plain.stdout.split()
    assert (compiled_kind, plain_kind) == ("so", "py")
    assert compiled_digest == plain_digest


def test_every_source_file_counts_in_what_a_build_is_made_from(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "routing", tmp_path / "routing", ignore=shutil.ignore_patterns("__pycache__")
    )
    digest = "import routing; print(routing.sources_digest())"
    before = _python(digest, cwd=tmp_path).stdout
    assert before.strip() == routing.sources_digest()
    report = tmp_path / "routing" / "report" / "tally.py"
    report.write_text(report.read_text() + "\n")
    assert _python(digest, cwd=tmp_path).stdout != before


def test_no_extension_sits_beside_the_sources() -> None:
    # An older commit's `routing/__init__.py` knows nothing of `compiled/`: checked out, it runs
    # its own sources, because no extension is where Python would find it without being told.
    beside = [
        path.name
        for path in (ROOT / "routing").iterdir()
        if path.is_file() and path.name.endswith(tuple(EXTENSION_SUFFIXES))
    ]
    assert beside == []


@pytest.fixture
def copy_of_the_build(tmp_path: Path) -> Path:
    _needs_a_build()
    shutil.copytree(
        ROOT / "routing", tmp_path / "routing", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_a_copy_of_the_build_runs_compiled(copy_of_the_build: Path) -> None:
    result = _python(WHERE, cwd=copy_of_the_build)
    assert result.returncode == 0, result.stderr
    engine_file, modules = result.stdout.splitlines()
    assert engine_file.startswith(str(copy_of_the_build / "routing" / "compiled"))
    assert "engine" in modules
    assert "RuntimeWarning" not in result.stderr


def test_an_edited_source_runs_plain_with_a_warning_even_one_not_compiled(
    copy_of_the_build: Path,
) -> None:
    # Compiled code bakes in what it read of other modules (a named tuple's field order): a
    # change to calendar.py, which is not compiled, makes the whole build stale.
    source = copy_of_the_build / "routing" / "calendar.py"
    source.write_text(source.read_text() + "\n# edited after compiling\n")
    result = _python(WHERE, cwd=copy_of_the_build)
    assert result.returncode == 0, result.stderr
    engine_file, modules = result.stdout.splitlines()
    assert engine_file == str(copy_of_the_build / "routing" / "engine.py")
    assert modules == "()"
    assert "routing/ has changed since it was compiled" in result.stderr
    assert "make native" in result.stderr


def test_a_build_for_another_python_or_unfinished_is_not_run(copy_of_the_build: Path) -> None:
    manifest_file = copy_of_the_build / "routing" / "compiled" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "cache_tag": "cpython-399"}))
    result = _python(WHERE, cwd=copy_of_the_build)
    assert result.stdout.splitlines()[0].endswith("engine.py")
    assert "built for cpython-399, not this Python" in result.stderr

    manifest_file.unlink()  # a build stopped before its manifest
    result = _python(WHERE, cwd=copy_of_the_build)
    assert result.stdout.splitlines()[0].endswith("engine.py")
    assert "holds no finished build" in result.stderr

    manifest_file.write_text(json.dumps(manifest))
    (copy_of_the_build / "routing" / "compiled" / manifest["files"][0]).unlink()
    result = _python(WHERE, cwd=copy_of_the_build)
    assert result.stdout.splitlines()[0].endswith("engine.py")
    assert "missing files of its build" in result.stderr
