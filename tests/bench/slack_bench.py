"""`/sif balance` over Slack's HTTP path: sif-bot next to a bare Bolt app that only acks.

Both apps run in this process on 127.0.0.1 behind the same aiohttp server set-up, get
the same correctly signed slash-command requests from 16 concurrent clients, and talk
to the same local fake Web API. For sif-bot a request counts as done when its answer
reached the member: in the command's response (a read-only answer rides on the ack)
or as an ephemeral message through the fake Web API (the whole loop: ack, core,
database, outbox, Web API call); for the bare app when its ack came back. The ratio of the two
throughputs is the figure (goal ≥ 0.8); absolute numbers depend on the machine.

The two take turns for a few rounds (each first every other round) and the figure is
the ratio of their median rounds, so a burst of other work on the machine weighs on
both. The bare app runs with Bolt's defaults, whose ack waits in 10 ms steps: at 16
clients that bounds its throughput by latency, not CPU. `--bare-inline` runs it as
sif-bot's adapter runs (`process_before_response`), which leaves CPU as the bound; the
CPU per request of the two is printed either way.

    .venv/bin/python tests/bench/slack_bench.py [--requests 2000] [--rounds 3]
        [--clients 16] [--postgres] [--bare-inline]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp

from adapters.slack.app import SlackAdapter, make_client
from bot.bootstrap import build
from bot.settings import load_settings
from tests.adapters.slack.fake_slack import FakeSlack, sign, slash_command_body
from tests.bench.memory import drop_pg, pg_database

SECRET = "bench-secret"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"
USERS = 50


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/slack/events"


async def drive(
    url: str, requests: int, clients: int, done: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float], float]:
    """Send `requests` signed `/sif balance` commands; returns (seconds, ack latencies ms,
    this process's CPU ms per request — clients included, so comparable between apps and
    less disturbed than wall time by other work on the machine).
    `done` is given how many were not answered in their response, and waits for those."""
    latencies: list[float] = []
    answered = 0
    counter = iter(range(requests))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            body = slash_command_body(
                text="balance", user_id=f"U{i % USERS:04d}", trigger_id=f"t{i}.{time.time_ns()}"
            )
            headers = {**sign(SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
            start = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                text = await response.text()
                assert response.status == 200, response.status
            latencies.append((time.perf_counter() - start) * 1000)
            if "Your balance" in text:
                nonlocal answered
                answered += 1

    start, cpu = time.perf_counter(), time.process_time()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    await done(requests - answered)
    cpu_ms = (time.process_time() - cpu) * 1000 / requests
    return time.perf_counter() - start, latencies, cpu_ms


def bare_app(slack: FakeSlack, inline: bool = False) -> web.Application:
    """Bolt's defaults, or with `inline` its listener awaited before the response
    (`process_before_response`, as sif-bot's adapter runs): by default Bolt runs it in a
    task and looks every 10 ms whether it has acked, which bounds the bare app's
    throughput at 16 clients by latency rather than by CPU."""
    app = AsyncApp(
        signing_secret=SECRET,
        client=make_client("xoxb-bench", slack.base_url),
        process_before_response=inline,
    )

    @app.command("/sif")
    async def on_command(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", handle)])
    return web_app


def report(label: str, runs: list[tuple[float, list[float], float]], requests: int) -> float:
    """One line for a side's rounds: the median round's throughput (the figure), its ack
    latencies and CPU per request; returns that throughput."""
    rates = sorted(requests / seconds for seconds, _, _ in runs)
    latencies = sorted(ms for _, round_latencies, _ in runs for ms in round_latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    cpu_ms = statistics.median(cpu for _, _, cpu in runs)
    rate = statistics.median(rates)
    print(
        f"{label:<34} {rate:6.0f} req/s ({rates[0]:.0f}–{rates[-1]:.0f})"
        f"   ack p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   CPU {cpu_ms:5.2f} ms/request"
    )
    return rate


async def sif_bot_server(
    slack: FakeSlack, db_url: str, stack: contextlib.AsyncExitStack
) -> tuple[str, Callable[[int], Awaitable[None]]]:
    """sif-bot wired as `sif-bot run` wires it, served on 127.0.0.1; returns its URL and
    the wait for the answers not given in a command's response."""
    settings = load_settings(_env_file=None, database_url=db_url, sif_rate_commands_per_minute=0)
    app = await build(settings)
    stack.push_async_callback(app.close)
    http = await stack.enter_async_context(aiohttp.ClientSession())
    adapter = SlackAdapter(
        app.bot, token="xoxb-bench", signing_secret=SECRET, api_url=slack.base_url, session=http
    )
    stack.push_async_callback(adapter.drain)
    runner, url = await serve(adapter.web_app())
    stack.push_async_callback(runner.cleanup)

    async def answered(count: int) -> None:
        if count:
            await slack.wait_for("chat.postEphemeral", count=count, timeout=600)
        slack.clear()

    return url, answered


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432")
    parser.add_argument(
        "--bare-inline",
        action="store_true",
        help="the bare app with process_before_response (no 10 ms ack polling)",
    )
    args = parser.parse_args()
    bare_runs: list[tuple[float, list[float], float]] = []
    ours_runs: list[tuple[float, list[float], float]] = []
    async with FakeSlack() as slack, contextlib.AsyncExitStack() as stack:
        runner, bare_url = await serve(bare_app(slack, args.bare_inline))
        stack.push_async_callback(runner.cleanup)

        async def acked(_: int) -> None:
            return None

        if args.postgres:
            name = await pg_database()
            stack.push_async_callback(drop_pg, name)
            db_url = f"{PG_URL}/{name}"
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        ours_url, answered = await sif_bot_server(slack, db_url, stack)
        await drive(bare_url, 100, args.clients, acked)  # warm-up
        await drive(ours_url, 100, args.clients, answered)  # warm-up: members created
        # The two sides take turns, each going first every other round, so that a change
        # in what else the machine does weighs on both.
        for turn in range(args.rounds):
            sides = [(bare_url, acked, bare_runs), (ours_url, answered, ours_runs)]
            for url, done, runs in sides if turn % 2 == 0 else reversed(sides):
                runs.append(await drive(url, args.requests, args.clients, done))
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{args.rounds} rounds of {args.requests} requests a side, {args.clients} concurrent "
        f"clients, loopback, {database}"
    )
    label = "bare Bolt app, ack only" + (" (inline)" if args.bare_inline else "")
    bare = report(label, bare_runs, args.requests)
    ours = report("sif-bot /sif balance (answered)", ours_runs, args.requests)
    ratios = sorted(
        (b_seconds / o_seconds)
        for (b_seconds, _, _), (o_seconds, _, _) in zip(bare_runs, ours_runs, strict=True)
    )
    cpu = statistics.median(c for _, _, c in ours_runs) / statistics.median(
        c for _, _, c in bare_runs
    )
    print(
        f"ratio sif-bot / bare Bolt: {ours / bare:.2f} (goal ≥ 0.8; rounds "
        f"{ratios[0]:.2f}–{ratios[-1]:.2f}); CPU per request {cpu:.2f} × the bare app's"
    )


if __name__ == "__main__":
    asyncio.run(main())
