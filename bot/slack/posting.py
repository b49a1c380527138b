"""Posting to Slack so that a post is never lost and never doubled: each post is tagged with its
outbox item's key, a post whose answer was lost is found again in the channel's history before
posting again, and every failure is sorted into retry, hold (429) or give up, with what an admin
does about it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.outbox import Attempt, GiveUp, Hold, Retry
from bot.slack.blocks import Message, clip
from bot.slack.check import REFUSED, REINSTALL, bot_token_fix

log = logging.getLogger(__name__)

# The metadata every post carries, so a post whose answer was lost can be found again.
POST_EVENT = "leadrouter_post"
HISTORY_PAGES = 10  # pages of 200 messages looked through for a post whose answer was lost
# How far before an item was queued its post is looked for: Slack's clock (a message's ts) and
# this server's may differ by that much.
CLOCK_SKEW_S = 300
# Slack errors worth trying again; any other error code will not go away by itself.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)
# Slack refusing a message for what it holds (a block it will not draw, a text too long): the
# same words as text alone go instead, so a lead reaches someone all the same.
CONTENT_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
MAX_TEXT_ALONE = 3_000  # the text of a message posted without its blocks
TEXT_ALONE_NOTE = (
    "\n(Slack would not show this message as drawn ({code}); leadrouter's App Home has it "
    "in full, with its buttons.)"
)
# A post Slack refuses because the bot token is refused is tried again no sooner than this: it
# waits for an admin (a new token, and a restart), and no destination is at fault.
TOKEN_REFUSED_RETRY_S = 60.0


class TokenRefused(Retry):
    """Slack refused the bot token itself (revoked, the app uninstalled): every post waits,
    where it is, until the token is fixed. Never given up: giving up would move leads from
    rep to rep, and to the queue, for a fault that is nobody's but the installation's."""


async def call(
    method: Callable[..., Awaitable[AsyncSlackResponse]], *, timeout_s: float, **arguments: Any
) -> AsyncSlackResponse:
    """One Web API call, given up after `timeout_s` (whatever the HTTP session's own timeout
    says)."""
    async with asyncio.timeout(timeout_s):
        return await method(**arguments)


async def post(
    client: AsyncWebClient,
    channel: str,
    message: Message,
    *,
    key: str,
    timeout_s: float,
    thread_ts: str | None = None,
) -> tuple[str, str]:
    """chat.postMessage tagged with `key`. Returns (channel, ts) as Slack answered; GiveUp saying
    what to fix when Slack refused it for where it was going. A message Slack refuses for its
    blocks goes again as text alone, saying so (Slack posted nothing the first time)."""
    try:
        try:
            response = await _post_message(client, channel, message, key, timeout_s, thread_ts)
        except SlackApiError as exc:
            code = _code(exc)
            if code not in CONTENT_REFUSED or not message.blocks:
                raise
            log.warning("outbox: Slack refused %s as drawn (%s); posting it as text", key, code)
            note = TEXT_ALONE_NOTE.format(code=code)
            text = clip(message.text, MAX_TEXT_ALONE - len(note)) + note
            alone = Message(text, [], mrkdwn=message.mrkdwn)
            response = await _post_message(client, channel, alone, key, timeout_s, thread_ts)
    except SlackApiError as exc:
        fix = _fix_for(exc, channel)
        # account_inactive: Slack says it of a token whose bot or workspace is gone, and of
        # some posts to a deactivated user; only the token's own answer tells which.
        inactive = fix is None and _code(exc) == "account_inactive" and _person(channel)
        if inactive and await _token_taken(client, timeout_s=timeout_s):
            fix = user_gone(channel)
        if fix is None:
            raise
        raise GiveUp(f"{failure_text(exc)}: {fix}") from exc
    return str(response["channel"]), str(response["ts"])


async def _post_message(
    client: AsyncWebClient,
    channel: str,
    message: Message,
    key: str,
    timeout_s: float,
    thread_ts: str | None,
) -> AsyncSlackResponse:
    return await call(
        client.chat_postMessage,
        timeout_s=timeout_s,
        channel=channel,
        text=message.text,
        blocks=message.blocks or None,
        mrkdwn=message.mrkdwn,
        unfurl_links=False,
        thread_ts=thread_ts,
        metadata={"event_type": POST_EVENT, "event_payload": {"key": key}},
    )


async def _token_taken(client: AsyncWebClient, *, timeout_s: float) -> bool:
    """Whether Slack takes the bot token now (auth.test answers); False when it cannot tell."""
    try:
        await call(client.auth_test, timeout_s=timeout_s)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return False
    return True


async def find_post(
    client: AsyncWebClient, channel: str, key: str, *, since: datetime, timeout_s: float
) -> tuple[str, str] | None:
    """The message tagged `key` in `channel` (a user id: the DM with them) posted since
    `since`, if there is one. A channel whose history the app may not read is reported and
    taken as holding none (the post goes out again: a second copy beats a lost card)."""
    try:
        if channel.startswith(("U", "W")):
            opened = await call(client.conversations_open, timeout_s=timeout_s, users=channel)
            channel = str(opened["channel"]["id"])
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await call(
                client.conversations_history,
                timeout_s=timeout_s,
                channel=channel,
                oldest=f"{since.timestamp() - CLOCK_SKEW_S:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == POST_EVENT and payload.get("key") == key:
                    return channel, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return None
    except SlackApiError as exc:
        failure = slack_failure(exc, timeout_s=timeout_s)
        # The DM of a deactivated user may not open (account_inactive, as for a dead token):
        # if the token works, the post itself says what became of them.
        inactive = _code(exc) == "account_inactive" and _person(channel)
        if inactive and await _token_taken(client, timeout_s=timeout_s):
            failure = GiveUp(user_gone(channel))
        if not isinstance(failure, GiveUp):
            raise
        log.warning(
            "outbox: could not look for %s in %s (%s); posting it again", key, channel, failure
        )
    return None


def slack_failure(exc: Exception, *, timeout_s: float) -> Retry | Hold | GiveUp | None:
    """What becomes of an attempt that failed with `exc`; None for an error that is not Slack's."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        code = str(response.get("error", "")) if response is not None else ""
        status = response.status_code if response is not None else 0
        error = failure_text(exc)
        if status == 429:
            return Hold(error, after=_retry_after(response))
        if code in REFUSED:
            return TokenRefused(
                f"{error}: {bot_token_fix(code)}; the post waits until then",
                after=TOKEN_REFUSED_RETRY_S,
            )
        if status >= 500 or code in _TRANSIENT_ERRORS:
            return Retry(error, unsure=True)  # Slack may have acted before it failed
        if code == "missing_scope" and response is not None and response.get("needed"):
            return GiveUp(f"{error}: the app lacks the scope {response.get('needed')}; {REINSTALL}")
        return GiveUp(error)
    if isinstance(exc, TimeoutError):
        return Retry(f"Slack did not answer within {timeout_s:g} s", unsure=True)
    if isinstance(exc, aiohttp.ClientError):
        return Retry(f"Slack could not be reached ({type(exc).__name__})", unsure=True)
    return None


