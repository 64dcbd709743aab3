"""Reading a simulation back from its database: the daily balance snapshot, and at the end
the figures of the whole run as a :class:`SimReport`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.domain.ids import MemberId
from bot.domain.ledger import ESCROW
from bot.domain.records import OfferStatus
from bot.entrypoints.simulate.community import ARCHETYPES, SIM_START, TOPICS
from bot.entrypoints.simulate.report import GOAL_DAYS_AT_LIMIT, DaySnapshot, SimReport, TagRow
from bot.entrypoints.simulate.rules import _rules

if TYPE_CHECKING:
    from bot.entrypoints.simulate.driver import _Simulation


async def snapshot(sim: _Simulation) -> DaySnapshot:
    """Today's balance of every simulated member, the escrow, and who is at the limit."""
    async with sim.app.bot.uow_factory() as uow:
        infos = {i.name: i.balance for i in await uow.ledger.all_balances(sim.cid)}
        escrow = await uow.ledger.balance(sim.cid, ESCROW)
    balances = tuple(infos.get(m.name, 0) for m in sim.members)
    floor = sim.settings.credit_limit
    day = round((sim.clock.now() - SIM_START).total_seconds() / 86400)
    return DaySnapshot(
        day=day,
        balances=balances,
        escrow=escrow,
        at_limit=sum(1 for b in balances if b - sim.cheapest < floor),
    )


async def report(sim: _Simulation) -> SimReport:
    """The figures of a finished simulation, read from its database and its snapshots."""
    judged_before = sim.end - timedelta(hours=48)
    async with sim.app.bot.uow_factory() as uow:
        requests = await uow.requests.all(sim.cid)
        offers = [o for r in requests for o in await uow.requests.offers(r.id)]
        facts = await uow.routing.peer_facts(sim.cid, SIM_START)
        problems = await uow.ledger.check_invariants(sim.cid)
        ideas = await uow.ideas.all(sim.cid)
    eligible: list[MemberId] = [f.member for f in facts if f.is_peer and f.name in sim.by_name]
    expertise = {f.member: f.expertise for f in facts}
    delivered: dict[MemberId, int] = {}
    for r in requests:
        if r.delivered_at is not None and r.peer is not None:
            delivered[r.peer] = delivered.get(r.peer, 0) + 1
    eligible_set = dict.fromkeys(eligible)
    # Reviews by a peer of the idea's topic, against the share of such peers among those
    # eligible (what routing blind to the texts would give, tags aside).
    topic_of_idea = {m.idea: m.topic for m in sim.members if m.idea is not None}
    names = {f.member: f.name for f in facts}
    peer_topics = [sim.by_name[names[m]].topic for m in eligible]
    reviews, topic_reviews, by_chance = 0, 0, 0.0
    for r in requests:
        if r.delivered_at is None or r.peer_name is None:
            continue
        reviews += 1
        topic = topic_of_idea.get(r.idea_number)
        peer = sim.by_name.get(r.peer_name)
        topic_reviews += peer is not None and peer.topic == topic
        by_chance += peer_topics.count(topic or "") / max(1, len(peer_topics))
    non_experts = sum(n for peer, n in delivered.items() if peer not in eligible_set)
    judged = [r for r in requests if r.created_at <= judged_before]
    hours: list[float | None] = [
        (r.accepted_at - r.created_at).total_seconds() / 3600 if r.accepted_at else None
        for r in judged
    ]
    tag_rows = []
    for tag in sim.settings.sif_tags:
        needing = [h for r, h in zip(judged, hours, strict=True) if tag in r.tags]
        tag_rows.append(
            TagRow(
                tag=tag,
                requests=len(needing),
                within_48h=sum(1 for h in needing if h is not None and h <= 48),
                never=sum(1 for h in needing if h is None),
                peers=sum(1 for m in eligible if tag in expertise[m]),
            )
        )
    tag_rows.sort(key=lambda row: (-row.requests, row.tag))
    status = [o.status for o in offers]
    counts = dict(sim.counts)
    counts.update(
        {
            "ideas": len(ideas),
            "offers": len(offers),
            "offers accepted": status.count(OfferStatus.ACCEPTED),
            "offers declined": status.count(OfferStatus.DECLINED),
            "offers expired": status.count(OfferStatus.EXPIRED),
            "offers withdrawn": status.count(OfferStatus.WITHDRAWN),
            "reminders": counts.get("reminders", 0),
            "reviews delivered": sum(delivered.values()),
            "reviews by non-experts": non_experts,
            "thanked": sum(1 for r in requests if r.rating is not None),
            "paid automatically": sum(1 for r in requests if r.note == "paid automatically"),
            "waiting for payment": sum(1 for r in requests if r.status.value == "delivered"),
        }
    )
    floor = sim.settings.credit_limit
    streaks = _longest_streaks(sim.snapshots, lambda b: b - sim.cheapest < floor)
    population = [
        (a.kind.value, sum(1 for m in sim.members if m.kind is a.kind)) for a in ARCHETYPES
    ]
    return SimReport(
        config=sim.config,
        rules=_rules(sim.settings),
        population=tuple(population),
        counts=tuple(counts.items()),
        judged_hours=tuple(hours),
        escalated_requests=sum(1 for r in requests if r.escalated_at is not None),
        load=tuple(delivered.get(m, 0) for m in eligible),
        snapshots=tuple(sim.snapshots),
        credit_limit=sim.settings.credit_limit,
        cheapest=sim.cheapest,
        longest_at_limit_days=max(streaks, default=0),
        over_limit_weeks=sum(1 for s in streaks if s > GOAL_DAYS_AT_LIMIT),
        ever_at_limit=sum(1 for s in streaks if s > 0),
        tags=tuple(tag_rows),
        invariant_problems=tuple(problems),
        topic_reviews=topic_reviews,
        topic_by_chance=by_chance / max(1, reviews),
        topics=tuple(
            (
                topic,
                sum(1 for t in topic_of_idea.values() if t == topic),
                peer_topics.count(topic),
            )
            for topic in TOPICS
        ),
    )


def _longest_streaks(
    snapshots: Sequence[DaySnapshot], at_limit: Callable[[int], bool]
) -> list[int]:
    """Per member, the most consecutive daily snapshots at the credit limit (days)."""
    if not snapshots:
        return []
    longest = [0] * len(snapshots[0].balances)
    current = [0] * len(longest)
    for snap in snapshots:
        for i, balance in enumerate(snap.balances):
            current[i] = current[i] + 1 if at_limit(balance) else 0
            longest[i] = max(longest[i], current[i])
    return longest
