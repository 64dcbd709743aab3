"""The command grammar of SPEC §3: every command parses, bad input gets one clear sentence."""

from __future__ import annotations

import pytest

from bot.commands import (
    COMMANDS,
    Accept,
    Adjust,
    Balance,
    Balances,
    Cancel,
    Decline,
    Done,
    ExpertiseAdd,
    ExpertiseRemove,
    Grant,
    Help,
    IdeaShow,
    MemberRef,
    ParseError,
    Pause,
    Profile,
    ProfileShow,
    RequestHelp,
    RequestsList,
    Resolve,
    SetRole,
    StatusOverview,
    Thanks,
    parse,
)


def test_the_whole_grammar_is_registered() -> None:
    expected = {
        "help", "intake", "profile", "expertise add", "expertise remove", "availability",
        "pause", "resume", "ideas", "request", "offers", "accept", "decline", "done",
        "thanks", "dispute", "cancel", "balance", "history", "tags", "balances", "stats",
        "grant", "adjust", "assign", "resolve", "role", "export", "link",
        "find", "intro", "mydata", "forget",
        "requests", "status", "idea", "profile show", "merge", "language",
        "similar", "similar hide", "similar show", "network", "forward",
    }  # fmt: skip
    assert set(COMMANDS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", Help()),
        ("HELP grant", Help("grant")),
        ("grant @ann 5 welcome credit", Grant(MemberRef("ann"), 500, "welcome credit")),
        ("grant <@slack:T1:U2> 2.5 prize", Grant(MemberRef("T1:U2", "slack"), 250, "prize")),
        ("adjust @ann -1.5 double booking", Adjust(MemberRef("ann"), -150, "double booking")),
        ("expertise add finance:3 legal", ExpertiseAdd((("finance", 3), ("legal", 2)))),
        ("expertise remove legal", ExpertiseRemove(("legal",))),
        ("pause", Pause()),
        ("pause 14", Pause(14)),
        ("request I-12", RequestHelp(12)),
        ("request i12 advice finance legal", RequestHelp(12, "advice", ("finance", "legal"))),
        ("accept R-7", Accept(7)),
        ("accept r7", Accept(7)),
        ("decline R-7 too busy this week", Decline(7, "too busy this week")),
        (
            "done R-7 1.5 Great idea, check the budget.",
            Done(7, 1.5, "Great idea, check the budget."),
        ),
        ("thanks R-7", Thanks(7)),
        ("thanks R-7 5 very helpful", Thanks(7, 5, "very helpful")),
        ("thanks R-7 helpful", Thanks(7, None, "helpful")),
        ("cancel", Cancel()),
        ("cancel R-3", Cancel(3)),
        ("balance", Balance()),
        ("balance @bob", Balance(MemberRef("bob"))),
        ("balances negative", Balances(None, "negative")),
        ("balances @bob", Balances(MemberRef("bob"))),
        ("resolve R-2 refund not delivered", Resolve(2, "refund", "not delivered")),
        ("role @bob staff", SetRole(MemberRef("bob"), "staff")),
        ("profile", Profile()),
        ("profile SHOW", ProfileShow()),
        ("idea i-3", IdeaShow(3)),
        ("requests", RequestsList()),
        ("status", StatusOverview()),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Type a command"),
        ("balanse", "Did you mean `balance`"),
        ("frobnicate", "I don't know the command 'frobnicate'"),
        ("grant @ann abc x", "'abc' is not an amount"),
        ("grant ann 5 x", "is not a member"),
        ("grant @ann 5", "needs more"),
        ("grant @ann -5 x", "must be a positive amount"),
        ("availability 11", "between 0 and 10"),
        ("availability many", "whole number"),
        ("accept 7x", "is not a request number"),
        ("thanks R-1 6", "between 1 and 5"),
        ("done R-1 lots of text", "hours must be a number"),
        ("expertise", "needs one of: add, remove"),
        ("expertise add finance:9", "level after the colon"),
        ("role @ann boss", "should be one of: member, staff, admin"),
        ("offers now please", "did not expect 'now please'"),
        ("resolve R-1 maybe", "pay, refund"),
    ],
)
def test_bad_input_gets_one_clear_sentence(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message


def test_usage_is_part_of_argument_errors() -> None:
    with pytest.raises(ParseError, match=r"Usage: `grant @member <amount> <reason>`"):
        parse("grant @ann lots x")


def test_long_unknown_words_are_shortened() -> None:
    with pytest.raises(ParseError) as info:
        parse("x" * 5000)
    assert len(str(info.value)) < 200
