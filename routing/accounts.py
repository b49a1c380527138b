"""Match a lead to a known account: by registrable domain first, then by fuzzy company name.

Matching is the most expensive step of a routing decision, so `AccountIndex` does all the
normalising once, when it is built, and answers a lead with a dict lookup (domain) or with one
`rapidfuzz` pass over a small candidate set taken from blocking keys (name). It never scans
every account for a lead.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping
from functools import lru_cache
from typing import TypeVar

from rapidfuzz import process
from rapidfuzz.distance import OSA

from routing.domains import registrable_domain
from routing.model import Account, AccountLookup, AccountMatch, Candidate, Word

# Legal forms, stripped from the end of a name, longest first and repeatedly, so "Acme Pty Ltd",
# "Nokia Oyj" and "Acme GmbH & Co. KG" all come down to the company's own words. Written as
# companies write them and normalised like names (`_LEGAL_SUFFIXES`): "S.A." is "sa", "A/S" is
# "a s", "Sp. z o.o." is "sp z oo". Checked in the tests against the `cleanco` package's legal
# terms of the countries leads mostly come from; a few forms are here in more than one spelling
# because names are written with and without spaces between the dotted parts.
_LEGAL_FORMS = (
    # English-speaking countries
    "Inc", "Incorporated", "Corp", "Corporation", "Co", "Company", "& Co", "& Company",
    "Ltd", "Limited", "Unlimited", "Unltd", "Ultd", "LLC", "PLLC", "LLP", "LLLP", "LP", "GP",
    "SP", "PLC", "ULC", "Ltée", "CIC", "CIO", "DAC", "CLG", "Teo", "Teoranta", "CPT", "NL",
    "Pty", "Pty Ltd", "Pty Limited", "Pte", "Pte Ltd", "Pvt", "Pvt Ltd", "Private Limited",
    "OPC", "PSU", "PSE", "Bhd", "Berhad", "Sdn Bhd", "Tapui", "Coop", "Ent", "Tbk",
    # German-speaking countries
    "GmbH", "gGmbH", "mbH", "AG", "SE", "KG", "KGaA", "OHG", "OG", "GbR", "GesbR", "UG",
    "UG (haftungsbeschränkt)", "e.K.", "e.V.", "e.G.", "e.U.", "PartG", "PartG mbB", "Stg",
    "GmbH & Co. KG", "mbH & Co. KG", "Sagl",
    # French, Belgian, Dutch, Luxembourgish
    "SA", "SAS", "SASU", "SARL", "Sàrl", "EURL", "SNC", "SCS", "SCA", "SCI", "SCOP", "SEM",
    "SEP", "GIE", "EI", "SELARL", "SICAV", "FCP", "SOGEPA", "BV", "NV", "BVBA", "CVBA",
    "CVOA", "SPRL", "SCRL", "SRL", "VOF", "CV", "Comm.V", "ESV", "VZW", "ASBL", "SECS",
    # Italian, Spanish, Portuguese, Latin American
    "SpA", "S.p.A.", "S.r.l.", "S.r.l.s.", "S.a.s.", "S.n.c.", "S.a.p.a.", "S.c.r.l.", "S.s.",
    "S.L.", "S.L.U.", "S.A.U.", "S.L.L.", "S.L.N.E.", "S.A.D.", "S.A.L.", "S.C.", "S.Coop",
    "S.Cra", "SCCL", "Lda", "Ltda", "Unipessoal Lda", "CRL", "SGPS", "EIRELI", "EIRL",
    "SA de CV", "S.A.B. de C.V.", "S.A.P.I. de C.V.", "S. de R.L.", "S. de R.L. de C.V.",
    "S. de. R.L.", "S.A.B.", "S.A.P.I.", "S. en C.", "S.C.P.A.", "S.C.E. I.", "S.G.R.",
    "Soc. Col.", "Soc.Col.",
    # Nordic and Baltic
    "AB", "AB (publ)", "publ", "HB", "KB", "AS", "ASA", "A/S", "ApS", "I/S", "K/S", "P/S",
    "G/S", "IVS", "AMBA", "FMBA", "SMBA", "ANS", "DA", "BA", "BL", "NUF", "SF", "KF", "IKS",
    "RHF", "HF", "FKF", "Etat", "Oy", "Oyj", "Oyj Abp", "Abp", "Ay", "Ky", "Tmi", "T:mi", "As Oy",
    "As. Oy", "As.Oy", "OK", "OÜ", "FIE", "SIA", "IK", "PS", "KS", "UAB", "IĮ", "IJ", "MB",
    "ehf", "hf", "ohf", "ses",
    # Central and Eastern Europe
    "Sp. z o.o.", "Sp. z o. o.", "Sp.z o.o.", "Sp. z.o.o.", "Spółka z o.o.", "Sp. j.", "Sp.j.",
    "Sp. k.", "Sp.k.", "Sp. p.", "Sp.p.", "S.K.A.", "P.P.", "s.r.o.", "spol. s r.o.", "a.s.",
    "akc. spol.", "v.o.s.", "veř. obch. spol.", "a spol.", "k.s.", "kom. spol.", "Kft", "Zrt",
    "Nyrt", "Bt", "Kkt", "Kht", "Rt", "e.v.", "e.c.", "k.v.", "d.o.o.", "d.d.", "d.n.o.",
    "k.d.", "s.p.", "obrt", "S.C.A.", "S.C.S.", "S.N.C.", "O.N.G.", "OOO", "OAO", "ZAO", "3AO",
    "ООО", "ОАО", "ЗАО", "ПАО", "АО", "PJSC", "OJSC", "CJSC", "JSC", "A.Ş.", "Ltd. Şti.",
    "Koop",
    # Greek, Israeli, Asian
    "A.E.", "E.E.", "E.P.E.", "M.E.P.E.", "O.E.", "O.V.E.E.", "I.K.E.", "B.M.", "K.K.",
    "G.K.", "Y.K.", "Kabushiki Kaisha", "Godo Kaisha", "Yugen Kaisha", "Co Ltd",
)  # fmt: skip

# Words too common to say which company a name is: kept in the name (they count in its score),
# but never used to find candidates, where they would only add noise ("t:and" alone can list
# thousands of accounts).
_STOP_WORDS = frozenset(
    {"and", "of", "the", "de", "du", "des", "la", "le", "y", "et", "und", "for"}
)
# Dots and apostrophes join what they separate ("S.A." -> "sa", "O'Brien" -> "obrien"); every
# other character that is not part of a word separates words ("Hewlett-Packard").
_JOINERS = re.compile(r"[.'’‘`´]")
_SEPARATORS = re.compile(r"[^\w\s]|_")
# What the two patterns do to ASCII text (nearly every name), as a table for `bytes.translate`,
# several times quicker than two regular expression passes (or `str.translate`): joiners
# deleted, every other separator a space (no ASCII character is a mark for `_keep_marks` to
# keep). Built from the patterns, so the two cannot disagree.
_ASCII_JOINERS = bytes(code for code in range(128) if _JOINERS.fullmatch(chr(code)))
_ASCII_SEPARATORS = bytes(
    ord(" ") if code < 128 and _SEPARATORS.fullmatch(chr(code)) else code for code in range(256)
)

# The most candidates a lead is scored against. Scoring one costs 0.05 to 0.25 µs (more when its
# name is not in the CPU cache), so this keeps a name lookup well under 100 µs. A key listing more
# accounts than this ("t:global") is too common to say which company a lead is: it is never
# scanned, even when the lead shares nothing rarer, because it would mostly add accounts that
# share nothing with the lead but a frequent word, at a millisecond a lead.
MAX_CANDIDATES = 500

_NOTHING = AccountLookup(None)

# Another account scoring within this many points of the best makes a match ambiguous.
AMBIGUITY_MARGIN = 1.0

_T = TypeVar("_T")


def _keep_marks(found: re.Match[str]) -> str:
    # `\w` does not cover marks that survive accent stripping (Devanagari vowel signs, for
    # one); they are part of the word, so dropping them would split "टाटा" in two.
    char = found.group()
    return char if unicodedata.category(char).startswith("M") else " "


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    # Recomposing puts Hangul syllables (decomposed into jamo above) back together.
    return unicodedata.normalize("NFC", bare)


def _tokens(text: str) -> list[str]:
    text = text.replace("&", " and ")
    if text.isascii():
        ascii_text = text.encode("ascii").translate(_ASCII_SEPARATORS, _ASCII_JOINERS)
        return ascii_text.decode("ascii").split()
    text = _JOINERS.sub("", text)
    return _SEPARATORS.sub(_keep_marks, text).split()


def _name_tokens(name: str) -> list[str]:
    # Case is folded before accents are stripped: folding can itself produce combining marks
    # ("ǰ" folds to "j" + caron), which would otherwise survive the first pass but not a second.
    folded = unicodedata.normalize("NFKC", name).casefold()
    tokens = _tokens(folded if folded.isascii() else _strip_accents(folded))
    if not tokens:
        # A name made only of accents or marks: keep them rather than return nothing.
        tokens = _tokens(folded)
    return tokens


# The legal forms as a name's tokens: "&" is "and", dots are gone ("L.L.C." is "llc").
_LEGAL_SUFFIXES: frozenset[tuple[str, ...]] = frozenset(
    tuple(_name_tokens(form)) for form in _LEGAL_FORMS
)
# The legal suffixes by their last word, longest first: a name's last token picks the few
# suffixes that could end it, instead of slicing the name at every suffix length.
_SUFFIXES_ENDING_IN: dict[str, tuple[tuple[str, ...], ...]] = {
    last: tuple(sorted((s for s in _LEGAL_SUFFIXES if s[-1] == last), key=len, reverse=True))
    for last in {suffix[-1] for suffix in _LEGAL_SUFFIXES}
}


def _normalise(name: str | None) -> str:
    if not name:
        return ""
    tokens = _name_tokens(name)
    while len(tokens) > 1 and tokens[0] == "the":
        del tokens[0]
    end = len(tokens)
    stripped = True
    while stripped and end:
        stripped = False
        for suffix in _SUFFIXES_ENDING_IN.get(tokens[end - 1], ()):
            length = len(suffix)
            if length <= end and tuple(tokens[end - length : end]) == suffix:
                end -= length
                stripped = True
                break
        # "Smith & Co Ltd" loses "co ltd" before "and co" can match; the "and" left dangling
        # belonged to the suffix.
        if stripped and end and tokens[end - 1] == "and":
            end -= 1
    # "AG" or "Company Limited" are all suffix; the whole name is a better key than nothing.
    return " ".join(tokens[:end] if end else tokens)


@lru_cache(maxsize=65536)
def company_key(name: str | None) -> str:
    """A company name normalised for matching; "" when the name has no letters or digits.

    "Société Générale S.A." -> "societe generale", "The Müller GmbH & Co. KG" -> "muller",
    "Acme, Inc." -> "acme". Letters and digits of every script are kept ("Яндекс" -> "яндекс").
    Applying it to its own result changes nothing.
    """
    return _normalise(name)


def name_blocking_keys(key: str) -> frozenset[str]:
    """The blocking keys of a normalised name (a `company_key` result).

    "t:<token>" for every token of two or more characters, and "p:<first four characters of the
    key without spaces>" so that a typo in one word still shares a key with the right account.
    Two names can only be fuzzy-matched if they share at least one key.

    The keys are plain strings on purpose: the storage layer can keep (key, account id) rows in
    an indexed table, fetch the accounts that share any key with a lead (`WHERE key IN (...)`)
    and match the lead against an `AccountIndex` built from just those. The name match is the
    same as the full index's, because the posting lists of the lead's own keys are the same.
    """
    if not key:
        return frozenset()
    return frozenset(_blocking_keys(key, key.split()))


def _blocking_keys(key: str, tokens: Iterable[str]) -> set[str]:
    """`name_blocking_keys` of a non-empty `key` split into `tokens`, as a set: a lookup has
    split the key already, and only iterates over the keys."""
    # Tokens are cut to 60 characters: keys are stored in an indexed column, and no real
    # company word is that long.
    keys = {f"t:{token[:60]}" for token in tokens if len(token) >= 2 and token not in _STOP_WORDS}
    keys.add(f"p:{key.replace(' ', '')[:4]}")
    return keys


# How a name is scored against a lead: as evidence, token by token, not as a string distance.
# A token's weight is how much it says about which company a name is: the rarer the word among
# the accounts' names, the more (inverse document frequency, from the blocking index's own
# "t:" postings, so it costs nothing to build). Industry words ("Software", "Metals") are
# always light: leaving one out says nothing, and only two that disagree count against.
#
# `_RARE` is the weight of a word no other name has; the others are log(_RARE_BASE / names
# with the word), so a word in 500 of the names weighs about 7.6 against 13.8.
_RARE_BASE = 1_000_000.0
_RARE = math.log(_RARE_BASE)
_INDUSTRY_WEIGHT = 2.0
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
_TYPO_MIN_LENGTH = 4
# Industry words of this length or more may carry two edits ("Analytix" for "Analytics").
_TWO_TYPOS_MIN_LENGTH = 8

# Words that say what a company does, not which company it is. Corporate-structure words
# ("Group", "Holdings", "International", "Global") are deliberately not here: "Acme Holdings
# International" is not the "Acme" round the corner.
_INDUSTRY_WORDS = frozenset(
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


def _weight_of_size(size: int) -> float:
    # Never lighter than an industry word: a typo pairing a lead word with an industry word
    # then agrees with no more than the lead word weighs (`_required_bound`).
    return max(math.log(_RARE_BASE / size), _INDUSTRY_WEIGHT) if size > 1 else _RARE


_LIGHT_WORDS = _INDUSTRY_WORDS | _STOP_WORDS
# Each industry word as one bit: a name's set of them is an int, compared in two operations.
_INDUSTRY_BITS = {word: 1 << bit for bit, word in enumerate(sorted(_INDUSTRY_WORDS))}


def _is_light(token: str) -> bool:
    """Industry words, the stop words and single characters: they neither make nor break."""
    return token in _LIGHT_WORDS or len(token) < 2


def _token_weight(token: str, sizes: Mapping[str, int]) -> float:
    if _is_light(token):
        return _INDUSTRY_WEIGHT
    return _weight_of_size(sizes.get(f"t:{token[:60]}", 0))


def _edits(lead: str, name: str) -> int:
    """Edits between two different words if they can be one word mistyped, else 0."""
    shortest = min(len(lead), len(name))
    if shortest < _TYPO_MIN_LENGTH:
        return 0
    if max(len(lead), len(name)) == _TYPO_MIN_LENGTH and sorted(lead) != sorted(name):
        return 0
    allowed = 2 if shortest >= _TWO_TYPOS_MIN_LENGTH and name in _INDUSTRY_WORDS else 1
    if abs(len(lead) - len(name)) > allowed:
        return 0
    distance = OSA.distance(lead, name, score_cutoff=allowed)
    return distance if distance <= allowed else 0


_SAME = "same"
_TYPO = "typo"
_LEAD_ONLY = "lead only"  # a lead word the account's name lacks
_ACCOUNT_ONLY = "account only"  # an account word the lead's name lacks
_DROPPED = "industry word left out"
_OTHER_INDUSTRY = "other industry"


def _evidence(
    lead: Mapping[str, float],
    name: Iterable[str],
    typos: Container[str],
    words: list[Word] | None = None,
) -> tuple[float, float]:
    """The weighed evidence of an account's name tokens against the lead's (token -> weight):
    (what agrees, what counts against). `_score` makes it a share.

    A lead word in the name agrees with its weight; one mistyped agrees with its weight less
    `_TYPO_COST` per edit, if it is among `typos`, the lead's words that no name has (a word
    that is some company's is taken as that word, not as a typo of another). A word of either
    side that matches nothing counts against: the lead's with its weight, the name's as a rare
    word (`_RARE`): the account's own words are what make it that company. Industry words are
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
                words.append(Word(token, token, weight, _SAME))
        else:
            unmatched.append(token)
    name_light: list[str] = []
    # A name of industry words alone ("Data Systems") has nothing else to be known by: each
    # of its words is required, like a rare one.
    all_light: bool | None = None
    for token in unmatched:
        light = token in _LIGHT_WORDS or len(token) < 2
        found = None
        if len(token) >= _TYPO_MIN_LENGTH:
            for other in left:
                edits = _edits(other, token) if other in typos else 0
                if edits:
                    found = other
                    break
        if found is not None:
            weight = _INDUSTRY_WEIGHT if light else left[found]
            del left[found]
            agree += weight * (1 - _TYPO_COST * edits)
            against += weight * _TYPO_COST * edits
            if words is not None:
                words.append(Word(found, token, weight, _TYPO))
            continue
        if light:
            if all_light is None:
                all_light = all(word in _LIGHT_WORDS or len(word) < 2 for word in name)
            if not all_light:
                name_light.append(token)
                continue
        against += _RARE
        if words is not None:
            words.append(Word(None, token, _RARE, _ACCOUNT_ONLY))
    lead_light: list[str] = []
    for token, weight in left.items():
        if token in _LIGHT_WORDS or len(token) < 2:
            lead_light.append(token)
        else:
            against += weight
            if words is not None:
                words.append(Word(token, None, weight, _LEAD_ONLY))
    both = bool(name_light and lead_light)
    cost = _INDUSTRY_WEIGHT if both else _DROPPED_WEIGHT
    against += cost * (len(name_light) + len(lead_light))
    if words is not None:
        how = _OTHER_INDUSTRY if both else _DROPPED
        words.extend(Word(token, None, cost, how) for token in lead_light)
        words.extend(Word(None, token, cost, how) for token in name_light)
    return agree, against


