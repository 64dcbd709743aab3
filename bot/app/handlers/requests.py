"""Review requests: `request`, `offers`, `accept`, `decline`, `done`, `thanks`, `dispute`,
`cancel R-n`, and staff `assign` and `resolve` (SPEC §5, §6 payment)."""

from __future__ import annotations

import difflib
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bot.app import lifecycle, network
from bot.app.context import Context, Handlers, UserError
from bot.app.offering import (
    capitalized,
    capitalized_parts,
    describe,
    kind_name,
    kind_phrase,
    offer_next,
    offer_text,
    rank_round,
    reviewer_answers,
    shown_date,
    shown_moment,
    status_label,
    what_next,
    with_offer_buttons,
)
from bot.app.wording import why
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
from bot.domain.affinity import GOOD_RATING
from bot.domain.records import HelpRequest, Idea, OfferStatus, RequestStatus, Role
from bot.domain.requests import Move, allowed
from bot.i18n import N_, _, ngettext, number, sentence, sif
from bot.messages import Parts, join, plain, say

handlers = Handlers()


async def request_of(ctx: Context, number: int) -> HelpRequest:
    found = await ctx.uow.requests.by_number(ctx.community.id, number)
    if found is None:
        # Staff look after every request, so they are pointed to the list of all of them.
        template = (
            N_("There is no request R-{number} here; `export requests` lists every request.")
            if ctx.caller.role.allows(Role.STAFF)
            else N_("There is no request R-{number} here; `requests` lists yours.")
        )
        raise UserError(say(template, number=number), "unknown-request")
    return found


# A request of one kind on one idea that is still being answered: a second one of the same
# kind would only duplicate it (`request I1 review` twice, or `request I-1`).
BEING_ANSWERED = (RequestStatus.OPEN, RequestStatus.ESCALATED, RequestStatus.ASSIGNED)


def _stands(request: HelpRequest) -> str:
    if request.status is RequestStatus.ASSIGNED:
        return _("accepted by {peer}").format(peer=request.peer_name)
    if request.status is RequestStatus.ESCALATED:
        return _("open, staff are finding a peer")
    return _("open")


async def _refuse_a_duplicate(ctx: Context, idea: Idea, kind: str) -> None:
    for other in await ctx.uow.requests.of_idea(idea.id):
        if other.kind == kind and other.status in BEING_ANSWERED:
            values = {
                "ref": other.ref,
                "kind": kind_phrase(kind),
                "idea": idea.ref,
                "stands": _stands(other),
            }
            if kind == "review":
                refusal = say(
                    "{ref} already asks for {kind} of {idea} ({stands}); `cancel {ref}` first "
                    "if you want a new one.",
                    **values,
                )
            else:
                refusal = say(
                    "{ref} already asks for {kind} on {idea} ({stands}); `cancel {ref}` first "
                    "if you want a new one.",
                    **values,
                )
            raise UserError(refusal, "duplicate-request", other.ref)


def _idea_help_tags(answers: dict[str, object]) -> list[str]:
    value = answers.get("help")
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


@handlers.on(RequestHelp)
async def request_help(ctx: Context, cmd: RequestHelp) -> None:
    idea = await ctx.idea(cmd.idea)
    if idea.owner != ctx.caller.id:
        raise UserError(
            _("{ref} is not your idea; only its owner can ask help for it.").format(ref=idea.ref)
        )
    known = await ctx.uow.communities.tags(ctx.community.id)
    for tag in cmd.tags:
        if tag not in known:
            close = difflib.get_close_matches(tag, known, n=1)
            if close:
                raise UserError(
                    _(
                        "'{tag}' is not one of this community's tags. Did you mean '{close}'?"
                    ).format(tag=tag, close=close[0])
                )
            raise UserError(_("'{tag}' is not one of this community's tags.").format(tag=tag))
    await _refuse_a_duplicate(ctx, idea, cmd.kind)
    tags = list(cmd.tags) or _idea_help_tags(idea.answers)
    price = ctx.settings.prices[cmd.kind]
    balance = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(ctx.caller.id))
    committed = await ctx.uow.requests.committed(ctx.caller.id)
    limit = ctx.settings.credit_limit
    if balance - committed - price < limit:
        values = {
            "kind": kind_phrase(cmd.kind),
            "price": sif(price),
            "balance": sif(balance),
            "committed": sif(committed),
            "limit": sif(limit),
        }
        if committed:
            refusal = _(
                "{kind} costs {price}, but your balance is {balance} and {committed} promised "
                "to open requests and the credit limit is {limit}; review someone's idea to "
                "earn SIF first."
            )
        else:
            refusal = _(
                "{kind} costs {price}, but your balance is {balance} and the credit limit is "
                "{limit}; review someone's idea to earn SIF first."
            )
        raise UserError(capitalized(refusal.format(**values)), "credit-limit", idea.ref)
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
        asked = ngettext(
            "Asked the network: {request}. Offered to {count} peer.",
            "Asked the network: {request}. Offered to {count} peers.",
            made,
        ).format(request=describe(request), count=number(made))
        ctx.reply(_asked(asked, request), topic="asked", subject=request.ref)
    elif await ctx.uow.cross.of_request(request.id) is not None:
        # No peer here: it went to a partner factory (the notice says which).
        asked = _("Asked the network: {request}.").format(request=describe(request))
        ctx.reply(_asked(asked, request), topic="asked.forwarded", subject=request.ref)
    else:
        asked = _(
            "Asked the network: {request}. No peer can take it right now, so staff have been "
            "asked to find one."
        ).format(request=describe(request))
        ctx.reply(
            plain(asked + " ") + _price_rule(request),
            topic="asked.escalated",
            subject=request.ref,
        )


