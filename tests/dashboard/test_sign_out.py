"""Signing out ends the session on the server, not only in the browser that signed out: a copy of
its cookie (a shared computer's, a stolen one) is refused afterwards by every replica, as an
expired one is. Only that session ends, unless the manager signs out everywhere."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import timedelta

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.dashboard.session import SESSION_COOKIE, CookieJar, session_key
from routing.policy import Policy, parse_policy
from storage.db import Database
from tests.bot.conftest import TUESDAY
from tests.dashboard.conftest import MARIA, TOKEN, Dashboard, MakeDashboard, queue_leads
from tests.fakes.slack_sign_in import FakeSlackSignIn, Person

MANAGER = Person(MARIA[0], "Maria Lopez", MARIA[1])
OTHER_MANAGER = Person("U0MO", "Mo Manager", "mo@example.com")
TWO_MANAGERS = (
    "reps: [{id: ann, name: Ann, slack: UANN}]\n"
    "managers:\n"
    f"  - {{id: maria, name: Maria Lopez, slack: {MARIA[0]}}}\n"
    "  - {id: mo, name: Mo Manager, slack: U0MO}\n"
    "teams: {solo: {members: [ann], manager: maria}}\n"
    "rules: [{name: Everyone, assign: {team: solo}}]\n"
)


@pytest.fixture
def two_managers() -> Policy:
    return parse_policy(TWO_MANAGERS)


def in_browser(dashboard: Dashboard, cookie: str | None) -> None:
    """Make the test client a browser holding this session cookie (or none)."""
    jar = dashboard.client.session.cookie_jar
    jar.clear()
    if cookie is not None:
        jar.update_cookies({SESSION_COOKIE: cookie})


def held_cookie(dashboard: Dashboard) -> str:
    (value,) = [c.value for c in dashboard.client.session.cookie_jar if c.key == SESSION_COOKIE]
    return value


async def signed_in_with_token(dashboard: Dashboard) -> str:
    """A new browser signed in with the token form: its session cookie."""
    in_browser(dashboard, None)
    response = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, allow_redirects=False
    )
    assert response.status == 303
    return response.cookies[SESSION_COOKIE].value


async def signed_in_with_slack(
    dashboard: Dashboard, sign_in: FakeSlackSignIn, person: Person
) -> str:
    """A new browser where `person` signed in with Slack: its session cookie."""
    in_browser(dashboard, None)
    sign_in.signed_in_as = person
    response = await dashboard.client.get("/dashboard/sign-in/slack")
    assert response.status == 200 and str(response.url).endswith("/dashboard")
    return held_cookie(dashboard)


async def page_status(dashboard: Dashboard, cookie: str, path: str = "/dashboard/queue") -> int:
    in_browser(dashboard, cookie)
    response = await dashboard.client.get(path, allow_redirects=False)
    return response.status


async def sign_out(dashboard: Dashboard, cookie: str, *, everywhere: bool = False) -> None:
    in_browser(dashboard, cookie)
    form = {"everywhere": "1"} if everywhere else {}
    response = await dashboard.client.post("/dashboard/sign-out", data=form, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard/sign-in"
    assert response.cookies[SESSION_COOKIE].value == ""  # the browser forgets it


async def test_a_cookie_copied_before_signing_out_is_refused_after_it_like_an_expired_one(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(dashboard.app, {"id": "Q-SECRET-1"})
    copy = await signed_in_with_token(dashboard)
    assert await page_status(dashboard, copy) == 200

    await sign_out(dashboard, copy)

    in_browser(dashboard, copy)
    page = await dashboard.client.get("/dashboard/queue", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/dashboard/sign-in?next=%2Fdashboard%2Fqueue"
    assert "Q-SECRET-1" not in await page.text()
    data = await dashboard.client.get("/dashboard/queue.csv")
    assert data.status == 401
    assert await data.json() == {"error": "sign in first (docs/dashboard.md)"}


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_a_session_signed_out_on_one_replica_is_refused_by_another_over_the_same_database(
    make_dashboard: MakeDashboard, db: Database, replica_db: Database
) -> None:
    one = await make_dashboard(db=db)
    other = await make_dashboard(db=replica_db)
    copy = await signed_in_with_token(one)
    kept = await signed_in_with_token(other)
    assert await page_status(other, copy) == 200  # every replica accepts the others' cookies

    await sign_out(one, copy)

    assert await page_status(other, copy) == 303
    assert await page_status(one, copy) == 303
    assert await page_status(one, kept) == 200
    assert await page_status(other, kept) == 200


class WallClock:
    """A replica's clock (unix seconds): the true time, which the test moves, plus its skew."""

    def __init__(self, true_time: list[float], skew: timedelta) -> None:
        self.true_time, self.skew = true_time, skew.total_seconds()

    def __call__(self) -> float:
        return self.true_time[0] + self.skew


