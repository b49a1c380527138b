"""The routing core compiled with mypyc (`ops/native.py`): what `make test` runs is what ships,
the compiled modules decide exactly as their source does, and a stale one is refused."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import routing
from ops.native import MODULES

ROOT = Path(__file__).resolve().parents[2]

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


def _can_compile() -> str | None:
    """Why the core cannot be compiled here, or None."""
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed (it comes with the test lock's mypy)"
    if not (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")):
        return "no C compiler is installed: the routing core runs as plain Python here"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "Python's headers are not installed: the routing core runs as plain Python here"
    return None


def _probe(python_path: list[Path]) -> tuple[str, str]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(path) for path in python_path),
        "PYTHONHASHSEED": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=python_path[0],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    kind, digest = result.stdout.split()
    return kind, digest


def test_make_test_runs_the_routing_core_compiled() -> None:
    reason = _can_compile()
    if reason is not None:
        pytest.skip(reason)
    assert set(routing.compiled_modules()) == set(MODULES), (
        "`make test` compiles the routing core first (`make native`): the suite runs what ships"
    )
    from routing import accounts, engine

    assert Path(engine.__file__).suffix in (".so", ".pyd")
    assert Path(accounts.__file__).suffix in (".so", ".pyd")


def test_the_compiled_core_decides_exactly_as_its_source_does(tmp_path: Path) -> None:
    if not routing.compiled_modules():
        pytest.skip(_can_compile() or "the routing core is not compiled here: run `make native`")
    # The same sources with no extension beside them, found before the project's own.
    shutil.copytree(ROOT / "routing", tmp_path / "routing", ignore=shutil.ignore_patterns("*.so"))
    compiled = _probe([ROOT])
    plain = _probe([tmp_path, ROOT])
    assert compiled[0] == "so"
    assert plain[0] == "py"
    assert compiled[1] == plain[1]


def test_a_compiled_module_whose_source_changed_is_refused(tmp_path: Path) -> None:
    if not routing.compiled_modules():
        pytest.skip(_can_compile() or "the routing core is not compiled here: run `make native`")
    copy = tmp_path / "routing"
    shutil.copytree(ROOT / "routing", copy)
    source = copy / "accounts.py"
    source.write_text(source.read_text() + "\n# edited after compiling\n")
    result = subprocess.run(
        [sys.executable, "-c", "import routing.accounts"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "routing/accounts.py changed since the routing core was compiled" in result.stderr
    assert "make native" in result.stderr