def _score(agree: float, against: float) -> float:
    """The share (0-100) of the evidence that agrees. 100 is for the lead's own name; a name
    with the same words but one repeated is the nearest thing to it."""
    if agree <= 0:
        return 0.0
    return min(100 * agree / (agree + against), 99.9)


# Where the lead and the account both say where they are: the same country agrees with this
# weight and another counts against with it, so a namesake in the lead's own country wins,
# while a rare name still matches across a border (a subsidiary's lead, an account's HQ):
# 13.8 against 1.5 is 90.2. The state counts only within one country.
_COUNTRY_WEIGHT = 1.5
_STATE_WEIGHT = 0.5


def _location(
    country: str | None, state: str | None, account: Account, words: list[Word] | None = None
) -> tuple[float, float]:
    """(agrees, against) for where the lead and the account are, when both say."""
    if not country or not account.country:
        return 0.0, 0.0
    if country != account.country:
        if words is not None:
            words.append(Word(country, account.country, _COUNTRY_WEIGHT, "other country"))
        return 0.0, _COUNTRY_WEIGHT
    if words is not None:
        words.append(Word(country, account.country, _COUNTRY_WEIGHT, "same country"))
    if not state or not account.state:
        return _COUNTRY_WEIGHT, 0.0
    if state.casefold() != account.state.casefold():
        if words is not None:
            words.append(Word(state, account.state, _STATE_WEIGHT, "other state"))
        return _COUNTRY_WEIGHT, _STATE_WEIGHT
    if words is not None:
        words.append(Word(state, account.state, _STATE_WEIGHT, "same state"))
    return _COUNTRY_WEIGHT + _STATE_WEIGHT, 0.0


