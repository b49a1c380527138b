"""How well the account matcher finds a lead's account by company name alone: a labelled evaluation.

    .venv/bin/python -m bench.bench_matching                 # 100,000 accounts; writes results
    .venv/bin/python -m bench.bench_matching --quick         # 10,000 accounts, printed only
    .venv/bin/python -m bench.bench_matching --accounts 50000 --probes 500

The accounts are `bench_routing`'s (same generator, same seed). Probes are company names as a
lead might give them, each labelled with the account it should match or None, in eight case
types (`CASES`). Every probe is looked up with `AccountIndex.match(domain=None, ...)` at each
threshold of `THRESHOLDS`, and scored against its label: precision, recall, false positives on
the negatives, wrong accounts, and the time per match.

Labels follow these decisions (bench/README.md says why):

- A probe of an account whose name is shared (same words once normalised and sorted) with
  another account is never made: which of the two is meant cannot be known from the name.
- A name differing from an account only in legal suffix, case, accents, punctuation or word
  order, or by one typo in a word, or without the account's trailing industry word ("Nova Heron"
  for "Nova Heron Semiconductors"), is that account, unless another account is as close.
- A different distinctive word, even a few letters away ("Nova Crown" for "Nova Heron"), is a
  different company. So is the same distinctive word with another industry word ("Lura Metals"
  for "Lura Software"): a namesake, not the account; a matcher that cannot tell should not pick.
- A negative is never one typo away from an account's name, never an account's name without its
  industry word, and never an account's name with an industry word added: those could be the
  account, so they are left out rather than labelled either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bench.bench_routing import (
    ADJECTIVES,
    ALL_SUFFIXES,
    NOUNS,
    SECTORS,
    SURNAMES,
    SYLLABLES,
    _company,
    _full_name,
    _revision,
    _typo,
    make_accounts,
    routing_core,
)
from routing.accounts import AccountIndex
from routing.company_names import company_key
from routing.model import Account

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "matching.json"

DEFAULT_ACCOUNTS = 100_000
QUICK_ACCOUNTS = 10_000
DEFAULT_PROBES = 2_000  # per case type
DEFAULT_SEED = 7
THRESHOLDS = (80.0, 85.0, 90.0, 95.0)
DEFAULT_THRESHOLD = 90.0  # the policy's `accounts.fuzzy_threshold` default
OWNERS = ("rep-a", "rep-b", "rep-c")

# Case types, in the order they are reported. The first five have a true account.
EXACT = "exact name"
SUFFIX = "other legal suffix"
VARIANT = "case, accents, punctuation, order"
TYPO = "one typo in a distinctive word"
DROPPED = "industry word dropped"
NEAR_MISS = "near-miss name (other company)"
NAMESAKE = "same name, other industry (other company)"
UNRELATED = "unrelated name (other company)"
CASES = (EXACT, SUFFIX, VARIANT, TYPO, DROPPED, NEAR_MISS, NAMESAKE, UNRELATED)
POSITIVE_CASES = frozenset({EXACT, SUFFIX, VARIANT, TYPO, DROPPED})

# The failures issue 17 reports, as (account that exists, lead's company): each a different
# company, so added to the accounts and probed as near misses.
ISSUE_EXAMPLES = (
    ("Nova Crown Semiconductors", "Nova Heron Semiconductors Inc"),
    ("Quavo Software Inc", "Quavojin Software"),
    ("Keystone Ink Metals", "Keystone Bison Metals Inc."),
    ("Nexba Insurance", "Nexbasu Insurance Ltd."),
    ("Park Capital BV", "Parker Capital"),
)

# Industry words: generic, so dropping one keeps the company and changing one makes a namesake.
GENERIC = frozenset(company_key(word) for word in SECTORS)
_NOT_WORDS = frozenset({"&", "The", "Company", "and"})
_DICTIONARY = {
    **{word: ADJECTIVES for word in ADJECTIVES},
    **{word: NOUNS for word in NOUNS},
    **{word: SURNAMES for word in SURNAMES if " " not in word},
}
# The suffixes a probe is given: the generator's, the commonest ones once more, and "Corp".
OTHER_SUFFIXES = (*ALL_SUFFIXES, "Inc", "Ltd", "LLC", "GmbH", "S.A.", "Limited", "Corp")
_LONGEST_FIRST = sorted(set(OTHER_SUFFIXES), key=lambda s: (-len(s), s))


@dataclass(frozen=True, slots=True)
class Probe:
    case: str
    company: str
    label: str | None  # the id of the account it should match, None for another company
    source: str  # the id of the account it was made from ("" for an unrelated name)


def sorted_key(name: str) -> str:
    """The name as the matcher compares it: `company_key`, tokens sorted."""
    return " ".join(sorted(company_key(name).split()))


def stem(key: str) -> str:
    """A sorted key without its industry words; the key itself when it has none, or is all."""
    kept = [token for token in key.split() if token not in GENERIC]
    return " ".join(kept) if kept else key


def split_suffix(name: str) -> tuple[list[str], str]:
    """The words of a generated name, and its legal suffix ("" when it has none)."""
    for suffix in _LONGEST_FIRST:
        if name.endswith(f" {suffix}"):
            return name[: -len(suffix) - 1].split(), suffix
    return name.split(), ""


class Corpus:
    """The accounts with what labelling needs: each key's accounts, and a blocking map (every
    word, and the first four letters) to find the accounts close to a name without a scan."""

    def __init__(self, accounts: Sequence[Account]) -> None:
        self.accounts = list(accounts)
        self.by_id = {account.id: account for account in self.accounts}
        self.key_of = {account.id: sorted_key(account.name) for account in self.accounts}
        self.key_count = Counter(self.key_of.values())
        self.stem_keys: dict[str, set[str]] = defaultdict(set)
        self.near: dict[str, set[str]] = defaultdict(set)
        for key in self.key_count:
            if not key:
                continue
            self.stem_keys[stem(key)].add(key)
            for block in self._blocks(key):
                self.near[block].add(key)
        self.near_sorted = {block: sorted(keys) for block, keys in self.near.items()}

    @staticmethod
    def _blocks(key: str) -> set[str]:
        return {f"t:{token}" for token in key.split()} | {f"p:{key.replace(' ', '')[:4]}"}

    def unique(self, account: Account) -> bool:
        key = self.key_of[account.id]
        return bool(key) and self.key_count[key] == 1

    def closest(self, key: str, *, within: int, besides: str = "") -> str | None:
        """An account key other than `besides` at most `within` edits from `key` (optimal
        string alignment: a swap of neighbours is one edit), or None."""
        for block in sorted(self._blocks(key)):
            found = process.extract(
                key,
                self.near_sorted.get(block, ()),
                scorer=OSA.distance,
                score_cutoff=within,
                limit=None,
            )
            for other, _, _ in found:
                if other != besides:
                    return str(other)
        return None

    def could_be_an_account(self, key: str) -> bool:
        """Whether a name (sorted key) could be an account's: equal to one, a typo away from
        one, one without its industry words, or one with industry words added."""
        return (
            not key
            or key in self.key_count
            or key in self.stem_keys
            or stem(key) in self.key_count
            or self.closest(key, within=1) is not None
        )

    def ambiguous(self, key: str, source: Account) -> bool:
        """Whether a name made from `source` could as well be another account: is another's
        name, is another's without its industry word, or is one typo from another's."""
        own = self.key_of[source.id]
        if key == own:
            return False
        if key in self.key_count or self.stem_keys.get(key, {own}) != {own}:
            return True
        # One edit, not "as many edits as from the source": a name without its industry word is
        # many edits from the account, and so, by chance, from many others; but only one typo
        # from another account makes a typo probe, or any other, a toss-up.
        return self.closest(key, within=1, besides=own) is not None


def _distinctive(words: Sequence[str], *, min_length: int = 3) -> list[int]:
    """Positions of the words that say which company it is (not industry words, not "&")."""
    return [
        i
        for i, word in enumerate(words)
        if word not in _NOT_WORDS
        and company_key(word) not in GENERIC
        and len(word) >= min_length
        and word.replace("'", "").isalpha()
    ]


def _other_suffix(rng: random.Random, suffix: str) -> str:
    while True:
        other = rng.choice((*OTHER_SUFFIXES, "", ""))
        if other != suffix:
            return other


def _with_suffix(rng: random.Random, words: Sequence[str], suffix: str) -> str:
    name = " ".join(words)
    if not suffix:
        return name
    return f"{name}, {suffix}" if rng.random() < 0.2 else f"{name} {suffix}"


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _variant(rng: random.Random, name: str) -> str:
    """Case, accents, punctuation or word order changed; the words themselves kept. "The ...
    Company" keeps its first and last word in place and "A & B" turns round as a whole, as
    people write them."""
    words, suffix = split_suffix(name)
    the = ["The"] if len(words) > 1 and words[0] == "The" else []
    company = ["Company"] if len(words) > 2 and words[-1] == "Company" else []
    core = words[len(the) : len(words) - len(company)]
    joined = "&" in core
    changes = ["upper", "lower", "dot"]
    if len(core) > 1 and not joined:
        changes += ["comma", "hyphen", "swap", "rotate"]
    if joined:
        changes += ["and", "reverse"]
    if not name.isascii():
        changes += ["accents"] * 3
    for _ in range(10):
        new, end, case = list(core), suffix, ""
        for change in rng.sample(changes, rng.choice((1, 1, 2))):
            if change in ("upper", "lower"):
                case = change
            elif change == "dot":
                end = f"{end}." if end and not end.endswith(".") else end
            elif change == "comma" and len(new) > 1:
                new = [new[0] + ",", *new[1:]]
            elif change == "hyphen" and len(new) > 1:
                new = ["-".join(new[:2]), *new[2:]]
            elif change == "swap" and len(new) > 1:
                new = [new[1], new[0], *new[2:]]
            elif change == "rotate":
                new = [*new[1:], new[0]]
            elif change == "and":
                new = ["and" if w == "&" else w for w in new]
            elif change == "reverse":
                new = new[::-1]
            elif change == "accents":
                new = [_strip_accents(w) for w in new]
        variant = _with_suffix(rng, [*the, *new, *company], end)
        variant = variant.upper() if case == "upper" else variant.lower() if case else variant
        if variant != name:
            return variant
    return name.upper() if name.upper() != name else name.lower()


def _near_word(rng: random.Random, word: str) -> str | None:
    """Another word a few letters from `word` (two edits or more): a different company's."""
    family = _DICTIONARY.get(word)
    options: list[str] = []
    if family is not None and rng.random() < 0.6:
        similar = process.extract(
            word, [w for w in family if w != word and " " not in w], scorer=fuzz.ratio, limit=4
        )
        options = [str(found) for found, _, _ in similar]
    else:
        syllable = rng.choice(SYLLABLES)
        cut = word[: -rng.choice((1, 2))] if len(word) >= 6 else word
        options = [word + syllable, cut + syllable]
        if len(word) >= 6:
            options.append(word[: -rng.choice((2, 3))])
    options = [o for o in options if o.lower() != word.lower() and len(o) >= 3]
    options = [o for o in options if OSA.distance(o.lower(), word.lower()) >= 2]
    if not options:
        return None
    new = rng.choice(options)
    return new[:1].upper() + new[1:].lower() if word[:1].isupper() else new


