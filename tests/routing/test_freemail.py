from __future__ import annotations

import re
from importlib.resources import files

import pytest
from disposable_email_domains import blocklist

from routing.freemail import (
    FREE_EMAIL_DOMAINS,
    email_domain_type,
    is_disposable,
)

DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.de",
        "gmx.net",
        "web.de",
        "t-online.de",
        "freenet.de",
        "mail.ru",
        "yandex.ru",
        "rambler.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "btinternet.com",
        "sky.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "zoho.com",
        "tutanota.com",
        "fastmail.com",
        "hey.com",
        "rediffmail.com",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "bol.com.br",
        "uol.com.br",
        "terra.com.br",
    ],
)
def test_consumer_webmail_providers_are_free(domain: str) -> None:
    assert email_domain_type(domain) == "free"
    assert not is_disposable(domain)


@pytest.mark.parametrize("domain", ["mailinator.com", "yopmail.com", "10minutemail.com"])
def test_throwaway_domains_are_disposable_and_count_as_free(domain: str) -> None:
    assert is_disposable(domain)
    assert email_domain_type(domain) == "free"


@pytest.mark.parametrize(
    "domain", ["acme.com", "acme.co.uk", "stripe.com", "siemens.de", "example.org", "localhost"]
)
def test_any_other_domain_is_business(domain: str) -> None:
    assert email_domain_type(domain) == "business"
    assert not is_disposable(domain)


@pytest.mark.parametrize("domain", ["mail.yahoo.co.uk", "vip.qq.com", "eu.gmail.com"])
def test_subdomains_of_a_free_provider_are_free(domain: str) -> None:
    assert email_domain_type(domain) == "free"


def test_subdomains_of_a_throwaway_domain_are_disposable() -> None:
    assert is_disposable("inbox.mailinator.com")
    assert email_domain_type("inbox.mailinator.com") == "free"


@pytest.mark.parametrize("domain", ["gmail.company.com", "notgmail.com", "gmail.com.evil.io"])
def test_a_business_domain_that_merely_contains_a_provider_name_is_business(domain: str) -> None:
    assert email_domain_type(domain) == "business"


def test_public_suffixes_above_a_listed_domain_are_not_free() -> None:
    assert email_domain_type("co.uk") == "business"
    assert email_domain_type("com") == "business"


@pytest.mark.parametrize("domain", ["GMAIL.COM", " Gmail.com ", "gmail.com.", "jane@gmail.com"])
def test_case_spacing_trailing_dot_and_a_whole_address_are_tolerated(domain: str) -> None:
    assert email_domain_type(domain) == "free"


@pytest.mark.parametrize("domain", [None, "", "   ", "jane@", "."])
def test_no_domain_has_no_type_and_is_not_disposable(domain: str | None) -> None:
    assert email_domain_type(domain) is None
    assert not is_disposable(domain)


def test_a_real_provider_the_disposable_list_flags_is_free_but_not_disposable() -> None:
    flagged = sorted(FREE_EMAIL_DOMAINS & blocklist)
    for domain in flagged:
        assert email_domain_type(domain) == "free"
        assert not is_disposable(domain)


def test_the_shipped_list_holds_a_few_hundred_well_formed_domains() -> None:
    assert len(FREE_EMAIL_DOMAINS) >= 300
    malformed = sorted(domain for domain in FREE_EMAIL_DOMAINS if not DOMAIN.match(domain))
    assert malformed == []


def test_the_shipped_list_names_no_domain_twice() -> None:
    text = files("routing").joinpath("data", "free_email_domains.txt").read_text(encoding="utf-8")
    entries = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    assert len(entries) == len(set(entries))
    assert len(entries) == len(FREE_EMAIL_DOMAINS)
