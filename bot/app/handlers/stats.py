"""`stats [days]`: how the network is doing, for staff (SPEC §3), as text and a chart.

The figures come from :func:`compute_stats`, a plain function over a unit of work,
so the weekly staff digest (bot.app.digest) reports exactly what `stats 7` would.

Each figure has one definition, said in its label, and the metrics and the simulator use
the same ones: *SIF in circulation* is the sum of the members' positive balances (what
they hold and can spend); *granted by the network* is what the network account issued,
net of corrections; *held in escrow now* is the escrow account's balance; what *moved*
into escrow or was paid out is summed over the window. The window is whole calendar
days (UTC), today included: `stats 7` covers today and the 6 days before, and its chart
shows those 7 dates.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from babel import Locale
from babel.numbers import format_percent

from bot.app.charts import ChartData, stats_chart
from bot.app.context import Context, Handlers
from bot.commands import Stats
from bot.domain.ids import CommunityId
from bot.domain.ledger import ESCROW, NETWORK, EntryKind
from bot.domain.records import OfferStatus, RequestStatus
from bot.i18n import N_, _, current, ngettext, number, sif
from bot.messages import File, plain
from bot.ports import UnitOfWork

BUSIEST = 3
# Fewer durations or answers than this and a median or a rate says little: the reply says so.
TOO_FEW = 5
# Up to two months one point per day reads well; longer windows get one per week.
DAILY_UP_TO_DAYS = 62
# What `compute_stats` says when there is nothing to rank yet (translated in `lines`).
NONE_YET = N_("none yet")


handlers = Handlers()


@dataclass(frozen=True)
class StatsResult:
    """What `stats` reports, computed once for the text, the chart and the digest."""

    days: int
    since: datetime
    now: datetime
    opened: int
    accepted: int
    delivered: int
    confirmed: int
    escalated: int
    answered: int
    acceptance_rate: str
    accept_median: str
    accept_p90: str
    deliver_median: str
    deliver_p90: str
    circulation: int  # the sum of positive member balances, now
    released: int  # SIF paid out to peers in the window
    held: int  # SIF moved into escrow in the window (a flow, not what is held now)
    share_both: str
    busiest: str
    never_asked: tuple[str, ...]
    top_tags: str
    gaps: tuple[str, ...]
    series: ChartData  # community and window are filled in by chart_data()
    introductions: int = 0
    # requests crossing factories in the window: sent to partners, reviewed for them
    sent_out: int = 0
    hosted: int = 0
    granted: int = 0  # what the network account issued, net of corrections, now
    escrow: int = 0  # held in escrow now
    delivery_times: int = 0  # how many requests `deliver_median` is of

    def lines(self) -> list[str]:
        """The text reply, one figure group per line, in the language being written."""
        never = self.never_asked
        days = number(self.days)
        if 0 < self.answered < TOO_FEW:
            answered = ngettext(
                "Offers answered: {count}; acceptance rate {rate} (only {count} answer, too few "
                "to judge).",
                "Offers answered: {count}; acceptance rate {rate} (only {count} answers, too "
                "few to judge).",
                self.answered,
            )
        else:
            answered = _("Offers answered: {count}; acceptance rate {rate}.")
        accept = _times("accept", self.accept_median, self.accept_p90, self.accepted)
        deliver = _times("deliver", self.deliver_median, self.deliver_p90, self.delivery_times)
        if len(never) > 10:
            never_line = _("Peers never asked: {names} and {count} more.").format(
                names=", ".join(never[:10]), count=number(len(never) - 10)
            )
        else:
            never_line = _("Peers never asked: {names}.").format(
                names=", ".join(never) or _("none")
            )
        return [
            ngettext(
                "Network over the last {count} day (since {since}, UTC):",
                "Network over the last {count} days (since {since}, UTC):",
                self.days,
            ).format(count=days, since=f"{self.since:%Y-%m-%d}"),
            _(
                "Requests: {opened} opened, {accepted} accepted, {delivered} delivered, "
                "{confirmed} confirmed, {escalated} escalated."
            ).format(
                opened=number(self.opened),
                accepted=number(self.accepted),
                delivered=number(self.delivered),
                confirmed=number(self.confirmed),
                escalated=number(self.escalated),
            ),
            answered.format(count=number(self.answered), rate=_shown(self.acceptance_rate)),
            f"{accept} {deliver}",
            _(
                "SIF in circulation (the sum of positive balances): {circulation}; granted by "
                "the network (net of corrections): {granted}; held in escrow now: {escrow}."
            ).format(
                circulation=sif(self.circulation),
                granted=sif(self.granted),
                escrow=sif(self.escrow),
            ),
            ngettext(
                "Moved in these {count} day: {held} into escrow as peers accepted, {released} "
                "paid out to peers.",
                "Moved in these {count} days: {held} into escrow as peers accepted, {released} "
                "paid out to peers.",
                self.days,
            ).format(count=days, held=sif(self.held), released=sif(self.released)),
            _("Members who both gave and received: {share}.").format(share=_shown(self.share_both)),
            _("Busiest peers (reviews delivered): {peers}.").format(peers=_none_yet(self.busiest)),
            never_line,
            _("Most requested tags: {tags}.").format(tags=_none_yet(self.top_tags)),
            _("Tags with no peer to review them: {tags}.").format(
                tags=", ".join(self.gaps) or _("none")
            ),
            _("Introductions made: {count}.").format(count=number(self.introductions)),
            *(
                [
                    _(
                        "Requests across factories: sent to partner factories {sent}, "
                        "reviewed here for them {hosted}."
                    ).format(sent=number(self.sent_out), hosted=number(self.hosted))
                ]
                if self.sent_out or self.hosted
                else []
            ),
        ]

    def chart_data(self, community: str) -> ChartData:
        if self.days > DAILY_UP_TO_DAYS:
            window = ngettext(
                "last {count} day, {since} to {until} (per week)",
                "last {count} days, {since} to {until} (per week)",
                self.days,
            )
        else:
            window = ngettext(
                "last {count} day, {since} to {until} (per day)",
                "last {count} days, {since} to {until} (per day)",
                self.days,
            )
        return replace(
            self.series,
            community=community,
            window=window.format(
                count=number(self.days),
                since=f"{self.since:%Y-%m-%d}",
                until=f"{self.now:%Y-%m-%d}",
            ),
        )


def _none_yet(text: str) -> str:
    """A ranking of `compute_stats` in the language being written."""
    return _(NONE_YET) if text == NONE_YET else text


def _shown(figure: str) -> str:
    """A figure of `compute_stats` ("75%", "3.0 h", "–") in the language being written:
    its decimal mark, and the percent sign where the language puts it."""
    language = current()
    if language == "en":
        return figure
    if figure.endswith("%") and figure[:-1].isdigit():
        return format_percent(Decimal(figure[:-1]) / 100, locale=language)
    decimal = Locale.parse(language).number_symbols["latn"]["decimal"]
    return figure.replace(".", decimal)


def window_start(now: datetime, days: int) -> datetime:
    """The start of `stats days`: midnight UTC of the first of `days` calendar days that
    end with today."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(), tzinfo=UTC)


