"""`network` (staff): this node's partner factories, how they are reached, their mirror
balances and the requests crossing to or from them (SPEC §12)."""

from __future__ import annotations

from bot.app import network
from bot.app.context import Context, Handlers, UserError
from bot.app.handlers.requests import request_of
from bot.app.notices import FEDERATION
from bot.app.offering import shown_moment, status_label
from bot.commands import Forward, NetworkOverview
from bot.domain.ledger import AccountKey
from bot.domain.records import RequestStatus, Role
from bot.i18n import N_, _, ngettext, number, sif
from bot.messages import Table, plain, say

handlers = Handlers()

HEADERS = (N_("Partner"), N_("Last heard from"), N_("Waiting to go"), N_("Mirror balance"))
CROSS_HEADERS = (N_("Request"), N_("With"), N_("Role"), N_("Status"), N_("There"))
FINISHED = (RequestStatus.CONFIRMED, RequestStatus.CLOSED, RequestStatus.CANCELLED)
ROLES = {network.ORIGIN: N_("sent by us"), network.HOST: N_("from them")}


@handlers.on(NetworkOverview)
async def overview(ctx: Context, cmd: NetworkOverview) -> None:
    settings, uow = ctx.settings, ctx.uow
    partners = network.partners(settings)
    if not settings.sif_node_name or not partners:
        ctx.reply(
            say(
                "This bot is not part of a network of factories: set SIF_NODE_NAME, "
                "SIF_NODE_KEY_FILE and SIF_PARTNERS_FILE (README, Federation)."
            ),
            topic="network",
            public=True,
        )
        return
    rows = []
    for name in sorted(partners):
        heard = await uow.cross.last_heard(name)
        member = await uow.members.by_identity(FEDERATION, name)
        balance = (
            await uow.ledger.balance(ctx.community.id, AccountKey.of(member.id))
            if member is not None and member.community == ctx.community.id
            else 0
        )
        rows.append(
            (
                name,
                shown_moment(heard) + " UTC" if heard else _("never"),
                number(await uow.cross.waiting(name)),
                sif(balance),
            )
        )
    crossing = []
    for cross in await uow.cross.all(ctx.community.id):
        request = await uow.requests.get(cross.request)
        if request is None or request.status in FINISHED:
            continue
        crossing.append(
            (
                request.ref,
                cross.partner,
                _(ROLES.get(cross.role, cross.role)),
                status_label(request.status),
                cross.remote_ref or "",
            )
        )
    heading = ngettext(
        "Node {name}, {count} partner:", "Node {name}, {count} partners:", len(partners)
    ).format(name=settings.sif_node_name, count=number(len(partners)))
    parts = (*plain(heading + "\n"), Table(tuple(_(h) for h in HEADERS), tuple(rows)))
    if crossing:
        parts = (
            *parts,
            *plain("\n" + _("Requests crossing now:") + "\n"),
            Table(tuple(_(h) for h in CROSS_HEADERS), tuple(crossing)),
        )
    else:
        parts = (*parts, *plain("\n" + _("No request is crossing now.")))
    ctx.reply(parts, topic="network", public=True)


@handlers.on(Forward)
async def forward(ctx: Context, cmd: Forward) -> None:
    request = await request_of(ctx, cmd.request)
    if request.requester != ctx.caller.id and not ctx.caller.role.allows(Role.STAFF):
        raise UserError(
            _("{ref} is not your request; staff may forward any.").format(ref=request.ref),
            subject=request.ref,
        )
    partners = network.partners(ctx.settings)
    if not ctx.settings.sif_node_name or not partners:
        raise UserError(
            _("This bot is not part of a network of factories, so there is nowhere to send it."),
            subject=request.ref,
        )
    if not request.status.is_open:
        raise UserError(
            _("{ref} is {status}: only an open request can go to the network.").format(
                ref=request.ref, status=status_label(request.status)
            ),
            subject=request.ref,
        )
    crossed = await ctx.uow.cross.of_request(request.id)
    if crossed is not None:
        raise UserError(
            _("{ref} is already with the network ({partner}).").format(
                ref=request.ref, partner=crossed.partner
            ),
            subject=request.ref,
        )
    to = None
    if cmd.partner is not None:
        to = partners.get(cmd.partner.lower())
        if to is None:
            raise UserError(
                _("'{name}' is not a partner factory; partners: {partners}.").format(
                    name=cmd.partner[:40], partners=", ".join(sorted(partners))
                ),
                subject=request.ref,
            )
    now = ctx.clock.now()
    idea = await ctx.uow.ideas.by_number(ctx.community.id, request.idea_number)
    # Peers here can no longer take it: the offers out are withdrawn first.
    for offer in await ctx.uow.requests.withdraw_offers(request.id, now):
        await ctx.notices.dm_id(
            offer.peer,
            lambda: _("{ref} went to the network of factories; thanks anyway.").format(
                ref=request.ref
            ),
            topic="offer.withdrawn",
            subject=request.ref,
        )
    sent = await network.forward(
        ctx.uow,
        ctx.notices,
        ctx.settings,
        request,
        idea,
        now,
        local_left=False,
        to=to or network.choose_partner(partners, request.tags, frozenset()),
    )
    if not sent:
        raise UserError(_("{ref} could not be sent to the network.").format(ref=request.ref))
    cross = await ctx.uow.cross.of_request(request.id)
    ctx.reply(
        _(
            "Sent {ref} to the factory {partner}; you are told when one of its peers accepts."
        ).format(ref=request.ref, partner=cross.partner if cross else ""),
        topic="forwarded",
        subject=request.ref,
    )
