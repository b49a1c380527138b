"""`leadrouter slack check`: whether the Slack app is set up for the policy, before a lead
finds out. The bot token (auth.test), its scopes (auth.test's X-OAuth-Scopes header), in Socket
Mode the app-level token (apps.connections.open, whose one-time URL is never opened), the Slack
id of every rep and manager (users.info, or users.lookupByEmail for those named by e-mail alone)
and every channel the policy names (conversations.history: readable exactly where the bot is a
member, so nothing is posted to find out). Each problem comes with what to do about it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from routing.policy import Manager, Policy, Rep
from routing.policy_schema import SLACK_CHANNEL_ID, SLACK_MEMBER_ID

# The bot scopes the app uses (manifest.yml asks for exactly these), and what each is for.
REQUIRED_SCOPES = {
    "chat:write": "to post the cards and update them",
    "commands": "for /routing",
    "im:write": "to open each person's DM with the app",
    "im:history": "to find a DM card whose answer was lost before posting it again",
    "channels:history": "to find a lost post in a public channel, and to check the bot is in it",
    "groups:history": "the same in a private channel",
    "users:read": "to check each person's Slack id, and recognise people named by e-mail",
    "users:read.email": "to find people the policy names by e-mail alone",
}
SCOPES_HEADER = "x-oauth-scopes"
COPY_MEMBER_ID = "copy their member id (U…) from their Slack profile: ⋮, Copy member ID"
# Not "paste manifest.yml again": that would drop what was set by hand (HTTP mode's URLs, Sign in
# with Slack's redirect URL).
REINSTALL = "add it under OAuth & Permissions, Scopes, and reinstall the app (its Install App page)"
# Slack's answers to a token that is not (or no longer) one.
REVOKED = frozenset({"token_revoked", "account_inactive", "token_expired"})
REFUSED = frozenset({"invalid_auth", "not_authed", "not_allowed_token_type"}) | REVOKED
NEW_APP_TOKEN = (
    "generate one with connections:write on the app's Basic Information page, under App-Level "
    "Tokens, and set SLACK_APP_TOKEN to it (xapp-…)"
)


@dataclass(frozen=True, slots=True)
class Finding:
    what: str  # "ann: UANN", or the problem
    fix: str | None = None  # None: all is well

    @property
    def problem(self) -> bool:
        return self.fix is not None


@dataclass
class SlackCheck:
    workspace: str | None = None  # "Acme (as @leadrouter)", once the token is taken
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(finding.problem for finding in self.findings)


async def check_slack(
    client: AsyncWebClient, policy: Policy, *, app_token: str | None = None
) -> SlackCheck:
    """`app_token`: SLACK_APP_TOKEN, in Socket Mode."""
    result = SlackCheck()
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        code = _code(exc)
        result.findings.append(
            Finding(f"Slack refused SLACK_BOT_TOKEN ({code})", bot_token_fix(code))
        )
        return result
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.findings.append(
            Finding(
                f"cannot reach Slack at {client.base_url} ({exc})",
                "check the network, a proxy (HTTPS_PROXY), or SLACK_API_URL",
            )
        )
        return result
    result.workspace = f"{auth.get('team')} (as @{auth.get('user')})"
    if app_token is not None:
        result.findings.append(await _app_token(client, app_token))
    granted = _scopes(auth)
    missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
    result.findings += [
        Finding(f"missing scope {scope}, needed {REQUIRED_SCOPES[scope]}", REINSTALL)
        for scope in missing
    ] or [Finding(f"scopes: all {len(REQUIRED_SCOPES)} the app uses")]
    people: list[Rep | Manager] = [*policy.reps.values(), *policy.managers.values()]
    for person in people:
        result.findings.append(await _person(client, person, missing))
    for channel, used_for in _channels(policy).items():
        result.findings.append(await _channel(client, channel, used_for, missing))
    return result


def bot_token_fix(code: str) -> str:
    if code in REVOKED:
        return (
            "the token was revoked (the app uninstalled, or its tokens reset): install the app "
            "again on its Install App page and set SLACK_BOT_TOKEN to the new Bot User OAuth "
            "Token (xoxb-…)"
        )
    return (
        "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…), on its Install App "
        "page once the app is installed to the workspace"
    )


def app_token_fix(code: str) -> str | None:
    """What to do about SLACK_APP_TOKEN when apps.connections.open answers `code`; None when
    the token is not what Slack refused."""
    if code == "missing_scope":
        return "the token lacks the connections:write scope: " + NEW_APP_TOKEN
    if code in REVOKED:
        return "the token was revoked: " + NEW_APP_TOKEN
    if code in REFUSED:
        return "it is not one of the app's app-level tokens: " + NEW_APP_TOKEN
    return None


async def _app_token(client: AsyncWebClient, app_token: str) -> Finding:
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        code = _code(exc)
        fix = app_token_fix(code)
        if fix is None:
            return Finding(f"SLACK_APP_TOKEN: Slack answered {code}", "run the check again")
        return Finding(f"Slack refused SLACK_APP_TOKEN ({code})", fix)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Finding(f"SLACK_APP_TOKEN: Slack did not answer ({exc})", "run the check again")
    return Finding("SLACK_APP_TOKEN: Socket Mode can connect")


async def _person(client: AsyncWebClient, person: Rep | Manager, missing: list[str]) -> Finding:
    if person.slack is not None:
        if not SLACK_MEMBER_ID.fullmatch(person.slack):
            return Finding(f"{person.id}: `{person.slack}` is a name, not a member id", _set_id())
        if "users:read" in missing:
            return Finding(f"{person.id}: {person.slack} (not checked: see the missing scope)")
        return await _known(
            client.users_info(user=person.slack),
            person,
            found=lambda user: f"{person.id}: {person.slack}",
            absent=Finding(f"{person.id}: no Slack user {person.slack}", _set_id()),
        )
    if not person.email:
        return Finding(
            f"{person.id}: neither a Slack id nor an e-mail in the policy",
            _set_id() + ", or give the `email:` they use in Slack",
        )
    if "users:read.email" in missing:
        return Finding(f"{person.id}: not looked up by e-mail (see the missing scope)")
    return await _known(
        client.users_lookupByEmail(email=person.email.strip()),
        person,
        found=lambda user: f"{person.id}: {user.get('id')} (found by e-mail)",
        absent=Finding(
            f"{person.id}: no Slack user has the e-mail {person.email}",
            "give the e-mail they use in Slack, or " + _set_id(),
        ),
    )


async def _known(
    call: Awaitable[AsyncSlackResponse],
    person: Rep | Manager,
    *,
    found: Callable[[dict[str, Any]], str],
    absent: Finding,
) -> Finding:
    try:
        response = await call
    except SlackApiError as exc:
        if _code(exc) in ("user_not_found", "users_not_found"):
            return absent
        return Finding(f"{person.id}: Slack answered {_code(exc)}", "run the check again")
    user = response.get("user") or {}
    if user.get("deleted"):
        meant = (
            "no alert or digest reaches them: the other managers are told instead"
            if isinstance(person, Manager)
            else "no card reaches them: their leads go to others"
        )
        return Finding(
            f"{person.id}: {user.get('id')} is deactivated in Slack ({meant})",
            f"take them out of the policy, or {_set_id()}",
        )
    return Finding(found(user))


async def _channel(
    client: AsyncWebClient, channel: str, used_for: str, missing: list[str]
) -> Finding:
    if not SLACK_CHANNEL_ID.fullmatch(channel):
        return Finding(
            f"{channel}: a channel's name, not its id ({used_for})",
            "give the channel's id instead (C…, at the bottom of the channel's About tab)",
        )
    if "channels:history" in missing or "groups:history" in missing:
        return Finding(f"{channel} ({used_for}): not checked (see the missing scope)")
    try:
        await client.conversations_history(channel=channel, limit=1)
    except SlackApiError as exc:
        code = _code(exc)
        if code == "not_in_channel":
            return Finding(
                f"{channel}: the bot is not in this channel ({used_for})",
                "invite it: /invite @leadrouter in that channel (Slack takes the bot out of "
                "a channel archived: unarchive it first, or name another channel)",
            )
        if code == "channel_not_found":
            return Finding(
                f"{channel}: the bot cannot see this channel ({used_for})",
                "if it is private, invite the bot (/invite @leadrouter in it); otherwise give "
                "the channel's id (C…, at the bottom of the channel's About tab) in the policy",
            )
        return Finding(f"{channel} ({used_for}): Slack answered {code}", "run the check again")
    if "chat:write" in missing:  # the scope's own finding says what to do
        return Finding(
            f"{channel}: the bot is in this channel, but cannot post without chat:write "
            f"({used_for})"
        )
    return Finding(f"{channel}: the bot can post there ({used_for})")


def _channels(policy: Policy) -> dict[str, str]:
    """Every channel the policy posts to, with what for, in the policy's order."""
    named: dict[str, str] = {}
    for team in policy.teams.values():
        if team.channel:
            named.setdefault(team.channel, f"team {team.name}")
    for rule in policy.rules:
        for target in (rule.assign, rule.fallback):
            if target is not None and target.channel:
                named.setdefault(target.channel, f"the {target.name} queue")
    if policy.fallback.channel:
        named.setdefault(policy.fallback.channel, f"the {policy.fallback.name} queue")
    return named


def _scopes(response: AsyncSlackResponse) -> set[str]:
    headers = {key.lower(): value for key, value in (response.headers or {}).items()}
    value = headers.get(SCOPES_HEADER, "")
    text = ",".join(value) if isinstance(value, list) else str(value)
    return {scope.strip() for scope in text.split(",") if scope.strip()}


def _code(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "")) if exc.response is not None else ""


def _set_id() -> str:
    return f"set `slack:` in the policy: {COPY_MEMBER_ID}"
