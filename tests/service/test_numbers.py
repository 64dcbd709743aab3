"""One definition per figure (issue 18, finding 9): SIF in circulation is the sum of
positive balances in `stats`, the digest and the metrics alike; escrow is what is held
now; a window of n days shows n dates; a message with a long review is read."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.app.handlers.stats import compute_stats, window_start
from bot.bootstrap import App
from tests.fakes import FakeClock, said
from tests.service.test_routing_flow import messenger, setup_network


def gauge(app: App, name: str) -> float:
    text = app.bot.metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no {name} in {text}")


async def test_circulation_is_the_sum_of_positive_balances_everywhere(
    app: App, clock: FakeClock
) -> None:
    await setup_network(app)  # ann has 5 SIF granted
    bot = app.bot
    await bot.handle(said("staff", "adjust @ann -6 correction"))  # ann -1, the network +1
    await bot.handle(said("dan", "balance"))
    await bot.handle(said("ann", "request I-1 review"))
    await bot.handle(said("bob", "accept R-1"))  # ann -3, 2 held
    await bot.handle(said("bob", "done R-1 1 fine"))
    await bot.handle(said("ann", "thanks R-1"))  # bob +2
    await bot.handle(said("staff", "stats 7", channel="staff"))
    text = messenger(app).sent[-1].text
    # members hold 2 (bob); ann's -3 is credit, not money in circulation; the network's
    # net grant is 5 - 6 = -1
    assert "SIF in circulation (the sum of positive balances): 2.00 SIF" in text
    assert "granted by the network (net of corrections): -1.00 SIF" in text
    assert "held in escrow now: 0.00 SIF" in text
    await bot.metrics.refresh(bot.uow_factory, scheduler_alive=False)
    assert gauge(app, "sif_sif_in_circulation") == 2.0
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        result = await compute_stats(uow, ann.community, clock.now(), 7)
    assert (result.circulation, result.granted, result.escrow) == (200, -100, 0)


async def test_a_window_of_n_days_is_n_calendar_dates(app: App, clock: FakeClock) -> None:
    await setup_network(app)
    now = clock.now()
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        for days in (1, 7, 30):
            result = await compute_stats(uow, ann.community, now, days)
            assert len(result.series.days) == days
            assert result.series.days[-1] == now.date()
            assert result.since == window_start(now, days)
            assert result.since.date() == now.date() - timedelta(days=days - 1)
            assert result.since.hour == 0 and result.since.minute == 0
        weekly = await compute_stats(uow, ann.community, now, 91)
        assert len(weekly.series.days) == 13 and weekly.series.days[0] == weekly.since.date()


async def test_a_review_longer_than_a_message_is_read_and_a_huge_one_says_why(
    app: App,
) -> None:
    await setup_network(app)
    bot, out = app.bot, messenger(app)
    await bot.handle(said("ann", "request I-1 review"))
    await bot.handle(said("bob", "accept R-1"))
    await bot.handle(said("bob", "done R-1 2 " + "word " * 3000))  # 15,000 characters
    refusal = out.to("bob")[-1]
    assert "too long (15,011 characters; its text may have at most 12,000)" in refusal
    assert "shared document" in refusal
    await bot.handle(said("ann", "hello " * 1000))  # 6,000 characters, no long text
    assert "the most is 4,000, or 12,000 for a review's feedback with `done`" in out.to("ann")[-1]
    review = "word " * 2300  # 11,500 characters
    await bot.handle(said("bob", f"done R-1 2 {review}"))
    assert out.to("bob")[-1].startswith("Delivered R-1")
    delivered = next(m for m in out.to("ann") if m.startswith("bob delivered R-1"))
    assert review.strip() in delivered
