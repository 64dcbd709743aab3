"""The packaged flows (SPEC §4) load and say what the spec says, and a community override
file can change wording, choices and optional questions; a bad one fails with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conversations.engine import Context, Kind, State, answer, start
from conversations.loader import REQUIRED_BY_CORE, FlowError, build_flow, load_flows

INTAKE_IDS = [
    "title", "summary", "need", "impact", "income", "cost", "stage", "uncertainties",
    "partners", "help", "tenets", "language",
]  # fmt: skip
LANGUAGES = ("English", "Dutch", "French", "German", "Spanish", "Italian", "other")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community-flows.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_flows_load() -> None:
    flows = load_flows()
    assert set(flows) == {"intake", "profile"}
    for flow in flows.values():
        assert flow.intro and flow.done_prompt and flow.title
        for question in flow.questions:
            assert question.help, f"{flow.id}.{question.id} has no help text"
            assert question.summary_label, f"{flow.id}.{question.id} has no summary label"


def test_intake_has_the_twelve_questions_of_the_spec_in_order() -> None:
    intake = load_flows()["intake"]
    assert [q.id for q in intake.questions] == INTAKE_IDS
    q = {question.id: question for question in intake.questions}
    assert (q["title"].kind, q["title"].min_len, q["title"].max_len) == (Kind.TEXT, 3, 80)
    assert q["summary"].max_len == 1000
    assert q["income"].kind is Kind.MULTI and q["income"].allow_note
    assert q["income"].choices == (
        "sales", "services", "subscriptions", "grants", "donations", "public contracts",
        "don't know yet",
    )  # fmt: skip
    assert q["cost"].kind is Kind.AMOUNT
    assert q["stage"].choices == ("idea", "prototype", "pilot", "running")
    assert q["partners"].choices == ("civil society", "academia", "government", "business")
    assert q["partners"].allow_note
    assert q["help"].kind is Kind.TAGS
    assert [x.id for x in intake.questions if x.optional] == ["tenets"]
    assert q["language"].kind is Kind.MULTI and q["language"].choices == LANGUAGES
    assert "nothing was saved as an idea" in intake.goodbye
    assert "`need`" not in q["need"].help and "example" in q["need"].help.lower()


def test_profile_has_expertise_languages_capacity_offers_and_bio() -> None:
    profile = load_flows()["profile"]
    q = {question.id: question for question in profile.questions}
    assert list(q) == ["expertise", "languages", "capacity", "offers", "bio"]
    assert q["expertise"].kind is Kind.TAG_LEVELS
    assert q["languages"].choices == LANGUAGES
    assert (q["capacity"].minimum, q["capacity"].maximum, q["capacity"].integer) == (0, 10, True)
    assert q["offers"].optional and q["offers"].allow_note
    assert q["offers"].choices == ("funding", "partnership", "mentoring")
    assert q["bio"].optional and q["bio"].max_len == 500


def test_the_core_needs_these_answers_and_they_are_required() -> None:
    flows = load_flows()
    for flow_id, ids in REQUIRED_BY_CORE.items():
        for question_id in ids:
            question = flows[flow_id].question(question_id)
            assert question is not None and not question.optional


def test_an_override_changes_wording_choices_and_optional(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
intake:
  intro: "Welcome to the Ghent factory!"
  questions:
    need: {prompt: "Which need in Ghent?", help: "For example: loneliness."}
    tenets: {optional: false}
    stage: {choices: [idea, prototype, pilot, running, scaling]}
    title: {max_len: 60}
profile:
  questions:
    capacity: {maximum: 5}
""",
    )
    flows = load_flows(path)
    intake = flows["intake"]
    assert intake.intro == "Welcome to the Ghent factory!"
    need = intake.question("need")
    assert need is not None and need.prompt == "Which need in Ghent?"
    assert need.help == "For example: loneliness."
    tenets, stage, title = (
        intake.question("tenets"),
        intake.question("stage"),
        intake.question("title"),
    )
    assert tenets is not None and not tenets.optional
    assert stage is not None and stage.choices[-1] == "scaling"
    assert title is not None and title.max_len == 60 and title.min_len == 3
    capacity = flows["profile"].question("capacity")
    assert capacity is not None and capacity.maximum == 5
    # untouched things stay as packaged
    assert [q.id for q in intake.questions] == INTAKE_IDS
    assert intake.done_prompt == load_flows()["intake"].done_prompt
    # and the engine uses the new choices
    state = State("intake", {}, "stage", ["stage"])
    assert answer(intake, state, "5", Context()).state.answers["stage"] == "scaling"
    assert "Welcome to the Ghent factory!" in start(intake, Context()).say


