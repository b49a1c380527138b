"""What Salesforce's refusals mean, for people: simple-salesforce's exceptions (and requests'
for a Salesforce out of reach) turned into CrmTransient (worth trying again, with the wait
Salesforce asked for), a daily limit, or CrmPermanent with a sentence saying what to fix.
No message carries a credential."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from bot.crm.base import CrmDailyLimit, CrmOwnerRefused, CrmPermanent, CrmTransient

# Error codes Salesforce sends for conditions that pass by themselves.
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})


def translate(exc: Exception, *, wait: float | None, renewed_with: str | None) -> Exception:
    """The CRM error a failed call is: `wait` is the Retry-After of its answer, if any, and
    `renewed_with` the settings of a login simple-salesforce makes again (None for a bare
    access token)."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        if renewed_with is None:
            return CrmPermanent(f"Salesforce refused the login ({refusal(exc)})")
        # simple-salesforce logs in again when a session expires: that login was refused.
        token = " (a new password resets it too)" if "SECURITY_TOKEN" in renewed_with else ""
        return CrmPermanent(
            f"Salesforce refused to log in again ({refusal(exc)}): were {renewed_with} changed "
            f"since leadrouter logged in{token}? Set the current ones and restart, then "
            "`leadrouter crm retry`"
        )
    if isinstance(exc, SalesforceExpiredSession):
        if renewed_with is not None:
            return CrmPermanent(
                "Salesforce refused the session of a new login too (INVALID_SESSION_ID): "
                f"the user {renewed_with} log in as may be frozen or its sessions revoked "
                "(Setup, Users)"
            )
        return CrmPermanent(
            "Salesforce says the session is invalid or expired; SALESFORCE_ACCESS_TOKEN cannot "
            "be renewed by leadrouter: set a new one, or use a username/password or "
            "client-credentials login"
        )
    if isinstance(exc, SalesforceResourceNotFound):
        return CrmPermanent("Salesforce has no such record (deleted or merged?)")
    if isinstance(exc, SalesforceMalformedRequest | SalesforceRefusedRequest):
        code, message = first_error(exc)
        if code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in message:
            # The org's API requests of the last 24 hours; other limits under this code
            # (concurrent long requests) pass in seconds, as any transient error.
            return CrmDailyLimit(
                "Salesforce's API request limit of the last 24 hours is used up "
                f"(REQUEST_LIMIT_EXCEEDED: {message}): requests free up as the day's "
                "earlier ones age out; Setup, Company Information shows the org's limit, "
                "and every integration of the org spends it",
                retry_after=wait,
            )
        if code in _TRANSIENT_CODES:
            return CrmTransient(f"Salesforce: {code}", retry_after=wait)
        if code == "INVALID_FIELD":
            return NoSuchField(f"Salesforce refused it: {code} {message}".strip())
        return Refused(
            f"Salesforce refused it: {code} {message}".strip(), code=code, fields=error_fields(exc)
        )
    if isinstance(exc, SalesforceError):
        if exc.status == 429 or exc.status >= 500:
            return CrmTransient(f"Salesforce answered {exc.status}", retry_after=wait)
        code, message = first_error(exc)
        return CrmPermanent(f"Salesforce answered {exc.status}: {code} {message}")
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return CrmTransient(f"Salesforce could not be reached ({type(exc).__name__})")
    return exc


class Refused(CrmPermanent):
    """Salesforce refused a request: its error code, and the fields the error names."""

    def __init__(self, message: str, *, code: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.fields = tuple(fields)


# Codes an owner write gets for the owner id itself: no such user, or an inactive one.
_OWNER_CODES = frozenset({"INVALID_CROSS_REFERENCE_KEY", "INACTIVE_OWNER_OR_USER"})
_ACCESS_CODES = frozenset(
    {"INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}
)


def owner_write_refused(exc: Refused) -> CrmPermanent:
    """An owner write's refusal, saying what to fix where Salesforce's code alone would not."""
    if exc.code in _OWNER_CODES or (
        exc.code == "FIELD_INTEGRITY_EXCEPTION" and "OwnerId" in exc.fields
    ):
        return CrmOwnerRefused(str(exc))
    if exc.code in _ACCESS_CODES:
        return CrmPermanent(
            f"{exc}: the Salesforce user leadrouter logs in as may not change this lead's "
            "owner; give it Edit on Leads and Transfer Leads (`leadrouter crm check` checks "
            "them) and access to the lead (sharing rules), then `leadrouter crm retry`"
        )
    if exc.code == "ENTITY_IS_DELETED":
        return CrmPermanent(f"Salesforce has no such record (deleted or merged?): {exc.code}")
    return exc


class NoSuchField(CrmPermanent):
    """A query named a field the org does not have (INVALID_FIELD): its message names it."""


def refusal(exc: SalesforceAuthenticationFailed) -> str:
    # 1.12.10 keeps Salesforce's text in `auth_message` (`message` is the class's format
    # template there); earlier releases kept it in `message`.
    return f"{exc.code}: {getattr(exc, 'auth_message', exc.message)}"[:300]


def error_fields(exc: SalesforceError) -> list[str]:
    content: Any = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        fields = content[0].get("fields")
        return [str(f) for f in fields] if isinstance(fields, list) else []
    return []


def first_error(exc: SalesforceError) -> tuple[str, str]:
    content: Any = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200] if content else ""
