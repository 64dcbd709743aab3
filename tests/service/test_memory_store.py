"""The core runs on the in-memory store (tests/memory_store.py): a short loop through `Bot`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.bootstrap import assemble
from bot.domain.ids import CommunityId
from bot.domain.ledger import ESCROW, AccountKey
from bot.domain.records import RequestStatus, Role
from bot.ports import StoreBusy, UnitOfWorkFactory
from tests.conftest import make_settings
from tests.fakes import FakeClock, RecordingMessenger, said
from tests.memory_store import ConstraintViolation, MemoryUnitOfWorkFactory, ReadOnlyError

UNUSED_URL = "sqlite+aiosqlite:///:memory:"  # Settings want a database URL; none is opened
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_a_request_from_hello_to_thanks_on_the_memory_store() -> None:
    clock = FakeClock()
    store: UnitOfWorkFactory = MemoryUnitOfWorkFactory()
    settings = make_settings(UNUSED_URL)
    out = RecordingMessenger("console")
    bot = assemble(settings, store, clock, messengers=[out]).bot
    price = settings.prices["review"]

    await bot.handle(said("ann", "hello"))  # first contact: a member, greeted
    assert len(out.to("ann")) == 1
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("bob", "expertise add finance:3"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    async with store() as uow:
        ann = await uow.members.by_identity("console", "ann")
        bob = await uow.members.by_identity("console", "bob")
        assert ann is not None and bob is not None
        cid = ann.community
        assert await uow.ledger.balance(cid, AccountKey.of(ann.id)) == 500
        idea = {"title": "Repair café network", "help": ["finance"]}
        await uow.ideas.create(cid, ann.id, "Repair café network", idea, clock.now())
        await uow.commit()

    await bot.handle(said("ann", "request I-1 review"))
    assert any("R-1" in text for text in out.to("bob"))  # offered to the only peer
    await bot.handle(said("bob", "accept R-1"))
    async with store() as uow:
        request = await uow.requests.by_number(cid, 1)
        assert request is not None and request.status is RequestStatus.ASSIGNED
        assert request.peer == bob.id
        assert await uow.ledger.balance(cid, ESCROW) == price
    clock.advance(hours=3)
    await bot.handle(said("bob", "done R-1 2 Looks solid."))
    await bot.handle(said("ann", "thanks R-1 5 very useful"))

    async with store() as uow:
        request = await uow.requests.by_number(cid, 1)
        assert request is not None and request.status is RequestStatus.CONFIRMED
        assert (request.hours, request.rating) == (2, 5)
        assert await uow.ledger.balance(cid, AccountKey.of(ann.id)) == 500 - price
        assert await uow.ledger.balance(cid, AccountKey.of(bob.id)) == price
        assert await uow.ledger.balance(cid, ESCROW) == 0
        assert await uow.ledger.check_invariants(cid) == []
        bob_info = await uow.ledger.balance_info(bob)
        assert (bob_info.given, bob_info.received) == (price, 0)
        assert await uow.stats.backlog() == 0  # every message was delivered and marked sent
    # A private answer in a channel comes from a read-only unit of work and rides on the ack.
    answer = await bot.handle(said("ann", "balance", channel="general"), answer_in_ack=True)
    assert [m.outbox_id for m in answer] == [None]
    assert "3.00 SIF" in answer[0].text


async def test_the_memory_store_refuses_what_the_databases_would() -> None:
    store = MemoryUnitOfWorkFactory()
    async with store() as uow:
        community = await uow.communities.get_or_create("console", "Test", [], NOW)
        await uow.commit()
    async with store.reading() as reader:
        assert await reader.communities.find("console") == community
        with pytest.raises(ReadOnlyError):  # as PostgreSQL's read-only transactions
            await reader.events.first_time("e1", NOW)
        with pytest.raises(RuntimeError):
            await reader.commit()
    async with store() as uow:
        with pytest.raises(RuntimeError, match="already open in this task"):
            async with store():  # would wait for itself forever (on SQLite too)
                pass
        with pytest.raises(ConstraintViolation):  # a member of no community
            await uow.members.create(CommunityId(99), "ann", Role.MEMBER, "console", "a", NOW)
        with pytest.raises(ValueError, match="naive"):
            await uow.events.first_time("e1", datetime(2026, 3, 2))
    store.busy_readers = True
    with pytest.raises(StoreBusy):
        async with store.reading():
            pass
