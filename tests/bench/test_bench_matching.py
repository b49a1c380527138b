"""The labelled matching evaluation labels its probes as it says, and scores them honestly.

These check the generator and the arithmetic, not how good the matcher is."""

from __future__ import annotations

import pytest
from rapidfuzz.distance import OSA

from bench.bench_matching import (
    CASES,
    DROPPED,
    EXACT,
    GENERIC,
    ISSUE_EXAMPLES,
    NAMESAKE,
    NEAR_MISS,
    POSITIVE_CASES,
    SUFFIX,
    THRESHOLDS,
    TYPO,
    UNRELATED,
    VARIANT,
    Corpus,
    Outcome,
    Probe,
    evaluate,
    make_corpus,
    make_probes,
    score,
    sorted_key,
    split_suffix,
    stem,
    table,
)
from routing.company_names import company_key

ACCOUNTS = 2_000
PER_CASE = 40


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus(3, ACCOUNTS)


@pytest.fixture(scope="module")
def probes(corpus: Corpus) -> list[Probe]:
    return make_probes(corpus, 3, PER_CASE)


def of_case(probes: list[Probe], case: str) -> list[Probe]:
    found = [p for p in probes if p.case == case]
    assert len(found) == PER_CASE
    return found


def test_every_case_has_its_probes_and_positives_are_labelled_with_their_source(
    probes: list[Probe],
) -> None:
    for case in CASES:
        for probe in of_case(probes, case):
            if case in POSITIVE_CASES:
                assert probe.label == probe.source
            else:
                assert probe.label is None


def test_an_exact_name_probe_is_labelled_with_the_account_of_that_name(
    corpus: Corpus, probes: list[Probe]
) -> None:
    for probe in of_case(probes, EXACT):
        assert probe.label is not None
        assert corpus.by_id[probe.label].name == probe.company
        # Its name is no other account's: the label is the only right answer.
        assert corpus.key_count[sorted_key(probe.company)] == 1


def test_suffix_and_variant_probes_keep_the_accounts_words(
    corpus: Corpus, probes: list[Probe]
) -> None:
    for probe in of_case(probes, SUFFIX):
        assert probe.label is not None
        source = corpus.by_id[probe.label].name
        assert probe.company != source
        assert split_suffix(probe.company.replace(",", ""))[0] == split_suffix(source)[0]
    for probe in of_case(probes, VARIANT):
        assert probe.label is not None
        source = corpus.by_id[probe.label].name
        assert probe.company != source
        # "&" and "and" are one word to the matcher already; the words are otherwise the same.
        words = sorted(w for w in company_key(probe.company).split() if w != "and")
        assert words == sorted(w for w in company_key(source).split() if w != "and")


def test_a_typo_probe_is_one_edit_from_its_account_and_no_closer_to_another(
    corpus: Corpus, probes: list[Probe]
) -> None:
    for probe in of_case(probes, TYPO):
        assert probe.label is not None
        own = company_key(corpus.by_id[probe.label].name)
        assert OSA.distance(company_key(probe.company), own) == 1
        key = sorted_key(probe.company)
        others = [k for k in corpus.key_count if k != sorted_key(own)]
        assert min(OSA.distance(key, other) for other in others) > 1


def test_a_dropped_word_probe_is_its_account_without_an_industry_word(
    corpus: Corpus, probes: list[Probe]
) -> None:
    for probe in of_case(probes, DROPPED):
        assert probe.label is not None
        own = set(company_key(corpus.by_id[probe.label].name).split())
        mine = set(company_key(probe.company).split())
        assert mine < own
        assert own - mine <= GENERIC
        # No other account has the same words with another industry word.
        assert [
            a
            for a in corpus.accounts
            if stem(corpus.key_of[a.id]) == stem(sorted_key(probe.company))
        ] == [corpus.by_id[probe.label]]


def test_negative_probes_are_no_accounts_name_nor_one_edit_from_one(
    corpus: Corpus, probes: list[Probe]
) -> None:
    """Checked by brute force over every account, not through the generator's blocking map."""
    keys = list(corpus.key_count)
    for case in (NEAR_MISS, NAMESAKE, UNRELATED):
        for probe in of_case(probes, case):
            key = sorted_key(probe.company)
            assert min(OSA.distance(key, k) for k in keys) >= 2, probe
            assert stem(key) not in corpus.key_count, probe
            assert all(stem(k) != key for k in keys), probe


def test_a_near_miss_differs_from_its_account_in_one_word_by_two_letters_or_more(
    corpus: Corpus, probes: list[Probe]
) -> None:
    near = of_case(probes, NEAR_MISS)
    assert [p.company for p in near[: len(ISSUE_EXAMPLES)]] == [c for _, c in ISSUE_EXAMPLES]
    for probe in near[len(ISSUE_EXAMPLES) :]:
        mine = company_key(probe.company).split()
        own = company_key(corpus.by_id[probe.source].name).split()
        assert len(mine) == len(own)
        differ = [(a, b) for a, b in zip(mine, own, strict=True) if a != b]
        assert len(differ) == 1
        assert OSA.distance(*differ[0]) >= 2
        assert differ[0][1] not in GENERIC


def test_a_namesake_keeps_the_distinctive_words_and_changes_the_industry_word(
    corpus: Corpus, probes: list[Probe]
) -> None:
    for probe in of_case(probes, NAMESAKE):
        words, _ = split_suffix(corpus.by_id[probe.source].name)
        assert probe.company.startswith(" ".join(words[:-1]) + " ")
        mine = split_suffix(probe.company.replace(",", ""))[0]
        assert company_key(mine[-1]) in GENERIC
        assert company_key(mine[-1]) != company_key(words[-1])


def test_probes_are_the_same_for_the_same_seed(corpus: Corpus, probes: list[Probe]) -> None:
    assert make_probes(corpus, 3, PER_CASE) == probes
    assert make_probes(corpus, 4, PER_CASE) != probes


def test_scores_count_right_wrong_and_false_matches_as_defined() -> None:
    def outcome(label: str | None, matched: str | None, ns: int = 1_000) -> Outcome:
        return Outcome(Probe(EXACT, "x", label, label or ""), matched, None, ns)

    outcomes = [
        outcome("a", "a"),
        outcome("a", "a"),
        outcome("b", "c"),  # a wrong account
        outcome("d", None),  # missed
        outcome(None, "e"),  # a false positive
        outcome(None, None, 9_000),
    ]
    s = score(outcomes)
    assert (s["probes"], s["positives"], s["negatives"], s["matched"]) == (6, 4, 2, 4)
    assert s["precision"] == 50.0  # 2 right of 4 returned
    assert s["recall"] == 50.0  # 2 of 4 with an account
    assert s["wrong_account_rate"] == 25.0
    assert s["false_positive_rate"] == 50.0
    assert (s["p50_us"], s["p99_us"]) == (1.0, 9.0)
    empty = score([outcome(None, None)])
    assert (empty["precision"], empty["recall"]) == (None, None)


def test_the_evaluation_reports_every_case_at_every_threshold(
    corpus: Corpus, probes: list[Probe]
) -> None:
    results = evaluate(corpus, probes)
    assert list(results) == [f"{t:g}" for t in THRESHOLDS]
    for result in results.values():
        assert list(result["cases"]) == list(CASES)
        assert result["overall"]["probes"] == len(probes)
        assert sum(s["probes"] for s in result["cases"].values()) == len(probes)
        # Exact names are matched whatever the threshold: equal names score 100.
        assert result["cases"][EXACT]["recall"] == 100.0
    assert table(results).count("\n") == 1 + len(THRESHOLDS) * (len(CASES) + 1)
