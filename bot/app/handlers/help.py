"""`help` (the commands your role allows, or one explained) and `tags` (the community's tags)."""

from __future__ import annotations

from bot.app.context import Context, Handlers, UserError
from bot.commands import COMMANDS, Help, TagsList, suggest
from bot.domain.records import Role
from bot.messages import Parts, join, say

GROUPS = (
    ("Your ideas", ("intake", "ideas", "request", "thanks", "dispute", "cancel")),
    (
        "Reviewing",
        (
            "profile",
            "expertise add",
            "expertise remove",
            "availability",
            "pause",
            "resume",
            "offers",
            "accept",
            "decline",
            "done",
        ),
    ),
    ("SIF", ("balance", "history")),
    ("Network", ("find", "intro", "tags")),
    ("You", ("link", "mydata", "forget", "help")),
    ("Staff", ("balances", "stats", "grant", "adjust", "assign", "resolve", "export")),
    ("Admin", ("role",)),
)


handlers = Handlers()


@handlers.on(Help)
async def help_(ctx: Context, cmd: Help) -> None:
    role = ctx.caller.role
    if cmd.topic:
        topic = " ".join(cmd.topic.lower().split())
        matches = [s for name, s in COMMANDS.items() if name == topic or name.split()[0] == topic]
        if not matches:
            close = suggest(topic.split()[0])
            hint = say(" Did you mean `help {close}`?", close=close) if close else ()
            raise UserError(
                say("There is no command '{topic}'.", topic=topic[:30]) + hint, "unknown-command"
            )
        details: list[Parts] = []
        for spec in matches:
            who = "" if spec.role is Role.MEMBER else f" ({spec.role.plural} only)"
            soon = "" if spec.cls in ctx.available else " (not available yet)"
            details.append(
                say(
                    "`{usage}`{who}{soon}\n{summary}",
                    usage=spec.usage,
                    who=who,
                    soon=soon,
                    summary=spec.summary,
                )
            )
        ctx.reply(join("\n\n", details), topic="help")
        return
    lines = [say("Commands you can use (type `help <command>` for details):")]
    for title, names in GROUPS:
        allowed = [
            COMMANDS[n]
            for n in names
            if role.allows(COMMANDS[n].role) and COMMANDS[n].cls in ctx.available
        ]
        if allowed:
            lines.append(say("*{title}*", title=title))
            lines += [
                say("  `{usage}` — {summary}", usage=s.usage, summary=s.summary) for s in allowed
            ]
    ctx.reply(join("\n", lines), topic="help")


@handlers.on(TagsList)
async def tags(ctx: Context, cmd: TagsList) -> None:
    tags = await ctx.uow.communities.tags(ctx.community.id)
    if not tags:
        ctx.reply("This community has no expertise tags yet; staff can set SIF_TAGS.", topic="tags")
        return
    ctx.reply(
        say(
            "Expertise tags here: {tags}.\nAdd yours with `expertise add <tag>[:level]`.",
            tags=", ".join(tags),
        ),
        topic="tags",
    )
