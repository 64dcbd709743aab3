"""Random sequences of ledger operations against a model of what must happen.

After every step: each transaction sums to zero, the community total is 0, no
member is below the credit limit, cached balances equal the sum of entries, and
every balance equals the model's (so refusals happened exactly when they must).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import ledger
from bot.domain.ids import MemberId, RequestId
from bot.domain.ledger import AccountKey
from bot.domain.records import Role
from bot.ports import LimitExceeded
from store.db import create_schema, make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory

LIMIT = -1000
NOW = datetime(2026, 3, 2, tzinfo=UTC)
MEMBERS = 3

# Values near the limit (1000 hundredths) make the refusals likely to be exercised.
amounts = st.one_of(st.integers(1, 1500), st.sampled_from([1, 100, 500, 999, 1000, 1001, 1050]))
member = st.integers(min_value=0, max_value=MEMBERS - 1)
operation = st.one_of(
    st.tuples(st.just("grant"), member, amounts),
    st.tuples(
        st.just("adjust"),
        member,
        st.one_of(st.integers(-1500, 1500).filter(bool), amounts.map(lambda x: -x)),
    ),
    st.tuples(st.just("hold"), member, amounts),
    st.tuples(st.just("release"), st.integers(0, 20), member),
    st.tuples(st.just("refund"), st.integers(0, 20), member),
)


async def _run(ops: list[tuple[str, int, int]]) -> None:
    engine = make_engine("sqlite+aiosqlite://")
    await create_schema(engine)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    async with uow_factory() as uow:
        community = await uow.communities.get_or_create("console", "t", [], NOW)
        ids = [
            (
                await uow.members.create(
                    community.id, f"m{i}", Role.MEMBER, "console", f"m{i}", NOW
                )
            ).id
            for i in range(MEMBERS)
        ]
        await uow.commit()
    cid = community.id
    model = dict.fromkeys(ids, 0)
    holds: list[tuple[MemberId, int]] = []  # request number = index
    settled: set[int] = set()
    for op, a, b in ops:
        draft: ledger.TransactionDraft
        must_refuse = False
        if op == "grant":
            draft = ledger.grant(ids[a], b, "g", None)
        elif op == "adjust":
            draft = ledger.adjust(ids[a], b, "a", None)
            must_refuse = model[ids[a]] + b < LIMIT
        elif op == "hold":
            draft = ledger.hold(ids[a], b, RequestId(len(holds)), "h", key=f"hold:{len(holds)}")
            must_refuse = model[ids[a]] - b < LIMIT
        else:
            if a >= len(holds):
                continue
            payer, amount = holds[a]
            if op == "release":
                draft = ledger.release(payer, ids[b], amount, RequestId(a), "r", key=f"settle:{a}")
            else:
                draft = ledger.refund(payer, amount, RequestId(a), "f", key=f"settle:{a}")
        async with uow_factory() as uow:
            try:
                posted = await uow.ledger.post(cid, draft, LIMIT, NOW)
            except LimitExceeded:
                assert must_refuse, f"{op} refused but allowed by the model"
                posted = None
            else:
                assert not must_refuse, f"{op} posted past the credit limit"
            await uow.commit()
        if posted is not None:
            if op in ("release", "refund"):
                assert a not in settled, "a request was settled twice"
                settled.add(a)
            if op == "hold":
                holds.append((ids[a], b))
            for posting in draft.postings:
                if posting.account.member is not None:
                    model[posting.account.member] += posting.amount
        elif op in ("release", "refund"):
            assert a in settled, "a first settlement was not posted"
        async with uow_factory() as uow:
            assert await uow.ledger.check_invariants(cid) == []
            for mid, expected in model.items():
                balance = await uow.ledger.balance(cid, AccountKey.of(mid))
                assert balance == expected
                assert balance >= LIMIT
    await engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=25))
def test_random_ledger_sequences_keep_the_invariants(ops: list[tuple[str, int, int]]) -> None:
    asyncio.run(_run(ops))