def test_an_empty_override_file_changes_nothing(tmp_path: Path) -> None:
    assert load_flows(write(tmp_path, "# nothing yet\n")) == load_flows()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("intake:\n  questions:\n    nede: {prompt: x}\n", "question 'nede': no such question"),
        ("intak:\n  intro: hi\n", "unknown flow 'intak' (did you mean 'intake'?)"),
        (
            "intake:\n  questions:\n    stage: {kind: text}\n",
            "question 'stage': cannot change 'kind'",
        ),
        ("intake:\n  questions:\n    stage: {id: phase}\n", "question 'stage': cannot change 'id'"),
        ("intake:\n  questions:\n    need: {promt: x}\n", "question 'need': unknown field 'promt'"),
        (
            "intake:\n  questions:\n    title: {optional: true}\n",
            "question 'title': the core needs",
        ),
        ("intake:\n  questions:\n    help: {optional: true}\n", "question 'help': the core needs"),
        ("profile:\n  questions:\n    capacity: {optional: yes}\n", "'capacity': the core needs"),
        ("intake:\n  questions:\n    stage: {choices: []}\n", "needs a list of at least 2 choices"),
        (
            "intake:\n  questions:\n    income: {choices: []}\n",
            "needs a list of at least 1 choices",
        ),
        ("intake:\n  questions:\n    stage: {choices: [idea, Idea]}\n", "cannot be told apart"),
        ("intake:\n  questions:\n    stage: {choices: [idea, '2']}\n", "is a number"),
        (
            "intake:\n  questions:\n    title: {min_len: 90}\n",
            "min_len (90) is more than max_len (80)",
        ),
        (
            "intake:\n  questions:\n    need: {choices: [a, b]}\n",
            "'choices' does not apply to a text",
        ),
        (
            "intake:\n  questions:\n    tenets: {optional: maybe}\n",
            "'optional' must be true or false",
        ),
        (
            "profile:\n  questions:\n    capacity: {minimum: 20}\n",
            "minimum (20) is more than maximum",
        ),
        ("intake:\n  id: other\n", "flow 'intake': 'id' cannot be overridden"),
        ("intake:\n  questions: [title]\n", "'questions' must map question ids to changes"),
        ("intake:\n  intro: ''\n", "flow 'intake': 'intro' must be a non-empty text"),
        ("intake: [1, 2]\n", "the changes must be a mapping"),
        ("- intake\n", "an override file must map flow ids"),
        ("intake:\n  intro: [unclosed\n", "not valid YAML"),
        ("intake: {questions: {need: {prompt: x}}\n\t- :\n", "not valid YAML"),
    ],
)
def test_a_bad_override_file_fails_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FlowError) as caught:
        load_flows(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_a_missing_override_file_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read the override file"):
        load_flows(tmp_path / "nope.yaml")


def test_flow_error_is_a_value_error() -> None:
    assert issubclass(FlowError, ValueError)


def flow_data(**changes: Any) -> dict[str, Any]:
    question: dict[str, Any] = {"id": "name", "kind": "text", "prompt": "Name?"}
    data: dict[str, Any] = {
        "id": "demo",
        "title": "Demo",
        "intro": "Hi.",
        "done_prompt": "Type `confirm`.",
        "questions": [question, {"id": "stage", "kind": "choice", "prompt": "Stage?",
                                 "choices": ["idea", "pilot"]}],
    }  # fmt: skip
    data.update(changes)
    return data


def test_build_flow_accepts_a_good_flow() -> None:
    flow = build_flow(flow_data())
    assert [q.id for q in flow.questions] == ["name", "stage"]
    assert flow.questions[1].kind is Kind.CHOICE


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"questions": [{"id": "a", "prompt": "A?"}, {"id": "a", "prompt": "B?"}]}, "used twice"),
        ({"questions": [{"id": "s", "kind": "choice", "prompt": "S?"}]}, "at least 2 choices"),
        ({"questions": [{"id": "n", "kind": "numbr", "prompt": "N?"}]}, "unknown kind 'numbr'"),
        ({"questions": [{"id": "confirm", "prompt": "C?"}]}, "not 'confirm'"),
        ({"questions": [{"id": "Bad Id", "prompt": "C?"}]}, "short lowercase name"),
        ({"questions": [{"id": "x", "prompt": ""}]}, "'prompt' must be a non-empty text"),
        ({"questions": [{"id": "x", "prompt": "X?", "max_len": 0}]}, "'max_len' must be"),
        ({"questions": [{"id": "x", "prompt": "X?", "kind": "number", "minimum": "a"}]}, "number"),
        ({"questions": []}, "'questions' must be a non-empty list"),
        ({"questions": ["name"]}, "a question must be a mapping"),
        ({"colour": "blue"}, "unknown field 'colour'"),
        ({"id": "intake"}, "the core needs this question; it is missing"),
    ],
)
def test_build_flow_refuses_a_bad_flow_with_one_line(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(FlowError) as caught:
        build_flow(flow_data(**changes), "demo.yaml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("demo.yaml: flow ")
    assert expected in str(caught.value)