def _make_one(case: str, rng: random.Random, corpus: Corpus, sources: Sequence[Account]) -> Probe:
    """One probe of `case`, drawn until it is valid (the labelling rules of the docstring)."""
    while True:
        source = rng.choice(sources)
        words, suffix = split_suffix(source.name)
        company: str | None = None
        if case == EXACT:
            company = source.name
        elif case == SUFFIX:
            company = _with_suffix(rng, words, _other_suffix(rng, suffix))
        elif case == VARIANT:
            company = _variant(rng, source.name)
        elif case == TYPO:
            spots = _distinctive(words, min_length=4)
            if spots:
                i = rng.choice(spots)
                typo = _typo(rng, words[i])
                if typo != words[i]:
                    company = _with_suffix(rng, [*words[:i], typo, *words[i + 1 :]], suffix)
        elif case == DROPPED:
            if len(words) > 1 and company_key(words[-1]) in GENERIC and _distinctive(words):
                company = _with_suffix(rng, words[:-1], suffix if rng.random() < 0.5 else "")
        elif case == NEAR_MISS:
            spots = _distinctive(words)
            if spots:
                i = rng.choice(spots)
                near = _near_word(rng, words[i])
                if near is not None:
                    company = _with_suffix(rng, [*words[:i], near, *words[i + 1 :]], suffix)
        elif case == NAMESAKE:
            if len(words) > 1 and company_key(words[-1]) in GENERIC and _distinctive(words):
                own = company_key(words[-1])
                sector = rng.choice([s for s in SECTORS if company_key(s) != own])
                company = _with_suffix(rng, [*words[:-1], sector], rng.choice(OTHER_SUFFIXES))
        else:
            made, home = _company(rng)
            company = _full_name(rng, made, home)
        if company is None:
            continue
        key = sorted_key(company)
        if case in POSITIVE_CASES:
            if not corpus.ambiguous(key, source):
                return Probe(case, company, source.id, source.id)
        elif not corpus.could_be_an_account(key):
            return Probe(case, company, None, "" if case == UNRELATED else source.id)


