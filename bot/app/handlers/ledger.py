"""SIF commands: `balance`, `history`, `grant`, `adjust`, `balances`."""

from __future__ import annotations

from bot.app.context import Context, Handlers
from bot.commands import Adjust, Balance, Balances, Grant, History, MemberRef
from bot.domain import ledger
from bot.domain.ledger import EntryKind, format_sif
from bot.domain.records import BalanceInfo, Member, Role
from bot.i18n import N_, _, ngettext, number, sentence, sif
from bot.messages import Button, Table, plain, say

HISTORY_LINES = 15
TABLE_EDGE = 10  # with many members, `balances` shows this many lowest and highest


# The kinds of ledger entries as `history` shows them.
KIND_WORDS = {
    EntryKind.GRANT: N_("grant"),
    EntryKind.HOLD: N_("hold"),
    EntryKind.RELEASE: N_("release"),
    EntryKind.REFUND: N_("refund"),
    EntryKind.ADJUST: N_("adjust"),
    EntryKind.REVERSE: N_("reverse"),
    EntryKind.TRANSFER: N_("transfer"),
}

# Why a grant or adjustment needs a second look (SPEC §13): it is for the caller, or large.
SELF, LARGE = "self", "large"

# What the caller is asked, for each command and reason.
CONFIRM_PROMPTS = {
    ("grant", SELF): N_(
        "Granting {amount} to {name}: it is for yourself, so it needs a second look and "
        "nothing is done yet. To go ahead, type `{typed}` (it will be posted to the staff "
        "channel)."
    ),
    ("grant", LARGE): N_(
        "Granting {amount} to {name}: it is above {threshold}, so it needs a second look and "
        "nothing is done yet. To go ahead, type `{typed}` (it will be posted to the staff "
        "channel)."
    ),
    ("adjust", SELF): N_(
        "Adjusting {name}'s balance by {amount}: it is for yourself, so it needs a second "
        "look and nothing is done yet. To go ahead, type `{typed}` (it will be posted to the "
        "staff channel)."
    ),
    ("adjust", LARGE): N_(
        "Adjusting {name}'s balance by {amount}: it is above {threshold}, so it needs a "
        "second look and nothing is done yet. To go ahead, type `{typed}` (it will be posted "
        "to the staff channel)."
    ),
}

# What the staff channel is told once it is confirmed.
CONFIRMED_POSTS = {
    ("grant", SELF): N_(
        "{caller} granted {amount} to {name} ({reason}), confirmed because it is for "
        "themselves. Their balance is now {balance}."
    ),
    ("grant", LARGE): N_(
        "{caller} granted {amount} to {name} ({reason}), confirmed because it is above "
        "{threshold}. Their balance is now {balance}."
    ),
    ("adjust", SELF): N_(
        "{caller} adjusted {name}'s balance by {amount} ({reason}), confirmed because it is "
        "for themselves. Their balance is now {balance}."
    ),
    ("adjust", LARGE): N_(
        "{caller} adjusted {name}'s balance by {amount} ({reason}), confirmed because it is "
        "above {threshold}. Their balance is now {balance}."
    ),
}


handlers = Handlers()


async def _subject(ctx: Context, ref: MemberRef | None, what: str) -> Member:
    """The caller, or (for staff) the member they named; `what` is what staff may do, an
    English phrase marked with N_()."""
    if ref is None:
        return ctx.caller
    member = await ctx.resolve(ref)
    if member.id != ctx.caller.id:
        ctx.require(Role.STAFF, what)
    return member


@handlers.on(Balance)
async def balance(ctx: Context, cmd: Balance) -> None:
    member = await _subject(ctx, cmd.member, N_("see another member's balance"))
    info = await ctx.uow.ledger.balance_info(member)
    own = member.id == ctx.caller.id
    limit = ctx.settings.credit_limit
    if own:
        text = _(
            "Your balance: {balance}\n"
            "Held for open requests: {held}\n"
            "Credit limit: {limit} (can spend {room} more)\n"
            "Lifetime: given {given} in reviews, received {received}"
        )
    else:
        text = _(
            "{name}'s balance: {balance}\n"
            "Held for open requests: {held}\n"
            "Credit limit: {limit} (can spend {room} more)\n"
            "Lifetime: given {given} in reviews, received {received}"
        )
    ctx.reply(
        text.format(
            name=member.name,
            balance=sif(info.balance),
            held=sif(info.held),
            limit=sif(limit),
            room=sif(info.balance - limit),
            given=sif(info.given),
            received=sif(info.received),
        ),
        topic="balance",
    )


