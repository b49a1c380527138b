"""Whether an e-mail domain belongs to a business or to a free or throwaway mail service.

Consumer web-mail providers come from `data/free_email_domains.txt`, which ships in this package;
throwaway domains come from the maintained `disposable-email-domains` package. Both are read
once, at import, into sets, so a lookup is a few set probes and the answer is then cached.
"""

from __future__ import annotations

from collections.abc import Set
from functools import lru_cache
from importlib.resources import files
from typing import Literal

from disposable_email_domains import blocklist as _DISPOSABLE

from routing.domains import ascii_host

DomainType = Literal["free", "business"]


def _read_domain_list(name: str) -> frozenset[str]:
    text = files("routing").joinpath("data", name).read_text(encoding="utf-8")
    lines = (line.partition("#")[0].strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line)


FREE_EMAIL_DOMAINS: frozenset[str] = _read_domain_list("free_email_domains.txt")


def _host(domain: str | None) -> str | None:
    """The lower-case host, also when handed a whole address or a fully qualified "gmail.com.",
    spelt in ASCII as both lists are (an internationalised name in punycode)."""
    if not domain:
        return None
    host = ascii_host(domain.rpartition("@")[2].strip().strip("."))
    return host or None


def _listed(host: str, domains: Set[str]) -> bool:
    """Whether `host` or any domain it is a subdomain of is in `domains`."""
    while True:
        if host in domains:
            return True
        _, dot, host = host.partition(".")
        if not dot:
            return False


@lru_cache(maxsize=65536)
def is_disposable(domain: str | None) -> bool:
    """Whether the domain, or one it is a subdomain of, is a known throwaway mail service.

    Our own list of real providers wins: the disposable list flags a few long-standing
    national providers (21cn.com, sify.com) whose users are no more throwaway than Gmail's.
    """
    host = _host(domain)
    if host is None or _listed(host, FREE_EMAIL_DOMAINS):
        return False
    return _listed(host, _DISPOSABLE)


@lru_cache(maxsize=65536)
def email_domain_type(domain: str | None) -> DomainType | None:
    """Free for consumer or throwaway mail, business for any other domain, None for no domain."""
    host = _host(domain)
    if host is None:
        return None
    # `_listed` in both lists, in one walk up the host's parent domains.
    while True:
        if host in FREE_EMAIL_DOMAINS or host in _DISPOSABLE:
            return "free"
        _, dot, host = host.partition(".")
        if not dot:
            return "business"