def describe_evidence(words: Iterable[Word]) -> str:
    """A name match's evidence in a line, for the trace: "nova (8.9), hreon ≈ heron (typo,
    13.8), crown only in the account's name (13.8), semiconductors left out"."""
    parts: list[str] = []
    for word in words:
        weight = f"{word.weight:.1f}"
        how = word.how
        if how == _SAME:
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
    lead = {token: _token_weight(token, sizes) for token in lead_key.split()}
    if lead_key and sorted(lead_key.split()) == sorted(name_key.split()):
        return 100.0
    typos = {token for token in lead if _is_new(token, sizes)}
    return _score(*_evidence(lead, tuple(dict.fromkeys(name_key.split())), typos))


def _is_new(token: str, sizes: Mapping[str, int]) -> bool:
    """Whether no name has `token` (as a blocking key): only such a word may be a typo."""
    if len(token) < 2 or token in _STOP_WORDS:
        return False  # never a key, and too short to be a typo anyway
    return not sizes.get(f"t:{token[:60]}")


def _required(tokens: Iterable[str]) -> tuple[str, ...]:
    """The words a name scoring well must share with the lead (or have mistyped there): its
    words that are not industry words, or all of them when it has no others. Sorted."""
    distinct = set(tokens)
    heavy = [token for token in distinct if not _is_light(token)]
    return tuple(sorted(heavy or distinct))


