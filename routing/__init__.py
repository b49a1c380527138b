"""The routing core: a pure function from a lead, a policy and `now` to a decision and its trace.

Its hot modules may run compiled (`ops/native.py`, mypyc): the extensions are in `compiled/`,
which this puts first on the package's path, so that Python imports them instead of the sources,
only when that build was made from the sources as they are now (every source file's digest, in
the build's manifest) for this Python. Otherwise the sources run, as plain Python, with a warning
saying how to compile them again: compiled code never runs stale. `LEADROUTER_PLAIN_PYTHON=1` runs
the sources whatever is built (the suite runs the routing tests both ways).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

_HERE = Path(__file__).parent
_COMPILED = _HERE / "compiled"
_compiled: tuple[str, ...] = ()


def compiled_modules() -> tuple[str, ...]:
    """The modules of this package that run compiled, by name (none as plain Python)."""
    return _compiled


def sources_digest() -> str:
    """One SHA-256 over every source file of the package, by path: what a build is made from
    (`ops/native.py` records it in the build's manifest)."""
    digest = hashlib.sha256()
    for path in sorted(_HERE.rglob("*.py")):
        relative = path.relative_to(_HERE).as_posix()
        if relative.startswith("compiled/"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _why_not_compiled(manifest: dict[str, object]) -> str | None:
    if manifest.get("cache_tag") != sys.implementation.cache_tag:
        return f"routing/compiled was built for {manifest.get('cache_tag')}, not this Python"
    files = manifest.get("files")
    if not isinstance(files, list) or not all((_COMPILED / str(f)).is_file() for f in files):
        return "routing/compiled is missing files of its build"
    if manifest.get("sources") != sources_digest():
        return "routing/ has changed since it was compiled"
    return None


def _use_compiled() -> None:
    global _compiled
    if os.environ.get("LEADROUTER_PLAIN_PYTHON") or not _COMPILED.is_dir():
        return
    try:
        manifest = json.loads((_COMPILED / "manifest.json").read_text())
    except (OSError, ValueError):
        problem: str | None = "routing/compiled holds no finished build"
    else:
        problem = _why_not_compiled(manifest)
    if problem is not None:
        warnings.warn(
            f"{problem}: the routing core runs as plain Python, about 1.5 times slower, until "
            "`make native` compiles it again",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    __path__.insert(0, str(_COMPILED))
    _compiled = tuple(manifest["modules"])


_use_compiled()
