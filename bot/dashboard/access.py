# Over 400 lines on purpose: every way in (token, Slack, session) and out (sign-out, sign out
# everywhere) checks the same session and manager; apart, each half would re-derive the other.
"""Who may see the dashboard, and how they sign in.

A request is let in when it carries `Authorization: Bearer <LEADROUTER_DASHBOARD_TOKEN>`, or the
session cookie signed here after
- Sign in with Slack (`slack_sign_in`), for a manager of the policy: matched by Slack user id, or
  by an e-mail address Slack has verified; or
- the sign-in form, for whoever types the dashboard token into it.
The cookie is checked against the policy on every request: a manager taken out of it is out at
once. Each session has an id, in its cookie: signing out records it (`bot.service.sign_outs`), and
every request's session is looked up there, so a copy of the cookie is refused by every replica
from then on. Signing out everywhere ends every session of that manager (or of the token): each
session carries its holder's generation, read when it was signed in, and signing out everywhere
moves that on, whatever each replica's clock says.

Nobody else sees any data: a page redirects to the sign-in page (303), data (a CSV) answers 401,
and so does a request with any other Authorization header. A refusal says what was wrong, never
what was sent, and no token, code or secret reaches a log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.dashboard.render import Renderer, redirect
from bot.dashboard.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    CookieJar,
    secure_for,
    session_key,
)
from bot.dashboard.slack_sign_in import CALLBACK_PATH, SignInFailed, SlackSignIn
from bot.service.sign_outs import (
    generation_to_sign_in,
    sign_out,
    sign_out_everywhere,
    signed_out,
)
from bot.service.unit_of_work import UnitOfWork
from bot.settings import Settings
from routing.policy import Manager, Policy

log = logging.getLogger(__name__)

HOME = "/dashboard"
SIGN_IN = "/dashboard/sign-in"
SLACK_SIGN_IN = "/dashboard/sign-in/slack"
SIGN_OUT = "/dashboard/sign-out"
SESSION_S = 12 * 3600  # a working day
SIGN_IN_S = 10 * 60  # to get through Slack's page and back
_UTC = ZoneInfo("UTC")
FROM_ANOTHER_SITE = "This form was sent from another site: sign in and out from this page."
NOT_SET_UP = (
    "the dashboard is not set up: set LEADROUTER_DASHBOARD_TOKEN, or SLACK_CLIENT_ID, "
    "SLACK_CLIENT_SECRET and LEADROUTER_PUBLIC_URL for Sign in with Slack (docs/dashboard.md)"
)


@dataclass(frozen=True, slots=True)
class Visitor:
    name: str
    manager: Manager | None  # None for whoever holds the dashboard token

    @property
    def tz(self) -> ZoneInfo:
        return self.manager.tz if self.manager is not None else _UTC


TOKEN_HOLDER = Visitor("dashboard token", None)


@dataclass(frozen=True, slots=True)
class Session:
    """A session cookie signed here and not expired (whether it still lets in is `visitor`'s)."""

    id: str  # random (`_signed_in`); never logged, and stored only as a digest
    generation: int  # its holder's when it was signed in (`bot.service.sign_outs`)
    expires_at: datetime
    claims: Mapping[str, Any]  # how its holder signed in: `via`, and Slack's `user`, `email`


Page = Callable[[web.Request, Visitor], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WrongCredentials(Exception):
    """An Authorization header that does not carry the dashboard's token."""


class Access:
    def __init__(
        self,
        settings: Settings,
        *,
        policy: Callable[[], Policy],
        renderer: Renderer,
        uow: UnitOfWork,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.uow = uow
        self.renderer = renderer
        self.slack = SlackSignIn.from_settings(settings)
        self.public_url = settings.public_url
        token = settings.dashboard_token
        self._token_digest = _digest(token.get_secret_value()) if token is not None else None
        key = session_key(settings.slack_client_secret, token)
        self.cookies = CookieJar(key, clock) if key is not None else None

    # --- letting requests in -------------------------------------------------------------------

    def guard(self, page: Page, *, data: bool = False) -> Handler:
        """`page`, for visitors let in; for others, a redirect to the sign-in page, which says how
        to sign in or, where neither sign-in is set up, what to set (401 for `data`)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                visitor = await self.visitor(request)
            except WrongCredentials:
                return _unauthorized("that is not the dashboard's bearer token")
            if visitor is not None:
                return await page(request, visitor)
            if data:
                return _unauthorized(
                    NOT_SET_UP if self.cookies is None else "sign in first (docs/dashboard.md)"
                )
            return redirect(f"{SIGN_IN}?{urlencode({'next': request.path_qs})}")

        return guarded

    async def visitor(self, request: web.Request) -> Visitor | None:
        """Who is asking, if they are let in. WrongCredentials for a token that is not ours."""
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() == "bearer" and self._is_token(credentials.strip()):
                return TOKEN_HOLDER
            raise WrongCredentials
        session = self.session(request)
        if session is None:
            return None
        visitor = self._visitor_of(session)
        if visitor is None or await self._signed_out(session, visitor):
            return None
        return visitor

    def session(self, request: web.Request) -> Session | None:
        """The request's session cookie, signed here and not expired; None for any other, and
        for a cookie signed before sessions had an id (it could not be signed out). A cookie
        signed before sessions had a generation (revision 0019) is of generation 0: it lets in
        until its holder's first sign-out everywhere since."""
        claims = self.cookies.read(request, SESSION_COOKIE) if self.cookies else None
        if claims is None:
            return None
        session_id, issued_at = claims.get("sid"), claims.get("iat")
        generation = claims.get("gen", 0)
        if not isinstance(session_id, str) or not 16 <= len(session_id) <= 64:
            return None
        if not isinstance(issued_at, int | float) or not 0 < issued_at < claims["exp"]:
            return None
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            return None
        return Session(session_id, generation, datetime.fromtimestamp(claims["exp"], UTC), claims)

    def _visitor_of(self, session: Session) -> Visitor | None:
        """Who the session signed in, if the sign-in they used is still set up and, for a
        manager, the policy still names them."""
        claims = session.claims
        if claims.get("via") == "token":
            return TOKEN_HOLDER if self._token_digest is not None else None
        if claims.get("via") == "slack" and self.slack is not None:
            manager = manager_of(self.policy(), user=claims.get("user"), email=claims.get("email"))
            if manager is not None:
                return Visitor(str(claims.get("name") or manager.name), manager)
        return None

    async def _signed_out(self, session: Session, visitor: Visitor) -> bool:
        return await signed_out(
            self.uow, session_id=session.id, who=_who(visitor), generation=session.generation
        )

    def _is_token(self, given: str) -> bool:
        # Digests of equal length, compared in constant time: not even the length is told.
        return self._token_digest is not None and hmac.compare_digest(
            _digest(given), self._token_digest
        )

    # --- signing in and out --------------------------------------------------------------------

    async def sign_in_page(self, request: web.Request) -> web.Response:
        return self._sign_in_page(next_page=safe_next(request.query.get("next")))

    async def sign_in_with_token(self, request: web.Request) -> web.Response:
        if self._from_another_site(request):
            return self._refused(403, FROM_ANOTHER_SITE)
        try:
            form = await request.post()
        except ValueError:  # a body its Content-Type does not describe (a multipart's boundary)
            problem = "The sign-in form could not be read: send it again from this page."
            return self._sign_in_page(next_page=HOME, status=400, problem=problem)
        next_page = safe_next(form.get("next"))
        given = form.get("token")
        if self.cookies is None or not isinstance(given, str) or not self._is_token(given.strip()):
            problem = "That is not the dashboard token."
            return self._sign_in_page(next_page=next_page, status=401, problem=problem)
        return await self._signed_in(request, TOKEN_HOLDER, {"via": "token"}, next_page)

    async def start_slack_sign_in(self, request: web.Request) -> web.Response:
        if self.slack is None or self.cookies is None:
            raise web.HTTPNotFound()
        state = secrets.token_urlsafe(32)
        response = web.Response(status=303, headers={"Location": self.slack.authorize_url(state)})
        started = {"state": state, "next": safe_next(request.query.get("next"))}
        self.cookies.write(
            response,
            SIGN_IN_COOKIE,
            started,
            lifetime_s=SIGN_IN_S,
            path=SLACK_SIGN_IN,
            secure=secure_for(request, self.public_url),
        )
        return response

    async def finish_slack_sign_in(self, request: web.Request) -> web.Response:
        """Slack's redirect back: the state checked against the cookie that started it, the code
        exchanged for who signed in, and a manager of the policy let in."""
        if self.slack is None or self.cookies is None:
            raise web.HTTPNotFound()
        started = self.cookies.read(request, SIGN_IN_COOKIE)
        state = request.query.get("state", "")
        if started is None or not hmac.compare_digest(
            str(started.get("state", "")).encode(), state.encode()
        ):
            return self._refused(400, "This sign-in was not started here, or took over 10 minutes.")
        if "error" in request.query:
            reason = request.query["error"][:60]
            return self._refused(403, f"Slack did not sign you in ({reason}).")
        code = request.query.get("code")
        if not code:
            return self._refused(400, "Slack sent no code back to sign you in with.")
        try:
            identity = await self.slack.identify(code)
        except SignInFailed as exc:
            log.warning("Sign in with Slack failed: %s", exc)
            return self._refused(502, f"{exc}.")
        manager = manager_of(self.policy(), user=identity.user_id, email=identity.email)
        if manager is None:
            log.info("dashboard: Slack user %s is not a manager; not let in", identity.user_id)
            return self._refused(
                403,
                f"{identity.name} ({identity.user_id}) is not a manager in the routing policy: "
                "ask an admin to add your Slack id or e-mail under managers.",
            )
        log.info("dashboard: manager %s signed in with Slack", manager.id)
        session = {"via": "slack", "user": identity.user_id, "email": identity.email}
        response = await self._signed_in(
            request,
            Visitor(identity.name, manager),
            {**session, "name": identity.name},
            started["next"],
        )
        response.del_cookie(SIGN_IN_COOKIE, path=SLACK_SIGN_IN)
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        """Ends the session for every replica, and clears its cookie. With `everywhere=1` in the
        form, every session of its manager (or of the token), if it still lets them in: a copy
        of a session already ended cannot sign its manager out of the others."""
        if self._from_another_site(request):
            return self._refused(403, FROM_ANOTHER_SITE)
        try:
            everywhere = (await request.post()).get("everywhere") == "1"
        except ValueError:  # a body its Content-Type does not describe: that session alone
            everywhere = False
        session = self.session(request)
        if session is not None:
            assert self.cookies is not None
            now = datetime.fromtimestamp(self.cookies.clock(), UTC)
            visitor = self._visitor_of(session)
            if (
                everywhere
                and visitor is not None
                and await sign_out_everywhere(
                    self.uow,
                    who=_who(visitor),
                    session_id=session.id,
                    generation=session.generation,
                )
            ):
                log.info("dashboard: %s signed out everywhere", _named(visitor))
            else:
                await sign_out(
                    self.uow, session_id=session.id, expires_at=session.expires_at, now=now
                )
                log.info("dashboard: %s signed out", _named(visitor))
        response = redirect(SIGN_IN)
        response.del_cookie(SESSION_COOKIE, path=HOME)
        return response

    async def _signed_in(
        self,
        request: web.Request,
        visitor: Visitor,
        session: dict[str, object],
        next_page: object,
    ) -> web.Response:
        assert self.cookies is not None
        generation = await generation_to_sign_in(self.uow, who=_who(visitor))
        response = redirect(safe_next(next_page))
        self.cookies.write(
            response,
            SESSION_COOKIE,
            {
                **session,
                "sid": secrets.token_urlsafe(16),
                "iat": self.cookies.clock(),
                "gen": generation,
            },
            lifetime_s=SESSION_S,
            path=HOME,
            secure=secure_for(request, self.public_url),
        )
        return response

    def _sign_in_page(
        self, *, next_page: str, status: int = 200, problem: str | None = None
    ) -> web.Response:
        return self.renderer.page(
            "sign_in.html",
            status=status,
            title="Sign in",
            visitor=None,
            next_page=next_page,
            slack=self.slack is not None,
            token=self._token_digest is not None,
            problem=problem,
            not_set_up=NOT_SET_UP if self.cookies is None else None,
        )

    def _from_another_site(self, request: web.Request) -> bool:
        """Whether a form was posted by another site's page (CSRF). Browsers say so in
        Sec-Fetch-Site, which is trusted when sent: under the no-referrer policy (`render`) a
        browser sends `Origin: null` for this page's own forms. Without it, an Origin that is
        neither this dashboard's public address nor the host asked for. A client that sends
        neither (curl, a script) is not a browser tricked into posting."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site not in ("same-origin", "none")
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return False
        ours = {request.host.lower()}
        if self.public_url is not None:
            ours.add(urlsplit(self.public_url).netloc.lower())
        return urlsplit(origin).netloc.lower() not in ours

    def _refused(self, status: int, problem: str) -> web.Response:
        return self._sign_in_page(next_page=HOME, status=status, problem=problem)


class HideSignInCodes(logging.Filter):
    """Slack sends the code and the state back in the callback's query string, which aiohttp's
    access log writes whole: this keeps the path and drops the query, on every handler."""

    _CALLBACK = re.compile(re.escape(CALLBACK_PATH) + r"\?[^ \"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and CALLBACK_PATH in record.msg:
            record.msg = self._CALLBACK.sub(CALLBACK_PATH + "?(hidden)", record.msg)
            line = getattr(record, "first_request_line", None)
            if isinstance(line, str):
                record.first_request_line = self._CALLBACK.sub(CALLBACK_PATH + "?(hidden)", line)
        return True


def hide_sign_in_codes(logger: logging.Logger) -> None:
    if not any(isinstance(kept, HideSignInCodes) for kept in logger.filters):
        logger.addFilter(HideSignInCodes())


def manager_of(policy: Policy, *, user: object, email: object) -> Manager | None:
    """The policy's manager with this Slack user id or, failing that, this (verified) e-mail."""
    if isinstance(user, str) and (found := policy.manager_of_slack(user)) is not None:
        return policy.managers[found]
    if isinstance(email, str) and email:
        wanted = email.lower()
        for manager in policy.managers.values():
            if manager.email is not None and manager.email.lower() == wanted:
                return manager
    return None


def safe_next(value: object) -> str:
    """Where to go after signing in: a dashboard page of this site, never anywhere else."""
    if (
        isinstance(value, str)
        and (value == HOME or value.startswith((HOME + "/", HOME + "?")))
        and len(value) <= 512
        and value.isascii()
        and value.isprintable()
        and "\\" not in value
        and "//" not in value
    ):
        return value
    return HOME


def _who(visitor: Visitor) -> str:
    """Whose sessions signing out everywhere ends: a manager's, or every token session."""
    return f"manager:{visitor.manager.id}" if visitor.manager is not None else "token"


def _named(visitor: Visitor | None) -> str:
    """Who signed out, for the log (never the session's id)."""
    if visitor is None:
        return "a session no longer let in"
    if visitor.manager is None:
        return "a holder of the dashboard token"
    return f"manager {visitor.manager.id}"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _unauthorized(message: str) -> web.Response:
    return web.json_response(
        {"error": message},
        status=401,
        headers={
            "WWW-Authenticate": 'Bearer realm="leadrouter dashboard"',
            "Cache-Control": "no-store",
        },
    )
