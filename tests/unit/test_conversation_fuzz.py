"""Property tests for the conversation engine: whatever a person (or a broken client) types,
the engine never raises, never stores an answer that fails validation, and never stores or
says control characters, and never turns what was typed into markup. About 10,000 strings
in all: unicode, control characters, lone surrogates, near-misses built from the real
vocabulary, markup characters, and 20,000-character pastes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import spans
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
    validate,
)
from conversations.loader import load_flows

FLOWS = load_flows()
INTAKE = FLOWS["intake"]
CTX = Context(tags=("finance", "legal", "business-model", "marketing", "ux-design"))

QUESTIONS = {
    Kind.TEXT: Question("t", "Title?", min_len=3, max_len=80),
    Kind.CHOICE: Question(
        "c", "Stage?", kind=Kind.CHOICE, choices=("idea", "prototype", "pilot"), allow_note=True
    ),
    Kind.MULTI: INTAKE.questions[4],  # income: multi with a note
    Kind.AMOUNT: INTAKE.questions[5],
    Kind.NUMBER: Question("n", "How many?", kind=Kind.NUMBER, minimum=0, maximum=10),
    Kind.TAGS: INTAKE.questions[9],
    Kind.TAG_LEVELS: FLOWS["profile"].questions[0],
    Kind.YESNO: Question("y", "Agree?", kind=Kind.YESNO, optional=True),
}
# Two questions per flow, so a valid answer moves on and `back` has somewhere to go.
FLOW_OF = {
    kind: Flow(
        "fuzz", "Fuzz", "Hi.", (Question("first", "First?"), q), "Type `confirm`.", "Thanks."
    )
    for kind, q in QUESTIONS.items()
}
EXAMPLES_PER_KIND = 1_250  # x 8 kinds = 10,000 strings
BATCH = 5  # strings per example: drawing several at once keeps Hypothesis' overhead down

VOCABULARY = [
    *("idea", "prototype", "pilot", "sales", "grants", "public contracts", "don't know yet"),
    *("finance", "legal", "business-model", "ux-design", "finanse", ":3", ":0", ":", "#"),
    *("0", "1", "2", "3", "7", "10", "11", "-1", "2,5", "1.000", "1e9", "99999999999999999"),
    *("k", "m", "EUR", "€", "$", "£", "euro", "between", "and", "to", "up to", "+", "?"),
    *("don't know", "dont know", "unknown", "yes", "no", "ja", "nee", "oui", "non"),
    *("back", "skip", "edit", "edit 1", "edit stage", "status", "help", "cancel", "confirm"),
    *(",", ", ", " - ", " – ", "—", "&", "/", ";", " ", "  ", "\t", "\n", "\r\n", "\r"),
    *("\x00", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\u202e", "\u2028", "\ufeff"),
    *("🛠️", "👩‍👩‍👧", "مقهى", "שלום", "İ", "ß", "ﬁ", "e\u0301", "\U0001f600"),
    *("`", "*", "`help`", "*now*", "`edit 6`", "{", "}", "{0}"),
]  # fmt: skip
LONG = [
    "x" * 20_000,
    "1, " * 7_000,
    "sales and " * 2_000,
    "finance " * 2_500,
    "finance:3 " * 2_000,
    "5" * 20_000,
    "\x00" * 20_000,
    "\n" * 20_000,
    "🛠" * 20_000,
    "מ" * 20_000,
    "a" * 100_001,
    "edit " + "s" * 19_995,
    "1-" * 10_000,
    "é" * 5_000 + "\ud800" * 5_000,
]

strings = st.one_of(
    st.text(max_size=120),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60),  # with surrogates
    st.text(st.characters(max_codepoint=0x9F), max_size=80),  # ASCII and C0/C1 controls
    st.lists(st.sampled_from(VOCABULARY), max_size=14).map("".join),
    st.lists(st.sampled_from(VOCABULARY), max_size=8).map(" ".join),
    st.builds(
        lambda unit, n: (unit * n)[:20_000],
        st.text(min_size=1, max_size=12),
        st.integers(min_value=500, max_value=20_000),
    ),
    st.sampled_from(LONG),
)

# Near-misses built from each kind's own words, so that many answers are accepted and the
# stored values (not only the refusals) get checked.
SEPARATORS = [",", ", ", " ", " and ", " - ", ": ", "–", "/", "&", ";", "\n", "\x00", "  "]
OWN_WORDS: dict[Kind, list[str]] = {
    Kind.TEXT: ["Repair café", "ok", "a", "x" * 79, "🛠️", "\t", "edit the world", "help me"],
    Kind.CHOICE: ["idea", "prototype", "pilot", "1", "2", "3", "4", "pilto", "IDEA", "pro"],
    Kind.MULTI: [
        *("sales", "services", "grants", "donations", "public contracts", "don't know yet"),
        *("Dont know yet", "pubic contracts", "1", "6", "7", "8", "s", "mostly EU", "grnats"),
    ],
    Kind.AMOUNT: [
        *("5000", "5,000", "5.000", "2.5", "1'000", "10", "20", "0", "k", "m", "mln", "keur"),
        *("EUR", "€", "$", "usd", "between", "to", "up to", "at least", "+", "-", "~", "?"),
        *("don't know", "unknown", "about", "1e5", "999999999999", "-5"),
    ],
    Kind.NUMBER: ["0", "1", "5", "10", "11", "-", "+", ".", ",", "5", "2,5", "007", "9.99"],
    Kind.TAGS: ["finance", "legal", "business-model", "ux-design", "finanse", "#legal", "fin"],
    Kind.TAG_LEVELS: ["finance", "legal:1", "marketing:3", ":2", ":4", "ux-desing", "legal :3"],
    Kind.YESNO: ["yes", "no", "Y", "n", "ja", "nee", "oui", "non", "yes!", "nope", "  "],
}


def plausible(kind: Kind) -> st.SearchStrategy[str]:
    token = st.sampled_from(OWN_WORDS[kind])
    pieces = st.lists(st.tuples(token, st.sampled_from(SEPARATORS)), min_size=1, max_size=6)
    return pieces.map(
        lambda pairs: "".join(w + sep for w, sep in pairs)[: -len(pairs[-1][1]) or None]
    )


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*strings_in(k), *strings_in(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


# The engine's own markup: the words its replies teach (`back`, `edit <question>`, ...),
# and what its help says about commands in between (`help <command>`, `/find partners`).
ENGINE_MARKS = {"back", "skip", "edit", "edit <question>", "edit 6", "status", "cancel", "confirm"}
ENGINE_MARKS |= {"stop", "help <command>", "balance", "/", "/find partners"}


def marks_of(flow: Flow) -> set[tuple[str, str]]:
    """Every code and strong span the engine may say in this flow: its own and the flow's."""
    texts = [flow.intro, flow.done_prompt, flow.thanks, flow.goodbye]
    texts += [t for q in flow.questions for t in (q.prompt, q.help)]
    found = {span for text in texts for span in spans.marked(text) if span[0] != "text"}
    # ... and the flow's own command, which goes on after `stop` (`intake`).
    return found | {("code", word) for word in ENGINE_MARKS | {flow.id}}


