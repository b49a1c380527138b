"""Turning a lead as it arrives (a JSON object, a CSV row) into a validated `Lead`.

The same parser serves the CLI, `POST /leads` and the CRM intakes, so a lead that is invalid in
one is invalid in all, with the same sentences. Every problem in a lead is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.model import CrmSystem, Lead

TEXT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "domain",
    "website",
    "title",
    "phone",
    "country",
    "state",
    "industry",
    "source",
    "product",
    "crm_id",
)
KNOWN_FIELDS = frozenset({"id", "employees", "score", "crm_system", "fields", *TEXT_FIELDS})
MAX_ID_LENGTH = 255
MAX_TEXT_LENGTH = 1000
MAX_CUSTOM_FIELDS = 100

# Deliberately loose: one @, something before it, a dotted domain after it, no spaces. Stricter
# checks reject real addresses; deliverability is the CRM's business, not the router's.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidLead(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def parse_lead(data: Mapping[str, Any]) -> Lead:
    """Validate one lead. Unknown top-level keys are kept under `fields`; `fields.X` keys too."""
    if not isinstance(data, Mapping):
        raise InvalidLead([FieldError("lead", "a lead is a JSON object of fields")])
    errors: list[FieldError] = []
    values: dict[str, Any] = {}

    lead_id = data.get("id")
    if isinstance(lead_id, bool) or not isinstance(lead_id, str | int) or not _text(lead_id):
        errors.append(FieldError("id", "is required: the lead's id in the system it came from"))
    elif len(str(lead_id).strip()) > MAX_ID_LENGTH:
        errors.append(FieldError("id", f"is longer than {MAX_ID_LENGTH} characters"))
    else:
        values["id"] = str(lead_id).strip()

    for name in TEXT_FIELDS:
        raw = data.get(name)
        if isinstance(raw, Mapping | list):
            errors.append(FieldError(name, "must be text, not a list or an object"))
            continue
        text = _text(raw)
        if text is not None and len(text) > MAX_TEXT_LENGTH:
            errors.append(FieldError(name, f"is longer than {MAX_TEXT_LENGTH} characters"))
            continue
        values[name] = text

    email = values.get("email")
    if email is not None:
        if _EMAIL.match(email):
            values["email"] = email.lower()
        else:
            errors.append(FieldError("email", f"'{email}' is not an e-mail address"))

    employees = _whole_number(data.get("employees"))
    if employees is _INVALID:
        errors.append(FieldError("employees", "must be a whole number of 0 or more"))
    else:
        values["employees"] = employees

    score = _number(data.get("score"))
    if score is _INVALID:
        errors.append(FieldError("score", "must be a number"))
    else:
        values["score"] = score

    crm = _text(data.get("crm_system"))
    if crm is not None:
        try:
            values["crm_system"] = CrmSystem(crm.lower())
        except ValueError:
            errors.append(FieldError("crm_system", f"'{crm}' is not one of salesforce, hubspot"))
    if values.get("crm_id") and "crm_system" not in values and crm is None:
        errors.append(FieldError("crm_system", "is required with crm_id (salesforce or hubspot)"))

    custom, custom_errors = _custom_fields(data)
    errors.extend(custom_errors)
    if errors:
        raise InvalidLead(errors)
    return Lead(**values, fields=custom)


_INVALID: Any = object()


def _whole_number(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int):
        return value if value >= 0 else _INVALID
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else _INVALID
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if text.isdigit():
            return int(text)
        if not text:
            return None
    return _INVALID


def _number(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return _INVALID
    else:
        return _INVALID
    if number != number or number in (float("inf"), float("-inf")):
        return _INVALID
    return number


def _custom_fields(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    custom: dict[str, Any] = {}
    errors: list[FieldError] = []
    nested = data.get("fields")
    if nested is not None and not isinstance(nested, Mapping):
        errors.append(FieldError("fields", "must be an object of custom fields"))
        nested = None
    sources: list[tuple[str, Any]] = list((nested or {}).items())
    for key, value in data.items():
        if key in KNOWN_FIELDS:
            continue
        name = str(key)
        sources.append((name.removeprefix("fields."), value))
    for name, value in sources:
        if not name:
            continue
        if isinstance(value, Mapping):
            errors.append(
                FieldError(f"fields.{name}", "must be text, a number, true/false or a list")
            )
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
            if len(value) > MAX_TEXT_LENGTH:
                errors.append(
                    FieldError(f"fields.{name}", f"is longer than {MAX_TEXT_LENGTH} characters")
                )
                continue
        if value is None:
            continue
        custom[name] = value
    if len(custom) > MAX_CUSTOM_FIELDS:
        errors.append(FieldError("fields", f"has more than {MAX_CUSTOM_FIELDS} custom fields"))
    return custom, errors
