"""The Salesforce adapter against recorded HTTP: what it sends, what it returns, how it fails.

simple-salesforce runs for real; `responses` stands in for Salesforce (and refuses any URL not
registered here, so nothing reaches the network).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import responses

from bot.crm.base import (
    CrmAccount,
    CrmDailyLimit,
    CrmOwnerRefused,
    CrmPermanent,
    CrmTransient,
    LeadRecord,
)
from bot.crm.salesforce import LEAD_FIELDS, SalesforceCrm, connector

INSTANCE = "https://acme.my.salesforce.com"
TOKEN = "00Dxx!token"
DATA = f"{INSTANCE}/services/data/v59.0"
QUERY = f"{DATA}/query/"
LEAD_ID = "00Q5e00000AbCdEFGH"
USER_ID = "0055e00000XyZaBCDE"
QUEUE_ID = "00G5e00000QuEuEABC"
ACCOUNT_ID = "0015e00000AcCtAAAA"
SOAP_LOGIN = "https://login.salesforce.com/services/Soap/u/59.0"
USERNAME = "ops@acme.example"
PASSWORD = "s3cret&pass"
SECURITY_TOKEN = "Xy9SecTok"
SESSION_ID = "00D5e000000AbCd!AQ4AQFakeSessionFromSoapLogin"

LOGIN_OK = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><loginResponse><result>\
<metadataServerUrl>https://acme.my.salesforce.com/services/Soap/m/59.0/00D5e000000AbCd\
</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>\
<serverUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5e000000AbCd</serverUrl>\
<sessionId>{SESSION_ID}</sessionId><userId>{USER_ID}</userId>\
<userInfo><organizationId>00D5e000000AbCdEAK</organizationId>\
<userEmail>{USERNAME}</userEmail><userName>{USERNAME}</userName></userInfo>\
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""

LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>\
<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.\
</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault">\
<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>\
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.\
</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>\
</soapenv:Envelope>"""


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Salesforce's HTTP; every registered answer must have been asked for."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def token_crm(tier_field: str | None = None, intake_queue: str | None = None) -> SalesforceCrm:
    """The adapter as production builds it from SALESFORCE_INSTANCE_URL/ACCESS_TOKEN."""
    connect = connector(
        instance_url=INSTANCE,
        access_token=TOKEN,
        username=None,
        password=None,
        security_token=None,
        client_id=None,
        client_secret=None,
        domain=None,
    )
    return SalesforceCrm(connect, tier_field=tier_field, intake_queue=intake_queue)


def password_crm() -> SalesforceCrm:
    connect = connector(
        instance_url=None,
        access_token=None,
        username=USERNAME,
        password=PASSWORD,
        security_token=SECURITY_TOKEN,
        client_id=None,
        client_secret=None,
        domain=None,
    )
    return SalesforceCrm(connect)


def soql(call: Any) -> str:
    """The SOQL a recorded query call sent, decoded from its q= parameter."""
    (q,) = parse_qs(urlsplit(call.request.url).query)["q"]
    return str(q)


def errors(code: str, message: str) -> list[dict[str, str]]:
    return [{"message": message, "errorCode": code}]


def lead(record_id: str, created: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{record_id}"},
        "Id": record_id,
        "CreatedDate": created,
        **fields,
    }


def account(record_id: str, modified: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v59.0/sobjects/Account/{record_id}",
        },
        "Id": record_id,
        "LastModifiedDate": modified,
        **fields,
    }


# --- set_owner -------------------------------------------------------------------------------


def test_setting_the_owner_patches_the_lead_with_the_owner_id(
    http: responses.RequestsMock,
) -> None:
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=204)

    assert token_crm().set_owner(LEAD_ID, USER_ID) is None

    (call,) = http.calls
    assert call.request.method == "PATCH"
    assert call.request.url == f"{DATA}/sobjects/Lead/{LEAD_ID}"
    assert json.loads(call.request.body) == {"OwnerId": USER_ID}
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.headers["Content-Type"] == "application/json"


