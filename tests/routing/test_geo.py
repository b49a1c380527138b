from __future__ import annotations

import pycountry
import pytest

from routing.geo import (
    DEFAULT_REGIONS,
    MAX_STATE_LENGTH,
    account_location,
    default_region,
    is_country_code,
    normalize_country,
    region_for,
)

ALL_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


@pytest.mark.parametrize(
    "value", ["United Kingdom", "UK", "Great Britain", "England", "Scotland", "gb", "GBR", "U.K."]
)
def test_united_kingdom_by_name_code_and_nickname_is_gb(value: str) -> None:
    assert normalize_country(value) == "GB"


@pytest.mark.parametrize(
    "value", ["USA", "U.S.A.", "U. S. A.", "United States of America", "United States", "us"]
)
def test_united_states_by_name_code_and_abbreviation_is_us(value: str) -> None:
    assert normalize_country(value) == "US"


@pytest.mark.parametrize("value", ["de", "DE", "Deutschland", "Germany", "DEU"])
def test_germany_in_english_german_and_both_codes_is_de(value: str) -> None:
    assert normalize_country(value) == "DE"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("South Korea", "KR"),
        ("Korea", "KR"),
        ("North Korea", "KP"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("Vietnam", "VN"),
        ("Viet Nam", "VN"),
        ("Türkiye", "TR"),
        ("Turkiye", "TR"),
        ("Turkey", "TR"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Netherlands", "NL"),
        ("UAE", "AE"),
        ("United Arab Emirates", "AE"),
        ("Ivory Coast", "CI"),
        ("Côte d'Ivoire", "CI"),
        ("Iran", "IR"),
        ("Taiwan", "TW"),
        ("Bolivia", "BO"),
    ],
)
def test_common_names_pycountry_lacks_are_recognised(value: str, code: str) -> None:
    assert normalize_country(value) == code


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Cote d'Ivoire", "CI"),
        ("Côte d’Ivoire", "CI"),
        ("Reunion", "RE"),
        ("Curacao", "CW"),
        ("Trinidad & Tobago", "TT"),
        ("St. Lucia", "LC"),
        ("St Kitts and Nevis", "KN"),
        ("Bahamas, The", "BS"),
        ("Guinea Bissau", "GW"),
    ],
)
def test_accents_punctuation_and_abbreviations_do_not_matter(value: str, code: str) -> None:
    assert normalize_country(value) == code


@pytest.mark.parametrize(
    "value", ["  united kingdom ", "UNITED KINGDOM", "\tGb\n", "united   kingdom"]
)
def test_surrounding_whitespace_and_case_are_ignored(value: str) -> None:
    assert normalize_country(value) == "GB"


@pytest.mark.parametrize("value", ["Narnia", "", "   ", None, "...", "XX", "Atlantis", "Europe"])
def test_anything_that_names_no_country_is_none(value: str | None) -> None:
    assert normalize_country(value) is None


@pytest.mark.parametrize("value", ["826", "840", "212"])
def test_numeric_codes_are_not_taken_for_countries(value: str) -> None:
    assert normalize_country(value) is None


@pytest.mark.parametrize("country", list(pycountry.countries), ids=lambda c: c.alpha_2)
def test_every_pycountry_code_and_name_normalizes_to_its_own_alpha2(
    country: pycountry.db.Country,
) -> None:
    for attribute in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
        value = getattr(country, attribute, None)
        if value:
            assert normalize_country(value) == country.alpha_2, (attribute, value)


def test_default_regions_are_exactly_na_latam_emea_and_apac() -> None:
    assert set(DEFAULT_REGIONS) == {"NA", "LATAM", "EMEA", "APAC"}


def test_every_pycountry_country_is_in_exactly_one_default_region() -> None:
    assert len(ALL_CODES) == 249
    for code in ALL_CODES:
        regions = [region for region, codes in DEFAULT_REGIONS.items() if code in codes]
        assert len(regions) == 1, (code, regions)


def test_default_regions_name_no_code_pycountry_does_not_know() -> None:
    listed = frozenset().union(*DEFAULT_REGIONS.values())
    assert listed - ALL_CODES == set()


