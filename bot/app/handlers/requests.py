"""Review requests: `request`, `offers`, `accept`, `decline`, `done`, `thanks`, `dispute`,
`cancel R-n`, and staff `assign` and `resolve` (SPEC §5, §6 payment)."""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Any

from bot.app import lifecycle
from bot.app.context import Context, Handlers, UserError
from bot.app.offering import (
    describe,
    offer_buttons,
    offer_next,
    offer_text,
    rank_round,
    reviewer_answers,
    what_next,
)
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
from bot.domain.records import HelpRequest, Idea, OfferStatus, RequestStatus, Role
from bot.domain.requests import Move, allowed, kind_words
from bot.i18n import sentence
from bot.messages import Parts, join, plain, say

handlers = Handlers()


async def _request(ctx: Context, number: int) -> HelpRequest:
    found = await ctx.uow.requests.by_number(ctx.community.id, number)
    if found is None:
        # Staff look after every request, so they are pointed to the list of all of them.
        template = (
            "There is no request R-{number} here; `export requests` lists every request."
            if ctx.caller.role.allows(Role.STAFF)
            else "There is no request R-{number} here; `requests` lists yours."
        )
        raise UserError(say(template, number=number), "unknown-request")
    return found


# A request of one kind on one idea that is still being answered: a second one of the same
# kind would only duplicate it (`request I1 review` twice, or `request I-1`).
BEING_ANSWERED = (RequestStatus.OPEN, RequestStatus.ESCALATED, RequestStatus.ASSIGNED)


def _stands(request: HelpRequest) -> str:
    if request.status is RequestStatus.ASSIGNED:
        return f"accepted by {request.peer_name}"
    if request.status is RequestStatus.ESCALATED:
        return "open, staff are finding a peer"
    return "open"


async def _refuse_a_duplicate(ctx: Context, idea: Idea, kind: str) -> None:
    for other in await ctx.uow.requests.of_idea(idea.id):
        if other.kind == kind and other.status in BEING_ANSWERED:
            of = "of" if kind == "review" else "on"
            raise UserError(
                say(
                    "{ref} already asks for {kind} {of} {idea} ({stands}); `cancel {ref}` first "
                    "if you want a new one.",
                    ref=other.ref,
                    kind=kind_words(kind),
                    of=of,
                    idea=idea.ref,
                    stands=_stands(other),
                ),
                "duplicate-request",
                other.ref,
            )


def _idea_help_tags(answers: dict[str, object]) -> list[str]:
    value = answers.get("help")
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


@handlers.on(RequestHelp)
async def request_help(ctx: Context, cmd: RequestHelp) -> None:
    idea = await ctx.idea(cmd.idea)
    if idea.owner != ctx.caller.id:
        raise UserError(f"{idea.ref} is not your idea; only its owner can ask help for it.")
    known = await ctx.uow.communities.tags(ctx.community.id)
    for tag in cmd.tags:
        if tag not in known:
            close = difflib.get_close_matches(tag, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UserError(f"'{tag}' is not one of this community's tags.{hint}")
    await _refuse_a_duplicate(ctx, idea, cmd.kind)
    tags = list(cmd.tags) or _idea_help_tags(idea.answers)
    price = ctx.settings.prices[cmd.kind]
    balance = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(ctx.caller.id))
    committed = await ctx.uow.requests.committed(ctx.caller.id)
    limit = ctx.settings.credit_limit
    if balance - committed - price < limit:
        waiting = f" and {format_sif(committed)} promised to open requests" if committed else ""
        raise UserError(
            f"{kind_words(cmd.kind).capitalize()} costs {format_sif(price)}, but your balance "
            f"is {format_sif(balance)}"
            f"{waiting} and the credit limit is {format_sif(limit)}; review someone's idea "
            "to earn SIF first.",
            "credit-limit",
            idea.ref,
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
            say(
                "Asked the network: {request}. Offered to {made} peer{s}. ",
                request=describe(request),
                made=made,
                s="s" if made > 1 else "",
            )
            + _price_rule(request)
            + say(" `cancel {ref}` withdraws it.", ref=request.ref),
            topic="asked",
            subject=request.ref,
        )
    else:
        ctx.reply(
            say(
                "Asked the network: {request}. No peer can take it right now, so staff have "
                "been asked to find one. ",
                request=describe(request),
            )
            + _price_rule(request),
            topic="asked.escalated",
            subject=request.ref,
        )


