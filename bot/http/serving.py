"""Serving the HTTP application: sockets bound before anything else starts, then served until
SIGTERM or SIGINT, with the requests in flight given time to finish."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.http.common import APP_KEY
from bot.http.forwarded import access_log

log = logging.getLogger("bot.http")

SHUTDOWN_TIMEOUT_S = 30.0


class ListenError(Exception):
    """The address cannot be listened on; the message says why and what to change."""


@dataclass
class Listener:
    """Sockets bound and listening, before anything else starts: a port in use or an address
    not of this machine is found before the database is migrated or a job is scheduled."""

    sockets: list[socket.socket]
    url: str

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


LISTEN_BACKLOG = 128


def listen(host: str, port: int) -> Listener:
    """Bind every address `host` resolves to (as asyncio's create_server would), or ListenError."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(
            f"cannot listen on {where}: {host} is not an address of this machine nor a name "
            f"it can look up ({exc.strerror}); set HOST to 0.0.0.0 for every address, or to "
            "127.0.0.1"
        ) from None
    sockets: list[socket.socket] = []
    bound: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in bound:
                continue
            bound.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio does: an IPv6 one would take IPv4 too.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {where}: {_why_not(exc, host)}") from None
    shown_host = f"[{host}]" if ":" in host else host
    return Listener(sockets, f"http://{shown_host}:{port}")


def _why_not(exc: OSError, host: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "another program listens there already; stop it, or set PORT to a free port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine; set HOST to one of its addresses, "
            "or to 0.0.0.0 for all of them"
        )
    if exc.errno == errno.EACCES:
        return "not allowed (ports below 1024 need more rights); set PORT to 1024 or above"
    return exc.strerror or str(exc)


async def run(http: web.Application, listener: Listener, *, started: Callable[[str], None]) -> None:
    """Serve on the listener's sockets until SIGTERM or SIGINT, then stop accepting, finish the
    requests in flight (up to SHUTDOWN_TIMEOUT_S) and run the app's cleanup. `started` gets the
    URL once it serves."""
    received: list[signal.Signals] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(sig, received, stop))
    runner = web.AppRunner(
        http,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        access_log_class=access_log(http[APP_KEY].settings.trusted_proxies),
    )
    try:
        await runner.setup()
        for sock in listener.sockets:
            await web.SockSite(runner, sock).start()
        started(listener.url)
        await stop.wait()
        log.info(
            "%s received: stopping (no new requests; those in flight have %g s to finish)",
            received[0].name,
            SHUTDOWN_TIMEOUT_S,
        )
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _stopper(
    sig: signal.Signals, received: list[signal.Signals], stop: asyncio.Event
) -> Callable[[], None]:
    def handle() -> None:
        received.append(sig)
        stop.set()

    return handle
