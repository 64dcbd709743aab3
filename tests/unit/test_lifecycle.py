"""The request lifecycle table: every state change is one named move from known states."""

from __future__ import annotations

import pytest

from bot.domain.ids import RequestId
from bot.domain.records import RequestStatus
from bot.domain.requests import TRANSITIONS, Move, allowed, hold_key, settle_key, sources, target

TERMINAL = {RequestStatus.CONFIRMED, RequestStatus.CLOSED, RequestStatus.CANCELLED}


def test_every_move_has_one_row() -> None:
    assert set(TRANSITIONS) == set(Move)


def test_ended_requests_never_move_again() -> None:
    for move in Move:
        assert not TERMINAL & set(sources(move)), move


def test_every_state_is_reachable_from_open() -> None:
    reached = {RequestStatus.OPEN}
    while True:
        more = {target(m) for m in Move if reached & set(sources(m))} - reached
        if not more:
            break
        reached |= more
    assert reached == set(RequestStatus)


@pytest.mark.parametrize(
    ("move", "status", "ok"),
    [
        (Move.ACCEPT, RequestStatus.OPEN, True),
        (Move.ACCEPT, RequestStatus.ESCALATED, True),
        (Move.ACCEPT, RequestStatus.ASSIGNED, False),
        (Move.DELIVER, RequestStatus.ASSIGNED, True),
        (Move.DELIVER, RequestStatus.DELIVERED, False),
        (Move.CONFIRM, RequestStatus.DELIVERED, True),
        (Move.CONFIRM, RequestStatus.DISPUTED, False),
        (Move.DISPUTE, RequestStatus.ASSIGNED, True),
        (Move.DISPUTE, RequestStatus.CONFIRMED, False),
        (Move.WITHDRAW, RequestStatus.ESCALATED, True),
        (Move.WITHDRAW, RequestStatus.ASSIGNED, False),
        (Move.CANCEL, RequestStatus.ASSIGNED, True),
        (Move.CANCEL, RequestStatus.DELIVERED, False),
        (Move.RESOLVE, RequestStatus.DISPUTED, True),
    ],
)
def test_legal_moves(move: Move, status: RequestStatus, ok: bool) -> None:
    assert allowed(move, status) is ok


def test_a_held_price_is_settled_under_one_key_whatever_the_outcome() -> None:
    assert hold_key(RequestId(7)) == "hold:7"
    assert settle_key(RequestId(7)) == "settle:7" != hold_key(RequestId(7))
