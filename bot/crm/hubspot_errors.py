"""What HubSpot's refusals mean, for people: a client's ApiException turned into CrmTransient
(worth trying again, with HubSpot's Retry-After), a daily limit, or CrmPermanent with a
sentence saying what to fix, from its status and the error body HubSpot sends. No message
carries the token."""

from __future__ import annotations

import json
from typing import Any

from bot.crm import hubspot_scopes as scopes
from bot.crm.base import CrmDailyLimit, CrmOwnerRefused, CrmPermanent, CrmTransient


def translate(exc: Any) -> Exception:
    """The CRM error a client's ApiException is (its status, headers and body as HubSpot
    answered)."""
    status = int(exc.status or 0)
    detail = _message(exc.body)
    if status == 429 and _policy(exc.body) == "DAILY":
        return CrmDailyLimit(
            "HubSpot's daily API call limit is reached (429, policy DAILY): it resets at "
            "midnight in the HubSpot account's time zone, and every app connected to the "
            "account spends it",
            retry_after=_seconds(exc.headers or {}),
        )
    if status == 429 or status >= 500:
        headers = exc.headers or {}
        return CrmTransient(f"HubSpot answered {status}", retry_after=_seconds(headers))
    if status == 404:
        return CrmPermanent("HubSpot has no such record (deleted or merged?)")
    if status == 401:
        return CrmPermanent(
            "HubSpot rejected HUBSPOT_ACCESS_TOKEN (rotated or revoked?): set the private app's "
            f"current token ({scopes.APP} → Auth); `leadrouter crm retry` then queues again "
            "what was given up"
        )
    if status == 403:
        needed = _required_scopes(exc.body)
        if needed:
            return CrmPermanent(
                f"HubSpot refused it: HUBSPOT_ACCESS_TOKEN lacks the scope {' or '.join(needed)}; "
                f"add it to the private app's scopes ({scopes.WHERE})"
            )
        return CrmPermanent(f"HubSpot refused it: the token lacks a scope ({detail})")
    refused = _invalid_owner(exc.body) if status == 400 else None
    if refused is not None:
        return CrmOwnerRefused(f"HubSpot refused the owner: {refused}")
    return CrmPermanent(f"HubSpot answered {status}: {detail}")


def _message(body: Any) -> str:
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return str(body)[:200] if body else ""
    if not isinstance(data, dict):
        return ""
    return " ".join(str(data.get(k, "")) for k in ("category", "message")).strip()[:300]


def _invalid_owner(body: Any) -> str | None:
    """What a 400 says of `hubspot_owner_id`, if it refused that property: HubSpot lists each
    refused property as JSON inside its message ("Property values were not valid: [...]")."""
    try:
        data = json.loads(body) if body else {}
        message = str(data.get("message") or "") if isinstance(data, dict) else ""
        listed = json.loads(message[message.index("[") :]) if "[" in message else []
    except (TypeError, ValueError):
        return None
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and entry.get("name") == "hubspot_owner_id":
            return str(entry.get("message") or entry.get("error") or "not a valid owner")[:200]
    return None


def _policy(body: Any) -> str | None:
    """The rate-limit policy a 429 names (SECONDLY, TEN_SECONDLY_ROLLING, DAILY...)."""
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return None
    policy = data.get("policyName") if isinstance(data, dict) else None
    return str(policy).upper() if policy else None


def _required_scopes(body: Any) -> list[str]:
    """The scopes a 403 says the call needs (HubSpot names them in each error's context)."""
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    found: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        context = error.get("context") if isinstance(error, dict) else None
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes"):
            values = context.get(key)
            if isinstance(values, list):
                found.extend(str(v) for v in values if str(v) not in found)
    return found


def _seconds(headers: Any) -> float | None:
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
