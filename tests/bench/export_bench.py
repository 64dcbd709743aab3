"""`export members` on SQLite with many members, the way it read expertise before (one
query per member) next to the way it does now (one query for the community), and how
long another member's write waits while the export runs.

A SQLite file with `--members` members (each with one to three expertise tags and a chat
identity) is built; staff then type `export members` through the core (`Bot.handle`, the
file delivered to a recording messenger) while, every 50 ms, another member types
`pause 1` or `resume` (a write, as any command that changes something). Each write's
wait is the time from typing it to its answer. The same run measures first the old code
path (the handler as it was, a query per member), then the current one; both make the same
CSV, which is checked. The figures are the ratios old/new: absolute times depend on the
machine. Slack gives up on an answer after 3 s.

    .venv/bin/python tests/bench/export_bench.py [--members 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import insert

from bot.app.context import Context
from bot.app.handlers.export import _amount, export_rows, to_csv
from bot.bootstrap import App, assemble, sql_store
from bot.commands import Export
from bot.domain.ids import CommunityId
from bot.domain.records import Role
from bot.messages import File, Outbound, plain
from bot.ports import UnitOfWork
from bot.settings import load_settings
from store.db import create_schema, dispose
from store.models import AccountRow, ExpertiseRow, IdentityRow, MemberRow
from tests.fakes import FakeClock, RecordingMessenger, said

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TAGS = ("finance", "legal", "marketing", "design", "impact", "funding")
WRITE_EVERY = 0.05  # seconds between two writes of other members
SLACK_ACK = 3.0


async def per_member_rows(uow: UnitOfWork, community: CommunityId) -> list[list[Any]]:
    """`export members` as it was: the same rows, one expertise query per member."""
    infos = {b.member: b for b in await uow.ledger.all_balances(community)}
    rows = []
    for member in await uow.members.all(community):
        info = infos.get(member.id)
        expertise = " ".join(f"{e.tag}:{e.level}" for e in await uow.members.expertise(member.id))
        rows.append([
            member.id, member.name, member.role.value,
            " ".join(f"{i.platform}:{i.external_id}" for i in member.identities),
            expertise, " ".join(member.languages), member.capacity,
            _amount(info.balance if info else 0), _amount(info.held if info else 0),
            _amount(info.given if info else 0), _amount(info.received if info else 0),
        ])  # fmt: skip
    return rows


async def old_export(ctx: Context, cmd: Export) -> None:
    """The `export` handler over `per_member_rows` (members only, as measured here)."""
    header = ["member", "name", "role", "identities", "expertise", "languages", "capacity",
              "balance_sif", "held_sif", "given_sif", "received_sif"]  # fmt: skip
    rows = await per_member_rows(ctx.uow, ctx.community.id)
    filename = f"sif-{cmd.what}-{ctx.clock.now():%Y%m%d}.csv"
    text = f"Export of {cmd.what}: {len(rows)} rows in {filename}."
    ctx.reply((*plain(text), File(filename, to_csv(header, rows))), topic="export", public=True)


async def populate(app: App, engine: Any, members: int) -> CommunityId:
    # The community and staff through the core; the members in bulk.
    await app.bot.handle(said("staff", "availability 0"))
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        await uow.commit()
    first = 100
    member_rows, identities, accounts, expertise = [], [], [], []
    for n in range(members):
        member = first + n
        member_rows.append({
            "id": member, "community_id": community.id, "name": f"member{n}",
            "role": Role.MEMBER.value, "capacity": 2, "languages": ["en"], "bio": "",
            "profile": {}, "created_at": NOW,
        })  # fmt: skip
        identities.append({"platform": "console", "external_id": f"m{n}", "member_id": member})
        accounts.append(
            {"community_id": community.id, "kind": "member", "member_id": member, "balance": 0}
        )
        for k in range(1 + n % 3):
            tag = TAGS[(n + k) % len(TAGS)]
            expertise.append({"member_id": member, "tag": tag, "level": 1 + (n + k) % 3})
    async with engine.begin() as conn:
        for model, rows in (
            (MemberRow, member_rows),
            (IdentityRow, identities),
            (AccountRow, accounts),
            (ExpertiseRow, expertise),
        ):
            await conn.execute(insert(model), rows)
    return community.id


async def measure(app: App, label: str) -> tuple[float, list[float], bytes]:
    """Seconds the export took, each concurrent write's wait, and the CSV sent."""
    waits: list[float] = []
    done = asyncio.Event()

    async def write(k: int) -> None:
        start = time.perf_counter()
        await app.bot.handle(said(f"m{k}", "pause 1" if k % 2 else "resume"))
        waits.append(time.perf_counter() - start)

    async def writer() -> None:
        tasks, k = [], 0
        while not done.is_set():
            tasks.append(asyncio.create_task(write(k)))
            k += 1
            await asyncio.sleep(WRITE_EVERY)
        await asyncio.gather(*tasks)

    writing = asyncio.create_task(writer())
    await asyncio.sleep(0.2)  # writes going on before the export starts
    start = time.perf_counter()
    out: list[Outbound] = await app.bot.handle(said("staff", "export members"))
    seconds = time.perf_counter() - start
    done.set()
    await writing
    csv = next(m.file.content for m in out if m.file is not None)
    print(
        f"{label:<28} export {seconds:6.2f} s   {len(waits):3d} writes meanwhile: "
        f"longest wait {max(waits):6.2f} s, {sum(w > SLACK_ACK for w in waits)} past Slack's 3 s"
    )
    return seconds, waits, csv


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        uow, engine, readers = sql_store(url)
        await create_schema(engine)
        settings = load_settings(_env_file=None, database_url=url, sif_admins="console:staff")
        recording = RecordingMessenger("console")
        app = assemble(settings, uow, FakeClock(NOW), engine=engine, readers=readers,
                       messengers=[recording])  # fmt: skip
        community = await populate(app, engine, args.members)
        async with uow() as check:  # both ways give the same rows
            _, rows = await export_rows(check, community, "members")
            assert rows == await per_member_rows(check, community)
        current = app.bot.handlers
        app.bot.handlers = {**current, Export: old_export}
        old_s, old_waits, old_csv = await measure(app, "before (query per member)")
        app.bot.handlers = current
        new_s, new_waits, new_csv = await measure(app, "now (one query)")
        assert old_csv == new_csv, "the export's content changed"
        print(
            f"{args.members:,} members: export {old_s / new_s:.1f}x faster, longest write wait "
            f"{max(old_waits) / max(new_waits):.1f}x shorter; the same CSV "
            f"({len(new_csv):,} bytes)"
        )
        await dispose(engine, readers)


if __name__ == "__main__":
    asyncio.run(main())
