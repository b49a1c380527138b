"""The accounts that are near-duplicates of each other under the matcher (`leadrouter accounts
audit`): the CRM's own duplicates, which make a lead's match ambiguous or send it to the wrong
owner.

Two accounts are near-duplicates when a lead named (and placed) like one would match the other at
the threshold or over (`AccountIndex.similar`); a group is every account linked to another by
that relation, so "A ~ B" and "B ~ C" make one group of three even when A and C are far apart.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from routing.accounts import AMBIGUITY_MARGIN, AccountIndex
from routing.company_names import company_key
from routing.model import Account

# The columns of the audit's CSV, for whoever cleans the CRM.
AUDIT_COLUMNS = (
    "group",
    "account_id",
    "name",
    "domain",
    "owner",
    "country",
    "state",
    "duplicate_of",
    "score",
    "reason",
)


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two accounts a lead could match either of: `first` has the lower id. `score` is the
    higher of the two ways round (a lead named like `first` against `second`, and back)."""

    first: Account
    second: Account
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Member:
    """An account of a group and the pair that joined it to the accounts before it: its best
    pair with one of them (None for the group's first account)."""

    account: Account
    joined_by: DuplicatePair | None


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Accounts linked by near-duplicate pairs, by id; `pairs` are every such pair among them."""

    members: tuple[Member, ...]
    pairs: tuple[DuplicatePair, ...]

    @property
    def accounts(self) -> tuple[Account, ...]:
        return tuple(member.account for member in self.members)

    @property
    def first(self) -> Account:
        return self.members[0].account

    @property
    def owners(self) -> tuple[str | None, ...]:
        """The owners once each, in id order; None for accounts without one."""
        return tuple(dict.fromkeys(member.account.owner for member in self.members))

    @property
    def different_owners(self) -> bool:
        """Whether a lead could go to one owner or another depending on which account it is
        matched to. An account without an owner counts as one: a lead matched to it goes to the
        rules rather than to the other account's owner."""
        return len(self.owners) > 1

    @property
    def ambiguous(self) -> bool:
        """Whether a lead named like one of them cannot be told from another: a pair scoring
        within `AMBIGUITY_MARGIN` of 100, which the router reports as ambiguous rather than
        pick (namesakes such as "Lura LLP" and "Lura GmbH")."""
        return any(pair.score > 100 - AMBIGUITY_MARGIN for pair in self.pairs)


def near_duplicates(accounts: Iterable[Account], *, threshold: float) -> list[DuplicateGroup]:
    """The groups of near-duplicate accounts at `threshold` (0-100), by their lowest account id
    (ids compared as strings, as `AccountIndex` does). Ids must be unique."""
    listed = list(accounts)
    index = AccountIndex(listed)
    by_id = {account.id: account for account in listed}
    scores: dict[tuple[str, str], float] = {}
    for account in listed:
        for candidate in index.similar(account, threshold=threshold):
            other = candidate.account.id
            ids = (account.id, other) if account.id < other else (other, account.id)
            if candidate.score > scores.get(ids, -1.0):
                scores[ids] = candidate.score
    linked: dict[str, list[DuplicatePair]] = {}
    for (low, high), score in sorted(scores.items()):
        first, second = by_id[low], by_id[high]
        pair = DuplicatePair(first, second, score, pair_reason(first, second, score))
        linked.setdefault(low, []).append(pair)
        linked.setdefault(high, []).append(pair)
    groups: list[DuplicateGroup] = []
    placed: set[str] = set()
    for start in sorted(linked):
        if start not in placed:
            groups.append(_group(start, linked, by_id))
            placed.update(account.id for account in groups[-1].accounts)
    return groups


def _group(
    start: str, linked: Mapping[str, list[DuplicatePair]], by_id: Mapping[str, Account]
) -> DuplicateGroup:
    """The group of `start`, its members joined best pair first from the lowest id: each
    account's `joined_by` is its strongest link to the accounts already in the group."""
    joined: dict[str, DuplicatePair | None] = {start: None}
    pairs: set[DuplicatePair] = set()
    # (-score, the account it would join, its partner): the best pair first, then by ids.
    frontier: list[tuple[float, str, str, DuplicatePair]] = []

    def reach(account_id: str) -> None:
        for pair in linked[account_id]:
            pairs.add(pair)
            other = pair.second.id if pair.first.id == account_id else pair.first.id
            if other not in joined:
                heapq.heappush(frontier, (-pair.score, other, account_id, pair))

    reach(start)
    while frontier:
        _, account_id, _, pair = heapq.heappop(frontier)
        if account_id not in joined:
            joined[account_id] = pair
            reach(account_id)
    members = tuple(Member(by_id[i], joined[i]) for i in sorted(joined))
    ordered = sorted(pairs, key=lambda pair: (pair.first.id, pair.second.id))
    return DuplicateGroup(members, tuple(ordered))


def pair_reason(first: Account, second: Account, score: float) -> str:
    """Why two accounts are near-duplicates, in words a CRM admin reads: "same name once legal
    suffix, case and punctuation are removed", "same words in another order", or the score for
    names that are only alike; with where they differ in place when that lowered the score."""
    key_first, key_second = company_key(first.name), company_key(second.name)
    if first.name == second.name:
        why = "same name"
    elif first.name.casefold() == second.name.casefold():
        why = "same name but for case"
    elif key_first == key_second:
        why = "same name once legal suffix, case and punctuation are removed"
    elif sorted(key_first.split()) == sorted(key_second.split()):
        why = "same words in another order"
    else:
        return f"similar names, score {score:.1f}"
    if score >= 100:
        return why
    if first.country and second.country and first.country != second.country:
        return f"{why}, other countries ({first.country}, {second.country}), score {score:.1f}"
    if first.state and second.state and first.state.casefold() != second.state.casefold():
        return f"{why}, other states ({first.state}, {second.state}), score {score:.1f}"
    return f"{why}, score {score:.1f}"


def audit_rows(groups: Iterable[DuplicateGroup]) -> list[dict[str, str]]:
    """The audit as CSV rows (`AUDIT_COLUMNS`): one per account in a group, groups numbered
    from 1. `duplicate_of` is the group's first account; `score` and `reason` are those of the
    pair that joined the account to the group (empty for the first)."""
    rows: list[dict[str, str]] = []
    for number, group in enumerate(groups, start=1):
        first = group.first
        for member in group.members:
            account, pair = member.account, member.joined_by
            reason = ""
            if pair is not None:
                partner = pair.first if pair.second.id == account.id else pair.second
                reason = pair.reason
                if partner.id != first.id:
                    reason += f" (with {partner.id}, {partner.name})"
            rows.append(
                {
                    "group": str(number),
                    "account_id": account.id,
                    "name": account.name,
                    "domain": account.domain or "",
                    "owner": account.owner or "",
                    "country": account.country or "",
                    "state": account.state or "",
                    "duplicate_of": first.id,
                    "score": "" if pair is None else f"{pair.score:.1f}",
                    "reason": reason,
                }
            )
    return rows
