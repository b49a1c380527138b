from __future__ import annotations

from typing import Any

import pytest

from routing.leads import InvalidLead, parse_lead, told_apart
from routing.model import CrmSystem


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidLead) as caught:
        parse_lead(data)
    return {e.field: e.message for e in caught.value.errors}


def test_a_lead_needs_an_id() -> None:
    assert "id" in errors_of({"email": "a@b.com"})
    assert "id" in errors_of({"id": "   "})
    assert "id" in errors_of({"id": True})


def test_numbers_as_ids_are_kept_as_text() -> None:
    assert parse_lead({"id": 42}).id == "42"


def test_every_problem_in_a_lead_is_reported_at_once() -> None:
    errors = errors_of(
        {
            "id": "L1",
            "email": "not-an-email",
            "employees": "-3",
            "score": "high",
            "crm_system": "pipedrive",
        }
    )
    assert errors == {
        "email": "'not-an-email' is not an e-mail address",
        "employees": "'-3' is not a number of employees: give a whole number such as 250, "
        "a range such as 51-200, or 1000+",
        "score": "must be a number",
        "crm_system": "'pipedrive' is not one of salesforce, hubspot",
    }


@pytest.mark.parametrize(
    ("raw", "parsed"), [("1,200", 1200), ("250", 250), (3.0, 3), ("", None), (0, 0)]
)
def test_employee_counts_accept_whole_numbers_as_text_or_numbers(
    raw: Any, parsed: int | None
) -> None:
    assert parse_lead({"id": "L", "employees": raw}).employees == parsed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("51-200", 51),
        ("51 – 200", 51),
        ("201 to 500", 201),
        ("10,001+", 10001),
        ("1000+", 1000),
        ("~300", 300),
        ("about 12", 12),
    ],
)
def test_a_company_size_band_or_estimate_is_read_as_the_least_it_says(
    raw: str, parsed: int
) -> None:
    assert parse_lead({"id": "L", "employees": raw}).employees == parsed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1 500", 1500),  # French Excel's "CSV UTF-8" of a number shown with its thousands
        ("1\u00a0500", 1500),  # a no-break space (older Excel)
        ("12\u202f000", 12000),  # a narrow no-break space (newer Excel)
        ("1 000 000", 1000000),
        ("1 001 – 5 000", 1001),
        ("10 001+", 10001),
        ("1 500,00", 1500),  # Excel's Number format shows two decimals: none but zeros
        ("250,0", 250),
    ],
)
def test_an_employee_count_grouped_by_spaces_as_excel_saves_it_in_france_is_read(
    raw: str, parsed: int
) -> None:
    assert parse_lead({"id": "L", "employees": raw}).employees == parsed


@pytest.mark.parametrize(
    "raw",
    # "1 500,50" and "1,5" have a decimal comma: a fraction of a person, never 150050 nor 15.
    [
        "12.5",
        12.5,
        "ten",
        True,
        -1,
        [1],
        "500-200",
        "3-",
        "-3",
        "1 50",
        "12 5000",
        "1 500,50",
        "1,5",
    ],
)
def test_employee_counts_reject_anything_else(raw: Any) -> None:
    assert "is not a number of employees" in errors_of({"id": "L", "employees": raw})["employees"]


def test_an_employee_count_refused_shows_the_value_and_what_would_do() -> None:
    assert errors_of({"id": "L", "employees": "lots"})["employees"] == (
        "'lots' is not a number of employees: give a whole number such as 250, "
        "a range such as 51-200, or 1000+"
    )


def test_a_json_value_refused_as_employees_is_shown_as_json_writes_it() -> None:
    assert errors_of({"id": "L", "employees": True})["employees"].startswith(
        "true is not a number of employees"
    )


def test_a_score_with_a_decimal_comma_is_refused_saying_to_write_a_point() -> None:
    assert errors_of({"id": "L", "score": "85,5"})["score"] == (
        "must be a number: '85,5' has a decimal comma; write 85.5"
    )
    assert errors_of({"id": "L", "score": "1,200"})["score"] == "must be a number"


def test_emails_are_lowercased_and_strings_trimmed() -> None:
    lead = parse_lead({"id": " L1 ", "email": " Ana@Example.COM ", "company": "  Acme "})
    assert (lead.id, lead.email, lead.company) == ("L1", "ana@example.com", "Acme")


