"""The store's peer table (store/repositories/peers.py) on SQLite and PostgreSQL: after
random profile changes, offers and answers, each committed or rolled back, a round's
index from the table kept by this process, and from a second process's, ranks exactly as
one built afresh from every member's facts; a transaction that changed a peer itself
ranks with its own change."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import OfferStatus, Role
from bot.domain.routing import Need, PeerIndex, index_of_facts
from store.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=90)
TAGS = ("finance", "legal", "design")


async def fresh(uow: SqlUnitOfWork, community: CommunityId, now: datetime) -> PeerIndex:
    return index_of_facts(await uow.routing.peer_facts(community, SINCE), now)


def rankings(index: PeerIndex, needs: list[Need], now: datetime) -> list[object]:
    return [index.rank(need, now, 40) for need in needs]  # every eligible peer, in order


async def test_the_kept_table_ranks_as_a_fresh_build_through_random_changes(
    store: Store,
) -> None:
    factory = store.uow
    assert isinstance(factory, SqlUnitOfWorkFactory)
    second = SqlUnitOfWorkFactory(factory.sessions)  # another process: its own table
    rng = random.Random(7)
    async with factory() as uow:
        community = (await uow.communities.get_or_create("console", "C", list(TAGS), NOW)).id
        members = []
        for n in range(30):
            member = await uow.members.create(
                community, f"m{n}", Role.MEMBER, "console", f"m{n}", NOW
            )
            members.append(member.id)
            await uow.members.set_expertise(member.id, TAGS[n % 3], 1 + n % 3)
        owner = members[0]
        idea = await uow.ideas.create(community, owner, "Idea", {"title": "Idea"}, NOW)
        await uow.commit()
    needs = [
        Need(MemberId(owner), frozenset(), (tag,), frozenset(), frozenset()) for tag in TAGS
    ] + [Need(MemberId(owner), frozenset(), (), frozenset({"dutch"}), frozenset())]
    requests = []
    now = NOW
    for step in range(60):
        now += timedelta(hours=3)
        roll_back = rng.random() < 0.2
        async with factory() as uow:
            member = rng.choice(members[1:])
            what = rng.randrange(6)
            if what == 0:
                await uow.members.set_expertise(member, rng.choice(TAGS), rng.randint(1, 3))
            elif what == 1:
                await uow.members.remove_expertise(member, rng.choice(TAGS))
            elif what == 2:
                await uow.members.set_capacity(member, rng.randint(0, 2))
            elif what == 3:
                until = now + timedelta(hours=rng.choice([-1, 5]))
                await uow.members.set_paused_until(member, until)
            elif what == 4:
                languages = rng.sample(["Dutch", "english"], rng.randint(0, 2))
                await uow.members.set_profile(member, languages=languages, bio="", profile={})
            else:
                if not requests or rng.random() < 0.5:
                    request = await uow.requests.create(
                        community, idea.id, owner, "review", 200, [], now
                    )
                    requests.append(request.id)
                offer = await uow.requests.add_offer(
                    rng.choice(requests), member, 1, "", now, now + timedelta(days=2), None
                )
                if rng.random() < 0.5:
                    status = rng.choice([OfferStatus.DECLINED, OfferStatus.EXPIRED])
                    await uow.requests.answer_offer(offer.id, status, now)
            if what < 5:
                # the transaction that changed a peer ranks with its own change
                own = await uow.routing.peer_index(community, now, SINCE)
                assert rankings(own, needs, now) == rankings(
                    await fresh(uow, community, now), needs, now
                ), step
            if roll_back:
                await uow.rollback()
            else:
                await uow.commit()
        for process in (factory, second):
            async with process() as uow:
                kept = await uow.routing.peer_index(community, now, SINCE)
                expected = await fresh(uow, community, now)
            assert len(kept) == len(expected), step
            assert rankings(kept, needs, now) == rankings(expected, needs, now), step
    assert len(factory.peers.communities[community].table) > 0
