"""Requests through the core with a fake clock: offers, cascades, escalation, escrow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app.jobs import sweep_offers
from bot.bootstrap import App
from bot.domain.ledger import ESCROW, AccountKey
from bot.domain.records import Role
from tests.conftest import Store, build_app
from tests.fakes import FakeClock, RecordingMessenger, said

# The flows below walk through one offer at a time: one peer per round, 24 h to answer,
# three rounds, a -10 SIF credit limit. They test the mechanics, not the default rules.
ONE_AT_A_TIME = {
    "sif_fanout": 1,
    "sif_offer_ttl_hours": 24,
    "sif_max_rounds": 3,
    "sif_credit_limit": -10,
}

IDEA = {
    "title": "Repair café network",
    "summary": "Volunteer-run repair cafés in every neighbourhood.",
    "help": ["finance"],
    "language": {"choices": ["English"], "note": ""},
}


@pytest.fixture
def app(store: Store, clock: FakeClock) -> App:
    return build_app(store, clock, **ONE_AT_A_TIME)


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def setup_network(app: App) -> None:
    """staff (not reviewing), ann with idea I-1 and 5 SIF, peers bob, cleo, dan."""
    bot = app.bot
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("bob", "expertise add finance:3"))
    await bot.handle(said("cleo", "expertise add finance:2"))
    await bot.handle(said("dan", "expertise add legal:1"))
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, IDEA["title"], IDEA, bot.clock.now())
        await uow.commit()
    messenger(app).clear()


async def balances(app: App) -> dict[str, int]:
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        cid = ann.community
        result = {"escrow": await uow.ledger.balance(cid, ESCROW)}
        for name in ("ann", "bob", "cleo", "dan"):
            member = await uow.members.by_identity("console", name)
            assert member is not None
            result[name] = await uow.ledger.balance(cid, AccountKey.of(member.id))
        assert await uow.ledger.check_invariants(cid) == []
        return result


def offered_to(out: RecordingMessenger, ref: str) -> str:
    return next(m.to for m in reversed(out.sent) if m.text.startswith(f"Can you help? {ref}:"))


def sweep(app: App, clock: FakeClock):  # type: ignore[no-untyped-def]
    return sweep_offers(app.bot.uow_factory, app.bot.settings, clock, app.relay)


async def test_decline_expiry_escalation_assign_and_auto_release(
    app: App, clock: FakeClock
) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))
    assert "Offered to 1 peer" in out.to("ann")[-1]
    offer = out.to("bob")[-1]
    assert offer.startswith("Can you help? R-1: review of I-1")
    assert "Why you: matches finance:3" in offer
    to_bob = [m for m in out.sent if m.to == "bob"][-1]
    assert [b.action for b in to_bob.buttons] == ["accept R-1", "decline R-1"]

    await bot.handle(said("bob", "decline R-1 too busy"))  # decline cascades
    assert "Why you: matches finance:2" in out.to("cleo")[-1]

    clock.advance(hours=12)  # reminder at half the TTL
    assert (await sweep(app, clock)).reminded == 1
    assert out.to("cleo")[-1].startswith("A reminder: R-1")
    assert (await sweep(app, clock)).reminded == 0

    clock.advance(hours=12)  # expiry cascades
    assert (await sweep(app, clock)).expired == 1
    assert "expired" in out.to("cleo")[-1]
    assert out.to("dan")[-1].startswith("Can you help? R-1")

    clock.advance(hours=24)  # third round over: escalation
    assert (await sweep(app, clock)).expired == 1
    staff_posts = [m.text for m in out.sent if m.to == "staff" and m.channel is None]
    assert any(
        p.startswith("Escalation: R-1") and "nobody accepted it in 3 rounds" in p
        for p in staff_posts
    )
    assert "staff have been asked" in out.to("ann")[-1]
    assert (await balances(app))["escrow"] == 0

    await bot.handle(said("staff", "assign R-1 @bob"))
    assert "chosen by staff" in out.to("bob")[-1]
    await bot.handle(said("bob", "accept R-1"))
    assert "You accepted R-1" in out.to("bob")[-1]
    assert "bob accepted R-1" in out.to("ann")[-1]
    assert await balances(app) == {"escrow": 200, "ann": 300, "bob": 0, "cleo": 0, "dan": 0}

    await bot.handle(said("bob", "done R-1 1.5 Start with a cost model per café."))
    assert "Start with a cost model per café." in out.to("ann")[-1]
    clock.advance(days=6, hours=23)
    assert (await sweep(app, clock)).released == 0
    clock.advance(hours=1)
    assert (await sweep(app, clock)).released == 1
    assert (await sweep(app, clock)).released == 0
    assert "paid automatically" in out.to("bob")[-1]
    assert await balances(app) == {"escrow": 0, "ann": 300, "bob": 200, "cleo": 0, "dan": 0}
    await bot.handle(said("bob", "balance"))
    assert "given 2.00 SIF in reviews" in out.to("bob")[-1]


async def test_by_default_three_peers_are_asked_at_once_and_the_first_to_accept_wins(
    store: Store, clock: FakeClock
) -> None:
    app = build_app(store, clock)  # the default rules
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))
    assert "Offered to 3 peers" in out.to("ann")[-1]
    until = f"before {clock.now() + timedelta(hours=12):%Y-%m-%d %H:%M} UTC"
    # Both finance peers qualify whatever their level; dan, without it, fills the third place.
    for name, why in (
        ("bob", "matches finance:3"),
        ("cleo", "matches finance:2"),
        ("dan", "matches none of finance"),
    ):
        offer = out.to(name)[-1]
        assert offer.startswith("Can you help? R-1:"), name
        assert f"Why you: {why}; 0 reviews in 90 days; never offered." in offer
        assert until in offer
    await bot.handle(said("cleo", "accept R-1"))
    assert "You accepted R-1" in out.to("cleo")[-1]
    for name in ("bob", "dan"):
        assert out.to(name)[-1] == "R-1 was taken by another peer; thanks anyway."


async def test_among_qualified_peers_fewer_recent_reviews_come_first_not_the_level(
    app: App, clock: FakeClock
) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 advice"))  # bob and cleo tie: member id
    assert offered_to(out, "R-1") == "bob"
    await bot.handle(said("bob", "accept R-1"))
    await bot.handle(said("bob", "done R-1 1 Start with ten households."))
    await bot.handle(said("ann", "thanks R-1"))
    clock.advance(days=3)  # bob's last offer is past the rest; only his review differs
    await bot.handle(said("ann", "request I-1 advice"))
    assert offered_to(out, "R-2") == "cleo"
    assert "Why you: matches finance:2; 0 reviews in 90 days; never offered." in out.to("cleo")[-1]
    await bot.handle(said("cleo", "decline R-2 travelling"))
    # bob is next: dan is free and idle but holds no finance expertise.
    assert offered_to(out, "R-2") == "bob"
    assert (
        "Why you: matches finance:3; 1 review in 90 days; last offer 3 days ago."
        in (out.to("bob")[-1])
    )


async def test_nobody_eligible_escalates_at_once(app: App) -> None:
    bot, out = app.bot, messenger(app)
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("ann", "balance"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, "Lonely idea", IDEA, bot.clock.now())
        await uow.commit()
    await bot.handle(said("ann", "request I-1 advice"))
    assert "staff have been asked to find one" in out.to("ann")[-1]
    posts = [m.text for m in out.sent if m.to == "staff" and m.channel is None]
    assert any("Escalation: R-1" in p and "no peer is eligible" in p for p in posts)


async def test_thanks_pays_once_and_cancel_refunds(app: App, clock: FakeClock) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))
    await bot.handle(said("bob", "accept R-1"))
    await bot.handle(said("bob", "done R-1 2 Looks solid."))
    await bot.handle(said("ann", "thanks R-1 5 very useful"))
    assert "2.00 SIF paid to bob" in out.to("ann")[-1]
    assert "(5/5)" in out.to("bob")[-1] and "very useful" in out.to("bob")[-1]
    await bot.handle(said("ann", "thanks R-1"))
    assert "You already confirmed R-1" in out.to("ann")[-1]
    assert await balances(app) == {"escrow": 0, "ann": 300, "bob": 200, "cleo": 0, "dan": 0}

    await bot.handle(said("ann", "request I-1 advice"))
    peer = offered_to(out, "R-2")
    await bot.handle(said(peer, "accept R-2"))
    assert (await balances(app))["escrow"] == 100
    await bot.handle(said("ann", "cancel R-2"))
    assert "1.00 SIF was refunded" in out.to("ann")[-1]
    assert "cancelled R-2" in out.to(peer)[-1]
    assert await balances(app) == {"escrow": 0, "ann": 300, "bob": 200, "cleo": 0, "dan": 0}

    await bot.handle(said("ann", "request I-1 feedback"))  # R-3, cancelled while open
    await bot.handle(said("ann", "cancel R-3"))
    assert "nothing was charged" in out.to("ann")[-1]
    assert await balances(app) == {"escrow": 0, "ann": 300, "bob": 200, "cleo": 0, "dan": 0}


async def test_dispute_and_resolution(app: App) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    for number, outcome in ((1, "refund"), (2, "pay")):
        await bot.handle(said("ann", "request I-1 advice"))
        peer = offered_to(out, f"R-{number}")
        await bot.handle(said(peer, f"accept R-{number}"))
        await bot.handle(said(peer, f"done R-{number} 1 Some advice."))
        await bot.handle(said("ann", f"dispute R-{number} not what I asked"))
        posts = [m.text for m in out.sent if m.to == "staff" and m.channel is None]
        assert any(p.startswith(f"Dispute on R-{number}") for p in posts)
        await bot.handle(said("staff", f"resolve R-{number} {outcome} checked with both"))
        assert f"Resolved R-{number}" in out.to("staff")[-1]
    result = await balances(app)
    assert result["escrow"] == 0 and result["ann"] == 400
    assert result["bob"] + result["cleo"] + result["dan"] == 100


async def test_bad_input_changes_nothing(app: App) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))  # offered to bob
    before = await balances(app)
    cases = [
        ("cleo", "accept R-1", "R-1 was not offered to you"),
        ("cleo", "done R-1 1 text", "You are not the reviewer of R-1"),
        ("ann", "thanks R-1", "R-1 is open; thanks is for a delivered review"),
        ("bob", "request I-1 review", "I-1 is not your idea"),
        ("bob", "accept R-9", "There is no request R-9 here"),
        ("bob", "cancel R-1", "R-1 is not your request"),
        ("ann", "request I-2", "There is no idea I-2 here"),
        ("ann", "request I-1 review astrology", "'astrology' is not one of this community's tags"),
        ("ann", "resolve R-1 pay", "`resolve` is for staff only"),
        ("staff", "resolve R-1 pay", "R-1 is open, not disputed"),
    ]
    for who, text, fragment in cases:
        out.clear()
        await bot.handle(said(who, text))
        replies = out.to(who)
        assert len(replies) == 1 and fragment in replies[0], (text, replies)
    assert await balances(app) == before
    await bot.handle(said("bob", "accept R-1"))
    await bot.handle(said("bob", "accept R-1"))
    assert "You already accepted R-1" in out.to("bob")[-1]
    await bot.handle(said("bob", "done R-1 1 ok"))
    await bot.handle(said("bob", "done R-1 1 ok"))
    assert "R-1 is delivered, not waiting for delivery" in out.to("bob")[-1]


async def test_a_request_past_the_credit_limit_is_refused(app: App) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("staff", "adjust @ann -13 correction"))  # 5 - 13 = -8
    await bot.handle(said("ann", "request I-1 advice"))  # 1 SIF promised: -9 is fine
    await bot.handle(said("ann", "request I-1 review"))  # 2 more would reach -11
    refusal = out.to("ann")[-1]
    assert "A review costs 2.00 SIF, but your balance is -8.00 SIF" in refusal
    assert "1.00 SIF promised to open requests" in refusal
    assert "the credit limit is -10.00 SIF" in refusal
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        assert len(await uow.requests.of_member(ann.id)) == 1


async def test_stats_counts_requests_times_circulation_and_gaps(app: App, clock: FakeClock) -> None:
    bot, out = app.bot, messenger(app)
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))  # R-1 → bob
    await bot.handle(said("bob", "decline R-1 busy"))  # → cleo
    clock.advance(hours=3)
    await bot.handle(said("cleo", "accept R-1"))
    clock.advance(hours=5)
    await bot.handle(said("cleo", "done R-1 2 Good plan."))
    await bot.handle(said("ann", "thanks R-1 4"))
    await bot.handle(said("ann", "request I-1 advice legal design"))  # dan (legal)
    await bot.handle(said("staff", "stats", channel="staff"))
    text = out.sent[-1].text
    assert out.sent[-1].to == "staff" and out.sent[-1].channel is None  # posted in the channel
    assert "Requests: 2 opened, 1 accepted, 1 delivered, 1 confirmed, 0 escalated." in text
    assert "Offers answered: 2; acceptance rate 50% (only 2 answers, too few to judge)." in text
    assert (
        "Time to accept: half within 3.0 h, 9 in 10 within 3.0 h (only 1 request, too few to "
        "judge). Time to deliver: half within 5.0 h" in text
    )
    assert "SIF in circulation (the sum of positive balances): 5.00 SIF; granted by" in text
    assert "Busiest peers (reviews delivered): cleo (1)." in text
    assert "Peers never asked: none." in text  # bob, cleo and dan were all offered one
    assert "Tags with no peer to review them: design." in text
    await bot.handle(said("ann", "stats"))
    assert "`stats` is for staff only" in out.to("ann")[-1]


async def test_history_names_requests_by_their_number(app: App) -> None:
    """Request numbers are per community; database ids are not (another community's
    request, or a rolled-back one, takes an id), and history must show the number."""
    bot, out = app.bot, messenger(app)
    now = bot.clock.now()
    async with bot.uow_factory() as uow:
        other = await uow.communities.get_or_create("slack:TOTHER", "Other", ["finance"], now)
        zoe = await uow.members.create(other.id, "zoe", Role.MEMBER, "slack", "TOTHER:U1", now)
        idea = await uow.ideas.create(other.id, zoe.id, IDEA["title"], IDEA, now)
        await uow.requests.create(other.id, idea.id, zoe.id, "review", 200, ["finance"], now)
        await uow.commit()
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))
    await bot.handle(said("bob", "accept R-1"))
    await bot.handle(said("ann", "history"))
    assert "hold R-1 -2.00 SIF" in out.to("ann")[-1]


async def test_warming_reads_each_community_ahead_of_the_first_request(app: App) -> None:
    await app.bot.handle(said("ann", "expertise add finance:2"))
    factory = app.bot.uow_factory
    peers = getattr(factory, "peers", None)
    if peers is None:
        pytest.skip("the store keeps no peer tables")
    peers.communities.clear()
    await app.bot.warm()
    assert [len(cached.table) for cached in peers.communities.values()] == [1]
