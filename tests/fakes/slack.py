"""A fake Slack Web API on a loopback port, and the signed requests Slack sends the app.

The fake answers the methods leadrouter calls with Slack's response shapes (trimmed to what a
client reads), records each call, and can be told to fail, stall or rate-limit the way Slack
does. Tests point the real `AsyncWebClient` (or `leadrouter serve`) at `api_url`, as
bolt-python's `tests/mock_web_api_server/` does, instead of patching the client.

It is also Slack's side of Socket Mode: `apps.connections.open`, called with an app-level token
(xapp-), answers a one-time `ws://` URL on the same port; a client that connects is greeted with
Slack's `hello`, and the test pushes envelopes to it (`send_envelope`) and reads its acks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0001"
APP_ID = "A0001"
BOT_USER_ID = "UBOT"
BOT_ID = "B0001"
DEFAULT_TZ = "America/New_York"
# Nothing listens on port 1, so an app that calls a response_url fails loudly.
RESPONSE_URL = "http://127.0.0.1:1/response"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Methods that take an app-level token (xapp-); every other method takes a bot or user token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
# The bot token's scopes unless a test says otherwise (`FakeSlack.scopes`): manifest.yml's.
DEFAULT_SCOPES = (
    "channels:history",
    "chat:write",
    "commands",
    "groups:history",
    "im:history",
    "im:write",
    "users:read",
    "users:read.email",
)
# The scope a method needs, where a test may leave it out (Slack answers missing_scope).
_NEEDED_SCOPE = {"users.info": "users:read", "users.lookupByEmail": "users:read.email"}
SOCKET_PATH = "/link/"
# The envelope types Slack sends over a Socket Mode connection.
ENVELOPE_TYPES = ("events_api", "interactive", "slash_commands")

# Fields slack_sdk sends as JSON strings when a method goes out as a form body.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
_POLL_S = 0.01

Params = dict[str, Any]
Body = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request to the fake. For a refused one, `status` and `error` say how it was answered."""

    method: str
    params: Params
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    error: str | None = None


@dataclass(frozen=True)
class Ack:
    """What a Socket Mode client sent back for an envelope: its id and, when the envelope
    accepts one, the response payload (a slash command's answer, a modal's errors)."""

    envelope_id: str
    payload: Body | None
    at: float  # time.monotonic() when it arrived


