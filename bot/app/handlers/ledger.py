"""SIF commands: `balance`, `history`, `grant`, `adjust`, `balances`."""

from __future__ import annotations

from bot.app.context import Context, Handlers
from bot.commands import Adjust, Balance, Balances, Grant, History, MemberRef
from bot.domain import ledger
from bot.domain.ledger import format_sif
from bot.domain.records import BalanceInfo, Member, Role
from bot.i18n import plural, sentence
from bot.messages import Button, Table, plain, say

HISTORY_LINES = 15
TABLE_EDGE = 10  # with many members, `balances` shows this many lowest and highest


handlers = Handlers()


async def _subject(ctx: Context, ref: MemberRef | None, what: str) -> Member:
    """The caller, or (for staff) the member they named."""
    if ref is None:
        return ctx.caller
    member = await ctx.resolve(ref)
    if member.id != ctx.caller.id:
        ctx.require(Role.STAFF, f"see another member's {what}")
    return member


@handlers.on(Balance)
async def balance(ctx: Context, cmd: Balance) -> None:
    member = await _subject(ctx, cmd.member, "balance")
    info = await ctx.uow.ledger.balance_info(member)
    own = member.id == ctx.caller.id
    whose = "Your" if own else f"{member.name}'s"
    limit = ctx.settings.credit_limit
    ctx.reply(
        f"{whose} balance: {format_sif(info.balance)}\n"
        f"Held for open requests: {format_sif(info.held)}\n"
        f"Credit limit: {format_sif(limit)} (can spend {format_sif(info.balance - limit)} more)\n"
        f"Lifetime: given {format_sif(info.given)} in reviews, "
        f"received {format_sif(info.received)}",
        topic="balance",
    )


@handlers.on(History)
async def history(ctx: Context, cmd: History) -> None:
    member = await _subject(ctx, cmd.member, "history")
    lines = await ctx.uow.ledger.history(member.id, HISTORY_LINES)
    whose = "your" if member.id == ctx.caller.id else f"{member.name}'s"
    if not lines:
        ctx.reply(f"There are no entries on {whose} account yet.", topic="history")
        return
    out = [f"Latest entries on {whose} account (newest first):"]
    for line in lines:
        by = f" (by {line.author})" if line.author else ""
        req = f" R-{line.request}" if line.request else ""
        out.append(
            f"{line.at:%Y-%m-%d} {line.kind.value}{req} {format_sif(line.amount, sign=True)}"
            f" — {line.reason}{by}"
        )
    ctx.reply("\n".join(out), topic="history")


def _second_look(ctx: Context, member: Member, amount: int) -> str | None:
    """Why a grant or adjustment must be confirmed (SPEC §13), or None."""
    if member.id == ctx.caller.id:
        return "is for yourself"
    if abs(amount) > ctx.settings.grant_confirm:
        return f"is above {format_sif(ctx.settings.grant_confirm)}"
    return None


def _third_person(why: str) -> str:
    """The reason as the staff channel reads it."""
    return why.replace("yourself", "themselves")


def _ask_to_confirm(ctx: Context, verb: str, what: str, why: str, typed: str) -> None:
    """Nothing is written: the caller is shown the command that does it, with a button."""
    text = (ctx.inbound.action or ctx.inbound.text).strip()
    first, _, rest = text.partition(" ")
    exact = f"{first} confirm {rest.strip()}"
    ctx.reply(
        say(
            "{what}: it {why}, so it needs a second look and nothing is done yet. To go "
            "ahead, type `{typed}` (it will be posted to the staff channel).",
            what=what,
            why=why,
            typed=typed,
        ),
        topic=f"{verb}.confirm",
        buttons=(Button("Confirm", exact),),
    )


