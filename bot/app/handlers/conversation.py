"""Conversations in chat: `intake`, `profile`, answers, onboarding, greeting and `ideas`.

The engine (conversations/) is pure; this module keeps each member's state in the
database, saved with every answer in the same unit of work as its effects, and
turns a confirmed conversation into an idea or a peer profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.app.context import Context, Handlers, UserError
from bot.app.handlers import similar
from bot.app.handlers.requests import cancel_request
from bot.app.wording import price_list
from bot.commands import Cancel, Help, Ideas, Intake, Profile
from bot.domain.records import Conversation, Idea, IdeaStatus, Role
from bot.i18n import N_, _, ngettext, number, sif
from bot.messages import Body, Button, Parts, from_spans, plain, say
from conversations import spans
from conversations.answers import chosen
from conversations.engine import (
    PAUSE_WORDS,
    Flow,
    Outcome,
    State,
    Step,
    answer,
    resume,
    start,
    summary_spans,
)
from conversations.engine import Context as FlowContext

IDEAS_PER_PAGE = 50
WELCOME = "welcome"  # the one-question onboarding of a member's first DM
WELCOME_CHOICES = {
    "1": "intake",
    "idea": "intake",
    "idee": "intake",
    "idée": "intake",
    "intake": "intake",
    "2": "profile",
    "peer": "profile",
    "pair": "profile",
    "profile": "profile",
    "profiel": "profile",
    "profil": "profile",
    "review": "profile",
}
GREETINGS = frozenset(
    {"hi", "hello", "hey", "hallo", "dag", "goedemorgen", "bonjour", "salut", "good", "thanks",
     "hoi", "goeiedag", "goedendag", "bedankt", "merci", "bonsoir", "coucou", "guten", "moin",
     "servus", "danke"}
)  # fmt: skip
WELCOME_MENU = N_(
    "Type 1 to describe your idea, or 2 to offer your experience as a peer; `help` explains more."
)
# The idea's status as shown in `ideas` (the stored word is English).
IDEA_STATUS_WORDS = {
    IdeaStatus.SUBMITTED: N_("submitted"),
    IdeaStatus.IN_REVIEW: N_("in review"),
    IdeaStatus.REVIEWED: N_("reviewed"),
}
# Button labels of the confirm step (the buttons still send the English word).
BUTTON_WORDS = {"confirm": N_("confirm"), "edit": N_("edit"), "cancel": N_("cancel")}


def welcome_buttons() -> tuple[Button, ...]:
    """The welcome menu's buttons, labelled in the language being written in."""
    return (Button(_("1 · my idea"), "1"), Button(_("2 · be a peer"), "2"))


handlers = Handlers()


def _buttons(step: Step) -> tuple[Button, ...]:
    """A step's choices as buttons: labelled in the caller's language, sending the choice."""
    return tuple(Button(_(BUTTON_WORDS.get(choice, choice)), choice) for choice in step.choices)


def _say(
    ctx: Context,
    body: Body,
    topic: str,
    buttons: tuple[Button, ...] = (),
    subject: str | None = None,
) -> None:
    """Conversations happen in the direct chat; a start from a channel moves there."""
    if ctx.inbound.channel is None:
        ctx.reply(body, topic=topic, subject=subject, buttons=buttons)
    else:
        ctx.notices.dm(ctx.caller, body, topic=topic, subject=subject, buttons=buttons)


def _topic(flow: str, what: str = "question") -> str:
    return f"{flow}.{what}"


async def _flow_context(ctx: Context) -> FlowContext:
    return FlowContext(tags=tuple(await ctx.uow.communities.tags(ctx.community.id)))


def _flow(ctx: Context, name: str) -> Flow:
    flow = ctx.flows.get(name)
    if flow is None:
        raise UserError(
            _("The {name} conversation is not set up in this community.").format(name=name)
        )
    return flow


async def _save(
    ctx: Context, flow: str, state: dict[str, Any], previous: Conversation | None
) -> None:
    now = ctx.clock.now()
    await ctx.uow.conversations.save(
        Conversation(
            member=ctx.caller.id,
            community=ctx.community.id,
            flow=flow,
            state=state,
            platform=ctx.inbound.platform,
            external_id=ctx.inbound.user,
            started_at=previous.started_at if previous else now,
            updated_at=now,
            reminded_at=None,
        )
    )


