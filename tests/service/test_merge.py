"""Staff `merge`: two members of one person become one, after a confirmation; the balance
moves by a ledger transfer, open offers follow the person, and every refusal changes
nothing. Also `link`, which points to `merge` when a code cannot join two accounts."""

from __future__ import annotations

import re

from bot.bootstrap import App
from bot.domain.ledger import AccountKey
from bot.domain.records import OfferStatus
from tests.fakes import FakeClock, RecordingMessenger, said

IDEA = {"title": "Repair café", "summary": "Repair cafés.", "help": ["finance"]}


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def snapshot(app: App) -> tuple[object, ...]:
    async with app.bot.uow_factory() as uow:
        staff = await uow.members.by_identity("console", "staff")
        assert staff is not None
        cid = staff.community
        members = await uow.members.all(cid)
        requests = await uow.requests.all(cid)
        offers = [await uow.requests.offers(r.id) for r in requests]
        return (
            tuple((m.name, m.role, m.identities) for m in members),
            tuple(await uow.ledger.all_balances(cid)),
            tuple(requests),
            tuple(o for some in offers for o in some),
        )


async def test_link_points_to_merge_and_merge_joins_the_accounts(
    app: App, clock: FakeClock
) -> None:
    bot, out = app.bot, messenger(app)
    await bot.handle(said("ann", "expertise add finance:1"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    await bot.handle(said("ann-work", "expertise add legal:3"))  # ann's other account
    await bot.handle(said("staff", "grant @ann-work 2 event prize"))
    await bot.handle(said("ann", "link"))
    code = re.search(r"link code is ([A-Z0-9]{8})", out.to("ann")[-1])
    assert code is not None
    await bot.handle(said("ann-work", f"link {code.group(1)}"))
    assert out.to("ann-work")[-1] == (
        "This account already has its own SIF history, so a code cannot join it; ask staff "
        "to join the two accounts with `merge @member @member`."
    )
    before = await snapshot(app)
    await bot.handle(said("staff", "merge @ann @ann-work"))
    ask = out.to("staff")[-1]
    assert ask.startswith(
        "Merging ann-work into ann: ann-work's chat accounts (console:ann-work), balance 2.00 SIF"
    )
    confirm = [m for m in out.sent if m.to == "staff"][-1]
    assert [b.action for b in confirm.buttons] == ["merge confirm @ann @ann-work"]
    assert await snapshot(app) == before  # nothing happens before the confirmation
    clock.advance(minutes=1)
    await bot.handle(said("staff", "merge confirm @ann @ann-work"))
    assert out.to("staff")[-1].startswith("Merged ann-work into ann:")
    assert "Staff joined your two accounts" in out.to("ann")[-1]
    await bot.handle(said("ann-work", "balance"))
    assert out.to("ann-work")[-1].startswith("Your balance: 7.00 SIF")
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann-work")
        assert ann is not None and ann.name == "ann"
        assert [i.external_id for i in ann.identities] == ["ann", "ann-work"]
        assert [(e.tag, e.level) for e in await uow.members.expertise(ann.id)] == [
            ("finance", 1),
            ("legal", 3),
        ]
        names = sorted(m.name for m in await uow.members.all(ann.community))
        assert names == ["ann", "merged member 3", "staff"]
        assert await uow.ledger.check_invariants(ann.community) == []


async def test_refused_merges_change_nothing(app: App, clock: FakeClock) -> None:
    bot, out = app.bot, messenger(app)
    for name in ("ann", "bob"):
        await bot.handle(said(name, "balance"))
    await bot.handle(said("staff", "adjust @ann -15 advance for an event"))
    await bot.handle(said("staff", "adjust @bob -10 advance for an event"))
    before = await snapshot(app)
    for text, refusal in (
        ("merge @ann @ann", "ann and ann are the same member; name two members to merge."),
        ("merge confirm @ann @staff", "ann is member and staff is admin; merging never"),
        # -15 and -10 make -25, past the -20 credit limit: the transfer is refused whole
        ("merge confirm @ann @bob", "That would take ann's balance from -15.00 SIF to -25.00"),
        ("merge @ann", "`merge` needs more"),
    ):
        clock.advance(seconds=5)
        await bot.handle(said("staff", text))
        assert out.to("staff")[-1].startswith(refusal), out.to("staff")[-1]
    await bot.handle(said("ann", "merge @ann @bob"))
    assert out.to("ann")[-1].startswith("`merge` is for staff only")
    assert await snapshot(app) == before


async def test_an_open_offer_of_the_second_account_follows_the_person(
    app: App, clock: FakeClock
) -> None:
    bot, out = app.bot, messenger(app)
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("bob", "balance"))  # bob's first account: no expertise, no offers
    await bot.handle(said("bob2", "expertise add finance:2"))
    await bot.handle(said("cleo", "expertise add finance:3"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, IDEA["title"], IDEA, clock.now())
        await uow.commit()
    await bot.handle(said("ann", "request I-1 review"))
    assert any(m.startswith("Can you help? R-1") for m in out.to("bob2"))
    await bot.handle(said("staff", "merge confirm @bob @bob2"))
    assert out.to("staff")[-1].startswith("Merged bob2 into bob:")
    await bot.handle(said("bob", "accept R-1"))  # bob2's offer is bob's now
    assert out.to("bob")[-1].startswith("You accepted R-1")
    async with bot.uow_factory() as uow:
        bob = await uow.members.by_identity("console", "bob2")
        assert bob is not None and bob.name == "bob"
        request = await uow.requests.by_number(bob.community, 1)
        assert request is not None and request.peer == bob.id
        offer = await uow.requests.offer_for(request.id, bob.id)
        assert offer is not None and offer.status is OfferStatus.ACCEPTED
        assert await uow.ledger.balance(bob.community, AccountKey.of(bob.id)) == 0
        assert await uow.ledger.check_invariants(bob.community) == []