def _asked(asked: str, request: HelpRequest) -> Parts:
    """The answer to a request that is on its way: what, the price, how to withdraw it."""
    return (
        plain(asked + " ")
        + _price_rule(request)
        + plain(" ")
        + say("`cancel {ref}` withdraws it.", ref=request.ref)
    )


def _price_rule(request: HelpRequest) -> Parts:
    """The price of a request, said the same way wherever a requester reads it."""
    return capitalized_parts(
        say(
            "{kind} costs {price}, however long it takes; it is held when a peer accepts and "
            "paid to them on your `thanks`.",
            kind=kind_phrase(request.kind),
            price=sif(request.price),
        )
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
    lines = [plain(_("Your open offers:"))]
    for offer in mine:
        request = await ctx.uow.requests.get(offer.request)
        if request is not None:
            lines.append(
                say(
                    "{request} — until {until} UTC; {why}",
                    request=describe(request),
                    until=shown_moment(offer.expires_at),
                    why=why(offer.explanation),
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
            _("{ref} is no longer open: another peer took it or it was cancelled.").format(
                ref=request.ref
            ),
            "offer-gone",
            request.ref,
        )
    # what is left of an offer that is not open: declined or expired
    if offer.status is OfferStatus.DECLINED:
        ended = _("Your offer for {ref} has ended (declined).")
    elif offer.status is OfferStatus.EXPIRED:
        ended = _("Your offer for {ref} has ended (expired).")
    else:
        return offer.id
    raise UserError(ended.format(ref=request.ref), "offer-gone", request.ref)


@handlers.on(Accept)
async def accept(ctx: Context, cmd: Accept) -> None:
    request = await request_of(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    # The conditional UPDATE decides: exactly one accept moves the request out of `open`.
    won = await lifecycle.move(
        ctx.uow, request.id, Move.ACCEPT, peer_id=ctx.caller.id, accepted_at=now
    )
    if not won:
        await ctx.uow.requests.answer_offer(offer_id, OfferStatus.WITHDRAWN, now, "taken")
        ctx.reply(
            _("Sorry, {ref} was just taken by another peer. Thanks for offering!").format(
                ref=request.ref
            ),
            topic="taken",
            subject=request.ref,
        )
        return
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.ACCEPTED, now)
    floor = None
    if ctx.settings.sif_node_name:  # the requester may be a partner's mirror account
        requester = await ctx.uow.members.get(request.requester)
        floor = network.floor_of(ctx.settings, requester) if requester else None
    await lifecycle.hold(ctx.post, request, floor)
    await network.accepted_here(ctx.notices, request, ctx.caller)
    for other in await ctx.uow.requests.withdraw_offers(request.id, now):
        await ctx.notices.dm_id(
            other.peer,
            lambda: _("{ref} was taken by another peer; thanks anyway.").format(ref=request.ref),
            topic="offer.taken",
            subject=request.ref,
        )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    # The reviewer sees every answer the innovator gave (not only a few): a finance
    # reviewer needs the income, cost, stage and partners as much as the summary.
    answers = reviewer_answers(ctx.flows.get("intake"), idea) if idea is not None else []
    details = "".join(f"{line}\n" for line in answers)
    again = plain(" ") + say("`idea I-{idea}` shows these answers again.", idea=request.idea_number)
    ctx.reply(
        say(
            "You accepted {request}.\n{details}When you are done: "
            "`done {ref} <hours> <your feedback>`. It pays you {price}, the fixed price of "
            "{kind}, when {requester} thanks you (or by itself {days} days after you deliver); "
            "the hours are for the record.",
            request=describe(request),
            details=details,
            ref=request.ref,
            price=sif(request.price),
            kind=kind_phrase(request.kind),
            requester=request.requester_name,
            days=number(ctx.settings.sif_auto_release_days),
        )
        + (again if idea is not None else ()),
        topic="accepted",
        subject=request.ref,
    )
    await ctx.notices.dm_id(
        request.requester,
        lambda: say(
            "{peer} accepted {ref} ({kind} of I-{idea}). {price} is held until you confirm "
            "with `thanks {ref}`.",
            peer=ctx.caller.name,
            ref=request.ref,
            kind=kind_name(request.kind),
            idea=request.idea_number,
            price=sif(request.price),
        ),
        topic="request.accepted",
        subject=request.ref,
    )


@handlers.on(Decline)
async def decline(ctx: Context, cmd: Decline) -> None:
    request = await request_of(ctx, cmd.request)
    offer_id = await _my_offer(ctx, request)
    now = ctx.clock.now()
    await ctx.uow.requests.answer_offer(offer_id, OfferStatus.DECLINED, now, cmd.reason or None)
    current = await ctx.uow.requests.get(request.id)
    offered = 0
    if current is not None and current.status.is_open:
        offered = await offer_next(ctx.uow, ctx.notices, ctx.settings, current, now)
        current = await ctx.uow.requests.get(request.id)
    ctx.reply(
        _("Declined {ref}; {what_next} Thanks for answering quickly.").format(
            ref=request.ref, what_next=what_next(offered, current)
        ),
        topic="declined",
        subject=request.ref,
    )


@handlers.on(Done)
async def done(ctx: Context, cmd: Done) -> None:
    request = await request_of(ctx, cmd.request)
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
            _("You are not the reviewer of {ref}, so you cannot deliver it.").format(
                ref=request.ref
            ),
            subject=request.ref,
        )
    if not allowed(Move.DELIVER, request.status):
        raise UserError(
            _("{ref} is {status}, not waiting for delivery.").format(
                ref=request.ref, status=status_label(request.status)
            ),
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
    await network.delivered_here(ctx.notices, request, cmd.hours, cmd.feedback)
    ctx.reply(
        _(
            "Delivered {ref} ({hours} h recorded). {requester} has been sent your feedback; "
            "{price} (the price of {kind}) is paid to you on their thanks or on {release}."
        ).format(
            ref=request.ref,
            hours=_hours(cmd.hours),
            requester=request.requester_name,
            price=sif(request.price),
            kind=kind_phrase(request.kind),
            release=shown_date(release_at),
        ),
        topic="delivered",
        subject=request.ref,
    )
    await ctx.notices.dm_id(
        request.requester,
        lambda: say(
            "{peer} delivered {ref} ({kind} of I-{idea}, {hours} h):\n{feedback}\n"
            "`thanks {ref} [1-5] [comment]` pays {price} to {peer}; `dispute {ref} <reason>` "
            "holds it. Without either, it is paid on {release}.",
            peer=ctx.caller.name,
            ref=request.ref,
            kind=kind_name(request.kind),
            idea=request.idea_number,
            hours=_hours(cmd.hours),
            feedback=cmd.feedback,
            price=sif(request.price),
            release=shown_date(release_at),
        ),
        topic="request.delivered",
        subject=request.ref,
    )


def _hours(hours: float) -> str:
    """Hours as they were typed (1.5, 2), the language's way (1,5 in Dutch)."""
    return number(Decimal(f"{hours:g}"))


def _requester_only(ctx: Context, request: HelpRequest, refusal: str) -> None:
    """Refuse (with `refusal`, which names the request as {ref}) unless the caller asked
    for the request."""
    if request.requester != ctx.caller.id:
        raise UserError(refusal.format(ref=request.ref), subject=request.ref)


@handlers.on(Thanks)
async def thanks(ctx: Context, cmd: Thanks) -> None:
    request = await request_of(ctx, cmd.request)
    _requester_only(ctx, request, _("{ref} is not your request, so you cannot thank for it."))
    if request.status is RequestStatus.CONFIRMED:
        raise UserError(
            _("You already confirmed {ref}; its SIF has been paid.").format(ref=request.ref),
            subject=request.ref,
        )
    if not allowed(Move.CONFIRM, request.status):
        raise UserError(
            _("{ref} is {status}; thanks is for a delivered review.").format(
                ref=request.ref, status=status_label(request.status)
            ),
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
    await network.confirmed_here(ctx.notices, request, cmd.rating, cmd.comment or "")
    if cmd.rating is not None and cmd.rating >= GOOD_RATING and request.peer is not None:
        # A review rated well teaches routing what its reviewer knows (SPEC §14).
        await ctx.uow.texts.peer_changed(request.peer)
    ctx.reply(
        _("Thanks sent: {price} paid to {peer} for {ref}.").format(
            price=sif(request.price), peer=request.peer_name, ref=request.ref
        ),
        topic="thanked",
        subject=request.ref,
    )
    assert request.peer is not None

    def thanked() -> str:
        if cmd.rating and cmd.comment:
            text = _(
                "{name} thanked you for {ref} ({rating}/5): \u201c{comment}\u201d. "
                "You received {price}."
            )
        elif cmd.rating:
            text = _("{name} thanked you for {ref} ({rating}/5). You received {price}.")
        elif cmd.comment:
            text = _("{name} thanked you for {ref}: \u201c{comment}\u201d. You received {price}.")
        else:
            text = _("{name} thanked you for {ref}. You received {price}.")
        return text.format(
            name=ctx.caller.name,
            ref=request.ref,
            rating=cmd.rating,
            comment=cmd.comment,
            price=sif(request.price),
        )

    await ctx.notices.dm_id(request.peer, thanked, topic="request.thanked", subject=request.ref)


@handlers.on(Dispute)
async def dispute(ctx: Context, cmd: Dispute) -> None:
    request = await request_of(ctx, cmd.request)
    _requester_only(ctx, request, _("{ref} is not your request, so you cannot dispute it."))
    moved = await lifecycle.move(
        ctx.uow, request.id, Move.DISPUTE, note=cmd.reason, auto_release_at=None
    )
    if not moved:
        raise UserError(
            _("{ref} is {status}; only an accepted or delivered request can be disputed.").format(
                ref=request.ref, status=status_label(request.status)
            ),
            subject=request.ref,
        )
    ctx.reply(
        _("{ref} is disputed: the payment is held and staff will look at it.").format(
            ref=request.ref
        ),
        topic="disputed",
        subject=request.ref,
    )
    await ctx.notices.staff(
        lambda: say(
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
            lambda: _("{name} disputed {ref}; staff will look at it and contact you.").format(
                name=ctx.caller.name, ref=request.ref
            ),
            topic="request.disputed",
            subject=request.ref,
        )


async def _changed(ctx: Context, request: HelpRequest) -> None:
    """Refuse because something else moved the request since it was read (a peer's
    accept racing a cancel): nothing is changed and the caller is told."""
    now = await ctx.uow.requests.get(request.id)
    state = status_label(now.status) if now is not None else _("gone")
    raise UserError(
        _(
            "{ref} changed just now (it is {state}); nothing was changed, please check it and "
            "try again."
        ).format(ref=request.ref, state=state),
        "changed",
        request.ref,
    )


async def _move(ctx: Context, request: HelpRequest, step: Move, **fields: Any) -> None:
    """Move the request on, or refuse if something else moved it since it was read."""
    if not await lifecycle.move(ctx.uow, request.id, step, **fields):
        await _changed(ctx, request)


async def cancel_request(ctx: Context, number: int) -> None:
    request = await request_of(ctx, number)
    _requester_only(ctx, request, _("{ref} is not your request, so you cannot cancel it."))
    now = ctx.clock.now()
    if allowed(Move.WITHDRAW, request.status):
        await _move(ctx, request, Move.WITHDRAW, closed_at=now)
        await network.cancelled_here(ctx.notices, request)
        for offer in await ctx.uow.requests.withdraw_offers(request.id, now):
            await ctx.notices.dm_id(
                offer.peer,
                lambda: _("{ref} was cancelled by its requester.").format(ref=request.ref),
                topic="offer.cancelled",
                subject=request.ref,
            )
        ctx.reply(
            _("Cancelled {ref}; nothing was charged.").format(ref=request.ref),
            topic="cancelled",
            subject=request.ref,
        )
        return
    if allowed(Move.CANCEL, request.status):
        await _move(ctx, request, Move.CANCEL, closed_at=now)
        await lifecycle.refund(ctx.post, request, f"{request.ref} cancelled", ctx.caller.id)
        await network.cancelled_here(ctx.notices, request)
        ctx.reply(
            _("Cancelled {ref}; {price} was refunded to you.").format(
                ref=request.ref, price=sif(request.price)
            ),
            topic="cancelled",
            subject=request.ref,
        )
        if request.peer is not None:
            await ctx.notices.dm_id(
                request.peer,
                lambda: _("{name} cancelled {ref}; you can stop working on it.").format(
                    name=ctx.caller.name, ref=request.ref
                ),
                topic="request.cancelled",
                subject=request.ref,
            )
        return
    status = status_label(request.status)
    refusal = (
        say(
            "{ref} is {status} and can no longer be cancelled; use `thanks` or `dispute`.",
            ref=request.ref,
            status=status,
        )
        if request.status is RequestStatus.DELIVERED
        else plain(
            _("{ref} is {status} and can no longer be cancelled.").format(
                ref=request.ref, status=status
            )
        )
    )
    raise UserError(refusal, "not-cancellable", request.ref)


@handlers.on(Assign)
async def assign(ctx: Context, cmd: Assign) -> None:
    request = await request_of(ctx, cmd.request)
    peer = await ctx.resolve(cmd.peer)
    if not allowed(Move.ASSIGN, request.status):
        raise UserError(
            _("{ref} is {status}; only open or escalated requests can be assigned.").format(
                ref=request.ref, status=status_label(request.status)
            ),
            subject=request.ref,
        )
    if peer.id == request.requester:
        raise UserError(
            _("{name} asked for {ref}, so they cannot review it.").format(
                name=peer.name, ref=request.ref
            ),
            subject=request.ref,
        )
    now = ctx.clock.now()
    current = await ctx.uow.requests.offer_for(request.id, peer.id)
    if current is not None and current.status is OfferStatus.OFFERED:
        # Offered but silent: staff choosing them anyway renews the offer (a new deadline,
        # staff's reason), rather than leaving the request waiting on the old one.
        await ctx.uow.requests.answer_offer(current.id, OfferStatus.WITHDRAWN, now, "renewed")
    ttl = timedelta(hours=ctx.settings.sif_offer_ttl_hours)
    await _move(ctx, request, Move.ASSIGN, round=request.round + 1)
    # the offer keeps its reason in English; the peer reads it in their language
    why = f"chosen by {ctx.caller.name} (staff)"
    await ctx.uow.requests.add_offer(
        request.id, peer.id, request.round + 1, why, now, now + ttl, now + ttl / 2
    )
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    ctx.notices.dm(
        peer,
        lambda: with_offer_buttons(
            offer_text(
                request,
                idea,
                _("chosen by {name} (staff)").format(name=ctx.caller.name),
                now + ttl,
            ),
            request,
        ),
        topic="offer",
        subject=request.ref,
    )
    ctx.reply(
        _("Offered {ref} to {name} until {until} UTC.").format(
            ref=request.ref, name=peer.name, until=shown_moment(now + ttl)
        ),
        topic="assigned",
        subject=request.ref,
        public=True,
    )


@handlers.on(Resolve)
async def resolve(ctx: Context, cmd: Resolve) -> None:
    request = await request_of(ctx, cmd.request)
    if not allowed(Move.RESOLVE, request.status):
        raise UserError(
            _("{ref} is {status}, not disputed.").format(
                ref=request.ref, status=status_label(request.status)
            ),
            subject=request.ref,
        )
    now = ctx.clock.now()
    note = cmd.note or f"resolved by {ctx.caller.name}"  # kept with the request, in English
    await _move(ctx, request, Move.RESOLVE, closed_at=now, note=note)
    if cmd.outcome == "pay" and request.peer is not None:
        await lifecycle.pay(
            ctx.post, request, f"{request.ref} dispute resolved: pay", ctx.caller.id
        )
        paid = True
    elif request.accepted_at is not None:
        await lifecycle.refund(
            ctx.post, request, f"{request.ref} dispute resolved: refund", ctx.caller.id
        )
        paid = False
    else:
        paid = None
    await network.resolved_here(ctx.notices, request, paid)

    def outcome() -> str:
        """What became of the price, in the language being written in."""
        if paid:
            return _("{price} paid to {peer}").format(
                price=sif(request.price), peer=request.peer_name
            )
        if paid is False:
            return _("{price} refunded to {requester}").format(
                price=sif(request.price), requester=request.requester_name
            )
        return _("nothing was held")

    ctx.reply(
        _("Resolved {ref}: {outcome}.").format(ref=request.ref, outcome=outcome()),
        topic="resolved",
        subject=request.ref,
        public=True,
    )

    def resolved() -> str:
        if cmd.note:
            return _("Staff resolved the dispute on {ref}: {outcome}. Staff's note: {note}").format(
                ref=request.ref, outcome=outcome(), note=sentence(cmd.note)
            )
        return _("Staff resolved the dispute on {ref}: {outcome}.").format(
            ref=request.ref, outcome=outcome()
        )

    for member in (request.requester, request.peer):
        if member is not None:
            await ctx.notices.dm_id(member, resolved, topic="request.resolved", subject=request.ref)
