"""Only peers are offered reviews (SPEC §1): members who opted in with expertise and take
reviews (availability above 0), staff on the same terms. Every round follows the rule, the
sweeps' too; with no peer left the request goes to staff."""

from __future__ import annotations

import pytest

from bot.app.jobs import sweep_offers
from bot.bootstrap import App
from tests.conftest import Store, build_app
from tests.fakes import FakeClock, RecordingMessenger, said

IDEA = {"title": "Repair café", "summary": "Repair cafés.", "help": ["finance"]}


@pytest.fixture
def app(store: Store, clock: FakeClock) -> App:
    # one peer a round, so each round shows whom it picked
    return build_app(store, clock, sif_fanout=1, sif_max_rounds=6, sif_offer_ttl_hours=12)


def offered(out: RecordingMessenger) -> list[str]:
    return [m.to for m in out.sent if m.topic == "offer"]


async def test_every_round_offers_peers_only_then_staff_are_asked(
    app: App, clock: FakeClock
) -> None:
    bot = app.bot
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    await bot.handle(said("ann", "hello"))  # the innovator, at the welcome menu
    await bot.handle(said("dan", "hello"))  # a newcomer
    await bot.handle(said("staff", "tags"))  # staff who never opted in
    await bot.handle(said("eve", "availability 3"))  # availability alone is no opt-in
    assert "review offers come once you add expertise" in out.to("eve")[-1]
    await bot.handle(said("hal", "expertise add finance:2"))
    await bot.handle(said("hal", "expertise remove finance"))  # opted out again
    assert "no expertise left, so you get no review offers" in out.to("hal")[-1]
    await bot.handle(said("ivy", "expertise add finance:1"))
    await bot.handle(said("ivy", "availability 0"))
    await bot.handle(said("bob", "expertise add finance:3"))
    await bot.handle(said("cleo", "expertise add legal:1"))  # a peer, other expertise
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, IDEA["title"], IDEA, clock.now())
        await uow.commit()
    out.clear()
    await bot.handle(said("ann", "request I-1 review"))
    for _ in range(3):  # each offer expires and the sweep makes the next round
        clock.advance(hours=12)
        await sweep_offers(bot.uow_factory, bot.settings, clock, app.relay)
    assert offered(out) == ["bob", "cleo"]
    escalation = next(m.text for m in out.sent if m.topic == "escalated")
    assert escalation.startswith("Escalation: R-1") and "no eligible peer is left" in escalation
