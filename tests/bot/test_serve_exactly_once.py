"""Cards delivered exactly once by real `leadrouter serve` processes killed with SIGKILL, against
the fake Slack on loopback: one replica on SQLite killed twice mid-stream, one killed between
Slack's answer and the commit of the message's ts, and three replicas on one PostgreSQL database
of which one dies.

A card is known by the outbox key its post carries in Slack message metadata; a card counts
once however many times it was posted if all but one were deleted again (`chat.delete`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from bot.outbox import LEASE
from tests.bot.test_serve import STOP_TIMEOUT_S, Server, Servers, post, terminate, wait_until_ready
from tests.fakes.slack import Call, FakeSlack

BOT_TOKEN = "xoxb-exactly-once-test-0000"
SIGNING_SECRET = "exactly-once-signing-secret"
# Written from docs/slack.md's "Exactly once" and the card's documented shape rather than taken
# from bot/, so that a mistake there cannot hide in the tests too.
POST_EVENT = "leadrouter_post"  # the metadata's event type
CLAIM = "claim_lead"  # the Claim button's action id; its value is the lead's id
TEAMS = 30
REPS_PER_TEAM = 3
# Slack's answer to a post comes this late: posts are in flight whenever a process dies.
SLOW_S = 0.3
LEASE_S = LEASE.total_seconds()  # how long a dead process's items wait at most
PICKED_UP_WITHIN_S = 15  # issue 15: a killed replica's items are taken up within this
SETTLE_S = 2.0  # kept listening once every card is recorded, for a late second copy
# A team channel gets a copy of each of its team's cards (ten of 300 leads), one a second, and
# a dead process's cards wait out their lease first.
DELIVERED_WITHIN_S = 45


def team(n: int) -> str:
    return f"t{n:02d}"


def team_channel(n: int) -> str | None:
    """Even teams copy their cards to a channel of their own; odd teams have none."""
    return f"C0T{n:02d}" if n % 2 == 0 else None


def rep_slack(rep: str) -> str:
    return f"U0{rep.upper()}"


def write_policy(folder: Path) -> Path:
    """TEAMS round-robin teams of always-available reps with Slack ids, a lead's `source`
    naming its team; a long SLA, so no card is settled while the test runs."""
    reps, teams, rules = [], [], []
    for n in range(TEAMS):
        members = [f"r{n:02d}{m}" for m in range(REPS_PER_TEAM)]
        reps += [f"  - {{id: {rep}, slack: {rep_slack(rep)}}}" for rep in members]
        channel = f", channel: {team_channel(n)}" if team_channel(n) else ""
        teams.append(
            f"  {team(n)}: {{members: [{', '.join(members)}], distribution: round_robin{channel}}}"
        )
        rules.append(
            f"  - {{name: {team(n)}, when: {{source: {team(n)}}}, assign: {{team: {team(n)}}}}}"
        )
    path = folder / "routing.yml"
    path.write_text(
        "timezone: UTC\nreps:\n"
        + "\n".join(reps)
        + "\nteams:\n"
        + "\n".join(teams)
        + "\nsla: {default: 2h}\nrules:\n"
        + "\n".join(rules)
        + "\n"
    )
    return path


def lead(n: int) -> dict[str, Any]:
    return {"id": f"X-{n:04d}", "company": f"Acme {n}", "source": team(n % TEAMS)}


def slack_env(slack: FakeSlack, policy: Path, database_url: str | None = None) -> dict[str, str]:
    env = {
        "LEADROUTER_RULES": str(policy),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


# --- the stream of leads -------------------------------------------------------------------------


async def stream(
    leads: Sequence[dict[str, Any]],
    to: Callable[[int], Server | None],
    acked: dict[str, dict[str, Any]],
    *,
    per_second: float,
) -> None:
    """POST `leads` one after another at `per_second` (each without waiting for the last), lead
    n to `to(n)`, until `to` names no server; each answer that arrives goes into `acked`. A
    POST whose server dies under it is left unanswered: sending it again tells."""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def send(server: Server, body: dict[str, Any]) -> None:
            try:
                status, answer = await post(session, server, body)
            except (aiohttp.ClientError, TimeoutError):
                return
            assert status in (200, 201), (status, answer)
            acked[body["id"]] = answer

        sending = []
        began = time.monotonic()
        for n, body in enumerate(leads):
            server = to(n)
            if server is None:
                break
            sending.append(asyncio.create_task(send(server, body)))
            await asyncio.sleep(max(0.0, began + (n + 1) / per_second - time.monotonic()))
        await asyncio.gather(*sending)


def alive(server: Server) -> Callable[[int], Server | None]:
    return lambda n: server if server.process.poll() is None else None


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> float:
    """Seconds until `check` came true; fails saying `what` did not, after `within`."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def until_acknowledged(acked: dict[str, dict[str, Any]], count: int) -> None:
    async def enough() -> bool:
        return len(acked) >= count

    await until(enough, within=30, what=f"{count} leads acknowledged")


