"""Speed of peer ranking (bot.domain.routing) at 1k, 10k and 100k peers, beside plain Python.

For each size it builds random peers (fixed seed), then measures

* store: a routing round's snapshot as production gets it, ``routing.peer_index`` on a
  SQLite database holding that many members with expertise: the first round of a process
  (every member read into the kept table), the rounds after it (each after a profile
  change and an offer: the table catches up, the activity is read), and beside them a
  full load of every member (``routing.peer_facts`` into an index), reported on its own;
* snapshot build: ``PeerIndex(peers)`` from the list of :class:`Peer`;
* rank: ``PeerIndex.rank`` on 200 random needs (1-3 tags, limit 3), p50 and p99;
* reference: a straightforward ``sorted()`` over the eligible peers with the same key,
  measured in the same run on fewer needs at the larger sizes (it is slow), and the
  ratio reference p50 / rank p50. Every reference result is checked against the index.

The p50 growth ratios 10k/1k and 100k/10k show how ranking scales (≈10 means linear).
Absolute numbers depend on the machine; the goals are rank p99 ≤ 5 ms and a routing round's
snapshot from the store ≤ 300 ms at 100k peers.

    .venv/bin/python tests/bench/routing_bench.py
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.ids import MemberId
from bot.domain.routing import Need, Peer, PeerIndex, Policy

SEED = 20260302
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SIZES = (1_000, 10_000, 100_000)
NEEDS = 200
LIMIT = 3
# The baseline costs ~n microseconds a call; fewer calls keep the whole run under a minute.
REFERENCE_NEEDS = {1_000: 200, 10_000: 60, 100_000: 15}
GOAL_P99_MS = 5.0
GOAL_SNAPSHOT_MS = 300.0
TAGS = (
    "business-model",
    "finance",
    "legal",
    "marketing",
    "design",
    "technology",
    "impact",
    "fundraising",
    "operations",
    "community",
    "policy",
    "sales",
)
LANGUAGES = ("dutch", "english", "french", "german")


def make_peers(n: int, rng: random.Random) -> list[Peer]:
    peers = []
    for i in range(n):
        capacity = rng.randint(0, 4)
        languages = (
            frozenset()
            if rng.random() < 0.1
            else frozenset(rng.sample(LANGUAGES, rng.randint(1, 2)))
        )
        last = None if rng.random() < 0.2 else NOW - timedelta(seconds=rng.randint(0, 120 * 86400))
        conflicts = frozenset({MemberId(rng.randint(1, n))}) if rng.random() < 0.02 else frozenset()
        peers.append(
            Peer(
                member=MemberId(i + 1),
                name=f"peer {i + 1}",
                expertise={t: rng.randint(1, 3) for t in rng.sample(TAGS, rng.randint(1, 4))},
                languages=languages,
                capacity=capacity,
                open_reviews=rng.randint(0, capacity),
                paused=rng.random() < 0.05,
                reviews_90d=rng.randint(0, 8),
                last_offer_at=last,
                given=rng.randint(0, 5000),
                received=rng.randint(0, 5000),
                conflicts=conflicts,
            )
        )
    return peers


def make_needs(n_peers: int, count: int, rng: random.Random) -> list[Need]:
    def some_members(k: int) -> frozenset[MemberId]:
        return frozenset(MemberId(rng.randint(1, n_peers)) for _ in range(k))

    return [
        Need(
            requester=MemberId(rng.randint(1, n_peers)),
            co_owners=some_members(rng.randint(0, 2)),
            tags=tuple(rng.sample(TAGS, rng.randint(1, 3))),
            languages=(
                frozenset()
                if rng.random() < 0.2
                else frozenset(rng.sample(LANGUAGES, rng.randint(1, 2)))
            ),
            excluded=some_members(rng.randint(0, 3)),
        )
        for _ in range(count)
    ]


def reference_rank(peers: Sequence[Peer], need: Need, limit: int, policy: Policy) -> list[int]:
    """The baseline: filter in Python, then sorted() with the full key."""
    tags = tuple(dict.fromkeys(need.tags))
    never = datetime.min.replace(tzinfo=UTC)

    def eligible(p: Peer) -> bool:
        return (
            p.member != need.requester
            and p.member not in need.co_owners
            and p.member not in need.excluded
            and not p.paused
            and p.open_reviews < p.capacity
            and need.requester not in p.conflicts
            and (not p.languages or not need.languages or bool(p.languages & need.languages))
        )

    rested_since = NOW - timedelta(days=policy.rest_days)

    def key(p: Peer) -> tuple[bool, datetime, int, datetime, int, int]:
        owed = min(max(p.received - p.given, 0), policy.reciprocity_cap)
        qualified = any(p.expertise.get(t, 0) >= policy.qualifying_level for t in tags)
        last = never if p.last_offer_at is None else p.last_offer_at
        return (not qualified, max(last, rested_since), p.reviews_90d, last, -owed, p.member)

    return [p.member for p in sorted(filter(eligible, peers), key=key)[:limit]]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Result:
    build_ms: float
    rank_p50_ms: float
    rank_p99_ms: float
    reference_p50_ms: float
    reference_needs: int


def measure(size: int, rng: random.Random, policy: Policy) -> Result:
    peers = make_peers(size, rng)
    needs = make_needs(size, NEEDS, rng)
    gc.collect()
    builds = []
    for _ in range(3):
        start = time.perf_counter_ns()
        index = PeerIndex(peers, policy)
        builds.append((time.perf_counter_ns() - start) / 1e6)
    for need in needs[:10]:  # warm-up
        index.rank(need, NOW, LIMIT)
    gc.collect()
    times = []
    for need in needs:
        start = time.perf_counter_ns()
        index.rank(need, NOW, LIMIT)
        times.append((time.perf_counter_ns() - start) / 1e6)
    reference_times = []
    for need in needs[: REFERENCE_NEEDS[size]]:
        start = time.perf_counter_ns()
        expected = reference_rank(peers, need, LIMIT, policy)
        reference_times.append((time.perf_counter_ns() - start) / 1e6)
        got = [c.member for c in index.rank(need, NOW, LIMIT)]
        if got != expected:
            raise SystemExit(f"index and reference disagree at {size} peers: {got} != {expected}")
    return Result(
        build_ms=percentile(builds, 0.5),
        rank_p50_ms=percentile(times, 0.5),
        rank_p99_ms=percentile(times, 0.99),
        reference_p50_ms=percentile(reference_times, 0.5),
        reference_needs=len(reference_times),
    )


def main() -> None:
    rng = random.Random(SEED)
    policy = Policy()
    print(
        f"routing bench: seed {SEED}, {NEEDS} needs per size (1-3 tags, limit {LIMIT}), "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'peers':>8}  {'snapshot build':>14}  {'rank p50':>9}  {'rank p99':>9}  "
        f"{'reference p50 (needs)':>22}  {'reference/index':>15}"
    )
    results: dict[int, Result] = {}
    for size in SIZES:
        r = results[size] = measure(size, rng, policy)
        print(
            f"{size:>8,}  {r.build_ms:>11.1f} ms  {r.rank_p50_ms:>6.3f} ms  "
            f"{r.rank_p99_ms:>6.3f} ms  {r.reference_p50_ms:>12.2f} ms ({r.reference_needs:>3})  "
            f"{r.reference_p50_ms / r.rank_p50_ms:>14.0f}x"
        )
    small, middle, large = (results[size] for size in SIZES)
    print(
        f"rank p50 growth: {SIZES[1] // 1000}k/{SIZES[0] // 1000}k "
        f"{middle.rank_p50_ms / small.rank_p50_ms:.1f}x, "
        f"{SIZES[2] // 1000}k/{SIZES[1] // 1000}k "
        f"{large.rank_p50_ms / middle.rank_p50_ms:.1f}x (≈10 means linear)"
    )
    verdict = "met" if large.rank_p99_ms <= GOAL_P99_MS else "NOT met"
    print(
        f"goal rank p99 ≤ {GOAL_P99_MS:g} ms at {SIZES[2]:,} peers: {verdict} "
        f"({large.rank_p99_ms:.3f} ms)"
    )


async def store_load_ms(size: int, rng: random.Random) -> tuple[float, float, float]:
    """The routing snapshot of `size` members on SQLite, as a routing round gets it
    (``routing.peer_index``): the first round of a process (every member read), then the
    median of rounds that each follow a profile change and an offer (the kept table
    catching up), and the median of full loads (``routing.peer_facts`` turned into an
    index, as every round did before the table was kept)."""
    import tempfile

    from sqlalchemy import insert

    from bot.domain.records import Role
    from bot.domain.routing import index_of_facts
    from store.db import create_schema, make_engine, make_sessionmaker
    from store.models import AccountRow, ExpertiseRow, MemberRow
    from store.uow import SqlUnitOfWorkFactory

    now = datetime(2026, 3, 2, tzinfo=UTC)
    since = now - timedelta(days=90)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await create_schema(engine)
        factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
        async with factory() as uow:
            community = await uow.communities.get_or_create("bench", "b", TAGS, now)
            await uow.commit()
        members = [
            {
                "id": i + 1,
                "community_id": community.id,
                "name": f"peer{i}",
                "role": Role.MEMBER.value,
                "capacity": rng.randint(0, 4),
                "languages": rng.sample(LANGUAGES, rng.randint(1, 2)),
                "bio": "",
                "profile": {},
                "created_at": now,
            }
            for i in range(size)
        ]
        expertise = [
            {"member_id": i + 1, "tag": tag, "level": rng.randint(1, 3)}
            for i in range(size)
            for tag in rng.sample(TAGS, rng.randint(1, 4))
        ]
        accounts = [
            {"community_id": community.id, "kind": "member", "member_id": i + 1, "balance": 0}
            for i in range(size)
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(MemberRow), members)
            await conn.execute(insert(ExpertiseRow), expertise)
            await conn.execute(insert(AccountRow), accounts)
        async with factory() as uow:
            first = MemberId(1)
            idea = await uow.ideas.create(community.id, first, "Idea", {"title": "Idea"}, now)
            request = await uow.requests.create(
                community.id, idea.id, first, "review", 200, [], now
            )
            await uow.commit()

        async def round_ms() -> tuple[float, int]:
            start = time.perf_counter()
            async with factory() as uow:
                index = await uow.routing.peer_index(community.id, now, since)
            return (time.perf_counter() - start) * 1000, len(index)

        cold, cold_peers = await round_ms()
        warm = []
        for _ in range(5):
            async with factory() as uow:
                member = MemberId(rng.randint(1, size))
                await uow.members.set_expertise(member, rng.choice(TAGS), rng.randint(1, 3))
                peer = MemberId(rng.randint(1, size))
                expires = now + timedelta(days=2)
                await uow.requests.add_offer(request.id, peer, 1, "", now, expires, None)
                await uow.commit()
            ms, peers = await round_ms()
            warm.append(ms)
        full = []
        for _ in range(3):
            start = time.perf_counter()
            async with factory() as uow:
                facts = await uow.routing.peer_facts(community.id, since)
            fresh = index_of_facts(facts, now)
            full.append((time.perf_counter() - start) * 1000)
            assert len(facts) == size
        assert len(fresh) == peers, (len(fresh), peers)
        assert cold_peers > 0
        await engine.dispose()
    return cold, sorted(warm)[len(warm) // 2], sorted(full)[1]


def store_section() -> None:
    import asyncio

    rng = random.Random(SEED + 1)
    print(
        "store (SQLite): a routing round's snapshot (routing.peer_index): the first round of a"
        " process, then the median of 5 rounds each after a profile change and an offer;"
        " beside it a full load of every member (peer_facts + index, median of 3)"
    )
    columns = ("first round", "next rounds", "full load", "full/next")
    print(f"{'peers':>8}  " + "  ".join(f"{c:>12}" for c in columns))
    for size in SIZES:
        cold, warm, full = asyncio.run(store_load_ms(size, rng))
        print(
            f"{size:>8,}  {cold:>9.1f} ms  {warm:>9.1f} ms  {full:>9.1f} ms"
            + f"  {full / warm:>11.1f}x"
        )
    print(f"goal: next rounds ≤ {GOAL_SNAPSHOT_MS:g} ms at {SIZES[-1]:,} peers")


if __name__ == "__main__":
    main()
    if "--no-store" not in sys.argv:
        store_section()
