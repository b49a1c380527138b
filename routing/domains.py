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
    tldextract's URL handling (about 7 µs a call, for a lead seen once). Hosts under a TLD with
    a wildcard or exception rule ("*.jm", "!city.kobe.jp"), and punycode hosts, are left to
    tldextract: those rules need its logic, and the rest is a longest-match lookup."""

    def __init__(self, suffixes: Iterable[str]) -> None:
        suffixes = list(suffixes)
        self.plain = frozenset(s for s in suffixes if s.isascii() and not s.startswith(("*", "!")))
        self.irregular_tlds = frozenset(
            s.rpartition(".")[2] for s in suffixes if s.startswith(("*", "!"))
        )
        self.deepest = max((s.count(".") + 1 for s in self.plain), default=1)

    def registrable(self, host: str) -> str | Unknown | None:
        """The registrable domain of a lowercase host, None if it has none, or UNKNOWN when
        tldextract must say (not a plain ASCII name, an irregular TLD, or an unlisted one)."""
        if "xn--" in host or not _PLAIN_HOST.fullmatch(host):
            return UNKNOWN
        labels = host.split(".")
        if labels[-1] in self.irregular_tlds:
            return UNKNOWN
        # The longest listed suffix wins (a longer rule need not have its parent listed).
        for length in range(min(len(labels), self.deepest), 0, -1):
            if ".".join(labels[-length:]) in self.plain:
                return ".".join(labels[-length - 1 :]) if length < len(labels) else None
        return UNKNOWN


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
