"""Every message says what it is: a topic and, for one request or idea, its subject.

Tools (the simulator, the load benchmark) follow a request by these alone, so the story
of a request must be told by them without reading a word of the text.
"""

from __future__ import annotations

from bot.app.jobs import sweep_offers
from bot.bootstrap import App
from bot.messages import Delivery
from tests.conftest import Store
from tests.fakes import FakeClock, RecordingMessenger, said
from tests.service.test_routing_flow import ONE_AT_A_TIME, build_app, setup_network


def told(out: RecordingMessenger, who: str) -> list[tuple[str, str | None]]:
    return [(m.topic, m.subject) for m in out.sent if m.to == who]


async def test_a_request_is_told_by_topics_and_subjects(store: Store, clock: FakeClock) -> None:
    app: App = build_app(store, clock, **ONE_AT_A_TIME)
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    bot = app.bot
    await setup_network(app)

    await bot.handle(said("ann", "request I-1 review"))
    assert told(out, "ann") == [("asked", "R-1")]
    assert told(out, "bob") == [("offer", "R-1")]
    await bot.handle(said("ann", "request I-1 review"))  # the same again: refused
    assert told(out, "ann")[-1] == ("duplicate-request", "R-1")
    await bot.handle(said("ann", "request I-1 advice"))  # a second one, cancelled below
    await bot.handle(said("ann", "cancel R-2"))
    assert told(out, "ann")[-1] == ("cancelled", "R-2")

    clock.advance(hours=13)  # half the offer's time: a reminder
    await sweep_offers(bot.uow_factory, bot.settings, clock, app.relay)
    assert ("offer.reminder", "R-1") in told(out, "bob")
    clock.advance(hours=12)  # the offer expired: it moves on to cleo
    await sweep_offers(bot.uow_factory, bot.settings, clock, app.relay)
    assert ("offer.expired", "R-1") in told(out, "bob")
    assert ("offer", "R-1") in told(out, "cleo")

    await bot.handle(said("bob", "accept R-1"))  # no longer offered to bob
    assert told(out, "bob")[-1] == ("offer-gone", "R-1")
    await bot.handle(said("cleo", "accept R-1"))
    assert told(out, "cleo")[-1] == ("accepted", "R-1")
    assert told(out, "ann")[-1] == ("request.accepted", "R-1")
    await bot.handle(said("cleo", "done R-1 2 Test the income plan with a pilot."))
    assert told(out, "cleo")[-1] == ("delivered", "R-1")
    assert told(out, "ann")[-1] == ("request.delivered", "R-1")

    clock.advance(days=8)  # nobody thanked: paid automatically
    await sweep_offers(bot.uow_factory, bot.settings, clock, app.relay)
    assert told(out, "ann")[-1] == ("request.paid-automatically", "R-1")
    assert told(out, "cleo")[-1] == ("request.paid", "R-1")
    await bot.handle(said("ann", "thanks R-1 5"))
    assert told(out, "ann")[-1] == ("refused", "R-1")
    await bot.handle(said("ann", "thanks R-99 5"))
    assert told(out, "ann")[-1] == ("unknown-request", None)


async def test_escalations_reach_staff_as_escalated(store: Store, clock: FakeClock) -> None:
    app: App = build_app(store, clock, **ONE_AT_A_TIME, sif_staff_channel="staff")
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    bot = app.bot
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review legal"))
    for _ in range(ONE_AT_A_TIME["sif_max_rounds"]):  # every round's peer declines
        offered = [m.to for m in out.sent if (m.topic, m.subject) == ("offer", "R-1")]
        await bot.handle(said(offered[-1], "decline R-1 not my field"))
    posts = [(m.topic, m.subject) for m in out.sent if m.delivery is Delivery.CHANNEL]
    assert posts == [("escalated", "R-1")]
    assert told(out, "ann")[-1] == ("request.escalated", "R-1")
    await bot.handle(said("staff", "assign R-1 @bob", channel="staff"))
    assert told(out, "bob")[-1] == ("offer", "R-1")