@handlers.on(History)
async def history(ctx: Context, cmd: History) -> None:
    member = await _subject(ctx, cmd.member, N_("see another member's history"))
    lines = await ctx.uow.ledger.history(member.id, HISTORY_LINES)
    own = member.id == ctx.caller.id
    if not lines:
        if own:
            empty = _("There are no entries on your account yet.")
        else:
            empty = _("There are no entries on {name}'s account yet.").format(name=member.name)
        ctx.reply(empty, topic="history")
        return
    if own:
        out = [_("Latest entries on your account (newest first):")]
    else:
        out = [_("Latest entries on {name}'s account (newest first):").format(name=member.name)]
    for line in lines:
        if line.author:
            entry = _("{date} {kind}{request} {amount} — {reason} (by {author})")
        else:
            entry = _("{date} {kind}{request} {amount} — {reason}")
        out.append(
            entry.format(
                date=f"{line.at:%Y-%m-%d}",
                kind=_(KIND_WORDS[line.kind]) if line.kind in KIND_WORDS else line.kind.value,
                request=f" R-{line.request}" if line.request else "",
                amount=sif(line.amount, sign=True),
                reason=line.reason,
                author=line.author or "",
            )
        )
    ctx.reply("\n".join(out), topic="history")


def _second_look(ctx: Context, member: Member, amount: int) -> str | None:
    """Why a grant or adjustment must be confirmed (SPEC §13): SELF, LARGE, or None."""
    if member.id == ctx.caller.id:
        return SELF
    if abs(amount) > ctx.settings.grant_confirm:
        return LARGE
    return None


def _ask_to_confirm(ctx: Context, verb: str, why: str, typed: str, **values: str) -> None:
    """Nothing is written: the caller is shown the command that does it, with a button."""
    text = (ctx.inbound.action or ctx.inbound.text).strip()
    first, _sep, rest = text.partition(" ")
    exact = f"{first} confirm {rest.strip()}"
    ctx.reply(
        say(
            CONFIRM_PROMPTS[verb, why],
            threshold=sif(ctx.settings.grant_confirm),
            typed=typed,
            **values,
        ),
        topic=f"{verb}.confirm",
        buttons=(Button(_("Confirm"), exact),),
    )


@handlers.on(Grant)
async def grant(ctx: Context, cmd: Grant) -> None:
    member = await ctx.resolve(cmd.member)
    why = _second_look(ctx, member, cmd.amount)
    if why and cmd.confirm is None:
        amount = format_sif(cmd.amount).removesuffix(" SIF")
        typed = f"grant confirm @{member.name} {amount} {cmd.reason}"
        _ask_to_confirm(ctx, "grant", why, typed, amount=sif(cmd.amount), name=member.name)
        return
    await ctx.post(ledger.grant(member.id, cmd.amount, cmd.reason, ctx.caller.id))
    new = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(member.id))
    ctx.reply(
        _("Granted {amount} to {name} ({reason}); their balance is now {balance}.").format(
            amount=sif(cmd.amount), name=member.name, reason=cmd.reason, balance=sif(new)
        ),
        topic="grant",
    )
    caller = ctx.caller.name
    if member.id != ctx.caller.id:
        ctx.notices.dm(
            member,
            lambda: _(
                "You received {amount} from {name}: {reason} Your balance is now {balance}."
            ).format(
                amount=sif(cmd.amount), name=caller, reason=sentence(cmd.reason), balance=sif(new)
            ),
            topic="sif.granted",
        )
    if why:
        post = CONFIRMED_POSTS["grant", why]
        await ctx.tell_staff(
            lambda: _(post).format(
                caller=caller,
                amount=sif(cmd.amount),
                name=member.name,
                reason=cmd.reason,
                threshold=sif(ctx.settings.grant_confirm),
                balance=sif(new),
            ),
            topic="grant.confirmed",
        )


