"""The weekly staff digest and the `stats` chart, through the core with a fake clock."""

from __future__ import annotations

import re

from bot.app.charts import stats_chart
from bot.app.digest import weekly_digest
from bot.app.handlers.stats import compute_stats
from bot.bootstrap import App
from bot.domain.ledger import format_sif
from bot.messages import Delivery, Outbound
from tests.fakes import FakeClock, said
from tests.service.test_routing_flow import messenger, offered_to, setup_network

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def digests(app: App) -> list[Outbound]:
    return [
        m
        for m in messenger(app).sent
        if m.delivery is Delivery.CHANNEL and m.to == "staff" and m.text.startswith("Weekly digest")
    ]


async def run_digest(app: App, clock: FakeClock, keys: list[str] | None = None) -> int:
    return await weekly_digest(app.bot.uow_factory, app.bot.settings, clock, app.relay, keys)


async def activity(app: App, clock: FakeClock) -> None:
    """R-1 reviewed and paid on the first day; R-2 opened (and left waiting) on the next."""
    bot = app.bot
    await setup_network(app)
    await bot.handle(said("ann", "request I-1 review"))  # R-1 → bob
    await bot.handle(said("bob", "decline R-1 busy"))  # → cleo
    clock.advance(hours=3)
    await bot.handle(said("cleo", "accept R-1"))
    clock.advance(hours=5)
    await bot.handle(said("cleo", "done R-1 2 Good plan."))
    await bot.handle(said("ann", "thanks R-1 4"))
    clock.advance(days=1)
    await bot.handle(said("ann", "request I-1 advice legal"))  # R-2 → dan, who never answers


async def stats_reply(app: App, days: int) -> Outbound:
    await app.bot.handle(said("staff", f"stats {days}", channel="staff"))
    return messenger(app).sent[-1]


async def test_stats_attaches_a_chart_of_the_same_numbers(app: App, clock: FakeClock) -> None:
    await activity(app, clock)
    reply = await stats_reply(app, 30)
    assert reply.delivery is Delivery.CHANNEL and reply.to == "staff"  # where it was asked
    assert "Requests: 2 opened, 1 accepted, 1 delivered, 1 confirmed, 0 escalated." in reply.text
    assert (
        "Moved in these 30 days: 2.00 SIF into escrow as peers accepted, 2.00 SIF paid out "
        "to peers." in reply.text
    )
    assert "held in escrow now: 0.00 SIF." in reply.text  # R-1 was paid out
    chart = reply.file
    assert chart is not None
    assert chart.filename == "sif-stats-20260303.png" and chart.mimetype == "image/png"
    assert chart.content.startswith(PNG_SIGNATURE)

    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        assert community is not None
        result = await compute_stats(uow, community.id, clock.now(), 30)
    # the attachment is exactly the chart of these numbers...
    assert chart.content == stats_chart(result.chart_data(community.name))
    # ...and the per-day numbers add up to the text's counts
    counts = re.search(
        r"Requests: (\d+) opened, (\d+) accepted, (\d+) delivered, (\d+) confirmed", reply.text
    )
    assert counts is not None
    series = result.series
    sums = (sum(series.opened), sum(series.accepted), sum(series.delivered))
    assert (*sums, sum(series.confirmed)) == tuple(int(n) for n in counts.groups())
    assert (sum(series.held), sum(series.released)) == (200, 200)
    assert len(series.days) == 30  # 30 calendar days, today included
    by_day = {day.isoformat(): n for day, n in zip(series.days, series.opened, strict=True)}
    assert by_day["2026-03-02"] == 1 and by_day["2026-03-03"] == 1
    released = dict(zip(series.days, series.released, strict=True))
    assert released[series.days[-2]] == 200  # paid out on the first day, not today


async def test_weekly_digest_once_per_week_with_stuck_disputes_and_limits(
    app: App, clock: FakeClock
) -> None:
    bot, out = app.bot, messenger(app)
    # the rules this story was written for: one peer per round, offers for a day
    bot.settings = bot.settings.model_copy(
        update={"sif_fanout": 1, "sif_max_rounds": 3, "sif_offer_ttl_hours": 24}
    )
    await activity(app, clock)
    stats_text = (await stats_reply(app, 7)).text

    assert await run_digest(app, clock) == 1
    assert await run_digest(app, clock) == 0  # a second run, or a second process: no repeat
    assert await run_digest(app, clock, ["console"]) == 0
    [first] = digests(app)
    assert first.text.startswith("Weekly digest for Social Innovation Factory, week 2026-W10.")
    for line in stats_text.splitlines():  # the same figures as `stats 7`
        assert line in first.text
    assert first.file is not None
    assert first.file.content.startswith(PNG_SIGNATURE)
    assert first.file.mimetype == "image/png"
    assert "Stuck requests (open for more than 2 days): 0" in first.text
    assert "Disputes waiting: 0" in first.text
    limit = app.settings.credit_limit
    assert f"credit limit ({format_sif(limit)}): 0" in first.text

    # The next week: R-2 is still waiting, R-3 is disputed, cleo is near the limit.
    clock.advance(days=3)
    # feedback: R-2 still asks for advice, and an idea has one open request of each kind
    await bot.handle(said("ann", "request I-1 feedback finance"))
    peer = offered_to(out, "R-3")
    await bot.handle(said(peer, "accept R-3"))
    await bot.handle(said("ann", "dispute R-3 never heard back"))
    near = format_sif(limit - 150).removesuffix(" SIF")  # cleo has 2.00: ends 0.50 above
    await bot.handle(said("staff", f"adjust @cleo {near} correction"))
    clock.advance(days=4)
    assert await run_digest(app, clock) == 1
    assert await run_digest(app, clock) == 0
    first_again, second = digests(app)
    assert first_again == first
    assert "week 2026-W11." in second.text
    assert second.file is not None and second.file.filename.endswith("0310.png")
    assert "Stuck requests (open for more than 2 days): 1" in second.text
    assert "• R-2 (advice of I-1, open 7.0 days): round 1, waiting for dan to answer" in second.text
    assert "Disputes waiting: 1" in second.text
    assert f"• R-3 (feedback of I-1), ann vs {peer}: never heard back" in second.text
    assert (
        f"credit limit ({format_sif(limit)}): 1\n• cleo: balance {format_sif(limit + 50)}"
        in second.text
    )
    # the digest's figures are those of `stats 7` at the same moment
    for line in (await stats_reply(app, 7)).text.splitlines():
        assert line in second.text
