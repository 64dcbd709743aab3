"""Peer settings by command: `expertise add/remove`, `availability`, `pause`, `resume`, `role`."""

from __future__ import annotations

import difflib
from datetime import timedelta

from bot.app.context import Context, Handlers, UserError, role_name
from bot.commands import Availability, ExpertiseAdd, ExpertiseRemove, Pause, Resume, SetRole
from bot.domain.records import Role
from bot.i18n import N_, _, plural
from bot.messages import Parts, say

INDEFINITELY = timedelta(days=365 * 100)


handlers = Handlers()

# A role as the object of "made you ...".
ROLE_NAMES = {
    Role.MEMBER: N_("a member"),
    Role.STAFF: N_("a staff member"),
    Role.ADMIN: N_("an admin"),
}


async def _known_tags(ctx: Context, tags: list[str]) -> None:
    known = await ctx.uow.communities.tags(ctx.community.id)
    for tag in tags:
        if tag not in known:
            close = difflib.get_close_matches(tag, known, n=1)
            if close:
                refusal = say(
                    "'{tag}' is not one of this community's tags. Did you mean '{close}'? "
                    "Type `tags` for the list.",
                    tag=tag,
                    close=close[0],
                )
            else:
                refusal = say(
                    "'{tag}' is not one of this community's tags. Type `tags` for the list.",
                    tag=tag,
                )
            raise UserError(refusal, "unknown-tag")


@handlers.on(ExpertiseAdd)
async def expertise_add(ctx: Context, cmd: ExpertiseAdd) -> None:
    levels = dict(cmd.tags)  # a tag given twice keeps its last level
    await _known_tags(ctx, list(levels))
    for tag, level in levels.items():
        await ctx.uow.members.set_expertise(ctx.caller.id, tag, level)
    mine = await ctx.uow.members.expertise(ctx.caller.id)
    listed = ", ".join(f"{e.tag}:{e.level}" for e in mine)
    ctx.reply(_("Your expertise: {listed}.").format(listed=listed), topic="expertise")


@handlers.on(ExpertiseRemove)
async def expertise_remove(ctx: Context, cmd: ExpertiseRemove) -> None:
    current = {e.tag for e in await ctx.uow.members.expertise(ctx.caller.id)}
    missing = [t for t in cmd.tags if t not in current]
    if missing:
        raise UserError(
            _("'{tag}' is not in your expertise; nothing was removed.").format(tag=missing[0]),
            "not-in-expertise",
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
    ctx.reply(
        _("Removed {tags}. Your expertise: {listed}.").format(
            tags=", ".join(cmd.tags), listed=listed
        ),
        topic="expertise",
    )


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
                reviews=plural(cmd.count, "open review", "open reviews"),
            ),
            topic="availability",
        )
    else:
        ctx.reply(
            _(
                "You take at most {reviews} at a time: review offers "
                "come while you have room for one."
            ).format(reviews=plural(cmd.count, "open review", "open reviews")),
            topic="availability",
        )


@handlers.on(Pause)
async def pause(ctx: Context, cmd: Pause) -> None:
    now = ctx.clock.now()
    until = now + (timedelta(days=cmd.days) if cmd.days else INDEFINITELY)
    await ctx.uow.members.set_paused_until(ctx.caller.id, until)
    if cmd.days:
        day = until.strftime("%Y-%m-%d")
        paused = say(
            "Paused: you will get no review offers until {until}. Your open reviews stay yours.",
            until=day,
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
        raise UserError(_("You are not paused; you already receive review offers."), "not-paused")
    await ctx.uow.members.set_paused_until(ctx.caller.id, None)
    ctx.reply(_("Welcome back: you will receive review offers again."), topic="resumed")


@handlers.on(SetRole)
async def set_role(ctx: Context, cmd: SetRole) -> None:
    member = await ctx.resolve(cmd.member)
    role = Role(cmd.role)
    if member.role is role:
        raise UserError(
            _("{name} is already {role}.").format(name=member.name, role=role_name(role))
        )
    if member.role is Role.ADMIN and role is not Role.ADMIN:
        admins = [m for m in await ctx.uow.members.all(ctx.community.id) if m.role is Role.ADMIN]
        if len(admins) <= 1:
            raise UserError(
                _("{name} is the last admin; make someone else admin first.").format(
                    name=member.name
                ),
                "last-admin",
            )
    await ctx.uow.members.set_role(member.id, role)
    ctx.reply(
        _("{name} is now {role} (was {was}).").format(
            name=member.name, role=role_name(role), was=role_name(member.role)
        ),
        topic="role",
    )
    if member.id != ctx.caller.id:
        by, community, was = ctx.caller.name, ctx.community.name, member.role

        def told() -> Parts:  # in the member's language
            if role.rank > was.rank:
                return say(
                    "{by} made you {role} of {community}. Type `help` to see what you can do now.",
                    by=by,
                    role=_(ROLE_NAMES[role]),
                    community=community,
                )
            return say(
                "{by} changed your role in {community} to {role} (was {was}). Type `help` "
                "to see the commands you can use.",
                by=by,
                community=community,
                role=role_name(role),
                was=role_name(was),
            )

        ctx.notices.dm(member, told, topic="role.changed")