@dataclass
class Connection:
    """One Socket Mode websocket a client opened; `closed_at` is set once it has closed."""

    ticket: str
    opened_at: float
    closed_at: float | None = None
    close_code: int | None = None  # 1000 when the client closed it cleanly, 1006 when it vanished
    socket: web.WebSocketResponse | None = field(default=None, repr=False, compare=False)

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass
class Held:
    """A call the fake holds as it arrives, before Slack takes it (see `FakeSlack.hold`)."""

    method: str
    loop: asyncio.AbstractEventLoop = field(repr=False)  # the fake's
    arrived: threading.Event = field(default_factory=threading.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let the call through, from any thread: it is taken (or refused) and answered as
        any other."""
        self.loop.call_soon_threadsafe(self.released.set)


@dataclass
class _Failure:
    status: int
    times: int
    retry_after: int | None
    error: str | None


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _Answer:
    body: Body
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body.get("ok") is True


class FakeSlack:
    """Slack's Web API at `api_url`: pass it as `base_url` to `AsyncWebClient`.

    `calls` holds the requests answered `ok: true`, in arrival order; `refused` holds the rest
    (missing token, injected failures, rate limits, unknown methods, bad arguments), each with
    the status and error it got. A call is recorded when it arrives, before any `delay`.
    """

    def __init__(self, *, post_rate_per_channel: float | None = None, post_burst: int = 3) -> None:
        self.calls: list[Call] = []
        self.refused: list[Call] = []
        self.user_tz: dict[str, str] = {}
        self.user_email: dict[str, str] = {}
        # Member ids no user of the workspace has (users.info answers user_not_found).
        self.unknown_users: set[str] = set()
        # Member ids of users deactivated by an admin: users.info still finds them, marked
        # `deleted`, and conversations.open refuses their DM (user_disabled); a post to the
        # member id is taken all the same, as Slack takes it, into a DM nobody reads.
        self.deactivated_users: set[str] = set()
        # The error every call with the bot token gets once the token is no longer one
        # (token_revoked, invalid_auth, account_inactive), auth.test included: None while it is.
        self.token_error: str | None = None
        # The error chat.postMessage and chat.update answer a message with blocks (Slack will
        # not draw them: invalid_blocks, msg_too_long); text alone is taken. None: all are.
        self.blocks_refused: str | None = None
        # The bot token's scopes, as auth.test's X-OAuth-Scopes header lists them.
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        # channel -> the error posting or reading there gets: not_in_channel for a channel the
        # bot was not invited to, channel_not_found for a private one (or none at all).
        self.channel_errors: dict[str, str] = {}
        # channel -> the error conversations.history answers there (a scope the app lacks)
        self.history_refused: dict[str, str] = {}
        # (channel, ts) -> the message as last posted or updated (and not deleted).
        self.messages: dict[tuple[str, str], Body] = {}
        # (channel, ts) of every message deleted, in order.
        self.deleted: list[tuple[str, str]] = []
        # Socket Mode: every websocket opened, in order, and every ack received, in order.
        self.connections: list[Connection] = []
        self.acks: list[Ack] = []
        self._tickets: set[str] = set()
        self._ticket_numbers = itertools.count(1)
        self._envelope_numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._post_rate = post_rate_per_channel
        self._post_burst = post_burst
        self._buckets: dict[str, _Bucket] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._after_answer: dict[str, list[Callable[[Call], None]]] = {}
        self._holds: dict[str, list[Held]] = {}
        # The server may run on another thread's loop (`in_thread`) than the test reading it.
        self._lock = threading.Lock()
        self._last_ts_us = 0
        self._view_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, Callable[[Params], Body]] = {
            "apps.connections.open": self._open_connection,
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "conversations.history": self._history,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._open_conversation,
            "views.open": self._open_view,
            "views.publish": self._publish_view,
            "views.update": self._update_view,
            "users.info": self._user_info,
            "users.lookupByEmail": self._lookup_by_email,
        }

    # -- running ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("this FakeSlack is already running")
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response/{key}", self._respond)
        app.router.add_get(SOCKET_PATH, self._socket)
        # A short shutdown_timeout: stopping should not wait out a `delay` nobody is awaiting.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        with self._lock:
            sockets = [c.socket for c in self.connections if c.open and c.socket is not None]
        for socket in sockets:  # else cleanup waits for each handler to time out
            await socket.close(code=1001, message=b"fake Slack stopping")
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(
        cls, *, post_rate_per_channel: float | None = None, post_burst: int = 3
    ) -> Iterator[FakeSlack]:
        """A running fake on its own event loop in a background thread, for synchronous tests
        and for tests whose app runs in a subprocess."""
        slack = cls(post_rate_per_channel=post_rate_per_channel, post_burst=post_burst)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(slack.start(), loop).result(timeout=10)
            yield slack
        finally:
            asyncio.run_coroutine_threadsafe(slack.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack has not been started")
        return self._port

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- what tests arrange -----------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int = 500,
        times: int = 1,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP `status` and `{"ok": false}`.

        `retry_after` adds a `Retry-After` header; `error` is the body's error, which by
        default is "ratelimited" for a 429 and "fatal_error" otherwise. Calls to `fail` for
        the same method queue up one after the other.
        """
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        with self._lock:
            failure = _Failure(status, times, retry_after, error)
            self._failures.setdefault(method, []).append(failure)

    def delay(self, method: str, seconds: float) -> None:
        """Answer every later call of `method` after `seconds` (0 to answer at once again)."""
        with self._lock:
            self._delays[method] = seconds

    def hold(self, method: str) -> Held:
        """Hold the next call of `method` as it arrives, neither taken (recorded, posted) nor
        answered until `release()`: a request still on its way to Slack. Its `arrived` is set
        once it is held. Calls to `hold` for one method queue up."""
        if self._loop is None:
            raise RuntimeError("FakeSlack has not been started")
        held = Held(method, self._loop)
        with self._lock:
            self._holds.setdefault(method, []).append(held)
        return held

    def after_answer(self, method: str, action: Callable[[Call], None]) -> None:
        """Once: call `action` with the next call of `method` answered `ok: true`, right after
        its answer was written to the client's connection (on the fake's own thread). What a
        test needs to act between Slack's answer and what the app does with it, say to kill
        the app's process there. Calls to `after_answer` for one method queue up."""
        with self._lock:
            self._after_answer.setdefault(method, []).append(action)

    # -- what tests read --------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def standing_messages(self) -> dict[tuple[str, str], Body]:
        """The messages as they stand now (posted, maybe updated, not deleted), by (channel,
        ts): a copy, safe to read while the fake runs on another thread."""
        with self._lock:
            return dict(self.messages)

    # A `timeout` argument rather than asyncio.timeout: the failure message names what was seen.
    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:  # noqa: ASYNC109
        """Every answered call of `method`, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls_to(method)) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(self._not_enough(method, count, timeout, calls))
            await asyncio.sleep(_POLL_S)
        return calls

    def wait_for_blocking(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """`wait_for` for synchronous tests, with the fake running `in_thread`."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls_to(method)) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(self._not_enough(method, count, timeout, calls))
            time.sleep(_POLL_S)
        return calls

    # -- Socket Mode ------------------------------------------------------------------------

    async def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> Connection:  # noqa: ASYNC109
        """The newest open Socket Mode connection, once at least `count` were ever opened."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                opened = list(self.connections)
            open_now = [connection for connection in opened if connection.open]
            if len(opened) >= count and open_now:
                return open_now[-1]
            if time.monotonic() >= deadline:
                with self._lock:
                    refused = [f"{c.method} ({c.status} {c.error})" for c in self.refused]
                raise AssertionError(
                    f"expected {count} Socket Mode connection(s), one of them open, within "
                    f"{timeout:g}s; opened {len(opened)}, {len(open_now)} still open; "
                    f"apps.connections.open answered {len(self.calls_to('apps.connections.open'))} "
                    f"time(s); refused: {refused or 'none'}"
                )
            await asyncio.sleep(_POLL_S)

    async def send_envelope(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
    ) -> str:
        """Push one envelope down the newest open connection, as Slack does; its envelope id.

        `type` is "events_api", "interactive" or "slash_commands"; `payload` is what Slack would
        have POSTed over HTTP (the event callback, the interaction payload, the command's
        fields). Slack lets a client answer slash commands and interactions in the ack, so
        `accepts_response_payload` defaults to True for those and False for events. Callable
        from any event loop: the send runs on the fake's own."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}; use one of {ENVELOPE_TYPES}")
        if envelope_id is None:
            envelope_id = f"env-{next(self._envelope_numbers):04d}-{time.time_ns() % 10**9:09d}"
        envelope: Body = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": dict(payload),
            "accepts_response_payload": (
                type != "events_api"
                if accepts_response_payload is None
                else accepts_response_payload
            ),
        }
        if type == "events_api":  # only events are retried, and say so
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": ""}
        await self._on_own_loop(self._send_to_newest(envelope))
        return envelope_id

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell the connected client to reconnect, as Slack does every few hours; it should
        call apps.connections.open again and open a new connection."""
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "fake-slack"},
        }
        await self._on_own_loop(self._send_to_newest(message))

    async def drop(self, connection: Connection) -> None:
        """Close `connection` from Slack's side without asking the client to reconnect, as a
        restart of Slack's server or a broken network does."""

        async def close() -> None:
            if connection.socket is not None:
                await connection.socket.close(code=1011, message=b"fake Slack dropped it")

        await self._on_own_loop(close())

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:  # noqa: ASYNC109
        """The client's ack of `envelope_id`, once it has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                acks = list(self.acks)
            for ack in acks:
                if ack.envelope_id == envelope_id:
                    return ack
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no ack of envelope {envelope_id} within {timeout:g}s; acked so far: "
                    f"{[ack.envelope_id for ack in acks] or 'none'}"
                )
            await asyncio.sleep(_POLL_S)

    async def wait_for_close(self, connection: Connection, timeout: float = 5.0) -> int | None:  # noqa: ASYNC109
        """The code `connection` closed with (1000: the client closed it), once it has."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not connection.open:
                    return connection.close_code
            if time.monotonic() >= deadline:
                raise AssertionError(f"the Socket Mode connection is still open after {timeout:g}s")
            await asyncio.sleep(_POLL_S)

    def acks_of(self, envelope_id: str) -> list[Ack]:
        with self._lock:
            return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    async def _on_own_loop(self, coroutine: Any) -> None:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("FakeSlack has not been started")
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def _send_to_newest(self, message: Body) -> None:
        with self._lock:
            sockets = [c.socket for c in self.connections if c.open and c.socket is not None]
        if not sockets:
            raise AssertionError("no Socket Mode client is connected to the fake Slack")
        await sockets[-1].send_str(json.dumps(message))

    def _not_enough(self, method: str, count: int, timeout: float, calls: list[Call]) -> str:
        with self._lock:
            answered = [call.method for call in self.calls]
            refused = [f"{call.method} ({call.status} {call.error})" for call in self.refused]
        return (
            f"expected {count} answered {method} call(s) within {timeout:g}s, got {len(calls)}; "
            f"answered so far: {answered or 'none'}; refused: {refused or 'none'}"
        )

    # -- answering --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        with self._lock:
            holds = self._holds.get(method)
            held = holds.pop(0) if holds else None
        if held is not None:
            held.arrived.set()
            await held.released.wait()
        arrived = time.monotonic()
        try:
            params = await _read_params(request)
        except ValueError:
            params, answer = {}, _Answer(_error("invalid_json"))
        else:
            answer = self._answer(method, params, request.headers.get("Authorization", ""))
        action: Callable[[Call], None] | None = None
        with self._lock:
            if answer.ok:
                call = Call(method, params, arrived)
                self.calls.append(call)
                waiting = self._after_answer.get(method)
                if waiting:
                    action = waiting.pop(0)
            else:
                error = answer.body.get("error")
                call = Call(method, params, arrived, answer.status, error)
                self.refused.append(call)
            delay = self._delays.get(method, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        response = web.json_response(answer.body, status=answer.status, headers=answer.headers)
        if action is not None:
            # Written out here rather than by aiohttp after the handler returns, so that the
            # action runs once the answer is on its way: handed to the kernel, not yet read.
            await response.prepare(request)
            await response.write_eof()
            action(call)
        return response

    async def _respond(self, request: web.Request) -> web.Response:
        """A post to a slash command's `response_url` (see `response_url`), recorded as a call
        of the method "response" with the JSON it carried."""
        params = await request.json()
        with self._lock:
            self.calls.append(Call("response", params, time.monotonic()))
        return web.Response(text="ok")

    def response_url(self, key: str = "1") -> str:
        """A `response_url` that lands here, for `command_body(..., response_url=...)`."""
        return f"http://127.0.0.1:{self.port}/response/{key}"

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        """A Socket Mode connection: a ticket from apps.connections.open (once only), Slack's
        hello, then every text message the client sends is read as an ack."""
        ticket = request.query.get("ticket", "")
        arrived = time.monotonic()
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
            if not known:
                params = {"ticket": ticket}
                self.refused.append(Call("socket", params, arrived, 401, "invalid_ticket"))
        if not known:
            return web.Response(status=401, text="unknown or used ticket")
        socket = web.WebSocketResponse()  # answers the client's pings with pongs
        await socket.prepare(request)
        connection = Connection(ticket=ticket, opened_at=arrived, socket=socket)
        with self._lock:
            self.connections.append(connection)
            open_now = sum(c.open for c in self.connections)
        await socket.send_str(json.dumps(_hello(open_now)))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._receive(str(message.data))
        finally:
            with self._lock:
                connection.closed_at = time.monotonic()
                connection.close_code = socket.close_code
        return socket

    def _receive(self, text: str) -> None:
        arrived = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        with self._lock:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                payload = message.get("payload")
                self.acks.append(
                    Ack(
                        message["envelope_id"],
                        payload if isinstance(payload, dict) else None,
                        arrived,
                    )
                )
            else:
                self.refused.append(Call("socket", {"text": text}, arrived, 400, "not_an_ack"))

    def _answer(self, method: str, params: Params, authorization: str) -> _Answer:
        # Any token slack_sdk would send; the point is to catch a client built without one, or
        # one that sends the app-level token where the bot token belongs, or the other way round.
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        if not token.startswith(("xox", "xapp-")):
            return _Answer(_error("not_authed"))
        if token.startswith("xapp-") != (method in _APP_TOKEN_METHODS):
            return _Answer(_error("not_allowed_token_type"))
        if self.token_error is not None and not token.startswith("xapp-"):
            return _Answer(_error(self.token_error))
        with self._lock:
            failure = self._take_failure(method)
            if failure is not None:
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
                default = "ratelimited" if failure.status == 429 else "fatal_error"
                return _Answer(_error(failure.error or default), failure.status, headers)
            if method == "chat.postMessage" and not self._take_post_token(params):
                return _Answer(_error("ratelimited"), 429, {"Retry-After": "1"})
            handler = self._methods.get(method)
            if handler is None:
                return _Answer(_error("unknown_method"))
            needed = _NEEDED_SCOPE.get(method)
            if needed is not None and needed not in self.scopes:
                provided = ",".join(self.scopes)
                return _Answer({**_error("missing_scope"), "needed": needed, "provided": provided})
            channel = params.get("channel")
            if method in ("chat.postMessage", "conversations.history") and (
                isinstance(channel, str) and channel in self.channel_errors
            ):
                return _Answer(_error(self.channel_errors[channel]))
            if method in ("chat.postMessage", "chat.update") and (
                self.blocks_refused is not None and params.get("blocks")
            ):
                return _Answer(_error(self.blocks_refused))
            answer = _Answer(handler(params))
            if method == "auth.test":
                answer.headers["X-OAuth-Scopes"] = ",".join(self.scopes)
            return answer

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times == 0:
            queue.pop(0)
        return failure

    def _take_post_token(self, params: Params) -> bool:
        """Slack's per-channel posting limit as a token bucket; True when the post may go."""
        channel = params.get("channel")
        if self._post_rate is None or not isinstance(channel, str) or not channel:
            return True
        channel = _dm_channel(channel)
        now = time.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(float(self._post_burst), now))
        refill = (now - bucket.updated) * self._post_rate
        bucket.tokens = min(float(self._post_burst), bucket.tokens + refill)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _next_ts(self) -> str:
        """Slack's ts: its wall clock in microseconds, a later one for every message."""
        micros = max(int(time.time() * 1_000_000), self._last_ts_us + 100)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_view(self, view: Body, view_id: str | None = None) -> Body:
        return {
            **view,
            "id": view_id or f"V{next(self._view_ids):010d}",
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "hash": f"{time.time():.6f}",
        }

    # -- the methods, called with the lock held ---------------------------------------------

    def _open_connection(self, params: Params) -> Body:
        ticket = f"{next(self._ticket_numbers):06d}"
        self._tickets.add(ticket)
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{self.port}{SOCKET_PATH}?ticket={ticket}&app_id={APP_ID}",
        }

    def _auth_test(self, params: Params) -> Body:
        return {
            "ok": True,
            "url": "https://leadrouter-test.slack.com/",
            "team": "Leadrouter Test",
            "user": "leadrouter",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: Params) -> Body:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            return _error("channel_not_found")
        if not any(params.get(key) for key in ("text", "blocks", "attachments")):
            return _error("no_text")
        channel, ts = _dm_channel(channel), self._next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": params.get("blocks", []),
        }
        metadata = params.get("metadata")
        if isinstance(metadata, dict):
            message["metadata"] = metadata
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _delete(self, params: Params) -> Body:
        channel, ts = params.get("channel"), params.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            return _error("message_not_found")
        if self.messages.pop((_dm_channel(channel), ts), None) is None:
            return _error("message_not_found")
        self.deleted.append((_dm_channel(channel), ts))
        return {"ok": True, "channel": channel, "ts": ts}

    def _history(self, params: Params) -> Body:
        """A channel's messages newest first, after `oldest`, `limit` a page (Slack's cursor
        pagination); metadata only with `include_all_metadata`, as Slack does."""
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            return _error("channel_not_found")
        if channel in self.history_refused:
            return _error(self.history_refused[channel])
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        found = sorted(
            (
                message
                for (where, ts), message in self.messages.items()
                if where == channel and float(ts) > oldest
            ),
            key=lambda message: float(message["ts"]),
            reverse=True,
        )
        page = found[start : start + limit]
        if not with_metadata:
            page = [{k: v for k, v in message.items() if k != "metadata"} for message in page]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _update(self, params: Params) -> Body:
        channel, ts = params.get("channel"), params.get("ts")
        if not isinstance(channel, str) or not channel:
            return _error("channel_not_found")
        if not isinstance(ts, str) or not ts:
            return _error("message_not_found")
        text = params.get("text", "")
        previous = self.messages.get((channel, ts), {"type": "message", "ts": ts})
        self.messages[(channel, ts)] = {
            **previous,
            "text": text,
            "blocks": params.get("blocks", []),
        }
        return {"ok": True, "channel": channel, "ts": ts, "text": text}

    def _post_ephemeral(self, params: Params) -> Body:
        if not params.get("channel"):
            return _error("channel_not_found")
        if not params.get("user"):
            return _error("user_not_found")
        return {"ok": True, "message_ts": self._next_ts()}

    def _open_conversation(self, params: Params) -> Body:
        users = [user for user in str(params.get("users", "")).split(",") if user]
        if not users:
            return _error("users_list_not_supplied")
        disabled = [user for user in users if user in self.deactivated_users]
        if disabled:
            return _error("user_disabled")
        unknown = [user for user in users if user in self.unknown_users]
        if unknown:
            return _error("user_not_found")
        if len(users) == 1:
            channel = _dm_channel(users[0])
        else:
            channel = "G" + "".join(user[1:] for user in users)
        return {"ok": True, "channel": {"id": channel}}

    def _open_view(self, params: Params) -> Body:
        view = params.get("view")
        if not params.get("trigger_id") or not isinstance(view, dict):
            return _error("invalid_arguments")
        return {"ok": True, "view": self._next_view(view)}

    def _publish_view(self, params: Params) -> Body:
        view = params.get("view")
        if not params.get("user_id") or not isinstance(view, dict):
            return _error("invalid_arguments")
        return {"ok": True, "view": self._next_view(view)}

    def _update_view(self, params: Params) -> Body:
        view, view_id = params.get("view"), params.get("view_id")
        if not (view_id or params.get("external_id")) or not isinstance(view, dict):
            return _error("invalid_arguments")
        return {"ok": True, "view": self._next_view(view, str(view_id) if view_id else None)}

    def _lookup_by_email(self, params: Params) -> Body:
        email = str(params.get("email", "")).strip().lower()
        found = [user for user, known in self.user_email.items() if known.lower() == email]
        if not email or not found:
            return _error("users_not_found")
        return self._user_info({"user": found[0]})

    def _user_info(self, params: Params) -> Body:
        user = params.get("user")
        if not isinstance(user, str) or not user or user in self.unknown_users:
            return _error("user_not_found")
        tz = self.user_tz.get(user, DEFAULT_TZ)
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": user.lower(),
                "is_bot": False,
                "deleted": user in self.deactivated_users,
                "tz": tz,
                "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
                "profile": {"email": self.user_email.get(user, f"{user.lower()}@example.com")},
            },
        }


