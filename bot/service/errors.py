"""The requests the service layer refuses. Each carries the sentence the person who made the
request is told (the Slack app's one error handler, `bot.slack.app`, says it to them)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses, with a sentence for the person who made it."""


class UnknownLead(ServiceError):
    pass


class NotAllowed(ServiceError):
    pass
