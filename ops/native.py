"""Compile the routing core's hot path with mypyc: `python ops/native.py build [--optional]`.

The engine and the account matcher are plain, strictly typed Python. mypyc (part of mypy, pinned
in the locks) compiles those modules, from the same source, into C extensions; deciding a lead
then takes about a third less time (bench/README.md, "Results"). The source stays the definition:
a test checks that the compiled core decides exactly as the source does.

The extensions go into `routing/compiled/`, with `manifest.json` written last: the digest of every
source file of `routing/` (compiled code bakes in what it read of the others, such as a named
tuple's field order), the Python they were built for, and the files. `routing/__init__.py` puts
that folder first on the package's path only when the manifest matches the sources as they are;
otherwise the sources run as plain Python, with a warning. A checkout of an older commit, whose
`routing/__init__.py` knows nothing of the folder, runs its own sources.

`build` does nothing when the build is up to date. Without a C compiler or Python's headers it
fails, or with `--optional` says so and leaves the core uncompiled. `clean` removes the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "routing"
COMPILED = ROUTING / "compiled"
MANIFEST = COMPILED / "manifest.json"
# mypy's cache for the compiler, apart from the linter's (.mypy_cache), whose options differ.
CACHE = ROOT / "build" / "mypyc-cache"

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


class BuildFailed(Exception):
    """The build did not finish: the reason, with what the compiler said."""


def sources_digest() -> str:
    """`routing.sources_digest()`: what a build is made from. Imported here, not at the top: the
    package warns, on import, about a build that no longer matches, which is what this mends."""
    sys.path.insert(0, str(ROOT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        from routing import sources_digest as digest_of_the_package
    return digest_of_the_package()


def missing_toolchain() -> str | None:
    """Why the core cannot be compiled on this machine, or None."""
    for tool in ("mypyc", "setuptools"):
        if importlib.util.find_spec(tool) is None:
            return f"{tool} is not installed (the test lock and requirements-native.txt have it)"
    compiler = os.environ.get("CC", "cc").split()[0]
    if not (shutil.which(compiler) or shutil.which("gcc")):
        return "there is no C compiler (Debian and Ubuntu: `apt install gcc python3-dev`)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "Python's headers are not installed (Debian and Ubuntu: `apt install python3-dev`)"
    return None


def up_to_date() -> bool:
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("sources") == sources_digest()
        and manifest.get("cache_tag") == sys.implementation.cache_tag
        and all((COMPILED / name).is_file() for name in manifest.get("files", ()))
    )


def clean() -> None:
    shutil.rmtree(COMPILED, ignore_errors=True)


def build() -> None:
    """Compile `MODULES` in a child process (mypyc and the compiler print a great deal; it is
    shown only when the build fails) and put the result in place, the manifest last."""
    before = sources_digest()
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leadrouter-native-") as scratch:
        built = Path(scratch) / "lib"
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "compile-into", scratch],
            cwd=ROOT,
            env={**os.environ, "MYPY_CACHE_DIR": str(CACHE)},
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise BuildFailed(f"mypyc or the C compiler failed:\n{output[-6000:]}")
        # mypyc compiles some code differently from Python and says so: a generator expression
        # worked out whole, for one. The sources avoid each such construct; a new one fails here.
        warnings = [line for line in output.splitlines() if ": warning:" in line]
        if warnings:
            raise BuildFailed(
                "mypyc would compile these differently from how Python runs them:\n"
                + "\n".join(warnings)
            )
        if sources_digest() != before:
            raise BuildFailed("routing/ changed while it was being compiled: build again")
        files = sorted(path.name for path in (built / "routing").iterdir())
        staging = ROUTING / "compiled.new"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(built / "routing", staging)
    (staging / "manifest.json").write_text(
        json.dumps(
            {
                "sources": before,
                "cache_tag": sys.implementation.cache_tag,
                "modules": list(MODULES),
                "files": files,
            },
            indent=2,
        )
        + "\n"
    )
    clean()
    staging.rename(COMPILED)


def compile_into(scratch: Path) -> None:
    """The child process of `build`: mypyc's extensions, built in `scratch`."""
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]  # it ships no types

    extensions = mypycify(
        [f"routing/{module}.py" for module in MODULES],
        opt_level="3",
        # Each module on its own: every file it makes is under `routing/`, none at the top.
        separate=True,
        target_dir=str(scratch / "c"),
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    setup(
        name="leadrouter-native",
        ext_modules=extensions,
        packages=[],  # no package discovery: this builds extensions only
        py_modules=[],
        script_args=[
            "build_ext",
            "--build-lib",
            str(scratch / "lib"),
            "--build-temp",
            str(scratch / "temp"),
            "--parallel",
            str(cores),
        ],
    )


def main(arguments: list[str]) -> int:
    command = arguments[0] if arguments else ""
    if command == "clean":
        clean()
        return 0
    if command == "compile-into" and len(arguments) == 2:
        compile_into(Path(arguments[1]))
        return 0
    if command != "build":
        print("usage: python ops/native.py build [--optional] | clean", file=sys.stderr)
        return 2
    if up_to_date() and "--force" not in arguments:
        return 0
    missing = missing_toolchain()
    if missing is not None:
        clean()  # a build of older sources would only be warned about at every start
        if "--optional" in arguments:
            print(
                f"The routing core runs as plain Python, about 1.5 times slower per decision: "
                f"{missing}.",
                file=sys.stderr,
            )
            return 0
        print(f"Cannot compile the routing core: {missing}.", file=sys.stderr)
        return 1
    print("compiling the routing core with mypyc (about 40 s)...", file=sys.stderr)
    try:
        build()
    except BuildFailed as failure:
        print(f"The routing core was not compiled: {failure}", file=sys.stderr)
        return 1
    print(f"routing: {len(MODULES)} modules compiled with mypyc", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
