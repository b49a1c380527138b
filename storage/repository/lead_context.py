"""What a batch of new leads may meet, read before they are routed: the accounts they could match
(and how many accounts each blocking key lists, for `AccountIndex`), the reps holding those
accounts' open leads (sticky accounts), and the same people's open leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from routing.accounts import choose_keys
from routing.company_names import company_key, name_blocking_keys
from routing.domains import canonical_email, email_spellings
from routing.model import Account, OpenLead
from storage.models import OPEN_OFFER_STATUSES
from storage.repository.common import ACCOUNT_KEYS, ACCOUNTS, LEADS, OFFERS, chunks, membership

_ACCOUNT_COLUMNS = (
    ACCOUNTS.c.id,
    ACCOUNTS.c.name,
    ACCOUNTS.c.domain,
    ACCOUNTS.c.owner_rep,
    ACCOUNTS.c.tier,
    ACCOUNTS.c.country,
    ACCOUNTS.c.state,
)  # in the order of `Account`'s fields: each row is `Account(*row)`


_KEY_SIZES = membership(
    lambda member: (
        select(ACCOUNT_KEYS.c.key, func.count())
        .where(member(ACCOUNT_KEYS.c.key, "keys"))
        .group_by(ACCOUNT_KEYS.c.key)
    )
)


_ACCOUNTS_ON_DOMAINS = membership(
    lambda member: select(*_ACCOUNT_COLUMNS).where(member(ACCOUNTS.c.domain, "domains"))
)


_ACCOUNTS_OF_KEYS = membership(
    lambda member: (
        select(*_ACCOUNT_COLUMNS)
        .join(ACCOUNT_KEYS, ACCOUNT_KEYS.c.account_id == ACCOUNTS.c.id)
        .where(member(ACCOUNT_KEYS.c.key, "keys"))
    )
)


_LATEST_OFFER = func.max(OFFERS.c.offered_at)


# Per account, the reps with open offers on its leads, most recent first (sticky accounts).
_HOLDERS_OF_ACCOUNTS = membership(
    lambda member: (
        select(LEADS.c.account_id, OFFERS.c.rep_id, _LATEST_OFFER)
        .join(LEADS, LEADS.c.id == OFFERS.c.lead_id)
        .where(member(LEADS.c.account_id, "account_ids"))
        .where(OFFERS.c.status.in_(OPEN_OFFER_STATUSES))
        .group_by(LEADS.c.account_id, OFFERS.c.rep_id)
        .order_by(_LATEST_OFFER.desc())
    )
)


# The offers of people's leads, by the e-mail address stored with the lead (the same person).
# Every offer, open or not (a person has few), the open ones picked out in Python: asked for in
# SQL, SQLite (which keeps no statistics) walks every open offer by the status index instead of
# looking the person up by e-mail, a cost that grows with the open offers.
_OFFERS_OF_EMAILS = membership(
    lambda member: (
        select(
            LEADS.c.email,
            OFFERS.c.rep_id,
            LEADS.c.external_id,
            OFFERS.c.offered_at,
            OFFERS.c.status,
        )
        .join(LEADS, LEADS.c.id == OFFERS.c.lead_id)
        .where(member(LEADS.c.email, "emails"))
    )
)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The accounts that could match a batch of leads, and how many accounts each of their
    blocking keys lists in the whole table (see `AccountIndex(key_sizes=...)`)."""

    accounts: list[Account]
    key_sizes: dict[str, int]


def candidate_accounts(
    *, session: Session, lookups: Sequence[tuple[str | None, str | None]]
) -> Candidates:
    """For leads given as (registrable domain, company name): the accounts on their domains, and
    for each lead not on one of those, the accounts of the blocking keys `AccountIndex` would
    score for its name (`choose_keys`).
    An index of just these, told the true key sizes, matches like an index of every account."""
    domains = {domain for domain, _ in lookups if domain}
    found: dict[str, Account] = {}
    for chunk in chunks(domains):
        rows = session.execute(_ACCOUNTS_ON_DOMAINS.on(session), {"domains": chunk})
        found.update((row[0], Account(*row)) for row in rows)
    # A lead on an account's domain matches it outright (`AccountIndex.lookup`): its name is
    # never scored, so its name's accounts need not be read (two statements fewer for it).
    on_accounts = {account.domain for account in found.values()}
    keys_of = [
        name_blocking_keys(company_key(company))
        if company and domain not in on_accounts
        else frozenset()
        for domain, company in lookups
    ]
    sizes: dict[str, int] = {}
    for chunk in chunks(frozenset().union(*keys_of)):
        sizes.update(session.execute(_KEY_SIZES.on(session), {"keys": chunk}).all())
    chosen: set[str] = set()
    for keys in keys_of:
        chosen.update(choose_keys({key: sizes[key] for key in keys if key in sizes}))
    for chunk in chunks(chosen):
        rows = session.execute(_ACCOUNTS_OF_KEYS.on(session), {"keys": chunk})
        found.update((row[0], Account(*row)) for row in rows)
    return Candidates(list(found.values()), sizes)


def reps_holding_accounts(*, session: Session, account_ids: Iterable[str]) -> dict[str, list[str]]:
    """Per account: reps with open offers on its leads, most recent first (sticky accounts)."""
    holders: dict[str, list[str]] = {}
    for chunk in chunks(set(account_ids)):
        rows = session.execute(_HOLDERS_OF_ACCOUNTS.on(session), {"account_ids": chunk})
        for account_id, rep_id, _when in rows:
            if account_id is not None:
                holders.setdefault(account_id, []).append(rep_id)
    return holders


def open_leads_of_people(
    *, session: Session, emails: Iterable[str]
) -> dict[str, tuple[OpenLead, ...]]:
    """Per e-mail address (`canonical_email`): the person's open leads, one for each rep holding
    any, most recent first. A lead stored before domains had one spelling may hold the address
    with its domain in punycode: every spelling of each address is asked for."""
    spellings = {spelling for email in emails for spelling in email_spellings(email)}
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(spellings):
        offers = session.execute(_OFFERS_OF_EMAILS.on(session), {"emails": chunk})
        rows.extend(row for row in offers if row[4] in OPEN_OFFER_STATUSES)
    # Most recent first across chunks; the external id breaks ties, for the same order each time.
    rows.sort(key=lambda row: (row[3], row[2]), reverse=True)
    found: dict[str, list[OpenLead]] = {}
    for email, rep_id, external_id, _offered_at, _status in rows:
        held = found.setdefault(canonical_email(email), [])
        if all(other.rep != rep_id for other in held):
            held.append(OpenLead(rep_id, external_id))
    return {email: tuple(held) for email, held in found.items()}
