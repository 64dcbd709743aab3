"""`help` (the commands your role allows, or one explained) and `tags` (the community's tags)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.app.context import Context, Handlers, UserError
from bot.app.wording import price_list
from bot.commands import COMMANDS, Help, TagsList, aliases_for, suggest
from bot.commands.parser import ABOUT_TOPICS
from bot.domain.records import Role
from bot.i18n import DEFAULT, N_, _, current
from bot.messages import Parts, join, say

# The groups of `help`, each with its commands (their names stay English in every language).
GROUPS = (
    (
        N_("Your ideas"),
        (
            "intake",
            "ideas",
            "idea",
            "request",
            "requests",
            "forward",
            "thanks",
            "dispute",
            "cancel",
        ),
    ),
    (
        N_("Reviewing"),
        (
            "profile",
            "profile show",
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
    (N_("SIF"), ("balance", "history")),
    (N_("Network"), ("find", "similar", "intro", "tags", "similar hide", "similar show")),
    (N_("You"), ("link", "language", "mydata", "forget", "help")),
    (
        N_("Staff"),
        ("balances", "stats", "network", "grant", "adjust", "assign", "resolve", "export", "merge"),
    ),
    (N_("Admin"), ("role",)),
)


# What only staff or admins may use, after its usage in `help <command>`.
ONLY = {Role.STAFF: N_("(staff only)"), Role.ADMIN: N_("(admins only)")}


def english_names() -> Parts:
    """That commands keep their English names: said in `help` in every other language
    (English help needs no such note)."""
    said = say(
        "Commands keep their English names in every language: type them as shown here, "
        "like `balance` or `help intake`."
    )
    aliases = aliases_for(current())
    if not aliases:
        return said
    listed = ", ".join(f"{alias} ({command})" for alias, command in sorted(aliases.items()))
    return said + say(" These words work too: {aliases}.", aliases=listed)


handlers = Handlers()


def about(community: str, prices: Mapping[str, int]) -> Parts:
    """What sif-bot and SIF are, in two sentences: the start of `help` and `help sif`."""
    return say(
        "sif-bot runs the peer network of {community}: innovators get advice, feedback and "
        "reviews on their ideas from experienced peers, here in the chat. It is paid in SIF, "
        "the network's own currency ({prices}, whatever time it takes), so you receive "
        "reviews now and repay the network later by reviewing others.",
        community=community,
        prices=price_list(prices),
    )


@handlers.on(Help)
async def help_(ctx: Context, cmd: Help) -> None:
    role = ctx.caller.role
    if cmd.topic and " ".join(cmd.topic.casefold().split()).rstrip("?!. ") in ABOUT_TOPICS:
        start = say(
            "\nTo begin, `intake` describes your idea and `profile` offers your experience as "
            "a peer; `help` lists every command."
        )
        ctx.reply(about(ctx.community.name, ctx.settings.prices) + start, topic="help")
        return
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
            who = "" if spec.role is Role.MEMBER else " " + _(ONLY[spec.role])
            soon = "" if spec.cls in ctx.available else " " + _("(not available yet)")
            details.append(
                say(
                    "`{usage}`{who}{soon}\n{summary}",
                    usage=spec.usage,
                    who=who,
                    soon=soon,
                    summary=_(spec.summary),
                )
            )
        if current() != DEFAULT:
            details.append(english_names())
        ctx.reply(join("\n\n", details), topic="help")
        return
    lines = [
        about(ctx.community.name, ctx.settings.prices),
        (),
        say("Commands you can use (type `help <command>` for details):"),
    ]
    for title, names in GROUPS:
        allowed = [
            COMMANDS[n]
            for n in names
            if role.allows(COMMANDS[n].role) and COMMANDS[n].cls in ctx.available
        ]
        if allowed:
            lines.append(say("*{title}*", title=_(title)))
            lines += [
                say("  `{usage}` — {summary}", usage=s.usage, summary=_(s.summary)) for s in allowed
            ]
    if current() != DEFAULT:
        lines += [(), english_names()]
    ctx.reply(join("\n", lines), topic="help")


@handlers.on(TagsList)
async def tags(ctx: Context, cmd: TagsList) -> None:
    tags = await ctx.uow.communities.tags(ctx.community.id)
    if not tags:
        ctx.reply(
            _("This community has no expertise tags yet; staff can set SIF_TAGS."), topic="tags"
        )
        return
    ctx.reply(
        say(
            "Expertise tags here: {tags}.\nAdd yours with `expertise add <tag>[:level]`.",
            tags=", ".join(tags),
        ),
        topic="tags",
    )
