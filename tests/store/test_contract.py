"""The store contract: the same tests on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import ledger
from bot.domain.ids import CommunityId, MemberId, RequestId
from bot.domain.ledger import ESCROW, NETWORK, AccountKey, AccountKind, EntryKind
from bot.domain.records import Role
from bot.messages import Actions, Button, Code, Delivery, File, Outbound, Strong, Table, Text
from bot.ports import LimitExceeded
from store.db import (
    create_schema,
    dispose,
    make_engine,
    make_reader_engine,
    make_sessionmaker,
    reader_sessions,
)
from store.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from tests.conftest import TABLES, Store, _pg_admin_url
from tests.memory_store import MemoryUnitOfWork, MemoryUnitOfWorkFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMIT = -1000
MEMORY = "memory"


@dataclass
class MemoryStore:
    """The in-memory store, with the face of tests/conftest.py's `Store` that tests use."""

    uow: MemoryUnitOfWorkFactory
    url: str = MEMORY


AnyStore = Store | MemoryStore


# The contract's own `db_url` and `store`, with the in-memory store beside tests/conftest.py's
# two databases (made here as there: a SQLite file, the cleaned PostgreSQL scratch database).
@pytest.fixture(params=[MEMORY, "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == MEMORY:
        return MEMORY
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_pg_admin_url(url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[AnyStore]:
    if db_url == MEMORY:
        yield MemoryStore(MemoryUnitOfWorkFactory())
        return
    engine = make_engine(db_url)
    if db_url.startswith("sqlite"):
        await create_schema(engine)
    readers = make_reader_engine(db_url)  # wired as in production
    sessions = reader_sessions(readers) if readers is not None else None
    yield Store(db_url, engine, SqlUnitOfWorkFactory(make_sessionmaker(engine), sessions))
    await dispose(engine, readers)


async def _set_member_balances(uow: SqlUnitOfWork | MemoryUnitOfWork, balance: int) -> None:
    """Overwrite the cached balance of every member account behind the ledger's back."""
    if isinstance(uow, MemoryUnitOfWork):
        uow.ledger.set_cached_balances(AccountKind.MEMBER, balance)
        return
    from sqlalchemy import text

    await uow.session.execute(
        text("UPDATE accounts SET balance = :balance WHERE kind = 'member'"), {"balance": balance}
    )


async def _setup(store: AnyStore) -> tuple[CommunityId, MemberId, MemberId]:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create(
            "console", "Test", ["finance", "legal"], NOW
        )
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "console", "ann", NOW)
        bob = await uow.members.create(community.id, "Bob", Role.STAFF, "console", "bob", NOW)
        await uow.commit()
    return community.id, ann.id, bob.id


async def test_communities_are_created_once_with_their_tags(store: AnyStore) -> None:
    async with store.uow() as uow:
        first = await uow.communities.get_or_create("slack:T1", "One", ["finance"], NOW)
        again = await uow.communities.get_or_create("slack:T1", "Other name", ["legal"], NOW)
        other = await uow.communities.get_or_create("slack:T2", "Two", [], NOW)
        assert first == again
        assert other.id != first.id
        assert await uow.communities.tags(first.id) == ["finance"]
        assert await uow.ledger.balance(first.id, NETWORK) == 0
        assert await uow.ledger.balance(first.id, ESCROW) == 0
        await uow.commit()


async def test_members_identities_and_expertise(store: AnyStore) -> None:
    cid, ann_id, bob_id = await _setup(store)
    async with store.uow() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and ann.id == ann_id and ann.role is Role.MEMBER
        assert [i.external_id for i in ann.identities] == ["ann"]
        assert await uow.members.by_identity("slack", "ann") is None
        assert [m.id for m in await uow.members.by_name(cid, "BOB")] == [bob_id]
        await uow.members.set_role(ann_id, Role.STAFF)
        await uow.members.set_capacity(ann_id, 5)
        await uow.members.set_paused_until(ann_id, NOW)
        await uow.members.set_expertise(ann_id, "finance", 3)
        await uow.members.set_expertise(ann_id, "legal", 1)
        await uow.members.set_expertise(ann_id, "legal", 2)
        assert await uow.members.remove_expertise(ann_id, "nothing") is False
        await uow.commit()
    async with store.uow() as uow:
        ann = await uow.members.get(ann_id)
        assert ann is not None
        assert (ann.role, ann.capacity, ann.paused_until) == (Role.STAFF, 5, NOW)
        assert [(e.tag, e.level) for e in await uow.members.expertise(ann_id)] == [
            ("finance", 3),
            ("legal", 2),
        ]
        assert await uow.members.remove_expertise(ann_id, "legal") is True
        assert len(await uow.members.all(cid)) == 2


async def test_the_unit_of_work_rolls_back_unless_committed(store: AnyStore) -> None:
    cid, ann, _ = await _setup(store)
    async with store.uow() as uow:
        await uow.ledger.post(cid, ledger.grant(ann, 500, "x", None), LIMIT, NOW)
    with pytest.raises(RuntimeError):
        async with store.uow() as uow:
            await uow.ledger.post(cid, ledger.grant(ann, 500, "x", None), LIMIT, NOW)
            raise RuntimeError("crash before commit")
    async with store.uow() as uow:
        assert await uow.ledger.balance(cid, AccountKey.of(ann)) == 0
        assert await uow.ledger.check_invariants(cid) == []


async def test_posting_moves_balances_and_keeps_invariants(store: AnyStore) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        await uow.ledger.post(cid, ledger.grant(ann, 500, "welcome", bob), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.hold(ann, 200, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.release(ann, bob, 200, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.hold(ann, 100, RequestId(2), "R-2"), LIMIT, NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.ledger.balance(cid, AccountKey.of(ann)) == 200
        assert await uow.ledger.balance(cid, AccountKey.of(bob)) == 200
        assert await uow.ledger.balance(cid, ESCROW) == 100
        assert await uow.ledger.balance(cid, NETWORK) == -500
        ann_m = await uow.members.get(ann)
        bob_m = await uow.members.get(bob)
        assert ann_m is not None and bob_m is not None
        info = await uow.ledger.balance_info(ann_m)
        assert (info.balance, info.held, info.given, info.received) == (200, 100, 0, 200)
        info = await uow.ledger.balance_info(bob_m)
        assert (info.balance, info.held, info.given, info.received) == (200, 0, 200, 0)
        table = await uow.ledger.all_balances(cid)
        assert [(i.name, i.balance) for i in table] == [("ann", 200), ("Bob", 200)]
        lines = await uow.ledger.history(ann, 10)
        assert [(line.kind, line.amount) for line in lines] == [
            (EntryKind.HOLD, -100),
            (EntryKind.HOLD, -200),
            (EntryKind.GRANT, 500),
        ]
        assert lines[-1].reason == "welcome" and lines[-1].author == "Bob"
        assert await uow.ledger.check_invariants(cid) == []


async def test_the_balance_table_is_all_balances_counted_summed_and_cut_at_its_edges(
    store: AnyStore,
) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        other = await uow.communities.get_or_create("slack:T9", "Other", [], NOW)
        stranger = await uow.members.create(other.id, "zed", Role.MEMBER, "x", "zed", NOW)
        await uow.ledger.post(other.id, ledger.adjust(stranger.id, -50, "x", None), LIMIT, NOW)
        ids = [ann, bob]
        for n in range(7):
            member = await uow.members.create(cid, f"m{n}", Role.MEMBER, "console", f"m{n}", NOW)
            ids.append(member.id)
        for n, member in enumerate(ids):  # balances -290, -190, …, 610, with a hold too
            await uow.ledger.post(
                cid, ledger.adjust(member, (n - 3) * 100 + 10, "x", None), LIMIT, NOW
            )
        await uow.ledger.post(cid, ledger.hold(ids[-1], 50, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.commit()
    async with store.uow() as uow:
        everyone = await uow.ledger.all_balances(cid)
        assert len(everyone) == 9
        cut = await uow.ledger.balance_table(cid, 2)
        assert (cut.count, cut.total) == (9, sum(i.balance for i in everyone))
        assert cut.lowest == tuple(everyone[:2]) and cut.highest == tuple(everyone[-2:])
        assert cut.highest[-1].held == 50  # the shown rows are whole
        whole = await uow.ledger.balance_table(cid, 5)
        assert (whole.count, whole.lowest, whole.highest) == (9, tuple(everyone), ())
        below = await uow.ledger.balance_table(cid, 1, negative=True)
        negative = [i for i in everyone if i.balance < 0]
        assert (below.count, below.total) == (3, sum(i.balance for i in negative))
        assert below.lowest == (negative[0],) and below.highest == (negative[-1],)
        one = await uow.ledger.balance_table(cid, 1, member=bob)
        assert (one.count, one.lowest) == (1, tuple(i for i in everyone if i.member == bob))
        assert (await uow.ledger.balance_table(cid, 1, member=ids[-1], negative=True)).count == 0
        assert (await uow.ledger.balance_table(cid, 1, member=stranger.id)).count == 0


async def test_circulation_is_the_sum_of_positive_member_balances(store: AnyStore) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        assert await uow.stats.circulation(cid) == 0
        await uow.ledger.post(cid, ledger.grant(bob, 300, "welcome", None), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.hold(ann, 200, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.release(ann, bob, 200, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.commit()
    async with store.uow() as uow:
        # ann -200 (mutual credit), bob 500; the network (-300) and escrow (0) are no members
        assert await uow.stats.circulation(cid) == 500
        assert await uow.ledger.balance(cid, NETWORK) == -300


async def test_a_debit_past_the_credit_limit_is_refused_and_writes_nothing(store: AnyStore) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        await uow.ledger.post(cid, ledger.adjust(ann, -900, "start", bob), LIMIT, NOW)
        with pytest.raises(LimitExceeded) as info:
            await uow.ledger.post(cid, ledger.hold(ann, 200, RequestId(1), "R-1"), LIMIT, NOW)
        assert (info.value.balance, info.value.floor, info.value.amount) == (-900, -1000, -200)
        # exactly down to the limit is allowed
        await uow.ledger.post(cid, ledger.hold(ann, 100, RequestId(1), "R-1"), LIMIT, NOW)
        with pytest.raises(LimitExceeded):  # escrow cannot pay out more than it holds
            await uow.ledger.post(cid, ledger.refund(ann, 300, RequestId(1), "R-1"), LIMIT, NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.ledger.balance(cid, AccountKey.of(ann)) == -1000
        assert await uow.ledger.balance(cid, ESCROW) == 100
        assert len(await uow.ledger.history(ann, 10)) == 2
        assert await uow.ledger.check_invariants(cid) == []


async def test_a_transaction_key_is_posted_once(store: AnyStore) -> None:
    cid, ann, _ = await _setup(store)
    async with store.uow() as uow:
        first = await uow.ledger.post(cid, ledger.grant(ann, 500, "x", None, key="k1"), LIMIT, NOW)
        again = await uow.ledger.post(cid, ledger.grant(ann, 500, "x", None, key="k1"), LIMIT, NOW)
        assert first is not None and again is None
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.ledger.balance(cid, AccountKey.of(ann)) == 500


async def test_event_keys_are_seen_once(store: AnyStore) -> None:
    async with store.uow() as uow:
        assert await uow.events.first_time("slack:T1:Ev1", NOW) is True
        assert await uow.events.first_time("slack:T1:Ev1", NOW) is False
        assert await uow.events.first_time("slack:T1:Ev2", NOW) is True
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.events.first_time("slack:T1:Ev1", NOW) is False
        assert await uow.events.seen("slack:T1:Ev2") is True
        assert await uow.events.seen("slack:T1:Ev3") is False
    async with store.uow.reading() as uow:  # as a direct answer asks it
        assert await uow.events.seen("slack:T1:Ev1") is True
        assert await uow.events.seen("slack:T1:Ev3") is False
        assert await uow.events.seen("slack:T1:ev1") is False  # keys are exact


async def test_outbox_keeps_messages_until_marked_sent(store: AnyStore) -> None:
    message = Outbound(
        "console",
        Delivery.CHANNEL,
        "staff",
        "offer",
        (
            Text("hello *not bold* "),
            Code("accept R-1"),
            Strong("Balance"),
            Table(("a", "b"), (("1", "2"),)),
            Actions((Button("Accept", "accept R-1"),)),
            File("x.csv", b"a,b\n1,2\n"),
        ),
        subject="R-1",
    )
    async with store.uow() as uow:
        first = await uow.outbox.add(message, NOW)
        await uow.outbox.add(Outbound("slack", Delivery.DM, "T1:U1", "hi", (Text("hi"),)), NOW)
        await uow.commit()
    async with store.uow() as uow:
        pending = await uow.outbox.pending(["console"], 10)
        assert [m.text for m in pending] == [message.text]
        # every typed part, the topic and the subject come back as they were written
        assert pending[0].parts == message.parts
        assert (pending[0].topic, pending[0].subject) == ("offer", "R-1")
        await uow.outbox.mark_sent(first, NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.outbox.pending(["console"], 10) == []
        assert len(await uow.outbox.pending(["console", "slack"], 10)) == 1


async def test_outbox_claims_keep_each_persons_order_and_skip_set_aside(store: AnyStore) -> None:
    def to(who: str, body: str) -> Outbound:
        return Outbound("console", Delivery.DM, who, "note", (Text(body),))

    later = NOW + timedelta(minutes=5)
    async with store.uow() as uow:
        ann1 = await uow.outbox.add(to("ann", "a1"), NOW)
        await uow.outbox.add(to("ann", "a2"), NOW)
        bob1 = await uow.outbox.add(to("bob", "b1"), NOW)
        await uow.outbox.add(to("bob", "b2"), NOW)
        carol = await uow.outbox.add(to("carol", "c1"), NOW)
        await uow.commit()
    async with store.uow() as uow:
        claimed = await uow.outbox.claim(["console"], NOW, NOW + timedelta(seconds=60), 10)
        # due ones come in order, each with its tries so far and when it was stored
        assert [m.text for m, _ in claimed] == ["a1", "a2", "b1", "b2", "c1"]
        assert {(m.attempts, m.created_at) for m, _ in claimed} == {(1, NOW)}
        await uow.outbox.release([ann1], later, "RuntimeError: boom")  # ann1 waits
        await uow.outbox.release([i for m, _ in claimed if (i := m.outbox_id) != ann1], NOW)
        await uow.outbox.set_aside([(bob1, "account_inactive")], NOW)
        await uow.commit()
    async with store.uow() as uow:
        claimed = await uow.outbox.claim(["console"], NOW, NOW + timedelta(seconds=60), 10)
        # a2 waits behind a1; b1 is set aside for good, so b2 may go; carol as before
        assert [m.text for m, _ in claimed] == ["b2", "c1"]
        assert all(tried for _, tried in claimed)
        await uow.outbox.mark_all_sent([(carol, "ref")], NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert [m.text for m, e in await uow.outbox.set_aside_since(NOW)] == ["b1"]
        assert await uow.stats.set_aside() == 1
        claimed = await uow.outbox.claim(["console"], later, later + timedelta(seconds=60), 10)
        # b2's hold from the claim before ran out, so it comes again
        assert [m.text for m, _ in claimed] == ["a1", "a2", "b2"]
        assert claimed[0][0].attempts == 2


async def test_invariant_check_finds_a_tampered_cache(store: AnyStore) -> None:
    cid, ann, _ = await _setup(store)
    async with store.uow() as uow:
        await uow.ledger.post(cid, ledger.grant(ann, 500, "x", None), LIMIT, NOW)
        await _set_member_balances(uow, 1)
        problems = await uow.ledger.check_invariants(cid)
        assert any("caches" in p for p in problems)


async def test_counters_number_ideas_per_community(store: AnyStore) -> None:
    cid, ann, _ = await _setup(store)
    async with store.uow() as uow:
        other = await uow.communities.get_or_create("slack:T9", "Other", [], NOW)
        first = await uow.ideas.create(cid, ann, "Repair café", {"title": "Repair café"}, NOW)
        second = await uow.ideas.create(cid, ann, "Food bank", {"title": "Food bank"}, NOW)
        assert (first.number, second.number, first.ref) == (1, 2, "I-1")
        assert await uow.communities.next_number(other.id, "idea") == 1
        assert await uow.communities.next_number(cid, "request") == 1
        await uow.commit()
    async with store.uow() as uow:
        found = await uow.ideas.by_number(cid, 2)
        assert found is not None and found.title == "Food bank" and found.owner_name == "ann"
        assert await uow.ideas.by_number(cid, 3) is None
        assert [i.number for i in await uow.ideas.of_owner(ann)] == [1, 2]
        assert [i.title for i in await uow.ideas.all(cid)] == ["Repair café", "Food bank"]


async def test_conversations_are_saved_replaced_and_claimed_when_due(store: AnyStore) -> None:
    from datetime import timedelta

    from bot.domain.records import Conversation

    cid, ann, bob = await _setup(store)
    old = NOW - timedelta(days=3)
    async with store.uow() as uow:
        await uow.conversations.save(
            Conversation(ann, cid, "intake", {"position": "title"}, "console", "ann", old, old)
        )
        await uow.conversations.save(
            Conversation(bob, cid, "profile", {"position": "bio"}, "console", "bob", NOW, NOW)
        )
        await uow.commit()
    async with store.uow() as uow:
        saved = await uow.conversations.get(ann)
        assert (
            saved is not None and saved.state == {"position": "title"} and saved.updated_at == old
        )
        two_days_ago = NOW - timedelta(days=2)
        due = await uow.conversations.claim_due(two_days_ago, reminded=False, limit=10)
        assert [c.member for c in due] == [ann]
        await uow.conversations.mark_reminded(ann, NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert (
            await uow.conversations.claim_due(NOW - timedelta(days=2), reminded=False, limit=10)
            == []
        )
        reminded = await uow.conversations.claim_due(NOW, reminded=True, limit=10)
        assert [c.member for c in reminded] == [ann]
        await uow.conversations.delete(ann)
        assert await uow.conversations.get(ann) is None
        await uow.commit()


async def test_requests_offers_and_their_conditional_transitions(store: AnyStore) -> None:
    from datetime import timedelta

    from bot.domain.records import OfferStatus, RequestStatus

    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        idea = await uow.ideas.create(cid, ann, "Repair café", {}, NOW)
        req = await uow.requests.create(cid, idea.id, ann, "review", 200, ["finance"], NOW)
        assert (req.ref, req.status, req.idea_number, req.requester_name) == (
            "R-1",
            RequestStatus.OPEN,
            1,
            "ann",
        )
        assert await uow.requests.committed(ann) == 200
        day, half = NOW + timedelta(hours=24), NOW + timedelta(hours=12)
        offer = await uow.requests.add_offer(req.id, bob, 1, "matches finance:3", NOW, day, half)
        assert offer.request_ref == "R-1" and offer.peer_name == "Bob"
        assert [o.id for o in await uow.requests.open_offers(bob)] == [offer.id]
        await uow.commit()
    async with store.uow() as uow:
        due = await uow.requests.claim_offers_to_remind(NOW + timedelta(hours=12), 10)
        assert [o.id for o in due] == [offer.id]
        await uow.requests.clear_reminder(offer.id)
        assert await uow.requests.claim_offers_to_remind(NOW + timedelta(hours=13), 10) == []
        assert await uow.requests.claim_expired_offers(NOW + timedelta(hours=23), 10) == []
        assert len(await uow.requests.claim_expired_offers(NOW + timedelta(hours=24), 10)) == 1
        facts = {f.name: f for f in await uow.routing.peer_facts(cid, NOW - timedelta(days=90))}
        assert facts["Bob"].open_reviews == 1 and facts["Bob"].last_offer_at == NOW
        assert facts["ann"].open_reviews == 0 and facts["ann"].last_offer_at is None
        assert await uow.requests.answer_offer(offer.id, OfferStatus.ACCEPTED, NOW) is True
        assert await uow.requests.answer_offer(offer.id, OfferStatus.DECLINED, NOW) is False
        won = await uow.requests.transition(
            req.id, [RequestStatus.OPEN], RequestStatus.ASSIGNED, peer_id=bob, accepted_at=NOW
        )
        lost = await uow.requests.transition(
            req.id, [RequestStatus.OPEN], RequestStatus.ASSIGNED, peer_id=ann, accepted_at=NOW
        )
        assert (won, lost) == (True, False)
        await uow.commit()
    async with store.uow() as uow:
        found = await uow.requests.by_number(cid, 1)
        assert found is not None and found.peer == bob and found.peer_name == "Bob"
        assert await uow.requests.committed(ann) == 0
        assert [r.ref for r in await uow.requests.of_member(bob)] == ["R-1"]
        await uow.requests.transition(
            req.id,
            [RequestStatus.ASSIGNED],
            RequestStatus.DELIVERED,
            delivered_at=NOW,
            auto_release_at=NOW + timedelta(days=7),
        )
        assert await uow.requests.claim_auto_release(NOW + timedelta(days=6), 10) == []
        due_now = await uow.requests.claim_auto_release(NOW + timedelta(days=7), 10)
        assert [r.ref for r in due_now] == ["R-1"]
        facts = {f.name: f for f in await uow.routing.peer_facts(cid, NOW - timedelta(days=90))}
        assert facts["Bob"].reviews_recent == 1 and facts["Bob"].open_reviews == 0


async def test_an_ideas_requests_oldest_first_and_its_status(store: AnyStore) -> None:
    from bot.domain.records import IdeaStatus

    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        repair = await uow.ideas.create(cid, ann, "Repair café", {}, NOW)
        food = await uow.ideas.create(cid, bob, "Food bank", {}, NOW)
        await uow.requests.create(cid, repair.id, ann, "review", 200, ["finance"], NOW)
        await uow.requests.create(cid, food.id, bob, "advice", 100, [], NOW)
        await uow.requests.create(cid, repair.id, ann, "advice", 100, [], NOW)
        await uow.commit()
    async with store.uow() as uow:
        mine = await uow.requests.of_idea(repair.id)
        assert [(r.ref, r.kind, r.idea_number) for r in mine] == [
            ("R-1", "review", 1),
            ("R-3", "advice", 1),
        ]
        assert [r.ref for r in await uow.requests.of_idea(food.id)] == ["R-2"]
        assert repair.status is IdeaStatus.SUBMITTED
        await uow.ideas.set_status(repair.id, IdeaStatus.IN_REVIEW, NOW)
        await uow.commit()
    async with store.uow() as uow:
        found = await uow.ideas.by_number(cid, 1)
        assert found is not None and found.status is IdeaStatus.IN_REVIEW
        assert [i.status for i in await uow.ideas.all(cid)] == [
            IdeaStatus.IN_REVIEW,
            IdeaStatus.SUBMITTED,
        ]
        await uow.ideas.set_status(repair.id, IdeaStatus.REVIEWED, NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert [i.status for i in await uow.ideas.of_owner(ann)] == [IdeaStatus.REVIEWED]


async def test_concurrent_units_of_work_never_share_a_number(store: AnyStore) -> None:
    cid, _, _ = await _setup(store)

    async def take() -> int:
        async with store.uow() as uow:
            number = await uow.communities.next_number(cid, "request")
            await asyncio.sleep(0.01)  # the other units run meanwhile
            await uow.commit()
            return number

    assert sorted(await asyncio.gather(*(take() for _ in range(4)))) == [1, 2, 3, 4]


async def test_merging_two_members_moves_what_is_theirs_and_keeps_the_entries(
    store: AnyStore,
) -> None:
    from bot.domain.records import OfferStatus, RequestStatus

    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        # ann2: ann's second account, with its own history and a bit of profile.
        ann2 = (await uow.members.create(cid, "ann2", Role.MEMBER, "slack", "T1:U2", NOW)).id
        cleo = (await uow.members.create(cid, "cleo", Role.MEMBER, "console", "cleo", NOW)).id
        await uow.members.set_expertise(ann, "finance", 1)
        await uow.members.set_expertise(ann2, "finance", 3)
        await uow.members.set_expertise(ann2, "legal", 2)
        await uow.members.set_profile(ann2, languages=["Dutch"], bio="Cook.", profile={"x": 1})
        await uow.members.set_profile(ann, languages=["English"], bio="", profile={})
        idea = await uow.ideas.create(cid, ann2, "Soup bus", {}, NOW)
        asked = await uow.requests.create(cid, idea.id, ann2, "advice", 100, [], NOW)
        await uow.requests.transition(
            asked.id, [RequestStatus.OPEN], RequestStatus.CANCELLED, closed_at=NOW
        )
        cleos = await uow.ideas.create(cid, cleo, "Tool library", {}, NOW)
        reviewed = await uow.requests.create(cid, cleos.id, cleo, "review", 200, [], NOW)
        offer = await uow.requests.add_offer(reviewed.id, ann2, 1, "t", NOW, NOW, None)
        await uow.requests.answer_offer(offer.id, OfferStatus.ACCEPTED, NOW)
        await uow.requests.transition(
            reviewed.id, [RequestStatus.OPEN], RequestStatus.CONFIRMED, peer_id=ann2
        )
        await uow.introductions.add(cid, idea.id, ann2, cleo, "", NOW)
        await uow.introductions.add(cid, cleos.id, cleo, ann2, "", NOW)
        await uow.introductions.add(cid, idea.id, ann2, ann, "", NOW)  # to themself, later
        await uow.ledger.post(cid, ledger.grant(ann2, 400, "prize", bob), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.transfer(ann2, ann, 400, "merged", bob), LIMIT, NOW)
        await uow.links.merge_members(ann, ann2, "merged member 3")
        await uow.commit()
    async with store.uow() as uow:
        merged = await uow.members.by_identity("slack", "T1:U2")
        assert merged is not None and merged.id == ann and merged.name == "ann"
        assert [i.external_id for i in merged.identities] == ["ann", "T1:U2"]
        assert (merged.languages, merged.bio) == (("English", "Dutch"), "Cook.")
        assert merged.profile == {"x": 1}
        assert [(e.tag, e.level) for e in await uow.members.expertise(ann)] == [
            ("finance", 3),
            ("legal", 2),
        ]
        assert [i.ref for i in await uow.ideas.of_owner(ann)] == ["I-1"]
        assert [r.ref for r in await uow.requests.of_member(ann)] == ["R-2", "R-1"]
        assert (await uow.requests.offer_for(reviewed.id, ann)) is not None
        assert await uow.introductions.exists(idea.id, ann, cleo)
        assert await uow.introductions.exists(cleos.id, cleo, ann)
        assert not await uow.introductions.exists(idea.id, ann, ann)
        gone = await uow.members.get(ann2)
        assert gone is not None and gone.name == "merged member 3"
        assert (gone.identities, gone.capacity, gone.bio, gone.languages) == ((), 0, "", ())
        assert await uow.members.expertise(ann2) == []
        assert await uow.ledger.balance(cid, AccountKey.of(ann)) == 400
        assert await uow.ledger.balance(cid, AccountKey.of(ann2)) == 0
        assert [line.kind for line in await uow.ledger.history(ann2, 10)] == [
            EntryKind.TRANSFER,
            EntryKind.GRANT,
        ]  # the entries stay where they were written
        assert await uow.ledger.check_invariants(cid) == []
