"""What every listener of the Slack app is given, and how it answers the person who asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import Reader
from bot.service.unit_of_work import UnitOfWork
from bot.slack.blocks import Message
from bot.slack.people import SlackPeople
from routing.policy import Policy

NOT_IN_POLICY = (
    "You are not in the routing policy. Ask a RevOps admin to add your Slack id to routing.yml."
)

Respond = Callable[..., Awaitable[Any]]


@dataclass
class SlackParts:
    uow: UnitOfWork  # what the use cases take
    reader: Reader  # cards, `why`, the queue, App Home
    policy: Callable[[], Policy]
    clock: Callable[[], datetime]
    people: SlackPeople | None = None  # finds people the policy names by e-mail alone


def clicked_in(body: dict[str, Any]) -> str | None:
    """The conversation a button was clicked in; None for App Home."""
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    return str(channel) if channel else None


async def tell(client: AsyncWebClient, body: dict[str, Any], said: str | Message) -> None:
    """An ephemeral sentence to the person who clicked, where they clicked (a DM for App Home
    and for a modal's submission, which have no conversation). A Message (one naming a lead)
    goes as its blocks; in a DM, its text with mrkdwn off."""
    user = body["user"]["id"]
    channel = clicked_in(body)
    message = said if isinstance(said, Message) else Message(text=said, blocks=[])
    shown: dict[str, Any] = {"blocks": message.blocks} if message.blocks else {}
    if channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=message.text, **shown)
    else:
        if not message.mrkdwn:
            shown["mrkdwn"] = False
        await client.chat_postMessage(channel=user, text=message.text, **shown)


async def answer(
    client: AsyncWebClient, body: dict[str, Any], respond: Respond | None, said: str | Message
) -> None:
    """A sentence only the person who asked sees: a slash command's in its response (leaving
    whatever it answers), a click's or a submission's as `tell` says it."""
    if body.get("command") and respond is not None:
        await respond_privately(respond, said)
    else:
        await tell(client, body, said)


async def respond_privately(respond: Respond, said: str | Message) -> None:
    """A slash command's answer, seen only by who typed it, leaving what it answers."""
    if isinstance(said, Message):
        await respond(
            text=said.text, blocks=said.blocks, response_type="ephemeral", replace_original=False
        )
    else:
        await respond(text=said, response_type="ephemeral", replace_original=False)


def action_value(body: dict[str, Any]) -> str:
    return str(body["actions"][0]["value"])
