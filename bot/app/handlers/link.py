"""`link`: one person, several chat accounts (Slack, Matrix, console), one member.

`link` on the account that already has the person's history gives a one-time code;
`link CODE` on the other account says which member the code joins, and `link CODE confirm`
moves that account onto the same member, so balance, profile and an unfinished
conversation are shared. Codes last 15 minutes and work once; linking never changes a role.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from bot.app.context import Context, Handlers, UserError
from bot.commands import Link
from bot.domain.ledger import format_sif
from bot.messages import say

CODE_LIFETIME = timedelta(minutes=15)
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are typed by hand
CODE_LENGTH = 8


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
        problem = {"unknown": "is not valid", "expired": "has expired", "used": "was already used"}
        raise UserError(
            say(
                "That link code {problem}; type `link` on your other account for a new one.",
                problem=problem[status],
            ),
            "bad-link-code",
        )
    if member == ctx.caller.id:
        raise UserError("This account is already linked to that member.", "already-linked")
    if await ctx.uow.links.has_history(ctx.caller.id):
        raise UserError(
            "This account already has its own SIF history, so it cannot be merged by a code; "
            "ask staff to merge the two accounts.",
            "has-history",
        )
    target = await ctx.uow.members.get(member)
    assert target is not None
    if target.role is not ctx.caller.role:
        # An admin who types a member's code would otherwise make the member an admin
        # (SIF_ADMINS raises whatever member the identity belongs to), and the other way
        # round: linking never changes what anyone may do.
        raise UserError(
            f"This account's role is {ctx.caller.role.value} and {target.name}'s is "
            f"{target.role.value}; linking never changes a role, so ask an admin to give "
            "both the same role first.",
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
                role=target.role.value,
                balance=format_sif(balance.balance),
                code=cmd.code.strip().upper(),
            ),
            "link.confirm",
        )
    await ctx.uow.links.move_identity(ctx.inbound.platform, ctx.inbound.user, ctx.caller.id, member)
    ctx.reply(
        f"Linked: this account is now {target.name}, with the same balance, profile and "
        "conversations as your other account.",
        topic="linked",
    )
    ctx.notices.dm(
        target, f"Your {ctx.inbound.platform} account was linked to you.", topic="account.linked"
    )
