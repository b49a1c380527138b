"""Countries as leads write them ("UK", "U.S.A.", "Deutschland") to ISO alpha-2 codes and regions.

pycountry supplies the official codes and names. Its exact lookup misses what people actually
type into a form (nicknames, missing accents, "The Netherlands", "Trinidad & Tobago"), and its
fuzzy search matches far too loosely to route on, so both sides are folded the same way and
compared exactly, with a short alias table for the names pycountry does not carry.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from types import MappingProxyType

import pycountry

_WORD = re.compile(r"[^\W_]+")

# Names people use that pycountry does not know. Written as people write them; folded at import.
_ALIAS_NAMES: Mapping[str, str] = {
    # United Kingdom: "UK" is not an ISO code, and its nations are often given instead.
    "UK": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "America": "US",
    "Deutschland": "DE",
    "Korea": "KR",
    "Republic of Korea": "KR",
    "Korea, South": "KR",
    "Korea, North": "KP",
    "Russia": "RU",
    "Turkey": "TR",
    "Republic of Turkey": "TR",
    "Holland": "NL",
    "Nederland": "NL",
    "UAE": "AE",
    "Emirates": "AE",
    "Ivory Coast": "CI",
    "Republic of Ireland": "IE",
    "Éire": "IE",
    "Macedonia": "MK",
    "Swaziland": "SZ",
    "Burma": "MM",
    "Cape Verde": "CV",
    "East Timor": "TL",
    "Vatican": "VA",
    "Vatican City": "VA",
    "Holy See": "VA",
    "Palestine": "PS",
    "Micronesia": "FM",
    "Brunei": "BN",
    "Macau": "MO",
    "Democratic Republic of the Congo": "CD",
    "DR Congo": "CD",
    "DRC": "CD",
    "Congo-Kinshasa": "CD",
    "Congo-Brazzaville": "CG",
    "Falklands": "FK",
    "Falkland Islands": "FK",
    "US Virgin Islands": "VI",
    "Saint Martin": "MF",
    "Sint Maarten": "SX",
    "Pitcairn Islands": "PN",
    "Svalbard": "SJ",
    "Bonaire": "BQ",
    # Native names for the larger markets, as people abroad fill in forms in their own language.
    "España": "ES",
    "Italia": "IT",
    "Brasil": "BR",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Svizzera": "CH",
    "Österreich": "AT",
    "België": "BE",
    "Belgique": "BE",
    "Polska": "PL",
    "Sverige": "SE",
    "Norge": "NO",
    "Danmark": "DK",
    "Suomi": "FI",
    "Česko": "CZ",
    "Nippon": "JP",
    "Hrvatska": "HR",
}


def _fold(text: str) -> str:
    """A comparison key: no accents, no case, no punctuation, one space between words.

    Dots vanish rather than split ("U.S.A." -> "usa"); a leading or trailing "the" is dropped
    ("The Netherlands", "Bahamas, The"); "St" reads as "Saint"; spaced-out initials join up
    ("U S A" -> "usa").
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = _WORD.findall(plain.casefold().replace(".", "").replace("&", " and "))
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    if len(words) > 1 and words[-1] == "the":
        words = words[:-1]
    words = ["saint" if word == "st" else word for word in words]
    if len(words) > 1 and all(len(word) == 1 for word in words):
        words = ["".join(words)]
    return " ".join(words)


_ALIASES: Mapping[str, str] = {_fold(name): code for name, code in _ALIAS_NAMES.items()}


@cache
def _country_index() -> Mapping[str, str]:
    """Folded code or name -> alpha-2, built from pycountry on first use.

    Numeric codes are left out on purpose: a three-digit number in a country field is far more
    often a phone area code than ISO 3166 numeric (212 is both New York and Dominica).
    """
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if value:
                index.setdefault(_fold(value), country.alpha_2)
    return index


