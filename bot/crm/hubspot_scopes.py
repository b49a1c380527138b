"""The HubSpot scopes leadrouter uses, each with what needs it, and what `crm check` makes of
what HubSpot says of the token (`POST /oauth/v2/private-apps/get/access-token-info`: its
account, its app, its scopes), write scope included, without writing anything.

Plain data in, sentences out: the call itself is the adapter's (`bot.crm.hubspot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.crm.base import SetupCheck

TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
APP = "Settings → Integrations → Private Apps → the app"
WHERE = f"{APP} → Scopes"
WRITE = "crm.objects.contacts.write"

# (scope, what needs it), for everything leadrouter does with HubSpot whatever the policy says.
ALWAYS = (
    ("crm.objects.owners.read", "finding each rep's HubSpot owner"),
    ("crm.objects.contacts.read", "reading the contacts HubSpot announces"),
    (WRITE, "owner write-back (setting a claimed lead's contact owner)"),
)
ACCOUNTS = (("crm.objects.companies.read", "the companies sync (crm.hubspot.sync_accounts_every)"),)
OUTCOMES = (
    ("crm.objects.deals.read", "reading outcomes: deals (crm.hubspot.poll_outcomes_every)"),
    (
        "sales-email-read",
        "reading outcomes: e-mails, which HubSpot redacts without it "
        "(crm.hubspot.poll_outcomes_every)",
    ),
)


def in_use(*, reads_accounts: bool, reads_outcomes: bool) -> list[tuple[str, str]]:
    """Each scope leadrouter's calls need as the policy sets it up, with what needs it."""
    return [
        *ALWAYS,
        *(ACCOUNTS if reads_accounts else ()),
        *(OUTCOMES if reads_outcomes else ()),
    ]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What HubSpot says of a private app's token."""

    hub_id: str  # the account (portal) it belongs to
    app_id: str | None
    scopes: frozenset[str]


def token_info(answer: Any) -> TokenInfo | None:
    """The token-info call's answer read, None when it is not in the shape HubSpot documents
    (`{"hubId": 62515, "appId": 1553569, "scopes": ["crm.objects.contacts.read", ...]}`)."""
    if not isinstance(answer, dict):
        return None
    hub, app, scopes = answer.get("hubId"), answer.get("appId"), answer.get("scopes")
    if not _an_id(hub) or not isinstance(scopes, list):
        return None
    if not all(isinstance(scope, str) for scope in scopes):
        return None
    return TokenInfo(str(hub), str(app) if _an_id(app) else None, frozenset(scopes))


def checked(info: TokenInfo, uses: list[tuple[str, str]], *, portal_id: str | None) -> SetupCheck:
    """Each scope in use the token lacks, and a HUBSPOT_PORTAL_ID of another account, as a
    problem; what the token was seen to have as verified."""
    problems = [
        f"the token lacks the scope {scope}, needed for {what}: add it in HubSpot ({WHERE}) "
        "and commit the change"
        for scope, what in uses
        if scope not in info.scopes
    ]
    held = [f"{scope} for {what}" for scope, what in uses if scope in info.scopes]
    app = f"private app {info.app_id} in " if info.app_id else ""
    verified: list[str] = []
    notes: list[str] = []
    if held:
        which = "every scope in use" if len(held) == len(uses) else "these scopes in use"
        verified.append(
            f"the token ({app}HubSpot account {info.hub_id}) has {which}: " + "; ".join(held)
        )
    if portal_id is None:
        notes.append(
            f"HUBSPOT_PORTAL_ID is not set: set HUBSPOT_PORTAL_ID={info.hub_id} (the token's "
            "account) and cards link to each HubSpot lead's contact"
        )
    elif portal_id != info.hub_id:
        problems.append(
            f"the token belongs to HubSpot account {info.hub_id}, not to HUBSPOT_PORTAL_ID "
            f"{portal_id}: cards' links would open records in another account. Set "
            f"HUBSPOT_PORTAL_ID={info.hub_id}, or HUBSPOT_ACCESS_TOKEN to a token of account "
            f"{portal_id}"
        )
    else:
        verified.append(f"HUBSPOT_PORTAL_ID {portal_id} is the token's account")
    return SetupCheck(tuple(problems), tuple(verified), tuple(notes))


def not_told(why: str) -> str:
    """The note when HubSpot would not say which scopes the token has (`why`)."""
    return (
        f"HubSpot did not say which scopes the token has ({why}), so it was checked by "
        f"reading, as before, and {WRITE}, which owner write-back needs, could not be "
        f"checked without writing: make sure the private app has it ({WHERE})"
    )


def _an_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isascii() and value.isdigit()
