"""Where a lead's record lives in its CRM, as a link for people to open.

    salesforce "00Q5e00000AbCdE" -> https://acme.my.salesforce.com/lightning/r/Lead/00Q5e00000AbCdE/view
    hubspot "51"                 -> https://app.hubspot.com/contacts/1234567/record/0-1/51

The addresses are the settings' (`SALESFORCE_INSTANCE_URL`, `HUBSPOT_PORTAL_ID`,
`HUBSPOT_APP_URL`; `bootstrap.record_links` fills them in), already checked to be https site
addresses. The id came with the lead, from outside, so it is quoted whole: it can name one record
and never change where the link goes.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from routing.leads import MAX_ID_LENGTH
from routing.model import CrmSystem

_NAMES = {CrmSystem.SALESFORCE.value: "Salesforce", CrmSystem.HUBSPOT.value: "HubSpot"}


def crm_name(system: str | None) -> str:
    """The CRM's name as people write it ("the CRM" when unknown)."""
    return _NAMES.get(system or "", "the CRM")


# (crm_system, crm_id) -> the record's address, or None when there is none to give.
CrmLinks = Callable[[str | None, str | None], str | None]


def record_url(
    crm_system: str | None,
    crm_id: str | None,
    *,
    salesforce_instance_url: str | None,
    hubspot_portal_id: str | None,
    hubspot_app_url: str,
) -> str | None:
    """The record's address in its CRM; None for an unknown CRM, one whose setting is missing,
    or an id that is empty or longer than any a lead may carry."""
    crm_id = crm_id.strip() if crm_id else ""
    if not crm_id or len(crm_id) > MAX_ID_LENGTH:
        return None
    record = quote(crm_id, safe="")
    if crm_system == CrmSystem.SALESFORCE and salesforce_instance_url:
        return f"{salesforce_instance_url.rstrip('/')}/lightning/r/Lead/{record}/view"
    if crm_system == CrmSystem.HUBSPOT and hubspot_portal_id:
        # 0-1 is HubSpot's type id for contacts, where leads arrive.
        return f"{hubspot_app_url.rstrip('/')}/contacts/{hubspot_portal_id}/record/0-1/{record}"
    return None


def no_links(crm_system: str | None, crm_id: str | None) -> None:
    """No CRM is configured: no card carries a link."""
    return None