@lru_cache(maxsize=4096)
def normalize_country(value: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code for a country code or name; None when it names no country."""
    if not value:
        return None
    key = _fold(value)
    if not key:
        return None
    return _country_index().get(key) or _ALIASES.get(key)


# The states, districts and territories of the US and the provinces and territories of Canada:
# no name or code of one is a name or code of another, so a state needs no country to be read.
# Elsewhere a "state" is compared as written.
STATE_COUNTRIES = ("US", "CA")  # whose states a lead's state is read as (`lead_state`)
_STATE_ALIAS_NAMES: Mapping[str, str] = {
    "Washington DC": "DC",
    "Washington, D.C.": "DC",
    "US Virgin Islands": "VI",
    "PEI": "PE",
    "Newfoundland": "NL",
}


@cache
def _state_index() -> Mapping[str, str]:
    """Folded postal code or name -> postal code ("california" and "ca" -> "CA")."""
    index: dict[str, str] = {}
    for name, code in _state_names():
        index[_fold(name)] = code
        index[_fold(code)] = code
    return MappingProxyType(index)


@cache
def _state_names() -> tuple[tuple[str, str], ...]:
    """(name, postal code) of each US state and Canadian province, as pycountry and people
    write it ("North Carolina", "NC")."""
    named = [(name, code) for name, code in _STATE_ALIAS_NAMES.items()]
    for subdivision in pycountry.subdivisions:
        if subdivision.country_code in STATE_COUNTRIES:
            named.append((subdivision.name, subdivision.code.split("-", 1)[1]))
    return tuple(named)


def state_codes_named(test: Callable[[str], bool]) -> list[str]:
    """The postal codes of the US states and Canadian provinces a name of which passes `test`
    (`contains` and `matches` read a state by its name too: a lead's is its postal code)."""
    return sorted({code for name, code in _state_names() if test(name)})


@lru_cache(maxsize=4096)
def normalize_state(value: str | None) -> str | None:
    """A US state's or a Canadian province's name or code as its postal code ("California",
    "ca" -> "CA"), so that `state: California` and a lead's `CA` are the same state; any other
    value as written."""
    if not value:
        return value
    return _state_index().get(_fold(value), value)


def lead_state(state: str | None, country: str | None) -> str | None:
    """A lead's state as conditions and account matching read it: by `normalize_state` when
    its country (an alpha-2 code) is the US, Canada or not given; elsewhere as written, so an
    Australian "WA" or a Mexican "BC" is not taken for Washington or British Columbia."""
    return normalize_state(state) if country in (None, *STATE_COUNTRIES) else state


MAX_STATE_LENGTH = 255  # the accounts table's column: no state or province is named so long


def account_location(country: str | None, state: str | None) -> tuple[str | None, str | None]:
    """An account's country and state, kept as a lead's are so the two compare: the country as
    its alpha-2 code, the state as written without surrounding space. Each is None when it is
    missing or names nothing (a country no one recognises, a "state" too long to be one).

    Every way an account comes in (the accounts file, a CRM sync, the repository's upsert)
    goes through here."""
    state = state.strip() if state else None
    if state and len(state) > MAX_STATE_LENGTH:
        state = None
    return normalize_country(country), state or None


def is_country_code(value: object) -> bool:
    """Whether `value` is itself an alpha-2 code, in any case and spacing ("de" yes, "UK" no).

    For checking a policy: a name or alias still routes through normalize_country, but a policy
    that says "GB" cannot be misread, and the validator can suggest normalize_country(value).
    """
    if not isinstance(value, str):
        return False
    code = value.strip().upper()
    return len(code) == 2 and normalize_country(code) == code


# Written out so a reader can check any country at a glance; a test proves the four sets
# partition pycountry's list exactly.
DEFAULT_REGIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "NA": frozenset(
            {
                "US", "CA",
                # Bermuda, Greenland, Saint Pierre and Miquelon, US Minor Outlying Islands
                "BM", "GL", "PM", "UM",
            }
        ),
        "LATAM": frozenset(
            {
                # Mexico and Central America
                "MX", "BZ", "CR", "GT", "HN", "NI", "PA", "SV",
                # the Caribbean, including US, British, French and Dutch territories there
                "AG", "AI", "AW", "BB", "BL", "BQ", "BS", "CU", "CW", "DM", "DO", "GD", "GP",
                "HT", "JM", "KN", "KY", "LC", "MF", "MQ", "MS", "PR", "SX", "TC", "TT", "VC",
                "VG", "VI",
                # South America
                "AR", "BO", "BR", "CL", "CO", "EC", "GF", "GY", "PE", "PY", "SR", "UY", "VE",
                # South Atlantic: Falklands, South Georgia and the South Sandwich Islands
                "FK", "GS",
            }
        ),
        "EMEA": frozenset(
            {
                # Western, Northern and Southern Europe, with the Crown Dependencies and microstates
                "AD", "AT", "AX", "BE", "CH", "DE", "DK", "ES", "FI", "FO", "FR", "GB", "GG",
                "GI", "GR", "IE", "IM", "IS", "IT", "JE", "LI", "LU", "MC", "MT", "NL", "NO",
                "PT", "SE", "SJ", "SM", "VA",
                # Bouvet Island is Norwegian; nobody lives there, so it simply goes with Norway
                "BV",
                # Central and Eastern Europe, Russia, Turkey and the Caucasus
                "AL", "AM", "AZ", "BA", "BG", "BY", "CY", "CZ", "EE", "GE", "HR", "HU", "LT",
                "LV", "MD", "ME", "MK", "PL", "RO", "RS", "RU", "SI", "SK", "TR", "UA",
                # Middle East
                "AE", "BH", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY",
                "YE",
                # North Africa
                "DZ", "EG", "EH", "LY", "MA", "SD", "TN",
                # West and Central Africa
                "BF", "BJ", "CD", "CF", "CG", "CI", "CM", "CV", "GA", "GH", "GM", "GN", "GQ",
                "GW", "LR", "ML", "MR", "NE", "NG", "SH", "SL", "SN", "ST", "TD", "TG",
                # East and Southern Africa, with the African islands of the Indian Ocean
                "AO", "BI", "BW", "DJ", "ER", "ET", "KE", "KM", "LS", "MG", "MU", "MW", "MZ",
                "NA", "RE", "RW", "SC", "SO", "SS", "SZ", "TZ", "UG", "YT", "ZA", "ZM", "ZW",
            }
        ),
        "APAC": frozenset(
            {
                # East Asia
                "CN", "HK", "JP", "KP", "KR", "MN", "MO", "TW",
                # South Asia and Afghanistan
                "AF", "BD", "BT", "IN", "LK", "MV", "NP", "PK",
                # South-East Asia
                "BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN",
                # Central Asia
                "KG", "KZ", "TJ", "TM", "UZ",
                # Australia, New Zealand and the Pacific islands
                "AS", "AU", "CK", "FJ", "FM", "GU", "KI", "MH", "MP", "NC", "NF", "NR", "NU",
                "NZ", "PF", "PG", "PN", "PW", "SB", "TK", "TO", "TV", "VU", "WF", "WS",
                # Antarctica and the remote Indian Ocean territories, served from Australia
                "AQ", "CC", "CX", "HM", "IO", "TF",
            }
        ),
    }
)  # fmt: skip

_DEFAULT_REGION_OF: Mapping[str, str] = {
    code: region for region, codes in DEFAULT_REGIONS.items() for code in codes
}


def default_region(alpha2: str | None) -> str | None:
    """NA, LATAM, EMEA or APAC for a country; None when the country is unknown."""
    # Normalisation calls this with the code normalize_country gave, for every lead: a code
    # is its own normalisation, so one lookup settles it.
    region = _DEFAULT_REGION_OF.get(alpha2) if alpha2 else None
    if region is not None:
        return region
    code = normalize_country(alpha2)
    return _DEFAULT_REGION_OF.get(code) if code else None


def region_for(alpha2: str | None, overrides: Mapping[str, Iterable[str]] | None) -> str | None:
    """The region a country routes to: the policy's own `regions` first, then the default.

    `overrides` maps a region name to the countries it claims; only those countries move, every
    other country keeps its default region. A country claimed by two regions goes to the first
    (policy validation should refuse that).
    """
    code = normalize_country(alpha2)
    if code is None:
        return None
    if overrides:
        for region, countries in overrides.items():
            if any(normalize_country(country) == code for country in countries):
                return region
    return _DEFAULT_REGION_OF.get(code)