async def replicas_minutes_apart(
    make_dashboard: MakeDashboard, db: Database, replica_db: Database
) -> tuple[list[float], Dashboard, Dashboard]:
    """Two replicas over one database, one's clock 5 minutes ahead, the other's 5 behind; and
    the true time both follow."""
    true_time = [TUESDAY.timestamp()]
    ahead = await make_dashboard(db=db, wall_clock=WallClock(true_time, timedelta(minutes=5)))
    behind = await make_dashboard(
        db=replica_db, wall_clock=WallClock(true_time, -timedelta(minutes=5))
    )
    return true_time, ahead, behind


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_signing_out_everywhere_ends_a_session_signed_in_just_before_on_a_replica_ahead(
    make_dashboard: MakeDashboard, db: Database, replica_db: Database
) -> None:
    true_time, ahead, behind = await replicas_minutes_apart(make_dashboard, db, replica_db)
    asking = await signed_in_with_token(behind)
    true_time[0] += 1
    just_before = await signed_in_with_token(ahead)  # dated 5 minutes later than the sign-out
    true_time[0] += 1

    await sign_out(behind, asking, everywhere=True)

    assert await page_status(behind, just_before) == 303
    assert await page_status(ahead, just_before) == 303
    assert await page_status(ahead, asking) == 303


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_a_session_signed_in_just_after_signing_out_everywhere_on_a_replica_behind_lets_in(
    make_dashboard: MakeDashboard, db: Database, replica_db: Database
) -> None:
    true_time, ahead, behind = await replicas_minutes_apart(make_dashboard, db, replica_db)
    asking = await signed_in_with_token(ahead)
    true_time[0] += 1
    await sign_out(ahead, asking, everywhere=True)
    true_time[0] += 1

    just_after = await signed_in_with_token(behind)  # dated 5 minutes before the sign-out

    assert await page_status(behind, just_after) == 200
    assert await page_status(ahead, just_after) == 200
    assert await page_status(behind, asking) == 303


async def test_signing_out_ends_that_session_alone_not_the_managers_others_nor_anyone_elses(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, two_managers: Policy
) -> None:
    dashboard = await make_dashboard(sign_in=sign_in, with_policy=lambda: two_managers)
    laptop = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    phone = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    mo = await signed_in_with_slack(dashboard, sign_in, OTHER_MANAGER)
    token = await signed_in_with_token(dashboard)

    await sign_out(dashboard, laptop)

    assert await page_status(dashboard, laptop) == 303
    assert await page_status(dashboard, phone) == 200
    assert await page_status(dashboard, mo) == 200
    assert await page_status(dashboard, token) == 200


async def test_signing_out_everywhere_ends_every_session_of_that_manager_and_no_one_elses(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, two_managers: Policy
) -> None:
    dashboard = await make_dashboard(sign_in=sign_in, with_policy=lambda: two_managers)
    laptop = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    phone = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    mo = await signed_in_with_slack(dashboard, sign_in, OTHER_MANAGER)
    token = await signed_in_with_token(dashboard)

    await sign_out(dashboard, laptop, everywhere=True)

    assert await page_status(dashboard, laptop) == 303
    assert await page_status(dashboard, phone) == 303
    assert await page_status(dashboard, mo) == 200
    assert await page_status(dashboard, token) == 200
    again = await signed_in_with_slack(dashboard, sign_in, MANAGER)  # a new sign-in works
    assert await page_status(dashboard, again) == 200