def _thirds(word: str, length: int) -> tuple[str, str, str]:
    """The keys of a word of `length` characters in the typo map (`_typo_map`): the word cut
    in three parts, each key two of the parts (with the length, and where the cut is).

    One edit (a letter replaced, added or dropped) falls in one part, so leaves the other two
    intact: a lead word one such edit from an account word of `length` characters shares a
    key with it, which the lead word's own keys for that length find (`AccountIndex._near`).
    Two letters swapped across a cut are looked up as such (`_swaps`)."""
    first, second = length // 3, 2 * length // 3
    tail = len(word) - (length - second)
    return (
        f"{length}<{word[:second]}",
        f"{length}>{word[len(word) - (length - first) :]}",
        f"{length}|{word[:first]}|{word[tail:]}",
    )


def _swaps(word: str, *cuts: int) -> Iterable[str]:
    """`word` with the two letters on each side of each cut swapped (where they differ)."""
    for cut in cuts:
        if 0 < cut < len(word) and word[cut - 1] != word[cut]:
            yield f"{word[: cut - 1]}{word[cut]}{word[cut - 1]}{word[cut + 1 :]}"


def _typo_map(words: Iterable[str]) -> dict[str, str | tuple[str, ...]]:
    """Each word under its three keys (`_thirds`), and under itself (for `_swaps`); a key
    listing one word holds that word. Where one key per one-character deletion (symmetric
    deletion) took 34 MB at 100,000 accounts, this takes about a third of that, and a lookup
    is as quick: the keys are two thirds of a word, so each lists a word or two."""
    listed: dict[str, str | tuple[str, ...]] = {}
    for word in words:
        for key in (word, *_thirds(word, len(word))):
            held = listed.get(key)
            if held is None:
                listed[key] = word
            elif isinstance(held, str):
                listed[key] = (held, word)
            else:
                listed[key] = (*held, word)
    return listed


@lru_cache(maxsize=8192)
def _industries_near(token: str) -> int:
    """The industry words `token` could be a typo of (`_edits`), as `_INDUSTRY_BITS`."""
    words = _INDUSTRY_WORDS_NEAR_LENGTH.get(len(token))
    if not words or len(token) < _TYPO_MIN_LENGTH:
        return 0
    found = process.extract(token, words, scorer=OSA.distance, score_cutoff=2, limit=None)
    bits = 0
    for word, _, _ in found:
        if _edits(token, word):
            bits |= _INDUSTRY_BITS[word]
    return bits