def _times(what: str, median: str, p90: str, count: int) -> str:
    """A duration figure in words ("Time to accept: half within 3.0 h, 9 in 10 within
    5.0 h.") and, for a handful of requests, that they are too few to judge; `what` is
    "accept" or "deliver"."""
    accept = what == "accept"
    if not count:
        return _("Time to accept: none yet.") if accept else _("Time to deliver: none yet.")
    if count >= TOO_FEW:
        text = (
            _("Time to accept: half within {median}, 9 in 10 within {p90}.")
            if accept
            else _("Time to deliver: half within {median}, 9 in 10 within {p90}.")
        )
    elif accept:
        text = ngettext(
            "Time to accept: half within {median}, 9 in 10 within {p90} (only {count} request, "
            "too few to judge).",
            "Time to accept: half within {median}, 9 in 10 within {p90} (only {count} requests, "
            "too few to judge).",
            count,
        )
    else:
        text = ngettext(
            "Time to deliver: half within {median}, 9 in 10 within {p90} (only {count} "
            "request, too few to judge).",
            "Time to deliver: half within {median}, 9 in 10 within {p90} (only {count} "
            "requests, too few to judge).",
            count,
        )
    return text.format(median=_shown(median), p90=_shown(p90), count=number(count))


def _hours(deltas: list[timedelta]) -> tuple[str, str]:
    """Median and p90 of durations, as readable hours."""
    if not deltas:
        return "–", "–"
    hours = sorted(d.total_seconds() / 3600 for d in deltas)
    p90 = hours[min(len(hours) - 1, round(0.9 * (len(hours) - 1)))]
    return f"{statistics.median(hours):.1f} h", f"{p90:.1f} h"


class _Buckets:
    """Calendar days (UTC) from the window's first day to today, or weeks of them."""

    def __init__(self, since: datetime, now: datetime, days: int) -> None:
        self.start = since.date()
        self.step = 1 if days <= DAILY_UP_TO_DAYS else 7
        self.count = (now.date() - self.start).days // self.step + 1
        self.days = tuple(self.start + timedelta(days=i * self.step) for i in range(self.count))

    def tally(self, items: Iterable[tuple[datetime, int]]) -> tuple[int, ...]:
        totals = [0] * self.count
        for at, amount in items:
            index = (at.date() - self.start).days // self.step
            if 0 <= index < self.count:
                totals[index] += amount
        return tuple(totals)


