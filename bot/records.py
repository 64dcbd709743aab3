"""Plain records the store hands to the core (no ORM objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.ids import CommunityId, MemberId
from bot.ledger import EntryKind


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
class LedgerLine:
    """One posting on a member's account, with its transaction's details."""

    transaction: int
    at: datetime
    kind: EntryKind
    amount: int
    reason: str
    author: str | None
    request: int | None
