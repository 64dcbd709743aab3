"""Where do I stand (issue 18, finding 2), played in the console as people would:
`requests` (and `status`) as innovator and peer with the next step for each, `idea I-n`,
`profile show`, `offers` after an accept, and an idea status that moves."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.console import messages_to, play

INTAKE = (Path(__file__).parent / "scripts" / "intake.txt").read_text(encoding="utf-8")


def answer_to(output: str, name: str, starting: str) -> str:
    """The last message to `name` that starts with `starting`."""
    matching = [m for m in messages_to(output, name) if m.startswith(starting)]
    assert matching, f"no message to {name} starts with {starting!r}:\n{output}"
    return matching[-1]


def test_requests_and_ideas_follow_a_review_from_ask_to_thanks(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        INTAKE,
        "bob: expertise add finance:3",
        "staff: grant @ann 5 welcome",
        "ann: request I-1 review finance",
        "ann: requests",
        "bob: requests",
        "bob: accept R-1",
        "bob: offers",
        "ann: requests",
        "bob: requests",
        "ann: ideas",
    )
    asked = next(m for m in messages_to(out, "ann") if m.startswith("Your requests"))
    assert "R-1 review of I-1" in asked and "waiting for a peer to accept" in asked
    assert "`cancel R-1`" in asked
    offered = answer_to(out, "bob", "Offered to you")
    assert "R-1 review for ann's I-1" in offered and "`accept R-1` or `decline R-1" in offered

    # After the accept the offer is gone, but the peer is told where the review is.
    assert (
        "You have no open offers; your accepted reviews: R-1 (`requests` lists them)."
        in messages_to(out, "bob")
    )
    accepted = [m for m in messages_to(out, "ann") if m.startswith("Your requests")][-1]
    assert "R-1 review of I-1 · accepted by bob just now · waiting for bob's review" in accepted
    reviewing = [m for m in messages_to(out, "bob") if m.startswith("Reviews you do")][-1]
    assert (
        "R-1 review for ann's I-1 · you accepted just now · next: "
        "`done R-1 <hours> <feedback>`" in reviewing
    )
    assert "I-1 Repair café network · in review ·" in answer_to(out, "ann", "Your ideas")


def test_a_delivered_review_says_thanks_or_dispute_and_the_idea_is_reviewed(
    tmp_path: Path,
) -> None:
    out = play(
        tmp_path,
        INTAKE,
        "bob: expertise add finance:3",
        "staff: grant @ann 5 welcome",
        "ann: request I-1 review finance",
        "bob: accept R-1",
        "bob: done R-1 2 Check the grant deadlines first.",
        "ann: requests",
        "bob: requests",
        "ann: ideas",
        "ann: thanks R-1 5 great",
        "ann: status",
        "bob: requests",
        "ann: ideas",
    )
    delivered = next(m for m in messages_to(out, "ann") if m.startswith("Your requests"))
    assert "R-1 review of I-1 · delivered by bob just now · next: " in delivered
    assert "`thanks R-1 [1-5]` or `dispute R-1 <reason>`" in delivered
    waiting = next(m for m in messages_to(out, "bob") if m.startswith("Reviews you do"))
    assert "R-1 review for ann's I-1 · you delivered just now · waiting for ann's thanks" in waiting
    ideas = [m for m in messages_to(out, "ann") if m.startswith("Your ideas")]
    assert "I-1 Repair café network · submitted ·" in ideas[0]  # the intake's last line
    assert "I-1 Repair café network · reviewed ·" in ideas[1]
    assert "I-1 Repair café network · reviewed ·" in ideas[2]  # thanks keeps it reviewed

    # `status` outside a conversation is `requests`; closed ones come last, briefly.
    closed = [m for m in messages_to(out, "ann") if "Closed lately" in m][-1]
    assert "You have nothing open" in closed
    assert "R-1 review of I-1 · reviewed by bob, thanked just now (5/5)" in closed
    paid = [m for m in messages_to(out, "bob") if "Closed lately" in m][-1]
    assert "R-1 review for ann's I-1 · thanked just now (5/5); 2.00 SIF paid to you" in paid


def test_idea_shows_answers_status_and_requests_to_owner_reviewer_and_staff(
    tmp_path: Path,
) -> None:
    out = play(
        tmp_path,
        INTAKE,
        "bob: expertise add finance:3",
        "carl: balance",
        "staff: grant @ann 5 welcome",
        "ann: idea I-1",
        "bob: idea I-1",
        "ann: request I-1 review finance",
        "bob: accept R-1",
        "ann: idea i1",
        "bob: idea I-1",
        "carl: idea I-1",
        "staff: idea I-1",
        "ann: idea I-99",
        "ann: idea",
    )
    first = answer_to(out, "ann", "I-1 Repair café network · submitted")
    assert "Societal need: Too much waste, and lonely elderly people in the city" in first
    assert "Income: grants, donations — mostly city grants" in first
    assert "Development cost: " in first and "Stage: prototype" in first
    assert "No requests yet; `request I-1 review` asks the network." in first
    assert messages_to(out, "bob")[1].startswith("I-1 is not your idea")  # not reviewing yet

    owner = answer_to(out, "ann", "I-1 Repair café network · in review")
    assert "by ann, submitted " in owner
    assert "Expertise needed: finance, legal" in owner
    assert "R-1 review · accepted by bob just now" in owner
    reviewer = answer_to(out, "bob", "I-1 Repair café network · in review")
    assert "Biggest uncertainties: whether volunteers stay motivated" in reviewer
    assert answer_to(out, "staff", "I-1 Repair café network · in review")

    refused = [m for m in messages_to(out, "carl") if m.startswith("I-1")]
    assert refused == [
        "I-1 is not your idea and you are not reviewing it, so you cannot see it; "
        "`ideas` lists yours."
    ]
    assert "There is no idea I-99 here; `ideas` lists yours." in messages_to(out, "ann")
    assert "`idea` needs more: Usage: `idea <I-n>`." in messages_to(out, "ann")


def test_profile_show_lists_the_profile_without_asking_again(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "bob: profile show",
        "bob: profile",
        "bob: finance:3, legal",
        "bob: English, Dutch",
        "bob: 3",
        "bob: mentoring",
        "bob: Former CFO of a housing cooperative.",
        "bob: confirm",
        "bob: pause 7",
        "bob: profile show",
        "bob: profile shwo",
    )
    empty = messages_to(out, "bob")[0]
    assert empty.startswith("You have no peer profile yet")
    assert "`profile` sets one up" in empty
    shown = answer_to(out, "bob", "Your peer profile")
    assert "Expertise: finance:3, legal:2" in shown
    assert "Languages: English, Dutch" in shown
    assert "Reviews at once: 3 (0 open now)" in shown
    assert "Can also offer: mentoring" in shown
    assert "Bio: Former CFO of a housing cooperative." in shown
    assert "Paused until " in shown and "`resume`" in shown
    assert "`profile` changes it" in shown
    questions = [m for m in messages_to(out, "bob") if "(1/5)" in m]
    assert len(questions) == 1  # only `profile` asked the questions, `profile show` did not
    assert "I did not expect 'shwo' after `profile`" in messages_to(out, "bob")[-1]


def test_status_inside_a_conversation_is_the_conversation_status(tmp_path: Path) -> None:
    out = play(tmp_path, "ann: intake", "ann: Repair café network", "ann: status", "ann: cancel")
    said = messages_to(out, "ann")
    assert any(m.startswith("Question 2 of 12: summary.") for m in said)
    assert not any(m.startswith("You have no requests") for m in said)


def test_requests_with_nothing_yet_and_help_lists_the_new_commands(tmp_path: Path) -> None:
    out = play(tmp_path, "ann: requests", "ann: help", "ann: help status")
    said = messages_to(out, "ann")
    assert said[0] == (
        "You have no requests or reviews yet. `request <I-n>` asks the network about your "
        "idea; `offers` lists reviews offered to you."
    )
    listed = next(m for m in said if "Commands you can use" in m)
    for usage in ("`requests`", "`idea <I-n>`", "`profile show`"):
        assert usage in listed
    assert said[-1].startswith("`status`") and "the same as requests" in said[-1]
