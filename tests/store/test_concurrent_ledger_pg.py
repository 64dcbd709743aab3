"""8 concurrent writers, 1,000 mixed ledger operations on the same members (PostgreSQL).

Each writer records what it got posted; at the end the database must hold exactly
that (no lost update), nobody may be below the credit limit, and the community
total must be 0. Refusals must have happened, or the limit was never contended.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.domain import ledger
from bot.domain.ids import MemberId, RequestId
from bot.domain.ledger import ESCROW, AccountKey
from bot.domain.records import Role
from bot.ports import LimitExceeded
from store.db import make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.postgres

WRITERS = 8
OPERATIONS = 1000
LIMIT = -1000
NOW = datetime(2026, 3, 2, tzinfo=UTC)


async def test_concurrent_writers_lose_no_update_and_never_pass_the_limit(pg_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(
        "TRUNCATE ledger_postings, ledger_transactions, accounts, expertise, identities, "
        "members, tags, communities, processed_events, outbox RESTART IDENTITY CASCADE"
    )
    await conn.close()
    engine = make_engine(pg_url, pool_size=WRITERS, max_overflow=0)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    async with uow_factory() as uow:
        community = await uow.communities.get_or_create("console", "t", [], NOW)
        members = [
            (
                await uow.members.create(
                    community.id, f"m{i}", Role.MEMBER, "console", f"m{i}", NOW
                )
            ).id
            for i in range(4)
        ]
        await uow.commit()
    cid = community.id
    expected: Counter[MemberId] = Counter()
    outcomes: Counter[str] = Counter()
    next_request = iter(range(1, 10_000))

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        open_holds: list[tuple[RequestId, MemberId, int]] = []
        for _ in range(OPERATIONS // WRITERS):
            who = rng.choice(members)
            amount = rng.randint(1, 4) * 100
            roll = rng.random()
            if roll < 0.1:
                draft = ledger.grant(who, amount, "g", None)
            elif roll < 0.3:
                draft = ledger.adjust(who, rng.choice([-1, 1]) * amount, "a", None)
            elif roll < 0.55:
                other = rng.choice([m for m in members if m != who])
                draft = ledger.transfer(who, other, amount, "t")
            elif roll < 0.8 or not open_holds:
                request = RequestId(next(next_request))
                draft = ledger.hold(who, amount, request, "h", key=f"hold:{request}")
            else:
                request, payer, held = open_holds.pop(rng.randrange(len(open_holds)))
                draft = (
                    ledger.release(payer, who, held, request, "r", key=f"settle:{request}")
                    if rng.random() < 0.5
                    else ledger.refund(payer, held, request, "f", key=f"settle:{request}")
                )
            try:
                async with uow_factory() as uow:
                    posted = await uow.ledger.post(cid, draft, LIMIT, NOW)
                    await uow.commit()
            except LimitExceeded:
                outcomes["refused"] += 1
                continue
            assert posted is not None
            outcomes["posted"] += 1
            if draft.kind is ledger.EntryKind.HOLD:
                open_holds.append((draft.request, who, amount))  # type: ignore[arg-type]
            for posting in draft.postings:
                if posting.account.member is not None:
                    expected[posting.account.member] += posting.amount

    await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))

    assert outcomes["posted"] + outcomes["refused"] == OPERATIONS
    assert outcomes["refused"] > 0, "the credit limit was never reached; the test proves nothing"
    async with uow_factory() as uow:
        assert await uow.ledger.check_invariants(cid) == []
        for member in members:
            balance = await uow.ledger.balance(cid, AccountKey.of(member))
            assert balance == expected[member], "a concurrent update was lost"
            assert balance >= LIMIT
        assert await uow.ledger.balance(cid, ESCROW) >= 0
        total_tx = await uow.session.scalar(text("SELECT count(*) FROM ledger_transactions"))
        assert total_tx == outcomes["posted"]
    await engine.dispose()
