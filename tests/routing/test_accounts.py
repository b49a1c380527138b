from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from routing.accounts import MAX_CANDIDATES, AccountIndex
from routing.company_names import company_key, name_blocking_keys
from routing.model import Account
from routing.name_evidence import name_score
from routing.name_evidence import typo_edits as accounts_edits


def account(account_id: str, name: str, domain: str | None = None) -> Account:
    return Account(id=account_id, name=name, domain=domain)


# Domains


def test_an_account_stored_as_a_url_matches_a_lead_on_its_registrable_domain() -> None:
    acme = account("a1", "Acme", "https://www.acme.co.uk/about")
    index = AccountIndex([acme])

    found = index.match(domain="acme.co.uk", company=None, threshold=90)

    assert found is not None
    assert (found.account, found.method, found.score) == (acme, "domain", 100.0)


def test_an_account_on_a_subdomain_matches_the_registrable_domain() -> None:
    acme = account("a1", "Acme", "eu.shop.acme.com")
    index = AccountIndex([acme])

    found = index.match(domain="acme.com", company=None, threshold=90)

    assert found is not None
    assert found.account == acme


def test_several_accounts_on_one_domain_go_to_the_lowest_id_whatever_the_load_order() -> None:
    accounts = [
        account("b-2", "Acme Europe", "https://acme.com/eu"),
        account("a-9", "Acme Inc", "acme.com"),
        account("c-1", "Acme Asia", "www.acme.com"),
    ]

    for ordering in (accounts, accounts[::-1]):
        found = AccountIndex(ordering).match(domain="acme.com", company=None, threshold=90)
        assert found is not None
        assert found.account.id == "a-9"


def test_a_domain_match_beats_a_closer_name_match() -> None:
    by_domain = account("a1", "Initech Holdings", "initech.com")
    by_name = account("a2", "Initrode", "initrode.com")
    index = AccountIndex([by_domain, by_name])

    found = index.match(domain="initech.com", company="Initrode", threshold=80)

    assert found is not None
    assert (found.account, found.method) == (by_domain, "domain")


def test_an_unknown_domain_falls_back_to_the_company_name() -> None:
    acme = account("a1", "Acme Inc", "acme.com")
    index = AccountIndex([acme])

    found = index.match(domain="acme-mail.com", company="ACME", threshold=90)

    assert found is not None
    assert (found.account, found.method, found.score) == (acme, "name", 100.0)


def test_an_account_without_a_usable_domain_is_matched_by_name_only() -> None:
    acme = account("a1", "Acme", "not a domain")
    index = AccountIndex([acme])

    assert index.match(domain="acme.com", company=None, threshold=0) is None
    assert index.match(domain=None, company="Acme", threshold=90) is not None


def test_a_lead_with_neither_domain_nor_company_matches_nothing() -> None:
    index = AccountIndex([account("a1", "Acme", "acme.com")])

    assert index.match(domain=None, company=None, threshold=0) is None
    assert index.match(domain="", company="  ", threshold=0) is None


# Company keys


@pytest.mark.parametrize(
    "name",
    [
        "Acme, Inc.",
        "ACME Corporation",
        "acme ltd",
        "Acme Limited",
        "Acme L.L.C.",
        "Acme Pty Ltd",
        "Acme Co., Ltd.",
        "Acme S.A.",
        "Acme S.p.A.",
        "Acme B.V.",
        "Acme GmbH & Co. KG",
        "Acme A/S",
        "Acme & Co.",
        "Acme Inc. Ltd",
        "The Acme Company",
        "Acme Oyj",
        "Acme Oyj Abp",
        "Acme Sp. z o.o.",
        "Acme sp. z o. o.",
        "Acme Spółka z o.o.",
        "Acme AB (publ)",
        "Acme UG (haftungsbeschränkt)",
        "Acme SE & Co. KGaA",
        "Acme s.r.o.",
        "Acme Kft.",
        "Acme ApS",
        "Acme S.L.U.",
        "Acme S. de R.L. de C.V.",
        "Acme Ltd. Şti.",
        "ООО Acme ООО",  # a form written first stays: only suffixes are stripped
    ],
)
def test_legal_suffixes_and_a_leading_the_are_ignored(name: str) -> None:
    expected = "ооо acme" if name.startswith("ООО") else "acme"
    assert company_key(name) == expected


