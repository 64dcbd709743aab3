"""Review requests: `request`, `offers`, `accept`, `decline`, `done`, `thanks`, `dispute`,
`cancel R-n`, and staff `assign` and `resolve` (SPEC §5, §6 payment)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.app.offering import describe, offer_buttons, offer_next, offer_text, rank_round
from bot.app.service import Context, UserError, handles
from bot.commands import (
    Accept,
    Assign,
    Decline,
    Dispute,
    Done,
    Offers,
    RequestHelp,
    Resolve,
    Thanks,
)
from bot.domain import ledger
from bot.domain.ledger import format_sif
from bot.domain.records import HelpRequest, OfferStatus, RequestStatus


async def _request(ctx: Context, number: int) -> HelpRequest:
    found = await ctx.uow.requests.by_number(ctx.community.id, number)
    if found is None:
        raise UserError(f"There is no request R-{number} here; `offers` lists yours.")
    return found


def _idea_help_tags(answers: dict[str, object]) -> list[str]:
    value = answers.get("help")
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


@handles(RequestHelp)
async def request_help(ctx: Context, cmd: RequestHelp) -> None:
    idea = await ctx.uow.ideas.by_number(ctx.community.id, cmd.idea)
    if idea is None:
        raise UserError(f"There is no idea I-{cmd.idea} here; `ideas` lists yours.")
    if idea.owner != ctx.caller.id:
        raise UserError(f"{idea.ref} is not your idea; only its owner can ask help for it.")
    known = await ctx.uow.communities.tags(ctx.community.id)
    for tag in cmd.tags:
        if tag not in known:
            close = difflib.get_close_matches(tag, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UserError(f"'{tag}' is not one of this community's tags.{hint}")
    tags = list(cmd.tags) or _idea_help_tags(idea.answers)
    price = ctx.settings.prices[cmd.kind]
    balance = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(ctx.caller.id))
    committed = await ctx.uow.requests.committed(ctx.caller.id)
    limit = ctx.settings.credit_limit
    if balance - committed - price < limit:
        waiting = f" and {format_sif(committed)} promised to open requests" if committed else ""
        raise UserError(
            f"A {cmd.kind} costs {format_sif(price)}, but your balance is {format_sif(balance)}"
            f"{waiting} and the credit limit is {format_sif(limit)}; review someone's idea "
            "to earn SIF first."
        )
    now = ctx.clock.now()
    # Ranked before the request takes its number: the community's counter stays locked
    # only for the rest of this transaction, not through the routing too.
    ranked = await rank_round(
        ctx.uow, ctx.settings, ctx.community.id, ctx.caller.id, tags, idea, frozenset(), now
    )
    request = await ctx.uow.requests.create(
        ctx.community.id, idea.id, ctx.caller.id, cmd.kind, price, tags, now
    )
    made = await offer_next(ctx.uow, ctx.notices, ctx.settings, request, now, ranked)
    if made:
        ctx.reply(
            f"Asked the network: {describe(request)}. Offered to {made} "
            f"peer{'s' if made > 1 else ''}; the price is held only when someone accepts. "
            f"`cancel {request.ref}` withdraws it."
        )
    else:
        ctx.reply(
            f"Asked the network: {describe(request)}. No peer can take it right now, "
            "so staff have been asked to find one."
        )


@handles(Offers)
async def offers(ctx: Context, cmd: Offers) -> None:
    mine = await ctx.uow.requests.open_offers(ctx.caller.id)
    if not mine:
        ctx.reply("You have no open offers. Keep your `profile` current to get matching ones.")
        return
    lines = ["Your open offers:"]
    for offer in mine:
        request = await ctx.uow.requests.get(offer.request)
        if request is not None:
            lines.append(
                f"{describe(request)} — until {offer.expires_at:%Y-%m-%d %H:%M} UTC; "
                f"{offer.explanation}"
            )
    lines.append("`accept R-n` takes one, `decline R-n [reason]` passes it on.")
    ctx.reply("\n".join(lines))


async def _my_offer(ctx: Context, request: HelpRequest) -> int:
    offer = await ctx.uow.requests.offer_for(request.id, ctx.caller.id)
    if offer is None:
        raise UserError(f"{request.ref} was not offered to you; `offers` lists yours.")
    if offer.status is OfferStatus.ACCEPTED:
        raise UserError(
            f"You already accepted {request.ref}; `done {request.ref} <hours> <text>` delivers it."
        )
    if offer.status is OfferStatus.WITHDRAWN:
        raise UserError(
            f"{request.ref} is no longer open: another peer took it or it was cancelled."
        )
    if offer.status is not OfferStatus.OFFERED:
        raise UserError(f"Your offer for {request.ref} has ended ({offer.status.value}).")
    return offer.id


@handles(Accept)
async def accept(ctx: Context, cmd: Accept) -> None:
    request = await _request(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    # The conditional UPDATE decides: exactly one accept moves the request out of `open`.
    won = await ctx.uow.requests.transition(
        request.id,
        [RequestStatus.OPEN, RequestStatus.ESCALATED],
        RequestStatus.ASSIGNED,
        peer_id=ctx.caller.id,
        accepted_at=now,
    )
    if not won:
        await ctx.uow.requests.answer_offer(offer_id, OfferStatus.WITHDRAWN, now, "taken")
        ctx.reply(f"Sorry, {request.ref} was just taken by another peer. Thanks for offering!")
        return
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.ACCEPTED, now)
    await ctx.post(
        ledger.hold(
            request.requester,
            request.price,
            request.id,
            f"{request.ref} {request.kind} by {ctx.caller.name}",
            key=f"hold:{request.id}",
        )
    )
    for other in await ctx.uow.requests.withdraw_offers(request.id, now):
        await ctx.notices.dm_id(
            other.peer, f"{request.ref} was taken by another peer; thanks anyway."
        )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    details = ""
    if idea is not None:
        wanted = ("summary", "need", "impact", "uncertainties")
        details = "\n".join(
            f"{key.capitalize()}: {idea.answers[key]}" for key in wanted if idea.answers.get(key)
        )
    ctx.reply(
        f"You accepted {describe(request)}.\n{details}\n"
        f"When you are done: `done {request.ref} <hours> <your feedback>`.".replace("\n\n", "\n")
    )
    await ctx.notices.dm_id(
        request.requester,
        f"{ctx.caller.name} accepted {request.ref} ({request.kind} of I-{request.idea_number}). "
        f"{format_sif(request.price)} is held until you confirm with `thanks {request.ref}`.",
    )


@handles(Decline)
async def decline(ctx: Context, cmd: Decline) -> None:
    request = await _request(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.DECLINED, now, cmd.reason or None)
    ctx.reply(f"Declined {request.ref}; it goes to another peer. Thanks for answering quickly.")
    current = await ctx.uow.requests.get(request.id)
    if current is not None and current.status.is_open:
        await offer_next(ctx.uow, ctx.notices, ctx.settings, current, now)


@handles(Done)
async def done(ctx: Context, cmd: Done) -> None:
    request = await _request(ctx, cmd.request)
    if request.peer != ctx.caller.id:
        raise UserError(f"You are not the reviewer of {request.ref}, so you cannot deliver it.")
    if request.status is not RequestStatus.ASSIGNED:
        raise UserError(f"{request.ref} is {request.status.value}, not waiting for delivery.")
    now = ctx.clock.now()
    release_at = now + timedelta(days=ctx.settings.sif_auto_release_days)
    await _move(
        ctx,
        request,
        [RequestStatus.ASSIGNED],
        RequestStatus.DELIVERED,
        hours=cmd.hours,
        feedback=cmd.feedback,
        delivered_at=now,
        auto_release_at=release_at,
    )
    ctx.reply(
        f"Delivered {request.ref} ({cmd.hours:g} h). {request.requester_name} has been sent your "
        f"feedback; {format_sif(request.price)} is paid to you on their thanks or on "
        f"{release_at:%Y-%m-%d}."
    )
    await ctx.notices.dm_id(
        request.requester,
        f"{ctx.caller.name} delivered {request.ref} ({request.kind} of I-{request.idea_number}, "
        f"{cmd.hours:g} h):\n{cmd.feedback}\n"
        f"`thanks {request.ref} [1-5] [comment]` pays {format_sif(request.price)} to "
        f"{ctx.caller.name}; `dispute {request.ref} <reason>` holds it. Without either, it is "
        f"paid on {release_at:%Y-%m-%d}.",
    )


def _requester_only(ctx: Context, request: HelpRequest, what: str) -> None:
    if request.requester != ctx.caller.id:
        raise UserError(f"{request.ref} is not your request, so you cannot {what} it.")


async def release_payment(ctx: Context, request: HelpRequest, reason: str) -> None:
    """Pay a delivered request's price from escrow to its peer, once."""
    assert request.peer is not None
    await ctx.post(
        ledger.release(
            request.requester,
            request.peer,
            request.price,
            request.id,
            reason,
            author=ctx.caller.id,
            key=f"settle:{request.id}",
        )
    )