async def begin(ctx: Context, name: str) -> None:
    """Start a flow, or resume it when it is already the active one."""
    current = await ctx.uow.conversations.get(ctx.caller.id)
    flow_ctx = await _flow_context(ctx)
    if current is not None and current.flow == name:
        flow = _flow(ctx, name)
        step = resume(flow, State.from_dict(current.state), flow_ctx)
        _say(
            ctx,
            plain(_("Let's continue where you stopped.") + "\n") + from_spans(step.body),
            _topic(name),
            _buttons(step),
        )
        await _save(ctx, name, step.state.to_dict(), current)  # no longer paused
        return
    if current is not None and current.flow != WELCOME:
        raise UserError(
            say(
                "You are in the middle of the {flow} conversation; finish it, "
                "or type `cancel` to stop it first.",
                flow=current.flow,
            ),
            "busy",
        )
    flow = _flow(ctx, name)
    step = start(flow, flow_ctx)
    await _save(ctx, name, step.state.to_dict(), None)
    if ctx.inbound.channel is not None:
        ctx.reply(
            _("I've sent you a direct message to start your {name}.").format(name=name),
            topic="moved-to-dm",
        )
    _say(ctx, from_spans(step.body), _topic(name), _buttons(step))


@handlers.on(Intake)
async def intake(ctx: Context, cmd: Intake) -> None:
    await begin(ctx, "intake")


@handlers.on(Profile)
async def profile(ctx: Context, cmd: Profile) -> None:
    await begin(ctx, "profile")


def is_paused(conversation: Conversation) -> bool:
    """Whether the member paused this conversation (`stop`): then only its own words
    (`cancel`, `status`, `back`...) or its command (`intake`) go on with it."""
    return conversation.flow != WELCOME and conversation.state.get("paused") is True


@dataclass(frozen=True)
class Pending:
    """The question a conversation is waiting on, to ask again after a command in between."""

    flow: str
    body: Parts
    topic: str
    buttons: tuple[Button, ...] = ()


async def pending_question(
    ctx: Context, conversation: Conversation, command: object
) -> Pending | None:
    """What to ask again after `command` runs in the middle of this conversation, or None:
    not while it is paused, not after a command that asks by itself (`intake`), and in
    the welcome menu only after `help` (other commands there are the person's own way)."""
    if is_paused(conversation) or isinstance(command, Intake | Profile):
        return None
    if conversation.flow == WELCOME:
        if not isinstance(command, Help):
            return None
        return Pending(WELCOME, say(WELCOME_MENU), "welcome", welcome_buttons())
    flow = ctx.flows.get(conversation.flow)
    if flow is None:
        return None
    step = resume(flow, State.from_dict(conversation.state), await _flow_context(ctx))
    lead = say("Back to your {flow}:\n", flow=flow.id)
    return Pending(flow.id, lead + from_spans(step.body), _topic(flow.id), _buttons(step))


async def ask_again(ctx: Context, pending: Pending) -> None:
    """Ask the pending question after a command in between, if the command left the
    conversation where it was."""
    current = await ctx.uow.conversations.get(ctx.caller.id)
    if current is None or current.flow != pending.flow:
        return
    ctx.reply(pending.body, topic=pending.topic, buttons=pending.buttons)


async def on_answer(ctx: Context, conversation: Conversation, text: str) -> None:
    if conversation.flow == WELCOME:
        word = text.lower().strip(" .!")
        choice = WELCOME_CHOICES.get(word)
        if word == "cancel" or word in PAUSE_WORDS:
            await ctx.uow.conversations.delete(ctx.caller.id)
            ctx.reply(
                say(
                    "No problem. Whenever you like: "
                    "`intake` to describe an idea for a social innovation, "
                    "`profile` to offer your experience as a peer reviewer, "
                    "`balance` to see your SIF."
                ),
                topic="welcome.cancelled",
            )
        elif choice is None:
            ctx.reply(_(WELCOME_MENU), topic="welcome", buttons=welcome_buttons())
        else:
            await ctx.uow.conversations.delete(ctx.caller.id)
            await begin(ctx, choice)
        return
    flow = _flow(ctx, conversation.flow)
    step = answer(flow, State.from_dict(conversation.state), text, await _flow_context(ctx))
    if step.outcome is Outcome.CANCELLED:
        await ctx.uow.conversations.delete(ctx.caller.id)
        _say(ctx, from_spans(step.body), _topic(flow.id, "cancelled"))
    elif step.outcome is Outcome.PAUSED:
        await _save(ctx, conversation.flow, step.state.to_dict(), conversation)
        _say(ctx, from_spans(step.body), _topic(flow.id, "paused"))
    elif step.outcome is Outcome.CONFIRMED:
        await ctx.uow.conversations.delete(ctx.caller.id)
        if flow.id == "intake":
            await _submit_idea(ctx, flow, step)
        else:
            await _save_profile(ctx, step)
    else:
        await _save(ctx, conversation.flow, step.state.to_dict(), conversation)
        _say(ctx, from_spans(step.body), _topic(flow.id), _buttons(step))


