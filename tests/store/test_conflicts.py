"""A unit of work that finds a unique key taken raises `Conflict` (the core does the
work again, `Bot._write`); any other refusal of the database stays what it was."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from bot.domain.ids import CommunityId
from bot.domain.records import Role
from bot.ports import Conflict
from tests.conftest import Store
from tests.fakes import FakeClock


async def test_a_unique_key_taken_is_a_conflict(store: Store, clock: FakeClock) -> None:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("c", "C", (), clock.now())
        await uow.members.create(community.id, "ann", Role.MEMBER, "x", "ann", clock.now())
        await uow.commit()
    with pytest.raises(Conflict):
        async with store.uow() as uow:
            await uow.members.create(community.id, "Ann", Role.MEMBER, "x", "ann", clock.now())
            await uow.commit()
    async with store.uow() as uow:  # nothing of the refused one was kept
        found = await uow.members.by_identity("x", "ann")
        assert found is not None and found.name == "ann"


async def test_other_refusals_are_no_conflict(store: Store, clock: FakeClock) -> None:
    with pytest.raises(IntegrityError) as refused:
        async with store.uow() as uow:  # no such community: a foreign key, not a taken key
            await uow.members.create(CommunityId(999), "bob", Role.MEMBER, "x", "bob", clock.now())
            await uow.commit()
    assert not isinstance(refused.value, Conflict)
