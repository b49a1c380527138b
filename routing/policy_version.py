"""A policy's version: the hash of its text, which names it in the database, in every decision it
makes and to people (`leadrouter policy history`, `/routing why`)."""

from __future__ import annotations

import hashlib

SHORT_VERSION = 12  # hex digits of a version shown to people, as git shows a commit's
UNVERSIONED = "unversioned"  # what a decision made before versions were kept is shown as


def version_of(text: str) -> str:
    """The SHA-256 of the policy's text, in hex. The same text is the same version wherever it
    is read; any change to it, a comment's included, is a new one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def short_version(version: str | None) -> str:
    """A version as people read it: its first SHORT_VERSION digits."""
    return version[:SHORT_VERSION] if version else UNVERSIONED
