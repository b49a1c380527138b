"""Normalisation: the facts the policy's conditions are written against, derived from a lead.

`facts` keep the values as a person should read them (GB, Enterprise, acme.co.uk); `folded` holds
the same facts casefolded, which is what conditions compare, so each string is folded once per
lead instead of once per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.domains import registrable_domain
from routing.freemail import email_domain_type, is_disposable
from routing.geo import default_region, normalize_country
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
        found = {
            "account.matched": True,
            "account.id": account.id,
            "account.name": account.name,
            "account.owner": account.owner,
            "account.tier": account.tier,
            "account.domain": account.domain,
            "account.match_method": match.method,
            "account.match_score": match.score,
        }
        self.values.update(found)
        self.folded.update(_folded(found, self.wanted))


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


def _folded(values: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """`conditions.fold` over the facts some condition reads, inlined: this runs for every lead."""
    return {
        k: v.strip().casefold() if type(v) is str else v for k, v in values.items() if k in wanted
    }


def segment_for(employees: int | None, policy: Policy) -> str | None:
    if employees is None:
        return None
    for lower_bound, name in policy.segments:
        if employees >= lower_bound:
            return name
    return None


def normalize(lead: Lead, policy: Policy) -> Facts:
    notes: list[str] = []
    email_domain = lead.email.rpartition("@")[2] if lead.email else None
    domain_type = email_domain_type(email_domain)
    domain = registrable_domain(lead.domain) or registrable_domain(lead.website)
    if domain is None and (lead.domain or lead.website):
        notes.append(f"'{lead.domain or lead.website}' has no registrable domain")
    if domain is None and email_domain and domain_type == "business":
        domain = registrable_domain(email_domain)
    if domain is not None and email_domain_type(domain) == "free":
        # A website of gmail.com says nothing about the company: never match accounts on it.
        notes.append(f"{domain} is a free-mail domain, not a company's")
        domain = None

    country = normalize_country(lead.country)
    if lead.country and country is None:
        notes.append(f"country '{lead.country}' not recognised")
    region = policy.region_overrides.get(country) if country else None
    if region is None:
        region = default_region(country)

    values: dict[str, Any] = {
        "id": lead.id,
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "name": lead.display_name,
        "company": lead.company,
        "domain": domain,
        "website": lead.website,
        "title": lead.title,
        "phone": lead.phone,
        "country": country,
        "state": lead.state,
        "employees": lead.employees,
        "industry": lead.industry,
        "source": lead.source,
        "score": lead.score,
        "product": lead.product,
        "crm_system": lead.crm_system.value if lead.crm_system else None,
        "crm_id": lead.crm_id,
        "email_domain": email_domain,
        "email_domain_type": domain_type,
        "email_disposable": is_disposable(email_domain) if email_domain else None,
        "region": region,
        "segment": segment_for(lead.employees, policy),
    }
    for key, value in lead.fields.items():
        values[f"fields.{key}"] = value
    return Facts(
        lead, values, _folded(values, policy.condition_fields), notes, policy.condition_fields
    )
