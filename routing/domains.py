"""Registrable domains ("https://www.eu.acme.co.uk/x" -> "acme.co.uk") from the Public Suffix List,
and the one spelling of an internationalised domain name.

tldextract is built with no suffix-list URLs and no cache directory, so it only ever reads the
snapshot bundled with the package: the routing core must never touch the network.

A domain has two spellings when it is not plain ASCII: `münchner-bau.de` is `xn--mnchner-bau-thb.de`
in DNS (punycode). Every domain the router compares (a lead's e-mail, domain and website, an
account's domain) is put in its Unicode form, the one people write and read, by the `idna`
package's UTS 46 processing (IDNA 2008 as browsers apply it: case, width and composition folded,
so `MÜNCHNER-BAU.DE` and `ｍüｎｃｈｎｅｒ-bau.de` are the same name). Plain ASCII names, nearly
all of them, are already in that form and skip the conversion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from functools import lru_cache

import idna
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
    """The registrable domain of a URL, host name or e-mail address, in its Unicode form
    (`canonical_host`); None when there is none."""
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
    if "/" not in text and ":" not in text:
        # A bare host: in one spelling before the suffix is looked for, so that a full-width
        # "ａｃｍｅ．ｃｏｍ" has the suffix "com" (URLs are taken apart by tldextract first).
        text = canonical_host(text)
    parts = _extract(text)
    if not parts.suffix or not parts.domain:
        return None
    return canonical_host(f"{parts.domain}.{parts.suffix}")


def canonical_host(host: str) -> str:
    """A host name in the one spelling the router compares: lower case, and an internationalised
    name in Unicode ("XN--MNCHNER-BAU-THB.de" -> "münchner-bau.de"). A label that is not a valid
    IDNA label (an underscore, a broken "xn--") is left as it is, lower-cased."""
    host = host.lower()
    if host.isascii() and "xn--" not in host:
        return host
    return _unicode_host(host)


def ascii_host(host: str) -> str:
    """`canonical_host`'s name in its ASCII (punycode) spelling, for lists kept in that form."""
    host = host.lower()
    if host.isascii() and "xn--" not in host:
        return host
    return _ascii_host(host)


def canonical_email(email: str) -> str:
    """An e-mail address lower-cased (as leads' are), with its domain in `canonical_host`'s
    spelling: the same mailbox written either way gives the same text."""
    text = email.strip().lower()
    if text.isascii() and "xn--" not in text:
        return text
    local, at, host = text.rpartition("@")
    return f"{local}{at}{canonical_host(host)}"


def email_spellings(email: str) -> frozenset[str]:
    """The ways a stored (lower-cased) address may spell `canonical_email(email)`'s mailbox:
    as given, with its domain in Unicode, and in punycode."""
    text = email.strip().lower()
    local, at, host = text.rpartition("@")
    if not at:
        return frozenset((text,))
    return frozenset((text, f"{local}@{canonical_host(host)}", f"{local}@{ascii_host(host)}"))


# Cached: the few internationalised names repeat (a company's leads), and `idna` is pure Python
# (tens of microseconds a name).
@lru_cache(maxsize=4096)
def _unicode_host(host: str) -> str:
    return ".".join(_label(label, idna.decode) for label in _idna_labels(host))


@lru_cache(maxsize=4096)
def _ascii_host(host: str) -> str:
    return ".".join(_label(label, _to_ascii) for label in _idna_labels(host))


def _to_ascii(label: str) -> str:
    return idna.encode(label).decode("ascii")


def _idna_labels(host: str) -> list[str]:
    """The labels of `host` after UTS 46 mapping (case, width, composition; "．" is a dot)."""
    with suppress(idna.IDNAError):
        host = idna.uts46_remap(host, std3_rules=False, transitional=False)
    return host.split(".")


def _label(label: str, convert: Callable[[str], str]) -> str:
    """One label converted, or as it is when it is not a valid IDNA label."""
    if not label:
        return label
    try:
        return convert(label)
    except UnicodeError:  # idna.IDNAError is one
        return label