def delivered(attempt: Attempt, lead_id: str | None, what: str) -> None:
    """What the attempt did in Slack, for its one log line once its end is committed."""
    attempt.notes["delivered"] = (lead_id, what)


def failure_text(exc: SlackApiError) -> str:
    response = exc.response
    code = str(response.get("error", "")) if response is not None else ""
    status = response.status_code if response is not None else 0
    return f"Slack answered {status} {code}".strip()


# How `failure_text` starts a reason that our own words about the refusal follow (`_fix_for`).
_ANSWERED_THEN_WORDS = re.compile(r"Slack answered \d{3} [a-z_]+: ")


def in_words(why: str) -> str:
    """A give-up's reason as a manager reads it in Slack: Slack's status and error code left
    out where our own words follow them (what became of the person or channel, and what to
    do), as they do for every refusal `_fix_for` knows. The outbox's log line and the lead's
    audit (`/routing why` for a manager) keep the code, for whoever looks it up."""
    return _ANSWERED_THEN_WORDS.sub("", why)


def _fix_for(exc: SlackApiError, channel: str) -> str | None:
    """What an admin does about a post Slack refused for where it was going, if that is why."""
    code = _code(exc)
    person = _person(channel)
    if person and code in ("user_not_found", "user_disabled", "cannot_dm_bot"):
        return user_gone(channel)
    where = channel if channel.startswith("#") else f"the channel {channel}"
    if code == "not_in_channel":
        return f"invite the bot to {where} (/invite @leadrouter there)"
    if code == "channel_not_found" and person:
        return (
            f"no Slack user {channel}: check their `slack:` member id in the policy; "
            "`leadrouter slack check` checks everyone's"
        )
    if code == "channel_not_found":
        return (
            f"the bot cannot see {where}; if it is a private channel, invite the bot to it "
            "(/invite @leadrouter there), else check the channel id in the policy"
        )
    if code == "is_archived":
        return f"{where} is archived: unarchive it or name another channel in the policy"
    return None


def user_gone(user: str) -> str:
    """What to do about a person whose Slack account is deactivated or gone."""
    return (
        f"Slack user {user} is deactivated or gone: give their current member id in the "
        "policy, or take them out of it; `leadrouter slack check` checks everyone's"
    )


def _person(channel: str) -> bool:
    """Whether a post to `channel` goes to a person (their DM with the app)."""
    return channel.startswith(("U", "W"))


def _code(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "")) if exc.response is not None else ""


def _retry_after(response: Any) -> float:
    """Slack's Retry-After, in seconds (one if it sent none or something unreadable)."""
    headers = getattr(response, "headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(1.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
