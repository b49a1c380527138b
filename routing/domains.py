"""Registrable domains ("https://www.eu.acme.co.uk/x" -> "acme.co.uk") from the Public Suffix List.

tldextract is built with no suffix-list URLs and no cache directory, so it only ever reads the
snapshot bundled with the package: the routing core must never touch the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import tldextract

_extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class SuffixRules:
    """The list's plain rules ("com", "co.uk"), for looking up plain ASCII host names without
    tldextract's URL handling (about 7 µs a call, for a lead seen once). Hosts under a name
    with a wildcard or exception rule ("*.sch.uk", "!city.kobe.jp": under "sch.uk" and
    "kobe.jp"), and punycode hosts, are left to tldextract: those rules need its logic, and
    elsewhere its answer is the longest listed suffix and one label more."""

    def __init__(self, suffixes: Iterable[str]) -> None:
        suffixes = list(suffixes)
        self.plain = frozenset(s for s in suffixes if s.isascii() and not s.startswith(("*", "!")))
        # The names the wildcard and exception rules apply under: a rule without its first
        # label. Not whole TLDs: "*.sch.uk" says nothing about acme.co.uk, and a tenth of
        # the leads' hosts are under uk, jp or br.
        self.irregular = frozenset(
            s.partition(".")[2] for s in suffixes if s.startswith(("*", "!"))
        )
        self.deepest = max((s.count(".") + 1 for s in self.plain | self.irregular if s), default=1)

    def registrable(self, host: str) -> str | Unknown | None:
        """The registrable domain of a lowercase host, None if it has none, or UNKNOWN when
        tldextract must say (not a plain ASCII name, under an irregular rule, or unlisted)."""
        if "xn--" in host or not _PLAIN_HOST.fullmatch(host):
            return UNKNOWN
        # The host's suffixes, longest first from `deepest` labels down, each with `parent`,
        # the name one label longer: the registrable domain if the suffix is the longest
        # listed one (a longer rule need not have its parent listed). Every suffix is looked
        # at, for the irregular names. Cut off the host with `partition` rather than joined
        # from its labels: a lead's host is seen once, so this runs for most leads.
        suffix, parent = host, None
        for _ in range(host.count(".") + 1 - self.deepest):
            parent, suffix = suffix, suffix.partition(".")[2]
        found: str | Unknown | None = UNKNOWN
        while suffix:
            if suffix in self.irregular:
                return UNKNOWN
            if found is UNKNOWN and suffix in self.plain:
                found = parent
            parent, suffix = suffix, suffix.partition(".")[2]
        return found


class Unknown:
    """`SuffixRules.registrable` cannot tell: ask tldextract."""


UNKNOWN = Unknown()
_PLAIN_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_RULES = SuffixRules(_extract.tlds)


@lru_cache(maxsize=65536)
def registrable_domain(value: str | None) -> str | None:
    """The registrable domain of a URL, host name or e-mail address; None when there is none."""
    if not value:
        return None
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rpartition("@")[2]
    text = text.rstrip(".")
    if not text:
        return None
    found = _RULES.registrable(text)
    if not isinstance(found, Unknown):
        return found
    parts = _extract(text)
    if not parts.suffix or not parts.domain:
        return None
    return f"{parts.domain}.{parts.suffix}"
