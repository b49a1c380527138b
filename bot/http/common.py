"""What every handler shares: the application's keys, reading a body (at most MAX_BODY_BYTES) and
its JSON (only what every part below can store and answer with), and answering an error."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from bot.bootstrap import App
from bot.json_keys import KeyTwice
from bot.metrics import Metrics

MAX_BODY_BYTES = 1 << 20
# Deeper JSON than any lead needs would only reach the recursion limit further down.
MAX_DEPTH = 32
# RFC 8259: integers beyond ±2^53 do not survive other JSON implementations, and Python's own
# float() overflows on the far larger ones it would otherwise accept.
MAX_SAFE_INTEGER = 2**53

APP_KEY = web.AppKey("leadrouter", App)
METRICS_KEY = web.AppKey("metrics", Metrics)


class BadBody(ValueError):
    """The body is not a lead or a batch of leads (400); the message says what it must be."""


def decode_json(body: bytes) -> Any:
    """The body as JSON that every part below can store and answer with, or BadBody."""
    if not body.strip():
        raise BadBody("the body is empty: send the JSON in the request's body")
    keys = KeyTwice()
    try:
        data = json.loads(
            body,
            parse_constant=_no_constant,
            parse_int=_safe_int,
            parse_float=_finite_float,
            object_pairs_hook=keys,
        )
    except RecursionError:
        raise BadBody(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    except BadBody:
        raise
    except UnicodeDecodeError as exc:
        raise BadBody(
            f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} at position {exc.start}): "
            "encode the JSON as UTF-8 and sign those bytes"
        ) from None
    except ValueError as exc:  # JSONDecodeError
        raise BadBody(f"the body is not valid JSON ({_first_line(exc)})") from None
    if (twice := keys.problem()) is not None:
        raise BadBody(f"the body has {twice}: send each key once")
    _check_values(data)
    return data


def _no_constant(name: str) -> Any:
    raise BadBody(f"the body is not valid JSON ({name} is not a JSON number)")


def _safe_int(text: str) -> int:
    # Checked on the text, before int() could spend time on a very long one.
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        raise BadBody(f"the number {text[:20]} is too large; numbers must be within ±2^53")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadBody(f"the number {text[:20]} is too large")
    return value


def _check_values(data: Any) -> None:
    """Depth, and text the databases can store: no lone surrogates (not UTF-8 at all) and no
    NUL characters (which PostgreSQL text cannot hold)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadBody(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise BadBody("text in the body must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadBody("text in the body must be valid Unicode (it has a lone surrogate)") from None


def _first_line(exc: ValueError) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# RFC 8259: JSON is UTF-8 (ASCII being part of it); json.loads also reads UTF-16 and UTF-32.
JSON_CHARSETS = frozenset(
    (
        "utf-8",
        "utf8",
        "us-ascii",
        "ascii",
        "utf-16",
        "utf-16le",
        "utf-16be",
        "utf-32",
        "utf-32le",
        "utf-32be",
    )
)


def json_content_problem(request: web.Request, what: str) -> str | None:
    """Why the request's Content-Type is not JSON that can be read (a 415), naming what it
    came as; None when it is. `what` is what the body should hold ("the lead")."""
    if request.content_type != "application/json":
        sent = (
            f"it came as {request.content_type[:100]}"
            if request.headers.get(hdrs.CONTENT_TYPE)
            else "it came with no Content-Type"
        )
        return f"send {what} as JSON, with Content-Type: application/json ({sent})"
    charset = request.charset
    if charset is not None and charset.strip('"').lower() not in JSON_CHARSETS:
        return (
            f"send {what} as JSON in UTF-8: this request says charset={charset[:40]}; encode "
            "the body as UTF-8, sign those bytes and send charset=utf-8 (or no charset)"
        )
    return None


def error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def read_body(request: web.Request) -> bytes | None:
    """The request's body; None when it is larger than MAX_BODY_BYTES."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None


def too_large() -> web.Response:
    return error(
        413,
        f"the body is larger than 1 MiB ({MAX_BODY_BYTES} bytes): send fewer at once, "
        "or shorter fields",
    )