def _error(error: str) -> Body:
    return {"ok": False, "error": error}


def _hello(num_connections: int) -> Body:
    """What Slack sends first on a new Socket Mode connection."""
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {
            "host": "fake-slack",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": {"app_id": APP_ID},
    }


def _dm_channel(channel: str) -> str:
    """Posting to a user id lands in the DM Slack opens with them: U123 -> D123."""
    return "D" + channel[1:] if channel.startswith("U") else channel


async def _read_params(request: web.Request) -> Params:
    """The query string, then a JSON or form body, with JSON-string fields decoded."""
    params: Params = dict(request.query)
    if request.can_read_body:
        if request.content_type == JSON:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("a JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str):
            # Left as the string when it is not JSON, so the test sees what was sent.
            with suppress(ValueError):
                params[key] = json.loads(value)
    return params


# -- requests into the app, signed as Slack signs them --------------------------------------


def slack_signed_headers(
    body: str, secret: str, timestamp: int | None = None, *, content_type: str = FORM
) -> dict[str, str]:
    """The headers Slack sends with `body`; `timestamp` defaults to now (Slack allows 5 min)."""
    at = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=at, body=body)
    if signature is None:  # only when there is no timestamp, and there always is one
        raise ValueError("could not sign the body")
    return {
        "X-Slack-Request-Timestamp": at,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


def json_signed_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """`slack_signed_headers` for the Events API, whose bodies are JSON."""
    return slack_signed_headers(body, secret, timestamp, content_type=JSON)


def _user(user_id: str) -> Body:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


def action_body(
    action_id: str,
    value: str,
    user_id: str,
    *,
    channel: str = "D0ALICE",
    message_ts: str = "1700000000.000100",
    trigger_id: str = "trig.1",
    response_url: str = RESPONSE_URL,
) -> str:
    """The form body of a button press on a message (a `block_actions` interaction)."""
    payload = action_payload(
        action_id,
        value,
        user_id,
        channel=channel,
        message_ts=message_ts,
        trigger_id=trigger_id,
        response_url=response_url,
    )
    return urlencode({"payload": json.dumps(payload)})


def action_payload(
    action_id: str,
    value: str,
    user_id: str,
    *,
    channel: str = "D0ALICE",
    message_ts: str = "1700000000.000100",
    trigger_id: str = "trig.1",
    response_url: str = RESPONSE_URL,
) -> Body:
    """A `block_actions` payload: over HTTP it is `action_body`'s form field, in Socket Mode an
    "interactive" envelope's payload."""
    return {
        "type": "block_actions",
        "user": _user(user_id),
        "team": {"id": TEAM_ID, "domain": "leadrouter-test"},
        "api_app_id": APP_ID,
        "token": "legacy",
        "container": {
            "type": "message",
            "channel_id": channel,
            "message_ts": message_ts,
            "is_ephemeral": False,
        },
        "channel": {"id": channel},
        "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "response_url": response_url,
        "trigger_id": trigger_id,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "lead_actions",
                "value": value,
                "action_ts": "1700000001.000100",
            }
        ],
    }


