"""Operator commands of the CLI: `sif-bot admin role` and `sif-bot admin grant`."""

from __future__ import annotations

import argparse

from bot.app.identity import IdentityError, community_key, split_identity
from bot.domain import ledger
from bot.domain.ledger import AmountError, format_sif, parse_amount
from bot.domain.records import Member, Role
from bot.ports import LimitExceeded, SystemClock, UnitOfWork
from bot.settings import Settings


async def _member(uow: UnitOfWork, settings: Settings, identity: str) -> Member:
    platform, external = split_identity(identity)
    key = community_key(platform, external, settings)
    now = SystemClock().now()
    community = await uow.communities.get_or_create(
        key, settings.sif_community_name, settings.sif_tags, now
    )
    member = await uow.members.by_identity(platform, external)
    if member is None:
        member = await uow.members.create(
            community.id, external, Role.MEMBER, platform, external, now
        )
    return member


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build

    app = await build(settings)
    try:
        async with app.bot.uow_factory() as uow:
            member = await _member(uow, settings, args.identity)
            if args.admin_cmd == "role":
                await uow.members.set_role(member.id, Role(args.role))
                message = f"{member.name} ({args.identity}) is now {args.role}."
            else:
                amount = parse_amount(args.amount)
                reason = " ".join(args.reason)
                await uow.ledger.post(
                    member.community,
                    ledger.grant(member.id, amount, reason, None),
                    settings.credit_limit,
                    SystemClock().now(),
                )
                message = f"Granted {format_sif(amount)} to {member.name}: {reason}."
            await uow.commit()
        print(message)
        return 0
    except (IdentityError, AmountError, LimitExceeded) as exc:
        print(f"sif-bot: {exc}")
        return 2
    finally:
        await app.close()
