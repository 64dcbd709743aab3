"""`forget` through the core on SQLite and PostgreSQL (SPEC §13): settle first, a positive
balance goes to the network, the person's texts go everywhere but the ledger's amounts,
and a forgotten identity that comes back gets no second welcome grant."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.bootstrap import App
from bot.domain.ledger import ESCROW, NETWORK, AccountKey
from bot.domain.privacy import mentions
from bot.domain.records import OfferStatus
from bot.messages import Delivery
from store.models import OutboxRow
from tests.conftest import Store, build_app
from tests.fakes import FakeClock, RecordingMessenger, said


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def ask(app: App, who: str, text: str) -> list[str]:
    """What the bot answered `who` to `text`."""
    return [m.text for m in await app.bot.handle(said(who, text)) if m.to == who]


async def state(app: App) -> dict[str, Any]:
    """Everything a refused `forget` must leave as it was."""
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        members = await uow.members.all(community.id)
        return {
            "members": members,
            "balances": await uow.ledger.all_balances(community.id),
            "entries": await uow.ledger.entries(community.id),
            "requests": await uow.requests.all(community.id),
            "ideas": await uow.ideas.all(community.id),
            "expertise": await uow.members.expertise_of_community(community.id),
            "invariants": await uow.ledger.check_invariants(community.id),
        }


async def balances(app: App, *names: str) -> dict[str, int]:
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        found = {
            "network": await uow.ledger.balance(community.id, NETWORK),
            "escrow": await uow.ledger.balance(community.id, ESCROW),
        }
        for name in names:
            member = await uow.members.by_identity("console", name)
            assert member is not None
            found[name] = await uow.ledger.balance(community.id, AccountKey.of(member.id))
        return found


async def with_idea(app: App, owner: str, title: str = "Repair café network") -> None:
    await app.bot.handle(said(owner, "balance"))
    async with app.bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", owner)
        assert member is not None
        answers = {"title": title, "summary": "Repair cafés in every street.", "help": ["finance"]}
        await uow.ideas.create(member.community, member.id, title, answers, app.bot.clock.now())
        await uow.commit()


async def test_a_negative_balance_is_refused_with_how_to_settle_it_and_nothing_changes(
    app: App,
) -> None:
    await app.bot.handle(said("ann", "balance"))
    await app.bot.handle(said("staff", "adjust @ann -5 correction"))
    before = await state(app)
    for text in ("forget", "forget confirm"):
        answer = await ask(app, "ann", text)
        assert answer == [
            "Your balance is -5.00 SIF: settle it before `forget`. Earn SIF by reviewing for "
            "others (`profile`, then `accept` the offers you get), or ask staff to settle it "
            "with `adjust`."
        ]
    assert await state(app) == before
    assert (await ask(app, "ann", "balance"))[0].startswith("Your balance: -5.00 SIF")


async def test_a_positive_balance_goes_to_the_network_and_the_books_still_add_up(
    app: App,
) -> None:
    await app.bot.handle(said("ann", "balance"))
    await app.bot.handle(said("staff", "grant @ann 5 welcome ann"))
    assert await balances(app, "ann") == {"network": -500, "escrow": 0, "ann": 500}
    warned = await ask(app, "ann", "forget")
    assert "Your 5.00 SIF go to the network." in warned[0]
    assert (await balances(app, "ann"))["ann"] == 500  # asking changes nothing
    done = await ask(app, "ann", "forget confirm")
    assert done == [
        "Done: your data is erased. Your 5.00 SIF went to the network. "
        "Thank you for being part of the network."
    ]
    after = await state(app)
    assert after["invariants"] == []  # every transaction and the community sum to 0
    gone = next(b for b in after["balances"] if b.name.startswith("former member"))
    assert gone.balance == 0
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        assert await uow.ledger.balance(community.id, NETWORK) == 0
    entries = [(e["kind"], e["reason"], e["member"], e["amount"]) for e in after["entries"]]
    name = gone.name
    assert entries == [
        ("grant", f"welcome {name}", None, -500),
        ("grant", f"welcome {name}", name, 500),
        ("adjust", "balance given to the network on leaving", None, 500),
        ("adjust", "balance given to the network on leaving", name, -500),
    ]
    staff = [m.text for m in messenger(app).sent if m.delivery is Delivery.CHANNEL]
    assert staff[-1] == f"A member asked to be forgotten: now {name}; 5.00 SIF went to the network."


async def test_a_forgotten_identity_comes_back_as_a_new_member_without_a_second_welcome_grant(
    store: Store, clock: FakeClock
) -> None:
    app = build_app(store, clock, sif_welcome_grant=3)
    assert (await ask(app, "ann", "balance"))[0].startswith("Your balance: 3.00 SIF")
    await ask(app, "ann", "forget confirm")
    again = await ask(app, "ann", "balance")
    assert again[0].startswith("Your balance: 0.00 SIF")  # new, and no second grant
    assert (await ask(app, "bob", "balance"))[0].startswith("Your balance: 3.00 SIF")
    assert await balances(app, "ann", "bob") == {"network": -300, "escrow": 0, "ann": 0, "bob": 300}
    await ask(app, "ann", "forget confirm")  # a second cycle prints no SIF either
    assert (await ask(app, "ann", "balance"))[0].startswith("Your balance: 0.00 SIF")
    after = await state(app)
    assert after["invariants"] == []
    assert [b.name for b in after["balances"]].count("ann") == 1
    assert len([b for b in after["balances"] if b.name.startswith("former member")]) == 2


async def test_held_sif_and_open_reviews_are_refused_and_nothing_changes(app: App) -> None:
    await with_idea(app, "ann")
    await app.bot.handle(said("bob", "expertise add finance:3"))
    await app.bot.handle(said("staff", "availability 0"))
    await app.bot.handle(said("ann", "request I-1 review"))
    await app.bot.handle(said("bob", "accept R-1"))
    assert await balances(app, "ann") == {"network": 0, "escrow": 200, "ann": -200}
    before = await state(app)
    for who in ("ann", "bob"):  # the requester, whose SIF is held; the reviewer at work
        answer = await ask(app, who, "forget confirm")
        assert answer == ["Finish or cancel R-1 first; then `forget` can erase your data."]
    assert await state(app) == before


async def test_open_offers_of_a_forgotten_peer_pass_on_to_others(app: App) -> None:
    await with_idea(app, "ann")
    for peer in ("bob", "cleo"):
        await app.bot.handle(said(peer, "expertise add finance:3"))
    await app.bot.handle(said("staff", "availability 0"))
    await app.bot.handle(said("ann", "request I-1 review"))
    assert (await ask(app, "bob", "forget confirm"))[0].startswith("Done: your data is erased.")
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        request = await uow.requests.by_number(community.id, 1)
        assert request is not None and request.status.is_open
        offers = {o.peer_name: o.status for o in await uow.requests.offers(request.id)}
    assert offers.pop("cleo") is OfferStatus.OFFERED
    assert list(offers.values()) == [OfferStatus.DECLINED]  # bob's, under his new name
    assert (await ask(app, "cleo", "accept R-1"))[0].startswith("You accepted R-1")


async def _outbox_rows(app: App) -> list[Any]:
    async with app.engine.connect() as conn:
        return list(await conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id)))


async def test_forget_erases_the_persons_texts_from_the_outbox_and_the_ledger(
    app: App, clock: FakeClock
) -> None:
    await with_idea(app, "ann")
    await app.bot.handle(said("bob", "balance"))
    await app.bot.handle(said("staff", "grant @ann 2 welcome ann"))
    await app.bot.handle(said("ann", "mydata"))  # a file with all her answers
    await app.bot.handle(said("staff", "export members"))  # a file with her name
    messenger(app).fail_next = 1  # the platform is down: the introduction waits
    await app.bot.handle(said("ann", "intro @bob I-1 she knows grants"))
    written = [r for r in await _outbox_rows(app) if r.to == "bob" and r.sent_at is None]
    assert len(written) == 1 and "ann would like to introduce you" in written[0].text

    done = await app.bot.handle(said("ann", "forget confirm"))
    assert done[0].text.startswith("Done: your data is erased.")
    words = ["ann", "Repair café network"]
    for row in await _outbox_rows(app):
        said_there = row.text + json.dumps(row.parts, ensure_ascii=False)
        assert not mentions(said_there, words), row
        assert '"file"' not in json.dumps(row.parts) or row.sent_at is None
    to_ann = [r for r in await _outbox_rows(app) if r.to == "ann"]
    assert [r.text for r in to_ann] == [done[0].text]  # only the goodbye keeps her address
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        reasons = [e["reason"] for e in await uow.ledger.entries(community.id)]
        assert reasons and not any(mentions(r, words) for r in reasons)

    messenger(app).clear()
    clock.advance(seconds=30)
    await app.relay.flush()  # the introduction still goes out, without her name
    to_bob = messenger(app).to("bob")
    assert len(to_bob) == 1 and to_bob[0].startswith("former member ")
    assert "(removed on request)" in to_bob[0] and not mentions(to_bob[0], words)