def command_body(
    text: str,
    user_id: str,
    *,
    command: str = "/routing",
    response_url: str = RESPONSE_URL,
    trigger_id: str = "trig.1",
) -> str:
    """The form body of a slash command typed in #general."""
    return urlencode(
        command_payload(
            text, user_id, command=command, response_url=response_url, trigger_id=trigger_id
        )
    )


def command_payload(
    text: str,
    user_id: str,
    *,
    command: str = "/routing",
    response_url: str = RESPONSE_URL,
    trigger_id: str = "trig.1",
) -> dict[str, str]:
    """A slash command's fields: over HTTP `command_body` form-encodes them, in Socket Mode
    they are a "slash_commands" envelope's payload as they are."""
    return {
        "token": "legacy",
        "team_id": TEAM_ID,
        "team_domain": "leadrouter-test",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "response_url": response_url,
        "trigger_id": trigger_id,
        "api_app_id": APP_ID,
    }


def view_submission_body(
    callback_id: str,
    private_metadata: str,
    values: Mapping[str, Any],
    user_id: str,
    *,
    view_id: str = "V0000000001",
) -> str:
    """The form body of a modal's submission; `values` is `state.values`, by block and action."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "leadrouter-test"},
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": "legacy",
        "trigger_id": "trig.1",
        "view": {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": dict(values)},
            "hash": "1700000000.abcdef",
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: Mapping[str, Any], *, event_id: str = "Ev0001") -> str:
    """The JSON body of an Events API delivery; send it with `json_signed_headers`."""
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1_700_000_000,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
    )
