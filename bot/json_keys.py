"""JSON objects with a key written twice (`{"email": "a@x.com", "email": "b@y.com"}`), which
json.loads takes as the last value without a word: which one was meant is anyone's guess. Every
JSON leadrouter reads from people (request bodies, files of leads) is read through `KeyTwice`
and refused, or its lead skipped, naming the key. Slack's payloads are Bolt's to read."""

from __future__ import annotations

import json
from typing import Any


class KeyTwice:
    """An `object_pairs_hook` that builds each object as json.loads would and notes the first
    key written twice in one object (`found`), for the reader to refuse once decoding is done:
    raising from inside the decoder would lose where the value ends."""

    def __init__(self) -> None:
        self.found: str | None = None

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data and self.found is None:
                self.found = key
            data[key] = value
        return data

    def problem(self) -> str | None:
        """What is wrong, naming the key, or None; and ready for the next value."""
        key, self.found = self.found, None
        if key is None:
            return None
        shown = json.dumps(key[:80], ensure_ascii=False)
        return f"the key {shown} twice in one object, so which value is meant is not clear"
