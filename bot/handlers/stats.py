"""`stats [days]`: how the network is doing, for staff (SPEC §3)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

from bot.commands import Stats
from bot.ledger import NETWORK, format_sif
from bot.records import HelpRequest, OfferStatus, RequestStatus
from bot.service import Context, handles

BUSIEST = 3


def _hours(deltas: list[timedelta]) -> tuple[str, str]:
    """Median and p90 of durations, as readable hours."""
    if not deltas:
        return "–", "–"
    hours = sorted(d.total_seconds() / 3600 for d in deltas)
    p90 = hours[min(len(hours) - 1, round(0.9 * (len(hours) - 1)))]
    return f"{statistics.median(hours):.1f} h", f"{p90:.1f} h"


def _in_window(request: HelpRequest, since: datetime) -> bool:
    return request.created_at >= since


@handles(Stats)
async def stats(ctx: Context, cmd: Stats) -> None:
    now = ctx.clock.now()
    since = now - timedelta(days=cmd.days)
    uow = ctx.uow
    requests = [r for r in await uow.requests.all(ctx.community.id) if _in_window(r, since)]
    accepted = [r for r in requests if r.accepted_at is not None]
    delivered = [r for r in requests if r.delivered_at is not None]
    confirmed = [r for r in requests if r.status is RequestStatus.CONFIRMED]
    escalated = [r for r in requests if r.escalated_at is not None]
    answered = declined = 0
    asked: Counter[str] = Counter()
    for request in requests:
        for offer in await uow.requests.offers(request.id):
            asked[offer.peer_name] += 1
            if offer.status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
                answered += 1
                declined += offer.status is OfferStatus.DECLINED
    accept_median, accept_p90 = _hours(
        [r.accepted_at - r.created_at for r in accepted if r.accepted_at]
    )
    deliver_median, deliver_p90 = _hours(
        [r.delivered_at - r.accepted_at for r in delivered if r.delivered_at and r.accepted_at]
    )
    rate = f"{(answered - declined) / answered:.0%}" if answered else "–"
    circulation = -await uow.ledger.balance(ctx.community.id, NETWORK)
    balances = await uow.ledger.all_balances(ctx.community.id)
    both = sum(1 for b in balances if b.given > 0 and b.received > 0)
    share_both = f"{both / len(balances):.0%}" if balances else "–"
    reviews = Counter(r.peer_name for r in delivered if r.peer_name)
    busiest = ", ".join(f"{name} ({n})" for name, n in reviews.most_common(BUSIEST)) or "none yet"
    facts = await uow.requests.peer_facts(ctx.community.id, since)
    peers = [f for f in facts if f.expertise and f.capacity > 0]
    never = sorted(f.name for f in peers if f.name not in asked)
    wanted: Counter[str] = Counter(tag for r in requests for tag in r.tags)
    offered_tags = {tag for f in peers for tag in f.expertise}
    gaps = sorted(tag for tag in wanted if tag not in offered_tags)
    top_tags = ", ".join(f"{t} ({n})" for t, n in wanted.most_common(3)) or "none yet"
    lines = [
        f"Network over the last {cmd.days} days:",
        f"Requests: {len(requests)} opened, {len(accepted)} accepted, {len(delivered)} delivered,"
        f" {len(confirmed)} confirmed, {len(escalated)} escalated.",
        f"Offers answered: {answered}; acceptance rate {rate}.",
        f"Time to accept: median {accept_median}, p90 {accept_p90}. "
        f"Time to deliver: median {deliver_median}, p90 {deliver_p90}.",
        f"SIF in circulation: {format_sif(circulation)}. "
        f"Members who both gave and received: {share_both}.",
        f"Busiest peers: {busiest}.",
        f"Peers never asked: {', '.join(never[:10]) or 'none'}"
        + (f" and {len(never) - 10} more." if len(never) > 10 else "."),
        f"Most requested tags: {top_tags}.",
        f"Tags with no peer to review them: {', '.join(gaps) or 'none'}.",
    ]
    ctx.reply("\n".join(lines), public=True)