# The countries most leads come from, as the `cleanco` package names them. Brazil is left out:
# cleanco lists Bulgaria's forms under it (Brazil's own, Ltda and S.A., are covered above).
COMMON_COUNTRIES = (
    "Argentina", "Australia", "Austria", "Belgium", "Canada", "Chile", "Croatia",
    "Czech Republic", "Denmark", "Estonia", "Finland", "France", "Germany", "Greece",
    "Hong Kong", "Hungary", "Iceland", "India", "Ireland", "Israel", "Italy", "Japan", "Latvia",
    "Lithuania", "Luxemborg", "Malaysia", "Mexico", "Netherlands", "New Zealand", "Norway",
    "Philippines", "Poland", "Portugal", "Romania", "Russia", "Singapore", "Slovakia",
    "Slovenia", "Spain", "Sweden", "Switzerland", "Turkey", "United Kingdom",
    "United States of America",
)  # fmt: skip


def _as_written(term: str) -> str:
    """A cleanco term as a company writes it: one of them is UTF-8 read as Latin-1 there."""
    try:
        return term.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return term


def test_every_legal_term_cleanco_knows_for_the_common_countries_is_stripped() -> None:
    from cleanco.termdata import terms_by_country

    assert set(COMMON_COUNTRIES) <= set(terms_by_country)  # a renamed country fails here
    kept = {
        (country, term)
        for country in COMMON_COUNTRIES
        for term in terms_by_country[country]
        if company_key(f"Nordwind {_as_written(term)}") != "nordwind"
    }
    assert kept == set()


def test_names_differing_only_in_legal_suffix_match_at_full_score() -> None:
    acme = account("a1", "Acme, Inc.")
    index = AccountIndex([acme])

    for company in ("ACME Corporation", "acme ltd"):
        found = index.match(domain=None, company=company, threshold=100)
        assert found is not None
        assert (found.account, found.score) == (acme, 100.0)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("AG", "ag"),
        ("Company Limited", "company limited"),
        ("The Co", "co"),
        ("The", "the"),
        ("The The", "the"),
    ],
)
def test_a_name_that_is_all_legal_suffix_is_kept_whole(name: str, key: str) -> None:
    assert company_key(name) == key


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Müller GmbH", "muller"),
        ("Société Générale", "societe generale"),
        ("STRAẞE Logistik", "strasse logistik"),
        ("ＡＣＭＥ　Ｉｎｃ", "acme"),
        ("Яндекс", "яндекс"),
        ("株式会社トヨタ", "株式会社トヨタ"),
        ("삼성전자", "삼성전자"),
        ("टाटा", "टाटा"),
    ],
)
def test_names_in_any_script_keep_their_letters_without_accents(name: str, key: str) -> None:
    assert company_key(name) == key


def test_a_letter_that_decomposes_into_marks_alone_keeps_them_as_its_key() -> None:
    # An Arabic ligature of shadda and dammatan: NFKC leaves only the two marks.
    assert company_key("\ufc5e") == company_key(company_key("\ufc5e")) != ""


def test_an_accented_account_name_matches_the_same_name_typed_without_accents() -> None:
    muller = account("a1", "Müller GmbH")
    index = AccountIndex([muller])

    found = index.match(domain=None, company="Muller", threshold=95)

    assert found is not None
    assert (found.account, found.score) == (muller, 100.0)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("O'Brien & Sons, L.L.C.", "obrien and sons"),
        ("Hewlett-Packard Co.", "hewlett packard"),
        ("Yahoo!", "yahoo"),
        ("  Blue   River\tLogistics ", "blue river logistics"),
        ("AT&T", "at and t"),
        ("Smith & Co. Ltd", "smith"),
        ("3M", "3m"),
    ],
)
def test_punctuation_is_dropped_and_whitespace_collapsed(name: str, key: str) -> None:
    assert company_key(name) == key