async def test_a_session_already_ended_cannot_sign_its_manager_out_everywhere(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    stolen = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    await sign_out(dashboard, stolen)
    current = await signed_in_with_slack(dashboard, sign_in, MANAGER)

    await sign_out(dashboard, stolen, everywhere=True)
    await sign_out(dashboard, stolen)  # and signing out twice is no error

    assert await page_status(dashboard, current) == 200


async def test_a_get_of_the_sign_out_address_signs_nobody_out(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    cookie = await signed_in_with_token(dashboard)
    in_browser(dashboard, cookie)

    response = await dashboard.client.get("/dashboard/sign-out", allow_redirects=False)

    assert response.status == 405
    assert "Set-Cookie" not in response.headers
    assert await page_status(dashboard, cookie) == 200


async def test_a_sign_out_posted_from_another_site_ends_no_session(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    cookie = await signed_in_with_token(dashboard)
    in_browser(dashboard, cookie)

    refused = await dashboard.client.post(
        "/dashboard/sign-out",
        data={"everywhere": "1"},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )

    assert refused.status == 403
    assert await page_status(dashboard, cookie) == 200


async def test_a_manager_taken_out_of_the_policy_stays_out_whatever_their_session(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, two_managers: Policy
) -> None:
    current = [two_managers]
    dashboard = await make_dashboard(sign_in=sign_in, with_policy=lambda: current[0])
    mo = await signed_in_with_slack(dashboard, sign_in, OTHER_MANAGER)
    maria = await signed_in_with_slack(dashboard, sign_in, MANAGER)

    current[0] = parse_policy(
        TWO_MANAGERS.replace("  - {id: mo, name: Mo Manager, slack: U0MO}\n", "")
    )

    assert await page_status(dashboard, mo) == 303
    assert await page_status(dashboard, maria) == 200


async def test_a_session_cookie_from_before_sessions_had_an_id_is_refused(
    make_dashboard: MakeDashboard,
) -> None:
    """Such a session could not be ended: its holder signs in again, once."""
    dashboard = await make_dashboard()
    response = web.Response()
    old = CookieJar(session_key(None, SecretStr(TOKEN)) or b"", time.time)
    old.write(
        response, SESSION_COOKIE, {"via": "token"}, lifetime_s=3600, path="/dashboard", secure=False
    )

    assert await page_status(dashboard, response.cookies[SESSION_COOKIE].value) == 303


async def test_a_cookie_from_before_generations_lets_in_until_its_holder_signs_out_everywhere(
    make_dashboard: MakeDashboard,
) -> None:
    """Signed before revision 0019, with an id but no generation: generation 0, which is current
    until the holder's first sign-out everywhere (0019 made earlier ones generation 1)."""
    dashboard = await make_dashboard()
    response = web.Response()
    old = CookieJar(session_key(None, SecretStr(TOKEN)) or b"", time.time)
    payload = {"via": "token", "sid": "o" * 22, "iat": time.time()}
    old.write(response, SESSION_COOKIE, payload, lifetime_s=3600, path="/dashboard", secure=False)
    before = response.cookies[SESSION_COOKIE].value
    assert await page_status(dashboard, before) == 200

    await sign_out(dashboard, await signed_in_with_token(dashboard), everywhere=True)

    assert await page_status(dashboard, before) == 303


async def test_no_session_id_or_cookie_value_reaches_the_log(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dashboard = await make_dashboard(sign_in=sign_in)
    slack = await signed_in_with_slack(dashboard, sign_in, MANAGER)
    token = await signed_in_with_token(dashboard)
    await sign_out(dashboard, slack, everywhere=True)
    await sign_out(dashboard, token)
    assert await page_status(dashboard, slack) == 303
    assert await page_status(dashboard, token) == 303

    logged = caplog.text
    assert "manager maria signed out everywhere" in logged
    for cookie in (slack, token):
        payload, signature = cookie.split(".")
        assert payload not in logged and signature not in logged
        assert session_id(cookie) not in logged


def session_id(cookie: str) -> str:
    """The id a session cookie carries (readable by whoever holds the cookie)."""
    payload = cookie.split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    sid = decoded["sid"]
    assert isinstance(sid, str) and len(sid) >= 16
    return sid