@handlers.on(Adjust)
async def adjust(ctx: Context, cmd: Adjust) -> None:
    member = await ctx.resolve(cmd.member)
    why = _second_look(ctx, member, cmd.amount)
    if why and cmd.confirm is None:
        amount = format_sif(cmd.amount, sign=True).removesuffix(" SIF")
        typed = f"adjust confirm @{member.name} {amount} {cmd.reason}"
        _ask_to_confirm(
            ctx, "adjust", why, typed, amount=sif(cmd.amount, sign=True), name=member.name
        )
        return
    await ctx.post(ledger.adjust(member.id, cmd.amount, cmd.reason, ctx.caller.id))
    new = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(member.id))
    ctx.reply(
        _("Adjusted {name} by {amount} ({reason}); their balance is now {balance}.").format(
            name=member.name, amount=sif(cmd.amount, sign=True), reason=cmd.reason, balance=sif(new)
        ),
        topic="adjusted",
    )
    caller = ctx.caller.name
    if member.id != ctx.caller.id:
        ctx.notices.dm(
            member,
            lambda: _(
                "{name} corrected your balance by {amount}: {reason} Your balance is now {balance}."
            ).format(
                name=caller,
                amount=sif(cmd.amount, sign=True),
                reason=sentence(cmd.reason),
                balance=sif(new),
            ),
            topic="sif.adjusted",
        )
    if why:
        post = CONFIRMED_POSTS["adjust", why]
        await ctx.tell_staff(
            lambda: _(post).format(
                caller=caller,
                name=member.name,
                amount=sif(cmd.amount, sign=True),
                reason=cmd.reason,
                threshold=sif(ctx.settings.grant_confirm),
                balance=sif(new),
            ),
            topic="adjust.confirmed",
        )


def _row(info: BalanceInfo) -> tuple[str, ...]:
    last = f"{info.last_activity:%Y-%m-%d}" if info.last_activity else _("never")
    return (
        info.name,
        sif(info.balance),
        sif(info.held),
        sif(info.given),
        sif(info.received),
        last,
    )


# The titles of `balances`, and its table's column headers.
ALL_TITLE = N_("Balances, lowest first")
NEGATIVE_TITLE = N_("Members below zero, lowest first")
HEADERS = (
    N_("member"),
    N_("balance"),
    N_("held"),
    N_("given"),
    N_("received"),
    N_("last active"),
)


@handlers.on(Balances)
async def balances(ctx: Context, cmd: Balances) -> None:
    title = _(ALL_TITLE)
    member = None
    if cmd.member is not None:
        member = await ctx.resolve(cmd.member)
        title = _("Balance of {name}").format(name=member.name)
    negative = cmd.filter == "negative"
    if negative:
        title = _(NEGATIVE_TITLE)
    found = await ctx.uow.ledger.balance_table(
        ctx.community.id, TABLE_EDGE, member.id if member is not None else None, negative
    )
    if not found.count:
        ctx.reply(_("No members match."), topic="balances", public=True)
        return
    rows = [_row(i) for i in found.lowest]
    skipped = found.count - len(found.lowest) - len(found.highest)
    if found.highest:
        rows = [*rows, ("…", "", "", "", "", ""), *(_row(i) for i in found.highest)]
    table = Table(tuple(_(header) for header in HEADERS), tuple(rows))
    note = (
        "\n"
        + ngettext(
            "({count} member in the middle not shown; `export members` has everyone.)",
            "({count} members in the middle not shown; `export members` has everyone.)",
            skipped,
        ).format(count=number(skipped))
        if skipped
        else ""
    )
    heading = ngettext(
        "{title} ({count} member, sum {total}):",
        "{title} ({count} members, sum {total}):",
        found.count,
    ).format(title=title, count=number(found.count), total=sif(found.total))
    ctx.reply((*plain(heading + "\n"), table, *plain(note)), topic="balances", public=True)