def test_a_name_without_letters_or_digits_has_no_key() -> None:
    assert company_key(None) == ""
    assert company_key("") == ""
    assert company_key("-- ,!") == ""


@given(st.text(alphabet=st.characters(categories=("L", "N")), min_size=1))
def test_any_alphanumeric_name_has_a_key(name: str) -> None:
    assert company_key(name)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["the", "The", "&", "Co.", "Ltd", "GmbH", "pty", "A/S", "and", ","]),
            st.text(min_size=1, max_size=8),
        ),
        max_size=8,
    ).map(" ".join)
)
def test_a_company_key_is_its_own_key(name: str) -> None:
    key = company_key(name)

    assert company_key(key) == key


# Blocking keys


def test_blocking_keys_are_the_longer_words_and_a_four_character_prefix() -> None:
    assert name_blocking_keys("blue river logistics") == {
        "t:blue",
        "t:river",
        "t:logistics",
        "p:blue",
    }
    assert name_blocking_keys("a b c") == {"p:abc"}
    assert name_blocking_keys("") == frozenset()


# Fuzzy names


def test_a_name_below_the_threshold_does_not_match() -> None:
    index = AccountIndex([account("a1", "Northwind Analytics")])

    assert index.match(domain=None, company="Northwind Aviation", threshold=80) is None
    assert index.match(domain=None, company="Northwind Aviation", threshold=75) is not None


def test_a_close_misspelling_matches_with_its_evidence_score() -> None:
    northwind = account("a1", "Northwind Analytics GmbH")
    index = AccountIndex([northwind])

    found = index.match(domain=None, company="Analytics Northwnd, Inc.", threshold=85)

    expected = name_score("analytics northwnd", "northwind analytics", {"t:northwind": 1})
    assert 90 < expected < 100
    assert found is not None
    assert (found.account, found.method, found.score) == (northwind, "name", round(expected, 1))


def test_a_name_with_every_word_misspelt_is_found_through_its_prefix() -> None:
    northwind = account("a1", "Northwind Analytics")
    index = AccountIndex([northwind])

    found = index.match(domain=None, company="Northwnd Analytix", threshold=85)

    assert found is not None
    assert found.account == northwind


def test_a_short_name_is_not_swallowed_by_a_group_that_contains_it() -> None:
    index = AccountIndex([account("a1", "Acme Holdings International")])

    assert index.match(domain=None, company="Acme", threshold=85) is None


def test_fuzzy_matching_never_looks_outside_the_blocking_keys() -> None:
    index = AccountIndex([account("a1", "Zebra Holdings"), account("a2", "Quokka Labs")])
    assert fuzz.token_sort_ratio("acme", "zebra holdings") > 0

    assert index.match(domain=None, company="Acme", threshold=0) is None


def test_equal_name_scores_go_to_the_lowest_account_id_whatever_the_load_order() -> None:
    accounts = [
        account("id-3", "Acme Lumo"),
        account("id-1", "ACME Lumy Inc"),
        account("id-2", "Acme Lumz"),
        account("id-4", "Acme Lumo GmbH"),
    ]

    for ordering in (accounts, accounts[::-1]):
        index = AccountIndex(ordering)
        near = index.match(domain=None, company="Acme Lumx", threshold=0)
        exact = index.match(domain=None, company="Acme Lumo", threshold=0)
        assert near is not None
        assert exact is not None
        assert (near.account.id, near.score) == ("id-1", 31.5)
        assert (exact.account.id, exact.score) == ("id-3", 100.0)


def test_names_in_a_different_word_order_match_the_first_account_with_those_words() -> None:
    index = AccountIndex([account("b", "River Blue Inc"), account("a", "Blue River Ltd")])

    found = index.match(domain=None, company="Blue River", threshold=100)

    assert found is not None
    assert found.account.id == "a"


