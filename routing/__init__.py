"""The routing core: a pure function from a lead, a policy and `now` to a decision and its trace.

Its hot modules may be compiled, in place, by `ops/native.py` (mypyc): Python then imports the
extension beside a source file instead of the source. An extension built from a source that has
changed since would silently run the old code, so importing the package checks each one against
the source digest written when it was built, and refuses with what to run instead.
"""

from __future__ import annotations

import hashlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def compiled_modules() -> tuple[str, ...]:
    """The modules of this package that run compiled, by name: those with an extension beside
    the source that this Python would import (one built for another Python is not)."""
    found: set[str] = set()
    for path in Path(__file__).parent.iterdir():
        for suffix in EXTENSION_SUFFIXES:
            stem = path.name.removesuffix(suffix)
            if stem != path.name and "." not in stem and not stem.endswith("__mypyc"):
                found.add(stem)
    return tuple(sorted(found))


def _check_compiled_modules() -> None:
    here = Path(__file__).parent
    compiled = compiled_modules()
    if not compiled:
        return
    try:
        built = json.loads((here / "native.json").read_text())
    except (OSError, ValueError):
        built = {}
    stale = sorted(
        module
        for module in compiled
        if not (here / f"{module}.py").is_file()
        or built.get(module) != hashlib.sha256((here / f"{module}.py").read_bytes()).hexdigest()
    )
    if stale:
        names = ", ".join(f"routing/{module}.py" for module in stale)
        raise ImportError(
            f"{names} changed since the routing core was compiled: run `make native` to "
            "compile it again, or `make clean-native` to run it as plain Python"
        )


_check_compiled_modules()
