"""`/sif balance` over Slack's HTTP path: sif-bot next to a bare Bolt app that only acks.

Both apps run in this process on 127.0.0.1 behind the same aiohttp server set-up, get
the same correctly signed slash-command requests from 16 concurrent clients, and talk
to the same local fake Web API. For sif-bot a request counts as done when its answer
reached the member: in the command's response (a read-only answer rides on the ack)
or as an ephemeral message through the fake Web API (the whole loop: ack, core,
database, outbox, Web API call); for the bare app when its ack came back. The ratio of the two
throughputs is the figure (goal ≥ 0.5); absolute numbers depend on the machine.

    .venv/bin/python tests/bench/slack_bench.py [--requests 2000] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
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
from bot.outbox import Relay
from bot.ports import SystemClock
from bot.service import Bot
from bot.settings import load_settings
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.uow import SqlUnitOfWorkFactory
from tests.adapters.slack.fake_slack import FakeSlack, sign, slash_command_body

SECRET = "bench-secret"
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
) -> tuple[float, list[float]]:
    """Send `requests` signed `/sif balance` commands; returns (seconds, ack latencies ms).
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

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    await done(requests - answered)
    return time.perf_counter() - start, latencies


def bare_app(slack: FakeSlack) -> web.Application:
    app = AsyncApp(signing_secret=SECRET, client=make_client("xoxb-bench", slack.base_url))

    @app.command("/sif")
    async def on_command(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", handle)])
    return web_app


def report(label: str, seconds: float, latencies: list[float], requests: int) -> float:
    latencies = sorted(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = requests / seconds
    print(f"{label:<34} {rate:8.0f} req/s   ack p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    async with FakeSlack() as slack:
        runner, url = await serve(bare_app(slack))

        async def acked(_: int) -> None:
            return None

        await drive(url, 100, args.clients, acked)  # warm-up
        bare_seconds, bare_latencies = await drive(url, args.requests, args.clients, acked)
        await runner.cleanup()

        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await asyncio.to_thread(upgrade, db_url)
            engine = make_engine(db_url)
            uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
            settings = load_settings(_env_file=None, database_url=db_url)
            clock = SystemClock()
            bot = Bot(uow, settings, clock, Relay(uow, clock))
            async with aiohttp.ClientSession() as http:
                adapter = SlackAdapter(
                    bot,
                    token="xoxb-bench",
                    signing_secret=SECRET,
                    api_url=slack.base_url,
                    session=http,
                )
                runner, url = await serve(adapter.web_app())

                async def answered(count: int) -> None:
                    if count:
                        await slack.wait_for("chat.postEphemeral", count=count, timeout=600)

                await drive(url, 100, args.clients, answered)  # warm-up: members created
                slack.clear()
                ours_seconds, ours_latencies = await drive(
                    url, args.requests, args.clients, answered
                )
                await runner.cleanup()
                await adapter.drain()
            await engine.dispose()
    print(f"{args.requests} requests, {args.clients} concurrent clients, loopback, SQLite")
    bare = report("bare Bolt app, ack only", bare_seconds, bare_latencies, args.requests)
    ours = report("sif-bot /sif balance (answered)", ours_seconds, ours_latencies, args.requests)
    print(f"ratio sif-bot / bare Bolt: {ours / bare:.2f} (goal ≥ 0.5)")


if __name__ == "__main__":
    asyncio.run(main())
