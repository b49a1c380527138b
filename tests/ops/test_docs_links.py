"""The README stays a user's page (under 30,000 characters, every docs page one link away), and
every relative link in the README, docs/ and bench/README.md leads to a file that exists and, for
a Markdown file, to a heading (or `<a id>`) that it has."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.ops.test_deployment import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "bench" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"(#{1,6}) +(.+?) *#*$")
EXPLICIT_ANCHOR = re.compile(r"<a (?:id|name)=\"([^\"]+)\"")


def prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for line in prose(path):
        heading = HEADING.match(line)
        if heading:
            name = slug(heading.group(2))
            found.add(f"{name}-{seen[name]}" if seen[name] else name)
            seen[name] += 1
        found.update(EXPLICIT_ANCHOR.findall(line))
    return found


def links(path: Path) -> list[str]:
    return [target for line in prose(path) for target in LINK.findall(line)]


def relative(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:", target)  # https:, mailto:, ...


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in filter(relative, links(page)):
        file, _, anchor = target.partition("#")
        destination = (page.parent / file).resolve() if file else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert not broken, broken


def test_the_pages_have_links_to_check() -> None:
    assert DOCS, "docs/ holds no pages"
    assert all(links(page) for page in PAGES)


def test_the_readme_is_under_30000_characters() -> None:
    assert len((ROOT / "README.md").read_bytes()) < 30_000


def test_the_readme_starts_with_the_demo_and_the_whole_suite() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[:6] == [
        "# leadrouter",
        "",
        "```sh",
        "make demo    # route ~50 realistic leads with the example policy; no Slack, CRM or "
        "database needed",
        "make test    # the whole suite: ruff, mypy and pytest",
        "```",
    ]


def test_every_docs_page_has_a_title_a_link_back_and_a_link_from_the_readme() -> None:
    readme = set(links(ROOT / "README.md"))
    for page in DOCS:
        title, blank, back = page.read_text(encoding="utf-8").splitlines()[:3]
        assert title.startswith("# ") and not blank, page.name
        assert "](../README.md)" in back, page.name
        assert f"docs/{page.name}" in readme, page.name


def test_the_slugs_are_githubs() -> None:
    assert slug("Retention: what is kept, and for how long") == (
        "retention-what-is-kept-and-for-how-long"
    )
    assert slug("`POST /leads`") == "post-leads"
    assert slug("Conditions (`when:`)") == "conditions-when"
    assert slug("Routing: `bench_routing.py`") == "routing-bench_routingpy"