@handles(Thanks)
async def thanks(ctx: Context, cmd: Thanks) -> None:
    request = await _request(ctx, cmd.request)
    _requester_only(ctx, request, "thank for")
    if request.status is RequestStatus.CONFIRMED:
        raise UserError(f"You already confirmed {request.ref}; its SIF has been paid.")
    if request.status is not RequestStatus.DELIVERED:
        raise UserError(
            f"{request.ref} is {request.status.value}; thanks is for a delivered review."
        )
    now = ctx.clock.now()
    await _move(
        ctx,
        request,
        [RequestStatus.DELIVERED],
        RequestStatus.CONFIRMED,
        rating=cmd.rating,
        comment=cmd.comment or None,
        closed_at=now,
    )
    await release_payment(ctx, request, f"{request.ref} {request.kind}, thanked")
    stars = f" ({cmd.rating}/5)" if cmd.rating else ""
    ctx.reply(
        f"Thanks sent: {format_sif(request.price)} paid to {request.peer_name} for {request.ref}."
    )
    assert request.peer is not None
    said = f": \u201c{cmd.comment}\u201d." if cmd.comment else "."
    await ctx.notices.dm_id(
        request.peer,
        f"{ctx.caller.name} thanked you for {request.ref}{stars}{said} "
        f"You received {format_sif(request.price)}.",
    )