@pytest.mark.parametrize(
    ("region", "codes"),
    [
        ("NA", ["US", "CA", "BM", "GL", "PM", "UM"]),
        ("LATAM", ["MX", "GT", "PA", "PR", "VI", "CU", "JM", "BR", "AR", "GF", "FK", "GS"]),
        ("EMEA", ["GB", "DE", "RU", "TR", "GE", "AM", "AZ", "AE", "IL", "SA", "ZA", "NG", "EG"]),
        ("APAC", ["CN", "JP", "IN", "SG", "AU", "NZ", "FJ", "KZ", "UZ", "AF", "AQ", "CX", "IO"]),
    ],
)
def test_default_region_places_countries_as_documented(region: str, codes: list[str]) -> None:
    for code in codes:
        assert default_region(code) == region, code


def test_default_region_accepts_a_lowercase_code() -> None:
    assert default_region("br") == "LATAM"


@pytest.mark.parametrize("value", [None, "", "XX", "Narnia"])
def test_default_region_of_an_unknown_country_is_none(value: str | None) -> None:
    assert default_region(value) is None


def test_policy_region_wins_for_the_countries_it_lists() -> None:
    overrides = {"DACH": ["DE", "AT", "CH"], "UKI": ["GB", "IE"]}
    assert region_for("DE", overrides) == "DACH"
    assert region_for("CH", overrides) == "DACH"
    assert region_for("IE", overrides) == "UKI"


def test_countries_the_policy_does_not_list_keep_their_default_region() -> None:
    overrides = {"DACH": ["DE", "AT", "CH"]}
    assert region_for("FR", overrides) == "EMEA"
    assert region_for("JP", overrides) == "APAC"


def test_policy_can_move_a_country_into_another_default_region() -> None:
    assert region_for("MX", {"NA": ["US", "CA", "MX"]}) == "NA"
    assert region_for("BR", {"NA": ["US", "CA", "MX"]}) == "LATAM"


def test_policy_codes_are_matched_whatever_case_or_alias_they_are_written_in() -> None:
    overrides = {"UKI": ["uk", "ie"]}
    assert region_for("GB", overrides) == "UKI"
    assert region_for("gb", overrides) == "UKI"


def test_the_first_region_to_claim_a_country_wins() -> None:
    assert region_for("GB", {"UKI": ["GB"], "NORTH": ["GB", "SE"]}) == "UKI"


@pytest.mark.parametrize("overrides", [None, {}])
def test_without_overrides_the_default_region_applies(
    overrides: dict[str, list[str]] | None,
) -> None:
    assert region_for("US", overrides) == "NA"


def test_overrides_accept_any_iterable_of_codes() -> None:
    assert region_for("AU", {"ANZ": frozenset({"AU", "NZ"})}) == "ANZ"
    assert region_for("NZ", {"ANZ": ("AU", "NZ")}) == "ANZ"


@pytest.mark.parametrize("value", [None, "", "Narnia"])
def test_an_unknown_country_has_no_region_even_with_overrides(value: str | None) -> None:
    assert region_for(value, {"EVERYWHERE": ["US", "GB"]}) is None


@pytest.mark.parametrize("value", ["DE", "de", " gb ", "US", "AQ"])
def test_an_assigned_alpha2_code_is_a_country_code(value: str) -> None:
    assert is_country_code(value)


@pytest.mark.parametrize(
    "value", ["UK", "USA", "DEU", "Germany", "XX", "", "  ", None, 49, ["DE"], "D E"]
)
def test_names_aliases_alpha3_and_non_strings_are_not_country_codes(value: object) -> None:
    assert not is_country_code(value)


def test_an_accounts_country_is_kept_as_a_leads_is_and_its_state_as_written() -> None:
    assert account_location("Germany", " Bavaria ") == ("DE", "Bavaria")
    assert account_location("deu", "BY") == ("DE", "BY")


@pytest.mark.parametrize(
    ("country", "state"),
    [(None, None), ("", ""), ("  ", "  "), ("Atlantis", "x" * (MAX_STATE_LENGTH + 1))],
)
def test_an_accounts_missing_or_unknown_country_and_state_are_none(
    country: str | None, state: str | None
) -> None:
    assert account_location(country, state) == (None, None)
