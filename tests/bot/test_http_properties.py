"""Whatever a caller sends to `POST /leads`, the answer is never a 5xx, and a 4xx changes
nothing in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.bot.conftest import Client, Clock
from tests.bot.webhook import row_counts, signed

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
awkward_text = st.sampled_from(["", " ", "\ud800", "a\x00b", "ünïcødé ✉", "𝔘𝔫𝔦", "1,200", "-1"])
wild = st.text(max_size=40) | awkward_text | st.integers() | st.floats() | json_values
ids = st.sampled_from(["L-1", "L-2", "L-3", "L-\ud800"]) | st.text(min_size=1, max_size=12)
emails = st.sampled_from(["cto@bigco.com", "ops@firm.jp", "x@gmail.com", "nope", "a@b"])
countries = st.sampled_from(["US", "Germany", "JP", "Atlantis", "uk"])
plausible_leads = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "email": emails,
        "country": countries,
        "employees": st.integers(min_value=-5, max_value=10**6),
        "score": st.integers(min_value=0, max_value=100) | st.text(max_size=4),
        "company": st.text(max_size=30),
        "crm_system": st.sampled_from(["salesforce", "hubspot", "sap"]),
        "crm_id": st.text(max_size=10),
        "fields.plan": st.text(max_size=10),
    },
)
wild_leads = st.fixed_dictionaries(
    {"id": ids | wild},
    optional={
        name: wild
        for name in ("email", "company", "country", "employees", "score", "crm_id", "fields")
    }
    | {"fields.plan": wild, "leads": wild},
)
leads = plausible_leads | wild_leads


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    json_values.map(dumps),
    leads.map(dumps),
    leads.map(dumps),
    st.lists(leads, min_size=1, max_size=4).map(lambda items: dumps({"leads": items})),
    st.lists(plausible_leads, max_size=4).map(lambda items: dumps({"leads": items})),
    st.lists(st.just({"id": "N"}), min_size=999, max_size=1001).map(
        lambda items: dumps({"leads": items})
    ),
    # Two bytes a character: from half a MiB to a quarter over the limit.
    st.integers(min_value=1 << 18, max_value=5 << 17).map(
        lambda n: json.dumps({"id": "BIG", "notes": "é" * n}, ensure_ascii=False).encode()
    ),
    st.sampled_from([b'{"id": "L-9", "score": NaN}', b"[" * 3000, b'{"id": 1e400}']),
)
FORGED = ["wrong secret", "stale", "future", "no signature", "no timestamp", "garbage"]
# Mostly signed and JSON: a request refused at the door never reaches the parts worth testing.
AUTH = ["signed"] * len(FORGED) + FORGED
CONTENT_TYPES = ["application/json"] * 4 + ["application/json; charset=utf-8", "text/plain", None]


def headers_for(body: bytes, auth: str, content_type: str | None, now: float) -> dict[str, str]:
    headers = signed(body, at=now, content_type=content_type)
    if auth == "wrong secret":
        headers = signed(body, at=now, secret="not-the-secret-at-all", content_type=content_type)
    elif auth == "stale":
        headers = signed(body, at=now - 301, content_type=content_type)
    elif auth == "future":
        headers = signed(body, at=now + 10**9, content_type=content_type)
    elif auth == "no signature":
        del headers["X-Leadrouter-Signature"]
    elif auth == "no timestamp":
        del headers["X-Leadrouter-Timestamp"]
    elif auth == "garbage":
        headers["X-Leadrouter-Timestamp"] = "soon"
        headers["X-Leadrouter-Signature"] = "sha256=" + "0" * 64
    return headers


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    auth=st.sampled_from(AUTH),
    content_type=st.sampled_from(CONTENT_TYPES),
)
async def test_no_request_gets_a_5xx_and_a_refused_one_changes_nothing(
    client: Client,
    clock: Clock,
    database_path: Path,
    body: bytes,
    auth: str,
    content_type: str | None,
) -> None:
    before = row_counts(database_path)
    response = await client.post(
        "/leads", data=body, headers=headers_for(body, auth, content_type, clock.timestamp())
    )
    answer = await response.json()
    event(f"status {response.status}")  # --hypothesis-show-statistics shows the spread
    assert response.status < 500, answer
    if response.status >= 400:
        assert row_counts(database_path) == before
        assert set(answer) in ({"error"}, {"errors"})
    if auth != "signed":
        assert response.status in (401, 413)
    if response.status < 300:
        assert response.status in (200, 201)
        assert answer.get("results") or answer.get("id")
