"""Leads to Slack cards: POST-to-card latency against a bare baseline, and a burst under the limit.

    python -m bench.bench_slack                  # both (about four minutes)
    python -m bench.bench_slack --quick          # 10 s of latency, a 1,000-lead burst over 20 reps
    python -m bench.bench_slack --only latency   # or: backlog, burst

Both run `leadrouter serve` on SQLite as a subprocess with Slack configured, its Web API pointed
at the fake Slack of the tests (`tests/fakes/slack.py`) running on its own thread and event loop
in this process, so the fake's arrival times and the load generator's send times are read from
the same monotonic clock. Every lead goes to a rep (one round-robin team of 100 reps with Slack
ids, no team channel), so each lead makes exactly one card, in its rep's DM. A card is matched to
its lead by the Claim button's value, which is the lead's id.

- latency: signed leads POSTed one by one at a fixed rate (open loop) for a fixed time; each is
  timed from sending the POST to the fake receiving the `chat.postMessage` of its card. In the
  same run, against the same fake, a bare aiohttp server (a subprocess, this module with
  `--bare-server`) whose handler only reads the lead and forwards one message for it with
  slack_sdk's `AsyncWebClient` over one kept-alive session (as serve's is), at the same rate for
  the same time: the floor any implementation on this machine stands on. The fake enforces
  Slack's 1 message/s per channel (burst 3) throughout; at 50 leads/s over 100 reps each DM
  gets a card every 2 s, under the limit.
- backlog: one rep's DM 100 cards behind (100 leads for them POSTed at once, the fake allowing
  1 message/s per channel, burst 3), and meanwhile leads for 50 other reps at 3/s for 30 s: the
  POST-to-card latency of those other channels' cards, which must not wait behind the backlog.
  Then every card, the backlog's included, must arrive exactly once (about 100 s in all).
- burst: 5,000 leads over 100 reps POSTed at once in batches of 1,000, the fake enforcing 1
  message/s per channel with a burst of 3. With 50 cards per DM, no client can finish sooner than
  (50 - 3) / 1 s after its first post; the figure is the time from the first POST to the last
  card, against that bound. Every lead's card must arrive exactly once, and serve's resident
  memory is sampled from /proc every 100 ms (and its high-water mark read at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_intake import (
    ROOT,
    Serve,
    environment,
    export_revision,
    free_port,
    leads,
    percentiles,
    signed,
)

RESULTS = ROOT / "bench" / "results" / "slack.json"
BOT_TOKEN = "xoxb-bench-slack-token-0000"
SIGNING_SECRET = "bench-slack-signing-secret-0000"
CLAIM = "claim_lead"  # the Claim button's action id (bot/slack/ids.py), whose value is the lead id
POST_RATE = 1.0  # Slack: about one message per second per channel
POST_BURST = 3
BATCH = 1000  # the most leads POST /leads takes at once
CARD_WAIT_S = 60.0  # how long after the last POST a card may still arrive before it counts as lost
SETTLE_S = 3.0  # kept listening after the last expected card, to catch a card posted twice
RSS_EVERY_S = 0.1

TARGETS = {
    "p50_ms": 25.0,
    "p99_ms": 100.0,
    "p50_ratio": 3.0,
    "burst_ratio": 1.2,
    "rss_mb": 250.0,
    "backlog_p99_ms": 2000.0,  # the bound: an idle rep's card within 2 s
}

POLICY = """\
timezone: UTC
reps:
{reps}
teams:
  everyone: {{members: [{members}], distribution: round_robin}}
rules:
  - {{name: Everyone, assign: {{team: everyone}}}}
"""


BACKLOG_POLICY = """\
timezone: UTC
reps:
  - {{id: busy, slack: UBUSY0000}}
{reps}
teams:
  busy: {{members: [busy]}}
  others: {{members: [{members}], distribution: round_robin}}
rules:
  - {{name: Backlog, when: {{source: backlog}}, assign: {{team: busy}}}}
  - {{name: Everyone else, assign: {{team: others}}}}
