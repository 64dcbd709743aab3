"""`/sif balance` over Slack's HTTP path: sif-bot next to a bare Bolt app that only acks.

Both apps run in this process on 127.0.0.1 behind the same aiohttp server set-up, get
the same correctly signed slash-command requests from 16 concurrent clients, and talk
to the same local fake Web API. For sif-bot a request counts as done when its answer
reached the member: in the command's response (a read-only answer rides on the ack)
or as an ephemeral message through the fake Web API (the whole loop: ack, core,
database, outbox, Web API call); for the bare app when its ack came back. The ratio of the two
throughputs is the figure (goal ≥ 0.8); absolute numbers depend on the machine.

    .venv/bin/python tests/bench/slack_bench.py [--requests 2000] [--clients 16] [--postgres]
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


def report(label: str, run: tuple[float, list[float], float], requests: int) -> tuple[float, float]:
    seconds, latencies, cpu_ms = run
    latencies = sorted(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = requests / seconds
    print(
        f"{label:<34} {rate:6.0f} req/s   ack p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
        f"   CPU {cpu_ms:5.2f} ms/request"
    )
    return rate, cpu_ms


async def run_sif_bot(
    slack: FakeSlack, args: argparse.Namespace, db_url: str
) -> tuple[float, list[float], float]:
    settings = load_settings(_env_file=None, database_url=db_url, sif_rate_commands_per_minute=0)
    app = await build(settings)  # wired as `sif-bot run` wires it
    try:
        async with aiohttp.ClientSession() as http:
            adapter = SlackAdapter(
                app.bot,
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
            run = await drive(url, args.requests, args.clients, answered)
            await runner.cleanup()
            await adapter.drain()
        return run
    finally:
        await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432")
    args = parser.parse_args()
    async with FakeSlack() as slack:
        runner, url = await serve(bare_app(slack))

        async def acked(_: int) -> None:
            return None

        await drive(url, 100, args.clients, acked)  # warm-up
        bare_run = await drive(url, args.requests, args.clients, acked)
        await runner.cleanup()

        if args.postgres:
            name = await pg_database()
            try:
                ours_run = await run_sif_bot(slack, args, f"{PG_URL}/{name}")
            finally:
                await drop_pg(name)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                ours_run = await run_sif_bot(slack, args, f"sqlite+aiosqlite:///{tmp}/bench.db")
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{args.requests} requests, {args.clients} concurrent clients, loopback, {database}")
    bare, bare_cpu = report("bare Bolt app, ack only", bare_run, args.requests)
    ours, ours_cpu = report("sif-bot /sif balance (answered)", ours_run, args.requests)
    print(f"ratio sif-bot / bare Bolt: {ours / bare:.2f} (goal ≥ 0.8)")
    print(f"CPU ratio bare Bolt / sif-bot per request: {bare_cpu / ours_cpu:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
