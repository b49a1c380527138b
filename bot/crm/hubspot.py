"""HubSpot through hubspot-api-client: the owner on a contact, new contacts, companies, owners.

HubSpot's API base comes from the settings (`HUBSPOT_API_URL`) so tests point the real client at
a fake on loopback. Ids from outside are checked to be HubSpot's numeric ids before any call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.companies import ApiException as CompaniesError
from hubspot.crm.companies import PublicObjectSearchRequest
from hubspot.crm.contacts import ApiException as ContactsError
from hubspot.crm.contacts import SimplePublicObjectInput
from hubspot.crm.owners import ApiException as OwnersError
from urllib3.util.retry import Retry

from bot.crm.base import (
    AccountPage,
    CrmAccount,
    CrmPermanent,
    CrmTransient,
    LeadRecord,
    is_hubspot_id,
)
from routing.geo import account_location
from routing.policy import Rep

TIMEOUT_S = 30.0
PAGE = 100  # the most HubSpot returns per page
SEARCH_WINDOW = 10_000  # a search stops paging after this many results: start a new one
CONTACT_PROPERTIES = {
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "company": "company",
    "website": "website",
    "jobtitle": "title",
    "phone": "phone",
    "country": "country",
    "state": "state",
    "industry": "industry",
    "numemployees": "employees",
    "hs_analytics_source": "source",
}
_API_ERRORS = (ContactsError, CompaniesError, OwnersError)


class HubSpotCrm:
    system = "hubspot"
    owner_setting = "hubspot_owner_id"

    def __init__(self, client: HubSpot, *, tier_property: str | None = None) -> None:
        self._client = client
        self.tier_property = tier_property
        # Each `client.crm...._api` access builds a new ApiClient with a connection pool of its
        # own: taken once here, every call shares one pool instead of opening a connection.
        self._owners_api = client.crm.owners.owners_api
        self._contacts_api = client.crm.contacts.basic_api
        self._companies_api = client.crm.companies.search_api

    # --- the Protocol ----------------------------------------------------------------------

    def owner_given(self, rep: Rep) -> str | None:
        return rep.hubspot_owner_id

    def whoami(self) -> str:
        page = self._call(lambda: self._owners_api.get_page(limit=1, _request_timeout=TIMEOUT_S))
        return f"connected to HubSpot; the token reads owners ({len(page.results)} on a first page)"

    def owners_by_email(self, emails: Sequence[str]) -> dict[str, str]:
        wanted = {email.strip().lower() for email in emails if email.strip()}
        found: dict[str, str] = {}
        after: str | None = None
        while True:
            page = self._call(
                partial(
                    self._owners_api.get_page,
                    limit=PAGE,
                    after=after,
                    _request_timeout=TIMEOUT_S,
                )
            )
            for owner in page.results:
                email = (owner.email or "").lower()
                if email in wanted:
                    found.setdefault(email, str(owner.id))
            after = _next_after(page)
            if after is None:
                return found

    def set_owner(self, record_id: str, owner_id: str) -> None:
        if not is_hubspot_id(record_id):
            raise CrmPermanent(f"{record_id!r} is not a HubSpot contact id (digits)")
        if not is_hubspot_id(owner_id):
            raise CrmPermanent(f"{owner_id!r} is not a HubSpot owner id (digits)")
        change = SimplePublicObjectInput(properties={"hubspot_owner_id": owner_id})
        self._call(lambda: self._contacts_api.update(record_id, change, _request_timeout=TIMEOUT_S))

    def accounts_modified_since(self, since: datetime | None) -> Iterator[AccountPage]:
        properties = [
            "name",
            "domain",
            "website",
            "hubspot_owner_id",
            "country",
            "state",
            "hs_lastmodifieddate",
        ]
        if self.tier_property:
            properties.append(self.tier_property)
        while True:
            after: str | None = None
            newest = since
            read = 0
            while True:
                request = PublicObjectSearchRequest(
                    filter_groups=_since_filter(since),
                    sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    properties=properties,
                    limit=PAGE,
                    after=after,
                )
                page = self._call(
                    partial(
                        self._companies_api.do_search,
                        request,
                        _request_timeout=TIMEOUT_S,
                    )
                )
                accounts = [self._account(company) for company in page.results]
                if accounts:
                    newest = max(a.modified_at for a in accounts)
                    yield AccountPage(accounts, newest)
                read += len(accounts)
                after = _next_after(page)
                if after is None:
                    return
                if read + PAGE > SEARCH_WINDOW:
                    break  # HubSpot would refuse the next page: search again from here
            if newest == since:
                return  # a whole window at one instant: nothing more can be told apart
            since = newest

    def new_leads(self, since: datetime | None) -> Iterator[list[LeadRecord]]:
        raise CrmPermanent(
            "HubSpot announces its new contacts by webhook (POST /hubspot/webhook); leadrouter "
            "does not poll it for them"
        )

    def lead(self, contact_id: str) -> LeadRecord:
        """The contact as a lead; CrmPermanent when there is no such contact."""
        if not is_hubspot_id(contact_id):
            raise CrmPermanent(f"{contact_id!r} is not a HubSpot contact id (digits)")
        found = self._call(
            lambda: self._contacts_api.get_by_id(
                contact_id, properties=list(CONTACT_PROPERTIES), _request_timeout=TIMEOUT_S
            )
        )
        properties = found.properties or {}
        values = {
            ours: properties[theirs]
            for theirs, ours in CONTACT_PROPERTIES.items()
            if properties.get(theirs) not in (None, "")
        }
        created = found.created_at or datetime.now(UTC)
        return LeadRecord(crm_id=str(found.id), values=values, created_at=created)

    # --- the parts -------------------------------------------------------------------------

    def _account(self, company: Any) -> CrmAccount:
        properties = company.properties or {}
        tier = properties.get(self.tier_property) if self.tier_property else None
        website = properties.get("website") or properties.get("domain") or None
        country, state = account_location(properties.get("country"), properties.get("state"))
        return CrmAccount(
            id=str(company.id),
            name=properties.get("name") or properties.get("domain") or str(company.id),
            website=website,
            owner_id=properties.get("hubspot_owner_id") or None,
            tier=str(tier) if tier not in (None, "") else None,
            modified_at=(company.updated_at or datetime.now(UTC)).astimezone(UTC),
            country=country,
            state=state,
        )

    @staticmethod
    def _call(fn: Callable[[], Any]) -> Any:
        """Run one client call, turning its failures into CrmTransient or CrmPermanent."""
        try:
            return fn()
        except _API_ERRORS as exc:
            raise _translate(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CrmTransient(f"HubSpot could not be reached ({type(exc).__name__})") from None


def _translate(exc: Any) -> Exception:
    status = int(exc.status or 0)
    detail = _message(exc.body)
    if status == 429 or status >= 500:
        headers = exc.headers or {}
        return CrmTransient(f"HubSpot answered {status}", retry_after=_seconds(headers))
    if status == 404:
        return CrmPermanent("HubSpot has no such record (deleted or merged?)")
    if status == 401:
        return CrmPermanent("HubSpot rejected HUBSPOT_ACCESS_TOKEN (expired or revoked?)")
    if status == 403:
        return CrmPermanent(f"HubSpot refused it: the token lacks a scope ({detail})")
    return CrmPermanent(f"HubSpot answered {status}: {detail}")


def _message(body: Any) -> str:
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return str(body)[:200] if body else ""
    if not isinstance(data, dict):
        return ""
    return " ".join(str(data.get(k, "")) for k in ("category", "message")).strip()[:300]


def _seconds(headers: Any) -> float | None:
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _next_after(page: Any) -> str | None:
    paging = getattr(page, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    after = getattr(following, "after", None) if following is not None else None
    return str(after) if after else None


def _since_filter(since: datetime | None) -> list[dict[str, Any]]:
    if since is None:
        return []
    millis = str(int(since.timestamp() * 1000))
    return [
        {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": millis}]}
    ]


def client(*, access_token: str, api_url: str, concurrency: int) -> HubSpot:
    """The real client, on `api_url`, with a connection pool as large as the calls in flight."""
    return HubSpot(
        access_token=access_token,
        host=api_url.rstrip("/"),
        connection_pool_maxsize=concurrency,
        # urllib3's default retries would sleep out a 429's Retry-After in the calling thread and
        # send again, unseen by `CrmCalls`, which must pause every caller: the 429 comes to us.
        retry=Retry(total=3, respect_retry_after_header=False),
    )
