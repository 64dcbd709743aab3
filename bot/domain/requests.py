"""The review request's lifecycle: its moves, the states each may start from, where it
ends, and the idempotency keys of the ledger postings that go with them (pure).

Every change of a request's state in the core names one :class:`Move`; the store applies
it as one conditional UPDATE (`from` states in the WHERE clause), so two racing moves
(an accept and a cancel, two accepts) never both win.
"""

from __future__ import annotations

from enum import StrEnum

from bot.domain.ids import RequestId
from bot.domain.records import RequestStatus

OPEN, ESCALATED = RequestStatus.OPEN, RequestStatus.ESCALATED
ASSIGNED, DELIVERED = RequestStatus.ASSIGNED, RequestStatus.DELIVERED
CONFIRMED, DISPUTED = RequestStatus.CONFIRMED, RequestStatus.DISPUTED
CLOSED, CANCELLED = RequestStatus.CLOSED, RequestStatus.CANCELLED


class Move(StrEnum):
    OFFER = "offer"  # a new round of offers goes out
    ESCALATE = "escalate"  # nobody took it: staff are asked
    ASSIGN = "assign"  # staff offer it to a peer they choose (a new round)
    ACCEPT = "accept"  # a peer takes it: the price is held
    DELIVER = "deliver"  # the peer delivered the review
    CONFIRM = "confirm"  # the requester thanked, or the time to object ran out: paid
    DISPUTE = "dispute"  # the requester objects: payment held for staff
    RESOLVE = "resolve"  # staff ended a dispute (pay or refund)
    WITHDRAW = "withdraw"  # the requester cancels before anyone accepted: nothing held
    CANCEL = "cancel"  # the requester cancels an accepted request: refunded


_UNTAKEN = tuple(s for s in RequestStatus if s.is_open)  # no peer has it: open, escalated

# move → (the states it may start from, the state it leads to)
TRANSITIONS: dict[Move, tuple[tuple[RequestStatus, ...], RequestStatus]] = {
    Move.OFFER: (_UNTAKEN, OPEN),
    Move.ESCALATE: (_UNTAKEN, ESCALATED),
    Move.ASSIGN: (_UNTAKEN, OPEN),
    Move.ACCEPT: (_UNTAKEN, ASSIGNED),
    Move.DELIVER: ((ASSIGNED,), DELIVERED),
    Move.CONFIRM: ((DELIVERED,), CONFIRMED),
    Move.DISPUTE: ((ASSIGNED, DELIVERED), DISPUTED),
    Move.RESOLVE: ((DISPUTED,), CLOSED),
    Move.WITHDRAW: (_UNTAKEN, CANCELLED),
    Move.CANCEL: ((ASSIGNED,), CANCELLED),
}


def sources(move: Move) -> tuple[RequestStatus, ...]:
    return TRANSITIONS[move][0]


def target(move: Move) -> RequestStatus:
    return TRANSITIONS[move][1]


def allowed(move: Move, status: RequestStatus) -> bool:
    return status in sources(move)


def hold_key(request: RequestId) -> str:
    """The one posting that holds a request's price in escrow."""
    return f"hold:{request}"


def settle_key(request: RequestId) -> str:
    """The one posting that settles a held price: paid to the peer or refunded, never both."""
    return f"settle:{request}"


# -- kinds and prices -------------------------------------------------------------------

# How each kind of help reads after "a"/"the price of": a review is counted, advice and
# feedback are not ("a review", "advice").
_KIND_WORDS = {"review": "a review", "advice": "advice", "feedback": "feedback"}


def kind_words(kind: str) -> str:
    """'a review', 'advice', 'feedback': the kind as it reads in a sentence."""
    return _KIND_WORDS.get(kind, f"a {kind}")