"""
BACKLOG = 100  # cards queued for one DM
BACKLOG_OTHERS = 50  # reps, each with a DM of their own
BACKLOG_RATE = 3.0  # leads/s for the other reps while the backlog drains
BACKLOG_SECONDS = 30.0


def slack_id(n: int) -> str:
    return f"UBENCH{n:04d}"


def write_policy(folder: Path, reps: int) -> Path:
    """One round-robin team of `reps` reps, each with a Slack id, always available; no channel."""
    ids = [f"rep{n:04d}" for n in range(reps)]
    lines = "\n".join(f"  - {{id: {rep}, slack: {slack_id(n)}}}" for n, rep in enumerate(ids))
    path = folder / f"slack-policy-{reps}.yml"
    path.write_text(POLICY.format(reps=lines, members=", ".join(ids)))
    return path


class Server(Serve):
    """A server subprocess (serve, or the bare baseline) whose log goes to a file: a pipe nobody
    reads would stall it once full, and a burst's retries may log."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                command, env=env, cwd=log.parent, stdout=subprocess.DEVNULL, stderr=handle
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.log.name}: exited: {self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/healthz") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.log.name}: did not become healthy: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def log_lines(self) -> int:
        return len(self.log.read_text(errors="replace").splitlines())


def write_backlog_policy(folder: Path) -> Path:
    ids = [f"rep{n:04d}" for n in range(BACKLOG_OTHERS)]
    lines = "\n".join(f"  - {{id: {rep}, slack: {slack_id(n)}}}" for n, rep in enumerate(ids))
    path = folder / "slack-backlog-policy.yml"
    path.write_text(BACKLOG_POLICY.format(reps=lines, members=", ".join(ids)))
    return path


def start_serve(
    folder: Path,
    name: str,
    reps: int,
    api_url: str,
    policy: Path | None = None,
    source: Path = ROOT,
) -> Server:
    """`leadrouter serve` running the code under `source` (this checkout unless told)."""
    port = free_port()
    env = {
        key: value
        for key, value in environment(
            f"sqlite+aiosqlite:///{folder / f'{name}.db'}",
            policy or write_policy(folder, reps),
            port,
        ).items()
        if not key.startswith("SLACK_")  # an SLACK_APP_TOKEN around would mean Socket Mode
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        PYTHONPATH=str(source),
    )
    leadrouter = str(Path(sys.executable).parent / "leadrouter")
    return Server([leadrouter, "serve"], env, port, folder / f"{name}.log")


def start_bare(folder: Path, reps: int, api_url: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "bench.bench_slack", "--bare-server"]
    command += ["--port", str(port), "--slack-url", api_url, "--reps", str(reps)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Server(command, env, port, folder / "bare.log")


# --- the bare baseline: read the lead, forward one message, answer --------------------------


async def bare_server(port: int, api_url: str, reps: int) -> None:
    from aiohttp import web
    from slack_sdk.web.async_client import AsyncWebClient

    # One kept-alive session, as serve keeps: the floor is the best a bare forwarder can do,
    # not one opening a connection per message (slack_sdk's default).
    client = AsyncWebClient(
        token=BOT_TOKEN, base_url=api_url, timeout=10, session=aiohttp.ClientSession()
    )
    channels = itertools.cycle([slack_id(n) for n in range(reps)])

    async def post_lead(request: web.Request) -> web.Response:
        lead = await request.json()
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Claim"},
            "action_id": CLAIM,
            "value": lead["id"],
        }
        text = f"New lead for you: {lead.get('company')}"
        await client.chat_postMessage(
            channel=next(channels),
            text=text,
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": [button]},
            ],
            unfurl_links=False,
        )
        return web.json_response({"id": lead["id"]}, status=201)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/leads", post_lead)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- reading the fake -------------------------------------------------------------------------


def card_lead(params: dict[str, Any]) -> str | None:
    """The lead a posted card is for: the value of its Claim button."""
    blocks = params.get("blocks")
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements", []):
                if isinstance(element, dict) and element.get("action_id") == CLAIM:
                    return str(element.get("value"))
    return None


