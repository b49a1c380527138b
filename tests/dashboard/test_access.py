"""Who sees the dashboard: the bearer token, the token form, Sign in with Slack for the policy's
managers (against Slack's side on a loopback port, through slack_sdk's real client), and nobody
else: a redirect to sign in for a page, 401 for data, never the data itself."""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie

import pytest
from aiohttp import ClientResponse

from bot.dashboard.access import safe_next
from routing.policy import Policy, parse_policy
from tests.dashboard.conftest import BEARER, MARIA, TOKEN, MakeDashboard, queue_leads
from tests.fakes.slack_sign_in import CLIENT_SECRET, FakeSlackSignIn, Person

PAGES = ("/dashboard", "/dashboard/fairness", "/dashboard/queue")
DATA = ("/dashboard/overview.csv", "/dashboard/fairness.csv", "/dashboard/queue.csv")
MANAGER = Person(MARIA[0], "Maria Lopez", MARIA[1])
STRANGER = Person("U0STRANGER", "Sam Stranger", "sam@elsewhere.example")
QUEUED = {"id": "Q-SECRET-1", "company": "Kabushiki Widgets"}


def session_cookie(response: ClientResponse) -> dict[str, str]:
    """The attributes of the session cookie a response sets, lower-cased ("" for flags)."""
    cookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        cookie.load(header)
    morsel = cookie["leadrouter_dashboard"]
    return {key: str(value) for key, value in morsel.items() if value} | {"value": morsel.value}


# --- nobody without credentials --------------------------------------------------------------


