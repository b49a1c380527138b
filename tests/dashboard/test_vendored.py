"""uPlot, vendored: the files are those of the release VERSION names (by their sha256), with its
licence beside them, and the pages load them from the package, never from another site."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import bot.dashboard

PACKAGE = Path(bot.dashboard.__file__).parent
UPLOT = PACKAGE / "static" / "vendor" / "uplot"


def test_the_vendored_files_are_the_pinned_release_unchanged_with_its_licence() -> None:
    version = (UPLOT / "VERSION").read_text()
    (release,) = re.findall(r"^uPlot (\d+\.\d+\.\d+), MIT", version, re.MULTILINE)
    found = re.findall(r"^([0-9a-f]{64})  (\S+)$", version, re.MULTILINE)
    pinned = {name: digest for digest, name in found}
    assert set(pinned) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in pinned.items():
        assert hashlib.sha256((UPLOT / name).read_bytes()).hexdigest() == digest, name
    assert (
        (UPLOT / "uPlot.iife.min.js")
        .read_text()
        .startswith(f"/*! https://github.com/leeoniya/uPlot (v{release}) */")
    )
    assert "The MIT License" in (UPLOT / "LICENSE").read_text()


def test_no_page_loads_anything_from_another_site() -> None:
    for template in (PACKAGE / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), template.name
