"""The address a request came from, for the access log: the connection's, unless that is a proxy
named in TRUSTED_PROXIES (Caddy in front), when it is the right-most address of X-Forwarded-For
that is not a trusted proxy's.

Each proxy appends the address it was reached from, so only the entries at the right, written by
proxies of ours, can be believed: anything left of them the client may have written itself. From
a connection not of a trusted proxy the header is never read, and with no TRUSTED_PROXIES (the
default) never at all.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger

Network = IPv4Network | IPv6Network


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address: `peer` (the connection's) unless it is in `trusted`, then walking
    `forwarded_for` (each X-Forwarded-For line, in order) from the right past trusted proxies.
    An entry that is no address stops the walk at the proxy that wrote it, and when every
    entry is a trusted proxy's the left-most is the client."""
    if peer is None or not _trusted(_address(peer), trusted):
        return peer
    entries = [entry.strip() for line in forwarded_for for entry in line.split(",")]
    hop = peer
    for entry in reversed([entry for entry in entries if entry]):
        address = _address(entry.removeprefix("[").removesuffix("]"))
        if address is None:
            break
        hop = str(address)
        if not _trusted(address, trusted):
            break
    return hop


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # an IPv4 client on a socket taking both
    return address


def _trusted(address: IPv4Address | IPv6Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def access_log(trusted: Sequence[Network]) -> type[AbstractAccessLogger]:
    """The access log's writer for `web.AppRunner(access_log_class=...)`: the line aiohttp's
    writes with the format `%a "%r" %s %b %Tf "%{User-Agent}i"`, and its fields (which the JSON
    log and `bot.logs` read), with the client found by `client_address` where aiohttp's has the
    connection's address, a proxy's behind one (and a request's address cannot be replaced once
    its body was read). The time is the line's own; how long a request took is worth a field."""
    proxies = tuple(trusted)

    class AccessLog(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            try:
                self._write(request, response, time)
            except Exception:  # as aiohttp's does: a line not written never fails the request
                self.logger.exception("the access log's line could not be written")

        def _write(
            self, request: web.BaseRequest, response: web.StreamResponse, time: float
        ) -> None:
            client = client_address(
                request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []), proxies
            )
            version = request.version
            first_line = f"{request.method} {request.path_qs} HTTP/{version.major}.{version.minor}"
            took = f"{time:06f}"
            agent = request.headers.get(hdrs.USER_AGENT, "-")
            # Written whole, with no arguments, as aiohttp's is: a filter rewrites the line
            # itself (the dashboard's hides Slack's sign-in code in the callback's query).
            line = (
                f'{client or "-"} "{first_line}" {response.status} {response.body_length} '
                f'{took} "{agent}"'
            )
            self.logger.info(
                line,
                extra={
                    "remote_address": client or "-",
                    "first_request_line": first_line,
                    "response_status": response.status,
                    "response_size": response.body_length,
                    "request_time_frac": took,
                    "request_header": {"User-Agent": agent},
                },
            )

        @property
        def enabled(self) -> bool:
            return self.logger.isEnabledFor(logging.INFO)

    return AccessLog
