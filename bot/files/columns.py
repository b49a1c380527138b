"""How the headers of people's files name a lead's fields and an account's columns, whatever
their case or spacing or however a CRM export heads them ("First Name", "Billing Country"), and
so whether a header is a file of the other kind: an accounts export given to `import`, or a
file of leads to `accounts import`, would otherwise be read as best it could be, without a word.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.files.tables import letters_of
from routing.leads import KNOWN_FIELDS

ACCOUNT_COLUMNS = ("id", "name", "domain", "owner", "tier", "country", "state")

# Lead fields by the letters of the names people and CRM exports head them with: the field's own
# name in any case, spacing or punctuation ("First Name", "E-Mail"), and the headers of
# Salesforce's and HubSpot's lead exports ("No. of Employees", "Company Name", "Country/Region").
_LEAD_COLUMNS = {letters_of(field): field for field in KNOWN_FIELDS} | {
    letters_of(alias): field
    for field, aliases in {
        "email": ("Email Address",),
        "company": ("Company Name", "Organization", "Organisation"),
        "title": ("Job Title",),
        "phone": ("Phone Number",),
        "source": ("Lead Source",),
        "employees": ("No. of Employees", "Number of Employees", "Employee Count"),
        "country": ("Country/Region", "Country Code"),
        "state": ("State/Province", "State/Region", "Province"),
        "website": ("Website URL", "Web Site"),
        "domain": ("Company Domain", "Company Domain Name"),
        "last_name": ("Surname",),
    }.items()
    for alias in aliases
}

# The account columns by their letters alone, under their own names and those CRM exports give
# them: Salesforce's "Account ID", "Account Name" and "Website"; an account's location also after
# "Billing" (Salesforce's "Billing Country" and "BillingState", HubSpot's "Country/Region" and
# "State/Region"; "Region" alone is left out: it is as often a sales region).
_ACCOUNT_ALIASES = (
    {letters_of(column): column for column in ACCOUNT_COLUMNS}
    | {
        letters_of(alias): column
        for column, aliases in {
            "id": ("Account ID",),
            "name": ("Account Name", "Company Name"),
            "domain": ("Website", "Company Domain Name"),
            # Salesforce's and HubSpot's owner columns hold the owner's name (or e-mail).
            "owner": ("Account Owner", "Account Owner Email", "Owner Email", "Company Owner"),
        }.items()
        for alias in aliases
    }
    | {
        letters_of(f"{prefix}{alias}"): column
        for column, aliases in {
            "country": ("Country", "Country/Region", "Country Code"),
            "state": ("State", "State/Province", "State/Region", "Province", "State Code"),
        }.items()
        for alias in aliases
        for prefix in ("", "Billing ")
    }
)

# A lead's columns that name the person: no accounts export has them (a phone it may have:
# Salesforce's accounts have one), so they say a file is of leads.
_PERSON = frozenset({"email", "first_name", "last_name"})
# An account's columns no lead has (a lead's company is `company`; who owns it is routing's
# answer, not a column): with no contact column beside them, the file is of accounts.
_ACCOUNT_ONLY = frozenset({"name", "owner"})


def lead_column(written: str) -> str:
    """A lead field's name however the header writes it ("E-Mail" is email, "First Name"
    first_name); any other column keeps its name, as a custom field."""
    stripped = written.strip()
    return _LEAD_COLUMNS.get(letters_of(stripped), stripped)


def account_column(written: str) -> str:
    name = written.strip().lower()
    return _ACCOUNT_ALIASES.get(letters_of(name), name)


def accounts_header(header: Sequence[str]) -> bool:
    """The header is an accounts file's, not a file of leads': it names an account's name or
    owner ("Account Name", "owner") and no person (their e-mail, first or last name)."""
    leads = {lead_column(column) for column in header}
    return not leads & _PERSON and any(
        account_column(column) in _ACCOUNT_ONLY and lead_column(column) not in KNOWN_FIELDS
        for column in header
    )


def leads_header(header: Sequence[str]) -> bool:
    """The header is a file of leads', not an accounts file's: it names a person (their e-mail,
    first or last name), which no account has."""
    return any(
        lead_column(column) in _PERSON and account_column(column) not in ACCOUNT_COLUMNS
        for column in header
    )
