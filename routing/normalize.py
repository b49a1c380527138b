"""Normalisation: the facts the policy's conditions are written against, derived from a lead.

`facts` keep the values as a person should read them (GB, Enterprise, acme.co.uk); `folded` holds
the same facts casefolded, which is what conditions compare, so each string is folded once per
lead instead of once per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from routing.conditions import LEAD_FACTS
from routing.domains import canonical_email, registrable_domain
from routing.freemail import email_domain_type, is_disposable
from routing.geo import default_region, lead_state, normalize_country
from routing.model import AccountMatch, Lead
from routing.policy import Policy


@dataclass(slots=True)
class Facts:
    lead: Lead
    values: dict[str, Any]
    folded: dict[str, Any]
    notes: list[str]
    wanted: frozenset[str]  # the fields the policy's conditions read

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def add_account(self, match: AccountMatch | None) -> None:
        if match is None:
            self.values.update(_NO_ACCOUNT)
            self.folded.update(_NO_ACCOUNT)
            return
        account = match.account
        values = self.values
        values["account.matched"] = True
        values["account.id"] = account.id
        values["account.name"] = account.name
        values["account.owner"] = account.owner
        values["account.tier"] = account.tier
        values["account.domain"] = account.domain
        values["account.match_method"] = match.method
        values["account.match_score"] = match.score
        folded = self.folded
        for key in _fold_plan(self.wanted).account:
            value = values[key]
            folded[key] = value.strip().casefold() if type(value) is str else value


_NO_ACCOUNT: dict[str, Any] = {
    "account.matched": False,
    "account.id": None,
    "account.name": None,
    "account.owner": None,
    "account.tier": None,
    "account.domain": None,
    "account.match_method": None,
    "account.match_score": None,
}


# Strings already folded (as `conditions.fold` does), by their text. Most facts repeat from lead
# to lead (a country, a region, a source, "business"), and a lookup costs less than strip() and
# casefold(). Bounded, because some facts are free text: past the bound, strings are folded
# each time.
_FOLDED: dict[str, str] = {}
_FOLDED_MAX = 10_000


def _fold_text(text: str) -> str:
    folded = text.strip().casefold()
    if len(_FOLDED) < _FOLDED_MAX:
        _FOLDED[text] = folded
    return folded


_LEAD_FACTS = LEAD_FACTS  # the order `normalize` writes them in


class _FoldPlan(NamedTuple):
    """Which facts the policy's conditions read: folding just those is cheaper than testing
    every fact of every lead against `Policy.condition_fields`."""

    lead: tuple[str, ...]  # of the lead's own facts, which every lead has
    custom: tuple[str, ...]  # custom fields ("fields.plan"), which a lead may lack
    account: tuple[str, ...]  # of the matched account's facts


@lru_cache(maxsize=64)
def _fold_plan(wanted: frozenset[str]) -> _FoldPlan:
    # Keyed on the policy's `condition_fields`: a frozenset caches its hash, so this is cheap.
    return _FoldPlan(
        lead=tuple(key for key in _LEAD_FACTS if key in wanted),
        custom=tuple(sorted(key for key in wanted if key.startswith("fields."))),
        account=tuple(key for key in _NO_ACCOUNT if key in wanted),
    )


def segment_for(employees: int | None, policy: Policy) -> str | None:
    if employees is None:
        return None
    for lower_bound, name in policy.segments:
        if employees >= lower_bound:
            return name
    return None


def _where_from(
    lead: Lead, notes: list[str] | None
) -> tuple[str | None, str | None, str | None, str | None]:
    """The lead's address (one spelling), its domain and the domain's type, and the company's
    registrable domain; what is odd about them goes into `notes`."""
    # The address with its domain in one spelling (`münchner-bau.de`, not `xn--…`): it says who
    # the person is, so two leads of one mailbox must have the same text here.
    email = canonical_email(lead.email) if lead.email else None
    email_domain = email.rpartition("@")[2] if email else None
    domain_type = email_domain_type(email_domain)
    # Most leads have neither field: skipping the call skips a cache lookup of None.
    domain = registrable_domain(lead.domain) if lead.domain else None
    if domain is None and lead.website:
        domain = registrable_domain(lead.website)
    if domain is None and (lead.domain or lead.website) and notes is not None:
        notes.append(f"'{lead.domain or lead.website}' has no registrable domain")
    if domain is None and email_domain and domain_type == "business":
        domain = registrable_domain(email_domain)
    if domain is not None and email_domain_type(domain) == "free":
        # A website of gmail.com says nothing about the company: never match accounts on it.
        if notes is not None:
            notes.append(f"{domain} is a free-mail domain, not a company's")
        domain = None
    return email, email_domain, domain_type, domain


def account_facts(lead: Lead) -> tuple[str | None, str | None, str | None, str | None]:
    """What an account lookup asks of `lead` once normalised, whatever the policy: (registrable
    domain, company, country code, state), as `normalize` leaves them in its facts."""
    domain = _where_from(lead, None)[3]
    country = normalize_country(lead.country)
    return domain, lead.company, country, lead_state(lead.state, country)


def normalize(lead: Lead, policy: Policy) -> Facts:
    notes: list[str] = []
    email, email_domain, domain_type, domain = _where_from(lead, notes)
    country = normalize_country(lead.country)
    if lead.country and country is None:
        notes.append(f"country '{lead.country}' not recognised")
    region = policy.region_overrides.get(country) if country else None
    if region is None:
        region = default_region(country)
    if not email_domain:
        email_disposable = None
    elif domain_type == "free":
        email_disposable = is_disposable(email_domain)
    else:
        # A business domain is on neither the free nor the disposable list, and no domain type
        # means no host: not disposable either way, without a second pass over both lists.
        email_disposable = False

    values: dict[str, Any] = {
        "id": lead.id,
        "email": email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "name": lead.display_name,
        "company": lead.company,
        "domain": domain,
        "website": lead.website,
        "title": lead.title,
        "phone": lead.phone,
        "country": country,
        "state": lead_state(lead.state, country),
        "employees": lead.employees,
        "industry": lead.industry,
        "source": lead.source,
        "score": lead.score,
        "product": lead.product,
        "crm_system": lead.crm_system.value if lead.crm_system else None,
        "crm_id": lead.crm_id,
        "email_domain": email_domain,
        "email_domain_type": domain_type,
        "email_disposable": email_disposable,
        "region": region,
        "segment": segment_for(lead.employees, policy),
    }
    if lead.fields:
        for key, value in lead.fields.items():
            values[f"fields.{key}"] = value
    wanted = policy.condition_fields
    plan = _fold_plan(wanted)
    # The facts some condition reads, folded; the walrus reads each value once. A folded form
    # is never falsy unless it is "", which `_fold_text` gives again.
    known = _FOLDED.get
    folded = {
        key: (known(value) or _fold_text(value)) if type(value := values[key]) is str else value
        for key in plan.lead
    }
    for key in plan.custom:
        if key in values:
            value = values[key]
            folded[key] = value.strip().casefold() if type(value) is str else value
    return Facts(lead, values, folded, notes, wanted)