async def _submit_idea(ctx: Context, flow: Flow, step: Step) -> None:
    answers = dict(step.state.answers)
    title = str(answers.get("title", "")).strip() or "Untitled idea"
    idea = await ctx.uow.ideas.create(
        ctx.community.id, ctx.caller.id, title[:200], answers, ctx.clock.now()
    )
    tags = chosen(answers.get("help"))
    price = ctx.settings.prices
    wanted = f" {' '.join(tags)}" if tags else ""
    saved = say(
        "\nYour idea is saved as {ref}: {title}.\n"
        "Next: `request {ref} review{wanted}` asks a peer with matching expertise for "
        "a review ({review}); `request {ref} advice` asks for "
        "advice ({advice}). `ideas` lists your ideas.",
        ref=idea.ref,
        title=title,
        wanted=wanted,
        review=sif(price["review"]),
        advice=sif(price["advice"]),
    )
    _say(ctx, from_spans(step.body) + saved, "idea.saved", subject=idea.ref)
    alike = await similar.after_save(ctx, idea, answers)
    if alike is not None:
        _say(ctx, alike[0], "idea.similar", buttons=alike[1], subject=idea.ref)
    stage = answers.get("stage")
    stage_id = str(stage.get("choice") if isinstance(stage, dict) else stage) if stage else ""
    by, state = ctx.caller.name, step.state

    def new_idea() -> Parts:  # in the staff channel's language
        needs = ", ".join(tags) or _("no expertise named")
        if stage_id:
            line = say(
                "New idea {ref} from {name}: {title} (stage {stage}; needs {needs}).",
                ref=idea.ref,
                name=by,
                title=title,
                stage=_(stage_id),
                needs=needs,
            )
        else:
            line = say(
                "New idea {ref} from {name}: {title} (needs {needs}).",
                ref=idea.ref,
                name=by,
                title=title,
                needs=needs,
            )
        return line + plain("\n") + from_spans(summary_spans(flow, state))

    await ctx.notices.staff(new_idea, topic="idea.new", subject=idea.ref)


async def _save_profile(ctx: Context, step: Step) -> None:
    answers = step.state.answers
    members = ctx.uow.members
    expertise = answers.get("expertise") or {}
    current = {e.tag for e in await members.expertise(ctx.caller.id)}
    for tag in current - set(expertise):
        await members.remove_expertise(ctx.caller.id, tag)
    for tag, level in expertise.items():
        await members.set_expertise(ctx.caller.id, str(tag), int(level))
    capacity = answers.get("capacity")
    if capacity is not None:
        await members.set_capacity(ctx.caller.id, int(capacity))
    offers = answers.get("offers")
    await members.set_profile(
        ctx.caller.id,
        languages=chosen(answers.get("languages")),
        bio=str(answers.get("bio", "")),
        # other settings of the profile (`similar hide`) stay as they are
        profile={
            **{k: v for k, v in ctx.caller.profile.items() if k != "offers"},
            **({"offers": offers} if offers else {}),
        },
    )
    listed = ", ".join(f"{t}:{lv}" for t, lv in expertise.items()) or _("none")
    saved = say(
        "\nYour peer profile is saved (expertise {listed}). You will get review "
        "offers that match it; `pause` stops them for a while, `offers` lists them.",
        listed=listed,
    )
    _say(ctx, from_spans(step.body) + saved, "profile.saved")


