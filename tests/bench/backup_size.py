"""The size of the JSON backup (`sif-bot export --format json`, store/backup.py) of one
community before and after the retention job (SPEC §13).

On a fresh SQLite file, through the core: twelve innovators each say hello, go through
the intake conversation, ask for a review that two peers are offered, one declines and
the other accepts, delivers and is thanked; each innovator asks for `mydata`; staff export
members, requests and the ledger and look at the balances. Everything is delivered to a
recording messenger. The backup is measured then, after the job's run an hour later
(attached files dropped), and after its run past SIF_OUTBOX_RETENTION_DAYS (delivered
messages' text erased). The figure is the ratio of the sizes.

    .venv/bin/python tests/bench/backup_size.py [--requests 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app.jobs import keep_for_retention
from bot.bootstrap import App, assemble, sql_store
from bot.settings import load_settings
from store.backup import dump
from store.db import create_schema, dispose
from tests.fakes import FakeClock, RecordingMessenger, said

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def intake(title: str) -> list[str]:
    return [
        "1",
        title,
        "Volunteer-run repair cafés in every Ghent neighbourhood, open to everyone.",
        "Too much waste, and lonely people in the city.",
        "Fewer things thrown away; neighbours who meet each month.",
        "grants, donations - mostly city grants",
        "5000-8000 EUR",
        "prototype",
        "Whether volunteers stay motivated.",
        "civil society, government",
        "finance, business-model",
        "skip",
        "English, Dutch",
        "confirm",
    ]


async def play(app: App, clock: FakeClock, requests: int) -> None:
    async def say(who: str, text: str, channel: str | None = None) -> None:
        await app.bot.handle(said(who, text, channel=channel))
        clock.advance(minutes=3)

    await say("staff", "availability 0")
    for peer, skills in (("bob", "finance:3 business-model:2"), ("cleo", "finance:2")):
        await say(peer, f"expertise add {skills}")
        await say(peer, "availability 10")
    for n in range(1, requests + 1):
        innovator = f"innovator{n}"
        await say(innovator, "hello")
        for answer in intake(f"Repair café network {n}"):
            await say(innovator, answer)
        await say(innovator, f"request I-{n} review")
        decliner, reviewer = ("bob", "cleo") if n % 2 else ("cleo", "bob")
        await say(decliner, f"decline R-{n} travelling this week")
        await say(reviewer, f"accept R-{n}")
        await say(
            reviewer,
            f"done R-{n} 1.5 Start with a cost model per café; city grants cover the start.",
        )
        await say(innovator, f"thanks R-{n} 5 very practical, thank you")
        await say(innovator, "mydata")
    for what in ("members", "requests", "ledger"):
        await say("staff", f"export {what}", channel="staff")
    await say("staff", "balances", channel="staff")


def sizes(backup: dict[str, Any]) -> tuple[int, int]:
    """Bytes of the whole backup as JSON text, and of its outbox table."""
    whole = len(json.dumps(backup, ensure_ascii=False).encode("utf-8"))
    outbox = len(json.dumps(backup["tables"]["outbox"], ensure_ascii=False).encode("utf-8"))
    return whole, outbox


def report(label: str, backup: dict[str, Any], first: int | None = None) -> int:
    whole, outbox = sizes(backup)
    first = first or whole
    print(
        f"{label:<40} {whole:>9,} bytes  (outbox {outbox:>9,} = {outbox / whole:4.0%})"
        f"  {whole / first:5.1%} of the first"
    )
    return whole


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        uow, engine, readers = sql_store(url)
        await create_schema(engine)
        settings = load_settings(
            _env_file=None, database_url=url, sif_admins="console:staff", sif_staff_channel="staff"
        )
        clock = FakeClock(NOW)
        app = assemble(
            settings, uow, clock, engine=engine, readers=readers,
            messengers=[RecordingMessenger("console")],
        )  # fmt: skip
        await play(app, clock, args.requests)
        async with uow() as check:
            community = await check.communities.find("console")
            assert community is not None
            done = [r for r in await check.requests.all(community.id) if r.status == "confirmed"]
            assert len(done) == args.requests, "every request went through its lifecycle"
        print(f"{args.requests} requests, their whole lifecycle, delivered:")
        first = report("backup before retention", await dump(engine))
        clock.advance(hours=1)
        await keep_for_retention(uow, settings, clock)
        report("after the hourly run (files dropped)", await dump(engine), first)
        clock.advance(days=settings.sif_outbox_retention_days)
        await keep_for_retention(uow, settings, clock)
        last = report(
            f"after {settings.sif_outbox_retention_days:g} days (texts erased)",
            await dump(engine),
            first,
        )
        print(f"retention makes the backup {first / last:.1f}x smaller")
        await dispose(engine, readers)


if __name__ == "__main__":
    asyncio.run(main())
