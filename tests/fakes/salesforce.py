"""A fake Salesforce REST API for the real simple-salesforce client, through `responses`.

It holds records by object (`add`, `update`) and answers SOQL queries (`GET .../query/?q=`) the
way Salesforce does: the SELECTed fields of the records the WHERE clause keeps, in the ORDER BY
order, `batch_size` records a page with a `nextRecordsUrl` to the next (`GET .../query/01g...`).
The SOQL it understands is what leadrouter sends: comparisons (`=`, `!=`, `<`, `<=`, `>`,
`>=`) of fields with strings, numbers, booleans, `null`, dates and date-times; `IN` and
`NOT IN` lists; `AND`, `OR`, `NOT` and parentheses; the polymorphic `Who.Type`. A field the
object does not have, or SOQL it cannot read, is answered 400 as Salesforce answers
(`INVALID_FIELD`, `MALFORMED_QUERY`), and a URL longer than Salesforce takes, 414.

An org has one currency unless made with `multi_currency=True`: then, as in Salesforce, its
records have a `CurrencyIsoCode` (`corporate_currency` unless given), which a one-currency org's
do not have (a query naming it is answered INVALID_FIELD).

`SystemModstamp` and `LastModifiedDate` move to the fake's clock (`now`) on every `add` and
`update`, unless given. Every query is recorded in `queries` (the SOQL, in order), every
request counted in `requests`; from request `failing_from` on, each is answered 503.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

VERSION = "59.0"
MAX_URL = 16_384  # Salesforce refuses longer request URIs
PREFIXES = {
    "00Q": "Lead",
    "003": "Contact",
    "005": "User",
    "001": "Account",
    "006": "Opportunity",
    "00T": "Task",
    "00U": "Event",
}
_COMMON = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "OwnerId", "IsDeleted"}
FIELDS: dict[str, set[str]] = {
    "Lead": _COMMON
    | {
        "Email",
        "FirstName",
        "LastName",
        "Company",
        "Website",
        "Title",
        "Phone",
        "Country",
        "State",
        "Industry",
        "LeadSource",
        "NumberOfEmployees",
        "Status",
        "IsConverted",
        "ConvertedDate",
        "ConvertedOpportunityId",
        "ConvertedContactId",
        "ConvertedAccountId",
    },
    "Task": _COMMON
    | {
        "WhoId",
        "WhatId",
        "Subject",
        "Status",
        "IsClosed",
        "TaskSubtype",
        "ActivityDate",
        "CompletedDateTime",
    },
    "Event": _COMMON
    | {"WhoId", "WhatId", "Subject", "StartDateTime", "EndDateTime", "ActivityDate"},
    "Opportunity": _COMMON
    | {"Name", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "AccountId"},
    "User": _COMMON | {"Email", "IsActive"},
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))
      | (?P<date>\d{4}-\d\d-\d\d)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


def sf_time(moment: datetime) -> str:
    """A date-time as Salesforce writes it in a record."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class MalformedQuery(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FakeSalesforce:
    """Salesforce at `instance`, answering through the `responses` mock it is installed in."""

    def __init__(
        self,
        instance: str,
        *,
        now: Callable[[], datetime],
        batch_size: int = 2000,
        multi_currency: bool = False,
        corporate_currency: str = "USD",
    ):
        self.instance = instance.rstrip("/")
        self.now = now
        self.batch_size = batch_size
        self.multi_currency = multi_currency
        self.corporate_currency = corporate_currency
        extra = {"CurrencyIsoCode"} if multi_currency else set()
        self.fields: dict[str, set[str]] = {name: names | extra for name, names in FIELDS.items()}
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in FIELDS}
        self.queries: list[str] = []
        self.requests = 0  # every request answered, a failure too
        self.failing_from: int | None = None  # from this request on (1 the first), answer 503
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._numbers = itertools.count(1)

    @property
    def query_url(self) -> str:
        return f"{self.instance}/services/data/v{VERSION}/query/"

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, re.compile(re.escape(self.query_url) + ".*"), self._answer)

    # --- what tests arrange ----------------------------------------------------------------

    def add(self, sobject: str, record_id: str | None = None, **fields: Any) -> str:
        prefix = next(p for p, name in PREFIXES.items() if name == sobject)
        record_id = record_id or f"{prefix}5e00000{next(self._numbers):08d}"[:18]
        now = sf_time(self.now())
        record = {"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now, **fields}
        if self.multi_currency:
            record.setdefault("CurrencyIsoCode", self.corporate_currency)
        self._check_fields(sobject, record)
        self.records[sobject][record_id] = {"Id": record_id, **record}
        return record_id

    def update(self, sobject: str, record_id: str, **fields: Any) -> None:
        self._check_fields(sobject, fields)
        now = sf_time(self.now())
        self.records[sobject][record_id].update(
            {"LastModifiedDate": now, "SystemModstamp": now, **fields}
        )

    def queries_of(self, sobject: str) -> list[str]:
        return [q for q in self.queries if re.search(rf"\bFROM {sobject}\b", q)]

    def _check_fields(self, sobject: str, fields: Mapping[str, Any]) -> None:
        unknown = set(fields) - self.fields[sobject]
        if unknown:
            raise ValueError(f"the fake's {sobject} has no field {sorted(unknown)}")

    # --- answering -------------------------------------------------------------------------

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        if len(request.url) > MAX_URL:
            return 414, {}, json.dumps([{"errorCode": "URI_TOO_LONG", "message": "URI too long"}])
        self.requests += 1
        if self.failing_from is not None and self.requests >= self.failing_from:
            body = [{"errorCode": "SERVER_UNAVAILABLE", "message": "try again"}]
            return 503, {}, json.dumps(body)
        path = urlsplit(request.url).path.rstrip("/")
        locator = path.rsplit("/", 1)[-1]
        if locator != "query":
            return 200, {}, json.dumps(self._page(locator))
        soql = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
        self.queries.append(soql)
        try:
            records = self._run(soql)
        except MalformedQuery as exc:
            return 400, {}, json.dumps([{"errorCode": exc.code, "message": str(exc)}])
        locator = f"01g5e{next(self._numbers):08d}"
        self._cursors[locator] = (records, 0)
        return 200, {}, json.dumps(self._page(locator))

    def _page(self, locator: str) -> dict[str, Any]:
        records, start = self._cursors.pop(locator)
        end = start + self.batch_size
        page: dict[str, Any] = {
            "totalSize": len(records),
            "done": end >= len(records),
            "records": records[start:end],
        }
        if end < len(records):
            following = f"{locator.split('-')[0]}-{end}"
            self._cursors[following] = (records, end)
            page["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{following}"
        return page

    def _run(self, soql: str) -> list[dict[str, Any]]:
        match = re.fullmatch(
            r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
            r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER BY\s+(?P<order>.+?))?"
            r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*",
            soql,
            re.DOTALL,
        )
        if match is None:
            raise MalformedQuery("MALFORMED_QUERY", f"unexpected SOQL: {soql[:80]}")
        sobject = match["object"]
        if sobject not in FIELDS:
            raise MalformedQuery("INVALID_TYPE", f"sObject type '{sobject}' is not supported")
        fields = [f.strip() for f in match["fields"].split(",")]
        for name in fields:
            self._field(sobject, name)
        keep = Condition(sobject, self, match["where"]) if match["where"] else None
        found = [r for r in self.records[sobject].values() if keep is None or keep(r)]
        for part in reversed((match["order"] or "").split(",") if match["order"] else []):
            name, _, direction = part.strip().partition(" ")
            self._field(sobject, name)
            found.sort(
                key=lambda r, n=name: _sortable(r.get(n)), reverse=direction.upper() == "DESC"
            )
        if match["limit"]:
            found = found[: int(match["limit"])]
        return [
            {
                "attributes": {"type": sobject, "url": f"/sobjects/{sobject}/{r['Id']}"},
                **{f: r.get(f) for f in fields},
            }
            for r in found
        ]

    def _field(self, sobject: str, name: str) -> str:
        if name in ("Who.Type", "What.Type") and sobject in ("Task", "Event"):
            return name
        if name not in self.fields[sobject]:
            raise MalformedQuery("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")
        return name

    def value_of(self, record: Mapping[str, Any], name: str) -> Any:
        if name in ("Who.Type", "What.Type"):
            target = record.get(name.split(".")[0] + "Id")
            return PREFIXES.get(str(target)[:3]) if target else None
        return record.get(name)


class Condition:
    """A WHERE clause, parsed once, called on each record."""

    def __init__(self, sobject: str, fake: FakeSalesforce, text: str) -> None:
        self.sobject, self.fake = sobject, fake
        self.tokens = list(_tokens(text))
        self.at = 0
        self.test = self._or()
        if self.at != len(self.tokens):
            raise MalformedQuery("MALFORMED_QUERY", f"unexpected token: {self.tokens[self.at]}")

    def __call__(self, record: Mapping[str, Any]) -> bool:
        return self.test(record)

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise MalformedQuery("MALFORMED_QUERY", "unexpected end of the WHERE clause")
        self.at += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.at += 1
            return True
        return False

    def _or(self) -> Callable[[Mapping[str, Any]], bool]:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        return lambda r: any(p(r) for p in parts)

    def _and(self) -> Callable[[Mapping[str, Any]], bool]:
        parts = [self._not()]
        while self._keyword("AND"):
            parts.append(self._not())
        return lambda r: all(p(r) for p in parts)

    def _not(self) -> Callable[[Mapping[str, Any]], bool]:
        if self._keyword("NOT"):
            inner = self._not()
            return lambda r: not inner(r)
        if self._peek() == ("op", "("):
            self._take()
            inner = self._or()
            if self._take() != ("op", ")"):
                raise MalformedQuery("MALFORMED_QUERY", "a parenthesis is not closed")
            return inner
        return self._comparison()

    def _comparison(self) -> Callable[[Mapping[str, Any]], bool]:
        kind, name = self._take()
        if kind != "word":
            raise MalformedQuery("MALFORMED_QUERY", f"expected a field, not {name}")
        self.fake._field(self.sobject, name)
        negated = self._keyword("NOT")
        if self._keyword("IN"):
            values = self._list()
            inside = lambda r: _comparable(self.fake.value_of(r, name)) in values  # noqa: E731
            return (lambda r: not inside(r)) if negated else inside
        if negated:
            raise MalformedQuery("MALFORMED_QUERY", "NOT must be followed by IN here")
        kind, op = self._take()
        if kind != "op" or op in "(),":
            raise MalformedQuery("MALFORMED_QUERY", f"expected an operator after {name}")
        wanted = self._value()
        return lambda r: _compare(_comparable(self.fake.value_of(r, name)), op, wanted)

    def _list(self) -> list[Any]:
        if self._take() != ("op", "("):
            raise MalformedQuery("MALFORMED_QUERY", "IN takes a parenthesised list")
        values = [self._value()]
        while self._peek() == ("op", ","):
            self._take()
            values.append(self._value())
        if self._take() != ("op", ")"):
            raise MalformedQuery("MALFORMED_QUERY", "an IN list is not closed")
        return values

    def _value(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "datetime":
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "number":
            return float(text)
        if kind == "word" and text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text.lower()]
        raise MalformedQuery("MALFORMED_QUERY", f"expected a value, not {text}")


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    at = 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise MalformedQuery("MALFORMED_QUERY", f"cannot read the SOQL at {text[at:][:30]}")
        kind = match.lastgroup
        assert kind is not None
        yield kind, match.group(kind)
        at = match.end()


def _comparable(value: Any) -> Any:
    """A record's value as the literals it is compared with: times and dates parsed."""
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", value):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            return date.fromisoformat(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "=":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    if have is None or want is None:
        return False
    if op == "<":
        return bool(have < want)
    if op == "<=":
        return bool(have <= want)
    if op == ">":
        return bool(have > want)
    return bool(have >= want)


def _sortable(value: Any) -> tuple[int, Any]:
    comparable = _comparable(value)
    return (1, "") if comparable is None else (0, comparable)
