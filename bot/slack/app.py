"""The Slack app: one factory for the Bolt app and its Web API client, and the listeners.

Every listener acks first, then makes one service call and renders the answer. Requests Slack
sends again (retries of events, repeated actions) are dropped by a middleware before any listener
runs, keyed in the database so that it holds across restarts and replicas.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.reading import NotVisible, Reader, Viewer, viewer_of
from bot.service import Move, Service, ServiceError
from bot.settings import Settings
from bot.slack import blocks
from bot.slack.commands import USAGE, Digest, Help, Pto, Queue, Why, parse_command
from bot.slack.home_view import home_view
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.managers import digest_on_demand, register_managers
from bot.slack.modals import reject_modal, reject_reason
from bot.slack.people import SlackPeople
from routing.durations import format_duration
from routing.policy import Policy
from routing.working_time import next_working_start

log = logging.getLogger(__name__)

NOT_IN_POLICY = (
    "You are not in the routing policy. Ask a RevOps admin to add your Slack id to routing.yml."
)
OUT_ONLY_FROM_YOUR_CARD = (
    "That button is on a card in a channel and would mark out whoever clicks it, so it does "
    "nothing here. To go out yourself, use App Home or `/routing pto`."
)


def build_client(settings: Settings, *, retries: bool = True) -> AsyncWebClient:
    """The Web API client: `SLACK_API_URL` as its base. With `retries`, it tries connection
    errors, 429s (after Retry-After) and 5xx again a few times itself (for answers to people);
    the outbox's client does not (`bot.slack.delivery` retries, paces and deduplicates)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=handlers if retries else [],
    )


@dataclass
class SlackParts:
    service: Service
    reader: Reader
    policy: Callable[[], Policy]
    clock: Callable[[], datetime]
    people: SlackPeople | None = None  # finds people the policy names by e-mail alone