@handlers.on(Grant)
async def grant(ctx: Context, cmd: Grant) -> None:
    member = await ctx.resolve(cmd.member)
    why = _second_look(ctx, member, cmd.amount)
    if why and cmd.confirm is None:
        amount = format_sif(cmd.amount).removesuffix(" SIF")
        typed = f"grant confirm @{member.name} {amount} {cmd.reason}"
        what = f"Granting {format_sif(cmd.amount)} to {member.name}"
        _ask_to_confirm(ctx, "grant", what, why, typed)
        return
    await ctx.post(ledger.grant(member.id, cmd.amount, cmd.reason, ctx.caller.id))
    new = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(member.id))
    ctx.reply(
        f"Granted {format_sif(cmd.amount)} to {member.name} ({cmd.reason}); "
        f"their balance is now {format_sif(new)}.",
        topic="grant",
    )
    if member.id != ctx.caller.id:
        ctx.notices.dm(
            member,
            f"You received {format_sif(cmd.amount)} from {ctx.caller.name}: "
            f"{sentence(cmd.reason)} Your balance is now {format_sif(new)}.",
            topic="sif.granted",
        )
    if why:
        await ctx.tell_staff(
            f"{ctx.caller.name} granted {format_sif(cmd.amount)} to {member.name} "
            f"({cmd.reason}), confirmed because it {_third_person(why)}. Their balance is now "
            f"{format_sif(new)}.",
            topic="grant.confirmed",
        )


@handlers.on(Adjust)
async def adjust(ctx: Context, cmd: Adjust) -> None:
    member = await ctx.resolve(cmd.member)
    why = _second_look(ctx, member, cmd.amount)
    if why and cmd.confirm is None:
        amount = format_sif(cmd.amount, sign=True).removesuffix(" SIF")
        typed = f"adjust confirm @{member.name} {amount} {cmd.reason}"
        what = f"Adjusting {member.name}'s balance by {format_sif(cmd.amount, sign=True)}"
        _ask_to_confirm(ctx, "adjust", what, why, typed)
        return
    await ctx.post(ledger.adjust(member.id, cmd.amount, cmd.reason, ctx.caller.id))
    new = await ctx.uow.ledger.balance(ctx.community.id, ledger.AccountKey.of(member.id))
    ctx.reply(
        f"Adjusted {member.name} by {format_sif(cmd.amount, sign=True)} ({cmd.reason}); "
        f"their balance is now {format_sif(new)}.",
        topic="adjusted",
    )
    if member.id != ctx.caller.id:
        ctx.notices.dm(
            member,
            f"{ctx.caller.name} corrected your balance by {format_sif(cmd.amount, sign=True)}: "
            f"{sentence(cmd.reason)} Your balance is now {format_sif(new)}.",
            topic="sif.adjusted",
        )
    if why:
        await ctx.tell_staff(
            f"{ctx.caller.name} adjusted {member.name}'s balance by "
            f"{format_sif(cmd.amount, sign=True)} ({cmd.reason}), confirmed because it "
            f"{_third_person(why)}. Their balance is now {format_sif(new)}.",
            topic="adjust.confirmed",
        )


def _row(info: BalanceInfo) -> tuple[str, ...]:
    last = f"{info.last_activity:%Y-%m-%d}" if info.last_activity else "never"
    return (
        info.name,
        format_sif(info.balance),
        format_sif(info.held),
        format_sif(info.given),
        format_sif(info.received),
        last,
    )


@handlers.on(Balances)
async def balances(ctx: Context, cmd: Balances) -> None:
    infos = await ctx.uow.ledger.all_balances(ctx.community.id)
    title = "Balances, lowest first"
    if cmd.member is not None:
        member = await ctx.resolve(cmd.member)
        infos = [i for i in infos if i.member == member.id]
        title = f"Balance of {member.name}"
    if cmd.filter == "negative":
        infos = [i for i in infos if i.balance < 0]
        title = "Members below zero, lowest first"
    if not infos:
        ctx.reply("No members match.", topic="balances", public=True)
        return
    rows = [_row(i) for i in infos]
    skipped = 0
    if len(rows) > 2 * TABLE_EDGE:
        skipped = len(rows) - 2 * TABLE_EDGE
        rows = [*rows[:TABLE_EDGE], ("…", "", "", "", "", ""), *rows[-TABLE_EDGE:]]
    table = Table(("member", "balance", "held", "given", "received", "last active"), tuple(rows))
    total = sum(i.balance for i in infos)
    hidden = plural(skipped, "member")
    note = (
        f"\n({hidden} in the middle not shown; `export members` has everyone.)" if skipped else ""
    )
    heading = plain(f"{title} ({plural(len(infos), 'member')}, sum {format_sif(total)}):\n")
    ctx.reply((*heading, table, *plain(note)), topic="balances", public=True)