def _price_rule(request: HelpRequest) -> Parts:
    """The price of a request, said the same way wherever a requester reads it."""
    return say(
        "{kind} costs {price}, however long it takes; it is held when a peer accepts and paid "
        "to them on your `thanks`.",
        kind=kind_words(request.kind).capitalize(),
        price=format_sif(request.price),
    )


async def _accepted_reviews(ctx: Context) -> str:
    """The caller's accepted reviews still to deliver, oldest first: "R-1, R-4"."""
    me = ctx.caller.id
    return ", ".join(
        r.ref
        for r in reversed(await ctx.uow.requests.of_member(me))
        if r.peer == me and r.status is RequestStatus.ASSIGNED
    )


@handlers.on(Offers)
async def offers(ctx: Context, cmd: Offers) -> None:
    mine = await ctx.uow.requests.open_offers(ctx.caller.id)
    accepted = await _accepted_reviews(ctx)
    if not mine and accepted:
        ctx.reply(
            say(
                "You have no open offers; your accepted reviews: {refs} (`requests` lists them).",
                refs=accepted,
            ),
            topic="offers",
        )
        return
    if not mine:
        ctx.reply(
            say("You have no open offers. Keep your `profile` current to get matching ones."),
            topic="offers",
        )
        return
    lines = [plain("Your open offers:")]
    for offer in mine:
        request = await ctx.uow.requests.get(offer.request)
        if request is not None:
            lines.append(
                say(
                    "{request} — until {until:%Y-%m-%d %H:%M} UTC; {why}",
                    request=describe(request),
                    until=offer.expires_at,
                    why=offer.explanation,
                )
            )
    lines.append(say("`accept R-n` takes one, `decline R-n [reason]` passes it on."))
    if accepted:
        lines.append(say("Your accepted reviews: {refs} (`requests` lists them).", refs=accepted))
    ctx.reply(join("\n", lines), topic="offers")


async def _my_offer(ctx: Context, request: HelpRequest) -> int:
    offer = await ctx.uow.requests.offer_for(request.id, ctx.caller.id)
    if offer is None:
        raise UserError(
            say("{ref} was not offered to you; `offers` lists yours.", ref=request.ref),
            "not-offered",
            request.ref,
        )
    if offer.status is OfferStatus.ACCEPTED:
        raise UserError(
            say(
                "You already accepted {ref}; `done {ref} <hours> <text>` delivers it.",
                ref=request.ref,
            ),
            subject=request.ref,
        )
    if offer.status is OfferStatus.WITHDRAWN:
        raise UserError(
            f"{request.ref} is no longer open: another peer took it or it was cancelled.",
            "offer-gone",
            request.ref,
        )
    if offer.status is not OfferStatus.OFFERED:
        raise UserError(
            f"Your offer for {request.ref} has ended ({offer.status.value}).",
            "offer-gone",
            request.ref,
        )
    return offer.id


