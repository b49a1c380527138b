# Just over 400 lines on purpose: one adapter, Salesforce's, whose calls share one lazy login
# and its id checks; the outcomes it reads (`bot.crm.salesforce_outcomes`) and what its
# refusals mean (`bot.crm.salesforce_errors`) are already apart.
"""Salesforce through simple-salesforce: the owner on a Lead, new Leads, Accounts, Users, and
what became of leads (the queries and their reading in `bot.crm.salesforce_outcomes`).

The client logs in lazily (a password or client-credentials login is a network call) and once:
simple-salesforce renews an expired session itself for the login flows. A bare access token
cannot be renewed, so its expiry is a permanent error with a sentence saying what to set.

Record ids come from outside (a lead's `crm_id`), and simple-salesforce puts them into the URL
as given: each is checked to be a Salesforce id of the right object before any call.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceRefusedRequest,
)
from simple_salesforce.format import format_soql

from bot.crm import salesforce_errors as errors
from bot.crm import salesforce_outcomes as outcomes
from bot.crm.base import (
    AccountPage,
    CrmAccount,
    CrmPermanent,
    LeadRecord,
    OutcomePage,
    SetupCheck,
)
from bot.crm.salesforce_outcomes import parse_time, soql_time
from routing.geo import account_location
from routing.policy import Rep
from routing.policy_schema import CrmSpec

log = logging.getLogger(__name__)

API_VERSION = "59.0"
TIMEOUT_S = 30.0
# 15- or 18-character ids; the first three characters name the object (00Q Lead, 001 Account,
# 005 User, 00G Group such as a lead queue).
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
LEAD_PREFIX, USER_PREFIX, QUEUE_PREFIX = "00Q", "005", "00G"
LEAD_FIELDS = {
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Company": "company",
    "Website": "website",
    "Title": "title",
    "Phone": "phone",
    "Country": "country",
    "State": "state",
    "Industry": "industry",
    "LeadSource": "source",
    "NumberOfEmployees": "employees",
}
_LEAD_COLUMNS = ("Id", "CreatedDate", *LEAD_FIELDS)


def is_record_id(value: str, prefix: str) -> bool:
    return bool(_ID.match(value)) and value.startswith(prefix)


class SalesforceCrm:
    system = "salesforce"
    owner_setting = "salesforce_user_id"
    outcome_streams: tuple[str, ...] = outcomes.STREAMS

    def __init__(
        self,
        connect: Connector,
        *,
        tier_field: str | None = None,
        intake_queue: str | None = None,
        contacted_statuses: Sequence[str] = (),
    ) -> None:
        self._connect = connect
        self._sf: Salesforce | None = None
        self._login = threading.Lock()
        self._retry_after = threading.local()  # the last response's Retry-After, per thread
        self.tier_field = tier_field
        self.intake_queue = intake_queue  # new leads are those this queue owns, when named
        self.contacted_statuses = tuple(contacted_statuses)  # a lead in one has been touched
        # Whether opportunities have a CurrencyIsoCode (a multi-currency org); None: not known
        # until the first opportunity query asks (`_outcome_pages`).
        self.multi_currency: bool | None = None

    # --- the Protocol ----------------------------------------------------------------------

    def configure(self, spec: CrmSpec) -> None:
        self.tier_field = spec.salesforce.tier_field
        self.intake_queue = spec.salesforce.intake_queue
        self.contacted_statuses = tuple(spec.salesforce.contacted_statuses)

    def owner_given(self, rep: Rep) -> str | None:
        return rep.salesforce_user_id

    def whoami(self) -> str:
        sf = self._client()

        def limits() -> Any:
            try:
                return sf.restful("limits")
            except SalesforceRefusedRequest as exc:
                # Reading the limits takes View Setup and Configuration, which nothing else
                # here needs: refused, the session still answered. No API access at all is
                # refused too (API_DISABLED_FOR_ORG, API_CURRENTLY_DISABLED), and that stops.
                if errors.first_error(exc)[0].startswith("API_"):
                    raise
                return None

        found = self._call(limits)
        where = f"connected to {sf.sf_instance}"
        if found is None:
            return f"{where} (the user may not read the org's API limits)"
        remaining = found.get("DailyApiRequests", {}).get("Remaining")
        return f"{where}, {remaining} API requests left today" if remaining is not None else where

    def setup_check(self, *, reads_accounts: bool, reads_outcomes: bool) -> SetupCheck:
        return SetupCheck(problems=tuple(self._setup_problems(reads_accounts=reads_accounts)))

    def _setup_problems(self, *, reads_accounts: bool) -> list[str]:
        sf = self._client()
        problems: list[str] = []
        lead = self._described(sf, "Lead", problems)
        if lead is None:
            return problems
        owner = next((f for f in lead.get("fields", []) if f.get("name") == "OwnerId"), None)
        if not lead.get("updateable") or owner is None or not owner.get("updateable"):
            problems.append(
                "the Salesforce user cannot edit a Lead's owner (Lead.OwnerId): give it Edit "
                "on Leads and Transfer Leads, or owners cannot be written back"
            )
        account = self._described(sf, "Account", problems) if reads_accounts else None
        if self.tier_field and account is not None:
            names = {str(f.get("name")) for f in account.get("fields", [])}
            if self.tier_field not in names:
                problems.append(
                    f"the policy's crm.salesforce.tier_field {self.tier_field} is no field of "
                    "Account that the Salesforce user can read: check its API name (custom "
                    "fields end in __c) and the user's field-level security"
                )
        queue = self.intake_queue
        if queue is not None and is_record_id(queue, QUEUE_PREFIX):
            soql = format_soql(
                "SELECT Id FROM Group WHERE Type = 'Queue' AND Id = {queue}", queue=queue
            )
            if not self._query_all(soql):
                problems.append(
                    f"the policy's crm.salesforce.intake_queue {queue} is no queue in this "
                    "Salesforce (Setup, Queues: the id in its address starts 00G)"
                )
        return problems

    def owners_by_email(self, emails: Sequence[str]) -> dict[str, str]:
        wanted = sorted({email.strip().lower() for email in emails if email.strip()})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 200):
            soql = format_soql(
                "SELECT Id, Email FROM User WHERE IsActive = true AND Email IN {emails}",
                emails=wanted[start : start + 200],
            )
            for record in self._query_all(soql):
                email = str(record.get("Email") or "").lower()
                found.setdefault(email, str(record["Id"]))
        return found

    def owners_unknown(self, owner_ids: Sequence[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(owner_ids))
        unknown = {
            i: "is not a Salesforce user id (005..., 15 or 18 long)"
            for i in wanted
            if not is_record_id(i, USER_PREFIX)
        }
        ids = [i for i in wanted if i not in unknown]
        active: dict[str, bool] = {}  # by the id's first 15 characters (the 18 add a checksum)
        for start in range(0, len(ids), 200):
            soql = format_soql(
                "SELECT Id, IsActive FROM User WHERE Id IN {ids}", ids=ids[start : start + 200]
            )
            for record in self._query_all(soql):
                active[str(record["Id"])[:15]] = bool(record.get("IsActive"))
        for owner_id in ids:
            state = active.get(owner_id[:15])
            if state is None:
                unknown[owner_id] = "is no user in this Salesforce"
            elif not state:
                unknown[owner_id] = "is an inactive Salesforce user"
        return unknown

    # Records are read and written through `Salesforce.restful`, not `SFType` (`sf.Lead`): on a
    # session refused even after a new login, simple-salesforce 1.12's SFType logs in again and
    # retries without end (it drops its retry count), where `restful` stops after three.
    def set_owner(self, record_id: str, owner_id: str) -> None:
        if not is_record_id(record_id, LEAD_PREFIX):
            raise CrmPermanent(f"{record_id!r} is not a Salesforce lead id (00Q..., 15 or 18 long)")
        if not is_record_id(owner_id, USER_PREFIX):
            raise CrmPermanent(f"{owner_id!r} is not a Salesforce user id (005...)")
        sf = self._client()
        path = f"sobjects/Lead/{record_id}"
        try:
            self._call(lambda: sf.restful(path, method="PATCH", json={"OwnerId": owner_id}))
        except errors.Refused as exc:
            raise errors.owner_write_refused(exc) from None

    def accounts_modified_since(self, since: datetime | None) -> Iterator[AccountPage]:
        fields = [
            "Id",
            "Name",
            "Website",
            "OwnerId",
            "BillingCountry",
            "BillingState",
            "LastModifiedDate",
        ]
        if self.tier_field:
            fields.append(self.tier_field)
        where = f" WHERE LastModifiedDate >= {soql_time(since)}" if since else ""
        soql = f"SELECT {', '.join(fields)} FROM Account{where} ORDER BY LastModifiedDate, Id"
        for records in self._pages(soql):
            accounts = [self._account(record) for record in records]
            yield AccountPage(accounts, max(a.modified_at for a in accounts))

    def new_leads(self, since: datetime | None) -> Iterator[list[LeadRecord]]:
        """Leads created at or after `since` (oldest first), in pages; only those owned by the
        intake queue when one is named. Repeats at the boundary are left to intake's idempotency."""
        queue_id = self.intake_queue
        if queue_id is not None and not is_record_id(queue_id, QUEUE_PREFIX):
            raise CrmPermanent(f"{queue_id!r} is not a Salesforce queue id (00G...)")
        conditions = []
        if since is not None:
            conditions.append(f"CreatedDate >= {soql_time(since)}")
        if queue_id is not None:
            conditions.append(f"OwnerId = '{queue_id}'")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        soql = f"SELECT {', '.join(_LEAD_COLUMNS)} FROM Lead{where} ORDER BY CreatedDate, Id"
        for records in self._pages(soql):
            yield [self._lead(record) for record in records]

    def lead(self, record_id: str) -> LeadRecord:
        if not is_record_id(record_id, LEAD_PREFIX):
            raise CrmPermanent(f"{record_id!r} is not a Salesforce lead id (00Q..., 15 or 18 long)")
        sf, fields = self._client(), ",".join(_LEAD_COLUMNS)
        path = f"sobjects/Lead/{record_id}"
        return self._lead(self._call(lambda: sf.restful(path, params={"fields": fields})))

    def outcomes_since(self, stream: str, since: datetime) -> Iterator[OutcomePage]:
        for records in self._outcome_pages(stream, since):
            converted = None
            if stream == outcomes.OPPORTUNITIES:
                converted = self._leads_converted_into([str(r["Id"]) for r in records])
            found = outcomes.outcomes_of(
                stream,
                records,
                contacted_statuses=self.contacted_statuses,
                leads_of_opportunity=converted,
            )
            yield OutcomePage(found, max(parse_time(r["SystemModstamp"]) for r in records))

    # --- the parts -------------------------------------------------------------------------

    def _outcome_pages(self, stream: str, since: datetime) -> Iterator[list[dict[str, Any]]]:
        """The stream's records; an opportunity's with its currency where the org has one per
        record. Whether it does is learnt from the first query that asks (`multi_currency`):
        a one-currency org refuses the field (INVALID_FIELD), and is not asked again."""
        statuses = self.contacted_statuses
        asking = stream == outcomes.OPPORTUNITIES and self.multi_currency is not False
        query = outcomes.soql(stream, since, contacted_statuses=statuses, currency=asking)
        if not asking:
            return self._pages(query)
        sf = self._client()
        try:
            first = self._call(lambda: sf.query(query))
        except errors.NoSuchField as exc:
            if f"'{outcomes.CURRENCY_FIELD}'" not in str(exc):
                raise
            self.multi_currency = False
            log.info(
                "Salesforce: the org has one currency (no Opportunity.%s): its amounts are "
                "taken to be in LEADROUTER_CURRENCY",
                outcomes.CURRENCY_FIELD,
            )
            return self._pages(outcomes.soql(stream, since, contacted_statuses=statuses))
        self.multi_currency = True
        return self._pages_from(first)

    def _described(self, sf: Salesforce, sobject: str, problems: list[str]) -> Any:
        """The object's describe as this user sees it; None, with the problem, when the user
        may not read that object at all (Salesforce answers as if it did not exist)."""
        try:
            return self._call(lambda: sf.restful(f"sobjects/{sobject}/describe"))
        except CrmPermanent as exc:
            if "SALESFORCE_" in str(exc):  # the credentials: not a matter of this object
                raise
            problems.append(
                f"the Salesforce user cannot read {sobject} records: give it Read on "
                f"{sobject}s ({exc})"
            )
            return None

    def _leads_converted_into(self, opportunity_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(opportunity_ids), outcomes.IDS_PER_QUERY):
            chunk = opportunity_ids[start : start + outcomes.IDS_PER_QUERY]
            for record in self._query_all(outcomes.converted_into(chunk)):
                found.setdefault(str(record["ConvertedOpportunityId"]), []).append(
                    str(record["Id"])
                )
        return found

    def _pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """The query's records a batch at a time, following Salesforce's cursor."""
        sf = self._client()
        return self._pages_from(self._call(lambda: sf.query(soql)))

    def _pages_from(self, result: Any) -> Iterator[list[dict[str, Any]]]:
        """A query's first answer's records, then its next pages' (Salesforce's cursor)."""
        sf = self._client()
        while True:
            records = list(result.get("records", []))
            if records:
                yield records
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                return
            url = result["nextRecordsUrl"]
            result = self._call(partial(sf.query_more, url, identifier_is_url=True))

    def _account(self, record: dict[str, Any]) -> CrmAccount:
        tier = record.get(self.tier_field) if self.tier_field else None
        country, state = account_location(record.get("BillingCountry"), record.get("BillingState"))
        return CrmAccount(
            id=str(record["Id"]),
            name=str(record.get("Name") or record["Id"]),
            website=record.get("Website") or None,
            owner_id=record.get("OwnerId") or None,
            tier=str(tier) if tier not in (None, "") else None,
            modified_at=parse_time(record["LastModifiedDate"]),
            country=country,
            state=state,
        )

    @staticmethod
    def _lead(record: dict[str, Any]) -> LeadRecord:
        values: dict[str, Any] = {
            ours: record[theirs]
            for theirs, ours in LEAD_FIELDS.items()
            if record.get(theirs) not in (None, "")
        }
        return LeadRecord(
            crm_id=str(record["Id"]), values=values, created_at=parse_time(record["CreatedDate"])
        )

    def _client(self) -> Salesforce:
        with self._login:
            if self._sf is None:
                session = requests.Session()
                session.hooks["response"].append(self._remember_retry_after)
                session.request = _with_timeout(session.request)  # type: ignore[method-assign]
                self._sf = self._call(lambda: self._connect(session))
            return self._sf

    def _remember_retry_after(self, response: requests.Response, **_: Any) -> None:
        self._retry_after.value = response.headers.get("Retry-After")

    def _query_all(self, soql: str) -> list[dict[str, Any]]:
        sf = self._client()
        result = self._call(lambda: sf.query_all(soql))
        return list(result.get("records", []))

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one client call, turning its failures into CrmTransient or CrmPermanent."""
        self._retry_after.value = None
        try:
            return fn()
        except (SalesforceError, requests.ConnectionError, requests.Timeout) as exc:
            raise errors.translate(
                exc, wait=self._wait(), renewed_with=self._connect.renewed_with
            ) from None

    def _wait(self) -> float | None:
        value = getattr(self._retry_after, "value", None)
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


def _with_timeout(request: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    def timed(*args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT_S)
        return request(*args, **kwargs)

    return timed


@dataclass(frozen=True)
class Connector:
    """How to log in, from the settings; `renewed_with` names the settings of a login that
    simple-salesforce makes again when a session expires (None for a bare access token, which
    cannot be renewed)."""

    log_in: Callable[[requests.Session], Salesforce]
    renewed_with: str | None

    def __call__(self, session: requests.Session) -> Salesforce:
        return self.log_in(session)


def connector(
    *,
    instance_url: str | None,
    access_token: str | None,
    username: str | None,
    password: str | None,
    security_token: str | None,
    client_id: str | None,
    client_secret: str | None,
    domain: str | None,
) -> Connector:
    """How to log in, from whichever credentials the settings hold (checked there to be whole)."""

    def log_in(session: requests.Session) -> Salesforce:
        common: dict[str, Any] = {"session": session, "version": API_VERSION}
        if access_token:
            return Salesforce(instance_url=instance_url, session_id=access_token, **common)
        if username and password:
            return Salesforce(
                username=username,
                password=password,
                security_token=security_token or "",
                domain=domain,
                **common,
            )
        return Salesforce(
            consumer_key=client_id, consumer_secret=client_secret, domain=domain, **common
        )

    if username and password:
        given = "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
    else:
        given = "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET"

    def connect(session: requests.Session) -> Salesforce:
        try:
            return log_in(session)
        except SalesforceAuthenticationFailed as exc:
            # The usual causes, said where the admin reads the refusal.
            raise CrmPermanent(
                f"Salesforce refused the login ({errors.refusal(exc)}): check {given}, and "
                f"SALESFORCE_DOMAIN ({domain or 'login'} now; SALESFORCE_DOMAIN=test for a "
                "sandbox, or its My Domain such as acme--uat.sandbox.my)"
            ) from None

    return Connector(connect, None if access_token else given)