async def greet(ctx: Context, is_new: bool) -> None:
    """Plain text that is neither a command nor an answer: onboarding or a short greeting."""
    if is_new:
        await _save(ctx, WELCOME, {}, None)
        ctx.reply(
            _(
                "Welcome to {community}! Here innovators get advice, feedback and reviews "
                "from experienced peers, paid in SIF, the network's own currency "
                "({prices}), and repay by helping others.\n"
                "What would you like to do first?\n"
                "1. describe your idea for a social innovation\n"
                "2. offer your experience as a peer reviewer"
            ).format(community=ctx.community.name, prices=price_list(ctx.settings.prices)),
            topic="welcome",
            buttons=welcome_buttons(),
        )
        return
    text = ctx.inbound.text.strip()
    first = text.split(maxsplit=1)[0].lower().strip("!,.") if text else ""
    if not first or first in GREETINGS:
        opening, topic = _("Hi {name}!").format(name=ctx.caller.name), "greeting"
    else:
        shown = first if len(first) <= 30 else first[:30] + "…"
        opening = _("I don't know the command '{command}'.").format(command=shown)
        topic = "unknown-command"
    current = await ctx.uow.conversations.get(ctx.caller.id)
    paused = (
        say(
            "\nYour {flow} is paused: type `{flow}` to go on where you stopped.",
            flow=current.flow,
        )
        if current is not None and is_paused(current)
        else ()
    )
    useful = say(
        "{opening} The most useful commands: "
        "`intake` to describe an idea for a social innovation, "
        "`profile` to offer your experience as a peer reviewer, "
        "`balance` to see your SIF. `help` lists them all.",
        opening=opening,
    )
    ctx.reply(useful + paused, topic=topic)


def _idea_line(idea: Idea, with_owner: bool) -> str:
    owner = f" — {idea.owner_name}" if with_owner else ""
    status = _(IDEA_STATUS_WORDS.get(idea.status, idea.status.value))
    return f"{idea.ref} {idea.title} · {status} · {idea.created_at:%Y-%m-%d}{owner}"


@handlers.on(Ideas)
async def ideas(ctx: Context, cmd: Ideas) -> None:
    if cmd.scope == "all":
        ctx.require(Role.STAFF, N_("list all ideas"))
        found = await ctx.uow.ideas.all(ctx.community.id)
        if not found:
            ctx.reply(_("No ideas have been submitted yet."), topic="ideas")
            return
        lines = [_idea_line(i, True) for i in found]
        heading = _("All ideas ({count})").format(count=number(len(found), grouping=False))
        ctx.reply(_page(heading, lines, cmd.page, "ideas all"), topic="ideas", public=True)
        return
    found = await ctx.uow.ideas.of_owner(ctx.caller.id)
    if not found:
        ctx.reply(
            say("You have no ideas yet; `intake` walks you through describing one."), topic="ideas"
        )
        return
    lines = [_idea_line(i, False) for i in found]
    ctx.reply(_page(_("Your ideas"), lines, cmd.page, "ideas"), topic="ideas")


def _page(heading: str, lines: list[str], page: int, command: str) -> Parts:
    """One page of a long list, with where the others are (SPEC §13: long lists are
    paged, so no answer grows past what a platform takes)."""
    pages = max(1, -(-len(lines) // IDEAS_PER_PAGE))
    if page > pages:
        last = ngettext(
            "There is only {pages} page; `{command} {pages}` is the last.",
            "There are only {pages} pages; `{command} {pages}` is the last.",
            pages,
        )
        raise UserError(from_spans(spans.fill(last, {"pages": pages, "command": command})))
    shown = lines[(page - 1) * IDEAS_PER_PAGE : page * IDEAS_PER_PAGE]
    if pages == 1:
        return plain(_("{heading}:").format(heading=heading) + "\n" + "\n".join(shown))
    first = (page - 1) * IDEAS_PER_PAGE + 1
    where = _("{heading}, {first}–{last} (page {page} of {pages}):").format(
        heading=heading, first=first, last=first + len(shown) - 1, page=page, pages=pages
    )
    body = plain(where + "\n" + "\n".join(shown))
    if page < pages:
        following = f"{command} {page + 1}"
        return (*body, *say("\nNext: `{next}`.", next=following))
    return body


@handlers.on(Cancel)
async def cancel(ctx: Context, cmd: Cancel) -> None:
    """`cancel` without a request, outside the direct chat (there `cancel` is routed to the
    conversation): it still stops the conversation, which answers in the direct chat."""
    if cmd.request is not None:
        await cancel_request(ctx, cmd.request)
        return
    current = await ctx.uow.conversations.get(ctx.caller.id)
    if current is not None:
        await on_answer(ctx, current, "cancel")
        return
    raise UserError(
        _("There is nothing to cancel: you are not in a conversation with me."),
        "nothing-to-cancel",
    )