def test_every_request_carries_the_adapters_timeout(http: responses.RequestsMock) -> None:
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=204)

    token_crm().set_owner(LEAD_ID, USER_ID)

    assert http.calls[0].request.req_kwargs["timeout"] == 30.0


def test_a_15_character_lead_id_is_accepted(http: responses.RequestsMock) -> None:
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID[:15]}", status=204)

    token_crm().set_owner(LEAD_ID[:15], USER_ID)

    assert http.calls[0].request.url == f"{DATA}/sobjects/Lead/{LEAD_ID[:15]}"


@pytest.mark.parametrize(
    "record_id",
    [
        pytest.param(ACCOUNT_ID, id="an account id"),
        pytest.param("../x", id="a path"),
        pytest.param("00Q5e00000AbC", id="too short"),
        pytest.param("00Q5e00000AbCdEFGH/../../limits", id="an id with a path after it"),
        pytest.param("00Q5e00000AbCdEFG", id="17 characters"),
        pytest.param("", id="empty"),
    ],
)
def test_a_record_id_that_is_no_lead_id_is_refused_before_any_request(
    http: responses.RequestsMock, record_id: str
) -> None:
    with pytest.raises(CrmPermanent, match="not a Salesforce lead id"):
        token_crm().set_owner(record_id, USER_ID)

    assert len(http.calls) == 0


@pytest.mark.parametrize(
    "owner_id",
    [
        pytest.param(QUEUE_ID, id="a queue id"),
        pytest.param(LEAD_ID, id="a lead id"),
        pytest.param("005/../../x", id="a path"),
        pytest.param("12345", id="a hubspot owner id"),
    ],
)
def test_an_owner_id_that_is_no_user_id_is_refused_before_any_request(
    http: responses.RequestsMock, owner_id: str
) -> None:
    with pytest.raises(CrmPermanent, match="not a Salesforce user id"):
        token_crm().set_owner(LEAD_ID, owner_id)

    assert len(http.calls) == 0


# --- how failures are reported ---------------------------------------------------------------


def owner_write_fails(http: responses.RequestsMock, **answer: Any) -> CrmPermanent | CrmTransient:
    """Answer the owner write with `answer` and return what the adapter raised."""
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", **answer)
    with pytest.raises((CrmPermanent, CrmTransient)) as raised:
        token_crm().set_owner(LEAD_ID, USER_ID)
    assert TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None
    return raised.value


def test_a_lead_that_was_deleted_is_a_permanent_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(
        http,
        status=404,
        json=errors("NOT_FOUND", "The requested resource does not exist"),
    )

    assert isinstance(exc, CrmPermanent)
    assert "no such record" in str(exc)


