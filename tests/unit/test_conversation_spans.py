"""What the conversation engine says is styled spans: its own words to type are `code`
spans, and whatever a person typed comes back as plain text, even when it looks like markup."""

from __future__ import annotations

from conversations import spans
from conversations.answers import parse_answer
from conversations.engine import (
    CONFIRM,
    Context,
    Flow,
    Kind,
    Question,
    State,
    Step,
    answer,
    start,
    summary,
    summary_spans,
)
from conversations.spans import Span

CTX = Context(tags=("finance", "legal"))
MARKUP = "`help` *now*"  # a title that looks like the core's markup
TITLE = Question("title", "What is it called?", summary_label="Title", max_len=80)
STAGE = Question("stage", "Which stage?", kind=Kind.CHOICE, choices=("idea", "pilot"))
NOTES = Question("notes", "Anything {else}?", help="Say `more`, {or not}.", optional=True)
FLOW = Flow("f", "F", "Hello {there}; type `help`.", (TITLE, STAGE, NOTES), "Type `confirm`.")


def marked_spans(body: tuple[Span, ...]) -> set[Span]:
    return {span for span in body if span[0] != "text"}


def texts(body: tuple[Span, ...]) -> str:
    return "".join(value for style, value in body if style == "text")


def titled(title: str = MARKUP) -> State:
    return State("f", {"title": title, "stage": "idea"}, CONFIRM, ["title", "stage", CONFIRM])


def test_an_answer_that_looks_like_markup_comes_back_as_text_in_the_summary() -> None:
    step = answer(FLOW, State("f", {}, "title", ["title"]), MARKUP, CTX)
    assert step.state.answers == {"title": MARKUP}
    step = answer(FLOW, step.state, "idea", CTX)
    step = answer(FLOW, step.state, "skip", CTX)
    assert step.state.position == CONFIRM
    assert step.body == (
        ("text", "Here is what you told me:\nTitle: `help` *now*\nstage: idea\n\nType "),
        ("code", "confirm"),  # the flow's own markup
        ("text", "."),
    )
    assert (
        step.say == "Here is what you told me:\nTitle: `help` *now*\nstage: idea\n\nType `confirm`."
    )


def test_summary_spans_are_plain_text_and_summary_is_their_string() -> None:
    state = titled()
    assert summary_spans(FLOW, state) == (("text", "Title: `help` *now*\nstage: idea"),)
    assert summary(FLOW, state) == "Title: `help` *now*\nstage: idea"


def test_the_current_answer_shown_again_is_text() -> None:
    step = answer(FLOW, titled(), "edit title", CTX)
    assert "(now: `help` *now*)" in texts(step.body)
    assert marked_spans(step.body) == set()


def test_a_refused_answer_is_quoted_back_as_text() -> None:
    state = State("f", {"title": "Van"}, "stage", ["title", "stage"])
    step = answer(FLOW, state, "`pilot` *now*", CTX)
    reason = "'`pilot` *now*' is not one of the choices (1. idea, 2. pilot)."
    assert step.body[0] == (
        "text",
        f"{reason}\n\n(2/3) Which stage?\nChoose one: 1. idea, 2. pilot",
    )
    assert marked_spans(step.body) == set()
    parsed = parse_answer(STAGE, "`pilot` *now*", CTX)
    assert parsed.reason == (("text", reason),) and parsed.error == reason


def test_an_unknown_edit_target_is_quoted_as_text_and_the_edit_word_is_code() -> None:
    step = answer(FLOW, titled(), "edit `zz`", CTX)
    assert step.body[:3] == (
        ("text", "There is no question '`zz`'; type "),
        ("code", "edit"),
        ("text", " with one of: title, stage, notes (or its number).\n\nType "),
    )


def test_the_engines_own_words_to_type_are_code_spans() -> None:
    step = answer(FLOW, State("f", {}, "title", ["title"]), "help", CTX)
    assert ("code", "back") in step.body
    assert ("code", "edit <question>") in step.body
    assert ("code", "skip") not in step.body  # the question is required
    step = answer(FLOW, State("f", {"title": "x", "stage": "idea"}, "notes", ["notes"]), "", CTX)
    assert step.body[:3] == (
        ("text", "Please type an answer, or "),
        ("code", "skip"),
        ("text", " to leave this one out.\n\n(3/3) Anything {else}?\nOptional — type "),
    )


def test_flow_texts_keep_their_marks_and_their_braces() -> None:
    step = start(FLOW, CTX)
    assert step.body[:3] == (
        ("text", "Hello {there}; type "),
        ("code", "help"),
        ("text", ".\n\n(1/3) What is it called?"),
    )
    step = answer(FLOW, State("f", {}, "notes", ["notes"]), "help", CTX)
    assert step.body[:3] == (
        ("text", "Say "),
        ("code", "more"),
        ("text", ", {or not}.\nYou can also type "),
    )


def test_say_is_the_body_with_its_marks_written_out() -> None:
    step = answer(FLOW, titled(), "status", CTX)
    assert isinstance(step, Step)
    assert step.say == spans.plain(step.body)
    assert step.say.startswith("All 3 questions are done; waiting for your confirmation.\n")
