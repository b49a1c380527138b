"""Slack's side of Sign in with Slack, on a loopback port: the authorize page, and the Web API's
`openid.connect.token` and `openid.connect.userInfo` with Slack's answers (trimmed to what a
client reads) and Slack's errors.

The authorize page stands for a person signed in to Slack who clicks Allow (or, with
`FakeSlackSignIn.denies`, Cancel): it sends the browser straight back to `redirect_uri` with a
one-time code and the state it was given, as Slack does. Tests say who that person is
(`signed_in_as`), point `SLACK_API_URL` at `api_url` (the authorize page is beside it, as at
slack.com) and read what was asked in `calls`.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import BasicAuth, web

TEAM_ID = "T0001"
CLIENT_ID = "1234567890.1234567890123"
CLIENT_SECRET = "fake-slack-client-secret-0123456789"


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    email: str
    email_verified: bool = True


@dataclass(frozen=True)
class Call:
    method: str  # "authorize", "openid.connect.token" or "openid.connect.userInfo"
    params: dict[str, str]
    error: str | None = None  # what Slack answered instead, when it refused


@dataclass
class FakeSlackSignIn:
    """Sign in with Slack for one app (`client_id`, `client_secret`) and one redirect URL."""

    redirect_uri: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    signed_in_as: Person | None = None
    denies: bool = False  # the person clicks Cancel: error=access_denied
    refuse_codes: bool = False  # every code is answered invalid_code
    calls: list[Call] = field(default_factory=list)
    _codes: dict[str, Person] = field(default_factory=dict)
    _tokens: dict[str, Person] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _port: int | None = None

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/"

    @property
    def origin(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSlackSignIn has not been started")
        return f"http://127.0.0.1:{self._port}"

    def secrets_seen(self) -> list[str]:
        """Every code and token this fake gave out: none of them may reach a log."""
        return [*self._codes, *self._tokens]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/openid/connect/authorize", self._authorize)
        app.router.add_post("/api/openid.connect.token", self._token)
        app.router.add_route("*", "/api/openid.connect.userInfo", self._user_info)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- Slack's side ----------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        problem = None
        if query.get("response_type") != "code":
            problem = "invalid_response_type"
        elif "openid" not in query.get("scope", "").split():
            problem = "invalid_scope"
        elif query.get("client_id") != self.client_id:
            problem = "invalid_client_id"
        elif query.get("redirect_uri") != self.redirect_uri:
            problem = "bad_redirect_uri"
        self.calls.append(Call("authorize", query, problem))
        if problem is not None:  # Slack shows its own error page and sends nobody back
            return web.Response(status=400, text=f"Slack: {problem}")
        back: dict[str, str] = {"state": query.get("state", "")}
        if self.denies or self.signed_in_as is None:
            back["error"] = "access_denied"
        else:
            code = f"{TEAM_ID}.{secrets.token_hex(16)}"
            self._codes[code] = self.signed_in_as
            back["code"] = code
        raise web.HTTPFound(f"{self.redirect_uri}?{urlencode(back)}")

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if "Authorization" in request.headers:
            auth = BasicAuth.decode(request.headers["Authorization"])
            client_id, client_secret = auth.login, auth.password
        error = None
        person = None if self.refuse_codes else self._codes.pop(form.get("code", ""), None)
        if client_id != self.client_id:
            error = "invalid_client_id"
        elif client_secret != self.client_secret:
            error = "bad_client_secret"
        elif form.get("redirect_uri") != self.redirect_uri:
            error = "bad_redirect_uri"
        elif person is None:
            error = "invalid_code"  # unknown, or used once already
        self.calls.append(Call("openid.connect.token", form, error))
        if error is not None or person is None:
            return web.json_response({"ok": False, "error": error})
        access_token = f"xoxp-{secrets.token_hex(16)}"
        self._tokens[access_token] = person
        return web.json_response(
            {
                "ok": True,
                "access_token": access_token,
                "token_type": "Bearer",
                "id_token": _unsigned_jwt(self._claims(person)),
            }
        )

    async def _user_info(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        person = self._tokens.get(token) if scheme == "Bearer" else None
        error = None if person is not None else "invalid_auth"
        self.calls.append(Call("openid.connect.userInfo", {}, error))
        if person is None:
            return web.json_response({"ok": False, "error": error})
        return web.json_response({"ok": True, **self._claims(person)})

    def _claims(self, person: Person) -> dict[str, Any]:
        return {
            "sub": person.user_id,
            "https://slack.com/user_id": person.user_id,
            "https://slack.com/team_id": TEAM_ID,
            "email": person.email,
            "email_verified": person.email_verified,
            "name": person.name,
            "locale": "en-US",
        }


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT's shape (leadrouter reads who signed in from userInfo, not from this)."""
    parts = ({"alg": "none", "typ": "JWT"}, {"iss": "https://slack.com", **claims})
    encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=") for p in parts]
    return b".".join([*encoded, b""]).decode()