def make_probes(corpus: Corpus, seed: int, per_case: int) -> list[Probe]:
    """`per_case` labelled probes of every case type, the same for the same corpus and seed."""
    sources = [a for a in corpus.accounts if corpus.unique(a)]
    probes: list[Probe] = []
    for case in CASES:
        rng = random.Random(f"{seed}:probes:{case}")
        count = per_case
        if case == NEAR_MISS:
            for account_name, company in ISSUE_EXAMPLES:
                account = next(a for a in corpus.accounts if a.name == account_name)
                if not corpus.could_be_an_account(sorted_key(company)):
                    probes.append(Probe(case, company, None, account.id))
                    count -= 1
        probes.extend(_make_one(case, rng, corpus, sources) for _ in range(count))
    return probes


def make_corpus(seed: int, count: int) -> Corpus:
    """`bench_routing`'s accounts, and the accounts of issue 17's examples."""
    accounts = make_accounts(seed, count, OWNERS)
    extra = [
        Account(f"issue{number}", name, None, OWNERS[0], None)
        for number, (name, _) in enumerate(ISSUE_EXAMPLES, 1)
    ]
    return Corpus([*accounts, *extra])


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True, slots=True)
class Outcome:
    probe: Probe
    matched: str | None  # the account id returned, None for no match
    score: float | None
    ns: int


