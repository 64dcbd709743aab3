"""The price of a request is fixed per kind and said one way; hours are bounded quarter
hours, for the record; a reviewer sees every intake answer but the title and contacts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.app.offering import reviewer_answers
from bot.app.wording import price_list
from bot.commands import Done, ParseError, parse
from bot.domain.ids import CommunityId, IdeaId, MemberId
from bot.domain.records import Idea, IdeaStatus
from bot.domain.requests import kind_words
from conversations.loader import load_flows

DEFAULTS = {"advice": 100, "feedback": 100, "review": 200}


def test_prices_are_said_the_same_way_dearest_first() -> None:
    assert price_list(DEFAULTS) == "a review costs 2 SIF, advice and feedback 1 SIF"
    assert price_list({"advice": 150, "feedback": 100, "review": 300}) == (
        "a review costs 3 SIF, advice 1.50 SIF, feedback 1 SIF"
    )
    assert price_list({"advice": 100, "feedback": 100, "review": 100}) == (
        "a review, advice and feedback cost 1 SIF"
    )
    assert [kind_words(k) for k in ("review", "advice", "feedback")] == [
        "a review",
        "advice",
        "feedback",
    ]


@pytest.mark.parametrize(
    ("typed", "hours"), [("0.25", 0.25), ("1,5", 1.5), ("8", 8.0), ("40", 40.0), ("2.75", 2.75)]
)
def test_hours_are_quarter_hours_up_to_a_working_week(typed: str, hours: float) -> None:
    assert parse(f"done R-1 {typed} my notes") == Done(1, hours, "my notes")


@pytest.mark.parametrize("typed", ["0.001", "0", "0.2", "1.3", "40.25", "200", "-1", "nan"])
def test_other_hours_are_refused_in_one_sentence(typed: str) -> None:
    with pytest.raises(ParseError) as refused:
        parse(f"done R-1 {typed} my notes")
    assert str(refused.value).startswith(
        "Hours are the time you spent, in quarter hours from 0.25 to 40 (like 1.5); they "
        "are recorded, and the price of the request stays as it is."
    )


def test_the_reviewer_sees_every_answer_but_the_title_and_contacts() -> None:
    answers = {
        "title": "Repair café",
        "summary": "Repair cafés.",
        "income": {"choices": ["grants", "sales"], "note": "city"},
        "stage": {"choice": "pilot"},
        "partners": {"choices": ["academia"], "note": ""},
        "email": "ann@example.org",
        "tenets": "",
        "extra": "asked by an older version of the flow",
    }
    idea = Idea(
        IdeaId(1),
        CommunityId(1),
        1,
        MemberId(1),
        "Repair café",
        answers,
        IdeaStatus.SUBMITTED,
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert reviewer_answers(load_flows()["intake"], idea) == [
        "Summary: Repair cafés.",
        "Income: grants, sales — city",
        "Stage: pilot",
        "Partners: academia",
        "Extra: asked by an older version of the flow",
    ]
