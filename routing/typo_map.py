"""The typo map: which indexed words a lead's new word could be a mistyping of.

A word is listed under two thirds of it (`thirds`), since one edit always leaves two of its
three parts intact; a lookup checks the few words so found with one C call.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from routing.name_evidence import (
    INDUSTRY_BITS,
    INDUSTRY_WORDS,
    TWO_TYPOS_MIN_LENGTH,
    TYPO_MIN_LENGTH,
    typo_edits,
)


def thirds(word: str, length: int) -> tuple[str, str, str]:
    """The keys of a word of `length` characters in the typo map (`typo_map`): the word cut
    in three parts, each key two of the parts (with the length, and where the cut is).

    One edit (a letter replaced, added or dropped) falls in one part, so leaves the other two
    intact: a lead word one such edit from an account word of `length` characters shares a
    key with it, which the lead word's own keys for that length find (`AccountIndex._near`).
    Two letters swapped across a cut are looked up as such (`swaps`)."""
    first, second = length // 3, 2 * length // 3
    tail = len(word) - (length - second)
    return (
        f"{length}<{word[:second]}",
        f"{length}>{word[len(word) - (length - first) :]}",
        f"{length}|{word[:first]}|{word[tail:]}",
    )


def swaps(word: str, *cuts: int) -> Iterable[str]:
    """`word` with the two letters on each side of each cut swapped (where they differ)."""
    for cut in cuts:
        if 0 < cut < len(word) and word[cut - 1] != word[cut]:
            yield f"{word[: cut - 1]}{word[cut]}{word[cut - 1]}{word[cut + 1 :]}"


def typo_map(words: Iterable[str]) -> dict[str, str | tuple[str, ...]]:
    """Each word under its three keys (`thirds`), and under itself (for `swaps`); a key
    listing one word holds that word. Where one key per one-character deletion (symmetric
    deletion) took 34 MB at 100,000 accounts, this takes about a third of that, and a lookup
    is as quick: the keys are two thirds of a word, so each lists a word or two."""
    listed: dict[str, str | tuple[str, ...]] = {}
    for word in words:
        for key in (word, *thirds(word, len(word))):
            held = listed.get(key)
            if held is None:
                listed[key] = word
            elif isinstance(held, str):
                listed[key] = (held, word)
            else:
                listed[key] = (*held, word)
    return listed


@lru_cache(maxsize=8192)
def industries_near(token: str) -> int:
    """The industry words `token` could be a typo of (`typo_edits`), as `INDUSTRY_BITS`."""
    words = _INDUSTRY_WORDS_NEAR_LENGTH.get(len(token))
    if not words or len(token) < TYPO_MIN_LENGTH:
        return 0
    found = process.extract(token, words, scorer=OSA.distance, score_cutoff=2, limit=None)
    bits = 0
    for word, _, _ in found:
        if typo_edits(token, word):
            bits |= INDUSTRY_BITS[word]
    return bits


# By a word's length, the industry words of a length one typo (two in a long word) away.
_INDUSTRY_WORDS_NEAR_LENGTH = {
    length: sorted(word for word in INDUSTRY_WORDS if abs(len(word) - length) <= 2)
    for length in range(TYPO_MIN_LENGTH, max(map(len, INDUSTRY_WORDS)) + 3)
}
_LONG_INDUSTRY_WORDS = sorted(word for word in INDUSTRY_WORDS if len(word) >= TWO_TYPOS_MIN_LENGTH)
# By a word's length, the long industry words two edits can reach from it.
_LONG_INDUSTRY_WORDS_NEAR_LENGTH = {
    length: [word for word in _LONG_INDUSTRY_WORDS if abs(len(word) - length) <= 2]
    for length in range(TWO_TYPOS_MIN_LENGTH, max(map(len, _LONG_INDUSTRY_WORDS)) + 3)
}


def light_near(token: str) -> list[str]:
    """The industry words `token` could be two typos of (`typo_edits`)."""
    if len(token) < TWO_TYPOS_MIN_LENGTH:
        return []
    words = _LONG_INDUSTRY_WORDS_NEAR_LENGTH.get(len(token))
    if not words:
        return []
    found = process.extract(token, words, scorer=OSA.distance, score_cutoff=2, limit=None)
    return [word for word, _, _ in found]
