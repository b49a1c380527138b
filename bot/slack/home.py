"""App Home: a rep's open leads and availability; a manager's teams' load and the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import viewer_of
from bot.slack import blocks
from bot.slack.parts import SlackParts
from storage.models import RepStateRow


def register_home(app: AsyncApp, parts: SlackParts) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await publish_home(client, parts, event["user"])


async def publish_home(client: AsyncWebClient, parts: SlackParts, slack_user: str) -> None:
    await client.views_publish(user_id=slack_user, view=await home_data_view(parts, slack_user))


async def home_data_view(parts: SlackParts, slack_user: str) -> dict[str, Any]:
    policy = parts.policy()
    viewer = viewer_of(policy, slack_user)
    now = parts.clock()
    states = await parts.reader.rep_states()
    offers: tuple[blocks.HomeOffer, ...] = ()
    if viewer.rep is not None:
        offers = tuple(
            blocks.HomeOffer(
                lead_id=lead.external_id,
                title=lead.company or lead.external_id,
                reason=lead.reason,
                offered_at=offer.offered_at,
                sla_due_at=offer.sla_due_at,
            )
            for offer, lead in await parts.reader.open_offers(viewer.rep)
        )
    mine = states.get(viewer.rep) if viewer.rep else None
    away = _is_away(mine, now)
    teams: tuple[blocks.TeamLoad, ...] = ()
    size, oldest_at = 0, None
    if viewer.manager is not None:
        teams = tuple(
            blocks.TeamLoad(
                team=team.name,
                reps=tuple(
                    blocks.RepLoad(
                        name=policy.rep_name(member),
                        open=states[member].open_count if member in states else 0,
                        capacity=policy.reps[member].capacity,
                        away=_is_away(states.get(member), now),
                        away_until=states[member].away_until if member in states else None,
                    )
                    for member in team.members
                ),
            )
            for team in policy.teams.values()
            if team.manager == viewer.manager
        )
        size, queued = await parts.reader.queued_leads(limit=1)
        oldest_at = queued[0].created_at if queued else None
    name = (
        policy.rep_name(viewer.rep)
        if viewer.rep
        else (policy.managers[viewer.manager].name if viewer.manager else "there")
    )
    return blocks.home_view(
        blocks.HomeData(
            name=name,
            is_rep=viewer.rep is not None,
            offers=offers,
            away=away,
            away_until=mine.away_until if mine and away else None,
            away_reason=mine.away_reason if mine and away else None,
            is_manager=viewer.manager is not None,
            teams=teams,
            queue_size=size,
            queue_oldest_at=oldest_at,
            now=now,
        )
    )


def _is_away(state: RepStateRow | None, now: datetime) -> bool:
    if state is None or not state.away:
        return False
    return state.away_until is None or state.away_until > now