def test_a_key_too_common_to_fit_is_skipped_when_the_lead_has_a_rarer_one() -> None:
    fillers = [account(f"f{n:04d}", f"Global Filler{n}") for n in range(MAX_CANDIDATES + 1)]
    closer_but_only_common = account("x", "Global Zorblaks")
    sharing_the_rare_word = account("y", "Zorblax Partners")
    index = AccountIndex([*fillers, closer_but_only_common, sharing_the_rare_word])
    assert fuzz.token_sort_ratio("zorblax global", "global zorblaks") > fuzz.token_sort_ratio(
        "zorblax global", "zorblax partners"
    )

    found = index.match(domain=None, company="Zorblax Global", threshold=0)

    assert found is not None
    assert found.account == sharing_the_rare_word


def test_a_lead_sharing_only_keys_too_common_to_identify_a_company_does_not_match() -> None:
    # Scanning every "Global ..." account would cost a millisecond per lead for a match that
    # rests on a typo in the one distinctive word's first letters: speed wins, by design.
    fillers = [account(f"f{n:04d}", f"Global Filler{n}") for n in range(MAX_CANDIDATES + 1)]
    index = AccountIndex([*fillers, account("x", "Global Zorblaks")])

    assert index.match(domain=None, company="Global Zorblax", threshold=85) is None
    exact = index.match(domain=None, company="Global Zorblaks", threshold=85)
    assert exact is not None and exact.account.id == "x"  # its own rare word is a key


def test_an_index_of_the_accounts_sharing_a_key_with_the_lead_matches_like_the_full_one() -> None:
    # Big enough that the common words' posting lists overflow the candidate budget.
    first = ["blue", "river", "north", "wind", "acme", "analytics", "logistics", "labs"]
    second = ["global", "systems", "partners", "works", "group", "data", "media", "foods", "bank"]
    accounts = [
        account(f"a{n:04d}", f"{first[n % 8]} {second[n // 8 % 9]}{n % 50} Ltd")
        for n in range(3000)
    ]
    full = AccountIndex(accounts)

    for company in ("Blue Global0", "Wind Works", "Acme Data12 Inc", "Labs Bank9", "Acme Dta12"):
        lead_keys = name_blocking_keys(company_key(company))
        prefetched = [a for a in accounts if name_blocking_keys(company_key(a.name)) & lead_keys]
        expected = full.match(domain=None, company=company, threshold=60)
        assert expected is not None
        assert (
            AccountIndex(prefetched).match(domain=None, company=company, threshold=60) == expected
        )


# The index itself


def test_an_index_counts_its_accounts_and_finds_them_by_id() -> None:
    acme = account("a1", "Acme")
    index = AccountIndex([acme, account("a2", "Initech")])

    assert len(index) == 2
    assert index.get("a1") == acme
    assert index.get("missing") is None


def test_an_account_id_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'a1' appears more than once"):
        AccountIndex([account("a1", "Acme"), account("a1", "Initech")])


@pytest.mark.parametrize("threshold", [-1, 100.5, float("nan")])
def test_a_threshold_outside_0_to_100_is_refused(threshold: float) -> None:
    index = AccountIndex([account("a1", "Acme")])

    with pytest.raises(ValueError, match="threshold"):
        index.match(domain=None, company="Acme", threshold=threshold)


# Weighing evidence (issue 17): the distinctive words must agree, the industry words barely count


def _common_words_index(*names: str) -> AccountIndex:
    # Enough other companies in the same industries that their words are common, as in a CRM.
    fillers = [
        account(f"f{word}{n:03d}", f"{word}{n} {industry}")
        for n in range(60)
        for word, industry in (("Filler", "Semiconductors"), ("Other", "Capital"))
    ]
    return AccountIndex([*(account(f"a{n}", name) for n, name in enumerate(names)), *fillers])


def test_a_different_distinctive_word_does_not_match_whatever_words_are_shared() -> None:
    index = _common_words_index("Nova Crown Semiconductors")

    assert index.match(domain=None, company="Nova Heron Semiconductors Inc", threshold=90) is None
    assert index.match(domain=None, company="Nova Heron Semiconductors Inc", threshold=80) is None