async def compute_stats(
    uow: UnitOfWork, community_id: CommunityId, now: datetime, days: int
) -> StatsResult:
    """Every figure of `stats` over the last `days` days before `now`.

    The store counts and ranks; only the window's requests come back, as a few columns
    (durations and per-day series need them one by one), so a big network costs a few
    small queries rather than every request, offer, member and balance in memory.
    """
    since = window_start(now, days)
    requests = await uow.stats.window(community_id, since)
    crossing: Counter[str] = Counter()
    for cross in await uow.cross.all(community_id):
        request = await uow.requests.get(cross.request)
        if request is not None and request.created_at >= since:
            crossing[cross.role] += 1
    accepted = [r for r in requests if r.accepted_at is not None]
    delivered = [r for r in requests if r.delivered_at is not None]
    confirmed = [r for r in requests if r.status is RequestStatus.CONFIRMED]
    escalated = [r for r in requests if r.escalated_at is not None]
    offers = await uow.stats.offer_counts(community_id, since)
    declined = offers.get(OfferStatus.DECLINED, 0)
    answered = offers.get(OfferStatus.ACCEPTED, 0) + declined
    accept_median, accept_p90 = _hours(
        [r.accepted_at - r.created_at for r in accepted if r.accepted_at]
    )
    deliver_median, deliver_p90 = _hours(
        [r.delivered_at - r.accepted_at for r in delivered if r.delivered_at and r.accepted_at]
    )
    rate = f"{(answered - declined) / answered:.0%}" if answered else "–"
    granted = -await uow.ledger.balance(community_id, NETWORK)
    members, both = await uow.stats.sharing(community_id)
    busiest = await uow.stats.busiest_peers(community_id, since, BUSIEST)
    never_asked = await uow.stats.never_offered(community_id, since)
    wanted: Counter[str] = Counter(tag for r in requests for tag in r.tags)
    offered_tags = await uow.stats.reviewing_tags(community_id)

    # Money moves: a release credits the peer, a hold credits escrow; counting the
    # positive posting of each gives the amount moved once per transaction.
    moves = await uow.stats.credits(
        community_id, (EntryKind.RELEASE, EntryKind.HOLD), since=since, until=now
    )
    released = [(at, amount) for at, kind, amount in moves if kind is EntryKind.RELEASE]
    held = [(at, amount) for at, kind, amount in moves if kind is EntryKind.HOLD]
    buckets = _Buckets(since, now, days)
    series = ChartData(
        community="",
        window="",
        days=buckets.days,
        released=buckets.tally(released),
        held=buckets.tally(held),
        opened=buckets.tally((r.created_at, 1) for r in requests),
        accepted=buckets.tally((r.accepted_at, 1) for r in accepted if r.accepted_at),
        delivered=buckets.tally((r.delivered_at, 1) for r in delivered if r.delivered_at),
        # a confirmation closes the request; older rows without closed_at count at delivery
        confirmed=buckets.tally(
            (r.closed_at or r.delivered_at or r.created_at, 1) for r in confirmed
        ),
    )
    return StatsResult(
        days=days,
        since=since,
        now=now,
        opened=len(requests),
        accepted=len(accepted),
        delivered=len(delivered),
        confirmed=len(confirmed),
        escalated=len(escalated),
        answered=answered,
        acceptance_rate=rate,
        accept_median=accept_median,
        accept_p90=accept_p90,
        deliver_median=deliver_median,
        deliver_p90=deliver_p90,
        circulation=await uow.stats.circulation(community_id),
        released=sum(amount for _, amount in released),
        held=sum(amount for _, amount in held),
        share_both=f"{both / members:.0%}" if members else "–",
        busiest=", ".join(f"{name} ({n})" for name, n in busiest) or NONE_YET,
        never_asked=tuple(sorted(never_asked)),
        top_tags=", ".join(f"{t} ({n})" for t, n in wanted.most_common(3)) or NONE_YET,
        gaps=tuple(sorted(tag for tag in wanted if tag not in offered_tags)),
        series=series,
        introductions=await uow.stats.count_introductions(community_id, since),
        sent_out=crossing.get("origin", 0),
        hosted=crossing.get("host", 0),
        granted=granted,
        escrow=await uow.ledger.balance(community_id, ESCROW),
        delivery_times=sum(1 for r in delivered if r.accepted_at),
    )


def chart_attachment(result: StatsResult, community: str) -> File:
    """The chart of a result as a PNG file named after the day it was drawn."""
    png = stats_chart(result.chart_data(community))
    return File(f"sif-stats-{result.now:%Y%m%d}.png", png, "image/png")


@handlers.on(Stats)
async def stats(ctx: Context, cmd: Stats) -> None:
    result = await compute_stats(ctx.uow, ctx.community.id, ctx.clock.now(), cmd.days)
    # A child process draws the chart (bot.app.charts); waiting for it in a thread keeps the
    # event loop serving other commands meanwhile.
    chart = await asyncio.to_thread(chart_attachment, result, ctx.community.name)
    # Posted where it was asked (public): in the channel, or as a DM; the chart is a file
    # part, and a file is never ephemeral.
    ctx.reply((*plain("\n".join(result.lines())), chart), topic="stats", public=True)
