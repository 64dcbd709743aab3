"""`help` works at every moment (SPEC §3): at every question of every flow, at each flow's
confirm step and in the welcome menu, `help`, `help <command>` and "what is SIF?" are
answered as help, the same question is asked again, and nothing is saved or moved on."""

from __future__ import annotations

from typing import Any

from bot.app.service import Bot
from bot.bootstrap import App
from bot.commands import COMMANDS
from conversations.engine import CONFIRM, Context, Flow, Kind, Question, State, resume
from tests.fakes import FakeClock, RecordingMessenger, said

ABOUT = "by reviewing others"  # the end of what `help` says sif-bot and SIF are


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


class Person:
    """One member talking to the bot, a few seconds apart (under the rate limit)."""

    def __init__(self, app: App, clock: FakeClock, name: str) -> None:
        self.app, self.clock, self.name = app, clock, name

    async def says(self, text: str) -> list[str]:
        """What the bot said to this person in answer to `text`."""
        self.clock.advance(seconds=3)
        before = len(messenger(self.app).to(self.name))
        await self.app.bot.handle(said(self.name, text))
        return messenger(self.app).to(self.name)[before:]

    async def conversation(self) -> tuple[str, dict[str, Any]] | None:
        async with self.app.bot.uow_factory() as uow:
            member = await uow.members.by_identity("console", self.name)
            assert member is not None
            found = await uow.conversations.get(member.id)
            return None if found is None else (found.flow, found.state)


def valid_answer(question: Question, tags: tuple[str, ...]) -> str:
    """An answer the question takes, whatever a community's flow file says."""
    if question.kind in (Kind.CHOICE, Kind.MULTI):
        return question.choices[0]
    if question.kind is Kind.AMOUNT:
        return "5000 EUR"
    if question.kind is Kind.NUMBER:
        return f"{question.minimum if question.minimum is not None else 1:g}"
    if question.kind is Kind.TAGS:
        return tags[0]
    if question.kind is Kind.TAG_LEVELS:
        return f"{tags[0]}:2"
    if question.kind is Kind.YESNO:
        return "yes"
    words = "A plain answer"
    return (words + "x" * max(0, question.min_len - len(words)))[: question.max_len]


async def asked(bot: Bot, flow: Flow, state: dict[str, Any]) -> str:
    """The pending question (or confirm prompt) as the bot says it."""
    async with bot.uow_factory() as uow:
        community = await uow.communities.get_or_create("console", "", [], bot.clock.now())
        tags = tuple(await uow.communities.tags(community.id))
    return resume(flow, State.from_dict(state), Context(tags=tags)).say


async def test_help_at_every_question_of_every_flow_is_help_and_asks_the_same_again(
    app: App, clock: FakeClock
) -> None:
    bot = app.bot
    assert bot.flows, "no flows loaded"
    ann = Person(app, clock, "ann")
    await ann.says("balance")  # a member already, so no welcome menu
    async with bot.uow_factory() as uow:
        community = await uow.communities.get_or_create("console", "", [], clock.now())
        tags = tuple(await uow.communities.tags(community.id))
    walked: list[str] = []
    for flow in bot.flows.values():
        assert flow.id in COMMANDS, f"flow {flow.id} has no command that starts it"
        await ann.says(flow.id)
        positions = [q.id for q in flow.questions] + [CONFIRM]
        for position in positions:
            current = await ann.conversation()
            assert current is not None and current[0] == flow.id
            state = current[1]
            assert state["position"] == position
            question = await asked(bot, flow, state)

            own = await ann.says("help")
            assert len(own) == 1, own
            if position == CONFIRM:  # the help, then what to type (the summary is above)
                assert "`confirm` submits your answers" in own[0]
                assert own[0].endswith(flow.done_prompt), own[0]
            else:
                assert own[0].endswith(question), (flow.id, position, own[0])
                q = flow.question(position)
                assert q is not None
                assert " ".join((q.help or "Answer").split()[:3]) in own[0]
                assert "`help <command>`" in own[0]  # the rule of what is an answer

            command = await ann.says("help balance")
            assert len(command) == 2, command
            assert command[0].startswith("`balance [@member]`")
            assert command[1] == f"Back to your {flow.id}:\n{question}"

            about = await ann.says("what is SIF?")
            assert ABOUT in about[0] and about[1] == f"Back to your {flow.id}:\n{question}"

            assert await ann.conversation() == (flow.id, state), "help changed the conversation"
            walked.append(f"{flow.id}.{position}")
            if position != CONFIRM:
                q = flow.question(position)
                assert q is not None
                await ann.says(valid_answer(q, tags))
        await ann.says("cancel")  # nothing is created: the walk is about help only
        assert await ann.conversation() is None
    assert len(walked) == sum(len(f.questions) + 1 for f in bot.flows.values())
    async with bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", "ann")
        assert member is not None
        assert await uow.ideas.of_owner(member.id) == []


async def test_help_in_the_welcome_menu_explains_sif_and_asks_the_menu_again(
    app: App, clock: FakeClock
) -> None:
    cleo = Person(app, clock, "cleo")
    (welcome,) = await cleo.says("hi")
    assert "What would you like to do first?" in welcome
    menu = "Type 1 to describe your idea, or 2 to offer your experience as a peer"

    listed, again = await cleo.says("help")
    assert ABOUT in listed and "Commands you can use" in listed
    assert again.startswith(menu)
    explained, again = await cleo.says("help balance")
    assert explained.startswith("`balance [@member]`") and again.startswith(menu)
    for question in ("what is SIF?", "What is sif", "how does this work?"):
        about, again = await cleo.says(question)
        assert ABOUT in about and again.startswith(menu)
    assert await cleo.conversation() == ("welcome", {})

    (started,) = await cleo.says("1")  # the menu is still there and still works
    assert started.startswith("Let's talk about your idea!")


async def test_a_first_help_explains_what_sif_is(app: App, clock: FakeClock) -> None:
    (listed,) = await Person(app, clock, "dan").says("help")
    assert listed.startswith("sif-bot runs the peer network of")
    assert ABOUT in listed and "paid in SIF" in listed
    assert "Commands you can use" in listed
    (about,) = await Person(app, clock, "eve").says("What is SIF?")
    assert ABOUT in about and "`intake`" in about and "don't know the command" not in about
