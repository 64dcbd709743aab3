"""The store's batched methods (one statement for several rows), on SQLite and PostgreSQL:
they give what the one-at-a-time methods give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.ids import MemberId
from bot.domain.records import OfferStatus, Role
from bot.messages import Delivery, Outbound, Text
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_get_many_is_get_for_each(store: Store) -> None:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("console", "Test", ["finance"], NOW)
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "console", "ann", NOW)
        bob = await uow.members.create(community.id, "bob", Role.MEMBER, "console", "bob", NOW)
        await uow.members.forget(bob.id, "someone")  # no identities left
        await uow.commit()
    async with store.uow() as uow:
        found = await uow.members.get_many([bob.id, ann.id, MemberId(999_999)])
        assert set(found) == {ann.id, bob.id}
        assert found[ann.id] == await uow.members.get(ann.id)
        assert found[bob.id] == await uow.members.get(bob.id)
        assert found[bob.id].identities == ()
        assert await uow.members.get_many([]) == {}


async def test_add_offers_is_add_offer_for_each_in_order(store: Store) -> None:
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("console", "Test", ["finance"], NOW)
        ann = await uow.members.create(community.id, "ann", Role.MEMBER, "console", "ann", NOW)
        bob = await uow.members.create(community.id, "bob", Role.MEMBER, "console", "bob", NOW)
        cy = await uow.members.create(community.id, "cy", Role.MEMBER, "console", "cy", NOW)
        idea = await uow.ideas.create(community.id, ann.id, "Idea", {}, NOW)
        request = await uow.requests.create(
            community.id, idea.id, ann.id, "advice", 100, ["finance"], NOW
        )
        until = NOW + timedelta(hours=12)
        await uow.requests.add_offers(
            request.id, 1, [(cy.id, "first"), (bob.id, "second")], NOW, until, None
        )
        await uow.requests.add_offers(request.id, 1, [], NOW, until, None)
        await uow.commit()
    async with store.uow() as uow:
        offers = await uow.requests.offers(request.id)
        assert [(o.peer, o.peer_name, o.explanation) for o in offers] == [
            (cy.id, "cy", "first"),
            (bob.id, "bob", "second"),
        ]
        assert all(o.status is OfferStatus.OFFERED and o.round == 1 for o in offers)
        assert all(o.expires_at == until and o.remind_at is None for o in offers)
        assert all(o.request_number == request.number for o in offers)


async def test_mark_all_sent_marks_each_with_its_reference(store: Store) -> None:
    async with store.uow() as uow:
        first = await uow.outbox.add(
            Outbound("console", Delivery.DM, "ann", "test", (Text("one"),)), NOW
        )
        second = await uow.outbox.add(
            Outbound("console", Delivery.DM, "bob", "test", (Text("two"),)), NOW
        )
        third = await uow.outbox.add(
            Outbound("console", Delivery.DM, "cy", "test", (Text("three"),)), NOW
        )
        await uow.outbox.mark_all_sent([(first, "ref-1"), (third, None)], NOW)
        await uow.outbox.mark_all_sent([], NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert [m.outbox_id for m in await uow.outbox.pending(["console"], 10)] == [second]
