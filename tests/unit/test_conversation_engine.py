"""The conversation engine (SPEC §4): control words, every kind of question, bad answers
re-asked with a reason, a whole intake to confirmation, and states that survive JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.engine import (
    CONFIRM,
    Context,
    Flow,
    Kind,
    Outcome,
    Question,
    State,
    Step,
    answer,
    format_answer,
    parse_answer,
    resume,
    start,
    summary,
    validate,
)
from conversations.loader import load_flows

CTX = Context(tags=("finance", "legal", "business-model", "marketing"))
INTAKE = load_flows()["intake"]
CONFIRM_BUTTONS = ("confirm", "edit", "cancel")

NAME = Question("name", "What is it called?", help="A short name.", min_len=3, max_len=20)
STAGE = Question("stage", "Which stage?", kind=Kind.CHOICE, choices=("idea", "pilot", "running"))
NOTES = Question("notes", "Anything else?", optional=True, summary_label="Notes")
FUNDS = Question(
    "funds",
    "How is it funded?",
    kind=Kind.MULTI,
    choices=("sales", "grants", "don't know yet"),
    allow_note=True,
    summary_label="Funding",
)
SMALL = Flow(
    id="small",
    title="Small",
    intro="Hello there.",
    questions=(NAME, STAGE, NOTES, FUNDS),
    done_prompt="Type `confirm` to submit, or `edit <question>` to change an answer.",
    thanks="Thanks!",
    goodbye="Cancelled; nothing was saved as an idea.",
)


def one(question: Question) -> Flow:
    """A flow with a single question, for testing a kind on its own."""
    return Flow("one", "One", "Hi.", (question,), "Type `confirm`.")


def at(flow: Flow, question_id: str, answers: dict[str, Any] | None = None) -> State:
    """A state asking `question_id` after walking through the questions before it."""
    ids = [q.id for q in flow.questions]
    trail = ids[: ids.index(question_id) + 1] if question_id != CONFIRM else [*ids, CONFIRM]
    return State(flow.id, dict(answers or {}), question_id, trail)


FULL = {"name": "Repair van", "stage": "pilot", "funds": {"choices": ["sales"], "note": ""}}


def at_confirm() -> State:
    return at(SMALL, CONFIRM, FULL)


def assert_reasked(step: Step, before: State, question: Question, reason: str) -> None:
    """A bad answer: one sentence with the reason, then the same question; state unchanged."""
    assert step.outcome is Outcome.ASKING
    assert step.say.startswith(reason), step.say
    if reason:
        assert "\n" not in step.say.split("\n\n")[0]  # the reason is one line, then the question
    assert question.prompt in step.say
    assert step.state == before
    assert step.state is not before


# -- starting and resuming -------------------------------------------------------------


def test_start_says_the_intro_and_the_first_question() -> None:
    step = start(SMALL, CTX)
    assert step.say.startswith("Hello there.")
    assert "(1/4) What is it called?" in step.say
    assert step.state == State("small", {}, "name", ["name"])
    assert step.outcome is Outcome.ASKING


def test_start_with_answers_keeps_valid_ones_and_shows_them() -> None:
    step = start(SMALL, CTX, {"name": "Repair van", "stage": "scaling", "ghost": 1})
    assert step.state.answers == {"name": "Repair van"}  # invalid and unknown ones dropped
    assert "(now: Repair van)" in step.say


def test_resume_repeats_the_question_without_changing_state() -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    step = resume(SMALL, state, CTX)
    assert "Which stage?" in step.say
    assert step.state == state
    assert step.choices == ("idea", "pilot", "running")


def test_resume_at_confirm_shows_summary_and_done_prompt() -> None:
    step = resume(SMALL, at_confirm(), CTX)
    assert "name: Repair van" in step.say
    assert SMALL.done_prompt in step.say
    assert step.choices == CONFIRM_BUTTONS
    assert step.state == at_confirm()


# -- control words ---------------------------------------------------------------------


def test_back_at_the_first_question_says_there_is_nothing_before() -> None:
    state = at(SMALL, "name")
    step = answer(SMALL, state, "back", CTX)
    assert_reasked(step, state, NAME, "There is no question before this one.")


@pytest.mark.parametrize("word", ["back", "BACK", "  Back  ", "back.", "back\x00"])
def test_back_goes_to_the_previous_question_showing_its_answer(word: str) -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    step = answer(SMALL, state, word, CTX)
    assert step.state.position == "name"
    assert step.state.trail == ["name"]
    assert "What is it called?" in step.say
    assert "(now: Repair van)" in step.say
    assert step.state.answers == {"name": "Repair van"}


def test_skip_an_optional_question_records_no_answer_and_moves_on() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea", "notes": "old"})
    step = answer(SMALL, state, "SKIP", CTX)
    assert "notes" not in step.state.answers
    assert step.state.position == "funds"
    assert "How is it funded?" in step.say


def test_skip_a_required_question_is_refused() -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    step = answer(SMALL, state, "skip", CTX)
    assert_reasked(step, state, STAGE, "This question is required;")


@pytest.mark.parametrize(
    "command", ["edit stage", "EDIT Stage", "edit sta", "edit stgae", "edit 2", "edit  2"]
)
def test_edit_from_confirm_by_id_prefix_spelling_or_number(command: str) -> None:
    step = answer(SMALL, at_confirm(), command, CTX)
    assert step.state.position == "stage"
    assert step.state.editing
    assert "Which stage?" in step.say and "(now: pilot)" in step.say
    # after a valid answer straight back to the confirm step, not on to the next question
    step = answer(SMALL, step.state, "running", CTX)
    assert step.state.position == CONFIRM
    assert not step.state.editing
    assert step.state.answers["stage"] == "running"
    assert "Stage: running" not in step.say  # no label given: the id is used
    assert "stage: running" in step.say
    assert SMALL.done_prompt in step.say
    assert step.state.trail == at_confirm().trail


def test_edit_by_summary_label() -> None:
    step = answer(SMALL, at_confirm(), "edit funding", CTX)
    assert step.state.position == "funds"


@pytest.mark.parametrize("command", ["edit budget", "edit 9", "edit"])
def test_edit_of_an_unknown_question_lists_the_ids(command: str) -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    step = answer(SMALL, state, command, CTX)
    assert_reasked(step, state, STAGE, "")
    assert "name, stage, notes, funds" in step.say.split("\n")[0]
    step = answer(SMALL, at_confirm(), command, CTX)
    assert step.state == at_confirm()
    assert "name, stage, notes, funds" in step.say
    assert SMALL.done_prompt in step.say


def test_edit_in_the_middle_returns_to_the_current_question() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, "edit name", CTX)
    assert step.state.position == "name" and step.state.editing
    step = answer(SMALL, step.state, "Repair bus", CTX)
    assert step.state.position == "notes"
    assert not step.state.editing
    assert step.state.answers["name"] == "Repair bus"
    assert "Anything else?" in step.say
    assert step.state.trail == state.trail


def test_back_while_editing_keeps_the_earlier_answer() -> None:
    step = answer(SMALL, at_confirm(), "edit name", CTX)
    step = answer(SMALL, step.state, "back", CTX)
    assert step.state == at_confirm()
    assert "Kept your earlier answer." in step.say


def test_skip_while_editing_an_optional_question_removes_it_and_returns() -> None:
    state = at_confirm()
    state.answers["notes"] = "call me"
    step = answer(SMALL, state, "edit notes", CTX)
    step = answer(SMALL, step.state, "skip", CTX)
    assert step.state.position == CONFIRM
    assert "notes" not in step.state.answers
    assert "Notes:" not in step.say


def test_edit_while_editing_switches_question_or_returns() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, "edit name", CTX)
    step = answer(SMALL, step.state, "edit stage", CTX)
    assert step.state.position == "stage" and step.state.editing
    step = answer(SMALL, step.state, "pilot", CTX)
    assert step.state.position == "notes" and step.state.trail == state.trail
    step = answer(SMALL, answer(SMALL, state, "edit 1", CTX).state, "edit notes", CTX)
    assert step.state == state


def test_edit_of_the_current_question_just_asks_it_again() -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    step = answer(SMALL, state, "edit stage", CTX)
    assert step.state == state
    assert "Which stage?" in step.say


def test_a_text_answer_that_starts_with_edit_is_an_answer() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, "Edit videos for small NGOs", CTX)
    assert step.state.answers["notes"] == "Edit videos for small NGOs"


def test_status_says_how_far_and_the_answers_so_far() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, "Status", CTX)
    assert step.say.startswith("Question 3 of 4: notes.")
    assert "name: Repair van" in step.say and "stage: idea" in step.say
    assert "Anything else?" in step.say
    assert step.state == state


def test_status_before_any_answer() -> None:
    state = at(SMALL, "name")
    assert "No answers yet." in answer(SMALL, state, "status", CTX).say


def test_help_gives_the_question_help_and_the_control_words() -> None:
    state = at(SMALL, "name")
    step = answer(SMALL, state, "help", CTX)
    assert step.say.startswith("A short name.")
    for word in ("`back`", "`edit <question>`", "`status`", "`stop`", "`cancel`"):
        assert word in step.say
    assert "`help <command>`" in step.say and "`/find partners`" in step.say  # what answers
    assert "`skip`" not in step.say  # the question is required
    assert "What is it called?" in step.say
    assert step.state == state


def test_help_without_a_help_text_is_generic_and_mentions_skip_when_optional() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, "HELP", CTX)
    assert step.say.startswith("Answer in your own words.")
    assert "`skip`" in step.say


@pytest.mark.parametrize("state", [at(SMALL, "stage", {"name": "Repair van"}), at_confirm()])
@pytest.mark.parametrize("word", ["stop", "Quit", "exit."])
def test_stop_pauses_with_the_answers_kept_and_resume_goes_on(state: State, word: str) -> None:
    step = answer(SMALL, state, word, CTX)
    assert step.outcome is Outcome.PAUSED
    assert step.say.startswith("Paused; your answers so far are kept. Type `small` to go on")
    assert step.state.paused and step.state.answers == state.answers
    assert step.state.position == state.position
    stored = State.from_dict(json.loads(json.dumps(step.state.to_dict())))
    assert stored == step.state
    again = resume(SMALL, stored, CTX)
    assert not again.state.paused and "paused" not in again.state.to_dict()
    assert answer(SMALL, stored, "status", CTX).state.paused is False  # its words go on


def test_a_stop_in_an_answer_is_an_answer() -> None:
    step = answer(SMALL, at(SMALL, "name"), "Stop food waste", CTX)
    assert step.outcome is Outcome.ASKING and step.state.answers == {"name": "Stop food waste"}


@pytest.mark.parametrize("state", [at(SMALL, "stage", {"name": "Repair van"}), at_confirm()])
def test_cancel_says_nothing_was_saved(state: State) -> None:
    step = answer(SMALL, state, "Cancel", CTX)
    assert step.outcome is Outcome.CANCELLED
    assert "nothing was saved as an idea" in step.say


# -- the confirm step ------------------------------------------------------------------


@pytest.mark.parametrize("word", ["confirm", "yes", "OK", "Submit"])
def test_confirm_words_confirm(word: str) -> None:
    step = answer(SMALL, at_confirm(), word, CTX)
    assert step.outcome is Outcome.CONFIRMED
    assert step.say == "Thanks!"
    assert step.state.answers == FULL


@pytest.mark.parametrize("text", ["maybe", "skip", "", "\x00", "x" * 20_000])
def test_anything_else_at_confirm_shows_the_done_prompt_again(text: str) -> None:
    step = answer(SMALL, at_confirm(), text, CTX)
    assert step.outcome is Outcome.ASKING
    assert step.say.split("\n")[0] == "Everything is answered; I only need your confirmation now."
    assert step.say.endswith(SMALL.done_prompt)
    assert step.state == at_confirm()
    assert step.choices == CONFIRM_BUTTONS


def test_back_from_confirm_goes_to_the_last_question() -> None:
    step = answer(SMALL, at_confirm(), "back", CTX)
    assert step.state.position == "funds"
    assert "(now: sales)" in step.say
    step = answer(SMALL, step.state, "grants", CTX)
    assert step.state.position == CONFIRM
    assert step.state.trail == at_confirm().trail


def test_status_and_help_at_confirm() -> None:
    step = answer(SMALL, at_confirm(), "status", CTX)
    assert step.say.startswith("All 4 questions are done")
    assert "name: Repair van" in step.say
    assert step.state == at_confirm()
    step = answer(SMALL, at_confirm(), "help", CTX)
    assert "`confirm` submits your answers" in step.say
    assert step.state == at_confirm()


def test_confirm_with_a_missing_required_answer_asks_it_first() -> None:
    state = at_confirm()
    del state.answers["stage"]
    step = answer(SMALL, state, "confirm", CTX)
    assert step.outcome is Outcome.ASKING
    assert step.state.position == "stage"
    assert step.say.startswith("I still need an answer about stage.")
    step = answer(SMALL, step.state, "idea", CTX)
    assert step.state.position == CONFIRM
    assert answer(SMALL, step.state, "confirm", CTX).outcome is Outcome.CONFIRMED


# -- TEXT ------------------------------------------------------------------------------


def test_text_is_stripped_and_stored() -> None:
    step = answer(SMALL, at(SMALL, "name"), "  Repair van \n", CTX)
    assert step.state.answers == {"name": "Repair van"}
    assert step.state.position == "stage"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Please type an answer"),
        ("   \n\t ", "Please type an answer"),
        ("ab", "That is too short (2 characters; at least 3)."),
        ("x" * 21, "That is too long (21 characters; at most 20)."),
        ("x" * 20_000, "That is too long (20000 characters; at most 20)."),
        ("\x00\x01\x02", "Please type an answer"),
    ],
)
def test_bad_text_is_reasked_with_the_reason(text: str, reason: str) -> None:
    state = at(SMALL, "name")
    assert_reasked(answer(SMALL, state, text, CTX), state, NAME, reason)


def test_empty_answer_to_an_optional_question_mentions_skip() -> None:
    state = at(SMALL, "notes", {"name": "Repair van", "stage": "idea"})
    step = answer(SMALL, state, " ", CTX)
    assert_reasked(step, state, NOTES, "Please type an answer, or `skip`")


def test_control_characters_are_removed_not_stored() -> None:
    step = answer(SMALL, at(SMALL, "name"), "Re\x00pair\x1b van\r\nbus\tx", CTX)
    assert step.state.answers["name"] == "Repair van\nbus\tx"


def test_unicode_emoji_and_rtl_text_is_kept() -> None:
    text = "مقهى 🛠️ café"
    step = answer(SMALL, at(SMALL, "name"), text, CTX)
    assert step.state.answers["name"] == text


# -- CHOICE ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", "pilot"),
        ("Pilot", "pilot"),
        ("RUN", "running"),
        ("runing", "running"),
        ("ide", "idea"),
    ],
)
def test_choice_by_number_word_prefix_or_spelling(text: str, expected: str) -> None:
    step = answer(SMALL, at(SMALL, "stage", {"name": "Repair van"}), text, CTX)
    assert step.state.answers["stage"] == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("scaling", "'scaling' is not one of the choices (1. idea, 2. pilot, 3. running)."),
        ("4", "There is no choice 4; pick a number from 1 to 3: 1. idea, 2. pilot, 3. running."),
        ("0", "There is no choice 0;"),
        ("pilot, in two towns", "'pilot, in two towns' is not one of the choices"),
        ("", "Please type an answer"),
    ],
)
def test_bad_choice_is_reasked_with_the_choices(text: str, reason: str) -> None:
    state = at(SMALL, "stage", {"name": "Repair van"})
    assert_reasked(answer(SMALL, state, text, CTX), state, STAGE, reason)


def test_choice_with_a_note() -> None:
    question = Question("stage", "Which stage?", kind=Kind.CHOICE, choices=STAGE.choices)
    noted = Question(**{**question.__dict__, "allow_note": True})
    for text, note in [("pilot, in two towns", "in two towns"), ("2 - since May", "since May")]:
        assert parse_answer(noted, text, CTX).value == {"choice": "pilot", "note": note}
    assert parse_answer(noted, "pilot", CTX).value == {"choice": "pilot", "note": ""}
    assert not parse_answer(noted, "scaling, soon", CTX).ok


def test_choice_offers_buttons() -> None:
    assert start(one(STAGE), CTX).choices == ("idea", "pilot", "running")


# -- MULTI -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "choices", "note"),
    [
        ("1, 2", ["sales", "grants"], ""),
        ("grants, sales - mostly EU grants", ["grants", "sales"], "mostly EU grants"),
        ("sales and grants", ["sales", "grants"], ""),
        ("2 1", ["grants", "sales"], ""),
        ("sales grants", ["sales", "grants"], ""),
        ("sales, sales, 1", ["sales"], ""),
        ("grnats: from the city", ["grants"], "from the city"),
        ("Don’t know yet", ["don't know yet"], ""),
        ("dont know yet", ["don't know yet"], ""),
    ],
)
def test_multi_with_note(text: str, choices: list[str], note: str) -> None:
    assert parse_answer(FUNDS, text, CTX).value == {"choices": choices, "note": note}


def test_multi_without_note_is_a_list() -> None:
    plain = Question("p", "Partners?", kind=Kind.MULTI, choices=("academia", "business"))
    assert parse_answer(plain, "business & academia", CTX).value == ["business", "academia"]


def test_multi_choices_with_separators_in_them_are_not_split() -> None:
    q = Question("w", "Which?", kind=Kind.MULTI, choices=("research and development", "sales"))
    assert parse_answer(q, "sales, Research and Development", CTX).value == [
        "sales",
        "research and development",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sales, lottery", "'lottery' is not one of the choices"),
        ("1, 7", "There is no choice 7;"),
        (": just a note", "Please choose at least one of: 1. sales, 2. grants, 3. don't know yet."),
        ("sales - " + "x" * 1001, "Your note is too long (1001 characters; at most 1000)."),
    ],
)
def test_bad_multi_is_reasked(text: str, reason: str) -> None:
    state = at(SMALL, "funds", {"name": "Repair van", "stage": "idea"})
    assert_reasked(answer(SMALL, state, text, CTX), state, FUNDS, reason)


# -- AMOUNT ----------------------------------------------------------------------------

COST = Question("cost", "How much?", kind=Kind.AMOUNT)


@pytest.mark.parametrize(
    ("text", "low", "high", "currency"),
    [
        ("5000 EUR", 5000, 5000, "EUR"),
        ("€5,000", 5000, 5000, "EUR"),
        ("5k", 5000, 5000, None),
        ("2.5k", 2500, 2500, None),
        ("5.000 euro", 5000, 5000, "EUR"),
        ("10-20k euro", 10_000, 20_000, "EUR"),
        ("10k–20k", 10_000, 20_000, None),
        ("between 5000 and 8000 EUR", 5000, 8000, "EUR"),
        ("about $1.5 million", 1_500_000, 1_500_000, "USD"),
        ("up to 5000 EUR", None, 5000, "EUR"),
        ("5000+", 5000, None, None),
        ("EUR 5 000", 5000, 5000, "EUR"),
        ("don't know", None, None, None),
        ("dont know", None, None, None),
        ("Unknown", None, None, None),
        ("?", None, None, None),
    ],
)
def test_amounts(text: str, low: int | None, high: int | None, currency: str | None) -> None:
    value = parse_answer(COST, text, CTX).value
    assert value == {"low": low, "high": high, "currency": currency, "text": text.strip()}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("20-10k", "The range starts above where it ends (20,000 is more than 10,000);"),
        ("8000 - 5000 EUR", "The range starts above where it ends"),
        ("lots", "I could not read 'lots' in an amount;"),
        ("5000 8000", "Please write a range with a dash"),
        ("5000 EUR or 300 USD", "I could not read 'or' in an amount;"),
        ("5000 EUR - 300 USD", "Please use one currency for the amount."),
        ("99999999999999999999", "That amount is too large to be a development cost."),
        ("", "Please type an answer"),
    ],
)
def test_bad_amounts_are_reasked(text: str, reason: str) -> None:
    flow = one(COST)
    state = at(flow, "cost")
    assert_reasked(answer(flow, state, text, CTX), state, COST, reason)


def test_amount_is_shown_readably() -> None:
    value = parse_answer(COST, "10-20k euro", CTX).value
    assert format_answer(COST, value) == "10,000–20,000 EUR"
    assert format_answer(COST, parse_answer(COST, "?", CTX).value) == "not known yet"


# -- NUMBER ----------------------------------------------------------------------------

RATING = Question("rating", "How sure, 0 to 10?", kind=Kind.NUMBER, minimum=0, maximum=10)


@pytest.mark.parametrize(("text", "expected"), [("3", 3), ("2,5", 2.5), ("7.0", 7), ("0", 0)])
def test_numbers(text: str, expected: float) -> None:
    value = parse_answer(RATING, text, CTX).value
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["11", "-1", "three", "1e3", "nan", "10.5"])
def test_bad_numbers_are_reasked(text: str) -> None:
    flow = one(RATING)
    state = at(flow, "rating")
    reason = "The answer must be a number between 0 and 10."
    assert_reasked(answer(flow, state, text, CTX), state, RATING, reason)


def test_whole_numbers_only_when_asked() -> None:
    capacity = Question("c", "How many?", kind=Kind.NUMBER, minimum=0, maximum=10, integer=True)
    assert parse_answer(capacity, "2", CTX).value == 2
    assert parse_answer(capacity, "2.5", CTX).error == (
        "The answer must be a whole number between 0 and 10."
    )


# -- TAGS and TAG_LEVELS ---------------------------------------------------------------

HELP = Question("help", "Which expertise?", kind=Kind.TAGS)
LEVELS = Question("expertise", "Your expertise?", kind=Kind.TAG_LEVELS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("finance, legal", ["finance", "legal"]),
        ("Legal finance", ["legal", "finance"]),
        ("finanse", ["finance"]),  # misspelling corrected
        ("finance and legal, finance", ["finance", "legal"]),
        ("#business-model", ["business-model"]),
    ],
)
def test_tags(text: str, expected: list[str]) -> None:
    assert parse_answer(HELP, text, CTX).value == expected


def test_unknown_tag_is_named_and_the_tags_are_listed() -> None:
    flow = one(HELP)
    state = at(flow, "help")
    step = answer(flow, state, "finance, cooking", CTX)
    reason = (
        "'cooking' is not one of this community's tags: finance, legal, business-model, marketing."
    )
    assert_reasked(step, state, HELP, reason)


def test_tags_without_community_tags_accept_tag_shaped_words() -> None:
    assert parse_answer(HELP, "finance, Legal", Context()).value == ["finance", "legal"]
    assert "is not a tag" in parse_answer(HELP, "fin@nce", Context()).error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("finance:3 legal", {"finance": 3, "legal": 2}),
        ("finance: 3, legal : 1", {"finance": 3, "legal": 1}),
        ("finance:1 finance:3", {"finance": 3}),
        ("marketng:2", {"marketing": 2}),
    ],
)
def test_tag_levels(text: str, expected: dict[str, int]) -> None:
    assert parse_answer(LEVELS, text, CTX).value == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("finance:5", "The level of finance must be 1, 2 or 3 (like finance:3)."),
        ("cooking:2", "'cooking' is not one of this community's tags"),
        ("", "Please type an answer"),
    ],
)
def test_bad_tag_levels_are_reasked(text: str, reason: str) -> None:
    flow = one(LEVELS)
    state = at(flow, "expertise")
    assert_reasked(answer(flow, state, text, CTX), state, LEVELS, reason)


# -- YESNO -----------------------------------------------------------------------------

AGREE = Question("agree", "Do you agree?", kind=Kind.YESNO)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[("yes", True), ("Y", True), ("ja", True), ("Oui!", True)],
        *[("no", False), ("N", False), ("nee", False), ("non", False)],
    ],
)
def test_yes_no(text: str, expected: bool) -> None:
    assert parse_answer(AGREE, text, CTX).value is expected


def test_bad_yes_no_is_reasked() -> None:
    flow = one(AGREE)
    state = at(flow, "agree")
    step = answer(flow, state, "maybe", CTX)
    assert_reasked(step, state, AGREE, "Please answer yes or no.")
    assert step.choices == ("yes", "no")


# -- stored answers --------------------------------------------------------------------


def test_validate_accepts_what_parsing_produced_and_refuses_the_rest() -> None:
    assert validate(COST, parse_answer(COST, "5k EUR", CTX).value, CTX) is None
    assert validate(COST, {"low": 5, "high": 1, "currency": None, "text": "x"}, CTX) is not None
    assert validate(STAGE, "scaling", CTX) is not None
    assert validate(NAME, "ab", CTX) is not None
    assert validate(NAME, "bad\x00", CTX) is not None
    assert validate(RATING, True, CTX) is not None
    assert validate(HELP, ["cooking"], CTX) is not None
    assert validate(LEVELS, {"finance": 4}, CTX) is not None


def test_answer_never_mutates_the_given_state() -> None:
    state = at(SMALL, "name")
    snapshot = json.dumps(state.to_dict())
    answer(SMALL, state, "Repair van", CTX)
    answer(SMALL, state, "edit stage", CTX)
    assert json.dumps(state.to_dict()) == snapshot


def test_summary_lists_answered_questions_with_labels() -> None:
    state = at_confirm()
    state.answers["notes"] = "line one\nline two"
    assert summary(SMALL, state) == (
        "name: Repair van\nstage: pilot\nNotes: line one\n    line two\nFunding: sales"
    )


# -- a whole intake --------------------------------------------------------------------

WALK = [
    ("Repair café on wheels", "title", "Repair café on wheels"),
    ("A van with tools and volunteers for low-income households.", "summary", None),
    ("Appliances are thrown away because repairs are too expensive.", "need", None),
    ("Fewer appliances in the waste stream; we count repairs per month.", "impact", None),
    ("grants, sales - EU first", "income", {"choices": ["grants", "sales"], "note": "EU first"}),
    ("10-20k EUR", "cost", {"low": 10000, "high": 20000, "currency": "EUR", "text": "10-20k EUR"}),
    ("protoype", "stage", "prototype"),
    ("Whether municipalities will pay for it.", "uncertainties", None),
    ("3, 1 - Ghent", "partners", {"choices": ["government", "civil society"], "note": "Ghent"}),
    ("finance, legal", "help", ["finance", "legal"]),
    ("skip", "tenets", None),
    ("English and Dutch", "language", {"choices": ["English", "Dutch"], "note": ""}),
]  # fmt: skip


def test_a_whole_intake_walked_to_confirmed() -> None:
    step = start(INTAKE, CTX)
    for text, question_id, expected in WALK:
        assert step.state.position == question_id
        step = answer(INTAKE, step.state, text, CTX)
        if text == "skip":
            assert question_id not in step.state.answers
        elif expected is not None:
            assert step.state.answers[question_id] == expected
        else:
            assert step.state.answers[question_id] == text
    assert step.state.position == CONFIRM
    assert "Title: Repair café on wheels" in step.say
    assert "Development cost: 10,000–20,000 EUR" in step.say
    assert "Tenets" not in step.say
    assert step.say.endswith(INTAKE.done_prompt)
    assert step.choices == CONFIRM_BUTTONS
    done = answer(INTAKE, step.state, "confirm", CTX)
    assert done.outcome is Outcome.CONFIRMED
    assert len(done.state.answers) == 11


def test_state_survives_json_mid_flow_with_identical_next_steps() -> None:
    step = start(INTAKE, CTX)
    for text, _, _ in WALK[:6]:
        step = answer(INTAKE, step.state, text, CTX)
    step = answer(INTAKE, step.state, "edit 2", CTX)  # mid-edit, so `editing` is exercised too
    original = step.state
    restored = State.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original
    for text in ["status", "back", "A shorter summary.", "pilot", "back", "help", "x", "1"]:
        a, b = answer(INTAKE, original, text, CTX), answer(INTAKE, restored, text, CTX)
        assert (a.say, a.outcome, a.choices) == (b.say, b.outcome, b.choices)
        assert a.state == b.state
        original = a.state
        restored = State.from_dict(json.loads(json.dumps(b.state.to_dict())))


def test_from_dict_refuses_what_is_not_a_state() -> None:
    with pytest.raises(ValueError, match="answers"):
        State.from_dict({"flow": "intake", "answers": [], "position": None, "trail": []})


def test_a_broken_stored_position_is_repaired_not_raised() -> None:
    state = State("intake", {"title": "Repair van"}, "gone", ["nope"], editing=True)
    step = answer(INTAKE, state, "status", CTX)
    assert step.state.position == "summary"
    assert step.state.trail[-1] == "summary"
