"""Plain records the store hands to the core (no ORM objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.ledger import EntryKind


class Role(StrEnum):
    MEMBER = "member"
    STAFF = "staff"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def plural(self) -> str:
        return "staff" if self is Role.STAFF else f"{self.value}s"

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.MEMBER: 0, Role.STAFF: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Community:
    id: CommunityId
    key: str
    name: str


@dataclass(frozen=True)
class Identity:
    platform: str
    external_id: str


@dataclass(frozen=True)
class Member:
    id: MemberId
    community: CommunityId
    name: str
    role: Role
    capacity: int = 2
    paused_until: datetime | None = None
    languages: tuple[str, ...] = ()
    bio: str = ""
    identities: tuple[Identity, ...] = field(default_factory=tuple)
    profile: dict[str, Any] = field(default_factory=dict)
    last_active: datetime | None = field(default=None, compare=False)  # last command or answer
    # the language the bot speaks to them: their choice (`language nl`), else their
    # platform's locale (Slack's), else the community's (SIF_LANGUAGE)
    language: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class Expertise:
    tag: str
    level: int


@dataclass(frozen=True)
class BalanceInfo:
    """What `balance` shows: all amounts in hundredths."""

    member: MemberId
    name: str
    balance: int
    held: int  # the member's money in escrow for their open requests
    given: int  # lifetime SIF earned by reviewing
    received: int  # lifetime SIF paid out for reviews received
    last_activity: datetime | None = None


@dataclass(frozen=True)
class BalanceTable:
    """`balances` of a community: how many members (with an account) match, the sum of
    their balances, and the rows shown, lowest balance first: every one of them when there
    are at most twice `edge`, else the `edge` lowest in `lowest` and the `edge` highest in
    `highest`."""

    count: int
    total: int
    lowest: tuple[BalanceInfo, ...]
    highest: tuple[BalanceInfo, ...] = ()


@dataclass(frozen=True)
class LedgerLine:
    """One posting on a member's account, with its transaction's details."""

    transaction: int
    at: datetime
    kind: EntryKind
    amount: int
    reason: str
    author: str | None
    request: int | None  # the request's number, as people know it (R-n)


@dataclass(frozen=True)
class Conversation:
    """A member's active conversation: which flow, the engine's state, where they talk."""

    member: MemberId
    community: CommunityId
    flow: str
    state: dict[str, Any]
    platform: str
    external_id: str
    started_at: datetime
    updated_at: datetime
    reminded_at: datetime | None = None


class IdeaStatus(StrEnum):
    """Where an idea stands, derived from its requests (bot.domain.ideas): the same
    words in chat, in exports and in the database."""

    SUBMITTED = "submitted"  # no peer has taken a request on it yet
    IN_REVIEW = "in review"  # a peer accepted a request on it and is at work
    REVIEWED = "reviewed"  # a review of it was delivered


@dataclass(frozen=True)
class Idea:
    id: IdeaId
    community: CommunityId
    number: int
    owner: MemberId
    title: str
    answers: dict[str, Any]
    status: IdeaStatus
    created_at: datetime
    owner_name: str = ""

    @property
    def ref(self) -> str:
        return f"I-{self.number}"


class RequestStatus(StrEnum):
    OPEN = "open"  # offers are out
    ESCALATED = "escalated"  # nobody took it; staff were asked
    ASSIGNED = "assigned"  # a peer accepted; the price is held in escrow
    DELIVERED = "delivered"  # the peer did the work; waiting for thanks or auto-release
    CONFIRMED = "confirmed"  # paid to the peer
    DISPUTED = "disputed"  # payment held; staff decide
    CLOSED = "closed"  # a dispute was resolved
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (RequestStatus.OPEN, RequestStatus.ESCALATED)

    @property
    def label(self) -> str:
        """The status as people read it, in chat and in exports alike: a peer *accepted*
        the request (stored as `assigned`, the database's word)."""
        return "accepted" if self is RequestStatus.ASSIGNED else self.value


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # someone else accepted, or the request ended


@dataclass(frozen=True)
class HelpRequest:
    id: RequestId
    community: CommunityId
    number: int
    idea: IdeaId
    idea_number: int
    idea_title: str
    requester: MemberId
    requester_name: str
    kind: str
    price: int
    tags: tuple[str, ...]
    status: RequestStatus
    round: int
    created_at: datetime
    peer: MemberId | None = None
    peer_name: str | None = None
    hours: float | None = None
    feedback: str | None = None
    rating: int | None = None
    note: str | None = None
    accepted_at: datetime | None = None
    delivered_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    auto_release_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"R-{self.number}"


@dataclass(frozen=True)
class Offer:
    id: int
    request: RequestId
    request_number: int
    peer: MemberId
    peer_name: str
    round: int
    status: OfferStatus
    explanation: str
    offered_at: datetime
    expires_at: datetime
    remind_at: datetime | None = None
    answered_at: datetime | None = None
    reason: str | None = None

    @property
    def request_ref(self) -> str:
        return f"R-{self.request_number}"


@dataclass(frozen=True)
class PeerFacts:
    """What the store knows about a member as a possible reviewer (for routing)."""

    member: MemberId
    name: str
    role: Role
    expertise: dict[str, int]
    languages: tuple[str, ...]
    capacity: int
    paused_until: datetime | None
    open_reviews: int
    reviews_recent: int
    last_offer_at: datetime | None
    given: int
    received: int

    @property
    def is_peer(self) -> bool:
        """Opted in to reviewing (SPEC §1): holds expertise, which `expertise add` and the
        `profile` conversation (whose expertise question needs at least one tag) record, and
        takes reviews (availability above 0). Staff are peers on the same terms."""
        return bool(self.expertise) and self.capacity > 0


@dataclass(frozen=True)
class CrossRequest:
    """A request that crosses to a partner node (SPEC §12): on the origin node the
    innovator's request, on the host node the one its peers review. ``xid`` names it on
    both nodes (the origin's node name and R-n)."""

    request: RequestId
    partner: str  # the other node
    xid: str
    role: str  # "origin" or "host"
    remote_ref: str | None = None  # its R-n on the other node, once known