@handles(Dispute)
async def dispute(ctx: Context, cmd: Dispute) -> None:
    request = await _request(ctx, cmd.request)
    _requester_only(ctx, request, "dispute")
    moved = await ctx.uow.requests.transition(
        request.id,
        [RequestStatus.ASSIGNED, RequestStatus.DELIVERED],
        RequestStatus.DISPUTED,
        note=cmd.reason,
        auto_release_at=None,
    )
    if not moved:
        raise UserError(
            f"{request.ref} is {request.status.value}; only an accepted or delivered request "
            "can be disputed."
        )
    ctx.reply(f"{request.ref} is disputed: the payment is held and staff will look at it.")
    await ctx.tell_staff(
        f"Dispute on {describe(request)}, reviewer {request.peer_name}: {cmd.reason}\n"
        f"`resolve {request.ref} pay|refund [note]` ends it."
    )
    if request.peer is not None:
        await ctx.notices.dm_id(
            request.peer,
            f"{ctx.caller.name} disputed {request.ref}; staff will look at it and contact you.",
        )


async def _move(
    ctx: Context,
    request: HelpRequest,
    from_: Sequence[RequestStatus],
    to: RequestStatus,
    **fields: Any,
) -> None:
    """Move the request on, unless something else moved it since it was read (a peer's
    accept racing a cancel): then nothing is changed and the caller is told."""
    if not await ctx.uow.requests.transition(request.id, from_, to, **fields):
        now = await ctx.uow.requests.get(request.id)
        state = now.status.value if now is not None else "gone"
        raise UserError(
            f"{request.ref} changed just now (it is {state}); nothing was changed, "
            "please check it and try again."
        )


