"""Account lookups made in advance, to be answered later, elsewhere.

Matching a lead to an account depends on the lead and the accounts alone, not on the routing
state, so a long replay matches its leads on one core while another routes them in order (see
`bot.service.replay_stage`):

    looked = look_up(lead, index, threshold=policy.fuzzy_threshold)   # where the index is
    answers.next(looked)                                               # where routing is
    route(lead, policy=policy, accounts=answers, ...)

`Answers` stands in for the index: it answers the one lookup made for the lead; a lookup that is
not that one (a lead routed out of turn, or read otherwise there), or a lead with none, is
looked up in an index of its own (the fallback), so an answer never goes to the wrong question.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from routing.accounts import AccountLookups
from routing.model import Account, AccountLookup, AccountMatch, Candidate, Lead, Word
from routing.normalize import account_facts

# What a lookup is asked: (domain, company, threshold, country, state).
Question = tuple[str | None, str | None, float, str | None, str | None]


class Looked(NamedTuple):
    question: Question
    found: AccountLookup


def look_up(lead: Lead, accounts: AccountLookups, *, threshold: float) -> Looked:
    """The lookup the engine would make for `lead` (`engine._match_account`), made now."""
    domain, company, country, state = account_facts(lead)
    found = accounts.lookup(
        domain=domain, company=company, threshold=threshold, country=country, state=state
    )
    return Looked((domain, company, threshold, country, state), found)


# A lookup as plain tuples, its accounts by id: what crosses a pipe between two processes.
# Pickling the dataclasses themselves cost more than the lookups did.
Packed = tuple[Question, Any, Any, tuple[tuple[Any, ...], ...]]


def pack(looked: Looked) -> Packed:
    found = looked.found
    match = found.match
    packed_match = None
    if match is not None:
        packed_match = (
            match.account.id,
            match.method,
            match.score,
            tuple(map(tuple, match.evidence)),
            _pack_candidate(match.runner_up),
            tuple(map(_pack_candidate, match.ambiguous)),
        )
    evidence = tuple(map(tuple, found.evidence))
    return (looked.question, packed_match, _pack_candidate(found.closest), evidence)


def unpack(packed: Packed, accounts: Mapping[str, Account]) -> Looked | None:
    """`pack`'s lookup again, with `accounts`' objects; None if one of its accounts is not
    among them (stored since they were read)."""
    question, packed_match, closest, evidence = packed
    try:
        match = None
        if packed_match is not None:
            account_id, method, score, words, runner_up, ambiguous = packed_match
            match = AccountMatch(
                accounts[account_id],
                method,
                score,
                tuple(Word(*word) for word in words),
                _unpack_candidate(runner_up, accounts),
                tuple(_unpack_candidate(c, accounts) for c in ambiguous),  # type: ignore[misc]
            )
        found = AccountLookup(
            match,
            _unpack_candidate(closest, accounts),
            tuple(Word(*word) for word in evidence),
        )
    except KeyError:
        return None
    return Looked(question, found)


def _pack_candidate(candidate: Candidate | None) -> tuple[str, float] | None:
    return None if candidate is None else (candidate.account.id, candidate.score)


def _unpack_candidate(
    packed: tuple[str, float] | None, accounts: Mapping[str, Account]
) -> Candidate | None:
    return None if packed is None else Candidate(accounts[packed[0]], packed[1])


class Answers:
    """`AccountLookups` that answers with lookups made in advance, one lead at a time. A lead
    with none, or whose lookup asks something else than what was looked up for it (read
    otherwise by the other process, or routed out of turn), is looked up in `fallback()`,
    made the first time it is needed: an answer is never given to the wrong question."""

    __slots__ = ("_fallback", "_looked", "_make_fallback", "misplaced")

    def __init__(self, fallback: Callable[[], AccountLookups]) -> None:
        self._looked: Looked | None = None
        self._make_fallback = fallback
        self._fallback: AccountLookups | None = None
        self.misplaced = 0  # lookups made in advance that did not fit their lead

    def next(self, looked: Looked | None) -> None:
        """The lookup made for the lead about to be routed (None: none was)."""
        self._looked = looked

    def lookup(
        self,
        *,
        domain: str | None,
        company: str | None,
        threshold: float,
        country: str | None = None,
        state: str | None = None,
    ) -> AccountLookup:
        looked = self._looked
        if looked is not None:
            if looked.question == (domain, company, threshold, country, state):
                return looked.found
            self.misplaced += 1
        if self._fallback is None:
            self._fallback = self._make_fallback()
        return self._fallback.lookup(
            domain=domain, company=company, threshold=threshold, country=country, state=state
        )
