"""`link`: one person, several chat accounts (Slack, Matrix, console), one member.

`link` on the account that already has the person's history gives a one-time code;
`link CODE` on the other account says which member the code joins, and `link CODE confirm`
moves that account onto the same member, so balance, profile and an unfinished
conversation are shared. Codes last 15 minutes and work once; linking never changes a role.
An account with history of its own cannot be linked by a code: staff `merge` the two
members instead (after `merge confirm`), which moves the balance by a ledger transfer.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from bot.app.context import Context, Handlers, UserError, role_name
from bot.app.offering import offer_next
from bot.commands import Link, Merge
from bot.domain import ledger, privacy
from bot.domain.records import Member, OfferStatus, RequestStatus
from bot.i18n import N_, _, sif
from bot.messages import Button, say

CODE_LIFETIME = timedelta(minutes=15)
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are typed by hand
CODE_LENGTH = 8


# Why a link code does not work, by what `claim` says of it.
BAD_CODES = {
    "unknown": N_("That link code is not valid; type `link` on your other account for a new one."),
    "expired": N_("That link code has expired; type `link` on your other account for a new one."),
    "used": N_("That link code was already used; type `link` on your other account for a new one."),
}


handlers = Handlers()


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


@handlers.on(Link)
async def link(ctx: Context, cmd: Link) -> None:
    now = ctx.clock.now()
    if cmd.code is None:
        code = new_code()
        await ctx.uow.links.create(ctx.caller.id, code, now, now + CODE_LIFETIME)
        ctx.reply(
            say(
                "Your link code is {code}. On your other chat account (Slack, Matrix, ...) send "
                "me `link {code}` within 15 minutes; it works once.",
                code=code,
            ),
            topic="link.code",
        )
        return
    status, member = await ctx.uow.links.claim(cmd.code.strip().upper(), now)
    if status == "unknown" or member is None:
        raise UserError(say(BAD_CODES.get(status, BAD_CODES["unknown"])), "bad-link-code")
    if member == ctx.caller.id:
        raise UserError(_("This account is already linked to that member."), "already-linked")
    if await ctx.uow.links.has_history(ctx.caller.id):
        raise UserError(
            say(
                "This account already has its own SIF history, so a code cannot join it; ask "
                "staff to join the two accounts with `merge @member @member`.",
            ),
            "has-history",
        )
    target = await ctx.uow.members.get(member)
    assert target is not None
    if target.role is not ctx.caller.role:
        # An admin who types a member's code would otherwise make the member an admin
        # (SIF_ADMINS raises whatever member the identity belongs to), and the other way
        # round: linking never changes what anyone may do.
        raise UserError(
            _(
                "This account's role is {role} and {name}'s is {other_role}; linking never "
                "changes a role, so ask an admin to give both the same role first."
            ).format(
                role=role_name(ctx.caller.role),
                name=target.name,
                other_role=role_name(target.role),
            ),
            "link-roles-differ",
        )
    if cmd.confirm is None:
        # Raised as a refusal, so the unit of work rolls back and the code stays unused:
        # nothing is linked until the person has seen whom the code joins.
        balance = await ctx.uow.ledger.balance_info(target)
        raise UserError(
            say(
                "This code joins this account to {name} ({role}, balance {balance}): their "
                "balance, profile and conversations become this account's. If {name} is you, "
                "type `link {code} confirm`. If someone else asked you to type a code, do not: "
                "staff never ask for one.",
                name=target.name,
                role=role_name(target.role),
                balance=sif(balance.balance),
                code=cmd.code.strip().upper(),
            ),
            "link.confirm",
        )
    await ctx.uow.links.move_identity(ctx.inbound.platform, ctx.inbound.user, ctx.caller.id, member)
    ctx.reply(
        _(
            "Linked: this account is now {name}, with the same balance, profile and "
            "conversations as your other account."
        ).format(name=target.name),
        topic="linked",
    )
    platform = ctx.inbound.platform
    ctx.notices.dm(
        target,
        lambda: _("Your {platform} account was linked to you.").format(platform=platform),
        topic="account.linked",
    )


# Requests in these states hold money or wait on someone: a merge would move them mid-way.
UNDER_WAY = (
    RequestStatus.OPEN,
    RequestStatus.ESCALATED,
    RequestStatus.ASSIGNED,
    RequestStatus.DELIVERED,
    RequestStatus.DISPUTED,
)
_STATE_WORDS = {
    RequestStatus.OPEN: N_("open"),
    RequestStatus.ESCALATED: N_("with staff"),
    RequestStatus.ASSIGNED: N_("accepted"),
    RequestStatus.DELIVERED: N_("delivered"),
    RequestStatus.DISPUTED: N_("disputed"),
}


async def _refuse_if_under_way(ctx: Context, member: Member) -> None:
    busy = [
        r for r in await ctx.uow.requests.of_member(member.id) if r.status in UNDER_WAY
    ]  # newest first
    if not busy:
        return
    listed = [
        (
            _("{ref} (requester, {state})")
            if r.requester == member.id
            else _("{ref} (reviewing, {state})")
        ).format(
            ref=r.ref,
            state=_(_STATE_WORDS[r.status]) if r.status in _STATE_WORDS else r.status.value,
        )
        for r in reversed(busy)
    ]
    refs = (
        listed[0]
        if len(listed) == 1
        else _("{items} and {last}").format(items=", ".join(listed[:-1]), last=listed[-1])
    )
    raise UserError(
        _(
            "{name} has {refs} under way; merging waits until it is paid, refunded or cancelled."
        ).format(name=member.name, refs=refs),
        "merge-busy",
    )


def _accounts(member: Member) -> str:
    return ", ".join(f"{i.platform}:{i.external_id}" for i in member.identities) or _("none")


@handlers.on(Merge)
async def merge(ctx: Context, cmd: Merge) -> None:
    """Staff join two members of one person (SPEC §3): the second joins the first."""
    keep, gone = await ctx.resolve(cmd.keep), await ctx.resolve(cmd.gone)
    if keep.id == gone.id:
        raise UserError(
            _("{keep} and {gone} are the same member; name two members to merge.").format(
                keep=keep.name, gone=gone.name
            ),
            "merge-same",
        )
    if keep.role is not gone.role:
        raise UserError(
            _(
                "{keep} is {keep_role} and {gone} is {gone_role}; merging never changes a "
                "role, so an admin gives both the same role first."
            ).format(
                keep=keep.name,
                keep_role=role_name(keep.role),
                gone=gone.name,
                gone_role=role_name(gone.role),
            ),
            "merge-roles-differ",
        )
    await _refuse_if_under_way(ctx, keep)
    await _refuse_if_under_way(ctx, gone)
    balance = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(gone.id))
    typed = f"merge confirm @{keep.name} @{gone.name}"
    if cmd.confirm is None:
        ctx.reply(
            say(
                "Merging {gone} into {keep}: {gone}'s chat accounts ({accounts}), balance "
                "{balance} (moved by a ledger transfer), ideas, requests, reviews and expertise "
                "become {keep}'s, who keeps their name and role; {gone}'s earlier ledger "
                "entries stay as they are. It needs a second look and nothing is done yet. "
                "To go ahead, type `{typed}`.",
                gone=gone.name,
                keep=keep.name,
                accounts=_accounts(gone),
                balance=sif(balance),
                typed=typed,
            ),
            topic="merge.confirm",
            buttons=(Button(_("Confirm"), typed),),
        )
        return
    now = ctx.clock.now()
    reason = "merged from another account of the same person"
    if balance > 0:
        await ctx.post(ledger.transfer(gone.id, keep.id, balance, reason, ctx.caller.id))
    elif balance < 0:
        await ctx.post(
            ledger.transfer(
                keep.id, gone.id, -balance, "merged: the other account's debt", ctx.caller.id
            )
        )
    # An offer both were given stays with the first; the second's copy goes, and its
    # request moves on if that leaves it without an open offer.
    passed_on = []
    for offer in await ctx.uow.requests.open_offers(gone.id):
        if await ctx.uow.requests.offer_for(offer.request, keep.id) is not None:
            await ctx.uow.requests.answer_offer(offer.id, OfferStatus.WITHDRAWN, now, "merged")
            passed_on.append(offer.request)
    await ctx.uow.links.merge_members(keep.id, gone.id, privacy.merged_placeholder(gone.id))
    for request_id in passed_on:
        request = await ctx.uow.requests.get(request_id)
        if request is not None and request.status.is_open:
            await offer_next(ctx.uow, ctx.notices, ctx.settings, request, now)
    total = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(keep.id))
    done = _(
        "Merged {gone} into {keep}: chat accounts {accounts} and {balance} moved; {keep}'s "
        "balance is now {total}."
    ).format(
        gone=gone.name,
        keep=keep.name,
        accounts=_accounts(gone),
        balance=sif(balance),
        total=sif(total),
    )
    ctx.reply(done, topic="merged")
    caller, kept, joined = ctx.caller.name, keep.name, gone.name
    await ctx.tell_staff(
        lambda: _(
            "{caller} merged {gone} into {keep} (two accounts of one person); {keep}'s balance "
            "is now {total}."
        ).format(caller=caller, gone=joined, keep=kept, total=sif(total)),
        topic="merge.done",
    )
    merged = await ctx.uow.members.get(keep.id)
    if merged is not None and merged.id != ctx.caller.id:
        ctx.notices.dm(
            merged,
            lambda: _(
                "Staff joined your two accounts: {gone}'s chat accounts, balance, ideas, "
                "requests and reviews are now {keep}'s. Your balance is {total}."
            ).format(gone=joined, keep=kept, total=sif(total)),
            topic="account.merged",
        )
