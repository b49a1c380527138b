"""Turning a lead as it arrives (a JSON object, a CSV row) into a validated `Lead`.

The same parser serves the CLI, `POST /leads` and the CRM intakes, so a lead that is invalid in
one is invalid in all, with the same sentences. Every problem in a lead is reported at once.
"""

from __future__ import annotations

import json
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
MAX_ID_LENGTH = 255  # crm_id: it is indexed, and an index entry has a size limit
# A lead's own id also travels in Slack, in the block id of a queued lead's Assign control
# ("assign:" and the id, at most 255 characters): one longer could never be assigned there.
MAX_LEAD_ID_LENGTH = 248
MAX_EMAIL_LENGTH = 254  # the longest address SMTP allows
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


def _too_long(value: str | int, limit: int) -> bool:
    # An int is measured before str() turns it into text: str() refuses ints past 4,300 digits.
    if isinstance(value, int):
        return abs(value) >= int(10**limit)
    return len(value.strip()) > limit


def unstorable(text: str) -> bool:
    """Text no database will store: a NUL, or half of a UTF-16 surrogate pair ("\\ud800")
    that JSON allows and UTF-8 cannot encode."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_UNSTORABLE = "contains a character that cannot be stored (a NUL or a lone surrogate)"
MAX_EMPLOYEES = 100_000_000


def parse_lead(data: Mapping[str, Any]) -> Lead:
    """Validate one lead. Unknown top-level keys are kept under `fields`; `fields.X` keys too."""
    if not isinstance(data, Mapping):
        raise InvalidLead([FieldError("lead", "a lead is a JSON object of fields")])
    errors: list[FieldError] = []
    values: dict[str, Any] = {}

    lead_id = data.get("id")
    if isinstance(lead_id, bool) or not isinstance(lead_id, str | int) or not _text(lead_id):
        errors.append(FieldError("id", "is required: the lead's id in the system it came from"))
    elif _too_long(lead_id, MAX_LEAD_ID_LENGTH):
        errors.append(FieldError("id", f"is longer than {MAX_LEAD_ID_LENGTH} characters"))
    elif unstorable(str(lead_id)):
        errors.append(FieldError("id", _UNSTORABLE))
    else:
        values["id"] = str(lead_id).strip()

    for name in TEXT_FIELDS:
        raw = data.get(name)
        if isinstance(raw, Mapping | list):
            errors.append(FieldError(name, "must be text, not a list or an object"))
            continue
        if isinstance(raw, int) and not isinstance(raw, bool) and _too_long(raw, MAX_TEXT_LENGTH):
            errors.append(FieldError(name, f"is longer than {MAX_TEXT_LENGTH} characters"))
            continue
        text = _text(raw)
        if text is not None and len(text) > MAX_TEXT_LENGTH:
            errors.append(FieldError(name, f"is longer than {MAX_TEXT_LENGTH} characters"))
            continue
        if text is not None and unstorable(text):
            errors.append(FieldError(name, _UNSTORABLE))
            continue
        values[name] = text

    email = values.get("email")
    if email is not None:
        lowered = email.lower()  # lowercasing can lengthen text ("İ"): measure after it
        if len(lowered) > MAX_EMAIL_LENGTH or not _EMAIL.match(lowered):
            errors.append(FieldError("email", f"'{email[:80]}' is not an e-mail address"))
        else:
            values["email"] = lowered
    crm_id = values.get("crm_id")
    if crm_id is not None and len(crm_id) > MAX_ID_LENGTH:
        errors.append(FieldError("crm_id", f"is longer than {MAX_ID_LENGTH} characters"))

    employees = _employees(data.get("employees"))
    if employees is _INVALID or (employees is not None and employees > MAX_EMPLOYEES):
        errors.append(FieldError("employees", _not_employees(data.get("employees"))))
    else:
        values["employees"] = employees

    score = _number(data.get("score"))
    if score is _INVALID:
        written = data.get("score")
        if isinstance(written, str) and _DECIMAL_COMMA.fullmatch(written.strip()):
            # A spreadsheet in French or German writes 85.5 as 85,5: say so, never guess.
            point = written.strip().replace(",", ".")
            message = f"must be a number: '{written.strip()}' has a decimal comma; write {point}"
        else:
            message = "must be a number"
        errors.append(FieldError("score", message))
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
_DECIMAL_COMMA = re.compile(r"-?[0-9]+,[0-9]{1,2}")  # not 1,200: a thousands comma
# Thousands grouped by a space, as Excel saves a number shown so in France and much of Europe
# ("1 500", with a no-break or narrow no-break space): only before a group of exactly three.
_SPACE_GROUP = re.compile(r"(?<=[0-9])[ \u00a0\u202f\u2009](?=[0-9]{3}(?![0-9]))")


# A decimal comma at the end ("1 500,00": Excel's Number format in French shows two decimals).
# Zeros alone make a whole number; any other digit a fraction, refused: never 150050, nor 15.
_DECIMAL_ZEROS = re.compile(r"(?<=[0-9]),0{1,2}$")
_DECIMAL_DIGITS = re.compile(r",[0-9]{1,2}$")  # not ",200": a thousands comma


def _ungrouped(text: str) -> str:
    """`text` without its thousands separators ("1 500", "1,500") nor decimal zeros ("1 500,00");
    a decimal comma with other digits stays, for the caller to refuse."""
    ungrouped = _DECIMAL_ZEROS.sub("", _SPACE_GROUP.sub("", text.strip()))
    if _DECIMAL_DIGITS.search(ungrouped):
        return ungrouped
    return ungrouped.replace(",", "")


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
        text = _ungrouped(value).replace("_", "")
        # isascii: str.isdigit() also accepts "²" and other digits int() refuses.
        if text.isascii() and text.isdigit() and len(text) <= 12:
            return int(text)
        if not text:
            return None
    return _INVALID


# A company size as CRMs, enrichment tools and sign-up forms write it: a band ("51-200",
# "51 – 200", "201 to 500"), an open band ("10,001+") or an estimate ("~300"). Each is read as the
# least it says (51, 201, 10001, 300): the size the company has at least, which puts the usual
# bands on the right side of segment limits at their edges (200, 1,000).
_EMPLOYEE_BAND = re.compile(
    r"(?:~|ca\.?|approx\.?|about)?\s*([0-9]{1,12})\s*(?:\+|(?:-|–|—|to)\s*([0-9]{1,12}))?",
    re.IGNORECASE,
)


def _employees(value: Any) -> Any:
    number = _whole_number(value)
    if number is not _INVALID or not isinstance(value, str):
        return number
    band = _EMPLOYEE_BAND.fullmatch(_ungrouped(value))
    if band is None:
        return _INVALID
    least = int(band[1])
    if band[2] is not None and int(band[2]) < least:
        return _INVALID  # "500-200": a slip, not a size to guess at
    return least


def _not_employees(value: Any) -> str:
    # A JSON value as JSON writes it (`true`, not Python's `True`): leads come as JSON too.
    shown = repr(value[:40]) if isinstance(value, str) else json.dumps(value, default=str)[:40]
    return (
        f"{shown} is not a number of employees: give a whole number such as 250, "
        "a range such as 51-200, or 1000+"
    )


def _number(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _INVALID
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return _INVALID
    except (ValueError, OverflowError):  # OverflowError: an integer too big for a float
        return _INVALID
    if number != number or number in (float("inf"), float("-inf")):
        return _INVALID
    return number


def _plain_scalar(value: Any) -> bool:
    """A custom field value a database and a condition can both handle."""
    if isinstance(value, str):
        return len(value) <= MAX_TEXT_LENGTH and not unstorable(value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 2**53  # what JSON numbers round-trip through a float
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return False


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
    for raw_name, value in sources:
        name = str(raw_name)
        if not name:
            continue
        if len(name) > 255 or unstorable(name):
            errors.append(FieldError("fields", "a custom field's name is too long or unstorable"))
            continue
        if isinstance(value, Mapping) or (
            isinstance(value, list) and not all(_plain_scalar(item) for item in value)
        ):
            errors.append(
                FieldError(f"fields.{name}", "must be text, a number, true/false or a list of them")
            )
            continue
        if not _plain_scalar(value) and not isinstance(value, list):
            errors.append(
                FieldError(f"fields.{name}", "must be text, a number, true/false or a list of them")
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


def told_apart(first: Lead, again: Lead) -> str | None:
    """What shows that `again`, arriving under the id `first` was stored with, is another lead
    (the id reused), such as "another e-mail address" or "another name and company"; None when
    it is `first` sent again (a retry), to be answered with `first`'s decision.

    The e-mail address says who a lead is. Without one on either, their name, company, phone
    and CRM record do, compared as written whatever the case, spacing or a phone's punctuation.
    The other fields (a score, a campaign, a custom field) may change between a send and its
    retry without making another lead of it."""
    if first.email is not None or again.email is not None:
        return None if first.email == again.email else "another e-mail address"
    differs = [
        what
        for what, one, other in zip(_WHO_IS_IT, _who(first), _who(again), strict=True)
        if one != other
    ]
    if not differs:
        return None
    listed = ", ".join(differs[:-1]) + " and " + differs[-1] if len(differs) > 1 else differs[0]
    return f"another {listed}"


_WHO_IS_IT = ("name", "company", "phone number", "CRM record")


def _who(lead: Lead) -> tuple[str, str, str, tuple[str | None, str | None]]:
    name = " ".join(part for part in (lead.first_name, lead.last_name) if part)
    crm = (lead.crm_system.value if lead.crm_system else None, lead.crm_id)
    return _folded(name), _folded(lead.company or ""), _digits(lead.phone or ""), crm


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())
