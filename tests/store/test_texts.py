"""The store's affinity corpus (store/repositories/texts.py) on SQLite and PostgreSQL: it
catches up one change at a time and then holds exactly what a fresh build from the
tables holds; a rolled-back change never gets in and never hides a later one; a second
process's corpus catches up with the first's changes."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.affinity import Corpus
from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import RequestStatus, Role
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def idea(title: str, summary: str) -> dict[str, str]:
    return {"title": title, "summary": summary, "need": "", "impact": ""}


def contents(corpus: Corpus) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    ideas = {n: corpus.ideas.terms(n) for n in corpus.ideas.keys()}
    peers = {m: corpus.peers.terms(m) for m in corpus.peers.keys()}
    return ideas, peers


async def fresh(factory: SqlUnitOfWorkFactory, community: CommunityId) -> Corpus:
    """A corpus built from scratch from the committed tables (a new process's)."""
    async with SqlUnitOfWorkFactory(factory.sessions)() as uow:
        return await uow.texts.corpus(community)


async def setup(factory: SqlUnitOfWorkFactory) -> tuple[CommunityId, MemberId, MemberId]:
    async with factory() as uow:
        community = await uow.communities.get_or_create("console", "C", [], NOW)
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "console", "ann", NOW)
        bob = await uow.members.create(community.id, "bob", Role.MEMBER, "console", "bob", NOW)
        await uow.commit()
    return community.id, ann.id, bob.id


async def test_it_catches_up_change_by_change_and_then_equals_a_fresh_build(
    store: Store,
) -> None:
    factory = store.uow
    assert isinstance(factory, SqlUnitOfWorkFactory)
    community, ann, bob = await setup(factory)

    async def corpus() -> Corpus:
        async with factory.reading() as uow:
            return await uow.texts.corpus(community)

    assert len((await corpus()).ideas) == 0
    async with factory() as uow:
        first = await uow.ideas.create(
            community, ann, "Repair café", idea("Repair café", "Neighbours fix bikes."), NOW
        )
        await uow.members.set_profile(bob, languages=[], bio="I repair bicycles.", profile={})
        await uow.commit()
    held = await corpus()
    assert set(held.ideas.keys()) == {first.number}
    assert "bicycl" in held.peers.terms(bob)
    # a bio changes; a review of bob's is rated well: his text now holds the idea too
    async with factory() as uow:
        await uow.members.set_profile(bob, languages=[], bio="I coach football.", profile={})
        request = await uow.requests.create(community, first.id, ann, "review", 200, [], NOW)
        fields = {"peer_id": bob, "delivered_at": NOW}
        await uow.requests.transition(
            request.id, list(RequestStatus), RequestStatus.CONFIRMED, rating=5, **fields
        )
        await uow.texts.peer_changed(bob)
        await uow.commit()
    held = await corpus()
    assert held.reviewed(bob) == (first.number,)
    assert {"footbal", "repair", "neighbour"} <= set(held.peers.terms(bob))
    assert "bicycl" not in held.peers.terms(bob)
    # ann is forgotten: her idea's words go, and with them what bob learned from it
    async with factory() as uow:
        await uow.members.forget(ann, "former member 1")
        await uow.commit()
    held = await corpus()
    assert len(held.ideas) == 0
    assert "repair" not in held.peers.terms(bob)
    assert contents(held) == contents(await fresh(factory, community))


async def test_a_rolled_back_idea_never_gets_in_and_hides_nothing_after_it(
    store: Store,
) -> None:
    factory = store.uow
    assert isinstance(factory, SqlUnitOfWorkFactory)
    community, ann, _ = await setup(factory)
    async with factory() as uow:
        await uow.ideas.create(community, ann, "Lost", idea("Lost", "Beekeeping on roofs."), NOW)
        # this unit's own uncommitted idea is not in the shared corpus
        assert len((await uow.texts.corpus(community)).ideas) == 0
        await uow.rollback()
    async with factory() as uow:
        kept = await uow.ideas.create(
            community, ann, "Kept", idea("Kept", "Solar panels on schools."), NOW
        )
        await uow.commit()
    async with factory.reading() as uow:
        held = await uow.texts.corpus(community)
    assert set(held.ideas.keys()) == {kept.number}
    assert "beekeep" not in held.ideas.terms(kept.number)


async def test_a_second_process_catches_up_with_the_first(store: Store) -> None:
    first = store.uow
    assert isinstance(first, SqlUnitOfWorkFactory)
    community, ann, bob = await setup(first)
    second = SqlUnitOfWorkFactory(first.sessions)  # another process: its own corpus
    async with second.reading() as uow:
        assert len((await uow.texts.corpus(community)).ideas) == 0
    for n in range(3):
        async with first() as uow:
            await uow.ideas.create(community, ann, f"Idea {n}", idea(f"t{n}", f"word{n}a"), NOW)
            await uow.commit()
        async with second.reading() as uow:
            held = await uow.texts.corpus(community)
        assert len(held.ideas) == n + 1
    async with first() as uow:
        await uow.members.set_profile(bob, languages=[], bio="Energy cooperatives.", profile={})
        await uow.commit()
    async with second.reading() as uow:
        held = await uow.texts.corpus(community)
    assert "energi" in held.peers.terms(bob)
    assert contents(held) == contents(await fresh(first, community))
