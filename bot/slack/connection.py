"""Leadrouter's link to Slack, kept up in the background: intake never waits for Slack.

In Socket Mode the link is the websocket: opened with the app token (`apps.connections.open`,
then the socket), watched, and opened again when it drops. Over HTTP, Slack calls leadrouter
and there is nothing to hold open: `auth.test` tells whether Slack answers the bot token. Either
way a failed try is tried again after 1 s, 2 s, 4 s... up to a minute, with one log line for each
change of state (not one per try), and `state` says where it stands at any moment, for
`/healthz` and the metrics. Cards and other posts do not wait for the link: the outbox retries
them on its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.check import REFUSED, app_token_fix, bot_token_fix

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
CALL_TIMEOUT_S = 10.0
WATCH_EVERY_S = 1.0  # Socket Mode: how often the websocket is looked at (no call to Slack)
PROBE_EVERY_S = 60.0  # HTTP mode: how often auth.test asks Slack while it answers
# slack_sdk's Socket Mode client logs at INFO for every session and, when a socket cannot open,
# a traceback per retry; the state lines here say what an operator needs, once.
SDK_LOG = "leadrouter.slack.socket_mode"


class SlackState(StrEnum):
    OFF = "off"  # SLACK_BOT_TOKEN is not set
    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNREACHABLE = "unreachable"  # the last try failed (`SlackConnection.problem` says why)


@dataclass(kw_only=True)
class SlackConnection:
    client: AsyncWebClient  # with no retry handlers of its own: the backoff here is the retry
    app: AsyncApp | None = None  # Socket Mode: the Bolt app its envelopes go to
    app_token: str | None = None  # set: Socket Mode
    first_backoff_s: float = FIRST_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    call_timeout_s: float = CALL_TIMEOUT_S
    state: SlackState = SlackState.CONNECTING
    problem: str | None = None  # why the last try failed, while unreachable
    _handler: AsyncSocketModeHandler | None = field(default=None, repr=False)

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    async def run(self) -> None:
        """Keep the link up until cancelled; the websocket is closed on the way out."""
        delay = self.first_backoff_s
        try:
            while True:
                problem = await self._try()
                if problem is None:
                    self._now(SlackState.CONNECTED)
                    delay = self.first_backoff_s
                    await asyncio.sleep(WATCH_EVERY_S if self.socket_mode else PROBE_EVERY_S)
                    continue
                self._now(SlackState.UNREACHABLE, problem)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        finally:
            if self._handler is not None:
                await self._handler.close_async()  # type: ignore[no-untyped-call]  # slack_bolt

    async def _try(self) -> str | None:
        """None when Slack is there (the websocket is open, or auth.test answered), else why
        not, as a sentence."""
        try:
            async with asyncio.timeout(self.call_timeout_s):
                if not self.socket_mode:
                    await self.client.auth_test()
                    return None
                handler = self._socket()
                if await handler.client.is_connected():
                    return None
                if self.state is SlackState.CONNECTED:
                    self._now(SlackState.CONNECTING, "the connection to Slack was lost")
                opened = await self.client.apps_connections_open(app_token=self.app_token or "")
                handler.client.wss_uri = str(opened["url"])
                await handler.client.connect()  # type: ignore[no-untyped-call]  # slack_sdk
                return None
        except SlackApiError as exc:
            code = str(exc.response.get("error", "")) if exc.response is not None else ""
            # In Socket Mode the one call made here is apps.connections.open, with the app token.
            fix = app_token_fix(code) if self.socket_mode else None
            if fix is not None:
                return f"Slack refused SLACK_APP_TOKEN ({code}): {fix}"
            if not self.socket_mode and code in REFUSED:
                return f"Slack refused SLACK_BOT_TOKEN ({code}): {bot_token_fix(code)}"
            status = exc.response.status_code if exc.response is not None else 0
            return f"Slack answered {status} {code}".rstrip()
        except TimeoutError:
            return f"Slack did not answer within {self.call_timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"cannot reach {self.client.base_url}: {exc}"

    def _socket(self) -> AsyncSocketModeHandler:
        """The Socket Mode handler, made on first use (it needs the running loop). slack_sdk's
        own reconnecting is off: `run` watches the socket and opens it again, with backoff."""
        if self._handler is None:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            assert self.app is not None and self.app_token is not None
            sdk_log = logging.getLogger(SDK_LOG)
            sdk_log.setLevel(logging.WARNING)
            sdk_log.addFilter(_no_retry_tracebacks)
            handler = AsyncSocketModeHandler(
                self.app, self.app_token, logger=sdk_log, web_client=self.client
            )
            handler.client.auto_reconnect_enabled = False
            handler.client.default_auto_reconnect_enabled = False
            self._handler = handler
        return self._handler

    def _now(self, state: SlackState, problem: str | None = None) -> None:
        self.problem = problem
        if state is self.state:
            return
        self.state = state
        mode = " in Socket Mode" if self.socket_mode else ""
        if state is SlackState.CONNECTED:
            log.info("connected to Slack%s", mode)
        elif state is SlackState.CONNECTING:
            log.warning("%s; connecting again", problem)
        else:
            log.warning(
                "Slack is unreachable (%s); leads are taken all the same and their cards wait "
                "in the outbox; trying again in the background",
                problem,
            )


def _no_retry_tracebacks(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Failed to connect")