def test_crm_id_needs_its_system() -> None:
    assert "crm_system" in errors_of({"id": "L", "crm_id": "00Q1"})
    lead = parse_lead({"id": "L", "crm_id": "00Q1", "crm_system": "Salesforce"})
    assert lead.crm_system is CrmSystem.SALESFORCE


def test_unknown_keys_and_dotted_columns_become_custom_fields() -> None:
    lead = parse_lead(
        {"id": "L", "fields": {"plan": "pro"}, "fields.seats": "40", "utm_source": "ads"}
    )
    assert dict(lead.fields) == {"plan": "pro", "seats": "40", "utm_source": "ads"}


def test_nested_objects_and_oversized_text_are_rejected() -> None:
    errors = errors_of(
        {"id": "L", "company": {"name": "x"}, "title": "x" * 1001, "fields": {"a": {"b": 1}}}
    )
    assert set(errors) == {"company", "title", "fields.a"}


def test_a_lead_that_is_not_an_object_is_rejected() -> None:
    assert errors_of(["not", "an", "object"]) == {"lead": "a lead is a JSON object of fields"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"id": "L", "company": "Acme\ud800"}, "company"),
        ({"id": "L", "title": "a\x00b"}, "title"),
        ({"id": "L\ud800"}, "id"),
        ({"id": "L", "score": 10**400}, "score"),
        ({"id": "L", "employees": 10**40}, "employees"),
        ({"id": "L", "fields": {"note": "x\x00"}}, "fields.note"),
        ({"id": "L", "fields": {"tags": [{"a": 1}]}}, "fields.tags"),
        ({"id": "L", "fields": {"big": 2**60}}, "fields.big"),
    ],
)
def test_values_no_database_can_store_are_refused_with_a_sentence(
    data: dict[str, Any], field: str
) -> None:
    assert field in errors_of(data)


@pytest.mark.parametrize("raw", ["²", "1" * 5000, "١٢"])
def test_digits_that_are_not_ascii_or_absurdly_long_are_not_employee_counts(raw: str) -> None:
    assert "employees" in errors_of({"id": "L", "employees": raw})


def test_an_email_is_measured_after_lowercasing_and_a_crm_id_is_short() -> None:
    errors = errors_of(
        {"id": "L", "email": "İ" * 200 + "@x.example", "crm_system": "hubspot", "crm_id": "9" * 256}
    )
    assert set(errors) == {"email", "crm_id"}


# --- the same id again: a retry, or another lead ---------------------------------------------


def _no_email(**fields: Any) -> Any:
    return parse_lead({"id": "N-1", "first_name": "Ana", "last_name": "Müller", **fields})


def test_with_an_email_only_the_email_tells_two_leads_under_one_id_apart() -> None:
    first = parse_lead({"id": "L-1", "email": "Ana@BigCo.com", "first_name": "Ana"})
    assert told_apart(first, parse_lead({"id": "L-1", "email": "ana@bigco.com"})) is None
    other = parse_lead({"id": "L-1", "email": "bob@bigco.com", "first_name": "Ana"})
    assert told_apart(first, other) == "another e-mail address"
    assert told_apart(first, _no_email()) == "another e-mail address"


def test_without_an_email_a_name_written_otherwise_is_the_same_person() -> None:
    first = _no_email(phone="+49 30 1234-56", company="BigCo GmbH")
    same = parse_lead(
        {
            "id": "N-1",
            "first_name": "ana  müller",
            "phone": "+49 (30) 123456",
            "company": "BIGCO gmbh",
        }
    )
    assert told_apart(first, same) is None
    assert (
        told_apart(first, _no_email(phone="+49 30 1234-56", company="BigCo GmbH", score=9)) is None
    )


def test_without_an_email_each_identifying_field_that_differs_is_named() -> None:
    first = _no_email(company="BigCo", phone="555 0100", crm_system="hubspot", crm_id="7")
    assert told_apart(first, _no_email(company="Other", phone="555 0100")) == (
        "another company and CRM record"
    )
    changed = {"first_name": "Bob", "company": "Other", "phone": "555 0199"}
    assert told_apart(first, _no_email(crm_system="hubspot", crm_id="7", **changed)) == (
        "another name, company and phone number"
    )