class Cards:
    """The cards the fake has received, by lead, read incrementally (its list only grows)."""

    def __init__(self, slack: Any) -> None:
        self.slack = slack
        self.seen = 0
        self.by_lead: dict[str, list[tuple[float, str]]] = {}

    def read(self) -> dict[str, list[tuple[float, str]]]:
        """For each lead, every (arrival time, channel) of a card for it so far."""
        posts = self.slack.calls_to("chat.postMessage")
        for call in posts[self.seen :]:
            lead = card_lead(call.params)
            if lead is not None:
                self.by_lead.setdefault(lead, []).append((call.at, str(call.params["channel"])))
        self.seen = len(posts)
        return self.by_lead

    async def wait(self, wanted: set[str], within: float) -> dict[str, list[tuple[float, str]]]:
        """Until every wanted lead has a card (or `within` seconds), then SETTLE_S more so that
        a card posted twice shows; the cards of the wanted leads."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if wanted.issubset(self.read()):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(SETTLE_S)
        found = self.read()
        return {lead: found[lead] for lead in wanted if lead in found}


def delivery_check(wanted: set[str], found: dict[str, list[tuple[float, str]]]) -> dict[str, Any]:
    counts = Counter(len(found.get(lead, [])) for lead in wanted)
    return {
        "expected": len(wanted),
        "delivered_once": counts[1],
        "missing": counts[0],
        "duplicated": sum(n for times, n in counts.items() if times > 1),
    }


# --- the load ---------------------------------------------------------------------------------


class CpuWindow:
    """Where the machine's CPU went over a window: the server's share, this process's (the load
    generator and the fake), and everything else's, each as a fraction of all cores."""

    def __init__(self, server: Serve) -> None:
        self.pid = server.process.pid
        self.began = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        fields = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        tick = os.sysconf("SC_CLK_TCK")
        return (time.monotonic(), busy / tick, cpu_seconds(self.pid), cpu_seconds(os.getpid()))

    def figures(self) -> dict[str, float]:
        now = self._read()
        wall, busy, server, bench = (b - a for a, b in zip(self.began, now, strict=True))
        cores = wall * (os.cpu_count() or 1)
        return {
            "machine_busy": round(busy / cores, 2),
            "server": round(server / cores, 2),
            "bench_and_fake": round(bench / cores, 2),
            "others": round(max(0.0, busy - server - bench) / cores, 2),
        }


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's resident memory until stopped."""

    def __init__(self, server: Serve) -> None:
        self.server = server
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(self.server.rss_mb()[0])
            await asyncio.sleep(RSS_EVERY_S)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def figures(self) -> dict[str, float]:
        _, peak = self.server.rss_mb()
        return {
            "rss_start_mb": round(self.samples[0], 1),
            "rss_peak_sampled_mb": round(max(self.samples), 1),
            "rss_high_water_mb": round(peak, 1),
            "rss_end_mb": round(self.samples[-1], 1),
        }


