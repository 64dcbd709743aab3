"""Outbox delivery with one recipient the platform refuses for good, beside a healthy run.

A community of members gets staff grants while the platform is down, so a backlog of
messages piles up in the outbox (SQLite), with the messages to one deactivated member
first in line. Then the platform comes back and the scheduled retry (`Relay.flush`)
runs. Measured, for the same backlog without and with the refused recipient:

* how many of the other members' messages were delivered by that one retry;
* how long that retry took (the platform takes 1 ms a send), and the ratio of the
  two times (≈1 means the refused recipient costs nothing);
* that the refused recipient's messages were set aside, and staff told once.

    .venv/bin/python tests/bench/outbox_bench.py [--members 200] [--grants 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.bootstrap import assemble, sql_store
from bot.messages import Outbound
from bot.ports import Undeliverable
from bot.settings import load_settings
from store.db import create_schema, dispose
from tests.fakes import FakeClock, said

SEND_SECONDS = 0.001


class Platform:
    """A console messenger that may be down, refuses `gone` for good, and takes 1 ms."""

    platform = "console"

    def __init__(self) -> None:
        self.down = True
        self.gone: set[str] = set()
        self.arrived: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        if self.down:
            raise ConnectionError("no route to the platform")
        await asyncio.sleep(SEND_SECONDS)
        if message.to in self.gone:
            raise Undeliverable("account_inactive")
        self.arrived.append(message)


async def run(members: int, grants: int, refuse: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        uow, engine, readers = sql_store(url)
        await create_schema(engine)
        settings = load_settings(
            _env_file=None,
            database_url=url,
            sif_admins="console:staff",
            sif_rate_commands_per_minute=0,
        )
        platform = Platform()
        clock = FakeClock()
        app = assemble(settings, uow, clock, engine=engine, messengers=[platform])
        names = ["gone", *(f"m{i}" for i in range(members - 1))]
        platform.down = False
        for name in names:
            await app.bot.handle(said(name, "balance"))
        platform.down = True
        if refuse:
            platform.gone = {"gone"}
        for _ in range(grants):
            for name in names:
                await app.bot.handle(said("staff", f"grant @{name} 1 thanks"))
        platform.down = False
        platform.arrived.clear()
        clock.advance(hours=1)
        started = time.perf_counter()
        await app.relay.flush()
        seconds = time.perf_counter() - started
        others = sum(1 for m in platform.arrived if m.to not in ("gone", "staff"))
        notices = sum(1 for m in platform.arrived if m.topic == "outbox.set-aside")
        async with app.bot.uow_factory() as u:
            aside = await u.stats.set_aside()
            left = await u.stats.backlog()
        await dispose(engine, readers)
        return {
            "others": others,
            "expected": (members - 1) * grants,
            "seconds": seconds,
            "aside": aside,
            "left": left,
            "notices": notices,
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--grants", type=int, default=5)
    args = parser.parse_args()
    healthy = await run(args.members, args.grants, refuse=False)
    refused = await run(args.members, args.grants, refuse=True)
    backlog = args.members * args.grants * 2
    print(f"outbox backlog of {backlog} messages, {args.members} members, one retry:")
    for label, r in (("all recipients active", healthy), ("one recipient refused", refused)):
        print(
            f"  {label:24} others delivered {r['others']:.0f}/{r['expected']:.0f} "
            f"in {r['seconds']:.2f} s; set aside {r['aside']:.0f}, staff notices "
            f"{r['notices']:.0f}, still waiting {r['left']:.0f}"
        )
    print(f"  ratio refused/healthy retry time: {refused['seconds'] / healthy['seconds']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
