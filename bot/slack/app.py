"""The Slack app: one factory for the Bolt app and its Web API client, and what runs around
every listener.

Every listener (registered by feature: `offers`, `availability`, `home`, `managers`,
`routing_command`) acks first, then makes one service call and renders the answer. Requests
Slack sends again (retries of events, repeated actions) are dropped by a middleware before any
listener runs, keyed in the database so that it holds across restarts and replicas. A request the
service refuses (`ServiceError`) is answered with its sentence by the one error handler; any
other error is logged with an id.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.service.errors import ServiceError
from bot.service.requests import first_time
from bot.service.unit_of_work import UnitOfWork
from bot.settings import Settings
from bot.slack import blocks
from bot.slack.availability import register_availability
from bot.slack.home import publish_home, register_home
from bot.slack.managers import register_managers
from bot.slack.offers import register_offers
from bot.slack.parts import Respond, SlackParts, answer
from bot.slack.people import SlackPeople
from bot.slack.routing_command import register_routing_command
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (
    "leadrouter cannot reach its database just now, so nothing was done; try again in a minute."
)

ACK_POLL_S = 0.01  # how often Bolt's asyncio runner looks for a listener's ack


def build_client(settings: Settings, *, retries: bool = True) -> AsyncWebClient:
    """The Web API client: `SLACK_API_URL` as its base. With `retries`, it tries connection
    errors, 429s (after Retry-After) and 5xx again a few times itself (for answers to people);
    the outbox's client does not (`bot.slack.delivery` retries, paces and deduplicates)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=handlers if retries else [],
    )


def build_slack_app(settings: Settings, parts: SlackParts, client: AsyncWebClient) -> AsyncApp:
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    with _token_warning_dropped():
        app = AsyncApp(
            client=client,
            signing_secret=secret,
            # Socket Mode has no signature to check; over HTTP every request is verified.
            request_verification_enabled=not settings.socket_mode,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
    register(app, parts)
    return app


class _SameToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


@contextmanager
def _token_warning_dropped() -> Iterator[None]:
    """Bolt, given no `token`, reads SLACK_BOT_TOKEN from the environment by itself, and then
    warns at start that the `client` it was also given wins over that token. The client is
    built from that very setting, so the warning only alarms whoever reads the log: that one
    line (in Bolt's own words) is dropped while the app is built, and nothing else."""
    bolt_log = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")
    same_token = _SameToken()
    bolt_log.addFilter(same_token)
    try:
        yield
    finally:
        bolt_log.removeFilter(same_token)


def register(app: AsyncApp, parts: SlackParts) -> None:
    app.middleware(_drop_repeats(parts.uow))
    if parts.people is not None:
        app.middleware(_recognise(parts.people))
    register_offers(app, parts)
    register_availability(app, parts)
    register_home(app, parts)
    register_managers(app, parts)
    register_routing_command(app, parts)

    @app.error
    async def on_error(
        error: Exception,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: Respond | None,
        response: BoltResponse | None,
    ) -> BoltResponse | None:
        """Every listener's and middleware's exception: a refusal (`ServiceError`) is said to
        whoever asked, as the sentence it carries, and so is a database out of reach (to try
        again shortly; acknowledged, if it was not yet, since they were told); anything else
        is logged with an id."""
        try:
            if isinstance(error, ServiceError):
                # As written: a refusal may quote a lead's id.
                await answer(client, body, respond, blocks.one_line(blocks.plainly(str(error))))
                if (body.get("view") or {}).get("type") == "home":
                    # Refused from an App Home that no longer holds: show it as it stands.
                    await publish_home(client, parts, body["user"]["id"])
            elif isinstance(error, DatabaseUnavailable):
                # Nothing was done (what was under way rolled back): the same click or command
                # in a minute works, and the person should know to send it, not wait for it.
                log.warning("slack: %s; the person who asked is told to try again", error)
                await answer(client, body, respond, DATABASE_UNAVAILABLE)
                if response is not None:  # it failed before its acknowledgement (a middleware)
                    return BoltResponse(status=200, body="")
            else:
                incident = uuid.uuid4().hex[:8]
                log.error(
                    "slack: listener failed (error id %s): %r", incident, error, exc_info=error
                )
        finally:
            if response is None:
                await _after_the_acknowledgement()
        return None


async def _after_the_acknowledgement() -> None:
    """Return from the error handler only once Bolt has answered Slack with the listener's ack.

    A listener raising after its `ack()` is handed here with no response (it was acknowledged),
    and once this handler returns, Bolt's asyncio runner sets the acknowledgement to that None
    (slack_bolt/listener/asyncio_runner.py, `ack.response = response`), while the request waits
    for it in steps of ACK_POLL_S. A refusal raised in the first step would lose the ack: the
    request answered 404 "unhandled" after three seconds, and Slack tells the user it failed.
    Waiting longer than a step lets the request take the ack first: asyncio wakes timers in the
    order of their deadlines, and the request's falls earlier."""
    await asyncio.sleep(ACK_POLL_S * 5)


def _drop_repeats(uow: UnitOfWork) -> Callable[..., Awaitable[Any]]:
    async def middleware(
        body: dict[str, Any], next: Callable[[], Awaitable[Any]], payload: dict[str, Any]
    ) -> Any:
        key = _request_key(body)
        if key is not None and not await first_time(uow, key):
            log.info("slack: a repeat of %s, acknowledged and ignored", key)
            return BoltResponse(status=200, body="")
        return await next()

    return middleware


def _recognise(people: SlackPeople) -> Callable[..., Awaitable[Any]]:
    """Before any listener: a user the policy names by e-mail alone is known as themselves,
    even before a card of theirs went out (which is when they are otherwise looked up)."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        user, event = body.get("user"), body.get("event")
        member = user.get("id") if isinstance(user, dict) else body.get("user_id")
        if member is None and isinstance(event, dict):
            member = event.get("user")  # app_home_opened, the App Home of someone new
        if isinstance(member, str) and member:
            await people.who_is(member)
        return await next()

    return middleware


def _request_key(body: dict[str, Any]) -> str | None:
    """What makes a request the same request when Slack sends it again."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        return f"action:{body.get('user', {}).get('id')}:{actions[0].get('action_ts')}"
    if body.get("type") == "view_submission":
        view = body.get("view", {})
        return f"view:{view.get('id')}:{view.get('hash')}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None