def test_a_longer_or_shorter_word_is_another_company() -> None:
    index = _common_words_index("Park Capital BV", "Quavo Software Inc", "Nexba Insurance")

    assert index.match(domain=None, company="Parker Capital", threshold=90) is None
    assert index.match(domain=None, company="Quavojin Software", threshold=90) is None
    assert index.match(domain=None, company="Nexbasu Insurance Ltd.", threshold=90) is None


def test_a_typo_in_the_distinctive_word_still_matches() -> None:
    index = _common_words_index("Nova Heron Semiconductors", "Quavo Software Inc")

    typo = index.match(domain=None, company="Nova Hreon Semiconductors", threshold=90)
    swapped = index.match(domain=None, company="Qauvo Software", threshold=90)

    assert typo is not None and typo.account.id == "a0"
    assert swapped is not None and swapped.account.id == "a1"
    assert 90 <= typo.score < 100


def test_a_dropped_industry_word_still_matches_but_below_the_exact_name() -> None:
    index = _common_words_index("Nova Heron Semiconductors", "Lura Software")

    dropped = index.match(domain=None, company="Nova Heron", threshold=90)
    added = index.match(domain=None, company="Lura", threshold=90)

    assert dropped is not None and dropped.account.id == "a0"
    assert added is not None and added.account.id == "a1"
    assert 90 <= dropped.score < 100


def test_the_exact_name_beats_the_same_name_without_its_industry_word() -> None:
    index = _common_words_index("Nova Heron", "Nova Heron Semiconductors")

    found = index.match(domain=None, company="Nova Heron Semiconductors", threshold=90)

    assert found is not None
    assert (found.account.id, found.score) == ("a1", 100.0)


def test_the_same_name_in_another_industry_does_not_match_at_the_default_threshold() -> None:
    index = _common_words_index("Lura Software")

    assert index.match(domain=None, company="Lura Metals", threshold=90) is None


def test_an_extra_distinctive_word_in_the_lead_counts_against() -> None:
    index = _common_words_index("Keystone Ink Metals")

    assert index.match(domain=None, company="Keystone Bison Metals Inc.", threshold=90) is None
    assert index.match(domain=None, company="Keystone Ink Bison Metals", threshold=90) is None


def test_a_word_some_account_has_is_not_taken_for_a_typo_of_another() -> None:
    index = _common_words_index("Solar Falls", "Polar Lake")

    assert index.match(domain=None, company="Polar Falls", threshold=90) is None


def test_a_typo_with_a_dropped_industry_word_is_too_little_evidence() -> None:
    index = _common_words_index("Kelengra")

    assert index.match(domain=None, company="Kelengr Software", threshold=90) is None
    assert index.match(domain=None, company="Kelengr", threshold=90) is not None


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=14)


@st.composite
def one_edit(draw: st.DrawFn) -> tuple[str, str]:
    """A word and that word with one letter replaced, added or dropped, or two swapped."""
    word = draw(WORD)
    at = draw(st.integers(0, len(word) - 1))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    kind = draw(st.sampled_from(["replace", "add", "drop", "swap"]))
    if kind == "replace":
        edited = word[:at] + letter + word[at + 1 :]
    elif kind == "add":
        edited = word[:at] + letter + word[at:]
    elif kind == "drop":
        edited = word[:at] + word[at + 1 :]
    else:
        at = min(at, len(word) - 2)
        edited = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return word, edited


@settings(max_examples=500)
@given(pair=one_edit(), others=st.lists(WORD, max_size=20))
def test_the_typo_map_finds_every_word_one_edit_away(
    pair: tuple[str, str], others: list[str]
) -> None:
    # Keyed by thirds of each word, not by every deletion: one edit always leaves two thirds.
    word, edited = pair
    names = [word, *others]
    index = AccountIndex(Account(f"a{n}", name) for n, name in enumerate(names))
    assume(edited != word and edited not in names and accounts_edits(edited, word))

    assert word in index._near(edited)