# By a word's length, the industry words of a length one typo (two in a long word) away.
_INDUSTRY_WORDS_NEAR_LENGTH = {
    length: sorted(word for word in _INDUSTRY_WORDS if abs(len(word) - length) <= 2)
    for length in range(_TYPO_MIN_LENGTH, max(map(len, _INDUSTRY_WORDS)) + 3)
}
_LONG_INDUSTRY_WORDS = sorted(
    word for word in _INDUSTRY_WORDS if len(word) >= _TWO_TYPOS_MIN_LENGTH
)
# By a word's length, the long industry words two edits can reach from it.
_LONG_INDUSTRY_WORDS_NEAR_LENGTH = {
    length: [word for word in _LONG_INDUSTRY_WORDS if abs(len(word) - length) <= 2]
    for length in range(_TWO_TYPOS_MIN_LENGTH, max(map(len, _LONG_INDUSTRY_WORDS)) + 3)
}
_NEAR_CACHE_SIZE = 16384


def _light_near(token: str) -> list[str]:
    """The industry words `token` could be two typos of (`_edits`)."""
    if len(token) < _TWO_TYPOS_MIN_LENGTH:
        return []
    words = _LONG_INDUSTRY_WORDS_NEAR_LENGTH.get(len(token))
    if not words:
        return []
    found = process.extract(token, words, scorer=OSA.distance, score_cutoff=2, limit=None)
    return [word for word, _, _ in found]


# Above this many required-word combinations a lead is scored against every candidate.
_MAX_COMBINATIONS = 256


def _sort_tokens(key: str) -> str:
    return " ".join(sorted(key.split()))


