"""PostgreSQL races: first accept wins among 20 peers; two sweepers never double an action;
a person's first messages at once make one member."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app.jobs import sweep_offers
from bot.bootstrap import assemble
from bot.domain.ids import MemberId
from bot.domain.ledger import ESCROW, AccountKey, EntryKind
from bot.domain.records import OfferStatus, RequestStatus
from store.db import make_engine, make_sessionmaker
from store.models import MemberRow, OutboxRow, TransactionRow
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import make_settings
from tests.fakes import FakeClock, said

pytestmark = pytest.mark.postgres

PEERS = 20
ROUNDS = 200


async def _clean(url: str) -> None:
    from tests.conftest import TABLES, _pg_admin_url

    await _pg_admin_url(url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


async def test_first_accept_wins_among_twenty_peers(pg_url: str) -> None:
    await _clean(pg_url)
    clock = FakeClock()
    engine = make_engine(pg_url, pool_size=PEERS, max_overflow=5)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    bot = assemble(make_settings(pg_url, sif_rate_commands_per_minute=0), uow_factory, clock).bot
    names = [f"peer{i}" for i in range(PEERS)]
    for name in ["ann", *names]:
        await bot.handle(said(name, "balance"))
    await bot.handle(said("staff", f"grant confirm @ann {ROUNDS * 2} rounds"))
    async with uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        peers = [await uow.members.by_identity("console", n) for n in names]
        idea = await uow.ideas.create(ann.community, ann.id, "Idea", {}, clock.now())
        await uow.commit()
    cid = ann.community
    winners: list[MemberId | None] = []
    for _ in range(ROUNDS):
        async with uow_factory() as uow:
            request = await uow.requests.create(
                cid, idea.id, ann.id, "review", 200, [], clock.now()
            )
            for peer in peers:
                assert peer is not None
                await uow.requests.add_offer(
                    request.id,
                    peer.id,
                    1,
                    "test",
                    clock.now(),
                    clock.now() + timedelta(days=1),
                    None,
                )
            await uow.commit()
        await asyncio.gather(*(bot.handle(said(n, f"accept {request.ref}")) for n in names))
        async with uow_factory() as uow:
            final = await uow.requests.get(request.id)
            assert final is not None and final.status is RequestStatus.ASSIGNED
            offers = await uow.requests.offers(request.id)
            accepted = [o for o in offers if o.status is OfferStatus.ACCEPTED]
            assert len(accepted) == 1, "exactly one winner"
            assert accepted[0].peer == final.peer
            assert all(o.status is OfferStatus.WITHDRAWN for o in offers if o not in accepted)
            holds = await uow.session.scalar(  # type: ignore[attr-defined]
                select(func.count()).where(
                    TransactionRow.request_id == request.id,
                    TransactionRow.kind == EntryKind.HOLD.value,
                )
            )
            assert holds == 1, "one hold"
            winners.append(final.peer)
    async with uow_factory() as uow:
        assert await uow.ledger.balance(cid, ESCROW) == ROUNDS * 200
        assert await uow.ledger.balance(cid, AccountKey.of(ann.id)) == 0
        assert await uow.ledger.check_invariants(cid) == []
    assert len(set(winners)) > 1  # the race really was a race
    await engine.dispose()


async def test_a_cancel_racing_an_accept_says_what_really_happened(pg_url: str) -> None:
    """The requester cancels while the peer accepts: whichever wins, the replies match the
    request's final state (a cancel that lost must not claim it cancelled)."""
    await _clean(pg_url)
    clock = FakeClock()
    engine = make_engine(pg_url, pool_size=4, max_overflow=2)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    bot = assemble(make_settings(pg_url, sif_rate_commands_per_minute=0), uow_factory, clock).bot
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("bob", "balance"))
    await bot.handle(said("staff", "grant confirm @ann 100 rounds"))
    async with uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        bob = await uow.members.by_identity("console", "bob")
        assert ann is not None and bob is not None
        idea = await uow.ideas.create(ann.community, ann.id, "Idea", {}, clock.now())
        await uow.commit()
    outcomes: set[RequestStatus] = set()
    for _ in range(40):
        async with uow_factory() as uow:
            request = await uow.requests.create(
                ann.community, idea.id, ann.id, "review", 200, [], clock.now()
            )
            await uow.requests.add_offer(
                request.id, bob.id, 1, "test", clock.now(), clock.now() + timedelta(days=1), None
            )
            await uow.commit()
        cancel, accept = await asyncio.gather(
            bot.handle(said("ann", f"cancel {request.ref}")),
            bot.handle(said("bob", f"accept {request.ref}")),
        )
        async with uow_factory() as uow:
            final = await uow.requests.get(request.id)
        assert final is not None
        outcomes.add(final.status)
        said_cancelled = any(m.topic == "cancelled" for m in cancel)
        said_accepted = any(m.topic == "accepted" for m in accept)
        refunded = any(m.topic == "cancelled" and "refunded" in m.text for m in cancel)
        peer_told_to_stop = any(m.topic == "request.cancelled" and m.to == "bob" for m in cancel)
        if final.status is RequestStatus.CANCELLED:
            assert said_cancelled, cancel
            # either the cancel won (the accept was told it lost), or the accept came first
            # and the cancel that followed refunded the held price and told the peer
            assert not said_accepted or (refunded and peer_told_to_stop), (cancel, accept)
        else:
            assert final.status is RequestStatus.ASSIGNED, final.status
            assert said_accepted, accept
            # the cancel lost and was told so: it claimed nothing
            assert not said_cancelled, cancel
    async with uow_factory() as uow:
        assert await uow.ledger.check_invariants(ann.community) == []
    await engine.dispose()