def check_step(flow: Flow, step: Step) -> None:
    """What must hold after any message."""
    state = step.state
    assert isinstance(step.say, str) and step.say
    assert step.say == spans.plain(step.body)
    assert all(value for _, value in step.body) and spans.merge(step.body) == step.body
    assert {s for s in step.body if s[0] != "text"} <= marks_of(flow), "typed text as markup"
    assert not CONTROL.search(step.say), "control characters in what the bot says"
    assert state.position == CONFIRM or flow.question(state.position or "") is not None
    assert state.trail and state.trail[-1] == state.position
    for question_id, value in state.answers.items():
        question = flow.question(question_id)
        assert question is not None
        assert validate(question, value, CTX) is None, (question_id, value)
        assert not any(CONTROL.search(s) for s in strings_in(value))
    encoded = json.dumps(state.to_dict())
    encoded.encode("utf-8")  # a database could store it
    assert State.from_dict(json.loads(encoded)) == state


@pytest.mark.parametrize("kind", list(Kind))
@settings(
    max_examples=EXAMPLES_PER_KIND // BATCH,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_string_at_any_kind_of_question(kind: Kind, data: st.DataObject) -> None:
    own = st.sampled_from(OWN_WORDS[kind])
    texts = st.lists(st.one_of(strings, own, plausible(kind)), min_size=BATCH, max_size=BATCH)
    flow = FLOW_OF[kind]
    question = flow.questions[1]
    for text in data.draw(texts, label="texts"):
        before = State(flow.id, {"first": "First answer"}, question.id, ["first", question.id])
        step = answer(flow, before, text, CTX)
        check_step(flow, step)
        if question.id not in step.state.answers:
            # refused, or a control word: nothing else may have changed behind the scenes
            assert step.state.answers == {"first": "First answer"}
        assert before == State(
            flow.id, {"first": "First answer"}, question.id, ["first", question.id]
        )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(strings, min_size=1, max_size=12))
def test_any_conversation_through_the_intake_keeps_its_invariants(texts: list[str]) -> None:
    step = start(INTAKE, CTX)
    for text in texts:
        state = State.from_dict(json.loads(json.dumps(step.state.to_dict())))
        step = answer(INTAKE, state, text, CTX)
        check_step(INTAKE, step)


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("text", LONG, ids=range(len(LONG)))
def test_huge_pastes_are_refused_at_every_kind(kind: Kind, text: str) -> None:
    flow = FLOW_OF[kind]
    question = flow.questions[1]
    before = State(flow.id, {}, question.id, ["first", question.id])
    step = answer(flow, before, text, CTX)
    check_step(flow, step)
    assert question.prompt in step.say
