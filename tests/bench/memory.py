"""The bot's memory while it serves a big community: 10,000 members with profiles and
100,000 ledger transactions (200,000 postings), on SQLite (or PostgreSQL with --postgres).

A child process migrates a scratch database with the real store and bulk-loads it with
SQLAlchemy Core: members with expertise (tags and levels), languages, capacity and a bio,
a welcome grant each, 5,000 delivered and paid reviews (hold and release, with their
requests and offers, so routing has history to weigh) and transfers between members up to
the number of transactions asked for, spread over three years; it checks the ledger's
invariants. This process then
builds the App as `sif-bot run` does and serves a few hundred real commands through
`Bot.handle`: balance, history, balances and stats as staff, requests whose routing loads
the peer facts of every member, find, offers, help. It prints its resident memory (VmRSS,
and the peak VmHWM, from /proc/self/status) after start-up, after building the App and
after each group of commands, and whether the peak met the goal.

    .venv/bin/python tests/bench/memory.py [--members 10000] [--transactions 100000]
        [--postgres] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import insert, text

from bot.app.service import SORRY
from bot.bootstrap import build, migrate
from bot.domain.ledger import AccountKind, EntryKind
from bot.domain.records import OfferStatus, RequestStatus, Role
from bot.messages import Inbound
from bot.settings import load_settings
from store.db import make_engine, make_sessionmaker
from store.models import (
    AccountRow,
    CounterRow,
    ExpertiseRow,
    IdeaRow,
    IdentityRow,
    MemberRow,
    OfferRow,
    PostingRow,
    RequestRow,
    TransactionRow,
)
from store.uow import SqlUnitOfWorkFactory
from tests.fakes import FakeClock

GOAL_MB = 100
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TAGS = (
    "business-model", "finance", "fundraising", "legal", "marketing", "communication",
    "impact-measurement", "design", "technology", "governance", "partnerships", "public-sector",
)  # fmt: skip
LANGUAGES = ("English", "Dutch", "French", "German", "Arabic", "Turkish")
IDEAS = 2_000
REVIEWS = 5_000
CHUNK = 5_000
HISTORY = timedelta(days=3 * 365)  # how far back the ledger goes


def memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def report(label: str) -> float:
    rss, peak = memory()
    print(f"  {label:<44} RSS {rss:6.1f} MB   peak {peak:6.1f} MB", flush=True)
    return peak


# -- loading (in a child process, so that the loader's memory is not the bot's) -------------


async def load(url: str, members: int, transactions: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = load_settings(_env_file=None, database_url=url, sif_rate_commands_per_minute=0)
    started = time.perf_counter()
    await migrate(settings)
    engine = make_engine(url)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    async with uow_factory() as uow:
        community = await uow.communities.get_or_create(
            "console", settings.sif_community_name, settings.sif_tags, NOW
        )
        await uow.commit()
    cid = int(community.id)
    community_accounts = {}
    async with engine.connect() as conn:
        for kind in (AccountKind.NETWORK, AccountKind.ESCROW):
            community_accounts[kind] = await conn.scalar(
                text("SELECT id FROM accounts WHERE community_id = :c AND kind = :k"),
                {"c": cid, "k": kind.value},
            )
    network, escrow = (
        community_accounts[AccountKind.NETWORK],
        community_accounts[AccountKind.ESCROW],
    )
    ids = range(1, members + 1)
    account_of = {m: 1000 + m for m in ids}  # beyond the community accounts' ids
    rows: dict[Any, list[dict[str, Any]]] = {
        MemberRow: [],
        IdentityRow: [],
        AccountRow: [],
        ExpertiseRow: [],
        TransactionRow: [],
        PostingRow: [],
        IdeaRow: [],
        RequestRow: [],
        OfferRow: [],
    }
    for m in ids:
        rows[MemberRow].append(
            {
                "id": m,
                "community_id": cid,
                "name": f"Member {m} {uuid.UUID(int=rng.getrandbits(128)).hex[:6]}",
                "role": Role.MEMBER.value,
                "capacity": rng.choice((0, 1, 2, 2, 3)),
                "paused_until": NOW + timedelta(days=10) if rng.random() < 0.05 else None,
                "languages": rng.sample(LANGUAGES, rng.randint(1, 3)),
                "bio": f"Twenty years in {rng.choice(TAGS)}; likes {rng.choice(TAGS)}.",
                "profile": {"offers": {"choices": ["mentoring", "funding"], "note": "ask me"}},
                "created_at": NOW - timedelta(days=400),
                "last_active_at": NOW - timedelta(days=rng.randint(0, 90)),
            }
        )
        rows[IdentityRow].append(
            {"id": m, "platform": "console", "external_id": f"m{m}", "member_id": m}
        )
        for tag in rng.sample(TAGS, rng.randint(1, 4)):
            rows[ExpertiseRow].append({"member_id": m, "tag": tag, "level": rng.randint(1, 3)})
    balance = dict.fromkeys(ids, 0)
    tx = 0

    def post(kind: EntryKind, legs: list[tuple[int, int, int | None]], **extra: Any) -> int:
        nonlocal tx
        tx += 1
        rows[TransactionRow].append(
            {
                "id": tx,
                "community_id": cid,
                "kind": kind.value,
                "reason": extra.get("reason", kind.value),
                "author_id": None,
                "request_id": extra.get("request"),
                "key": extra.get("key"),
                # spread over three years, oldest first
                "created_at": NOW - HISTORY * ((transactions - tx) / transactions),
            }
        )
        for account, amount, holder in legs:
            rows[PostingRow].append(
                {"transaction_id": tx, "account_id": account, "amount": amount, "holder_id": holder}
            )
        return tx

    for m in ids:  # a welcome grant each
        post(EntryKind.GRANT, [(network, -1000, None), (account_of[m], 1000, None)])
        balance[m] += 1000
    for i in range(1, IDEAS + 1):
        rows[IdeaRow].append(
            {
                "id": i,
                "community_id": cid,
                "number": i,
                "owner_id": i,
                "title": f"Idea {i}",
                "answers": {
                    "title": f"Idea {i}",
                    "summary": "A neighbourhood repair café with a tool library. " * 4,
                    "help": rng.sample(TAGS, 2),
                    "language": {"choices": ["English"]},
                    "stage": {"choice": "prototype"},
                },
                "status": "submitted",
                "created_at": NOW - timedelta(days=200),
                "updated_at": NOW - timedelta(days=200),
            }
        )
    for r in range(1, REVIEWS + 1):  # delivered and paid: hold, then release to the peer
        idea = rng.randint(1, IDEAS)
        requester, peer = idea, rng.randint(IDEAS + 1, members)
        price = 200
        at = NOW - timedelta(days=rng.randint(1, 180))
        rows[RequestRow].append(
            {
                "id": r,
                "community_id": cid,
                "number": r,
                "idea_id": idea,
                "requester_id": requester,
                "kind": "review",
                "price": price,
                "tags": ["finance"],
                "status": RequestStatus.CONFIRMED.value,
                "round": 1,
                "peer_id": peer,
                "hours": 1.5,
                "feedback": "Clear plan; talk to the city early.",
                "rating": 5,
                "created_at": at,
                "accepted_at": at,
                "delivered_at": at + timedelta(days=3),
                "closed_at": at + timedelta(days=4),
            }
        )
        rows[OfferRow].append(
            {
                "id": r,
                "request_id": r,
                "peer_id": peer,
                "round": 1,
                "status": OfferStatus.ACCEPTED.value,
                "explanation": "matches finance:3",
                "offered_at": at,
                "expires_at": at + timedelta(hours=48),
                "answered_at": at + timedelta(hours=2),
            }
        )
        post(
            EntryKind.HOLD,
            [(account_of[requester], -price, None), (escrow, price, requester)],
            request=r,
            key=f"hold:{r}",
        )
        post(
            EntryKind.RELEASE,
            [(escrow, -price, requester), (account_of[peer], price, requester)],
            request=r,
            key=f"settle:{r}",
        )
        balance[requester] -= price
        balance[peer] += price
    while tx < transactions:  # the rest: transfers that keep everyone above the limit
        a, b = rng.randint(1, members), rng.randint(1, members)
        amount = rng.randint(1, 300)
        if a == b or balance[a] - amount < settings.credit_limit:
            continue
        post(EntryKind.TRANSFER, [(account_of[a], -amount, None), (account_of[b], amount, None)])
        balance[a] -= amount
        balance[b] += amount
    for m in ids:
        rows[AccountRow].append(
            {
                "id": account_of[m],
                "community_id": cid,
                "kind": AccountKind.MEMBER.value,
                "member_id": m,
                "balance": balance[m],
            }
        )
    counts = {model.__tablename__: len(values) for model, values in rows.items()}
    async with engine.begin() as conn:
        for model, values in rows.items():
            for start in range(0, len(values), CHUNK):
                await conn.execute(insert(model), values[start : start + CHUNK])
            values.clear()
        await conn.execute(
            text("UPDATE accounts SET balance = :b WHERE id = :a"),
            [{"a": network, "b": -1000 * members}],
        )
        await conn.execute(
            insert(CounterRow),
            [
                {"community_id": cid, "name": "idea", "value": IDEAS},
                {"community_id": cid, "name": "request", "value": REVIEWS},
            ],
        )
        if engine.dialect.name == "postgresql":  # ids were given: move the sequences on
            for table in (
                "members",
                "identities",
                "accounts",
                "ledger_transactions",
                "ledger_postings",
                "ideas",
                "requests",
                "offers",
            ):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    # A live database has planner statistics (autovacuum); right after a bulk load it does
    # not, and PostgreSQL then plans `balances` as a scan of every transaction per member.
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    async with uow_factory() as uow:
        problems = await uow.ledger.check_invariants(community.id)
    await engine.dispose()
    if problems:
        raise SystemExit(f"the loaded ledger is inconsistent: {problems[:5]}")
    return {
        "rows": counts,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mb": round(memory()[1], 1),
    }


# -- serving --------------------------------------------------------------------------------


class CountingMessenger:
    """Delivers nothing and keeps nothing, so the bench measures the bot, not a recorder."""

    platform = "console"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, message: Any) -> None:
        self.sent += 1


async def serve(url: str, members: int, rounds: int, seed: int, trace: bool) -> float:
    if trace:
        tracemalloc.start()  # one frame is enough for the top lines, and far cheaper
    rng = random.Random(seed)
    settings = load_settings(
        _env_file=None, database_url=url, sif_admins="console:staff", sif_rate_commands_per_minute=0
    )
    app = await build(settings, FakeClock(NOW + timedelta(hours=1)))
    messenger = CountingMessenger()
    app.relay.register(messenger)
    peak = report("App built (engine, bot, flows)")
    timings: dict[str, list[float]] = {}

    async def say(group: str, user: str, line: str, channel: str | None = None) -> None:
        inbound = Inbound("console", "console", user, line, user, channel=channel)
        started = time.perf_counter()
        out = await app.bot.handle(inbound)
        timings.setdefault(group, []).append(time.perf_counter() - started)
        if any(m.text == SORRY for m in out):
            raise SystemExit(f"the bot failed on {line!r}")

    def member() -> str:
        return f"m{rng.randint(1, members)}"

    groups = [
        ("balance", lambda: [(member(), "balance") for _ in range(100 * rounds)]),
        ("history", lambda: [(member(), "history") for _ in range(50 * rounds)]),
        (
            "balances (staff)",
            lambda: [("staff", "balances"), ("staff", "balances negative")] * (10 * rounds),
        ),
        ("stats (staff)", lambda: [("staff", "stats"), ("staff", "stats 7")] * (5 * rounds)),
        (
            "request (routing over all peers)",
            lambda: [
                (f"m{i}", f"request I-{i} review {rng.choice(TAGS)}")
                for i in rng.sample(range(1, IDEAS + 1), 40 * rounds)
            ],
        ),
        ("offers", lambda: [(member(), "offers") for _ in range(30 * rounds)]),
        ("find", lambda: [(member(), f"find {rng.choice(TAGS)}") for _ in range(5 * rounds)]),
        ("help, tags", lambda: [(member(), rng.choice(("help", "tags"))) for _ in range(20)]),
    ]
    served = 0
    for group, commands in groups:
        for user, line in commands():
            await say(group, user, line, "#staff" if user == "staff" else None)
            served += 1
        times = sorted(timings[group])
        median, worst = times[len(times) // 2] * 1000, times[-1] * 1000
        peak = report(f"after {len(times):4d} x {group}")
        print(f"{'':48}median {median:7.1f} ms   slowest {worst:7.1f} ms", flush=True)
    await app.relay.flush()
    print(f"  served {served} commands, {messenger.sent} messages delivered")
    if trace:
        snapshot = tracemalloc.take_snapshot()
        print("  tracemalloc, largest allocations still held:")
        for stat in snapshot.statistics("lineno")[:15]:
            print(f"    {stat}")
    await app.close()
    return peak


async def pg_database() -> str:
    import asyncpg

    name = f"sif_memory_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run(url: str, args: argparse.Namespace) -> bool:
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{label}: {args.members:,} members, {args.transactions:,} ledger transactions")
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--members",
            str(args.members),
            "--transactions",
            str(args.transactions),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"loading failed:\n{child.stderr[-3000:]}")
    loaded = json.loads(child.stdout.strip().splitlines()[-1])
    rows = ", ".join(f"{n:,} {t}" for t, n in loaded["rows"].items())
    print(f"  loaded in {loaded['seconds']} s (loader's own peak {loaded['peak_mb']} MB): {rows}")
    peak = asyncio.run(serve(url, args.members, args.rounds, 7, args.tracemalloc))
    met = peak <= GOAL_MB
    print(
        f"  peak RSS while serving {peak:.1f} MB; goal ≤ {GOAL_MB} MB: {'met' if met else 'missed'}"
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the command mix")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--tracemalloc", action="store_true", help="show what holds memory")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.members <= IDEAS or args.transactions < args.members + 2 * REVIEWS:
        parser.error(f"needs more than {IDEAS} members and enough transactions for the reviews")
    if args.load:
        print(json.dumps(asyncio.run(load(args.load, args.members, args.transactions, 1))))
        return
    report("started (the bot's modules imported)")
    if args.postgres:
        name = asyncio.run(pg_database())
        try:
            met = run(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", args)
        finally:
            asyncio.run(drop_pg(name))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            met = run(f"sqlite+aiosqlite:///{tmp}/memory.db", args)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
