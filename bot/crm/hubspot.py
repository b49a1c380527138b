# Over 400 lines on purpose: one adapter, HubSpot's, whose calls share one client, its retries
# and its id checks; the outcomes it reads (`bot.crm.hubspot_outcomes`) and what its refusals
# mean (`bot.crm.hubspot_errors`) are already apart.
"""HubSpot through hubspot-api-client: the owner on a contact, new contacts, companies, owners,
and what became of leads (which objects and properties, in `bot.crm.hubspot_outcomes`).

HubSpot's API base comes from the settings (`HUBSPOT_API_URL`) so tests point the real client at
a fake on loopback. Ids from outside are checked to be HubSpot's numeric ids before any call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as AssociationsError
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest as FetchAssociations,
)
from hubspot.crm.associations.v4 import PublicFetchAssociationsBatchRequest as FetchAssociationsOf
from hubspot.crm.companies import ApiException as CompaniesError
from hubspot.crm.companies import PublicObjectSearchRequest as CompaniesSearch
from hubspot.crm.contacts import ApiException as ContactsError
from hubspot.crm.contacts import SimplePublicObjectInput
from hubspot.crm.objects import ApiException as ObjectsError
from hubspot.crm.objects import PublicObjectSearchRequest as ObjectsSearch
from hubspot.crm.owners import ApiException as OwnersError
from hubspot.crm.properties import ApiException as PropertiesError
from hubspot.oauth import ApiException as OAuthError
from urllib3.util.retry import Retry

from bot.crm import hubspot_errors as errors
from bot.crm import hubspot_outcomes as outcomes
from bot.crm import hubspot_scopes as scopes
from bot.crm.base import (
    AccountPage,
    CrmAccount,
    CrmPermanent,
    CrmTransient,
    LeadRecord,
    OutcomePage,
    SetupCheck,
    is_hubspot_id,
)
from routing.geo import account_location
from routing.policy import Rep
from routing.policy_schema import CrmSpec

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
PAGE = 100  # the most HubSpot returns per page
SEARCH_WINDOW = 10_000  # a search stops paging after this many results: start a new one
SEARCH_INTERVAL_S = 0.25  # HubSpot's search endpoints take about five requests a second
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
_API_ERRORS = (
    ContactsError,
    CompaniesError,
    OwnersError,
    ObjectsError,
    AssociationsError,
    PropertiesError,
)


class HubSpotCrm:
    system = "hubspot"
    owner_setting = "hubspot_owner_id"
    outcome_streams: tuple[str, ...] = outcomes.STREAMS

    def __init__(
        self,
        client: HubSpot,
        *,
        tier_property: str | None = None,
        search_interval_s: float = SEARCH_INTERVAL_S,
        portal_id: str | None = None,
    ) -> None:
        self._client = client
        self.tier_property = tier_property
        self.portal_id = portal_id  # HUBSPOT_PORTAL_ID: the account cards link into
        # Each `client.crm...._api` access builds a new ApiClient with a connection pool of its
        # own: taken once here, every call shares one pool instead of opening a connection.
        self._owners_api = client.crm.owners.owners_api
        self._contacts_api = client.crm.contacts.basic_api
        self._companies_api = client.crm.companies.search_api
        self._objects_api = client.crm.objects.search_api
        self._associations_api = client.crm.associations.v4.batch_api
        self._properties_api = client.crm.properties.core_api
        self.search_interval_s = search_interval_s
        self._search_pace = threading.Lock()
        self._last_search = 0.0  # time.monotonic() when the last search call ended

    # --- the Protocol ----------------------------------------------------------------------

    def configure(self, spec: CrmSpec) -> None:
        self.tier_property = spec.hubspot.tier_property

    def owner_given(self, rep: Rep) -> str | None:
        return rep.hubspot_owner_id

    def whoami(self) -> str:
        page = self._call(lambda: self._owners_api.get_page(limit=1, _request_timeout=TIMEOUT_S))
        return f"connected to HubSpot; the token reads owners ({len(page.results)} on a first page)"

    def setup_check(self, *, reads_accounts: bool, reads_outcomes: bool) -> SetupCheck:
        # HubSpot says which scopes a private app's token has, write scope included, and
        # whose account it is. Where it will not (an older account, an OAuth token), one cheap
        # read for each read scope in use: HubSpot names the scope a refused call lacks.
        uses = scopes.in_use(reads_accounts=reads_accounts, reads_outcomes=reads_outcomes)
        info = self._token_info()
        if isinstance(info, scopes.TokenInfo):
            found = scopes.checked(info, uses, portal_id=self.portal_id)
        else:
            probed = self._probe_read_scopes(reads_accounts, reads_outcomes)
            found = SetupCheck(problems=tuple(probed), notes=(scopes.not_told(info),))
        if reads_accounts and self.tier_property and not found.problems:
            missing = self._missing_tier_property(self.tier_property)
            found = replace(found, problems=(*found.problems, *missing))
        return found

    def _token_info(self) -> scopes.TokenInfo | str:
        """What HubSpot says of the token; else why it would not say. The token goes in the
        request's body, as HubSpot asks, and in no message."""
        # The client wraps no call for this, but its OAuth API client sends it on HUBSPOT_API_URL
        # with the same retries, timeout and errors as every other call.
        api = self._client.oauth.access_tokens_api.api_client
        try:
            answer = api.call_api(
                scopes.TOKEN_INFO_PATH,
                "POST",
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                body={"tokenKey": self._client.access_token},
                response_types_map={200: "object"},
                _return_http_data_only=True,
                _request_timeout=TIMEOUT_S,
            )
        except OAuthError as exc:
            status = int(exc.status or 0)
            why = (
                ": an older account, or a token that is no private app's"
                if status in (400, 404)
                else ""
            )
            return f"its private-app token-info call answered {status}{why}"
        except urllib3.exceptions.HTTPError as exc:
            return f"its private-app token-info call failed ({type(exc).__name__})"
        info = scopes.token_info(answer)
        return info if info is not None else "its private-app token-info call answered no scopes"

    def _probe_read_scopes(self, reads_accounts: bool, reads_outcomes: bool) -> list[str]:
        probes: list[Callable[[], Any]] = [
            lambda: self._contacts_api.get_page(limit=1, _request_timeout=TIMEOUT_S)
        ]
        if reads_accounts:
            probes.append(
                lambda: self._companies_api.do_search(
                    CompaniesSearch(limit=1), _request_timeout=TIMEOUT_S
                )
            )
        if reads_outcomes:
            probes.append(
                lambda: self._objects_api.do_search(
                    "deals", ObjectsSearch(limit=1), _request_timeout=TIMEOUT_S
                )
            )
        problems: list[str] = []
        for probe in probes:
            try:
                self._call(probe)
            except CrmPermanent as exc:
                if "lacks the scope" not in str(exc):
                    raise
                problems.append(str(exc))
        return problems

    def _missing_tier_property(self, name: str) -> list[str]:
        """A search asking for a property HubSpot does not have answers it empty, so a mistyped
        tier_property would leave every account without a tier, silently: ask for it by name."""
        try:
            self._properties_api.get_by_name("companies", name, _request_timeout=TIMEOUT_S)
        except PropertiesError as exc:
            if int(exc.status or 0) != 404:
                raise errors.translate(exc) from None
            return [
                f"the policy's crm.hubspot.tier_property {name} is no company property in "
                "HubSpot: give its internal name (Settings, Properties, the property's </> name)"
            ]
        except urllib3.exceptions.HTTPError as exc:
            raise CrmTransient(f"HubSpot could not be reached ({type(exc).__name__})") from None
        return []

    def owners_by_email(self, emails: Sequence[str]) -> dict[str, str]:
        wanted = {email.strip().lower() for email in emails if email.strip()}
        found: dict[str, str] = {}
        for owner in self._owners(archived=False):
            email = (owner.email or "").lower()
            if email in wanted:
                found.setdefault(email, str(owner.id))
        return found

    def owners_unknown(self, owner_ids: Sequence[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(owner_ids))
        unknown = {i: "is not a HubSpot owner id (digits)" for i in wanted if not is_hubspot_id(i)}
        active = {str(owner.id) for owner in self._owners(archived=False)}
        left = [i for i in wanted if i not in unknown and i not in active]
        if left:  # HubSpot keeps a deactivated user's owner, archived
            archived = {str(owner.id) for owner in self._owners(archived=True)}
            for owner_id in left:
                unknown[owner_id] = (
                    "is a deactivated HubSpot owner"
                    if owner_id in archived
                    else "is no owner in this HubSpot account"
                )
        return unknown

    def _owners(self, *, archived: bool) -> Iterator[Any]:
        """Every owner, active or (`archived`) deactivated, across HubSpot's pages."""
        after: str | None = None
        while True:
            page = self._call(
                partial(
                    self._owners_api.get_page,
                    limit=PAGE,
                    after=after,
                    archived=archived,
                    _request_timeout=TIMEOUT_S,
                )
            )
            yield from page.results
            after = _next_after(page)
            if after is None:
                return

    def set_owner(self, record_id: str, owner_id: str) -> None:
        if not is_hubspot_id(record_id):
            raise CrmPermanent(f"{record_id!r} is not a HubSpot contact id (digits)")
        if not is_hubspot_id(owner_id):
            raise CrmPermanent(f"{owner_id!r} is not a HubSpot owner id (digits)")
        change = SimplePublicObjectInput(properties={"hubspot_owner_id": owner_id})
        written = self._call(
            lambda: self._contacts_api.update(record_id, change, _request_timeout=TIMEOUT_S)
        )
        # A merged contact's old id leads to the record the merge made, under a new id: the
        # owner is set there, and that is the record to look at in HubSpot from now on.
        merged_into = str(getattr(written, "id", "") or "")
        if merged_into and merged_into != record_id:
            log.info(
                "HubSpot contact %s was merged into contact %s: the owner was set on it",
                record_id,
                merged_into,
            )

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

        def search(request: dict[str, Any]) -> Any:
            return self._companies_api.do_search(
                CompaniesSearch(**request), _request_timeout=TIMEOUT_S
            )

        for page in self._modified_since(search, properties, since):
            accounts = [self._account(company) for company in page]
            yield AccountPage(accounts, max(a.modified_at for a in accounts))

    def new_leads(self, since: datetime | None) -> Iterator[list[LeadRecord]]:
        raise CrmPermanent(
            "HubSpot announces its new contacts by webhook (POST /webhooks/hubspot); leadrouter "
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

    def outcomes_since(self, stream: str, since: datetime) -> Iterator[OutcomePage]:
        if stream not in outcomes.STREAMS:
            raise ValueError(f"no HubSpot outcome stream {stream!r}")

        def search(request: dict[str, Any]) -> Any:
            return self._objects_api.do_search(
                stream, ObjectsSearch(**request), _request_timeout=TIMEOUT_S
            )

        for page in self._modified_since(search, outcomes.PROPERTIES[stream], since):
            found = [_found(item) for item in page]
            contacts = self._contacts_of(stream, [item.id for item in found])
            yield OutcomePage(
                outcomes.outcomes_of(stream, found, contacts),
                max(item.updated_at for item in found),
            )

    # --- the parts -------------------------------------------------------------------------

    def _modified_since(
        self, search: Callable[[dict[str, Any]], Any], properties: list[str], since: datetime | None
    ) -> Iterator[list[Any]]:
        """The objects `search` finds changed at or after `since` (all for None), oldest change
        first, a page at a time. A search pages through 10,000 results at most: past that, a new
        search starts from the newest change seen (its objects come again; reading one twice is
        harmless wherever this is used)."""
        while True:
            after: str | None = None
            newest = since
            read = 0
            while True:
                request = {
                    "filter_groups": _since_filter(since),
                    "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": properties,
                    "limit": PAGE,
                    "after": after,
                }
                page = self._searching(partial(search, request))
                results = list(page.results)
                if results:
                    newest = max(_modified_at(item) for item in results)
                    yield results
                read += len(results)
                after = _next_after(page)
                if after is None:
                    return
                if read + PAGE > SEARCH_WINDOW:
                    break  # HubSpot would refuse the next page: search again from here
            if newest == since:
                return  # a whole window at one instant: nothing more can be told apart
            since = newest

    def _searching(self, fn: Callable[[], Any]) -> Any:
        """One search call, no sooner than `search_interval_s` after the last: HubSpot answers
        about five searches a second per account, and a sync pages through them back to back."""
        with self._search_pace:
            wait = self._last_search + self.search_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                return self._call(fn)
            finally:
                self._last_search = time.monotonic()

    def _contacts_of(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """The contacts each of these objects is associated with, in one call."""
        if not ids:
            return {}
        batch = FetchAssociations(inputs=[FetchAssociationsOf(id=i) for i in ids])
        answer = self._call(
            lambda: self._associations_api.get_page(
                object_type, "contacts", batch, _request_timeout=TIMEOUT_S
            )
        )
        found: dict[str, list[str]] = {}
        # Serialized, the answer reads as HubSpot wrote it ("from" is a keyword in Python).
        for result in answer.to_dict(serialize=True).get("results") or []:
            targets = [str(to["toObjectId"]) for to in result.get("to") or []]
            found[str(result["from"]["id"])] = targets
        return found

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
            raise errors.translate(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CrmTransient(f"HubSpot could not be reached ({type(exc).__name__})") from None


def _found(item: Any) -> outcomes.Found:
    return outcomes.Found(
        id=str(item.id),
        properties=item.properties or {},
        created_at=(item.created_at or _modified_at(item)).astimezone(UTC),
        updated_at=_modified_at(item),
    )


def _modified_at(item: Any) -> datetime:
    return (item.updated_at or datetime.now(UTC)).astimezone(UTC)


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
