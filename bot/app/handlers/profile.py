"""Peer settings by command: `expertise add/remove`, `availability`, `pause`, `resume`, `role`."""

from __future__ import annotations

import difflib
from datetime import timedelta

from bot.app.context import Context, Handlers, UserError
from bot.commands import Availability, ExpertiseAdd, ExpertiseRemove, Pause, Resume, SetRole
from bot.domain.records import Role
from bot.i18n import plural
from bot.messages import say

INDEFINITELY = timedelta(days=365 * 100)


handlers = Handlers()

# A role as the object of "made you ...".
ROLE_NAMES = {Role.MEMBER: "a member", Role.STAFF: "a staff member", Role.ADMIN: "an admin"}


async def _known_tags(ctx: Context, tags: list[str]) -> None:
    known = await ctx.uow.communities.tags(ctx.community.id)
    for tag in tags:
        if tag not in known:
            close = difflib.get_close_matches(tag, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UserError(
                say(
                    "'{tag}' is not one of this community's tags.{hint} Type `tags` for the list.",
                    tag=tag,
                    hint=hint,
                ),
                "unknown-tag",
            )


@handlers.on(ExpertiseAdd)
async def expertise_add(ctx: Context, cmd: ExpertiseAdd) -> None:
    levels = dict(cmd.tags)  # a tag given twice keeps its last level
    await _known_tags(ctx, list(levels))
    for tag, level in levels.items():
        await ctx.uow.members.set_expertise(ctx.caller.id, tag, level)
    mine = await ctx.uow.members.expertise(ctx.caller.id)
    ctx.reply(
        "Your expertise: " + ", ".join(f"{e.tag}:{e.level}" for e in mine) + ".", topic="expertise"
    )


@handlers.on(ExpertiseRemove)
async def expertise_remove(ctx: Context, cmd: ExpertiseRemove) -> None:
    current = {e.tag for e in await ctx.uow.members.expertise(ctx.caller.id)}
    missing = [t for t in cmd.tags if t not in current]
    if missing:
        raise UserError(
            f"'{missing[0]}' is not in your expertise; nothing was removed.", "not-in-expertise"
        )
    for tag in cmd.tags:
        await ctx.uow.members.remove_expertise(ctx.caller.id, tag)
    mine = await ctx.uow.members.expertise(ctx.caller.id)
    if not mine:
        # Expertise is how a member opts in to reviewing (SPEC §1): with none left, no offers.
        ctx.reply(
            say(
                "Removed {tags}. You have no expertise left, so you get no review offers; "
                "`expertise add <tag>` or `profile` opts you in again.",
                tags=", ".join(cmd.tags),
            ),
            topic="expertise",
        )
        return
    listed = ", ".join(f"{e.tag}:{e.level}" for e in mine)
    ctx.reply(f"Removed {', '.join(cmd.tags)}. Your expertise: {listed}.", topic="expertise")


@handlers.on(Availability)
async def availability(ctx: Context, cmd: Availability) -> None:
    await ctx.uow.members.set_capacity(ctx.caller.id, cmd.count)
    if cmd.count == 0:
        ctx.reply(
            say(
                "You will get no new review offers (availability 0); "
                "`availability 2` turns them back on."
            ),
            topic="availability",
        )
    elif not await ctx.uow.members.expertise(ctx.caller.id):
        # Not a peer yet (SPEC §1): availability alone does not opt in.
        ctx.reply(
            say(
                "You take at most {reviews} at a time; review offers come once you add "
                "expertise: `expertise add <tag>` or `profile`.",
                reviews=plural(cmd.count, "open review"),
            ),
            topic="availability",
        )
    else:
        ctx.reply(
            f"You take at most {plural(cmd.count, 'open review')} at a time: review offers "
            "come while you have room for one.",
            topic="availability",
        )


@handlers.on(Pause)
async def pause(ctx: Context, cmd: Pause) -> None:
    now = ctx.clock.now()
    until = now + (timedelta(days=cmd.days) if cmd.days else INDEFINITELY)
    await ctx.uow.members.set_paused_until(ctx.caller.id, until)
    if cmd.days:
        paused = say(
            "Paused: you will get no review offers until {until:%Y-%m-%d}. "
            "Your open reviews stay yours.",
            until=until,
        )
    else:
        paused = say(
            "Paused: you will get no review offers until you type `resume`. "
            "Your open reviews stay yours."
        )
    ctx.reply(paused, topic="paused")


@handlers.on(Resume)
async def resume(ctx: Context, cmd: Resume) -> None:
    paused = ctx.caller.paused_until
    if paused is None or paused <= ctx.clock.now():
        raise UserError("You are not paused; you already receive review offers.", "not-paused")
    await ctx.uow.members.set_paused_until(ctx.caller.id, None)
    ctx.reply("Welcome back: you will receive review offers again.", topic="resumed")


@handlers.on(SetRole)
async def set_role(ctx: Context, cmd: SetRole) -> None:
    member = await ctx.resolve(cmd.member)
    role = Role(cmd.role)
    if member.role is role:
        raise UserError(f"{member.name} is already {role.value}.")
    if member.role is Role.ADMIN and role is not Role.ADMIN:
        admins = [m for m in await ctx.uow.members.all(ctx.community.id) if m.role is Role.ADMIN]
        if len(admins) <= 1:
            raise UserError(
                f"{member.name} is the last admin; make someone else admin first.", "last-admin"
            )
    await ctx.uow.members.set_role(member.id, role)
    ctx.reply(f"{member.name} is now {role.value} (was {member.role.value}).", topic="role")
    if member.id != ctx.caller.id:
        if role.rank > member.role.rank:
            told = say(
                "{by} made you {role} of {community}. Type `help` to see what you can do now.",
                by=ctx.caller.name,
                role=ROLE_NAMES[role],
                community=ctx.community.name,
            )
        else:
            told = say(
                "{by} changed your role in {community} to {role} (was {was}). Type `help` "
                "to see the commands you can use.",
                by=ctx.caller.name,
                community=ctx.community.name,
                role=role.value,
                was=member.role.value,
            )
        ctx.notices.dm(member, told, topic="role.changed")
