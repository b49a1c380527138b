"""Compile the routing core's hot path with mypyc, in place: `python ops/native.py build`.

The engine and the account matcher are plain, fully typed Python. mypyc (part of mypy, pinned in
the locks) compiles those modules, from the same source, into C extensions placed beside them;
Python then imports the extension instead of the source. Deciding a lead takes about a third
less time (bench/README.md, "Results"). Nothing else changes: the source stays the definition, and a
test checks that the compiled core decides exactly as the source does.

`build` writes `routing/native.json` with each compiled source's SHA-256; `routing` refuses to
import a compiled module whose source has changed since (`routing/__init__.py`), so an edit can
never run stale compiled code. `clean` removes the extensions, and the core runs as plain Python.
Where there is no C compiler, `build --optional` says so and leaves the core uncompiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "routing"
MANIFEST = ROUTING / "native.json"

# The modules every decision runs through, and the matcher's. The others (the policy's parsing,
# the replay's, the reports') run once per policy or per question, where compiling gains nothing.
MODULES = (
    "accounts",
    "company_names",
    "conditions",
    "distribution",
    "eligibility",
    "engine",
    "name_evidence",
    "normalize",
    "plan",
    "targets",
    "typo_map",
)


def source_digest(module: str) -> str:
    return hashlib.sha256((ROUTING / f"{module}.py").read_bytes()).hexdigest()


def compiled_files() -> list[Path]:
    return sorted(
        path for path in ROUTING.iterdir() if path.suffix in (".so", ".pyd") and path.is_file()
    )


def clean() -> None:
    for path in compiled_files():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)


def build() -> None:
    """Compile `MODULES` in place, each on its own (mypyc's `separate`): every extension lives
    in `routing/`, beside its source, so an installed package carries them as it is."""
    # Imported here: `clean` and the import check need neither.
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]  # it ships no types

    clean()
    os.chdir(ROOT)  # mypyc names the modules by their paths from here
    with tempfile.TemporaryDirectory(prefix="leadrouter-native-") as scratch:
        extensions = mypycify(
            [f"routing/{module}.py" for module in MODULES],
            opt_level="3",
            separate=True,
            target_dir=str(Path(scratch) / "c"),
        )
        setup(
            name="leadrouter-native",
            ext_modules=extensions,
            packages=[],  # no package discovery: this builds extensions only
            py_modules=[],
            script_args=[
                "--quiet",
                "build_ext",
                "--inplace",
                "--parallel",
                str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2),
                "--build-temp",
                str(Path(scratch) / "temp"),
            ],
        )
    MANIFEST.write_text(
        json.dumps({module: source_digest(module) for module in MODULES}, indent=2) + "\n"
    )


def main(arguments: list[str]) -> int:
    command = arguments[0] if arguments else ""
    if command == "clean":
        clean()
        return 0
    if command != "build":
        print("usage: python ops/native.py build [--optional] | clean", file=sys.stderr)
        return 2
    try:
        build()
    except (Exception, SystemExit) as error:  # setuptools reports a failed compiler by exit
        clean()
        if "--optional" not in arguments:
            raise
        print(
            f"The routing core was not compiled ({error or type(error).__name__}); it runs as "
            "plain Python, about 1.5 times slower per decision. A C compiler and Python's headers "
            "compile it: `make native`.",
            file=sys.stderr,
        )
        return 0
    print(f"routing: {len(MODULES)} modules compiled with mypyc", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
