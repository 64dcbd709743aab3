"""Where an idea stands (pure): submitted, in review once a peer accepted a request on
it, reviewed once a review was delivered; and the request moves that can change it."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.records import HelpRequest, IdeaStatus, RequestStatus
from bot.domain.requests import Move

# A peer holds the request: accepted, or disputed before anything was delivered.
_AT_WORK = (RequestStatus.ASSIGNED, RequestStatus.DISPUTED)

# The moves after which an idea's status may differ, each with the field of the move
# that holds its time. Others cannot change it: offers, escalations and withdrawals
# happen before a peer has the request; a dispute or a thanks keeps what was delivered.
STATUS_MOVES: dict[Move, str] = {
    Move.ACCEPT: "accepted_at",
    Move.DELIVER: "delivered_at",
    Move.CANCEL: "closed_at",
    Move.RESOLVE: "closed_at",
}


def idea_status(requests: Iterable[HelpRequest]) -> IdeaStatus:
    """The status of an idea with these requests: a delivered review makes it reviewed
    for good; otherwise it is in review while a peer holds one of its requests."""
    mine = list(requests)
    if any(r.delivered_at is not None for r in mine):
        return IdeaStatus.REVIEWED
    if any(r.status in _AT_WORK for r in mine):
        return IdeaStatus.IN_REVIEW
    return IdeaStatus.SUBMITTED