def build_slack_app(settings: Settings, parts: SlackParts, client: AsyncWebClient) -> AsyncApp:
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    with _token_warning_dropped():
        app = AsyncApp(
            client=client,
            signing_secret=secret,
            # Socket Mode has no signature to check; over HTTP every request is verified.
            request_verification_enabled=not settings.socket_mode,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
    register(app, parts)
    return app


class _SameToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


@contextmanager
def _token_warning_dropped() -> Iterator[None]:
    """Bolt, given no `token`, reads SLACK_BOT_TOKEN from the environment by itself, and then
    warns at start that the `client` it was also given wins over that token. The client is
    built from that very setting, so the warning only alarms whoever reads the log: that one
    line (in Bolt's own words) is dropped while the app is built, and nothing else."""
    bolt_log = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")
    same_token = _SameToken()
    bolt_log.addFilter(same_token)
    try:
        yield
    finally:
        bolt_log.removeFilter(same_token)


def register(app: AsyncApp, parts: SlackParts) -> None:
    app.middleware(_drop_repeats(parts.service))
    if parts.people is not None:
        app.middleware(_recognise(parts.people))
    register_managers(app, parts)

    @app.action(ActionId.CLAIM)
    async def claim(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user, lead_id = body["user"]["id"], _value(body)
        viewer = viewer_of(parts.policy(), user)
        if not viewer.known:
            await _tell(client, body, NOT_IN_POLICY)
            return
        try:
            result = await parts.service.claim(lead_id, by=viewer.id or "")
        except ServiceError as exc:
            await _tell(client, body, blocks.escape(str(exc)))
            return
        if not result.claimed:
            holder = parts.policy().rep_name(result.holder)
            mine = result.holder == viewer.rep
            await _tell(
                client,
                body,
                "You already hold this lead." if mine else f"{holder} holds this lead.",
            )
        elif body.get("view") is not None:  # clicked in App Home
            await _publish_home(client, parts, user)

    @app.action(ActionId.REJECT)
    async def reject(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        lead_id = _value(body)
        await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(lead_id, lead_id))

    @app.view(CallbackId.REJECT_MODAL)
    async def rejected(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        view = body["view"]
        reason = reject_reason(view["state"]["values"])
        if reason is None:
            await ack(
                response_action="errors",
                errors={BlockId.REJECT_REASON: "Pick a reason or write one."},
            )
            return
        await ack()
        user = body["user"]["id"]
        lead_id = view["private_metadata"]
        viewer = viewer_of(parts.policy(), user)
        if viewer.rep is None:
            await client.chat_postMessage(channel=user, text=NOT_IN_POLICY)
            return
        try:
            move = await parts.service.reject(lead_id, by=viewer.rep, reason=reason)
        except ServiceError as exc:
            await client.chat_postMessage(channel=user, text=blocks.escape(str(exc)))
            return
        await client.chat_postMessage(
            channel=user,
            text=f"Rejected {blocks.escape(lead_id)}: {_moved(parts.policy(), [move])}",
        )

    @app.action(ActionId.MARK_OOO)
    async def mark_out(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        # Only the rep's own card (their DM) carries I'm out; a channel copy posted before its
        # buttons were taken off still does, and there it must not act on a bystander.
        channel = _clicked_in(body)
        if channel is not None and not channel.startswith("D"):
            await _tell(client, body, OUT_ONLY_FROM_YOUR_CARD)
            return
        answer = await _go_out(parts, body["user"]["id"])
        await _tell(client, body, answer)

    @app.action(ActionId.HOME_AWAY)
    async def home_away(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await _go_out(parts, body["user"]["id"])
        await _publish_home(client, parts, body["user"]["id"])

    @app.action(ActionId.HOME_BACK)
    async def home_back(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        viewer = viewer_of(parts.policy(), body["user"]["id"])
        if viewer.rep is not None:
            await parts.service.set_back(viewer.rep)
        await _publish_home(client, parts, body["user"]["id"])

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await _publish_home(client, parts, event["user"])

    @app.command("/routing")
    async def routing_command(
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
        client: AsyncWebClient,
    ) -> None:
        await ack()
        answer = await _answer_command(parts, client, command)
        if isinstance(answer, blocks.Message):
            await respond(
                text=answer.text,
                blocks=answer.blocks,
                response_type="ephemeral",
                replace_original=False,
            )
        else:
            await respond(text=answer, response_type="ephemeral", replace_original=False)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        incident = uuid.uuid4().hex[:8]
        log.error("slack: listener failed (error id %s): %r", incident, error, exc_info=error)
        return None


def _drop_repeats(service: Service) -> Callable[..., Awaitable[Any]]:
    async def middleware(
        body: dict[str, Any], next: Callable[[], Awaitable[Any]], payload: dict[str, Any]
    ) -> Any:
        key = _request_key(body)
        if key is not None and not await service.first_time(key):
            log.info("slack: a repeat of %s, acknowledged and ignored", key)
            return BoltResponse(status=200, body="")
        return await next()

    return middleware


def _recognise(people: SlackPeople) -> Callable[..., Awaitable[Any]]:
    """Before any listener: a user the policy names by e-mail alone is known as themselves,
    even before a card of theirs went out (which is when they are otherwise looked up)."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        user, event = body.get("user"), body.get("event")
        member = user.get("id") if isinstance(user, dict) else body.get("user_id")
        if member is None and isinstance(event, dict):
            member = event.get("user")  # app_home_opened, the App Home of someone new
        if isinstance(member, str) and member:
            await people.who_is(member)
        return await next()

    return middleware


def _request_key(body: dict[str, Any]) -> str | None:
    """What makes a request the same request when Slack sends it again."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        return f"action:{body.get('user', {}).get('id')}:{actions[0].get('action_ts')}"
    if body.get("type") == "view_submission":
        view = body.get("view", {})
        return f"view:{view.get('id')}:{view.get('hash')}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0]["value"])


def _clicked_in(body: dict[str, Any]) -> str | None:
    """The conversation a button was clicked in; None for App Home."""
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    return str(channel) if channel else None


async def _tell(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral sentence to the person who clicked, where they clicked (a DM for Home)."""
    user = body["user"]["id"]
    channel = _clicked_in(body)
    if channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)
    else:
        await client.chat_postMessage(channel=user, text=text)


async def _go_out(parts: SlackParts, slack_user: str, until: datetime | None = None) -> str:
    """The rep is out until the start of their next working day (or until further notice when
    they keep no working hours); their unclaimed offers move on."""
    policy = parts.policy()
    viewer = viewer_of(policy, slack_user)
    if viewer.rep is None:
        return NOT_IN_POLICY
    rep = policy.reps[viewer.rep]
    if until is None and rep.hours is not None:
        until = next_working_start(rep.hours, parts.clock())
    moves = await parts.service.set_out_of_office(
        viewer.rep, until=until, reason="marked out in Slack", by=viewer.rep
    )
    when = f"until {blocks.slack_date(until)}" if until else "until further notice"
    return f"You're out of office {when}. {_moved(policy, moves)}"


def _moved(policy: Policy, moves: list[Move]) -> str:
    if not moves:
        return "No open leads had to move."
    parts = []
    for move in moves[:10]:
        to = (
            f"{blocks.escape(policy.rep_name(move.to.rep))}"
            if move.to.rep
            else f"the {blocks.escape(move.to.status)} queue"
        )
        parts.append(f"{blocks.escape(move.lead_id)} → {to}")
    more = f" and {len(moves) - 10} more" if len(moves) > 10 else ""
    return (
        f"Moved {len(moves)} open lead{'s' if len(moves) != 1 else ''}: {'; '.join(parts)}{more}."
    )


async def _answer_command(
    parts: SlackParts, client: AsyncWebClient, command: dict[str, Any]
) -> str | blocks.Message:
    policy = parts.policy()
    user = command["user_id"]
    viewer = viewer_of(policy, user)
    tz = _viewer_tz(policy, viewer)
    parsed = parse_command(command.get("text") or "", now=parts.clock(), tz=tz)
    if isinstance(parsed, Help):
        return f"{blocks.escape(parsed.problem)}\n\n{USAGE}" if parsed.problem else USAGE
    if not viewer.known:
        return NOT_IN_POLICY
    if isinstance(parsed, Pto):
        return await _pto(parts, viewer, parsed)
    if isinstance(parsed, Why):
        return await _why(parts, viewer, parsed.lead)
    if isinstance(parsed, Queue):
        return await _queue(parts, viewer)
    assert isinstance(parsed, Digest)
    return await digest_on_demand(parts, viewer)


def _viewer_tz(policy: Policy, viewer: Viewer) -> Any:
    if viewer.rep is not None:
        return policy.reps[viewer.rep].tz
    if viewer.manager is not None:
        return policy.managers[viewer.manager].tz
    return policy.timezone


async def _pto(parts: SlackParts, viewer: Viewer, pto: Pto) -> str:
    policy = parts.policy()
    target = viewer.rep
    if pto.user is not None:
        target = policy.rep_of_slack(pto.user)
        if target is None:
            return f"{blocks.mention(pto.user)} is not a rep in the routing policy."
        if target != viewer.rep and viewer.manager is None:
            return "Only managers can set someone else's out of office."
    if target is None:
        return "You are not a rep in the routing policy, so there is nothing to mark."
    name = "You're" if target == viewer.rep else f"{blocks.escape(policy.rep_name(target))} is"
    try:
        if pto.back:
            await parts.service.set_back(target, by=viewer.id)
            return f"{name} available again."
        moves = await parts.service.set_out_of_office(
            target, until=pto.until, reason="set with /routing pto", by=viewer.id
        )
    except ServiceError as exc:
        return blocks.escape(str(exc))
    when = f"until {blocks.slack_date(pto.until)}" if pto.until else "until further notice"
    return f"{name} out of office {when}. {_moved(policy, moves)}"


async def _why(parts: SlackParts, viewer: Viewer, reference: str) -> str:
    try:
        story = await parts.reader.story(reference, viewer)
    except NotVisible:
        story = None  # said as for no lead at all: a rep learns nothing of leads not theirs
    if story is None:
        return (
            f"No lead of yours found for {blocks.escape(reference)} (try its id, e-mail or "
            "CRM id; a manager can look up any lead)."
        )
    lines = [f"```{blocks.escape(story.explanation)}```"]
    if story.events:
        lines.append("*Since then*")
        lines.extend(
            f"• {blocks.slack_date(event.at)}: {blocks.escape(event.what)}"
            for event in story.events
        )
    lines.extend(f"_{blocks.escape(note)}_" for note in story.notes)
    return "\n".join(lines)


async def _queue(parts: SlackParts, viewer: Viewer) -> str:
    now = parts.clock()
    if viewer.manager is not None:
        size, oldest = await parts.reader.queued_leads()
        if size == 0:
            return "The unmatched queue is empty."
        lines = [f"*Unmatched queue: {size} lead{'s' if size != 1 else ''}*"]
        for lead in oldest:
            waited = format_duration(int((now - lead.created_at).total_seconds()))
            company = f" · {lead.company}" if lead.company else ""
            source = f" · {lead.source}" if lead.source else ""
            lines.append(
                f"• {blocks.escape(lead.external_id + company + source)} · waiting {waited}"
            )
        return "\n".join(lines)
    assert viewer.rep is not None
    offers = await parts.reader.open_offers(viewer.rep)
    if not offers:
        return "You have no open leads."
    lines = [f"*Your open leads: {len(offers)}*"]
    for offer, lead in offers:
        due = f" · claim by {blocks.slack_date(offer.sla_due_at)}" if offer.sla_due_at else ""
        lines.append(
            f"• {blocks.escape(lead.external_id)} {blocks.escape(lead.company or '')}{due}"
        )
    return "\n".join(lines)


async def _publish_home(client: AsyncWebClient, parts: SlackParts, slack_user: str) -> None:
    await client.views_publish(user_id=slack_user, view=await home_data_view(parts, slack_user))


async def home_data_view(parts: SlackParts, slack_user: str) -> dict[str, Any]:
    return home_view(await parts.reader.home(slack_user))
