"""Operator commands of the CLI: `sif-bot admin role` and `sif-bot admin grant`."""

from __future__ import annotations

import argparse
import difflib

from bot.app.identity import IdentityError, community_key, split_identity
from bot.domain import ledger
from bot.domain.ledger import AmountError, format_sif, parse_amount
from bot.domain.records import Member, Role
from bot.i18n import sentence
from bot.ports import LimitExceeded, SystemClock, UnitOfWork
from bot.settings import Settings


class UnknownIdentity(Exception):
    """`admin grant` names an identity nobody has: money never goes to a typo."""


async def _member(uow: UnitOfWork, settings: Settings, identity: str) -> tuple[Member, bool]:
    """The member of an identity, created when new (initial staff come from the CLI before
    they ever write to the bot, SPEC §1); and whether it was created."""
    platform, external = split_identity(identity)
    key = community_key(platform, external, settings)
    now = SystemClock().now()
    community = await uow.communities.get_or_create(
        key, settings.sif_community_name, settings.sif_tags, now
    )
    member = await uow.members.by_identity(platform, external)
    if member is not None:
        return member, False
    member = await uow.members.create(community.id, external, Role.MEMBER, platform, external, now)
    return member, True


async def _known(uow: UnitOfWork, settings: Settings, identity: str) -> Member:
    """The member of an identity that exists, or UnknownIdentity naming the closest ones."""
    platform, external = split_identity(identity)
    member = await uow.members.by_identity(platform, external)
    if member is not None:
        return member
    community = await uow.communities.find(community_key(platform, external, settings))
    known = [
        f"{i.platform}:{i.external_id}"
        for m in (await uow.members.all(community.id) if community is not None else [])
        for i in m.identities
        if i.platform == platform
    ]
    close = difflib.get_close_matches(identity, known, n=3, cutoff=0.75)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UnknownIdentity(
        f"nobody here has the identity {identity}, so nothing was granted.{hint} "
        "`sif-bot export members` lists every member's identities (platform:id); a person "
        "has one once they have written to the bot."
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build

    app = await build(settings)
    try:
        async with app.bot.uow_factory() as uow:
            if args.admin_cmd == "role":
                member, created = await _member(uow, settings, args.identity)
                await uow.members.set_role(member.id, Role(args.role))
                message = f"{member.name} ({args.identity}) is now {args.role}."
                if created:
                    message += " They had not written to the bot yet; they are registered now."
            else:
                amount = parse_amount(args.amount)
                member = await _known(uow, settings, args.identity)
                reason = " ".join(args.reason)
                await uow.ledger.post(
                    member.community,
                    ledger.grant(member.id, amount, reason, None),
                    settings.credit_limit,
                    SystemClock().now(),
                )
                message = f"Granted {format_sif(amount)} to {member.name}: {sentence(reason)}"
            await uow.commit()
        print(message)
        return 0
    except (IdentityError, AmountError, LimitExceeded, UnknownIdentity) as exc:
        print(f"sif-bot: {exc}")
        return 2
    finally:
        await app.close()
