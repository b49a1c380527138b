"""Signed cookies: who signed in to the dashboard, and a Slack sign-in under way.

A cookie's value is its JSON payload and an HMAC-SHA256 of it, both base64url: readable by whoever
holds the cookie, forgeable by nobody without the key. The key is derived from the dashboard's own
secrets (`session_key`), so every replica accepts the others' cookies, and changing a secret signs
everybody out. Each payload carries its expiry (`exp`, unix seconds), checked on every read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import SecretStr

from bot.settings import is_loopback

SESSION_COOKIE = "leadrouter_dashboard"
SIGN_IN_COOKIE = "leadrouter_sign_in"
# Why the key is derived rather than the secrets used as they are: a key for this one purpose,
# which says nothing of the secrets it came from.
_KEY_PURPOSE = b"leadrouter dashboard cookies v1"


def session_key(*secrets: SecretStr | None) -> bytes | None:
    """The key cookies are signed with, from the secrets configured (None when there is none)."""
    material = [secret.get_secret_value().encode() for secret in secrets if secret is not None]
    if not material:
        return None
    return hmac.new(b"\0".join(material), _KEY_PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class CookieJar:
    """Writes and reads the dashboard's signed cookies. `secure` says whether the browser reaches
    the dashboard over HTTPS: everywhere but an address of this machine (`secure_for`)."""

    key: bytes
    clock: Callable[[], float]

    def write(
        self,
        response: web.StreamResponse,
        name: str,
        payload: Mapping[str, Any],
        *,
        lifetime_s: int,
        path: str,
        secure: bool,
    ) -> None:
        body = {**payload, "exp": int(self.clock()) + lifetime_s}
        response.set_cookie(
            name,
            self._sign(body),
            max_age=lifetime_s,
            path=path,
            secure=secure,
            httponly=True,
            samesite="Lax",
        )

    def read(self, request: web.Request, name: str) -> dict[str, Any] | None:
        """The cookie's payload, or None when it is missing, forged, malformed or expired."""
        value = request.cookies.get(name)
        if not value or value.count(".") != 1:
            return None
        encoded, signature = value.split(".")
        if not hmac.compare_digest(self._mac(encoded), signature):
            return None
        try:
            payload = json.loads(_unbase64(encoded))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            return None
        return payload if payload["exp"] > self.clock() else None

    def _sign(self, payload: Mapping[str, Any]) -> str:
        encoded = _base64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{encoded}.{self._mac(encoded)}"

    def _mac(self, encoded: str) -> str:
        return _base64(hmac.new(self.key, encoded.encode(), hashlib.sha256).digest())


def secure_for(request: web.Request, public_url: str | None) -> bool:
    """Cookies are Secure (sent over HTTPS only) unless the dashboard is reached on loopback: by
    its public address when one is set, else by the address the browser asked for."""
    host = urlsplit(public_url).hostname if public_url is not None else request.url.host
    return not is_loopback(host or "")


def _base64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unbase64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