async def test_two_sweepers_act_once_on_each_due_row(pg_url: str) -> None:
    await _clean(pg_url)
    clock = FakeClock()
    engines = [make_engine(pg_url) for _ in range(2)]
    factories = [SqlUnitOfWorkFactory(make_sessionmaker(e)) for e in engines]
    # the rules this cascade was written for: one peer per round, three rounds
    settings = make_settings(
        pg_url,
        sif_rate_commands_per_minute=0,
        sif_fanout=1,
        sif_max_rounds=3,
        sif_offer_ttl_hours=24,
    )
    bot = assemble(settings, factories[0], clock).bot
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("ann", "balance"))
    for name in ("bob", "cleo", "dan"):  # peers: only they are offered reviews
        await bot.handle(said(name, "expertise add finance"))
    await bot.handle(said("staff", "grant confirm @ann 100 start"))
    due = 30
    async with factories[0]() as uow:
        ann = await uow.members.by_identity("console", "ann")
        bob = await uow.members.by_identity("console", "bob")
        cleo = await uow.members.by_identity("console", "cleo")
        assert ann is not None and bob is not None and cleo is not None
        idea = await uow.ideas.create(ann.community, ann.id, "Idea", {}, clock.now())
        await uow.commit()
    cid = ann.community
    # 30 offers that expire, and 30 delivered requests due for auto-release
    for _ in range(due):
        async with factories[0]() as uow:
            request = await uow.requests.create(
                cid, idea.id, ann.id, "advice", 100, [], clock.now()
            )
            await uow.requests.transition(
                request.id, [RequestStatus.OPEN], RequestStatus.OPEN, round=1
            )
            await uow.requests.add_offer(
                request.id, bob.id, 1, "t", clock.now(), clock.now() + timedelta(hours=1), None
            )
            await uow.commit()
        async with factories[0]() as uow:
            paid = await uow.requests.create(cid, idea.id, ann.id, "advice", 100, [], clock.now())
            await uow.requests.transition(
                paid.id,
                [RequestStatus.OPEN],
                RequestStatus.DELIVERED,
                peer_id=cleo.id,
                delivered_at=clock.now(),
                auto_release_at=clock.now() + timedelta(days=7),
            )
            from bot.domain import ledger

            await uow.ledger.post(
                cid,
                ledger.hold(ann.id, 100, paid.id, "h", key=f"hold:{paid.id}"),
                -1000,
                clock.now(),
            )
            await uow.commit()
    clock.advance(days=8)
    results = await asyncio.gather(
        *(sweep_offers(f, settings, clock) for f in factories for _ in range(2))
    )
    assert sum(r.expired for r in results) == due
    assert sum(r.released for r in results) == due
    async with factories[1]() as uow:
        assert await uow.ledger.balance(cid, AccountKey.of(cleo.id)) == due * 100
        assert await uow.ledger.balance(cid, ESCROW) == 0
        assert await uow.ledger.check_invariants(cid) == []
        requests = await uow.requests.all(cid)
        waiting = [r for r in requests if r.status.is_open]
        assert len(waiting) == due
        escalated = 0
        for request in waiting:  # each expiry moved on once: a new offer, or staff
            statuses = [o.status for o in await uow.requests.offers(request.id)]
            if request.status is RequestStatus.ESCALATED:
                escalated += 1
                assert statuses == [OfferStatus.EXPIRED]
            else:
                assert statuses == [OfferStatus.EXPIRED, OfferStatus.OFFERED]
                assert request.round == 2
        assert 0 < escalated < due  # peers filled up to capacity, then staff were asked
        session = uow.session  # type: ignore[attr-defined]
        expiry_dms = await session.scalar(
            select(func.count()).where(OutboxRow.text.like("Your offer for R-% expired%"))
        )
        assert expiry_dms == due
        escalations = await session.scalar(
            select(func.count()).where(OutboxRow.text.like("Escalation: R-%"))
        )
        assert escalations == escalated
    for engine in engines:
        await engine.dispose()


async def test_a_persons_first_messages_at_once_make_one_member_and_answer_both(
    pg_url: str,
) -> None:
    """The same new person's first messages, handled side by side: both create the
    member, the second finds the identity taken when the first commits, and is handled
    again instead of answered with an apology: one member, one welcome grant."""
    await _clean(pg_url)
    engine = make_engine(pg_url, pool_size=10, max_overflow=5)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    settings = make_settings(pg_url, sif_rate_commands_per_minute=0, sif_welcome_grant=5)
    bot = assemble(settings, uow_factory, FakeClock()).bot
    await bot.handle(said("staff", "balance"))  # the community exists
    people = [f"new{n}" for n in range(8)]
    answers = await asyncio.gather(
        *(bot.handle(said(name, "balance")) for name in people for _ in range(3))
    )
    texts = [m.text for out in answers for m in out]
    assert not any("something went wrong" in t for t in texts), texts
    assert sum("Your balance" in t for t in texts) == 3 * len(people)
    async with engine.connect() as conn:
        members = await conn.scalar(select(func.count()).select_from(MemberRow))
        grants = await conn.scalar(
            select(func.count())
            .select_from(TransactionRow)
            .where(TransactionRow.kind == EntryKind.GRANT.value)
        )
    assert members == 1 + len(people)
    assert grants == 1 + len(people)  # a welcome each, once
    await engine.dispose()