def run(index: AccountIndex, probes: Sequence[Probe], threshold: float) -> list[Outcome]:
    """Every probe matched by name alone, each call timed; the lead caches emptied first, so
    each name is normalised, and its words looked up, as a new lead's would be."""
    company_key.cache_clear()
    index.forget_leads()
    outcomes = []
    clock = time.perf_counter_ns
    for probe in probes:
        start = clock()
        found = index.match(domain=None, company=probe.company, threshold=threshold)
        elapsed = clock() - start
        # An ambiguous match names no account under the default `accounts.on_ambiguous:
        # rules` (the rules route the lead as if none matched), so it counts as none here.
        if found is not None and found.ambiguous:
            found = None
        matched = None if found is None else found.account.id
        outcomes.append(Outcome(probe, matched, None if found is None else found.score, elapsed))
    return outcomes


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _percentile_us(ordered: Sequence[int], p: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return round(ordered[int(rank) - 1] / 1000, 1)


def score(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Precision (of the matches returned, the right account), recall (of the probes with an
    account, matched to it), wrong-account rate (of those, matched to another), false-positive
    rate (of the probes without one, matched to any) and time per match. Percentages; None
    where there is nothing to divide by."""
    positives = [o for o in outcomes if o.probe.label is not None]
    negatives = [o for o in outcomes if o.probe.label is None]
    returned = [o for o in outcomes if o.matched is not None]
    right = [o for o in returned if o.matched == o.probe.label]
    wrong = [o for o in positives if o.matched is not None and o.matched != o.probe.label]
    false = [o for o in negatives if o.matched is not None]
    times = sorted(o.ns for o in outcomes)
    return {
        "probes": len(outcomes),
        "positives": len(positives),
        "negatives": len(negatives),
        "matched": len(returned),
        "right": len(right),
        "wrong_account": len(wrong),
        "false_positive": len(false),
        "precision": _share(len(right), len(returned)),
        "recall": _share(len(right), len(positives)),
        "wrong_account_rate": _share(len(wrong), len(positives)),
        "false_positive_rate": _share(len(false), len(negatives)),
        "p50_us": _percentile_us(times, 50),
        "p99_us": _percentile_us(times, 99),
    }


def evaluate(
    corpus: Corpus, probes: Sequence[Probe], thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, Any]:
    """The scores of every case type and overall at each threshold, and a few mistakes (a
    wrong or false match) and misses for a person to read."""
    index = AccountIndex(corpus.accounts)
    results: dict[str, Any] = {}
    for threshold in thresholds:
        outcomes = run(index, probes, threshold)
        by_case = {case: score([o for o in outcomes if o.probe.case == case]) for case in CASES}
        mistakes: dict[str, list[dict[str, Any]]] = {}
        for case in CASES:
            bad = [
                o
                for o in outcomes
                if o.probe.case == case and o.matched is not None and o.matched != o.probe.label
            ]
            mistakes[case] = [
                {
                    "company": o.probe.company,
                    "should_match": None
                    if o.probe.label is None
                    else corpus.by_id[o.probe.label].name,
                    "matched": corpus.by_id[o.matched].name if o.matched else None,
                    "score": o.score,
                }
                for o in bad[:5]
            ]
        missed = {
            case: [
                {"company": o.probe.company, "should_match": corpus.by_id[o.probe.label].name}
                for o in outcomes
                if o.probe.case == case and o.probe.label is not None and o.matched is None
            ][:5]
            for case in POSITIVE_CASES
        }
        results[f"{threshold:g}"] = {
            "overall": score(outcomes),
            "cases": by_case,
            "mistakes": mistakes,
            "missed": {case: missed[case] for case in CASES if case in missed},
        }
    return results


def _cell(value: float | None, unit: str = "%") -> str:
    return "–" if value is None else f"{value:.1f}{unit}" if unit == "%" else f"{value:g}"


def table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per threshold and case type, then overall."""
    lines = [
        "| threshold | case | probes | precision | recall | wrong account | false positives "
        "| p50 µs | p99 µs |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for threshold, result in results.items():
        rows = [*result["cases"].items(), ("**overall**", result["overall"])]
        for case, s in rows:
            lines.append(
                f"| {threshold} | {case} | {s['probes']:,} | {_cell(s['precision'])} "
                f"| {_cell(s['recall'])} | {_cell(s['wrong_account_rate'])} "
                f"| {_cell(s['false_positive_rate'])} | {_cell(s['p50_us'], '')} "
                f"| {_cell(s['p99_us'], '')} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_matching", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--accounts", type=int, help=f"default {DEFAULT_ACCOUNTS:,}")
    parser.add_argument("--probes", type=int, default=DEFAULT_PROBES, help="per case type")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    count = args.accounts or (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)

    load_before = os.getloadavg()
    started = time.perf_counter()
    corpus = make_corpus(args.seed, count)
    probes = make_probes(corpus, args.seed, args.probes)
    made = time.perf_counter() - started
    results = evaluate(corpus, probes)
    load_after = os.getloadavg()
    print(
        f"{len(corpus.accounts):,} accounts, {len(probes):,} probes "
        f"({args.probes:,} per case type, made in {made:.1f} s), by name alone, seed {args.seed}"
    )
    print(table(results))
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    full = count == DEFAULT_ACCOUNTS and args.probes == DEFAULT_PROBES and not args.quick
    if not full:
        return 0
    document = {
        "revision": _revision(),
        "python": platform.python_version(),
        "routing_core": routing_core(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": {"before": load_before, "after": load_after},
        "accounts": len(corpus.accounts),
        "probes_per_case": args.probes,
        "seed": args.seed,
        "default_threshold": DEFAULT_THRESHOLD,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
