"""How much a company name agrees with a lead's, word by word: the evidence behind a match.

Each word weighs what it says about which company a name is (`token_weight`); `evidence`
weighs what agrees and what counts against, `evidence_score` makes that a share (0-100), and
`describe_evidence` a line for the trace.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping

from rapidfuzz.distance import OSA

from routing.company_names import STOP_WORDS
from routing.geo import normalize_state
from routing.model import Account, Word

# How a name is scored against a lead: as evidence, token by token, not as a string distance.
# A token's weight is how much it says about which company a name is: the rarer the word among
# the accounts' names, the more (inverse document frequency, from the blocking index's own
# "t:" postings, so it costs nothing to build). Industry words ("Software", "Metals") are
# always light: leaving one out says nothing, and only two that disagree count against.
#
# `RARE_WEIGHT` is the weight of a word no other name has; the others are log(_RARE_BASE / names
# with the word), so a word in 500 of the names weighs about 7.6 against 13.8.
_RARE_BASE = 1_000_000.0
RARE_WEIGHT = math.log(_RARE_BASE)
INDUSTRY_WEIGHT = 2.0
# A dropped industry word costs this, so that the account with exactly the lead's words
# still wins over the one with an extra "Software".
_DROPPED_WEIGHT = 0.3
# What a typo costs, as a share of the word's weight, per edit: one typo in a one-word name
# still scores 91, over the default threshold, but not with an industry word dropped too
# ("Kelengr Software" is not "Kelengra"); two different words do not come close.
_TYPO_COST = 0.09
# A typo is only recognised in words of this many characters or more, and between two words
# this short only as two letters swapped: "Park" and "Pork" are two companies, "Nova" and
# "Nvoa" one, as are "Heron" and "Hreon".
TYPO_MIN_LENGTH = 4
# Industry words of this length or more may carry two edits ("Analytix" for "Analytics").
TWO_TYPOS_MIN_LENGTH = 8

# Words that say what a company does, not which company it is. Corporate-structure words
# ("Group", "Holdings", "International", "Global") are deliberately not here: "Acme Holdings
# International" is not the "Acme" round the corner.
INDUSTRY_WORDS = frozenset(
    """
    systems labs lab logistics foods food health healthcare capital dynamics analytics software
    technologies technology tech solutions partners consulting consultants energy pharma
    pharmaceuticals biosciences bioscience biotech manufacturing media studios studio networks
    network robotics security financial finance insurance realty construction engineering motors
    automotive aerospace textiles brewing brewery hospitality travel education learning medical
    diagnostics therapeutics retail apparel outdoor marine agritech farms farm water power data
    cloud ai digital interactive games gaming payments bank banking trust legal advisory
    enterprises ventures supply freight packaging chemicals chemical materials metals mining
    pharmacy clinics clinic dental veterinary fitness sports events publishing design architects
    architecture builders automation devices instruments electronics semiconductors
    semiconductor telecom telecommunications wireless mobility transport transportation aviation
    shipping trading services service industries industrial products foods fintech insurtech
    realestate properties property investments investment management marketing agency hotels
    restaurants
    """.split()  # noqa: SIM905
)


def weight_of_size(size: int) -> float:
    # Never lighter than an industry word: a typo pairing a lead word with an industry word
    # then agrees with no more than the lead word weighs (`_required_bound`).
    return max(math.log(_RARE_BASE / size), INDUSTRY_WEIGHT) if size > 1 else RARE_WEIGHT


LIGHT_WORDS = INDUSTRY_WORDS | STOP_WORDS
# Each industry word as one bit: a name's set of them is an int, compared in two operations.
INDUSTRY_BITS = {word: 1 << bit for bit, word in enumerate(sorted(INDUSTRY_WORDS))}


def is_light(token: str) -> bool:
    """Industry words, the stop words and single characters: they neither make nor break."""
    return token in LIGHT_WORDS or len(token) < 2


def token_weight(token: str, sizes: Mapping[str, int]) -> float:
    if is_light(token):
        return INDUSTRY_WEIGHT
    return weight_of_size(sizes.get(f"t:{token[:60]}", 0))


def typo_edits(lead: str, name: str) -> int:
    """Edits between two different words if they can be one word mistyped, else 0."""
    shortest = min(len(lead), len(name))
    if shortest < TYPO_MIN_LENGTH:
        return 0
    if max(len(lead), len(name)) == TYPO_MIN_LENGTH and sorted(lead) != sorted(name):
        return 0
    allowed = 2 if shortest >= TWO_TYPOS_MIN_LENGTH and name in INDUSTRY_WORDS else 1
    if abs(len(lead) - len(name)) > allowed:
        return 0
    distance = OSA.distance(lead, name, score_cutoff=allowed)
    return distance if distance <= allowed else 0


SAME = "same"
_TYPO = "typo"
_LEAD_ONLY = "lead only"  # a lead word the account's name lacks
_ACCOUNT_ONLY = "account only"  # an account word the lead's name lacks
_DROPPED = "industry word left out"
_OTHER_INDUSTRY = "other industry"


def evidence(
    lead: Mapping[str, float],
    name: Iterable[str],
    typos: Container[str],
    words: list[Word] | None = None,
) -> tuple[float, float]:
    """The weighed evidence of an account's name tokens against the lead's (token -> weight):
    (what agrees, what counts against). `evidence_score` makes it a share.

    A lead word in the name agrees with its weight; one mistyped agrees with its weight less
    `_TYPO_COST` per edit, if it is among `typos`, the lead's words that no name has (a word
    that is some company's is taken as that word, not as a typo of another). A word of either
    side that matches nothing counts against: the lead's with its weight, the name's as a rare
    word (`RARE_WEIGHT`): the account's own words are what make it that company. Industry words are
    the exception: left out on one side they cost only `_DROPPED_WEIGHT`; different on both
    sides, they disagree at full weight. `words`, when given, receives each word's part.
    """
    agree = 0.0
    against = 0.0
    unmatched: list[str] = []
    left = dict(lead)
    for token in name:
        if token in left:
            weight = left.pop(token)
            agree += weight
            if words is not None:
                words.append(Word(token, token, weight, SAME))
        else:
            unmatched.append(token)
    name_light: list[str] = []
    # A name of industry words alone ("Data Systems") has nothing else to be known by: each
    # of its words is required, like a rare one.
    all_light: bool | None = None
    for token in unmatched:
        light = token in LIGHT_WORDS or len(token) < 2
        found = None
        if len(token) >= TYPO_MIN_LENGTH:
            for other in left:
                edits = typo_edits(other, token) if other in typos else 0
                if edits:
                    found = other
                    break
        if found is not None:
            weight = INDUSTRY_WEIGHT if light else left[found]
            del left[found]
            agree += weight * (1 - _TYPO_COST * edits)
            against += weight * _TYPO_COST * edits
            if words is not None:
                words.append(Word(found, token, weight, _TYPO))
            continue
        if light:
            if all_light is None:
                all_light = all(word in LIGHT_WORDS or len(word) < 2 for word in name)
            if not all_light:
                name_light.append(token)
                continue
        against += RARE_WEIGHT
        if words is not None:
            words.append(Word(None, token, RARE_WEIGHT, _ACCOUNT_ONLY))
    lead_light: list[str] = []
    for token, weight in left.items():
        if token in LIGHT_WORDS or len(token) < 2:
            lead_light.append(token)
        else:
            against += weight
            if words is not None:
                words.append(Word(token, None, weight, _LEAD_ONLY))
    both = bool(name_light and lead_light)
    cost = INDUSTRY_WEIGHT if both else _DROPPED_WEIGHT
    against += cost * (len(name_light) + len(lead_light))
    if words is not None:
        how = _OTHER_INDUSTRY if both else _DROPPED
        words.extend(Word(token, None, cost, how) for token in lead_light)
        words.extend(Word(None, token, cost, how) for token in name_light)
    return agree, against


def evidence_score(agree: float, against: float) -> float:
    """The share (0-100) of the evidence that agrees. 100 is for the lead's own name; a name
    with the same words but one repeated is the nearest thing to it."""
    if agree <= 0:
        return 0.0
    return min(100 * agree / (agree + against), 99.9)


# Where the lead and the account both say where they are: the same country agrees with this
# weight and another counts against with it, so a namesake in the lead's own country wins,
# while a rare name still matches across a border (a subsidiary's lead, an account's HQ):
# 13.8 against 1.5 is 90.2. The state counts only within one country.
COUNTRY_WEIGHT = 1.5
STATE_WEIGHT = 0.5


def location_evidence(
    country: str | None, state: str | None, account: Account, words: list[Word] | None = None
) -> tuple[float, float]:
    """(agrees, against) for where the lead and the account are, when both say."""
    if not country or not account.country:
        return 0.0, 0.0
    if country != account.country:
        if words is not None:
            words.append(Word(country, account.country, COUNTRY_WEIGHT, "other country"))
        return 0.0, COUNTRY_WEIGHT
    if words is not None:
        words.append(Word(country, account.country, COUNTRY_WEIGHT, "same country"))
    if not state or not account.state:
        return COUNTRY_WEIGHT, 0.0
    # A lead's state is read as its postal code ("California" is CA); an account's is kept as
    # its CRM or file wrote it: each is read the same way here, so neither form decides.
    if _state_key(state) != _state_key(account.state):
        if words is not None:
            words.append(Word(state, account.state, STATE_WEIGHT, "other state"))
        return COUNTRY_WEIGHT, STATE_WEIGHT
    if words is not None:
        words.append(Word(state, account.state, STATE_WEIGHT, "same state"))
    return COUNTRY_WEIGHT + STATE_WEIGHT, 0.0


def _state_key(state: str) -> str:
    return (normalize_state(state) or state).casefold()


def describe_evidence(words: Iterable[Word]) -> str:
    """A name match's evidence in a line, for the trace: "nova (8.9), hreon ≈ heron (typo,
    13.8), crown only in the account's name (13.8), semiconductors left out"."""
    parts: list[str] = []
    for word in words:
        weight = f"{word.weight:.1f}"
        how = word.how
        if how == SAME:
            parts.append(f"{word.lead} ({weight})")
        elif how == _TYPO:
            parts.append(f"{word.lead} ≈ {word.account} (typo, {weight})")
        elif how == _LEAD_ONLY:
            parts.append(f"{word.lead} only in the lead's name ({weight})")
        elif how == _ACCOUNT_ONLY:
            parts.append(f"{word.account} only in the account's name ({weight})")
        elif how == _DROPPED:
            parts.append(f"{word.lead or word.account} left out (industry word)")
        elif how == _OTHER_INDUSTRY:
            side = "lead" if word.lead else "account"
            parts.append(f"{word.lead or word.account} another industry, {side} ({weight})")
        else:  # where: "same country", "other state", ...
            parts.append(f"{how} {word.lead} / {word.account} ({weight})")
    return ", ".join(parts)


def name_score(lead_key: str, name_key: str, sizes: Mapping[str, int]) -> float:
    """The score `AccountIndex.match` gives an account's name (a `company_key`) for a lead's,
    when `sizes` says how many names each blocking key lists (unrounded), with no location."""
    lead = {token: token_weight(token, sizes) for token in lead_key.split()}
    if lead_key and sorted(lead_key.split()) == sorted(name_key.split()):
        return 100.0
    typos = {token for token in lead if is_new_word(token, sizes)}
    return evidence_score(*evidence(lead, tuple(dict.fromkeys(name_key.split())), typos))


def is_new_word(token: str, sizes: Mapping[str, int]) -> bool:
    """Whether no name has `token` (as a blocking key): only such a word may be a typo."""
    if len(token) < 2 or token in STOP_WORDS:
        return False  # never a key, and too short to be a typo anyway
    return not sizes.get(f"t:{token[:60]}")


def required_words(tokens: Iterable[str]) -> tuple[str, ...]:
    """The words a name scoring well must share with the lead (or have mistyped there): its
    words that are not industry words, or all of them when it has no others. Sorted."""
    distinct = set(tokens)
    heavy = [token for token in distinct if not is_light(token)]
    return tuple(sorted(heavy or distinct))
