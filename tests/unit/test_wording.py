"""How the bot writes counts and people's words, and how the grammar reads what people
type: close suggestions only, commas in lists and after mentions, a slip in an optional
choice (issue 18, finding 12)."""

from __future__ import annotations

import pytest

from bot.commands import (
    ExpertiseAdd,
    Grant,
    MemberRef,
    ParseError,
    RequestHelp,
    longest_text,
    parse,
    suggest,
)
from bot.domain.records import RequestStatus
from bot.i18n import plural, sentence


def test_plural_fits_the_count() -> None:
    assert plural(0, "member") == "0 members"
    assert plural(1, "member") == "1 member"
    assert plural(1204, "row") == "1,204 rows"
    assert plural(2, "person", "people") == "2 people"
    assert plural(1.0, "day") == "1 day" and plural(1.5, "day") == "1.5 days"


def test_a_sentence_ends_once() -> None:
    assert sentence("not enough") == "not enough."
    assert sentence("still there?") == "still there?"
    assert sentence("done!  ") == "done!"
    assert sentence("") == ""


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("balanse", "balance"),
        ("acept", "accept"),
        ("ofers", "offers"),
        ("hepl", "help"),
        ("histroy", "history"),
        ("one", None),  # resembles `done`, is no typo of it
        ("on", None),
        ("what", None),
        ("", None),
    ],
)
def test_suggestions_are_typos_of_a_command(typed: str, meant: str | None) -> None:
    assert suggest(typed) == meant


def test_commas_separate_list_items_and_follow_mentions() -> None:
    assert parse("grant @ann, 1 welcome") == Grant(
        member=MemberRef("ann"), amount=100, reason="welcome"
    )
    expected = ExpertiseAdd(tags=(("finance", 2), ("legal", 3)))
    assert parse("expertise add finance, legal:3") == expected
    assert parse("expertise add finance,legal:3") == expected
    assert parse("expertise add finance , legal:3") == expected
    assert parse("request I-1 review finance, legal") == RequestHelp(
        1, "review", ("finance", "legal")
    )
    # a free text keeps its commas; a decimal comma is still a decimal
    assert parse("grant @ann 2,5 books, coffee").reason == "books, coffee"  # type: ignore[attr-defined]
    assert parse("grant @ann 2,5 books").amount == 250  # type: ignore[attr-defined]


def test_a_slip_in_an_optional_choice_is_named_not_taken_for_a_tag() -> None:
    with pytest.raises(ParseError) as refused:
        parse("request I-1 reviews")
    text = str(refused.value)
    assert "'reviews' is not one of advice, feedback, review. Did you mean `review`?" in text
    assert "Usage: `request <I-n>" in text
    assert parse("request I-1 design") == RequestHelp(1, "review", ("design",))  # a tag
    with pytest.raises(ParseError, match="Did you mean `ledger`"):
        parse("export ledgr")


def test_the_feedback_of_done_may_be_longer_than_other_messages() -> None:
    assert longest_text("done R-1 2 text") == 12_000
    assert longest_text("DONE") == 12_000
    assert longest_text("balance") == 0 and longest_text("") == 0
    assert len(parse("done R-1 2 " + "x" * 12_000).feedback) == 12_000  # type: ignore[attr-defined]
    with pytest.raises(ParseError, match=r"12,001 characters; at most 12,000\). Shorten it"):
        parse("done R-1 2 " + "x" * 12_001)


def test_statuses_read_as_chat_says_them() -> None:
    assert RequestStatus.ASSIGNED.label == "accepted"
    assert RequestStatus.DELIVERED.label == "delivered"
