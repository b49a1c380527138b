"""Registrable domains ("https://www.eu.acme.co.uk/x" -> "acme.co.uk") from the Public Suffix List.

tldextract is built with no suffix-list URLs and no cache directory, so it only ever reads the
snapshot bundled with the package: the routing core must never touch the network.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

_extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


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
    parts = _extract(text)
    if not parts.suffix or not parts.domain:
        return None
    return f"{parts.domain}.{parts.suffix}"