# --- reading the database, without the code under test ------------------------------------------

Rows = list[tuple[Any, ...]]
Query = Callable[[str], Awaitable[Rows]]


def sqlite_query(database: Path) -> Query:
    async def query(sql: str) -> Rows:
        with closing(sqlite3.connect(database, timeout=10)) as db:
            return list(db.execute(sql).fetchall())

    return query


OFFERS = (
    "SELECT o.id, l.external_id, o.rep_id, o.team, o.channel, o.message_ts, o.team_channel,"
    " o.team_message_ts FROM offers o JOIN leads l ON l.id = o.lead_id ORDER BY o.id"
)
CARD_ITEMS = (
    "SELECT dedupe_key, done_at IS NOT NULL, lease_token FROM outbox"
    " WHERE dedupe_key LIKE 'offer-card:%' OR dedupe_key LIKE 'team-card:%'"
)


@dataclass(frozen=True)
class Offer:
    id: int
    lead: str
    rep: str
    team: str
    channel: str | None
    ts: str | None
    team_channel: str | None
    team_ts: str | None

    @property
    def cards(self) -> dict[str, tuple[str | None, str | None]]:
        """The offer's cards by outbox key: (channel, ts) as recorded."""
        cards = {f"offer-card:{self.id}": (self.channel, self.ts)}
        if team_channel(int(self.team[1:])) is not None:
            cards[f"team-card:{self.id}"] = (self.team_channel, self.team_ts)
        return cards


async def offers(query: Query) -> list[Offer]:
    return [Offer(*row) for row in await query(OFFERS)]


async def all_cards_recorded(query: Query, leads: int) -> bool:
    found = await offers(query)
    return len(found) == leads and all(
        ts is not None for offer in found for _, ts in offer.cards.values()
    )


async def undone_items(query: Query) -> dict[str, str | None]:
    """Card items not carried out yet, by key: the lease token each holds."""
    return {key: token for key, done, token in await query(CARD_ITEMS) if not done}


# --- reading the fake -------------------------------------------------------------------------


def key_of(call: Call) -> str | None:
    metadata = call.params.get("metadata")
    if isinstance(metadata, dict) and metadata.get("event_type") == POST_EVENT:
        payload = metadata.get("event_payload") or {}
        return str(payload.get("key"))
    return None


def claim_value(message: dict[str, Any]) -> str | None:
    """The value of a card's Claim button: the lead's id."""
    for block in message.get("blocks") or []:
        elements = block.get("elements") if isinstance(block, dict) else None
        for element in elements or []:
            if isinstance(element, dict) and element.get("action_id") == CLAIM:
                return str(element.get("value"))
    return None


def footer_lead(message: dict[str, Any]) -> str | None:
    """The lead's id as a card's footer names it ("Lead L-1 · Open in CRM"): the team
    channel's copy has no buttons."""
    for block in message.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "context":
            for element in block.get("elements") or []:
                text = str(element.get("text", "")) if isinstance(element, dict) else ""
                if text.startswith("Lead "):
                    return text.removeprefix("Lead ").split(" · ")[0]
    return None


