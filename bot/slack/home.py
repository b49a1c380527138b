"""App Home's listener: the tab published when it is opened (its content: `Reader.home`; its
Block Kit: `bot.slack.home_view`)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.assign import assignees_of
from bot.slack.home_view import home_view
from bot.slack.parts import SlackParts


def register_home(app: AsyncApp, parts: SlackParts) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await publish_home(client, parts, event["user"])


async def publish_home(client: AsyncWebClient, parts: SlackParts, slack_user: str) -> None:
    await client.views_publish(user_id=slack_user, view=await home_data_view(parts, slack_user))


async def home_data_view(parts: SlackParts, slack_user: str) -> dict[str, Any]:
    return home_view(await parts.reader.home(slack_user), assignees_of(parts.policy()))
