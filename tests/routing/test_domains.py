"""A domain written in Unicode and in punycode is one domain, wherever the router compares one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.accounts import AccountIndex
from routing.domains import ascii_host, canonical_email, canonical_host, registrable_domain
from routing.engine import route
from routing.freemail import email_domain_type, is_disposable
from routing.leads import parse_lead
from routing.model import Account
from tests.routing.examples import example_policy

TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "münchner-bau.de",
        "xn--mnchner-bau-thb.de",
        "XN--MNCHNER-BAU-THB.DE",
        "www.Münchner-Bau.de",
        "shop.xn--mnchner-bau-thb.de.",
        "https://www.xn--mnchner-bau-thb.de/kontakt",
        "https://münchner-bau.de:8443/",
        "anna@xn--mnchner-bau-thb.de",
        "mu\u0308nchner-bau.de",  # "ü" as "u" and a combining diaeresis
    ],
)
def test_a_domain_and_its_punycode_are_one_registrable_domain(value: str) -> None:
    assert registrable_domain(value) == "münchner-bau.de"


def test_a_punycode_suffix_is_the_unicode_suffix() -> None:
    assert registrable_domain("www.xn--bcher-kva.xn--p1ai") == "bücher.рф"
    assert registrable_domain("xn--55qx5d.cn") is None  # 公司.cn is a public suffix itself


def test_the_two_spellings_convert_into_each_other() -> None:
    assert canonical_host("xn--mnchner-bau-thb.de") == "münchner-bau.de"
    assert ascii_host("Münchner-Bau.de") == "xn--mnchner-bau-thb.de"
    # IDNA 2008, as browsers resolve it: "ß" is a letter of its own, not "ss".
    assert ascii_host("faß.de") == "xn--fa-hia.de"
    assert canonical_host("acme.com") == "acme.com"


def test_a_label_that_is_not_valid_idna_is_kept_as_written() -> None:
    assert canonical_host("_dmarc.xn--mnchner-bau-thb.de") == "_dmarc.münchner-bau.de"
    assert canonical_host("xn--zz.de") == "xn--zz.de"  # not punycode at all


def test_an_address_in_either_spelling_is_the_same_address() -> None:
    assert canonical_email("Anna@XN--MNCHNER-BAU-THB.de") == "anna@münchner-bau.de"
    assert canonical_email("anna@münchner-bau.de") == "anna@münchner-bau.de"
    assert canonical_email("Anna@Acme.com") == "anna@acme.com"


def test_a_throwaway_domain_listed_in_punycode_is_known_in_unicode() -> None:
    listed = "xn--9kq967o.com"  # on the disposable-email-domains list in this spelling
    unicode = canonical_host(listed)
    assert unicode != listed
    assert is_disposable(unicode)
    assert email_domain_type(f"someone@{unicode}") == "free"


def test_a_lead_in_punycode_matches_an_account_written_in_unicode_and_back() -> None:
    policy = example_policy()
    accounts = AccountIndex(
        [
            Account("A1", "Münchner Bau", "https://www.münchner-bau.de", owner="bob"),
            Account("A2", "Bücherstube", "xn--bcher-kva.de", owner="bob"),
        ]
    )
    for email, account in (
        ("anna@xn--mnchner-bau-thb.de", "A1"),
        ("Anna@Münchner-Bau.de", "A1"),
        ("ben@bücher.de", "A2"),
    ):
        lead = parse_lead({"id": "L-1", "email": email})
        decision = route(lead, policy=policy, now=TUESDAY, accounts=accounts)
        assert decision.account is not None, email
        assert (decision.account.account.id, decision.account.method) == (account, "domain")
        assert decision.facts["email"] == canonical_email(email)
        assert decision.facts["email_domain"] == canonical_host(email.rpartition("@")[2])
