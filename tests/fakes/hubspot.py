"""A fake HubSpot CRM API on a loopback port, for the real `hubspot-api-client` to talk to.

It answers the calls leadrouter makes, in the paths and JSON shapes HubSpot uses (as the client's
generated models read them): owners (`GET /crm/v3/owners/`, paged by `after`, filtered by
`email`), a first page of contacts (`GET /crm/v3/objects/contacts`), one contact (`GET` and `PATCH
/crm/v3/objects/contacts/{id}`; a merged contact's old id leads to the merged record, as
HubSpot's do), the search of
companies, calls, e-mails, meetings and deals (`POST /crm/v3/objects/{type}/search`, filtered
and sorted on their properties, paged, refusing to page past HubSpot's 10,000-result window),
and a company property's definition (`GET /crm/v3/properties/companies/{name}`), the contacts each
of a batch of those is associated with (`POST
/crm/v4/associations/{type}/contacts/batch/read`: 207 with an error for each one that has
none), and what a private app's token is (`POST /oauth/v2/private-apps/get/access-token-info`,
the token in the body as `tokenKey`: its account `hub_id`, app and `scopes`; a 404 with
`token_info=False`, as older accounts answer, and a 400 for a token that is no private app's,
`private_app=False`). Errors carry HubSpot's error body (`status`, `message`, `correlationId`,
`category`).

Point the client at `url` (`bot.crm.hubspot.client(access_token=..., api_url=fake.url, ...)`).
The fake runs on the test's event loop and the client is synchronous, so call the client from a
thread (`asyncio.to_thread`, or `CrmCalls`).

It records every request (`requests`: method, path, query, arrival time, status), and can be
made slow (`latency_s`, or `delays` for the next requests one by one), made to fail
(`fail_next`, `fail_after`), made to rate-limit every Nth request (`rate_limit_every`,
`retry_after_s`), or given a token with only some scopes (`scopes`: a call needing another is
refused 403 `MISSING_SCOPES`, naming it, as HubSpot does). `retry_after_violations` counts
the requests that arrived while a Retry-After it sent was still running (after a 50 ms grace
for requests the client had already sent before it could have read the 429).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

TOKEN = "pat-na1-00000000-fake-hubspot-token"
GRACE_S = 0.05  # a request this soon after a 429 was already on its way
SEARCH_WINDOW = 10_000  # HubSpot's search pages no further than this many results
MAX_OWNERS_PAGE = 500
MAX_SEARCH_PAGE = 200
DEFAULT_CONTACT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
)
DEFAULT_COMPANY_PROPERTIES = ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name")
DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
# What a search of each object type searches, beside companies; and the association type id
# HubSpot gives each object's link to a contact.
OBJECT_TYPES = ("calls", "emails", "meetings", "deals")
CONTACT_ASSOCIATION = {"calls": 194, "emails": 198, "meetings": 200, "deals": 3}
# The scope each call needs, by method and the start of its path (the first that matches).
SCOPES_NEEDED = (
    ("GET", "/crm/v3/owners", "crm.objects.owners.read"),
    ("GET", "/crm/v3/objects/contacts", "crm.objects.contacts.read"),
    ("PATCH", "/crm/v3/objects/contacts", "crm.objects.contacts.write"),
    ("POST", "/crm/v3/objects/companies/search", "crm.objects.companies.read"),
    ("POST", "/crm/v3/objects/deals/search", "crm.objects.deals.read"),
    ("POST", "/crm/v3/objects/", "crm.objects.contacts.read"),  # calls, e-mails, meetings
    ("GET", "/crm/v3/properties/companies", "crm.objects.companies.read"),  # or others
    ("POST", "/crm/v4/associations/", "crm.objects.contacts.read"),
)
# What the token-info call says a token with every scope has (`scopes=None`).
EVERY_SCOPE = (
    *dict.fromkeys(scope for _, _, scope in SCOPES_NEEDED),
    "sales-email-read",
)
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
HUB_ID = 24681357
APP_ID = 3141592

Json = dict[str, Any]


def iso(moment: datetime) -> str:
    """HubSpot's timestamps: UTC, milliseconds, a Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def error_body(status: int, message: str, category: str, **extra: Any) -> Json:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


