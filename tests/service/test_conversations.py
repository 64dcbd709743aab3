"""Intake and profile conversations through the core, persisted in the store."""

from __future__ import annotations

from bot.app.jobs import sweep_conversations
from bot.app.service import Bot
from bot.bootstrap import App, assemble
from store.db import make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import Store, make_settings
from tests.fakes import FakeClock, RecordingMessenger, said

INTAKE_ANSWERS = [
    "Repair café network",
    "A network of volunteer-run repair cafés in every Ghent neighbourhood.",
    "Too much waste, and lonely elderly people",
    "Fewer items thrown away; neighbours meet",
    "grants, donations",
    "5000 EUR",
    "prototype",
    "whether volunteers stay",
    "civil society, government",
    "finance, legal",
    "Shared value for the whole street",
    "English, Dutch",
]


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def test_a_full_intake_creates_an_idea_and_tells_staff(app: App) -> None:
    bot = app.bot
    await bot.handle(said("ann", "intake"))
    for text in INTAKE_ANSWERS:
        await bot.handle(said("ann", text))
    await bot.handle(said("ann", "confirm"))
    last = messenger(app).to("ann")[-1]
    assert "Your idea is saved as I-1: Repair café network." in last
    assert "`request I-1 review finance legal`" in last
    staff_posts = [m.text for m in messenger(app).sent if m.to == "staff" and m.channel is None]
    assert any(t.startswith("New idea I-1 from ann: Repair café network") for t in staff_posts)
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        assert await uow.conversations.get(ann.id) is None
        (idea,) = await uow.ideas.of_owner(ann.id)
        assert idea.status.value == "submitted"
        assert idea.answers["stage"] == "prototype"
        assert set(idea.answers) >= {"title", "summary", "need", "impact", "help", "language"}
    await bot.handle(said("ann", "ideas"))
    assert "I-1 Repair café network · submitted" in messenger(app).to("ann")[-1]
    await bot.handle(said("staff", "ideas all", channel="staff"))
    assert "I-1 Repair café network · submitted" in messenger(app).sent[-1].text
    await bot.handle(said("ann", "ideas all"))
    assert "Only staff can list all ideas" in messenger(app).to("ann")[-1]


async def test_a_restart_resumes_at_the_same_question(store: Store, clock: FakeClock) -> None:
    def new_process() -> tuple[Bot, RecordingMessenger, object]:
        engine = make_engine(store.url)
        uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
        out = RecordingMessenger("console")
        process = assemble(make_settings(store.url), uow, clock, messengers=[out])
        return process.bot, out, engine

    bot, out, engine = new_process()
    await bot.handle(said("ann", "intake"))
    for text in INTAKE_ANSWERS[:4]:
        await bot.handle(said("ann", text))
    asked_before = out.to("ann")[-1]
    await engine.dispose()  # type: ignore[attr-defined]

    bot, out, engine = new_process()
    await bot.handle(said("ann", "intake"))  # resumes, says the same question again
    resumed = out.to("ann")[-1]
    assert resumed.startswith("Let's continue where you stopped.")
    assert asked_before.splitlines()[-1] in resumed
    for text in INTAKE_ANSWERS[4:]:
        await bot.handle(said("ann", text))
    await bot.handle(said("ann", "confirm"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        (idea,) = await uow.ideas.of_owner(ann.id)
        assert idea.answers["title"] == "Repair café network"
        assert idea.answers["need"] == INTAKE_ANSWERS[2]
    await engine.dispose()  # type: ignore[attr-defined]


async def test_profile_stores_expertise_languages_and_capacity(app: App) -> None:
    bot = app.bot
    await bot.handle(said("bob", "expertise add design"))
    await bot.handle(said("bob", "profile"))
    for text in ["finance:3, legal", "Dutch, French", "3", "mentoring - Impact Hub", "Accountant."]:
        await bot.handle(said("bob", text))
    await bot.handle(said("bob", "confirm"))
    assert "Your peer profile is saved" in messenger(app).to("bob")[-1]
    async with bot.uow_factory() as uow:
        bob = await uow.members.by_identity("console", "bob")
        assert bob is not None
        assert [(e.tag, e.level) for e in await uow.members.expertise(bob.id)] == [
            ("finance", 3),
            ("legal", 2),
        ]
        assert bob.capacity == 3 and bob.languages == ("Dutch", "French")
        assert bob.bio == "Accountant." and bob.profile["offers"]


async def test_first_dm_onboards_and_later_chatter_gets_a_greeting(app: App) -> None:
    bot = app.bot
    await bot.handle(said("cleo", "hello there"))
    assert "What would you like to do first?" in messenger(app).to("cleo")[-1]
    await bot.handle(said("cleo", "maybe"))
    assert "Type 1 to describe your idea" in messenger(app).to("cleo")[-1]
    await bot.handle(said("cleo", "2"))
    assert "expertise" in messenger(app).to("cleo")[-1].lower()
    await bot.handle(said("cleo", "cancel"))
    await bot.handle(said("cleo", "good morning"))
    assert messenger(app).to("cleo")[-1].startswith("Hi cleo! The most useful commands")
    await bot.handle(said("cleo", "balanse"))
    assert "Did you mean `balance`" in messenger(app).to("cleo")[-1]
    await bot.handle(said("cleo", "cancel"))
    assert "nothing to cancel" in messenger(app).to("cleo")[-1]


async def test_commands_still_work_during_a_conversation(app: App) -> None:
    bot = app.bot
    await bot.handle(said("ann", "intake"))
    await bot.handle(said("ann", "balance"))
    assert messenger(app).to("ann")[-2].startswith("Your balance: 0.00 SIF")
    assert messenger(app).to("ann")[-1].startswith("Back to your intake:\n(1/12)")
    await bot.handle(said("ann", "Help for refugees"))  # a title, not `help`
    await bot.handle(said("ann", "status"))
    assert "Help for refugees" in messenger(app).to("ann")[-1]
    await bot.handle(said("ann", "profile"))
    assert "in the middle of the intake" in messenger(app).to("ann")[-1]


async def test_silence_gets_one_reminder_then_expires(app: App, clock: FakeClock) -> None:
    bot = app.bot
    await bot.handle(said("ann", "intake"))
    await bot.handle(said("ann", "Repair café network"))
    sweep = lambda: sweep_conversations(  # noqa: E731
        bot.uow_factory, bot.settings, clock, bot.flows, app.relay
    )
    clock.advance(days=1)
    assert (await sweep()).reminded == 0
    clock.advance(days=1, minutes=1)
    assert (await sweep()).reminded == 1
    assert "A reminder: your intake is waiting" in messenger(app).to("ann")[-1]
    assert (await sweep()).reminded == 0  # only once
    await bot.handle(said("ann", "A network of repair cafés."))  # answering resets the clock
    clock.advance(days=2, minutes=1)
    assert (await sweep()).reminded == 1
    clock.advance(days=12)
    result = await sweep()
    assert result.expired == 1
    assert "ended after 14 days of silence" in messenger(app).to("ann")[-1]
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and await uow.conversations.get(ann.id) is None