@handlers.on(Accept)
async def accept(ctx: Context, cmd: Accept) -> None:
    request = await _request(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    # The conditional UPDATE decides: exactly one accept moves the request out of `open`.
    won = await lifecycle.move(
        ctx.uow, request.id, Move.ACCEPT, peer_id=ctx.caller.id, accepted_at=now
    )
    if not won:
        await ctx.uow.requests.answer_offer(offer_id, OfferStatus.WITHDRAWN, now, "taken")
        ctx.reply(
            f"Sorry, {request.ref} was just taken by another peer. Thanks for offering!",
            topic="taken",
            subject=request.ref,
        )
        return
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.ACCEPTED, now)
    await lifecycle.hold(ctx.post, request)
    for other in await ctx.uow.requests.withdraw_offers(request.id, now):
        await ctx.notices.dm_id(
            other.peer,
            f"{request.ref} was taken by another peer; thanks anyway.",
            topic="offer.taken",
            subject=request.ref,
        )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    # The reviewer sees every answer the innovator gave (not only a few): a finance
    # reviewer needs the income, cost, stage and partners as much as the summary.
    answers = reviewer_answers(ctx.flows.get("intake"), idea) if idea is not None else []
    details = "".join(f"{line}\n" for line in answers)
    again = say(" `idea I-{idea}` shows these answers again.", idea=request.idea_number)
    ctx.reply(
        say(
            "You accepted {request}.\n{details}When you are done: "
            "`done {ref} <hours> <your feedback>`. It pays you {price}, the fixed price of "
            "{kind}, when {requester} thanks you (or by itself {days:g} days after you deliver); "
            "the hours are for the record.",
            request=describe(request),
            details=details,
            ref=request.ref,
            price=format_sif(request.price),
            kind=kind_words(request.kind),
            requester=request.requester_name,
            days=ctx.settings.sif_auto_release_days,
        )
        + (again if idea is not None else ()),
        topic="accepted",
        subject=request.ref,
    )
    await ctx.notices.dm_id(
        request.requester,
        say(
            "{peer} accepted {ref} ({kind} of I-{idea}). {price} is held until you confirm "
            "with `thanks {ref}`.",
            peer=ctx.caller.name,
            ref=request.ref,
            kind=request.kind,
            idea=request.idea_number,
            price=format_sif(request.price),
        ),
        topic="request.accepted",
        subject=request.ref,
    )


@handlers.on(Decline)
async def decline(ctx: Context, cmd: Decline) -> None:
    request = await _request(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.DECLINED, now, cmd.reason or None)
    current = await ctx.uow.requests.get(request.id)
    offered = 0
    if current is not None and current.status.is_open:
        offered = await offer_next(ctx.uow, ctx.notices, ctx.settings, current, now)
        current = await ctx.uow.requests.get(request.id)
    ctx.reply(
        f"Declined {request.ref}; {what_next(offered, current)} Thanks for answering quickly.",
        topic="declined",
        subject=request.ref,
    )


@handlers.on(Done)
async def done(ctx: Context, cmd: Done) -> None:
    request = await _request(ctx, cmd.request)
    if request.peer != ctx.caller.id:
        offer = await ctx.uow.requests.offer_for(request.id, ctx.caller.id)
        if offer is not None and offer.status is OfferStatus.OFFERED:
            raise UserError(
                say(
                    "{ref} is offered to you but not accepted yet; `accept {ref}` first.",
                    ref=request.ref,
                ),
                "not-accepted",
                request.ref,
            )
        raise UserError(
            f"You are not the reviewer of {request.ref}, so you cannot deliver it.",
            subject=request.ref,
        )
    if not allowed(Move.DELIVER, request.status):
        raise UserError(
            f"{request.ref} is {request.status.label}, not waiting for delivery.",
            subject=request.ref,
        )
    now = ctx.clock.now()
    release_at = now + timedelta(days=ctx.settings.sif_auto_release_days)
    await _move(
        ctx,
        request,
        Move.DELIVER,
        hours=cmd.hours,
        feedback=cmd.feedback,
        delivered_at=now,
        auto_release_at=release_at,
    )
    ctx.reply(
        f"Delivered {request.ref} ({cmd.hours:g} h recorded). {request.requester_name} has been "
        f"sent your feedback; {format_sif(request.price)} (the price of "
        f"{kind_words(request.kind)}) is paid to you on their thanks or on "
        f"{release_at:%Y-%m-%d}.",
        topic="delivered",
        subject=request.ref,
    )
    await ctx.notices.dm_id(
        request.requester,
        say(
            "{peer} delivered {ref} ({kind} of I-{idea}, {hours:g} h):\n{feedback}\n"
            "`thanks {ref} [1-5] [comment]` pays {price} to {peer}; `dispute {ref} <reason>` "
            "holds it. Without either, it is paid on {release:%Y-%m-%d}.",
            peer=ctx.caller.name,
            ref=request.ref,
            kind=request.kind,
            idea=request.idea_number,
            hours=cmd.hours,
            feedback=cmd.feedback,
            price=format_sif(request.price),
            release=release_at,
        ),
        topic="request.delivered",
        subject=request.ref,
    )


def _requester_only(ctx: Context, request: HelpRequest, what: str) -> None:
    if request.requester != ctx.caller.id:
        raise UserError(
            f"{request.ref} is not your request, so you cannot {what} it.", subject=request.ref
        )