def test_an_owner_salesforce_does_not_know_is_a_permanent_failure_naming_the_code(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(
        http,
        status=400,
        json=errors(
            "INVALID_CROSS_REFERENCE_KEY",
            "Owner ID: id value of incorrect type: 0055e00000XyZaBCDE",
        ),
    )

    assert isinstance(exc, CrmOwnerRefused)  # the write-back names the rep's setting to fix
    assert "INVALID_CROSS_REFERENCE_KEY" in str(exc)
    assert "id value of incorrect type" in str(exc)


def test_a_lead_deleted_since_it_was_routed_is_no_such_record(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(http, status=400, json=errors("ENTITY_IS_DELETED", "entity is deleted"))

    assert isinstance(exc, CrmPermanent) and not isinstance(exc, CrmOwnerRefused)
    assert str(exc) == "Salesforce has no such record (deleted or merged?): ENTITY_IS_DELETED"


def test_a_locked_row_is_a_transient_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(
        http,
        status=400,
        json=errors("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
    )

    assert isinstance(exc, CrmTransient)
    assert "UNABLE_TO_LOCK_ROW" in str(exc)
    assert exc.retry_after is None


def test_the_daily_request_limit_is_a_daily_limit_that_says_where_to_see_it(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(
        http,
        status=403,
        json=errors("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    )

    assert isinstance(exc, CrmDailyLimit)
    assert "REQUEST_LIMIT_EXCEEDED" in str(exc) and "last 24 hours" in str(exc)
    assert "Setup, Company Information" in str(exc)


def test_a_limit_on_concurrent_long_requests_is_transient_but_no_daily_limit(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(
        http,
        status=403,
        json=errors("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    )

    assert isinstance(exc, CrmTransient) and not isinstance(exc, CrmDailyLimit)
    assert "REQUEST_LIMIT_EXCEEDED" in str(exc)


def test_missing_permission_is_a_permanent_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(
        http,
        status=403,
        json=errors("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"),
    )

    assert isinstance(exc, CrmPermanent)
    assert "INSUFFICIENT_ACCESS_OR_READONLY" in str(exc)


def test_an_unavailable_salesforce_is_transient_with_the_wait_it_asked_for(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(
        http,
        status=503,
        headers={"Retry-After": "7"},
        json=errors("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
    )

    assert isinstance(exc, CrmTransient)
    assert exc.retry_after == 7.0
    assert "503" in str(exc)


def test_too_many_requests_is_a_transient_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(http, status=429, body="Too Many Requests")

    assert isinstance(exc, CrmTransient)
    assert "429" in str(exc)
    assert exc.retry_after is None


def test_a_retry_after_from_an_earlier_answer_is_not_reused(
    http: responses.RequestsMock,
) -> None:
    crm = token_crm()
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=503, headers={"Retry-After": "7"})
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=503)

    with pytest.raises(CrmTransient) as first:
        crm.set_owner(LEAD_ID, USER_ID)
    with pytest.raises(CrmTransient) as second:
        crm.set_owner(LEAD_ID, USER_ID)

    assert first.value.retry_after == 7.0
    assert second.value.retry_after is None


def test_an_expired_access_token_is_permanent_and_says_what_to_set(
    http: responses.RequestsMock,
) -> None:
    exc = owner_write_fails(
        http, status=401, json=errors("INVALID_SESSION_ID", "Session expired or invalid")
    )

    assert isinstance(exc, CrmPermanent)
    assert "SALESFORCE_ACCESS_TOKEN" in str(exc)
    assert len(http.calls) == 1  # a bare token cannot be renewed: no login is attempted


def test_an_unreachable_salesforce_is_a_transient_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(
        http, body=requests.ConnectionError(f"connection refused to {INSTANCE}")
    )

    assert isinstance(exc, CrmTransient)
    assert "could not be reached" in str(exc)


def test_a_timeout_is_a_transient_failure(http: responses.RequestsMock) -> None:
    exc = owner_write_fails(http, body=requests.ReadTimeout("read timed out"))

    assert isinstance(exc, CrmTransient)
    assert "ReadTimeout" in str(exc)


# --- logging in ------------------------------------------------------------------------------


def test_a_password_login_posts_soap_once_and_then_uses_its_session(
    http: responses.RequestsMock,
) -> None:
    http.post(SOAP_LOGIN, body=LOGIN_OK, content_type="text/xml")
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=204)
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID[:15]}", status=204)

    crm = password_crm()
    assert len(http.calls) == 0  # nothing connects until the first call
    crm.set_owner(LEAD_ID, USER_ID)
    crm.set_owner(LEAD_ID[:15], USER_ID)

    login, first, second = http.calls
    assert login.request.method == "POST"
    assert login.request.url == SOAP_LOGIN
    assert login.request.headers["SOAPAction"] == "login"
    body = login.request.body
    assert f"<n1:username>{USERNAME}</n1:username>" in body
    # the password (XML-escaped) with the security token after it, as Salesforce wants
    assert f"<n1:password>s3cret&amp;pass{SECURITY_TOKEN}</n1:password>" in body
    for call in (first, second):
        assert call.request.url.startswith(INSTANCE + "/")  # the serverUrl's host
        assert call.request.headers["Authorization"] == f"Bearer {SESSION_ID}"


def test_a_password_changed_while_serving_is_told_when_the_login_is_renewed(
    http: responses.RequestsMock,
) -> None:
    http.post(SOAP_LOGIN, body=LOGIN_OK, content_type="text/xml")
    http.post(SOAP_LOGIN, body=LOGIN_FAULT, status=500, content_type="text/xml")
    expired = errors("INVALID_SESSION_ID", "Session expired or invalid")
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=204)
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=401, json=expired)

    crm = password_crm()
    crm.set_owner(LEAD_ID, USER_ID)  # logged in; then the session expires
    with pytest.raises(CrmPermanent) as raised:
        crm.set_owner(LEAD_ID, USER_ID)  # simple-salesforce logs in again: refused

    message = str(raised.value)
    assert message.startswith("Salesforce refused to log in again (INVALID_LOGIN: Invalid")
    assert "were SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN" in message
    assert "restart, then `leadrouter crm retry`" in message
    assert "SALESFORCE_ACCESS_TOKEN" not in message  # not what this login uses
    assert PASSWORD not in message and SECURITY_TOKEN not in message
    assert [c.request.method for c in http.calls] == ["POST", "PATCH", "PATCH", "POST"]


def test_a_session_refused_after_a_new_login_does_not_ask_for_an_access_token(
    http: responses.RequestsMock,
) -> None:
    http.post(SOAP_LOGIN, body=LOGIN_OK, content_type="text/xml")
    expired = errors("INVALID_SESSION_ID", "Session expired or invalid")
    http.patch(f"{DATA}/sobjects/Lead/{LEAD_ID}", status=401, json=expired)

    with pytest.raises(CrmPermanent) as raised:
        password_crm().set_owner(LEAD_ID, USER_ID)

    message = str(raised.value)
    assert "refused the session of a new login too (INVALID_SESSION_ID)" in message
    assert "SALESFORCE_ACCESS_TOKEN" not in message
    logins = [c for c in http.calls if c.request.method == "POST"]
    # It logged in again before giving up, a few times, not without end (simple-salesforce's
    # SFType would, until Python's recursion limit: hundreds of logins for one write).
    assert 1 < len(logins) <= 5


def test_a_refused_password_login_is_permanent_and_does_not_repeat_the_password(
    http: responses.RequestsMock,
) -> None:
    http.post(SOAP_LOGIN, body=LOGIN_FAULT, status=500, content_type="text/xml")

    with pytest.raises(CrmPermanent) as raised:
        password_crm().set_owner(LEAD_ID, USER_ID)

    message = str(raised.value)
    assert "refused the login" in message
    assert "INVALID_LOGIN" in message
    assert "Invalid username, password, security token; or user locked out." in message
    assert PASSWORD not in message
    assert SECURITY_TOKEN not in message
    assert len(http.calls) == 1  # the owner write was never sent
    # The usual causes, for an admin to check: the settings, and a sandbox's own login.
    assert "SALESFORCE_PASSWORD" in message and "SALESFORCE_SECURITY_TOKEN" in message
    assert "SALESFORCE_DOMAIN=test for a sandbox" in message


# --- owners_by_email -------------------------------------------------------------------------


def test_owners_are_found_by_lowercased_email_in_one_safely_quoted_query(
    http: responses.RequestsMock,
) -> None:
    http.get(
        QUERY,
        json={
            "totalSize": 2,
            "done": True,
            "records": [
                {
                    "attributes": {
                        "type": "User",
                        "url": f"/services/data/v59.0/sobjects/User/{USER_ID}",
                    },
                    "Id": USER_ID,
                    "Email": "Ana.Lima@Acme.example",
                },
                {
                    "attributes": {
                        "type": "User",
                        "url": "/services/data/v59.0/sobjects/User/0055e00000OBrIENAA",
                    },
                    "Id": "0055e00000OBrIENAA",
                    "Email": "o'brien@example.com",
                },
            ],
        },
    )

    found = token_crm().owners_by_email(
        ["Ana.Lima@ACME.example", "o'brien@example.com", " ana.lima@acme.example ", ""]
    )

    assert found == {"ana.lima@acme.example": USER_ID, "o'brien@example.com": "0055e00000OBrIENAA"}
    (call,) = http.calls
    assert call.request.method == "GET"
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert soql(call) == (
        "SELECT Id, Email FROM User WHERE IsActive = true AND Email IN "
        "('ana.lima@acme.example','o\\'brien@example.com')"
    )


def test_owners_by_email_sends_no_more_than_200_emails_per_query(
    http: responses.RequestsMock,
) -> None:
    http.get(QUERY, json={"totalSize": 0, "done": True, "records": []})
    http.get(QUERY, json={"totalSize": 0, "done": True, "records": []})
    emails = [f"rep{n:03}@acme.example" for n in range(250)]

    assert token_crm().owners_by_email(emails) == {}

    first, second = (soql(call) for call in http.calls)
    assert first.count("@acme.example") == 200
    assert second.count("@acme.example") == 50
    assert "'rep249@acme.example'" in second


# --- new_leads -------------------------------------------------------------------------------


def test_new_leads_are_queried_since_a_utc_moment_from_the_queue_and_followed_across_pages(
    http: responses.RequestsMock,
) -> None:
    next_url = "/services/data/v59.0/query/01gD0000002HU6KIAW-2000"
    http.get(
        QUERY,
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": next_url,
            "records": [
                lead(
                    LEAD_ID,
                    "2026-11-20T09:15:00.000+0000",
                    Email="jo@globex.example",
                    FirstName="Jo",
                    LastName="Park",
                    Company="Globex",
                    Website="globex.example",
                    Title=None,
                    Phone="",
                    Country="Germany",
                    State=None,
                    Industry="Manufacturing",
                    LeadSource="Web",
                    NumberOfEmployees=250,
                ),
                lead(
                    "00Q5e00000AbCdEFGI",
                    "2026-11-20T09:20:30.000+0000",
                    Email="max@initech.example",
                    LastName="Mustermann",
                    Company="Initech",
                    NumberOfEmployees=None,
                ),
            ],
        },
    )
    http.get(
        f"{INSTANCE}{next_url}",
        json={
            "totalSize": 3,
            "done": True,
            "records": [
                lead(
                    "00Q5e00000AbCdEFGJ",
                    "2026-11-20T11:00:00.000+0100",
                    Email="li@umbrella.example",
                    LastName="Li",
                    Company="Umbrella",
                )
            ],
        },
    )
    since = datetime(2026, 11, 20, 10, 15, tzinfo=ZoneInfo("Europe/Berlin"))

    pages = list(token_crm(intake_queue=QUEUE_ID).new_leads(since))

    first, second = http.calls
    query = soql(first)
    assert query.startswith("SELECT Id, CreatedDate, Email, FirstName, LastName, Company, ")
    assert "NumberOfEmployees" in query and "LeadSource" in query
    assert query.endswith(
        f" FROM Lead WHERE CreatedDate >= 2026-11-20T09:15:00.000Z AND OwnerId = '{QUEUE_ID}'"
        " ORDER BY CreatedDate, Id"
    )
    assert second.request.method == "GET"
    assert second.request.url == f"{INSTANCE}{next_url}"
    assert second.request.headers["Authorization"] == f"Bearer {TOKEN}"

    assert [len(page) for page in pages] == [2, 1]
    assert pages[0][0] == LeadRecord(
        crm_id=LEAD_ID,
        values={
            "email": "jo@globex.example",
            "first_name": "Jo",
            "last_name": "Park",
            "company": "Globex",
            "website": "globex.example",
            "country": "Germany",
            "industry": "Manufacturing",
            "source": "Web",
            "employees": 250,
        },
        created_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
    )
    assert pages[0][1].values == {
        "email": "max@initech.example",
        "last_name": "Mustermann",
        "company": "Initech",
    }
    assert pages[1][0].crm_id == "00Q5e00000AbCdEFGJ"
    assert pages[1][0].created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert pages[1][0].created_at.tzinfo == UTC


def test_new_leads_without_since_or_queue_have_no_where_clause(
    http: responses.RequestsMock,
) -> None:
    http.get(QUERY, json={"totalSize": 0, "done": True, "records": []})

    assert list(token_crm().new_leads(None)) == []

    query = soql(http.calls[0])
    assert "WHERE" not in query
    assert query.endswith(" FROM Lead ORDER BY CreatedDate, Id")


@pytest.mark.parametrize(
    "queue_id",
    [
        pytest.param(USER_ID, id="a user id"),
        pytest.param("00G' OR Name != '", id="soql injection"),
        pytest.param("00G5e", id="too short"),
    ],
)
def test_a_queue_id_that_is_no_queue_id_is_refused_before_any_request(
    http: responses.RequestsMock, queue_id: str
) -> None:
    with pytest.raises(CrmPermanent, match="not a Salesforce queue id"):
        list(token_crm(intake_queue=queue_id).new_leads(None))

    assert len(http.calls) == 0


def test_a_failed_page_of_leads_is_reported_like_any_other_call(
    http: responses.RequestsMock,
) -> None:
    next_url = "/services/data/v59.0/query/01gD0000002HU6KIAW-2000"
    http.get(
        QUERY,
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": next_url,
            "records": [lead(LEAD_ID, "2026-11-20T09:15:00.000+0000", LastName="Park")],
        },
    )
    http.get(f"{INSTANCE}{next_url}", status=503, headers={"Retry-After": "30"})

    pages = token_crm().new_leads(None)
    assert [record.crm_id for record in next(pages)] == [LEAD_ID]
    with pytest.raises(CrmTransient) as raised:
        next(pages)

    assert raised.value.retry_after == 30.0


def test_one_lead_is_read_by_its_id_with_the_fields_a_lead_is_routed_by(
    http: responses.RequestsMock,
) -> None:
    http.get(
        f"{DATA}/sobjects/Lead/{LEAD_ID}",
        json=lead(LEAD_ID, "2026-11-20T09:15:00.000+0000", Email="jo@globex.example", Phone=""),
    )

    found = token_crm().lead(LEAD_ID)

    assert found == LeadRecord(
        crm_id=LEAD_ID,
        values={"email": "jo@globex.example"},
        created_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
    )
    (fields,) = parse_qs(urlsplit(http.calls[0].request.url).query)["fields"]
    assert fields.split(",") == ["Id", "CreatedDate", *LEAD_FIELDS]


def test_a_lead_id_that_is_no_lead_id_is_refused_before_any_request(
    http: responses.RequestsMock,
) -> None:
    with pytest.raises(CrmPermanent, match="not a Salesforce lead id"):
        token_crm().lead(USER_ID)

    assert len(http.calls) == 0


# --- accounts_modified_since -----------------------------------------------------------------


def test_accounts_are_paged_with_the_tier_field_and_mapped_with_their_billing_country_and_state(
    http: responses.RequestsMock,
) -> None:
    next_url = "/services/data/v59.0/query/01gD0000002HU6KIAW-2000"
    http.get(
        QUERY,
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": next_url,
            "records": [
                account(
                    ACCOUNT_ID,
                    "2026-11-20T09:15:00.000+0000",
                    Name="Globex",
                    Website="https://globex.example",
                    OwnerId=USER_ID,
                    BillingCountry="Germany",
                    BillingState=" Bavaria ",
                    Tier__c="Enterprise",
                ),
                account(
                    "0015e00000AcCtBBBB",
                    "2026-11-20T10:45:00.000+0000",
                    Name="Initech",
                    Website=None,
                    OwnerId=USER_ID,
                    BillingCountry="USA",
                    BillingState="TX",
                    Tier__c=None,
                ),
            ],
        },
    )
    http.get(
        f"{INSTANCE}{next_url}",
        json={
            "totalSize": 3,
            "done": True,
            "records": [
                account(
                    "0015e00000AcCtCCCC",
                    "2026-11-21T08:00:00.000+0000",
                    Name="Umbrella",
                    Website="umbrella.example",
                    OwnerId=None,
                    BillingCountry="Atlantis",
                    BillingState=None,
                    Tier__c="",
                )
            ],
        },
    )
    since = datetime(2026, 11, 1, tzinfo=UTC)

    pages = list(token_crm(tier_field="Tier__c").accounts_modified_since(since))

    first, second = http.calls
    assert soql(first) == (
        "SELECT Id, Name, Website, OwnerId, BillingCountry, BillingState, LastModifiedDate,"
        " Tier__c FROM Account"
        " WHERE LastModifiedDate >= 2026-11-01T00:00:00.000Z ORDER BY LastModifiedDate, Id"
    )
    assert second.request.url == f"{INSTANCE}{next_url}"
    assert [list(page.accounts) for page in pages] == [
        [
            CrmAccount(
                id=ACCOUNT_ID,
                name="Globex",
                website="https://globex.example",
                owner_id=USER_ID,
                tier="Enterprise",
                modified_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
                country="DE",
                state="Bavaria",
            ),
            CrmAccount(
                id="0015e00000AcCtBBBB",
                name="Initech",
                website=None,
                owner_id=USER_ID,
                tier=None,
                modified_at=datetime(2026, 11, 20, 10, 45, tzinfo=UTC),
                country="US",
                state="TX",
            ),
        ],
        [
            CrmAccount(
                id="0015e00000AcCtCCCC",
                name="Umbrella",
                website="umbrella.example",
                owner_id=None,
                tier=None,
                modified_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
                country=None,  # no country anyone knows: the account is kept without one
                state=None,
            )
        ],
    ]
    assert [page.last_modified for page in pages] == [
        datetime(2026, 11, 20, 10, 45, tzinfo=UTC),
        datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
    ]


def test_all_accounts_are_asked_for_without_a_where_clause_and_without_a_tier_field(
    http: responses.RequestsMock,
) -> None:
    http.get(
        QUERY,
        json={
            "totalSize": 1,
            "done": True,
            "records": [
                account(
                    ACCOUNT_ID,
                    "2026-11-20T09:15:00.000+0000",
                    Name="Globex",
                    Website="globex.example",
                    OwnerId=USER_ID,
                )
            ],
        },
    )

    (page,) = list(token_crm().accounts_modified_since(None))

    assert soql(http.calls[0]) == (
        "SELECT Id, Name, Website, OwnerId, BillingCountry, BillingState, LastModifiedDate"
        " FROM Account ORDER BY LastModifiedDate, Id"
    )
    (found,) = page.accounts
    assert (found.id, found.website, found.owner_id, found.tier) == (
        ACCOUNT_ID,
        "globex.example",
        USER_ID,
        None,
    )


def test_no_accounts_give_no_pages(http: responses.RequestsMock) -> None:
    http.get(QUERY, json={"totalSize": 0, "done": True, "records": []})

    assert list(token_crm().accounts_modified_since(None)) == []


# --- whoami ----------------------------------------------------------------------------------


def test_whoami_reads_the_limits_and_reports_the_requests_left(
    http: responses.RequestsMock,
) -> None:
    http.get(
        f"{DATA}/limits",
        json={
            "DailyApiRequests": {"Max": 100000, "Remaining": 99876},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        },
    )

    assert token_crm().whoami() == (
        "connected to acme.my.salesforce.com, 99876 API requests left today"
    )
    (call,) = http.calls
    assert call.request.method == "GET"
    assert call.request.url == f"{DATA}/limits"
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_whoami_without_a_request_count_still_names_the_instance(
    http: responses.RequestsMock,
) -> None:
    http.get(f"{DATA}/limits", json={"DailyBulkApiBatches": {"Max": 15000, "Remaining": 1}})

    assert token_crm().whoami() == "connected to acme.my.salesforce.com"


def test_a_user_who_may_not_read_the_orgs_limits_is_still_connected(
    http: responses.RequestsMock,
) -> None:
    # The limits need View Setup and Configuration, which nothing else leadrouter does needs.
    refused = [{"errorCode": "INSUFFICIENT_ACCESS", "message": "insufficient access rights"}]
    http.get(f"{DATA}/limits", status=403, json=refused)

    assert token_crm().whoami() == (
        "connected to acme.my.salesforce.com (the user may not read the org's API limits)"
    )


def test_a_user_without_api_access_is_told_so(http: responses.RequestsMock) -> None:
    refused = [
        {
            "errorCode": "API_DISABLED_FOR_ORG",
            "message": "API is not enabled for this Organization or Partner",
        }
    ]
    http.get(f"{DATA}/limits", status=403, json=refused)

    with pytest.raises(CrmPermanent, match="API_DISABLED_FOR_ORG"):
        token_crm().whoami()
