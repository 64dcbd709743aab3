"""Similar ideas (SPEC §14): `similar I-n`, `similar hide`, `similar show`, and the list
shown when an idea is saved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.app.context import Context, Handlers, UserError
from bot.app.similar import FINDABLE, Found, findable, reason, similar_ideas
from bot.commands import SimilarHide, SimilarIdeas, SimilarShow
from bot.domain.records import Idea, Member, Role
from bot.i18n import _
from bot.messages import Button, Parts, plain, say

handlers = Handlers()


def _mention(member: Member) -> str:
    """How a command names the member (their first chat identity), else @name."""
    for identity in member.identities:
        return f"<@{identity.platform}:{identity.external_id}>"
    return "@" + member.name.replace(" ", "")


def similar_list(found: list[Found], idea_ref: str) -> tuple[Parts, tuple[Button, ...]]:
    """The list of similar ideas with why, and a button per owner to introduce them."""
    lines = [plain(_("Similar ideas in the community:"))]
    buttons = []
    for f in found:
        why = reason(f)
        line = _("{ref} “{title}” by {owner}").format(
            ref=f.idea.ref, title=f.idea.title, owner=f.owner.name
        )
        lines.append(plain("\n• " + (f"{line}: {why}" if why else line)))
        buttons.append(
            Button(
                _("Introduce {name}").format(name=f.owner.name),
                f"intro {_mention(f.owner)} {idea_ref}",
            )
        )
    lines.append(
        say(
            "\n`intro @member {ref} [note]` introduces an owner to your idea; both of you "
            "get a short message.",
            ref=idea_ref,
        )
    )
    return tuple(p for part in lines for p in part), tuple(buttons)


async def after_save(
    ctx: Context, idea: Idea, answers: Mapping[str, Any]
) -> tuple[Parts, tuple[Button, ...]] | None:
    """The similar ideas to show with a newly saved idea and their buttons, or None."""
    found = await similar_ideas(
        ctx.uow,
        ctx.community.id,
        answers,
        asker=ctx.caller.id,
        skip=idea.number,
        hint=ctx.caller.language or ctx.settings.sif_language,
    )
    if not found:
        return None
    return similar_list(found, idea.ref)


@handlers.on(SimilarIdeas)
async def similar(ctx: Context, cmd: SimilarIdeas) -> None:
    idea = await ctx.idea(cmd.idea)
    if idea.owner != ctx.caller.id and not ctx.caller.role.allows(Role.STAFF):
        raise UserError(
            _("{idea} is not your idea; `similar` looks for ideas like your own.").format(
                idea=idea.ref
            ),
            subject=idea.ref,
        )
    found = await similar_ideas(
        ctx.uow,
        ctx.community.id,
        {"title": idea.title, **idea.answers},
        asker=idea.owner,
        skip=idea.number,
        hint=ctx.caller.language or ctx.settings.sif_language,
    )
    if not found:
        ctx.reply(
            say(
                "No idea of the community is much like {ref} yet; `find <words>` looks "
                "for members by their expertise and bio.",
                ref=idea.ref,
            ),
            topic="similar.none",
            subject=idea.ref,
        )
        return
    parts, buttons = similar_list(found, idea.ref)
    ctx.reply(parts, topic="similar", subject=idea.ref, buttons=buttons)


async def _set_findable(ctx: Context, shown: bool) -> bool:
    """Store the setting; False when it already was so."""
    me = ctx.caller
    if findable(me) == shown:
        return False
    profile = {k: v for k, v in me.profile.items() if k != FINDABLE}
    if not shown:
        profile[FINDABLE] = False
    await ctx.uow.members.set_profile(
        me.id, languages=list(me.languages), bio=me.bio, profile=profile
    )
    return True


@handlers.on(SimilarHide)
async def similar_hide(ctx: Context, cmd: SimilarHide) -> None:
    changed = await _set_findable(ctx, False)
    text = (
        say(
            "Done: your ideas are no longer shown to others as similar ideas. You still "
            "see theirs; `similar show` undoes this."
        )
        if changed
        else say(
            "Your ideas are already hidden from others' similar ideas; `similar show` shows them."
        )
    )
    ctx.reply(text, topic="similar.hidden")


@handlers.on(SimilarShow)
async def similar_show(ctx: Context, cmd: SimilarShow) -> None:
    changed = await _set_findable(ctx, True)
    text = (
        say("Done: your ideas may be shown to others as similar ideas again.")
        if changed
        else say(
            "Your ideas are already shown to others as similar ideas; `similar hide` hides them."
        )
    )
    ctx.reply(text, topic="similar.shown")