@handlers.on(Thanks)
async def thanks(ctx: Context, cmd: Thanks) -> None:
    request = await _request(ctx, cmd.request)
    _requester_only(ctx, request, "thank for")
    if request.status is RequestStatus.CONFIRMED:
        raise UserError(
            f"You already confirmed {request.ref}; its SIF has been paid.", subject=request.ref
        )
    if not allowed(Move.CONFIRM, request.status):
        raise UserError(
            f"{request.ref} is {request.status.label}; thanks is for a delivered review.",
            subject=request.ref,
        )
    now = ctx.clock.now()
    confirmed = await lifecycle.confirm(
        ctx.uow,
        ctx.post,
        request,
        now,
        f"{request.ref} {request.kind}, thanked",
        ctx.caller.id,
        rating=cmd.rating,
        comment=cmd.comment or None,
    )
    if not confirmed:
        await _changed(ctx, request)
    stars = f" ({cmd.rating}/5)" if cmd.rating else ""
    ctx.reply(
        f"Thanks sent: {format_sif(request.price)} paid to {request.peer_name} for {request.ref}.",
        topic="thanked",
        subject=request.ref,
    )
    assert request.peer is not None
    said = f": \u201c{cmd.comment}\u201d." if cmd.comment else "."
    await ctx.notices.dm_id(
        request.peer,
        f"{ctx.caller.name} thanked you for {request.ref}{stars}{said} "
        f"You received {format_sif(request.price)}.",
        topic="request.thanked",
        subject=request.ref,
    )


@handlers.on(Dispute)
async def dispute(ctx: Context, cmd: Dispute) -> None:
    request = await _request(ctx, cmd.request)
    _requester_only(ctx, request, "dispute")
    moved = await lifecycle.move(
        ctx.uow, request.id, Move.DISPUTE, note=cmd.reason, auto_release_at=None
    )
    if not moved:
        raise UserError(
            f"{request.ref} is {request.status.label}; only an accepted or delivered request "
            "can be disputed.",
            subject=request.ref,
        )
    ctx.reply(
        f"{request.ref} is disputed: the payment is held and staff will look at it.",
        topic="disputed",
        subject=request.ref,
    )
    await ctx.tell_staff(
        say(
            "Dispute on {request}, reviewer {peer}: {reason}\n"
            "`resolve {ref} pay|refund [note]` ends it.",
            request=describe(request),
            peer=request.peer_name,
            reason=cmd.reason,
            ref=request.ref,
        ),
        topic="disputed",
        subject=request.ref,
    )
    if request.peer is not None:
        await ctx.notices.dm_id(
            request.peer,
            f"{ctx.caller.name} disputed {request.ref}; staff will look at it and contact you.",
            topic="request.disputed",
            subject=request.ref,
        )


async def _changed(ctx: Context, request: HelpRequest) -> None:
    """Refuse because something else moved the request since it was read (a peer's
    accept racing a cancel): nothing is changed and the caller is told."""
    now = await ctx.uow.requests.get(request.id)
    state = now.status.label if now is not None else "gone"
    raise UserError(
        f"{request.ref} changed just now (it is {state}); nothing was changed, "
        "please check it and try again.",
        "changed",
        request.ref,
    )


async def _move(ctx: Context, request: HelpRequest, step: Move, **fields: Any) -> None:
    """Move the request on, or refuse if something else moved it since it was read."""
    if not await lifecycle.move(ctx.uow, request.id, step, **fields):
        await _changed(ctx, request)


