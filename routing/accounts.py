"""Match a lead to a known account: by registrable domain first, then by fuzzy company name.

Matching is the most expensive step of a routing decision, so `AccountIndex` does all the
normalising once, when it is built, and answers a lead with a dict lookup (domain) or with one
`rapidfuzz` pass over a small candidate set taken from blocking keys (name). It never scans
every account for a lead. How a name's words are read: `company_names`; how they weigh as
evidence: `name_evidence`; how a mistyped word finds its account's: `typo_map`.

Longer than 400 lines on purpose: it is one class, the index, whose lookup is the engine's
hottest path; its parts read each other's tables directly, and splitting the class would put
an attribute lookup or a call between them on every lead.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from rapidfuzz import process
from rapidfuzz.distance import OSA

from routing.company_names import STOP_WORDS, blocking_keys, company_key, normalise_name
from routing.domains import registrable_domain
from routing.model import Account, AccountLookup, AccountMatch, Candidate, Word
from routing.name_evidence import (
    COUNTRY_WEIGHT,
    INDUSTRY_BITS,
    INDUSTRY_WEIGHT,
    LIGHT_WORDS,
    RARE_WEIGHT,
    SAME,
    STATE_WEIGHT,
    TWO_TYPOS_MIN_LENGTH,
    TYPO_MIN_LENGTH,
    evidence,
    evidence_score,
    is_light,
    location_evidence,
    required_words,
    weight_of_size,
)
from routing.typo_map import industries_near, light_near, swaps, typo_map

# The most candidates a lead is scored against. Scoring one costs 0.05 to 0.25 µs (more when its
# name is not in the CPU cache), so this keeps a name lookup well under 100 µs. A key listing more
# accounts than this ("t:global") is too common to say which company a lead is: it is never
# scanned, even when the lead shares nothing rarer, because it would mostly add accounts that
# share nothing with the lead but a frequent word, at a millisecond a lead.
MAX_CANDIDATES = 500

_NOTHING = AccountLookup(None)


class AccountLookups(Protocol):
    """What the engine asks of the accounts: `AccountIndex`, or lookups made in advance on
    another core (`routing.lookups_in_advance`)."""

    def lookup(
        self,
        *,
        domain: str | None,
        company: str | None,
        threshold: float,
        country: str | None = None,
        state: str | None = None,
    ) -> AccountLookup: ...


# Another account scoring within this many points of the best makes a match ambiguous.
AMBIGUITY_MARGIN = 1.0

_T = TypeVar("_T")

_NEAR_CACHE_SIZE = 16384
# Above this many required-word combinations a lead is scored against every candidate.
_MAX_COMBINATIONS = 256


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
        # (sorted, tokens, key, industry words as bits of `INDUSTRY_BITS`)
        self._names: list[tuple[str, tuple[str, ...], str, int]] = []
        self._postings: dict[str, list[int]] = {}
        # The names by their required words (`required_words`): a lead can only reach a high
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
        # The same tables seen as holding objects, for the loop below: a name's number is put in
        # several of them, and compiled (`ops/native.py`) an `int` is a machine integer, boxed
        # anew into each; as `Any` it stays the one object, as in plain Python (a box per table
        # per name was 11 MB more at 100,000 accounts).
        numbered: dict[str, Any] = numbers
        by_required: dict[tuple[str, ...], list[Any]] = self._required
        postings: dict[str, list[Any]] = self._postings
        for account in ordered:
            if self._by_id.setdefault(account.id, account) is not account:
                raise ValueError(f"account id {account.id!r} appears more than once")
            # The uncached function: the cache is for leads, which repeat; accounts do not.
            domain = registrable_domain.__wrapped__(account.domain)
            if domain is not None:
                self._by_domain.setdefault(domain, account)
            # Not the cached `company_key`: that cache is for leads, which repeat; each account
            # name is normalised exactly once, here.
            key = normalise_name(account.name)
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
            number: Any = len(self._name_accounts)
            numbered[name] = number
            self._name_accounts.append(account)
            distinct = tuple(dict.fromkeys(tokens))
            industries = 0
            for token in distinct:
                industries |= INDUSTRY_BITS.get(token, 0)
            self._names.append((name, distinct, key, industries))
            required = required_words(distinct)
            listed = by_required.get(required)
            if listed is None:
                by_required[required] = [number]
            else:
                listed.append(number)
            for block in blocking_keys(key, tokens):
                posting = postings.get(block)
                if posting is None:
                    postings[block] = [number]
                else:
                    posting.append(number)
        self._neighbours = typo_map(
            {
                word
                for required in self._required
                for word in required
                if len(word) >= TYPO_MIN_LENGTH
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
        (`evidence`): 100 for the same words in any order, about 92 for a typo in the one
        distinctive word, far below 90 when a distinctive word differs ("Nova Heron
        Semiconductors" against "Nova Crown Semiconductors"), whatever words they share.
        A name is never matched on a part of it: "Acme" is not "Acme Holdings International".
        Where the lead and an account both have a country (ISO code) and state, they count for
        or against (`location_evidence`).

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
        query = " ".join(sorted(tokens))  # `sort_tokens`, reusing the split
        # A word may be a typo when no name has it; for `similar`, an account's own name is
        # among the names, so a word only it has may be a typo of another's.
        unique = 0 if everyone is None else 1
        own_words: set[str] = set()  # those words, for `similar`: they are looked up too
        # The lead's words weighed (`token_weight`, `is_new_word`) and its blocking keys listed
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
        location = COUNTRY_WEIGHT + (STATE_WEIGHT if state else 0.0) if country else 0.0
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
            near, far = location_evidence(country, state, account) if location else (0.0, 0.0)
            if not far:
                # The lead's own name scores 100, and no other name does (`evidence`). Its
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
        # has both count against it (`evidence`): when that alone keeps it under the
        # threshold, it is not scored. A lead word that may be a typo is no industry word of
        # the lead's (it may be used up as a typo of the name's), and the name's industry words
        # it could be a typo of may yet agree (`reached`).
        lead_industries = 0
        reached: int | None = 0 if not typos else None  # worked out when first needed
        most = total + location
        if 100 * most / (most + 2 * INDUSTRY_WEIGHT) < threshold:
            for token in lead:
                if token not in typos:
                    lead_industries |= INDUSTRY_BITS.get(token, 0)
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
                        reached |= industries_near(token)
                if industries & ~lead_industries & ~reached:
                    unscored = number
                    continue
            exact = name == query
            agree, against = (total, 0.0) if exact else evidence(lead, name_tokens, typos)
            if agree <= 0:
                continue
            for account in namesakes.get(number) or (name_accounts[number],):
                placed = 0
                if location:
                    near, far = location_evidence(country, state, account)
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
            agree, against = evidence(lead, names[unscored][1], typos, words)
            if location:
                near, far = location_evidence(country, state, account, words)
                agree, against = agree + near, against + far
            closest = Candidate(account, round(evidence_score(agree, against), 1))
            return AccountLookup(None, closest, tuple(words))
        ranked.sort(key=_first_four)
        if everyone is not None:
            everyone.extend(Candidate(entry[5], round(-entry[0], 1)) for entry in ranked)
        best = ranked[0]
        best_score = -best[0]
        others = ranked[1:]
        runner_up = Candidate(others[0][5], round(-others[0][0], 1)) if others else None
        if best_score < threshold:
            words_found = self._words(lead, typos, best[4], country, state, best[5], best[6])
            return AccountLookup(None, Candidate(best[5], round(best_score, 1)), words_found)
        ambiguous = tuple(
            Candidate(other[5], round(-other[0], 1))
            for other in others
            if -other[0] >= threshold
            and best_score + other[0] < AMBIGUITY_MARGIN
            and other[1] == best[1]
            and (other[6] or not best[6])
        )
        words_found = self._words(lead, typos, best[4], country, state, best[5], best[6])
        match = AccountMatch(
            best[5], "name", round(best_score, 1), words_found, runner_up, ambiguous
        )
        return AccountLookup(match)

    def forget_leads(self) -> None:
        """Empty what the index remembers of leads' words (for a benchmark's cold start)."""
        self._near_cache.clear()
        self._known.clear()
        industries_near.cache_clear()

    def _facts_of(self, token: str) -> tuple[float, int, str | None, list[int] | None]:
        """A lead word's weight, how many names have it, its blocking key and the names
        (`token_weight`, `is_new_word`), remembered: leads repeat their words."""
        if len(token) < 2 or token in STOP_WORDS:
            facts: tuple[float, int, str | None, list[int] | None] = (
                INDUSTRY_WEIGHT,
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
            weight = INDUSTRY_WEIGHT if token in LIGHT_WORDS else weight_of_size(size)
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
            words.extend(Word(token, token, weight, SAME) for token, weight in lead.items())
        else:
            evidence(lead, self._names[number][1], typos, words)
        if country:
            location_evidence(country, state, account, words)
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
            elif not is_light(token):
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
            token not in typos and not is_light(token) and weight > budget
            for token, weight in lead.items()
        )
        for token, weight in lead.items():
            if heavy_required and token not in typos and is_light(token):
                continue
            # A word no name has is only worth looking up as the words it could be a typo of.
            if token not in typos:
                near = [token]
            elif token in own_words:
                near = [token, *self._near(token)]
            else:
                near = self._near(token)
            left_out = 0.0 if token in typos or is_light(token) else weight
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
        (`blocking_keys` of each name, without building them: a word's key, or the first
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
        """The indexed required words `token` could be a typo of (`typo_edits`)."""
        if len(token) < TYPO_MIN_LENGTH:
            return []
        cached = self._near_cache.get(token)
        if cached is not None:
            return cached
        neighbours = self._neighbours
        listed: list[str] = []  # with repeats: one C call below checks them all
        # The word's own keys for each length an indexed word one edit away can have
        # (`thirds`, inlined: this runs for every new word of a lead), and the word with two
        # letters swapped across one of its cuts (within a part, the other two find it).
        length = len(token)
        for size in (length - 1, length, length + 1):
            if size < TYPO_MIN_LENGTH:
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
        for swapped in swaps(token, length // 3, 2 * length // 3):
            held = neighbours.get(swapped)
            if held is not None:
                if type(held) is str:
                    listed.append(held)
                else:
                    listed.extend(held)
        found: list[str] = []
        if listed:
            # The words one edit away, in one C call; then `typo_edits`'s rules for words of the
            # typo map (no industry word of two edits), inlined.
            close = process.extract(token, listed, scorer=OSA.distance, score_cutoff=1, limit=None)
            found = [
                word
                for word in {word for word, _, _ in close}
                if word != token
                and (
                    length > TYPO_MIN_LENGTH
                    or len(word) > TYPO_MIN_LENGTH
                    or sorted(word) == sorted(token)
                )
            ]
        if length >= TWO_TYPOS_MIN_LENGTH:
            found.extend(word for word in light_near(token) if word not in found)
        found.sort()
        if len(self._near_cache) >= _NEAR_CACHE_SIZE:
            self._near_cache.clear()
        self._near_cache[token] = found
        return found


def _required_bound(lead: Mapping[str, float], location: float) -> float:
    """The best score a name can get when one of its required words (`required_words`) is neither
    among the lead's words nor mistyped there: all the lead's words agree, at most, as does
    the location (`location`: the most it can add), and the missing word counts `RARE_WEIGHT`
    against."""
    total = sum(lead.values()) + location
    return 100 * total / (total + RARE_WEIGHT)


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
            *[(picked, cost + left_out) for picked, cost in chosen if cost + left_out <= budget],
            *[([*picked, word], cost) for picked, cost in chosen for word in near],
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
