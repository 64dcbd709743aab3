"""Journeys through the real `sif-bot console --script`: `help` at every moment (the welcome
menu, every question of every flow, the confirm step) and commands in between answers,
which run as commands and leave the conversation where it was."""

from __future__ import annotations

from pathlib import Path

from conversations.engine import Kind, Question
from conversations.loader import load_flows
from tests.e2e.console import messages_to, play

ABOUT = "by reviewing others"  # the end of what `help` says sif-bot and SIF are
MENU = "Type 1 to describe your idea, or 2 to offer your experience as a peer"


def test_help_in_the_welcome_menu_is_help_and_explains_sif(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            "ann: hi",
            "ann: help",
            "ann: help balance",
            "ann: what is SIF?",
            "ann: 1",
            "bob: help",
            "carl: How does this work?",
            "staff: frob",
            "staff: help link",
        ],
    )
    ann = messages_to(out, "ann")
    assert "What would you like to do first?" in ann[0]
    assert ann[1].startswith("sif-bot runs the peer network of")  # help, not the menu
    assert ABOUT in ann[1] and "Commands you can use" in ann[1]
    assert ann[2].startswith(MENU)  # ... and then the menu again
    assert ann[3].startswith("`balance [@member]`") and ann[4].startswith(MENU)
    assert ABOUT in ann[5] and "don't know the command" not in ann[5]
    assert ann[6].startswith(MENU)
    assert ann[7].startswith("Let's talk about your idea!")  # the menu was kept
    (bob,) = messages_to(out, "bob")  # a first message `help` explains what SIF is
    assert ABOUT in bob and "paid in SIF" in bob
    (carl,) = messages_to(out, "carl")
    assert ABOUT in carl and "`intake`" in carl
    staff = messages_to(out, "staff")
    assert "What would you like to do first?" in staff[0]
    assert staff[1].startswith("`link [code [confirm]]`") and staff[2].startswith(MENU)


def test_commands_in_a_conversation_run_and_the_question_is_asked_again(
    tmp_path: Path,
) -> None:
    out = play(
        tmp_path,
        [
            "ann: intake",
            "ann: help balance",
            "ann: Repair café",
            "ann: balance",
            "ann #general: hello everyone",
            "ann: A van with tools that visits a different neighbourhood every Saturday.",
            "ann: find partners",
            "ann: request for more funding",
            "ann: /find partners",
            "ann: stop",
            "ann: hello",
            "ann: intake",
            "ann: quit",
            "ann: status",
            "bob: profile",
            "bob: finance:3",
            "bob: help tags",
            "bob: English",
            "bob: exit",
            "bob: status",
        ],
    )
    ann = messages_to(out, "ann")
    assert ann[1].startswith("`balance [@member]`")  # `help balance` is help, not the title
    assert ann[2].startswith("Back to your intake:\n(1/12) What is your idea called?")
    assert ann[3].startswith("(2/12)")  # "Repair café" is the title
    assert ann[4].startswith("Your balance: 0.00 SIF")
    assert ann[5].startswith("Back to your intake:\n(2/12)")
    # The line in #general answered nothing: the next answer is the summary.
    assert ann[6].startswith("(3/12)") and ann[7].startswith("(4/12)")
    assert ann[8].startswith("(5/12)")
    assert "Back to your intake:\n(5/12)" in ann[9]  # `/find partners` is the command
    assert ann[10].startswith("Paused; your answers so far are kept. Type `intake` to go on")
    assert "Your intake is paused: type `intake` to go on" in ann[11]  # "hello": no answer
    assert ann[12].startswith("Let's continue where you stopped.\n(5/12)")
    assert ann[13].startswith("Paused;")
    status = ann[14]
    assert status.startswith("Question 5 of 12: income.")
    assert "Title: Repair café\n" in status
    assert "Summary: A van with tools" in status
    assert "Societal need: find partners\n" in status
    assert "Intended impact: request for more funding\n" in status
    for eaten in ("help balance", "hello", "stop", "quit", "/find"):
        assert eaten not in status
    bob = messages_to(out, "bob")
    assert bob[1].startswith("(2/5) Which languages")
    assert bob[2].startswith("`tags`")  # `help tags` is help, not an answer about languages
    assert bob[3].startswith("Back to your profile:\n(2/5) Which languages")
    assert bob[4].startswith("(3/5)") and bob[5].startswith("Paused;")
    assert "Languages: English\n" in bob[6] and "help tags" not in bob[6]


def answer_for(question: Question, tags: str) -> str:
    """A valid answer to a question of the packaged flows."""
    if question.kind in (Kind.CHOICE, Kind.MULTI):
        return question.choices[0]
    return {
        Kind.AMOUNT: "5000 EUR",
        Kind.NUMBER: "2",
        Kind.TAGS: tags,
        Kind.TAG_LEVELS: f"{tags}:3",
        Kind.YESNO: "yes",
    }.get(question.kind, "A plain answer")


def test_help_at_every_question_of_every_flow(tmp_path: Path) -> None:
    flows = load_flows()
    lines = []
    for flow in flows.values():
        lines.append(f"ann: {flow.id}")
        for question in flow.questions:
            lines += ["ann: help", f"ann: {answer_for(question, 'finance')}"]
        lines += ["ann: help", "ann: confirm"]
    out = play(tmp_path, lines)
    said = iter(messages_to(out, "ann"))
    for flow in flows.values():
        asked = next(said)  # the intro and the first question
        for question in flow.questions:
            number = f"({flow.index(question.id) + 1}/{len(flow.questions)}) "
            assert number in asked, (flow.id, question.id, asked)
            helped = next(said)
            assert " ".join(question.help.split()[:4]) in helped, (question.id, helped)
            assert "`help <command>`" in helped and "`stop`" in helped
            assert number + question.prompt.split()[0] in helped  # the same question again
            asked = next(said)
        assert "Here is what you told me:" in asked
        helped = next(said)
        assert "`confirm` submits your answers" in helped
        assert helped.endswith(flow.done_prompt)
        saved = next(said)
        assert "saved" in saved, saved  # help changed nothing: the flow still completes
