"""What is an answer in a conversation and what is a command (the rule its help states):
commands with all they need run in between and the question is asked again; answers that
merely start with a command word stay answers; `stop` pauses; channels never answer."""

from __future__ import annotations

from typing import Any

from bot.app.jobs import sweep_conversations
from bot.bootstrap import App
from bot.messages import Inbound
from tests.fakes import FakeClock, RecordingMessenger, said


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def tell(app: App, clock: FakeClock, text: str, **how: Any) -> list[str]:
    """ann says `text` (a few seconds after her last message); what the bot told her."""
    clock.advance(seconds=3)
    before = len(messenger(app).to("ann"))
    inbound = how.pop("inbound", None) or said("ann", text, **how)
    await app.bot.handle(inbound)
    return messenger(app).to("ann")[before:]


async def answers(app: App) -> dict[str, Any]:
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        conversation = await uow.conversations.get(ann.id)
        assert conversation is not None
        return dict(conversation.state)


async def test_answers_that_start_with_a_command_word_stay_answers(
    app: App, clock: FakeClock
) -> None:
    await tell(app, clock, "intake")
    for text in ("Repair café", "find partners", "request for more funding", "Link neighbours"):
        (asked,) = await tell(app, clock, text)
        assert asked.startswith("(")  # the next question, nothing else
    state = await answers(app)
    assert state["answers"] == {
        "title": "Repair café",
        "summary": "find partners",
        "need": "request for more funding",
        "impact": "Link neighbours",
    }


async def test_a_command_with_all_it_needs_runs_and_the_question_comes_back(
    app: App, clock: FakeClock
) -> None:
    await tell(app, clock, "intake")
    await tell(app, clock, "Repair café")
    again = "Back to your intake:\n(2/12) In a few sentences, what is it, and who is it for?"
    # (a refusal, like `find` finding nobody, carries the question in the same message)
    for text in ("balance", "tags", "help tags", "/find partners", "!sif balance", "accept R-9"):
        reply = "\n\n".join(await tell(app, clock, text))
        assert not reply.startswith("(") and reply.endswith(again), (text, reply)
        assert reply.count("Back to your intake") == 1
    (refused,) = await tell(app, clock, "/Repair café")  # marked as a command: not an answer
    assert "I don't know the command 'repair'" in refused
    assert (await answers(app))["answers"] == {"title": "Repair café"}


async def test_a_channel_never_answers_the_conversation_but_cancel_there_stops_it(
    app: App, clock: FakeClock
) -> None:
    await tell(app, clock, "intake")
    await tell(app, clock, "Repair café network", channel="general")
    await tell(app, clock, "back", channel="general")
    state = await answers(app)
    assert state["answers"] == {} and state["position"] == "title"
    await tell(app, clock, "cancel", channel="general")
    assert messenger(app).to("ann")[-1].startswith("Cancelled — nothing was saved as an idea.")
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and await uow.conversations.get(ann.id) is None


async def test_stop_pauses_keeps_the_answers_and_intake_goes_on(app: App, clock: FakeClock) -> None:
    await tell(app, clock, "intake")
    await tell(app, clock, "Repair café network")
    for word in ("stop", "quit", "Exit."):
        (paused,) = await tell(app, clock, word)
        assert paused.startswith("Paused; your answers so far are kept. Type `intake` to go on")
    (hello,) = await tell(app, clock, "A network of repair cafés")  # not an answer now
    assert "Your intake is paused: type `intake` to go on" in hello
    (listed,) = await tell(app, clock, "help")  # the list of commands, no question
    assert "Commands you can use" in listed
    state = await answers(app)
    assert state["answers"] == {"title": "Repair café network"} and state["paused"] is True

    sweep = lambda: sweep_conversations(  # noqa: E731
        app.bot.uow_factory, app.bot.settings, clock, app.bot.flows, app.relay
    )
    clock.advance(days=2, minutes=1)
    assert (await sweep()).reminded == 1
    assert messenger(app).to("ann")[-1] == (
        "A reminder: your intake is paused. Type `intake` to go on where you stopped, "
        "or `cancel` to stop it."
    )
    (resumed,) = await tell(app, clock, "intake")
    assert resumed.startswith("Let's continue where you stopped.\n(2/12)")
    (asked,) = await tell(app, clock, "A network of repair cafés")
    assert asked.startswith("(3/12)")
    state = await answers(app)
    assert "paused" not in state and state["answers"]["summary"] == "A network of repair cafés"


async def test_stop_food_waste_is_a_title_and_buttons_still_answer(
    app: App, clock: FakeClock
) -> None:
    await tell(app, clock, "intake")
    await tell(app, clock, "Stop food waste")
    button = Inbound("console", "console", "ann", "cancel", display_name="ann", action="cancel")
    (cancelled,) = await tell(app, clock, "", inbound=button)
    assert cancelled.startswith("Cancelled")
    await tell(app, clock, "intake")
    assert (await answers(app))["answers"] == {}
    await tell(app, clock, "Stop food waste")
    assert (await answers(app))["answers"] == {"title": "Stop food waste"}
