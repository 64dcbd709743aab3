"""The weekly staff digest: `stats 7`, what is stuck, disputes and members near the limit.

Called by the scheduler (a cron job at `SIF_DIGEST_DAY`/`SIF_DIGEST_HOUR` UTC). Each
community's digest is written to the outbox in the same transaction that records
"digest of ISO week W sent" in the processed-event log, so a restart or a second
scheduler process never sends a week's digest twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from babel.numbers import format_decimal

from bot.app.handlers.stats import chart_attachment, compute_stats
from bot.app.notices import Notices, platform_of
from bot.app.offering import escalation_reason, kind_name
from bot.app.outbox import Relay
from bot.domain.ledger import HUNDREDTHS_PER_SIF
from bot.domain.records import Community, HelpRequest, OfferStatus, RequestStatus
from bot.i18n import DEFAULT, _, current, number, plural, sif, speaking
from bot.messages import File, Parts, join, plain, say
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.settings import Settings

DIGEST_DAYS = 7
STUCK_AFTER = timedelta(days=2)
NEAR_LIMIT = HUNDREDTHS_PER_SIF  # within 1 SIF of the credit limit
# Stand-in for a `communities.all()` query: community ids are a sequence, so walk it;
# a few misses in a row are tolerated because PostgreSQL may skip an id whose
# creating transaction rolled back.
LISTED = 10  # longest list of requests or members shown before "and n more"


def digest_key(community: Community, now: datetime) -> str:
    """The processed-event key that marks this community's digest of `now`'s ISO week."""
    iso_year, week, _weekday = now.isocalendar()
    return f"digest:{community.key}:{iso_year}-W{week:02d}"


async def _communities(uow: UnitOfWork, keys: Sequence[str] | None) -> list[Community]:
    if keys is not None:
        found = [await uow.communities.find(key) for key in keys]
        return [c for c in found if c is not None]
    return await uow.communities.all()


def _listed(items: list[Parts]) -> list[Parts]:
    shown = [plain("• ") + item for item in items[:LISTED]]
    if len(items) > LISTED:
        more = _("and {count} more").format(count=number(len(items) - LISTED))
        shown.append(plain(f"• {more}"))
    return shown


def _days(days: float) -> str:
    """Days with one decimal: 2.5 (2,5 in Dutch)."""
    if current() == DEFAULT:
        return f"{days:.1f}"
    return format_decimal(days, format="0.0", locale=current())


async def _why_stuck(uow: UnitOfWork, request: HelpRequest, now: datetime) -> str:
    age = (now - request.created_at).total_seconds() / 86400
    if request.status is RequestStatus.ESCALATED:
        reason = escalation_reason(request.note) if request.note else _("no peer accepted it")
        why = _("escalated to staff: {reason}").format(reason=reason)
    else:
        waiting = [
            o for o in await uow.requests.offers(request.id) if o.status is OfferStatus.OFFERED
        ]
        if waiting:
            why = _("round {round}, waiting for {peers} to answer").format(
                round=number(request.round), peers=", ".join(o.peer_name for o in waiting)
            )
        else:
            why = _("round {round}, waiting for a peer to answer").format(
                round=number(request.round)
            )
    # stuck means open for more than two days: always "days"
    return _("{ref} ({kind} of I-{idea}, open {age} days): {why}").format(
        ref=request.ref,
        kind=kind_name(request.kind),
        idea=request.idea_number,
        age=_days(age),
        why=why,
    )


async def build_digest(
    uow: UnitOfWork, community: Community, settings: Settings, now: datetime
) -> tuple[Parts, File]:
    """The digest's text and its chart, in the community's language (staff read it)."""
    with speaking(settings.sif_language):
        return await _digest(uow, community, settings, now)


async def _digest(
    uow: UnitOfWork, community: Community, settings: Settings, now: datetime
) -> tuple[Parts, File]:
    result = await compute_stats(uow, community.id, now, DIGEST_DAYS)
    iso_year, week, _weekday = now.isocalendar()
    requests = await uow.requests.all(community.id)
    stuck = [
        r
        for r in sorted(requests, key=lambda r: r.number)
        if r.status.is_open and now - r.created_at > STUCK_AFTER
    ]
    disputes = [
        r for r in sorted(requests, key=lambda r: r.number) if r.status is RequestStatus.DISPUTED
    ]
    near = sorted(
        (
            b
            for b in await uow.ledger.all_balances(community.id)
            if b.balance - settings.credit_limit <= NEAR_LIMIT
        ),
        key=lambda b: (b.balance, b.name),
    )
    lines: list[Parts] = [
        plain(
            _("Weekly digest for {community}, week {week}.").format(
                community=community.name, week=f"{iso_year}-W{week:02d}"
            )
        ),
        (),
    ]
    lines += [plain(line) for line in result.lines()]
    lines += [
        (),
        plain(
            _("Stuck requests (open for more than {days}): {count}").format(
                days=plural(STUCK_AFTER.days, "day", "days"), count=number(len(stuck))
            )
        ),
    ]
    lines += _listed([plain(await _why_stuck(uow, r, now)) for r in stuck])
    lines += [(), plain(_("Disputes waiting: {count}").format(count=number(len(disputes))))]
    lines += _listed(
        [
            say(
                "{ref} ({kind} of I-{idea}), {requester} vs {peer}: {note} — "
                "`resolve {ref} pay|refund`",
                ref=r.ref,
                kind=kind_name(r.kind),
                idea=r.idea_number,
                requester=r.requester_name,
                peer=r.peer_name or _("nobody"),
                note=r.note or _("no reason given"),
            )
            for r in disputes
        ]
    )
    lines += [
        (),
        plain(
            _("Members within {near} of the credit limit ({limit}): {count}").format(
                near=sif(NEAR_LIMIT), limit=sif(settings.credit_limit), count=number(len(near))
            )
        ),
    ]
    lines += _listed(
        [
            plain(_("{name}: balance {balance}").format(name=b.name, balance=sif(b.balance)))
            for b in near
        ]
    )
    # A child process draws the chart (bot.app.charts); wait for it off the event loop.
    chart = await asyncio.to_thread(chart_attachment, result, community.name)
    return join("\n", lines), chart


async def weekly_digest(
    uow_factory: UnitOfWorkFactory,
    settings: Settings,
    clock: Clock,
    relay: Relay | None = None,
    community_keys: Sequence[str] | None = None,
) -> int:
    """Post this week's digest to each community's staff; returns how many were written.

    `community_keys` limits it to those communities; without it every community is
    covered. A community whose digest of this ISO week was already written is skipped.
    """
    now = clock.now()
    async with uow_factory() as uow:
        communities = await _communities(uow, community_keys)
    written = 0
    for community in communities:
        # One transaction per community: the "sent" mark and the outbox rows commit
        # together, and one community's failure leaves the others' digests intact.
        async with uow_factory() as uow:
            if not await uow.events.first_time(digest_key(community, now), now):
                continue
            body, chart = await build_digest(uow, community, settings, now)
            notices = Notices(uow, settings, community, platform_of(community.key))
            # Every copy (the staff channel, or each staff DM) carries the chart as a file part.
            await notices.staff((*body, chart), topic="digest")
            for message in notices.outbound:
                await uow.outbox.add(message, now)
            await uow.commit()
            written += 1
    if relay is not None and written:
        await relay.flush()
    return written