async def cancel_request(ctx: Context, number: int) -> None:
    request = await _request(ctx, number)
    _requester_only(ctx, request, "cancel")
    now = ctx.clock.now()
    if request.status.is_open:
        await _move(ctx, request, [request.status], RequestStatus.CANCELLED, closed_at=now)
        for offer in await ctx.uow.requests.withdraw_offers(request.id, now):
            await ctx.notices.dm_id(offer.peer, f"{request.ref} was cancelled by its requester.")
        ctx.reply(f"Cancelled {request.ref}; nothing was charged.")
        return
    if request.status is RequestStatus.ASSIGNED:
        await _move(ctx, request, [RequestStatus.ASSIGNED], RequestStatus.CANCELLED, closed_at=now)
        await ctx.post(
            ledger.refund(
                request.requester,
                request.price,
                request.id,
                f"{request.ref} cancelled",
                author=ctx.caller.id,
                key=f"settle:{request.id}",
            )
        )
        ctx.reply(f"Cancelled {request.ref}; {format_sif(request.price)} was refunded to you.")
        if request.peer is not None:
            await ctx.notices.dm_id(
                request.peer,
                f"{ctx.caller.name} cancelled {request.ref}; you can stop working on it.",
            )
        return
    raise UserError(
        f"{request.ref} is {request.status.value} and can no longer be cancelled"
        + ("; use `thanks` or `dispute`." if request.status is RequestStatus.DELIVERED else ".")
    )


@handles(Assign)
async def assign(ctx: Context, cmd: Assign) -> None:
    request = await _request(ctx, cmd.request)
    peer = await ctx.resolve(cmd.peer)
    if not request.status.is_open:
        raise UserError(
            f"{request.ref} is {request.status.value}; "
            "only open or escalated requests can be assigned."
        )
    if peer.id == request.requester:
        raise UserError(f"{peer.name} asked for {request.ref}, so they cannot review it.")
    current = await ctx.uow.requests.offer_for(request.id, peer.id)
    if current is not None and current.status is OfferStatus.OFFERED:
        raise UserError(f"{request.ref} is already offered to {peer.name}.")
    now = ctx.clock.now()
    ttl = timedelta(hours=ctx.settings.sif_offer_ttl_hours)
    await _move(ctx, request, [request.status], RequestStatus.OPEN, round=request.round + 1)
    why = f"chosen by {ctx.caller.name} (staff)"
    await ctx.uow.requests.add_offer(
        request.id, peer.id, request.round + 1, why, now, now + ttl, now + ttl / 2
    )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    ctx.dm(peer, offer_text(request, idea, why, now + ttl), offer_buttons(request))
    ctx.reply(
        f"Offered {request.ref} to {peer.name} until {now + ttl:%Y-%m-%d %H:%M} UTC.", public=True
    )


@handles(Resolve)
async def resolve(ctx: Context, cmd: Resolve) -> None:
    request = await _request(ctx, cmd.request)
    if request.status is not RequestStatus.DISPUTED:
        raise UserError(f"{request.ref} is {request.status.value}, not disputed.")
    now = ctx.clock.now()
    note = cmd.note or f"resolved by {ctx.caller.name}"
    await _move(
        ctx, request, [RequestStatus.DISPUTED], RequestStatus.CLOSED, closed_at=now, note=note
    )
    if cmd.outcome == "pay" and request.peer is not None:
        await release_payment(ctx, request, f"{request.ref} dispute resolved: pay")
        outcome = f"{format_sif(request.price)} paid to {request.peer_name}"
    elif request.accepted_at is not None:
        await ctx.post(
            ledger.refund(
                request.requester,
                request.price,
                request.id,
                f"{request.ref} dispute resolved: refund",
                author=ctx.caller.id,
                key=f"settle:{request.id}",
            )
        )
        outcome = f"{format_sif(request.price)} refunded to {request.requester_name}"
    else:
        outcome = "nothing was held"
    ctx.reply(f"Resolved {request.ref}: {outcome}.", public=True)
    for member in (request.requester, request.peer):
        if member is not None:
            await ctx.notices.dm_id(
                member, f"Staff resolved the dispute on {request.ref}: {outcome}. {note}"
            )