@dataclass
class Delivered:
    """What reached the fake: every post by key, and the messages standing now by key."""

    posts: Counter[str] = field(default_factory=Counter)
    standing: dict[str, list[tuple[str, str, dict[str, Any]]]] = field(default_factory=dict)
    deleted: int = 0

    @classmethod
    def read(cls, slack: FakeSlack) -> Delivered:
        delivered = cls()
        for call in slack.calls_to("chat.postMessage"):
            key = key_of(call)
            assert key is not None, f"a post without its outbox key: {call.params}"
            delivered.posts[key] += 1
        for (channel, ts), message in slack.standing_messages().items():
            metadata = message.get("metadata") or {}
            key = str((metadata.get("event_payload") or {}).get("key"))
            delivered.standing.setdefault(key, []).append((channel, ts, message))
        delivered.deleted = len(slack.calls_to("chat.delete"))
        return delivered


def assert_each_card_once(found: list[Offer], delivered: Delivered) -> None:
    """Every card of every offer stands in Slack exactly once, where its offer says, with the
    ts its offer recorded; and nothing else was posted."""
    expected = {key: (offer, where) for offer in found for key, where in offer.cards.items()}
    doubled = {key: n for key, n in delivered.posts.items() if n > 1}
    stray = set(delivered.posts) - set(expected)
    assert not stray, f"posts for cards nobody queued: {sorted(stray)[:10]}"
    missing = sorted(key for key in expected if key not in delivered.standing)
    assert not missing, f"{len(missing)} cards never reached Slack: {missing[:10]}"
    still_doubled = {
        key: len(standing) for key, standing in delivered.standing.items() if len(standing) > 1
    }
    assert not still_doubled, f"cards standing twice or more in Slack: {still_doubled}"
    # Posted twice and one copy deleted again counts once; the deletions must account for it.
    assert sum(doubled.values()) - len(doubled) == delivered.deleted, (doubled, delivered.deleted)
    for key, (offer, (channel, ts)) in expected.items():
        ((posted_channel, posted_ts, message),) = delivered.standing[key]
        assert (channel, ts) == (posted_channel, posted_ts), (
            f"{key}: the offer recorded {(channel, ts)}, Slack holds {(posted_channel, posted_ts)}"
        )
        assert footer_lead(message) == offer.lead, key
        if key.startswith("offer-card:"):
            assert claim_value(message) == offer.lead, key
            assert posted_channel == "D" + rep_slack(offer.rep)[1:], key
        else:
            assert claim_value(message) is None, key  # a channel's copy has no buttons


# --- 1. one replica on SQLite, killed twice mid-stream -------------------------------------------

STREAM = 300
PER_SECOND = 30.0
KILLS_AT = (90, 180)  # leads acknowledged in all when each kill is armed


async def kill_after_an_answer(server: Server, slack: FakeSlack, query: Query) -> set[str]:
    """SIGKILL `server` right after Slack's next answer to a post has gone out to it, before
    it can store that message's ts (other posts are still waiting for their answers then).
    Returns the cards Slack had taken whose items the process had not carried out."""
    slack.after_answer("chat.postMessage", lambda _: os.kill(server.process.pid, signal.SIGKILL))
    returncode = await asyncio.to_thread(server.process.wait, STOP_TIMEOUT_S)
    assert returncode == -signal.SIGKILL, server.output()
    posted = Delivered.read(slack).posts
    return {key for key in await undone_items(query) if key in posted}


