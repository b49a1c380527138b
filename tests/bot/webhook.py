"""What a caller of `POST /leads` does, written from the documented contract rather than taken
from `bot.http`, so a mistake there cannot hide in the tests too."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

SECRET = "test-webhook-secret-0123456789"
TABLES = ("leads", "offers", "decisions", "outbox", "audit_events", "rep_state", "team_state")


def signed(
    body: bytes,
    *,
    at: float,
    secret: str = SECRET,
    content_type: str | None = "application/json",
) -> dict[str, str]:
    timestamp = str(int(at))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {
        "X-Leadrouter-Timestamp": timestamp,
        "X-Leadrouter-Signature": f"sha256={digest.hexdigest()}",
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def as_body(data: Any) -> bytes:
    return json.dumps(data).encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def row_counts(database: Path) -> dict[str, int]:
    """Rows per table, read with the standard library so the code under test plays no part."""
    with sqlite3.connect(database) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in TABLES
        }
