"""The address a request came from: the connection's, unless that is a proxy named in
TRUSTED_PROXIES, when X-Forwarded-For's right-most address not of a trusted proxy is."""

from __future__ import annotations

import logging
from ipaddress import ip_network

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.dashboard.access import hide_sign_in_codes
from bot.dashboard.slack_sign_in import CALLBACK_PATH
from bot.http.forwarded import access_log, client_address
from bot.logs import ACCESS_LOGGER

PROXIES = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert client_address("10.0.0.2", ["203.0.113.9"], ()) == "10.0.0.2"


def test_a_request_not_from_a_trusted_proxy_is_its_connections_whatever_it_says() -> None:
    assert client_address("198.51.100.4", ["203.0.113.9"], PROXIES) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwarded_for() -> None:
    assert client_address("10.0.0.2", ["203.0.113.9"], PROXIES) == "203.0.113.9"


def test_addresses_a_client_wrote_itself_left_of_the_proxys_are_not_believed() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended what it saw.
    assert client_address("10.0.0.2", ["1.2.3.4, 203.0.113.9"], PROXIES) == "203.0.113.9"
    # Two proxies of ours in a row, and the header split over two lines.
    assert client_address("10.0.0.2", ["1.2.3.4", "203.0.113.9 ,10.0.0.3"], PROXIES) == (
        "203.0.113.9"
    )


def test_a_trusted_proxy_that_forwarded_for_no_one_is_the_client() -> None:
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", [" , "], PROXIES) == "10.0.0.2"


def test_when_every_forwarded_address_is_a_trusted_proxy_the_first_is_the_client() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 10.0.0.3"], PROXIES) == "10.9.9.9"


def test_an_entry_that_is_no_address_stops_the_walk_at_the_proxy_that_wrote_it() -> None:
    # Text in the header is never logged as a client address.
    assert client_address("10.0.0.2", ["203.0.113.9, <script>"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["<script>, 10.0.0.3"], PROXIES) == "10.0.0.3"


def test_ipv6_proxies_and_clients_and_ipv4_written_as_ipv6() -> None:
    assert client_address("fd00::2", ["2001:db8::7"], PROXIES) == "2001:db8::7"
    assert client_address("fd00::2", ["[2001:db8::7]"], PROXIES) == "2001:db8::7"
    assert client_address("::ffff:10.0.0.2", ["203.0.113.9"], PROXIES) == "203.0.113.9"


def test_a_connection_without_an_address_is_kept_as_it_is() -> None:
    assert client_address(None, ["203.0.113.9"], PROXIES) is None


# --- the access log's line ------------------------------------------------------------------


async def test_the_access_line_is_written_whole_so_the_dashboards_filter_still_hides_codes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Slack's sign-in code comes back in the callback's query string; the dashboard's filter
    # on the access logger rewrites the line, which it can only do to a line written whole.
    hide_sign_in_codes(logging.getLogger(ACCESS_LOGGER))
    http = web.Application()
    http.router.add_get(CALLBACK_PATH, lambda _: web.Response(text="ok"))
    server = TestServer(http)
    await server.start_server(access_log_class=access_log(PROXIES[:1]))  # as `serve` runs it
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with TestClient(server) as client:
        response = await client.get(
            f"{CALLBACK_PATH}?code=T0001.secret-code&state=s3cret",
            headers={"User-Agent": "probe/1", "X-Forwarded-For": "203.0.113.9"},
        )
        assert response.status == 200
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = record.getMessage()
    assert line.startswith(f'127.0.0.1 "GET {CALLBACK_PATH}?(hidden) HTTP/1.1" 200 ')
    assert line.endswith('"probe/1"')
    assert "secret" not in line and "s3cret" not in line
    assert record.first_request_line == f"GET {CALLBACK_PATH}?(hidden) HTTP/1.1"  # type: ignore[attr-defined]
    assert record.response_status == 200  # type: ignore[attr-defined]