async def test_without_credentials_a_page_redirects_to_sign_in_and_data_answers_401(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(dashboard.app, QUEUED)
    for path in PAGES:
        response = await dashboard.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"] == f"/dashboard/sign-in?next={path.replace('/', '%2F')}"
        assert "Q-SECRET-1" not in await response.text()
    for path in DATA:
        response = await dashboard.client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert await response.json() == {"error": "sign in first (docs/dashboard.md)"}


async def test_a_wrong_bearer_token_is_refused_401_on_pages_and_data_and_never_repeated(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    for path in (*PAGES, *DATA):
        for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}"):
            response = await dashboard.client.get(path, headers={"Authorization": header})
            assert response.status == 401, (path, header)
            body = await response.text()
            assert TOKEN[:12] not in body
            assert "not the dashboard's bearer token" in body


async def test_a_dashboard_not_set_up_lets_nobody_in_and_its_sign_in_page_says_what_to_set(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(token=None)
    for path in PAGES:
        response = await dashboard.client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/dashboard/sign-in?next=")
    for path in DATA:
        response = await dashboard.client.get(path)
        assert response.status == 401
        assert "LEADROUTER_DASHBOARD_TOKEN" in (await response.json())["error"]
    page = await (await dashboard.client.get("/dashboard/sign-in")).text()
    assert "not set up" in page and "SLACK_CLIENT_ID" in page
    assert 'name="token"' not in page and 'id="sign-in-with-slack"' not in page


# --- the token -------------------------------------------------------------------------------


async def test_the_bearer_token_opens_every_page_and_every_csv(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    for path in (*PAGES, "/dashboard/queue.csv"):
        response = await dashboard.client.get(path, headers=BEARER)
        assert response.status == 200, path
        assert response.headers["Cache-Control"] == "no-store"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_token_form_signs_in_with_an_httponly_lax_cookie_not_secure_on_loopback(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    response = await dashboard.client.post(
        "/dashboard/sign-in",
        data={"token": TOKEN, "next": "/dashboard/queue"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard/queue"
    cookie = session_cookie(response)
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/dashboard"
    assert "secure" not in cookie
    assert TOKEN not in cookie["value"]
    assert (await dashboard.client.get("/dashboard/queue")).status == 200  # the cookie lets in
    signed_out = await dashboard.client.post("/dashboard/sign-out", allow_redirects=False)
    assert signed_out.headers["Location"] == "/dashboard/sign-in"
    again = await dashboard.client.get("/dashboard/queue", allow_redirects=False)
    assert again.status == 303


async def test_a_wrong_token_in_the_form_is_refused_401_with_no_cookie(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    response = await dashboard.client.post("/dashboard/sign-in", data={"token": TOKEN + "x"})
    assert response.status == 401
    assert "That is not the dashboard token." in await response.text()
    assert "Set-Cookie" not in response.headers


async def test_a_sign_in_form_that_cannot_be_read_is_refused_400_with_a_sentence(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    response = await dashboard.client.post(
        "/dashboard/sign-in",
        data=b"token=" + TOKEN.encode(),  # said to be multipart, with no boundary in it
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status == 400
    assert "The sign-in form could not be read" in await response.text()
    assert "Set-Cookie" not in response.headers


async def test_the_dashboard_with_a_trailing_slash_is_sent_to_the_dashboard_not_a_404(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()
    response = await dashboard.client.get(
        "/dashboard/?since=30d&by=team", headers=BEARER, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard?since=30d&by=team"
    followed = await dashboard.client.get("/dashboard/", headers=BEARER)
    assert followed.status == 200 and str(followed.url).endswith("/dashboard")


async def test_cookies_are_secure_where_the_public_address_is_not_loopback(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(public_url="https://leads.example.com")
    response = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, allow_redirects=False
    )
    assert "secure" in session_cookie(response)


async def test_a_forged_or_expired_session_cookie_lets_nobody_in(
    make_dashboard: MakeDashboard,
) -> None:
    now = [1_800_000_000.0]
    dashboard = await make_dashboard(wall_clock=lambda: now[0])
    response = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, allow_redirects=False
    )
    value = session_cookie(response)["value"]
    payload, signature = value.split(".")
    for forged in (f"{payload}.{signature[:-2]}AA", f"{payload[:-2]}AA.{signature}", "x", ""):
        dashboard.client.session.cookie_jar.clear()
        dashboard.client.session.cookie_jar.update_cookies({"leadrouter_dashboard": forged})
        answer = await dashboard.client.get("/dashboard/queue", allow_redirects=False)
        assert answer.status == 303, forged
    dashboard.client.session.cookie_jar.update_cookies({"leadrouter_dashboard": value})
    assert (await dashboard.client.get("/dashboard/queue")).status == 200
    now[0] += 12 * 3600 + 1
    assert (await dashboard.client.get("/dashboard/queue", allow_redirects=False)).status == 303


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/dashboard/queue", "/dashboard/queue"),
        ("/dashboard?since=30d&by=team", "/dashboard?since=30d&by=team"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboard//evil.example", "/dashboard"),
        ("/dashboardx", "/dashboard"),
        ("/dashboard/\\evil", "/dashboard"),
        ("/dashboard/\r\nSet-Cookie: x=1", "/dashboard"),
        (None, "/dashboard"),
    ],
)
def test_after_signing_in_only_a_dashboard_page_of_this_site_is_gone_to(
    asked: str | None, goes_to: str
) -> None:
    assert safe_next(asked) == goes_to


# --- Sign in with Slack ----------------------------------------------------------------------


async def test_a_manager_signs_in_with_slack_and_sees_the_page_they_asked_for(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    await queue_leads(dashboard.app, QUEUED)
    sign_in.signed_in_as = MANAGER
    first = await dashboard.client.get("/dashboard/queue", allow_redirects=False)
    sign_in_page = await dashboard.client.get(first.headers["Location"])
    assert "Sign in with Slack" in await sign_in_page.text()

    response = await dashboard.client.get("/dashboard/sign-in/slack?next=%2Fdashboard%2Fqueue")
    assert response.status == 200
    assert str(response.url).endswith("/dashboard/queue")
    assert "Q-SECRET-1" in await response.text()
    assert "Maria Lopez" in await response.text()
    authorize, token, user_info = sign_in.calls
    assert authorize.params["scope"] == "openid email profile"
    assert authorize.params["redirect_uri"] == sign_in.redirect_uri
    assert token.error is None and token.params["code"].startswith("T0001.")
    assert token.params["redirect_uri"] == sign_in.redirect_uri
    assert "client_secret" not in token.params  # sent as HTTP Basic, not in the body
    assert user_info.error is None


async def test_a_manager_signed_in_with_slack_reads_the_queue_in_their_own_time_zone(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    # Maria names no time zone: the example policy's, New York's, is hers. The token's holder
    # is nobody in particular and reads UTC (test_pages).
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    await queue_leads(dashboard.app, QUEUED)
    sign_in.signed_in_as = MANAGER

    response = await dashboard.client.get("/dashboard/sign-in/slack?next=%2Fdashboard%2Fqueue")

    page = await response.text()
    assert "2026-11-17 12:15 EST" in page  # 17:15 UTC, when the lead arrived
    assert "17:15 UTC" not in page


async def test_a_manager_the_policy_names_by_email_alone_is_let_in_once_slack_verified_it(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    by_email = parse_policy(
        "reps: [{id: ann, name: Ann, slack: UANN}]\n"
        "managers: [{id: mo, name: Mo Manager, email: Mo@Example.com}]\n"
        "teams: {solo: {members: [ann], manager: mo}}\n"
        "rules: [{name: Everyone, assign: {team: solo}}]\n"
    )
    dashboard = await make_dashboard(token=None, sign_in=sign_in, with_policy=lambda: by_email)
    sign_in.signed_in_as = Person("U0MO", "Mo", "mo@example.com", email_verified=False)
    refused = await dashboard.client.get("/dashboard/sign-in/slack")
    assert refused.status == 403
    sign_in.signed_in_as = Person("U0MO", "Mo", "mo@example.com")
    response = await dashboard.client.get("/dashboard/sign-in/slack")
    assert response.status == 200 and str(response.url).endswith("/dashboard")


async def test_someone_slack_knows_who_is_no_manager_is_refused_403_with_no_session(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    sign_in.signed_in_as = STRANGER
    response = await dashboard.client.get("/dashboard/sign-in/slack")
    assert response.status == 403
    text = await response.text()
    assert "Sam Stranger (U0STRANGER) is not a manager in the routing policy" in text
    assert not any(c.key == "leadrouter_dashboard" for c in dashboard.client.session.cookie_jar)
    assert (await dashboard.client.get("/dashboard/queue", allow_redirects=False)).status == 303


async def test_a_manager_taken_out_of_the_policy_is_out_on_their_next_request(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, policy: Policy
) -> None:
    current = [policy]
    dashboard = await make_dashboard(token=None, sign_in=sign_in, with_policy=lambda: current[0])
    sign_in.signed_in_as = MANAGER
    assert (await dashboard.client.get("/dashboard/sign-in/slack")).status == 200
    current[0] = parse_policy("reps: [{id: ann, name: Ann, slack: UANN}]\nrules: []\n")
    assert (await dashboard.client.get("/dashboard", allow_redirects=False)).status == 303


async def test_a_callback_slack_was_not_sent_to_from_here_is_refused_and_its_code_never_used(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    callback = "/dashboard/sign-in/slack/callback"
    no_start = await dashboard.client.get(f"{callback}?code=T0001.stolen&state=guessed")
    assert no_start.status == 400
    assert "was not started here" in await no_start.text()
    # A sign-in under way, and a callback with another state (a forged link): refused too.
    sign_in.signed_in_as = MANAGER
    started = await dashboard.client.get("/dashboard/sign-in/slack", allow_redirects=False)
    assert started.status == 303
    forged = await dashboard.client.get(f"{callback}?code=T0001.stolen&state=guessed")
    assert forged.status == 400
    assert [call.method for call in sign_in.calls] == []  # nothing reached Slack


async def test_slack_refusing_the_code_or_the_person_cancelling_is_a_sentence_not_a_crash(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    sign_in.signed_in_as = MANAGER
    sign_in.refuse_codes = True
    response = await dashboard.client.get("/dashboard/sign-in/slack")
    assert response.status == 502
    assert "Slack refused the sign-in (invalid_code)" in await response.text()
    sign_in.denies = True
    response = await dashboard.client.get("/dashboard/sign-in/slack")
    assert response.status == 403
    assert "Slack did not sign you in (access_denied)" in await response.text()


async def test_no_secret_token_code_or_state_of_a_sign_in_reaches_the_log(
    make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dashboard = await make_dashboard(sign_in=sign_in)
    sign_in.signed_in_as = MANAGER
    assert (await dashboard.client.get("/dashboard/sign-in/slack")).status == 200
    sign_in.signed_in_as = STRANGER
    assert (await dashboard.client.get("/dashboard/sign-in/slack")).status == 403
    await dashboard.client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}x"})
    states = [call.params["state"] for call in sign_in.calls if call.method == "authorize"]
    logged = caplog.text
    assert "manager maria signed in with Slack" in logged
    for secret in (CLIENT_SECRET, TOKEN, *sign_in.secrets_seen(), *states):
        assert secret not in logged


# --- forms posted from another site ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.leads.example"},
    ],
)
async def test_a_form_posted_from_another_site_is_refused_403_and_signs_nobody_in_or_out(
    make_dashboard: MakeDashboard, headers: dict[str, str]
) -> None:
    dashboard = await make_dashboard()
    signed_in = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, allow_redirects=False
    )
    assert signed_in.status == 303

    sign_out = await dashboard.client.post(
        "/dashboard/sign-out", headers=headers, allow_redirects=False
    )
    sign_in = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, headers=headers, allow_redirects=False
    )

    assert sign_out.status == 403 and sign_in.status == 403
    assert "Set-Cookie" not in sign_out.headers and "Set-Cookie" not in sign_in.headers
    assert "another site" in await sign_out.text()
    still = await dashboard.client.get("/dashboard/queue", allow_redirects=False)
    assert still.status == 200


@pytest.mark.parametrize("origin", ["own", "null"])  # null: what the no-referrer policy sends
async def test_a_form_posted_from_the_dashboards_own_page_is_taken(
    make_dashboard: MakeDashboard, origin: str
) -> None:
    dashboard = await make_dashboard()
    own = str(dashboard.client.make_url("/")).rstrip("/")
    headers = {"Origin": own if origin == "own" else "null", "Sec-Fetch-Site": "same-origin"}

    response = await dashboard.client.post(
        "/dashboard/sign-in", data={"token": TOKEN}, headers=headers, allow_redirects=False
    )

    assert response.status == 303
    assert session_cookie(response)["value"]


# --- files served by name ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/../access.py",
        "/dashboard/static/%2e%2e/access.py",
        "/dashboard/static/..%2faccess.py",
        "/dashboard/static/%2e%2e%2f%2e%2e%2fsettings.py",
        "/dashboard/static/vendor/../../session.py",
        "/dashboard/static/..\\access.py",
        "/dashboard/static//etc/passwd",
    ],
)
async def test_a_static_path_climbing_out_of_the_static_folder_serves_no_file(
    make_dashboard: MakeDashboard, path: str
) -> None:
    dashboard = await make_dashboard()
    assert dashboard.client.port is not None
    # Sent byte for byte: an HTTP client would tidy the dots away before they reached the server.
    reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.client.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()

    status = answer.split(b" ", 2)[1]
    assert status != b"200", answer[:300]
    assert b"import" not in answer and b"root:" not in answer
