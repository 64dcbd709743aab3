"""Where an idea stands, from its requests (bot.domain.ideas), and how long ago reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.app.handlers.status import ago
from bot.domain.ideas import STATUS_MOVES, idea_status
from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.records import HelpRequest, IdeaStatus, RequestStatus
from bot.domain.requests import TRANSITIONS, Move

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPEN = HelpRequest(
    RequestId(1), CommunityId(1), 1, IdeaId(1), 1, "Repair café", MemberId(1), "ann",
    "review", 200, (), RequestStatus.OPEN, 1, NOW,
)  # fmt: skip
S = RequestStatus


def at(status: RequestStatus, delivered: bool = False) -> HelpRequest:
    return replace(OPEN, status=status, delivered_at=NOW if delivered else None)


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ([], IdeaStatus.SUBMITTED),
        ([at(S.OPEN), at(S.ESCALATED), at(S.CANCELLED)], IdeaStatus.SUBMITTED),
        ([at(S.ASSIGNED)], IdeaStatus.IN_REVIEW),
        ([at(S.DISPUTED)], IdeaStatus.IN_REVIEW),  # disputed before anything was delivered
        ([at(S.CLOSED)], IdeaStatus.SUBMITTED),  # that dispute resolved: nobody reviewed it
        ([at(S.DELIVERED, True)], IdeaStatus.REVIEWED),
        ([at(S.CONFIRMED, True), at(S.ASSIGNED)], IdeaStatus.REVIEWED),  # for good
        ([at(S.DISPUTED, True)], IdeaStatus.REVIEWED),
    ],
)
def test_an_idea_is_in_review_while_a_peer_holds_it_and_reviewed_once_delivered(
    requests: list[HelpRequest], expected: IdeaStatus
) -> None:
    assert idea_status(requests) is expected


def test_every_move_that_can_change_the_status_names_its_time_and_others_cannot() -> None:
    held = {S.ASSIGNED, S.DISPUTED}
    for move, (sources, target) in TRANSITIONS.items():
        # A move changes what idea_status reads when a peer starts or stops holding the
        # request, or when it is delivered.
        changes = (target in held) != bool(held & set(sources)) or target is S.DELIVERED
        if move is Move.DISPUTE:
            changes = False  # assigned or delivered → disputed: the same status as before
        assert (move in STATUS_MOVES) is changes, move
    assert set(STATUS_MOVES.values()) <= {"accepted_at", "delivered_at", "closed_at"}


@pytest.mark.parametrize(
    ("before", "said"),
    [
        (timedelta(seconds=30), "just now"),
        (timedelta(minutes=5), "5 min ago"),
        (timedelta(hours=2, minutes=59), "2 h ago"),
        (timedelta(hours=47), "47 h ago"),
        (timedelta(days=3), "3 days ago"),
    ],
)
def test_how_long_ago(before: timedelta, said: str) -> None:
    assert ago(NOW - before, NOW) == said