async def test_a_replica_killed_twice_mid_stream_posts_each_card_once_and_every_lead_gets_its_card(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    query = sqlite_query(database)
    leads = [lead(n) for n in range(STREAM)]
    acked: dict[str, dict[str, Any]] = {}
    kills: list[set[str]] = []  # each kill's cards in flight
    with FakeSlack.in_thread() as slack:
        slack.delay("chat.postMessage", SLOW_S)
        env = slack_env(slack, write_policy(tmp_path))
        for kill_at in (*KILLS_AT, None):
            server = servers.start(database, extra_env=env)
            await wait_until_ready(server)
            pending = [body for body in leads if body["id"] not in acked]
            if kill_at is None:
                await stream(pending, alive(server), acked, per_second=PER_SECOND)
                break

            async def killer(server: Server = server, kill_at: int = kill_at) -> set[str]:
                await until_acknowledged(acked, kill_at)
                return await kill_after_an_answer(server, slack, query)

            killing = asyncio.create_task(killer())
            await stream(pending, alive(server), acked, per_second=PER_SECOND)
            kills.append(await killing)

        await until(
            lambda: all_cards_recorded(query, STREAM),
            within=DELIVERED_WITHIN_S,
            what="every card posted and its ts recorded",
        )
        await asyncio.sleep(SETTLE_S)
        delivered = Delivered.read(slack)
        looked_up = slack.calls_to("conversations.history")
        assert terminate(server) == 0, server.output()

    assert len(acked) == STREAM
    assert {answer["status"] for answer in acked.values()} == {"offered"}
    found = await offers(query)
    assert sorted(offer.lead for offer in found) == sorted(acked)
    for offer in found:
        assert (offer.rep, offer.team) == (acked[offer.lead]["rep"], acked[offer.lead]["team"])
    assert_each_card_once(found, delivered)
    # Each kill caught cards of its own that Slack had taken but the process had not recorded
    # (the case the history look-up is for), and each of those was found there, not posted
    # again.
    first, second = kills
    assert first and second - first, f"a kill caught no post in flight: {kills}"
    caught = first | second
    assert {key: delivered.posts[key] for key in caught} == dict.fromkeys(caught, 1)
    assert looked_up
    assert await undone_items(query) == {}


# --- 2. killed between Slack's answer and the commit of the ts -----------------------------------


async def test_killed_between_slacks_answer_and_the_ts_commit_the_card_is_found_not_posted_again(
    servers: Servers, tmp_path: Path
) -> None:
    database = tmp_path / "leads.db"
    query = sqlite_query(database)
    answered = threading.Event()
    with FakeSlack.in_thread() as slack:
        env = slack_env(slack, write_policy(tmp_path))
        first = servers.start(database, extra_env=env)
        await wait_until_ready(first)
        # Slack's answer goes out while this test holds SQLite's write lock: the process reads
        # the ts and waits for the lock to store it, and dies there.
        slack.delay("chat.postMessage", 1.5)
        slack.after_answer("chat.postMessage", lambda _: answered.set())
        async with aiohttp.ClientSession() as session:
            status, answer = await post(session, first, lead(1))  # team t01: a DM card only
        assert (status, answer["status"]) == (201, "offered")
        (accepted,) = await slack.wait_for("chat.postMessage")
        with closing(sqlite3.connect(database, timeout=10, isolation_level=None)) as lock:
            lock.execute("BEGIN IMMEDIATE")
            assert await asyncio.to_thread(answered.wait, 5), "Slack did not answer the post"
            await asyncio.sleep(0.5)  # the answer is read, the commit waits
            first.process.kill()
            assert first.process.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
            lock.execute("ROLLBACK")
        ((offer_id, key, ts),) = [
            (offer.id, key, ts)
            for offer in await offers(query)
            for key, (_, ts) in offer.cards.items()
        ]
        assert ts is None, "the ts was stored before the kill: the window was missed"
        assert "could not be ended" not in first.output()  # it was still waiting to store it
        assert set(await undone_items(query)) == {key}
        [(channel, posted_ts)] = list(slack.standing_messages())

        slack.delay("chat.postMessage", 0)
        restarted = servers.start(database, extra_env=env)
        await wait_until_ready(restarted)
        await until(
            lambda: all_cards_recorded(query, 1),
            within=LEASE_S + 5,
            what="the card's ts recorded after the restart",
        )
        await asyncio.sleep(SETTLE_S)
        assert terminate(restarted) == 0, restarted.output()

    assert key == f"offer-card:{offer_id}" and key_of(accepted) == key
    assert [key_of(call) for call in slack.calls_to("chat.postMessage")] == [key]
    assert slack.calls_to("chat.delete") == []
    assert slack.calls_to("conversations.history"), "the restart did not look before posting"
    ((recorded_channel, recorded_ts),) = (await offers(query))[0].cards.values()
    assert (recorded_channel, recorded_ts) == (channel, posted_ts)
    assert await undone_items(query) == {}
    assert f"{key} was posted already" in restarted.output()


# --- 3. three replicas on one PostgreSQL database, one killed ------------------------------------

REPLICA_STREAM = 300
REPLICA_KILL_AT = 100


def postgres_query(url: str) -> Query:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def query(sql: str) -> Rows:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close(timeout=10)

    return query


def held_by(server: Server, items: dict[str, str | None]) -> set[str]:
    """The items whose lease names `server`'s process (a token is host:pid:nonce:round)."""
    mark = f":{server.process.pid}:"
    return {key for key, token in items.items() if token is not None and mark in token}


async def test_three_replicas_one_killed_post_each_card_once_and_its_items_move_within_15_s(
    servers: Servers, tmp_path: Path, postgres_url: str
) -> None:
    query = postgres_query(postgres_url)
    leads = [lead(n) for n in range(REPLICA_STREAM)]
    acked: dict[str, dict[str, Any]] = {}
    with FakeSlack.in_thread() as slack:
        slack.delay("chat.postMessage", SLOW_S)
        env = slack_env(slack, write_policy(tmp_path), postgres_url)
        replicas = [servers.start(tmp_path / "unused.db", extra_env=env) for _ in range(3)]
        await asyncio.gather(*(wait_until_ready(replica) for replica in replicas))
        victim = replicas[0]

        def to(n: int) -> Server | None:
            living = [replica for replica in replicas if replica.process.poll() is None]
            return living[n % len(living)]

        async def killer() -> tuple[set[str], set[str], float]:
            """SIGKILL the victim mid-stream while a card it holds is in Slack's hands: what
            it held, which of those Slack had taken, and how long until the others took
            them all up."""
            await until_acknowledged(acked, REPLICA_KILL_AT)

            async def posting() -> bool:
                posted = Delivered.read(slack).posts
                return bool(held_by(victim, await undone_items(query)) & set(posted))

            await until(posting, within=10, what="the victim with a post in flight")
            victim.process.kill()
            killed_at = time.monotonic()
            assert victim.process.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
            held = held_by(victim, await undone_items(query))
            in_flight = held & set(Delivered.read(slack).posts)

            async def taken_up() -> bool:
                return not held & held_by(victim, await undone_items(query))

            await until(
                taken_up,
                within=PICKED_UP_WITHIN_S + 10,
                what="the killed replica's items taken up by the others",
            )
            return held, in_flight, time.monotonic() - killed_at

        killing = asyncio.create_task(killer())
        await stream(leads, to, acked, per_second=PER_SECOND)
        held, in_flight, picked_up_after = await killing
        # Leads whose POST died with the victim are sent again, to the living.
        unanswered = [body for body in leads if body["id"] not in acked]
        await stream(unanswered, to, acked, per_second=PER_SECOND)
        await until(
            lambda: all_cards_recorded(query, REPLICA_STREAM),
            within=DELIVERED_WITHIN_S,
            what="every card posted and its ts recorded",
        )
        await asyncio.sleep(SETTLE_S)
        delivered = Delivered.read(slack)
        for survivor in replicas[1:]:
            assert terminate(survivor) == 0, survivor.output()

    assert in_flight, "the victim had no post in flight when it was killed"
    assert picked_up_after <= PICKED_UP_WITHIN_S, (
        f"the killed replica's {len(held)} items were taken up {picked_up_after:.1f} s after"
    )
    assert len(acked) == REPLICA_STREAM
    assert {answer["status"] for answer in acked.values()} == {"offered"}
    found = await offers(query)
    assert sorted(offer.lead for offer in found) == sorted(acked)
    assert_each_card_once(found, delivered)
    assert {key: delivered.posts[key] for key in in_flight} == dict.fromkeys(in_flight, 1)
    assert slack.calls_to("conversations.history")
    assert await undone_items(query) == {}