async def cancel_request(ctx: Context, number: int) -> None:
    request = await _request(ctx, number)
    _requester_only(ctx, request, "cancel")
    now = ctx.clock.now()
    if allowed(Move.WITHDRAW, request.status):
        await _move(ctx, request, Move.WITHDRAW, closed_at=now)
        for offer in await ctx.uow.requests.withdraw_offers(request.id, now):
            await ctx.notices.dm_id(
                offer.peer,
                f"{request.ref} was cancelled by its requester.",
                topic="offer.cancelled",
                subject=request.ref,
            )
        ctx.reply(
            f"Cancelled {request.ref}; nothing was charged.",
            topic="cancelled",
            subject=request.ref,
        )
        return
    if allowed(Move.CANCEL, request.status):
        await _move(ctx, request, Move.CANCEL, closed_at=now)
        await lifecycle.refund(ctx.post, request, f"{request.ref} cancelled", ctx.caller.id)
        ctx.reply(
            f"Cancelled {request.ref}; {format_sif(request.price)} was refunded to you.",
            topic="cancelled",
            subject=request.ref,
        )
        if request.peer is not None:
            await ctx.notices.dm_id(
                request.peer,
                f"{ctx.caller.name} cancelled {request.ref}; you can stop working on it.",
                topic="request.cancelled",
                subject=request.ref,
            )
        return
    hint = (
        say("; use `thanks` or `dispute`.")
        if request.status is RequestStatus.DELIVERED
        else plain(".")
    )
    raise UserError(
        plain(f"{request.ref} is {request.status.label} and can no longer be cancelled") + hint,
        "not-cancellable",
        request.ref,
    )


@handlers.on(Assign)
async def assign(ctx: Context, cmd: Assign) -> None:
    request = await _request(ctx, cmd.request)
    peer = await ctx.resolve(cmd.peer)
    if not allowed(Move.ASSIGN, request.status):
        raise UserError(
            f"{request.ref} is {request.status.label}; "
            "only open or escalated requests can be assigned.",
            subject=request.ref,
        )
    if peer.id == request.requester:
        raise UserError(
            f"{peer.name} asked for {request.ref}, so they cannot review it.", subject=request.ref
        )
    now = ctx.clock.now()
    current = await ctx.uow.requests.offer_for(request.id, peer.id)
    if current is not None and current.status is OfferStatus.OFFERED:
        # Offered but silent: staff choosing them anyway renews the offer (a new deadline,
        # staff's reason), rather than leaving the request waiting on the old one.
        await ctx.uow.requests.answer_offer(current.id, OfferStatus.WITHDRAWN, now, "renewed")
    ttl = timedelta(hours=ctx.settings.sif_offer_ttl_hours)
    await _move(ctx, request, Move.ASSIGN, round=request.round + 1)
    why = f"chosen by {ctx.caller.name} (staff)"
    await ctx.uow.requests.add_offer(
        request.id, peer.id, request.round + 1, why, now, now + ttl, now + ttl / 2
    )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    ctx.notices.dm(
        peer,
        offer_text(request, idea, why, now + ttl),
        topic="offer",
        subject=request.ref,
        buttons=offer_buttons(request),
    )
    ctx.reply(
        f"Offered {request.ref} to {peer.name} until {now + ttl:%Y-%m-%d %H:%M} UTC.",
        topic="assigned",
        subject=request.ref,
        public=True,
    )


@handlers.on(Resolve)
async def resolve(ctx: Context, cmd: Resolve) -> None:
    request = await _request(ctx, cmd.request)
    if not allowed(Move.RESOLVE, request.status):
        raise UserError(
            f"{request.ref} is {request.status.label}, not disputed.", subject=request.ref
        )
    now = ctx.clock.now()
    note = cmd.note or f"resolved by {ctx.caller.name}"
    await _move(ctx, request, Move.RESOLVE, closed_at=now, note=note)
    if cmd.outcome == "pay" and request.peer is not None:
        await lifecycle.pay(
            ctx.post, request, f"{request.ref} dispute resolved: pay", ctx.caller.id
        )
        outcome = f"{format_sif(request.price)} paid to {request.peer_name}"
    elif request.accepted_at is not None:
        await lifecycle.refund(
            ctx.post, request, f"{request.ref} dispute resolved: refund", ctx.caller.id
        )
        outcome = f"{format_sif(request.price)} refunded to {request.requester_name}"
    else:
        outcome = "nothing was held"
    ctx.reply(
        f"Resolved {request.ref}: {outcome}.", topic="resolved", subject=request.ref, public=True
    )
    said = f" Staff's note: {sentence(cmd.note)}" if cmd.note else ""
    for member in (request.requester, request.peer):
        if member is not None:
            await ctx.notices.dm_id(
                member,
                f"Staff resolved the dispute on {request.ref}: {outcome}.{said}",
                topic="request.resolved",
                subject=request.ref,
            )