@dataclass
class Request:
    """One request, recorded when it arrives (before any latency); `status` once answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float  # time.monotonic() on arrival
    peer_port: int | None = None  # the client's port: one per TCP connection
    status: int | None = None
    answered_at: float | None = None


@dataclass(frozen=True)
class Failure:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-able, bytes, or None for HubSpot's body for the status


@dataclass(frozen=True)
class RetryWindow:
    sent_at: float  # time.monotonic() when the 429 left
    until: float  # sent_at + its Retry-After


@dataclass
class Owner:
    id: str
    email: str | None
    first_name: str
    last_name: str
    user_id: int
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    def as_json(self) -> Json:
        return {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived,
        }


@dataclass
class CrmObject:
    """A contact or a company: an id, its properties (all strings, as HubSpot keeps them)."""

    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    def as_json(self, wanted: list[str] | None, defaults: tuple[str, ...]) -> Json:
        names = list(dict.fromkeys([*(wanted or defaults), "hs_object_id"]))
        return {
            "id": self.id,
            "properties": {name: self.properties.get(name) for name in names},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived,
        }


class FakeHubSpot:
    """HubSpot's CRM API at `url`. Arrange owners, contacts and companies with the `add_*`
    methods; read what happened in `requests`, `patches`, `retry_after_violations`."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        latency_s: float = 0.0,
        rate_limit_every: int | None = None,
        retry_after_s: float = 1.0,
        scopes: set[str] | None = None,
        hub_id: int = HUB_ID,
        token_info: bool = True,
        private_app: bool = True,
    ) -> None:
        self.token = token
        self.scopes = scopes  # the token's scopes; None: every scope a call needs
        self.hub_id = hub_id  # the account (portal) the token belongs to
        self.token_info = token_info  # False: no token-info call (404), as older accounts
        self.private_app = private_app  # False: the token is an OAuth one, token-info says 400
        self.latency_s = latency_s
        self.rate_limit_every = rate_limit_every
        self.retry_after_s = retry_after_s
        self.owners: dict[str, Owner] = {}
        self.contacts: dict[str, CrmObject] = {}
        self.merged_into: dict[str, str] = {}  # a merged contact's id -> the record it became
        self.companies: dict[str, CrmObject] = {}
        # The company properties the account defines: HubSpot's own, and any a company is given.
        self.company_properties: set[str] = {
            *DEFAULT_COMPANY_PROPERTIES,
            "website",
            "hubspot_owner_id",
            "country",
            "state",
        }
        self.objects: dict[str, dict[str, CrmObject]] = {kind: {} for kind in OBJECT_TYPES}
        # object type -> object id -> the contacts it is associated with
        self.associations: dict[str, dict[str, list[str]]] = {kind: {} for kind in OBJECT_TYPES}
        self.requests: list[Request] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []  # (contact id, properties)
        self.failures: deque[Failure] = deque()
        self.delays: deque[float] = deque()  # the next requests' own latency, one each
        self.failures_at: dict[int, Failure] = {}  # by the number of the request to refuse
        self.retry_windows: list[RetryWindow] = []
        self.violations: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(101)
        self._user_ids = itertools.count(9_000_001)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- running -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("this FakeHubSpot is already running")
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/crm/v3/owners/", self._owners_page)
        app.router.add_get("/crm/v3/owners", self._owners_page)
        app.router.add_get("/crm/v3/objects/contacts", self._contacts_page)
        app.router.add_get("/crm/v3/objects/contacts/{id}", self._get_contact)
        app.router.add_patch("/crm/v3/objects/contacts/{id}", self._patch_contact)
        app.router.add_post("/crm/v3/objects/{object_type}/search", self._search)
        app.router.add_get("/crm/v3/properties/companies/{name}", self._company_property)
        app.router.add_post(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read", self._read_associations
        )
        if self.token_info:
            app.router.add_post(TOKEN_INFO_PATH, self._token_info)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=256).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    @contextmanager
    def in_thread(cls, **options: Any) -> Iterator[FakeHubSpot]:
        """A running fake (made with `options`) on its own event loop in a background thread,
        for synchronous tests: a command that runs its own event loop (`asyncio.run`)."""
        fake = cls(**options)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-hubspot", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
            yield fake
        finally:
            asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("start the FakeHubSpot first")
        return f"http://127.0.0.1:{self._port}"

    # --- what tests arrange ------------------------------------------------------------------

    def add_owner(
        self,
        email: str | None,
        *,
        first_name: str = "",
        last_name: str = "",
        owner_id: str | None = None,
        archived: bool = False,
    ) -> str:
        now = datetime.now(UTC)
        owner_id = owner_id or str(next(self._ids))
        self.owners[owner_id] = Owner(
            owner_id, email, first_name, last_name, next(self._user_ids), now, now, archived
        )
        return owner_id

    def add_contact(self, contact_id: str | None = None, **properties: str | None) -> str:
        now = datetime.now(UTC)
        contact_id = contact_id or str(next(self._ids))
        values: dict[str, str | None] = {
            "createdate": iso(now),
            "lastmodifieddate": iso(now),
            "hs_object_id": contact_id,
            **properties,
        }
        self.contacts[contact_id] = CrmObject(contact_id, values, now, now)
        return contact_id

    def merge_contacts(self, primary: str, secondary: str) -> str:
        """Merge two contacts as HubSpot does since 2023: into a new record with a new id, the
        primary's values winning; both old ids then lead to it (a GET or PATCH by either
        answers with the new record). Returns the new id."""
        merged_id = str(next(self._ids))
        now = datetime.now(UTC)
        first, second = self.contacts.pop(primary), self.contacts.pop(secondary)
        values = {**second.properties, **first.properties, "hs_object_id": merged_id}
        values["hs_merged_object_ids"] = f"{primary};{secondary}"
        self.contacts[merged_id] = CrmObject(merged_id, values, first.created_at, now)
        for old_id, new_id in list(self.merged_into.items()):
            if new_id in (primary, secondary):
                self.merged_into[old_id] = merged_id
        self.merged_into.update({primary: merged_id, secondary: merged_id})
        return merged_id

    def add_company(
        self, *, modified_at: datetime, company_id: str | None = None, **properties: str | None
    ) -> str:
        company_id = company_id or str(next(self._ids))
        values: dict[str, str | None] = {
            "createdate": iso(modified_at),
            "hs_lastmodifieddate": iso(modified_at),
            "hs_object_id": company_id,
            **properties,
        }
        self.companies[company_id] = CrmObject(company_id, values, modified_at, modified_at)
        self.company_properties.update(values)
        return company_id

    def add_object(
        self,
        object_type: str,
        *,
        modified_at: datetime,
        created_at: datetime | None = None,
        contacts: tuple[str, ...] = (),
        object_id: str | None = None,
        **properties: str | None,
    ) -> str:
        """A call, e-mail, meeting or deal, associated with `contacts`."""
        object_id = object_id or str(next(self._ids))
        created = created_at or modified_at
        values: dict[str, str | None] = {
            "hs_createdate": iso(created),
            "createdate": iso(created),
            "hs_lastmodifieddate": iso(modified_at),
            "hs_object_id": object_id,
            **properties,
        }
        self.objects[object_type][object_id] = CrmObject(object_id, values, created, modified_at)
        if contacts:
            self.associations[object_type][object_id] = list(contacts)
        return object_id

    def update_object(
        self, object_type: str, object_id: str, *, modified_at: datetime, **properties: str | None
    ) -> None:
        found = self.objects[object_type][object_id]
        found.properties.update(properties, hs_lastmodifieddate=iso(modified_at))
        found.updated_at = modified_at

    def fail_next(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests with `status` (after the latency, before the token
        is looked at); the body is HubSpot's for the status unless given."""
        self.failures.extend([Failure(status, dict(headers or {}), body)] * times)

    def fail_after(self, count: int, status: int) -> None:
        """Let `count` more requests through, then answer the next one with `status`."""
        self.failures_at[len(self.requests) + count + 1] = Failure(status)

    @property
    def retry_after_violations(self) -> int:
        return len(self.violations)

    def calls(self, method: str, path_prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # --- answering ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        arrived = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Request(
            method=request.method,
            path=request.path,
            query={key: request.query.getall(key) for key in request.query},
            body=body,
            at=arrived,
            peer_port=int(peer[1]) if peer else None,
        )
        self.requests.append(record)
        self._check_retry_after(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            number = len(self.requests)
            limited = bool(self.rate_limit_every) and number % (self.rate_limit_every or 1) == 0
            delay = self.latency_s + (self.delays.popleft() if self.delays else 0.0)
            if delay:
                await asyncio.sleep(delay)
            response = self._refusal(request, limited)
            if response is None:
                try:
                    response = await handler(request)
                except web.HTTPException as exc:  # no such route or method
                    response = _json(
                        exc.status,
                        error_body(exc.status, exc.reason, "OBJECT_NOT_FOUND"),
                    )
            record.status = response.status
            record.answered_at = time.monotonic()
            if response.status == 429 and "Retry-After" in response.headers:
                seconds = float(response.headers["Retry-After"])
                sent = record.answered_at
                self.retry_windows.append(RetryWindow(sent, sent + seconds))
            return response
        finally:
            self.in_flight -= 1

    def _check_retry_after(self, record: Request) -> None:
        if any(w.sent_at + GRACE_S < record.at < w.until for w in self.retry_windows):
            self.violations.append(record)

    def _refusal(self, request: web.Request, limited: bool) -> web.Response | None:
        failure = self.failures_at.pop(len(self.requests), None)
        if failure is None and self.failures:
            failure = self.failures.popleft()
        if failure is not None:
            body = failure.body
            if body is None:
                body = _default_error(failure.status)
            response = (
                web.Response(status=failure.status, body=body)
                if isinstance(body, bytes)
                else _json(failure.status, body)
            )
            response.headers.update(failure.headers)
            return response
        # HubSpot's OAuth calls take the token in the request, not as a bearer.
        authorised = request.path.startswith("/oauth/") or (
            request.headers.get("Authorization") == f"Bearer {self.token}"
        )
        if not authorised:
            return _json(
                401,
                error_body(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and more details can be found at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        missing = self._missing_scope(request)
        if missing is not None:
            return _json(403, missing_scopes_body(missing))
        if limited:
            response = _json(429, _default_error(429))
            response.headers["Retry-After"] = f"{self.retry_after_s:g}"
            return response
        return None

    def _missing_scope(self, request: web.Request) -> str | None:
        if self.scopes is None:
            return None
        for method, prefix, scope in SCOPES_NEEDED:
            if request.method == method and request.path.startswith(prefix):
                return None if scope in self.scopes else scope
        return None

    async def _token_info(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = body.get("tokenKey") if isinstance(body, dict) else None
        if not self.private_app or key != self.token:
            return _json(
                400,
                error_body(
                    400, "The token given is not a private app's access token", "BAD_REQUEST"
                ),
            )
        scopes = EVERY_SCOPE if self.scopes is None else self.scopes
        return _json(
            200,
            {"userId": 9_000_000, "hubId": self.hub_id, "appId": APP_ID, "scopes": sorted(scopes)},
        )

    async def _owners_page(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
            offset = int(request.query.get("after", "0"))
        except ValueError:
            return _json(
                400, error_body(400, "limit and after must be numbers", "VALIDATION_ERROR")
            )
        if not 1 <= limit <= MAX_OWNERS_PAGE or offset < 0:
            return _json(400, error_body(400, "limit out of range", "VALIDATION_ERROR"))
        archived = request.query.get("archived", "false").lower() == "true"
        email = request.query.get("email")
        owners = sorted(
            (
                o
                for o in self.owners.values()
                if o.archived == archived
                and (email is None or (o.email or "").lower() == email.lower())
            ),
            key=lambda o: int(o.id),
        )
        page = owners[offset : offset + limit]
        answer: Json = {"results": [o.as_json() for o in page]}
        if offset + limit < len(owners):
            after = str(offset + limit)
            link = f"{self.url}/crm/v3/owners/?limit={limit}&after={after}"
            answer["paging"] = {"next": {"after": after, "link": link}}
        return _json(200, answer)

    async def _contacts_page(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "10"))
        found = sorted(
            (c for c in self.contacts.values() if not c.archived), key=lambda c: int(c.id)
        )
        results = [c.as_json(None, DEFAULT_CONTACT_PROPERTIES) for c in found[:limit]]
        answer: Json = {"results": results}
        if len(found) > limit:
            answer["paging"] = {"next": {"after": str(limit)}}
        return _json(200, answer)

    async def _company_property(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.company_properties:
            return _json(
                404,
                error_body(
                    404,
                    f"Unable to find property {name} for object type companies",
                    "OBJECT_NOT_FOUND",
                ),
            )
        definition = {
            "name": name,
            "label": name.replace("_", " ").title(),
            "type": "string",
            "fieldType": "text",
            "description": "",
            "groupName": "companyinformation",
            "options": [],
        }
        return _json(200, definition)

    def _contact(self, contact_id: str) -> CrmObject | None:
        return self.contacts.get(self.merged_into.get(contact_id, contact_id))

    async def _get_contact(self, request: web.Request) -> web.Response:
        contact = self._contact(request.match_info["id"])
        if contact is None or contact.archived:
            return _not_found(request.match_info["id"])
        wanted = [
            name
            for value in request.query.getall("properties", [])
            for name in value.split(",")
            if name
        ]
        return _json(200, contact.as_json(wanted, DEFAULT_CONTACT_PROPERTIES))

    async def _patch_contact(self, request: web.Request) -> web.Response:
        contact_id = request.match_info["id"]
        contact = self._contact(contact_id)
        if contact is None or contact.archived:
            return _not_found(contact_id)
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _json(400, error_body(400, "Invalid input JSON", "VALIDATION_ERROR"))
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            return _json(400, error_body(400, "Invalid input JSON: properties", "VALIDATION_ERROR"))
        owner = properties.get("hubspot_owner_id")
        if owner not in (None, "") and str(owner) not in self.owners:
            detail = [
                {
                    "isValid": False,
                    "message": f"{owner} is not a valid owner id",
                    "error": "INVALID_OWNER_ID",
                    "name": "hubspot_owner_id",
                    "localizedErrorMessage": f"{owner} is not a valid owner id",
                }
            ]
            return _json(
                400,
                error_body(
                    400,
                    f"Property values were not valid: {json.dumps(detail)}",
                    "VALIDATION_ERROR",
                ),
            )
        changes = {k: None if v is None else str(v) for k, v in properties.items()}
        self.patches.append((contact.id, changes))
        now = datetime.now(UTC)
        contact.properties.update(changes)
        contact.properties["lastmodifieddate"] = iso(now)
        contact.updated_at = now
        return _json(200, contact.as_json(list(changes), DEFAULT_CONTACT_PROPERTIES))

    async def _search(self, request: web.Request) -> web.Response:
        object_type = request.match_info["object_type"]
        if object_type == "companies":
            searched, defaults = self.companies, DEFAULT_COMPANY_PROPERTIES
        elif object_type in self.objects:
            searched, defaults = self.objects[object_type], DEFAULT_PROPERTIES
        else:
            return _json(
                400,
                error_body(
                    400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR"
                ),
            )
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _json(400, error_body(400, "Invalid input JSON", "VALIDATION_ERROR"))
        if not isinstance(body, dict):
            return _json(400, error_body(400, "Invalid input JSON", "VALIDATION_ERROR"))
        limit = int(body.get("limit") or 10)
        offset = int(body.get("after") or 0)
        if not 1 <= limit <= MAX_SEARCH_PAGE:
            return _json(400, error_body(400, "limit out of range", "VALIDATION_ERROR"))
        if offset + limit > SEARCH_WINDOW:
            return _json(
                400,
                error_body(
                    400,
                    f"paging past {SEARCH_WINDOW} results is not supported",
                    "VALIDATION_ERROR",
                ),
            )
        groups = body.get("filterGroups") or []
        found = [
            c
            for c in searched.values()
            if not c.archived and (not groups or any(_matches(c, g) for g in groups))
        ]
        found.sort(key=lambda c: int(c.id))
        for sort in reversed(body.get("sorts") or []):
            name = sort["propertyName"] if isinstance(sort, dict) else str(sort).lstrip("-")
            descending = (
                sort.get("direction") == "DESCENDING"
                if isinstance(sort, dict)
                else str(sort).startswith("-")
            )
            found.sort(key=_by_property(name), reverse=descending)
        page = found[offset : offset + limit]
        wanted = body.get("properties") or None
        answer: Json = {
            "total": len(found),
            "results": [c.as_json(wanted, defaults) for c in page],
        }
        if offset + limit < len(found):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return _json(200, answer)

    async def _read_associations(self, request: web.Request) -> web.Response:
        from_type, to_type = request.match_info["from_type"], request.match_info["to_type"]
        if from_type not in self.associations or to_type != "contacts":
            return _json(400, error_body(400, "unsupported association", "VALIDATION_ERROR"))
        body = json.loads(await request.read() or b"{}")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 1000:
            return _json(400, error_body(400, "inputs: 1 to 1000", "VALIDATION_ERROR"))
        now = iso(datetime.now(UTC))
        results, errors = [], []
        for item in inputs:
            object_id = str(item.get("id"))
            contacts = self.associations[from_type].get(object_id)
            if not contacts:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to_type} is associated with {from_type} {object_id}.",
                        "context": {"fromObjectId": [object_id]},
                        "errors": [],
                        "links": {},
                    }
                )
                continue
            type_id = CONTACT_ASSOCIATION[from_type]
            results.append(
                {
                    "from": {"id": object_id},
                    "to": [
                        {
                            "toObjectId": int(contact),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
                            ],
                        }
                        for contact in contacts
                    ],
                }
            )
        answer: Json = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
        return _json(207 if errors else 200, answer)


# --- the parts -------------------------------------------------------------------------------


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def missing_scopes_body(scope: str) -> Json:
    """HubSpot's answer to a call the token has not the scope for."""
    return error_body(
        403,
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def _not_found(object_id: str) -> web.Response:
    return _json(
        404,
        error_body(
            404,
            "Object not found.  objectId are usually numeric.",
            "OBJECT_NOT_FOUND",
            context={"id": [object_id]},
        ),
    )


def _default_error(status: int) -> Json:
    if status == 429:
        return {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": "SECONDLY",
        }
    if status == 401:
        return error_body(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
    if status == 404:
        return error_body(404, "resource not found", "OBJECT_NOT_FOUND")
    if status >= 500:
        return error_body(status, "internal error", "INTERNAL_ERROR")
    return error_body(status, "bad request", "VALIDATION_ERROR")


def _as_number(value: Any) -> float | None:
    """A HubSpot filter or property value as a number: digits (epoch ms) or an ISO date."""
    if value is None:
        return None
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _sort_key(value: Any) -> tuple[int, float, str]:
    number = _as_number(value)
    if value is None:
        return (1, 0.0, "")  # HubSpot sorts empty values last
    return (0, number, "") if number is not None else (0, 0.0, str(value))


def _by_property(name: str) -> Callable[[CrmObject], tuple[int, float, str]]:
    return lambda found: _sort_key(found.properties.get(name))


def _matches(company: CrmObject, group: Mapping[str, Any]) -> bool:
    return all(_holds(company, f) for f in group.get("filters") or [])


def _holds(company: CrmObject, condition: Mapping[str, Any]) -> bool:
    operator = condition.get("operator")
    have = company.properties.get(str(condition.get("propertyName")))
    if operator == "HAS_PROPERTY":
        return have not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return have in (None, "")
    want = condition.get("value")
    a, b = _as_number(have), _as_number(want)
    if a is not None and b is not None:
        left: Any = a
        right: Any = b
    else:
        left, right = have, want
    if left is None:
        return False
    if operator == "EQ":
        return bool(left == right)
    if operator == "NEQ":
        return bool(left != right)
    if operator in ("GT", "GTE", "LT", "LTE"):
        try:
            return bool(
                {
                    "GT": left > right,
                    "GTE": left >= right,
                    "LT": left < right,
                    "LTE": left <= right,
                }[operator]
            )
        except TypeError:
            return False
    raise ValueError(f"the fake HubSpot does not know filter operator {operator!r}")