class AccountIndex:
    """Accounts indexed for matching leads, by registrable domain and by company-name keys.

    Built once from every account the router knows; a lead's name is then scored against a few
    hundred of them at most. When several accounts qualify equally (same domain, or same name
    score), the shorter name, then the lowest id (compared as strings) wins, so a decision never
    depends on the order the accounts were loaded in. Ids must be unique.
    """

    __slots__ = (
        "_by_domain",
        "_by_id",
        "_key_sizes",
        "_known",
        "_name_accounts",
        "_names",
        "_namesakes",
        "_near_cache",
        "_neighbours",
        "_numbers",
        "_postings",
        "_required",
    )

    def __init__(
        self, accounts: Iterable[Account], *, key_sizes: Mapping[str, int] | None = None
    ) -> None:
        """`key_sizes`: for an index of accounts prefetched from a database, how many accounts
        each blocking key lists in the whole table, so that keys are chosen, and words weighed,
        as the full index would (the accounts of every key so chosen must all be among
        `accounts`)."""
        self._key_sizes = key_sizes
        ordered = sorted(accounts, key=lambda account: account.id)
        self._by_id: dict[str, Account] = {}
        self._by_domain: dict[str, Account] = {}
        # Names equal once their tokens are sorted score the same against any lead, so they
        # share one number, given in order of their lowest account id.
        self._name_accounts: list[Account] = []
        # (sorted, tokens, key, industry words as bits of `_INDUSTRY_BITS`)
        self._names: list[tuple[str, tuple[str, ...], str, int]] = []
        self._postings: dict[str, list[int]] = {}
        # The names by their required words (`_required`): a lead can only reach a high
        # threshold against a name whose required words it has, so those are the names to
        # look up, not every name sharing a word with it.
        self._required: dict[tuple[str, ...], list[int]] = {}
        numbers: dict[str, int] = {}
        # Names several accounts share -> those accounts, in id order (the first is the name's).
        namesakes: dict[int, tuple[Account, ...]] = {}
        self._namesakes = namesakes
        self._numbers = numbers
        # A lead's typo candidates (`_near`), remembered: leads repeat their words.
        self._near_cache: dict[str, list[str]] = {}
        self._known: dict[str, tuple[float, int, str | None, list[int] | None]] = {}
        for account in ordered:
            if self._by_id.setdefault(account.id, account) is not account:
                raise ValueError(f"account id {account.id!r} appears more than once")
            # The uncached function: the cache is for leads, which repeat; accounts do not.
            domain = registrable_domain.__wrapped__(account.domain)
            if domain is not None:
                self._by_domain.setdefault(domain, account)
            # Not the cached `company_key`: that cache is for leads, which repeat; each account
            # name is normalised exactly once, here.
            key = _normalise(account.name)
            tokens = key.split()
            name = " ".join(sorted(tokens))
            if not name:
                continue
            shared = numbers.get(name)
            if shared is not None:
                # Namesakes: "Lura LLP" and "Lura GmbH" are one name to the matcher, and either
                # may be the lead's company; the accounts' locations may tell them apart.
                held = namesakes.get(shared) or (self._name_accounts[shared],)
                namesakes[shared] = (*held, account)
                continue
            number = numbers[name] = len(self._name_accounts)
            self._name_accounts.append(account)
            distinct = tuple(dict.fromkeys(tokens))
            industries = 0
            for token in distinct:
                industries |= _INDUSTRY_BITS.get(token, 0)
            self._names.append((name, distinct, key, industries))
            required = _required(distinct)
            listed = self._required.get(required)
            if listed is None:
                self._required[required] = [number]
            else:
                listed.append(number)
            for block in _blocking_keys(key, tokens):
                posting = self._postings.get(block)
                if posting is None:
                    self._postings[block] = [number]
                else:
                    posting.append(number)
        self._neighbours = _typo_map(
            {
                word
                for required in self._required
                for word in required
                if len(word) >= _TYPO_MIN_LENGTH
            }
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def match(
        self,
        *,
        domain: str | None,
        company: str | None,
        threshold: float,
        country: str | None = None,
        state: str | None = None,
    ) -> AccountMatch | None:
        """The account a lead belongs to, or None: `lookup(...).match`."""
        return self.lookup(
            domain=domain, company=company, threshold=threshold, country=country, state=state
        ).match

    def lookup(
        self,
        *,
        domain: str | None,
        company: str | None,
        threshold: float,
        country: str | None = None,
        state: str | None = None,
        everyone: list[Candidate] | None = None,
    ) -> AccountLookup:
        """The account a lead belongs to, with the evidence; or no match and the closest.
        (`everyone`, for `similar`: receives every name scored, best first.)

        `domain` must already be a registrable domain ("acme.co.uk") and not a free-mail one:
        the caller knows which domains say nothing about the company, and a lookup here is only
        a dict access. A domain match wins outright with score 100. Otherwise the company name
        scoring highest, and at least `threshold` (0-100), wins; then the shorter name, then
        the lowest account id. A name's score is the share of the evidence that agrees
        (`_evidence`): 100 for the same words in any order, about 92 for a typo in the one
        distinctive word, far below 90 when a distinctive word differs ("Nova Heron
        Semiconductors" against "Nova Crown Semiconductors"), whatever words they share.
        A name is never matched on a part of it: "Acme" is not "Acme Holdings International".
        Where the lead and an account both have a country (ISO code) and state, they count for
        or against (`_location`).

        Other accounts scoring within `AMBIGUITY_MARGIN` of the best, at or over the threshold,
        are in the match's `ambiguous` (an account with exactly the lead's words is only ever
        ambiguous with another such account: namesakes, "Lura LLP" and "Lura GmbH"); the
        caller decides what an ambiguous match means.

        Only accounts sharing a blocking key with the company are scored: those of its rarest
        key, then those of more common keys, while the total stays within `MAX_CANDIDATES`.
        """
        if not 0 <= threshold <= 100:
            raise ValueError(f"threshold must be between 0 and 100, not {threshold!r}")
        if domain:
            account = self._by_domain.get(domain)
            if account is not None:
                # Positional: a class called with keywords goes through a dict of them.
                return AccountLookup(AccountMatch(account, "domain", 100.0))
        key = company_key(company)
        if not key:
            return _NOTHING
        tokens = key.split()
        query = " ".join(sorted(tokens))  # `_sort_tokens`, reusing the split
        # A word may be a typo when no name has it; for `similar`, an account's own name is
        # among the names, so a word only it has may be a typo of another's.
        unique = 0 if everyone is None else 1
        own_words: set[str] = set()  # those words, for `similar`: they are looked up too
        # The lead's words weighed (`_token_weight`, `_is_new`) and its blocking keys listed
        # for `choose_keys`, in one pass: this runs for every lead matched by name.
        postings = self._postings
        key_sizes = self._key_sizes
        lead: dict[str, float] = {}
        typos: set[str] = set()
        listed: list[tuple[int, str, tuple[str, list[int] | None]]] = []
        known = self._known
        for token in tokens:
            if token in lead:
                continue
            facts = known.get(token)
            if facts is None:
                facts = self._facts_of(token)
            weight, size, block, posting = facts
            lead[token] = weight
            if block is None:
                continue
            if size and (len(token) <= 60 or all(block != seen for _, seen, _ in listed)):
                listed.append((size, block, (block, posting)))
            if size <= unique:
                typos.add(token)
                if size:
                    own_words.add(token)
        prefix = f"p:{key.replace(' ', '')[:4]}"
        posting = postings.get(prefix)
        size = (
            (0 if posting is None else len(posting))
            if key_sizes is None
            else key_sizes.get(prefix, 0)
        )
        if size:
            listed.append((size, prefix, (prefix, posting)))
        chosen = [
            (block, posting) for block, posting in _rarest_first(listed) if posting is not None
        ]
        if not chosen:
            return _NOTHING
        names = self._names
        location = _COUNTRY_WEIGHT + (_STATE_WEIGHT if state else 0.0) if country else 0.0
        own = self._numbers.get(query)
        if (
            own is not None
            and everyone is None
            and own not in self._namesakes
            and (
                any(block[0] == "t" for block, _ in chosen)
                or f"p:{names[own][2].replace(' ', '')[:4]}" == prefix
            )
        ):
            account = self._name_accounts[own]
            near, far = _location(country, state, account) if location else (0.0, 0.0)
            if not far:
                # The lead's own name scores 100, and no other name does (`_evidence`). Its
                # evidence is all the words, the same: left for the reader to say.
                return AccountLookup(AccountMatch(account, "name", 100.0))
        numbers: Iterable[int] | None = None
        if threshold > _required_bound(lead, location):
            numbers = self._with_required_words(lead, typos, chosen, threshold, location, own_words)
        if numbers is None:
            numbers = {number for _, posting in chosen for number in posting}
        total = sum(lead.values())
        namesakes = self._namesakes
        name_accounts = self._name_accounts
        # A name with an industry word the lead lacks, while the lead has one the name lacks,
        # has both count against it (`_evidence`): when that alone keeps it under the
        # threshold, it is not scored. A lead word that may be a typo is no industry word of
        # the lead's (it may be used up as a typo of the name's), and the name's industry words
        # it could be a typo of may yet agree (`reached`).
        lead_industries = 0
        reached: int | None = 0 if not typos else None  # worked out when first needed
        most = total + location
        if 100 * most / (most + 2 * _INDUSTRY_WEIGHT) < threshold:
            for token in lead:
                if token not in typos:
                    lead_industries |= _INDUSTRY_BITS.get(token, 0)
        unscored: int | None = None
        # (-score, -1 when the account is where the lead is (else 0), name length, account id,
        # number, account, exact name): smallest first. Between two accounts of the lead's
        # exact name, the one known to be where the lead is wins over one of unknown place.
        ranked: list[tuple[float, int, int, str, int, Account, bool]] = []
        for number in numbers:
            name, name_tokens, _, industries = names[number]
            if lead_industries and industries & ~lead_industries and lead_industries & ~industries:
                if reached is None:
                    reached = 0
                    for token in typos:
                        reached |= _industries_near(token)
                if industries & ~lead_industries & ~reached:
                    unscored = number
                    continue
            exact = name == query
            agree, against = (total, 0.0) if exact else _evidence(lead, name_tokens, typos)
            if agree <= 0:
                continue
            for account in namesakes.get(number) or (name_accounts[number],):
                placed = 0
                if location:
                    near, far = _location(country, state, account)
                    placed = -1 if near else 0
                    near += agree
                    far += against
                else:
                    near, far = agree, against
                score = 100.0 if exact and not far else min(100 * near / (near + far), 99.9)
                ranked.append((-score, placed, len(name), account.id, number, account, exact))
        if not ranked:
            if unscored is None:
                return _NOTHING
            # Scored after all, for the trace: the closest account (another industry).
            account = name_accounts[unscored]
            words: list[Word] = []
            agree, against = _evidence(lead, names[unscored][1], typos, words)
            if location:
                near, far = _location(country, state, account, words)
                agree, against = agree + near, against + far
            closest = Candidate(account, round(_score(agree, against), 1))
            return AccountLookup(None, closest, tuple(words))
        ranked.sort(key=_first_four)
        if everyone is not None:
            everyone.extend(Candidate(entry[5], round(-entry[0], 1)) for entry in ranked)
        best = ranked[0]
        best_score = -best[0]
        others = ranked[1:]
        runner_up = Candidate(others[0][5], round(-others[0][0], 1)) if others else None
        if best_score < threshold:
            evidence = self._words(lead, typos, best[4], country, state, best[5], best[6])
            return AccountLookup(None, Candidate(best[5], round(best_score, 1)), evidence)
        ambiguous = tuple(
            Candidate(other[5], round(-other[0], 1))
            for other in others
            if -other[0] >= threshold
            and best_score + other[0] < AMBIGUITY_MARGIN
            and other[1] == best[1]
            and (other[6] or not best[6])
        )
        evidence = self._words(lead, typos, best[4], country, state, best[5], best[6])
        match = AccountMatch(best[5], "name", round(best_score, 1), evidence, runner_up, ambiguous)
        return AccountLookup(match)

    def forget_leads(self) -> None:
        """Empty what the index remembers of leads' words (for a benchmark's cold start)."""
        self._near_cache.clear()
        self._known.clear()
        _industries_near.cache_clear()

    def _facts_of(self, token: str) -> tuple[float, int, str | None, list[int] | None]:
        """A lead word's weight, how many names have it, its blocking key and the names
        (`_token_weight`, `_is_new`), remembered: leads repeat their words."""
        if len(token) < 2 or token in _STOP_WORDS:
            facts: tuple[float, int, str | None, list[int] | None] = (
                _INDUSTRY_WEIGHT,
                0,
                None,
                None,
            )
        else:
            block = f"t:{token[:60]}"
            posting = self._postings.get(block)
            if self._key_sizes is None:
                size = 0 if posting is None else len(posting)
            else:
                size = self._key_sizes.get(block, 0)
            weight = _INDUSTRY_WEIGHT if token in _LIGHT_WORDS else _weight_of_size(size)
            facts = (weight, size, block, posting)
        if len(self._known) >= _NEAR_CACHE_SIZE:
            self._known.clear()
        self._known[token] = facts
        return facts

    def similar(self, account: Account, *, threshold: float) -> list[Candidate]:
        """The other accounts a lead named and placed like `account` would match at
        `threshold` or over, best first: its near-duplicates (`leadrouter accounts audit`).
        A namesake ("Lura LLP" for "Lura GmbH") scores 100 unless their locations differ."""
        found: list[Candidate] = []
        self.lookup(
            domain=None,
            company=account.name,
            threshold=threshold,
            country=account.country,
            state=account.state,
            everyone=found,
        )
        return [
            candidate
            for candidate in found
            if candidate.score >= threshold and candidate.account.id != account.id
        ]

    def _words(
        self,
        lead: Mapping[str, float],
        typos: Container[str],
        number: int,
        country: str | None,
        state: str | None,
        account: Account,
        exact: bool,
    ) -> tuple[Word, ...]:
        """The evidence of one scored name, word by word, for the trace."""
        words: list[Word] = []
        if exact:
            words.extend(Word(token, token, weight, _SAME) for token, weight in lead.items())
        else:
            _evidence(lead, self._names[number][1], typos, words)
        if country:
            _location(country, state, account, words)
        return tuple(words)

    def _with_required_words(
        self,
        lead: Mapping[str, float],
        typos: Container[str],
        chosen: list[tuple[str, list[int]]],
        threshold: float,
        location: float,
        own_words: Container[str] = (),
    ) -> list[int] | None:
        """The names among the chosen keys' whose required words are each one of the lead's
        words, or a word the lead has mistyped (one lead word for each): at a threshold over
        `_required_bound`, the only names that can reach it. None when there are too many
        combinations of the lead's words to look up.

        A known word of the lead's that is not industry word (not in `typos`) and is not among
        a name's required words matches nothing in it, so counts its weight against and none
        for: combinations leaving out more weight than `threshold` allows are not looked up.
        """
        total = sum(lead.values()) + location
        budget = total * (1 - threshold / 100) + 1e-9
        blocks = {block for block, _ in chosen}
        # Most leads need one lookup: no word of theirs is a typo of an indexed word, and none
        # is light enough to leave out, so the names to score are those whose required words
        # are exactly the lead's distinctive words (a required word is light only in a name
        # of light words alone, which these never are).
        heavy: list[str] = []
        one_lookup = True
        for token, weight in lead.items():
            if token in typos:
                if token in own_words or self._near(token):
                    one_lookup = False
                    break
            elif not _is_light(token):
                if weight <= budget:
                    one_lookup = False
                    break
                heavy.append(token)
        if one_lookup and heavy:
            listed = self._required.get(tuple(sorted(heavy)))
            if listed is None:
                return []
            if any(f"t:{word[:60]}" in blocks for word in heavy):
                return listed
            return self._listed_by(listed, blocks)
        options: list[tuple[list[str], float]] = []
        combinations = 1
        # When a distinctive word of the lead's must be in every name looked up (leaving it
        # out costs more than the budget), no name has a light word among its required words
        # (only names of light words alone do), so light words are not combined.
        heavy_required = any(
            token not in typos and not _is_light(token) and weight > budget
            for token, weight in lead.items()
        )
        for token, weight in lead.items():
            if heavy_required and token not in typos and _is_light(token):
                continue
            # A word no name has is only worth looking up as the words it could be a typo of.
            if token not in typos:
                near = [token]
            elif token in own_words:
                near = [token, *self._near(token)]
            else:
                near = self._near(token)
            left_out = 0.0 if token in typos or _is_light(token) else weight
            if not near and not left_out:
                continue  # a new word no indexed word is near: it adds no combination
            options.append((near, left_out))
            combinations *= len(near) + 1
            if combinations > _MAX_COMBINATIONS:
                return None
        looked_up: set[tuple[str, ...]] = set()
        found: list[int] = []
        unsure: list[int] = []
        for picks in _picks(options, budget):
            required = tuple(sorted(set(picks)))
            if required in looked_up:
                continue
            looked_up.add(required)
            listed = self._required.get(required)
            if listed is not None:
                # A name with one of the lead's own words shares that word's key with the lead:
                # it is listed by a chosen key if that word's key is chosen.
                sure = any(f"t:{word[:60]}" in blocks for word in picks if word in lead)
                (found if sure else unsure).extend(listed)
        if unsure:
            found.extend(self._listed_by(unsure, blocks))
        return found

    def _listed_by(self, numbers: Iterable[int], blocks: set[str]) -> list[int]:
        """The names among `numbers` listed by one of `blocks` (chosen keys): only those are
        candidates, as the scan would see them, and as the storage layer prefetches them.
        (`_blocking_keys` of each name, without building them: a word's key, or the first
        letters of the name.)"""
        words = {block[2:] for block in blocks if block[0] == "t"}
        prefixes = {block[2:] for block in blocks if block[0] == "p"}
        names = self._names
        listed: list[int] = []
        for number in numbers:
            _, tokens, key, _ = names[number]
            if (prefixes and key.replace(" ", "")[:4] in prefixes) or (
                words and any(token[:60] in words for token in tokens)
            ):
                listed.append(number)
        return listed

    def _near(self, token: str) -> list[str]:
        """The indexed required words `token` could be a typo of (`_edits`)."""
        if len(token) < _TYPO_MIN_LENGTH:
            return []
        cached = self._near_cache.get(token)
        if cached is not None:
            return cached
        neighbours = self._neighbours
        listed: list[str] = []  # with repeats: one C call below checks them all
        # The word's own keys for each length an indexed word one edit away can have
        # (`_thirds`, inlined: this runs for every new word of a lead), and the word with two
        # letters swapped across one of its cuts (within a part, the other two find it).
        length = len(token)
        for size in (length - 1, length, length + 1):
            if size < _TYPO_MIN_LENGTH:
                continue
            first, second = size // 3, 2 * size // 3
            for key in (
                f"{size}<{token[:second]}",
                f"{size}>{token[length - (size - first) :]}",
                f"{size}|{token[:first]}|{token[length - (size - second) :]}",
            ):
                held = neighbours.get(key)
                if held is not None:
                    if type(held) is str:
                        listed.append(held)
                    else:
                        listed.extend(held)
        for swapped in _swaps(token, length // 3, 2 * length // 3):
            held = neighbours.get(swapped)
            if held is not None:
                if type(held) is str:
                    listed.append(held)
                else:
                    listed.extend(held)
        found: list[str] = []
        if listed:
            # The words one edit away, in one C call; then `_edits`'s rules for words of the
            # typo map (no industry word of two edits), inlined.
            close = process.extract(token, listed, scorer=OSA.distance, score_cutoff=1, limit=None)
            found = [
                word
                for word in {word for word, _, _ in close}
                if word != token
                and (
                    length > _TYPO_MIN_LENGTH
                    or len(word) > _TYPO_MIN_LENGTH
                    or sorted(word) == sorted(token)
                )
            ]
        if length >= _TWO_TYPOS_MIN_LENGTH:
            found.extend(word for word in _light_near(token) if word not in found)
        found.sort()
        if len(self._near_cache) >= _NEAR_CACHE_SIZE:
            self._near_cache.clear()
        self._near_cache[token] = found
        return found


def _required_bound(lead: Mapping[str, float], location: float) -> float:
    """The best score a name can get when one of its required words (`_required`) is neither
    among the lead's words nor mistyped there: all the lead's words agree, at most, as does
    the location (`location`: the most it can add), and the missing word counts `_RARE`
    against."""
    total = sum(lead.values()) + location
    return 100 * total / (total + _RARE)


def _first_four(
    ranked: tuple[float, int, int, str, int, Account, bool],
) -> tuple[float, int, int, str]:
    return ranked[0], ranked[1], ranked[2], ranked[3]


def _picks(options: list[tuple[list[str], float]], budget: float) -> Iterable[list[str]]:
    """Every choice of at most one word per list of options, one at least, where the lists
    left out cost (their second item) no more than `budget` in all."""
    chosen: list[tuple[list[str], float]] = [([], 0.0)]
    for near, left_out in options:
        chosen = [
            *((picked, cost + left_out) for picked, cost in chosen if cost + left_out <= budget),
            *(([*picked, word], cost) for picked, cost in chosen for word in near),
        ]
    return [picked for picked, _ in chosen if picked]


def choose_keys(sizes: Mapping[str, int]) -> list[str]:
    """Which blocking keys to score, given how many accounts each lists: rarest first, while
    the total stays within MAX_CANDIDATES. The index and the storage layer's prefetch both use
    this, so a lead is matched against the same candidates in memory and from the database."""
    return _rarest_first([(size, block, block) for block, size in sizes.items()])


def _rarest_first(listed: list[tuple[int, str, _T]]) -> list[_T]:
    """`choose_keys` over (size, key, what to return for the key) triples."""
    # The key breaks ties between equally long lists: set order varies between processes.
    # Keys are distinct, so the third items are never compared.
    listed.sort()
    chosen: list[_T] = []
    gathered = 0
    for size, _, item in listed:
        if gathered + size > MAX_CANDIDATES:
            break
        chosen.append(item)
        gathered += size
    return chosen