async def post_timed(url: str, batch: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """POST each lead on a fixed schedule (open loop); when each was sent, and the answers."""
    bodies = [(lead["id"], json.dumps(lead).encode()) for lead in batch]
    sent: dict[str, float] = {}
    answered: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(lead_id: str, body: bytes) -> None:
            headers = signed(body)
            began = sent[lead_id] = time.monotonic()
            async with http.post(f"{url}/leads", data=body, headers=headers) as answer:
                await answer.read()
            answered.append(time.monotonic() - began)
            statuses[answer.status] += 1

        started = time.monotonic()
        tasks = []
        for n, (lead_id, body) in enumerate(bodies):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(lead_id, body)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return {
        "sent": sent,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "achieved_rate": round(len(bodies) / elapsed, 1),
        "answer": percentiles(answered),
    }


async def latency_run(
    server: Server, slack: Any, rate: float, seconds: float, seed: int
) -> dict[str, Any]:
    """Warm up for 2 s, then `seconds` of leads at `rate`; POST to card, per lead."""
    cards = Cards(slack)
    warm = list(leads(int(rate * 2), seed + 1000, "W"))
    await post_timed(server.url, warm, rate)
    await cards.wait({lead["id"] for lead in warm}, CARD_WAIT_S)
    batch = list(leads(int(rate * seconds), seed, "P"))
    with RssSampler(server) as rss:
        cpu = CpuWindow(server)
        posted = await post_timed(server.url, batch, rate)
        cpu_share = cpu.figures()
        sent: dict[str, float] = posted.pop("sent")
        found = await cards.wait(set(sent), CARD_WAIT_S)
    latencies = [min(at for at, _ in found[lead]) - sent[lead] for lead in sent if lead in found]
    return {
        "rate": rate,
        "seconds": seconds,
        **posted,
        "cards": delivery_check(set(sent), found),
        **(percentiles(latencies) if latencies else {}),
        **rss.figures(),
        "cpu_share": cpu_share,
    }


async def bench_latency(
    folder: Path, seconds: float, rate: float, reps: int, before: str | None = None
) -> dict[str, Any]:
    """Bare forwarder, then serve; with `before`, serve at that revision too, against one fake."""
    from tests.fakes.slack import FakeSlack

    with FakeSlack.in_thread(post_rate_per_channel=POST_RATE, post_burst=POST_BURST) as slack:
        bare = start_bare(folder, reps, slack.api_url)
        try:
            await bare.ready()
            baseline = await latency_run(bare, slack, rate, seconds, seed=21)
        finally:
            bare.close()
        earlier = None
        if before is not None:
            source = export_revision(before, folder)
            old = start_serve(folder, "latency-before", reps, slack.api_url, source=source)
            try:
                await old.ready()
                earlier = await latency_run(old, slack, rate, seconds, seed=23)
            finally:
                old.close()
        serve = start_serve(folder, "latency", reps, slack.api_url)
        try:
            await serve.ready()
            measured = await latency_run(serve, slack, rate, seconds, seed=22)
        finally:
            serve.close()
        refused = Counter(f"{call.method} {call.status} {call.error}" for call in slack.refused)
    ratio = measured["p50_ms"] / baseline["p50_ms"] if baseline.get("p50_ms") else None
    comparison = {}
    if earlier is not None and baseline.get("p50_ms") and earlier.get("p50_ms"):
        comparison = {
            "before": {"revision": before, **earlier},
            "before_p50_ratio": round(earlier["p50_ms"] / baseline["p50_ms"], 2),
        }
    return {
        "reps": reps,
        "serve": measured,
        "bare": baseline,
        "p50_ratio": round(ratio, 2) if ratio is not None else None,
        **comparison,
        "fake_refused": dict(refused),
        "serve_log_lines": serve.log_lines(),
    }


async def bench_burst(folder: Path, count: int, reps: int) -> dict[str, Any]:
    from tests.fakes.slack import FakeSlack

    batch = list(leads(count, seed=31, prefix="B"))
    wanted = {lead["id"] for lead in batch}
    with FakeSlack.in_thread(post_rate_per_channel=POST_RATE, post_burst=POST_BURST) as slack:
        serve = start_serve(folder, "burst", reps, slack.api_url)
        try:
            await serve.ready()
            with RssSampler(serve) as rss:
                async with aiohttp.ClientSession() as http:

                    async def post(part: list[dict[str, Any]]) -> tuple[int, float]:
                        body = json.dumps({"leads": part}).encode()
                        async with http.post(
                            f"{serve.url}/leads", data=body, headers=signed(body)
                        ) as answer:
                            await answer.read()
                        return answer.status, time.monotonic()

                    cpu = CpuWindow(serve)
                    began = time.monotonic()
                    answers = await asyncio.gather(
                        *(post(batch[n : n + BATCH]) for n in range(0, len(batch), BATCH))
                    )
                # The whole run at this rate takes about count / reps seconds; allow twice that.
                found = await Cards(slack).wait(wanted, 2 * count / reps / POST_RATE + 30)
            memory, cpu_share = rss.figures(), cpu.figures()
        finally:
            serve.close()
        refused = Counter(f"{call.method} {call.status} {call.error}" for call in slack.refused)
    per_channel = Counter(channel for cards in found.values() for _, channel in cards)
    most = max(per_channel.values()) if per_channel else 0
    bound = max(0.0, (most - POST_BURST) / POST_RATE)
    last = max((at for cards in found.values() for at, _ in cards), default=began)
    elapsed = last - began
    return {
        "leads": count,
        "reps": reps,
        "batches": [status for status, _ in answers],
        "all_answered_s": round(max(at for _, at in answers) - began, 2),
        "cards": delivery_check(wanted, found),
        "cards_per_channel": {"min": min(per_channel.values(), default=0), "max": most},
        "elapsed_s": round(elapsed, 2),
        "bound_s": round(bound, 2),
        "ratio": round(elapsed / bound, 3) if bound else None,
        "fake_refused": dict(refused),
        **memory,
        "cpu_share": cpu_share,
        "serve_log_lines": serve.log_lines(),
    }


async def bench_backlog(folder: Path, seconds: float) -> dict[str, Any]:
    from tests.fakes.slack import FakeSlack

    backlog = [{**lead, "source": "backlog"} for lead in leads(BACKLOG, seed=41, prefix="Q")]
    others = [{**lead, "source": "website"} for lead in leads(int(BACKLOG_RATE * seconds), 42)]
    with FakeSlack.in_thread(post_rate_per_channel=POST_RATE, post_burst=POST_BURST) as slack:
        serve = start_serve(folder, "backlog", 0, slack.api_url, write_backlog_policy(folder))
        try:
            await serve.ready()
            cards = Cards(slack)
            async with aiohttp.ClientSession() as http:
                body = json.dumps({"leads": backlog}).encode()
                async with http.post(f"{serve.url}/leads", data=body, headers=signed(body)) as a:
                    await a.read()
                    backlog_status = a.status
            began = time.monotonic()
            posted = await post_timed(serve.url, others, BACKLOG_RATE)
            sent: dict[str, float] = posted.pop("sent")
            found_others = await cards.wait(set(sent), CARD_WAIT_S)
            # The backlog drains at the fake's pace: (BACKLOG - burst) s from its first card.
            wanted = {lead["id"] for lead in backlog} | set(sent)
            found = await cards.wait(wanted, BACKLOG / POST_RATE + CARD_WAIT_S)
            drained = max(
                (at for lead in backlog for at, _ in found.get(lead["id"], [])), default=0
            )
        finally:
            serve.close()
        refused = Counter(f"{call.method} {call.status} {call.error}" for call in slack.refused)
    latencies = [
        min(at for at, _ in found_others[lead]) - sent[lead]
        for lead in sent
        if lead in found_others
    ]
    return {
        "backlog": BACKLOG,
        "backlog_status": backlog_status,
        "other_reps": BACKLOG_OTHERS,
        "others_rate": BACKLOG_RATE,
        "seconds": seconds,
        **posted,
        "others": percentiles(latencies) if latencies else {},
        "cards": delivery_check(wanted, found),
        "backlog_drained_s": round(drained - began, 1) if drained else None,
        "fake_refused": dict(refused),
        "serve_log_lines": serve.log_lines(),
    }


# --- the report -------------------------------------------------------------------------------


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "pass" if value <= target else "FAIL"


def cpu_row(name: str, share: dict[str, float]) -> tuple[str, str, str, str]:
    return (
        f"{name}: CPU busy (of all cores)",
        f"{share['machine_busy']:.0%}: server {share['server']:.0%}, "
        f"bench+fake {share['bench_and_fake']:.0%}, others {share['others']:.0%}",
        "",
        "",
    )


def table(results: dict[str, Any]) -> Iterable[str]:
    rows: list[tuple[str, str, str, str]] = []
    if "latency" in results:
        latency = results["latency"]
        serve, bare = latency["serve"], latency["bare"]
        for name, run in (("serve", serve), ("bare", bare)):
            cards = run["cards"]
            rows.append(
                (
                    f"{name}: {run['achieved_rate']}/s for {run['seconds']:g} s, cards",
                    f"{cards['delivered_once']}/{cards['expected']} once",
                    "all, once",
                    "pass"
                    if cards["delivered_once"] == cards["expected"]
                    and run["statuses"] == {"201": cards["expected"]}
                    else "FAIL",
                )
            )
        for key in ("p50_ms", "p99_ms"):
            value = serve.get(key)
            rows.append(
                (
                    f"serve POST to card {key[:3]}",
                    f"{value} ms",
                    f"<= {TARGETS[key]:g}",
                    verdict(value, TARGETS[key]),
                )
            )
        for key in ("p95_ms", "max_ms"):
            rows.append((f"serve POST to card {key[:3]}", f"{serve.get(key)} ms", "", ""))
        rows.append(
            (
                "serve POST to 201 p50 / p99",
                f"{serve['answer']['p50_ms']} / {serve['answer']['p99_ms']} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "bare POST to card p50 / p99",
                f"{bare.get('p50_ms')} / {bare.get('p99_ms')} ms",
                "",
                "",
            )
        )
        ratio = latency["p50_ratio"]
        rows.append(
            (
                "p50 serve / bare",
                f"{ratio}x",
                f"<= {TARGETS['p50_ratio']:g}x",
                verdict(ratio, TARGETS["p50_ratio"]),
            )
        )
        if "before" in latency:
            earlier = latency["before"]
            rows.append(
                (
                    f"before ({earlier['revision']}): POST to card p50 / p99, ratio to bare",
                    f"{earlier.get('p50_ms')} / {earlier.get('p99_ms')} ms, "
                    f"{latency['before_p50_ratio']}x",
                    "",
                    "",
                )
            )
        rows.append(cpu_row("serve run", serve["cpu_share"]))
        rows.append(cpu_row("bare run", bare["cpu_share"]))
    if "backlog" in results:
        backlog = results["backlog"]
        others, cards = backlog["others"], backlog["cards"]
        rows.append(
            (
                f"backlog: {backlog['backlog']} cards for one DM, then other DMs' cards p50 / p99",
                f"{others.get('p50_ms')} / {others.get('p99_ms')} ms (max {others.get('max_ms')})",
                f"p99 <= {TARGETS['backlog_p99_ms']:g} ms",
                verdict(others.get("p99_ms"), TARGETS["backlog_p99_ms"]),
            )
        )
        rows.append(
            (
                "backlog: every card",
                f"{cards['delivered_once']} once, {cards['missing']} missing, "
                f"{cards['duplicated']} twice+; backlog drained after "
                f"{backlog['backlog_drained_s']} s",
                "all, once",
                "pass" if cards["delivered_once"] == cards["expected"] else "FAIL",
            )
        )
    if "burst" in results:
        burst = results["burst"]
        cards = burst["cards"]
        rows.append(
            (
                f"burst: {burst['leads']} leads over {burst['reps']} reps, cards",
                f"{cards['delivered_once']} once, {cards['missing']} missing, "
                f"{cards['duplicated']} twice+",
                "all, once",
                "pass" if cards["delivered_once"] == cards["expected"] else "FAIL",
            )
        )
        rows.append(("burst: all POSTs answered after", f"{burst['all_answered_s']} s", "", ""))
        rows.append(
            (
                "burst: first POST to last card",
                f"{burst['elapsed_s']} s (bound {burst['bound_s']} s) = {burst['ratio']}x",
                f"<= {TARGETS['burst_ratio']:g}x",
                verdict(burst["ratio"], TARGETS["burst_ratio"]),
            )
        )
        peak = max(burst["rss_peak_sampled_mb"], burst["rss_high_water_mb"])
        rows.append(
            (
                "burst: serve RSS peak",
                f"{peak} MB (start {burst['rss_start_mb']}, end {burst['rss_end_mb']})",
                f"< {TARGETS['rss_mb']:g} MB",
                "pass" if peak < TARGETS["rss_mb"] else "FAIL",
            )
        )
        rows.append(cpu_row("burst", burst["cpu_share"]))
    widths = [max(len(row[n]) for row in rows) for n in range(4)]
    for row in rows:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_slack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["latency", "backlog", "burst"])
    parser.add_argument("--rate", type=float, default=50, help="POSTs per second (latency)")
    parser.add_argument(
        "--before",
        metavar="REVISION",
        help="also time serve at this git revision in the same run (latency), e.g. main",
    )
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        await bare_server(args.port, args.slack_url, args.reps)
        return 0
    sys.path.insert(0, str(ROOT))  # tests.fakes
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "loadavg_before": [round(n, 2) for n in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="leadrouter-bench-slack-") as temp:
        folder = Path(temp)
        if args.only in (None, "latency"):
            seconds = 10 if args.quick else 60
            results["latency"] = await bench_latency(
                folder, seconds, args.rate, reps=100, before=args.before
            )
            print("latency:", json.dumps(results["latency"]), flush=True)
        if args.only in (None, "backlog"):
            seconds = 10 if args.quick else BACKLOG_SECONDS
            results["backlog"] = await bench_backlog(folder, seconds)
            print("backlog:", json.dumps(results["backlog"]), flush=True)
        if args.only in (None, "burst"):
            count, reps = (1000, 20) if args.quick else (5000, 100)
            results["burst"] = await bench_burst(folder, count, reps)
            print("burst:", json.dumps(results["burst"]), flush=True)
    results["loadavg_after"] = [round(n, 2) for n in os.getloadavg()]
    print()
    for line in table(results):
        print(line)
    print(f"load average before / after: {results['loadavg_before']} / {results['loadavg_after']}")
    if not args.quick and args.only is None:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
