"""The ports the core needs from the outside world (cosmicpython-style).

The store implements the repositories and the unit of work; adapters implement
:class:`Messenger`; tests and the simulator inject their own :class:`Clock`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

from bot.domain.affinity import Corpus
from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.ledger import AccountKey, EntryKind, TransactionDraft
from bot.domain.records import (
    BalanceInfo,
    BalanceTable,
    Community,
    Conversation,
    CrossRequest,
    Expertise,
    HelpRequest,
    Idea,
    IdeaStatus,
    LedgerLine,
    Member,
    Offer,
    OfferStatus,
    PeerFacts,
    RequestStatus,
    Role,
)
from bot.domain.routing import PeerIndex
from bot.messages import Inbound, Outbound, Parts


class Clock(Protocol):
    def now(self) -> datetime: ...


class RequestTimes(NamedTuple):
    """The few columns of a request that `stats` reads (no names, no texts)."""

    number: int
    status: RequestStatus
    tags: tuple[str, ...]
    created_at: datetime
    accepted_at: datetime | None
    delivered_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None


class FindCandidate(NamedTuple):
    """A member `find` may list, with what it scores and shows."""

    member: MemberId
    name: str
    bio: str
    profile: dict[str, Any]
    expertise: dict[str, int]


class SystemClock:
    """The real clock; the only place in the core that reads the time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to, never back (the simulator's, and the tests')."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance_to(self, moment: datetime) -> None:
        if moment < self.current:
            raise ValueError(f"the clock cannot go back from {self.current} to {moment}")
        self.current = moment

    def advance(self, **delta: float) -> None:
        """Move on by a `timedelta(**delta)` (e.g. ``advance(hours=12)``)."""
        self.advance_to(self.current + timedelta(**delta))


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or opened at start-up; one line naming the setting."""


class Undeliverable(Exception):
    """A messenger's answer that this message can never be delivered as it is (the
    channel is gone or closed to the bot, the user was deactivated, a scope is missing,
    Matrix M_FORBIDDEN, ...): the outbox sets it aside at once instead of trying again.
    `reason` is the platform's short error code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PlatformUnavailable(Exception):
    """A messenger's answer that the platform itself cannot take messages now (no
    connection, rate limited, a server error): every message to it waits, none is
    blamed. Any other exception from `send` counts against that one message only."""


class LimitExceeded(Exception):
    """A posting would take an account below its floor; nothing was written."""

    def __init__(self, account: AccountKey, balance: int, floor: int, amount: int) -> None:
        super().__init__(f"{account} would go below {floor}")
        self.account = account
        self.balance = balance
        self.floor = floor
        self.amount = amount


class StoreBusy(Exception):
    """A read-only unit of work could not read now (a SQLite file momentarily locked, a
    dropped PostgreSQL connection): nothing was changed; take the writing path instead."""


class Conflict(Exception):
    """A unit of work met another committed at the same time that took a unique key first
    (the same person's first two messages at once): everything was rolled back, and the
    unit of work done again finds what the other one made."""


class NeedsSnapshot(Exception):
    """A single-statement read-only unit of work (`UnitOfWorkFactory.reading(single=True)`)
    was asked a second statement: nothing was changed; read again in a snapshot."""


class CommunityRepository(Protocol):
    async def get_or_create(
        self, key: str, name: str, tags: Sequence[str], at: datetime
    ) -> Community: ...
    async def tags(self, community: CommunityId) -> list[str]: ...
    async def get(self, community: CommunityId) -> Community | None: ...
    async def find(self, key: str) -> Community | None: ...
    async def all(self) -> list[Community]: ...
    async def next_number(self, community: CommunityId, counter: str) -> int:
        """The next short number (I-n, R-n) of a community; concurrent callers never share one."""
        ...

    async def salt(self, community: CommunityId, new: str | None = None) -> str | None:
        """The community's salt for the digests of forgotten identities (None: it has none
        yet); with `new`, a community without one gets `new` (once: a concurrent caller
        gets the salt that was set first)."""
        ...


class MemberRepository(Protocol):
    async def by_identity(self, platform: str, external_id: str) -> Member | None: ...
    async def get(self, member: MemberId) -> Member | None: ...
    async def get_many(self, members: Sequence[MemberId]) -> dict[MemberId, Member]:
        """The members of these ids that exist (one query for several notices)."""
        ...

    async def by_name(self, community: CommunityId, name: str) -> list[Member]: ...
    async def create(
        self,
        community: CommunityId,
        name: str,
        role: Role,
        platform: str,
        external_id: str,
        at: datetime,
    ) -> Member: ...
    async def all(self, community: CommunityId) -> list[Member]: ...
    async def set_role(self, member: MemberId, role: Role) -> None: ...
    async def set_capacity(self, member: MemberId, capacity: int) -> None: ...
    async def set_paused_until(self, member: MemberId, until: datetime | None) -> None: ...
    async def set_language(
        self, member: MemberId, *, language: str | None = None, locale: str | None = None
    ) -> None:
        """Keep the language a member chose, or their platform's locale (None: unchanged)."""
        ...

    async def touch(self, member: MemberId, at: datetime) -> None: ...
    async def expertise(self, member: MemberId) -> list[Expertise]: ...
    async def set_expertise(self, member: MemberId, tag: str, level: int) -> None: ...
    async def remove_expertise(self, member: MemberId, tag: str) -> bool: ...
    async def forget(self, member: MemberId, placeholder: str) -> None:
        """Erase profile, expertise, identities, conversation and idea answers; the
        member row stays (renamed) so ledger entries keep adding up."""
        ...

    async def set_profile(
        self,
        member: MemberId,
        *,
        languages: Sequence[str],
        bio: str,
        profile: dict[str, Any],
    ) -> None: ...

    async def expertise_of_community(
        self, community: CommunityId
    ) -> dict[MemberId, list[Expertise]]:
        """Every member's expertise in one query, tags in order; members without any are
        left out."""
        ...

    async def erase_writings(self, member: MemberId) -> None:
        """Blank what the member wrote on other rows: the feedback they delivered, the
        comments and notes of their requests, the reasons they gave for declining, and the
        notes of introductions by or to them."""
        ...

    async def remember_forgotten(self, digests: Sequence[str], at: datetime) -> None:
        """Keep the digests of a forgotten member's identities (a digest kept already stays)."""
        ...

    async def was_forgotten(self, digest: str) -> bool:
        """Whether an identity of this digest was forgotten before."""
        ...


class LinkRepository(Protocol):
    """One-time codes that join a second platform identity to a member."""

    async def create(
        self, member: MemberId, code: str, at: datetime, expires: datetime
    ) -> None: ...
    async def claim(self, code: str, at: datetime) -> tuple[str, MemberId | None]:
        """Use a code once: ("ok", member), or ("unknown"|"expired"|"used", None)."""
        ...

    async def has_history(self, member: MemberId) -> bool:
        """Whether the member has ledger entries, ideas, requests or offers of its own."""
        ...

    async def move_identity(
        self, platform: str, external_id: str, from_member: MemberId, to_member: MemberId
    ) -> None:
        """Give an identity to another member and remove the (empty) member it leaves."""
        ...

    async def merge_members(self, keep: MemberId, gone: MemberId, placeholder: str) -> None:
        """Join `gone` into `keep`, two members of one person (staff's `merge`). Their
        identities, ideas, requests (asked and reviewed), offers and introductions become
        `keep`'s; expertise joins (the higher level of a tag both hold), and so do languages,
        bio and profile answers `keep` lacks; `gone`'s conversation moves when `keep` has
        none. The ledger is the caller's (`gone`'s balance moves by a transfer first): `gone`'s
        row stays, renamed `placeholder`, with no identities, expertise or capacity, so its
        entries (never edited) keep adding up."""
        ...

    async def prune(self, expired_before: datetime) -> int:
        """Delete the codes that expired before then, used or not; returns how many."""
        ...


class IntroductionRepository(Protocol):
    async def add(
        self,
        community: CommunityId,
        idea: IdeaId,
        from_member: MemberId,
        to_member: MemberId,
        note: str,
        at: datetime,
    ) -> None: ...

    async def made_since(self, from_member: MemberId, since: datetime) -> int:
        """How many introductions the member made at or after `since`."""
        ...

    async def exists(self, idea: IdeaId, from_member: MemberId, to_member: MemberId) -> bool:
        """Whether the member already introduced `to_member` to the idea."""
        ...


class ConversationRepository(Protocol):
    async def get(self, member: MemberId) -> Conversation | None: ...
    async def save(self, conversation: Conversation) -> None: ...
    async def delete(self, member: MemberId) -> None: ...
    async def claim_due(
        self, silent_since: datetime, *, reminded: bool | None, limit: int
    ) -> list[Conversation]:
        """Conversations silent since before `silent_since` (not yet reminded, reminded,
        or either when None), locked for this transaction; other sweepers skip them."""
        ...

    async def mark_reminded(self, member: MemberId, at: datetime) -> None: ...


class IdeaRepository(Protocol):
    async def create(
        self,
        community: CommunityId,
        owner: MemberId,
        title: str,
        answers: dict[str, Any],
        at: datetime,
    ) -> Idea: ...
    async def by_number(self, community: CommunityId, number: int) -> Idea | None: ...
    async def of_owner(self, owner: MemberId) -> list[Idea]: ...
    async def all(self, community: CommunityId) -> list[Idea]: ...
    async def set_status(self, idea: IdeaId, status: IdeaStatus, at: datetime) -> None: ...


class LedgerRepository(Protocol):
    async def post(
        self,
        community: CommunityId,
        draft: TransactionDraft,
        credit_limit: int,
        at: datetime,
    ) -> int | None:
        """Apply a transaction atomically; None when its key was already posted.

        Raises LimitExceeded (and writes nothing) when a debit would pass a floor.
        """
        ...

    async def balance(self, community: CommunityId, account: AccountKey) -> int: ...
    async def balance_info(self, member: Member) -> BalanceInfo: ...
    async def of_identity(
        self, platform: str, external_id: str
    ) -> tuple[Member, BalanceInfo] | None:
        """The member behind an identity with their balances, in one statement; their
        `balance_info` in this unit of work is then read from it."""
        ...

    async def all_balances(self, community: CommunityId) -> list[BalanceInfo]: ...
    async def balance_table(
        self,
        community: CommunityId,
        edge: int,
        member: MemberId | None = None,
        negative: bool = False,
    ) -> BalanceTable:
        """`all_balances` counted and summed, with only its `edge` lowest and `edge` highest
        rows (`BalanceTable`): of one member when given, below zero with `negative`."""
        ...

    async def history(self, member: MemberId, limit: int) -> list[LedgerLine]: ...
    async def entries(
        self, community: CommunityId, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every posting with its transaction (transaction, at, kind, request, reason,
        author, account, member, amount), oldest first; with `since`, only those of
        transactions made then or later."""
        ...

    async def check_invariants(self, community: CommunityId) -> list[str]:
        """Problems found (empty when sound): unbalanced transactions, non-zero
        total, cached balances that differ from the entries."""
        ...

    async def redact_reasons(self, community: CommunityId, replacements: dict[str, str]) -> int:
        """Rewrite the reasons of the community's transactions that hold a key of
        `replacements` as a whole word (any case) with its value (a forgotten member's
        name); amounts, accounts and everything else stay. Returns how many changed."""
        ...


class EventLog(Protocol):
    async def first_time(self, key: str, at: datetime) -> bool:
        """Record an inbound event key; False when it was seen before."""
        ...

    async def seen(self, key: str) -> bool:
        """Whether an inbound event key is recorded (reads only)."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget the keys recorded before then; returns how many."""
        ...


class Outbox(Protocol):
    async def add(
        self, message: Outbound, at: datetime, claimed_until: datetime | None = None
    ) -> int:
        """Store a message; `claimed_until` holds it for the process about to send it."""

    async def pending(self, platforms: Sequence[str], limit: int) -> list[Outbound]: ...
    async def claim(
        self, platforms: Sequence[str], now: datetime, until: datetime, limit: int
    ) -> list[tuple[Outbound, bool]]:
        """Hold unsent, unheld messages until `until`; each with whether it was tried."""

    async def renew(self, outbox_id: int, held_until: datetime | None, until: datetime) -> bool:
        """Hold an unsent message until `until` if it is still held until `held_until`."""

    async def release(
        self, outbox_ids: Sequence[int], at: datetime, error: str | None = None
    ) -> None:
        """Make held messages claimable again from `at` (`error`: why the send failed)."""

    async def set_aside(self, failures: Sequence[tuple[int, str]], at: datetime) -> None:
        """Never try these messages again: (outbox id, the platform's error) pairs."""

    async def set_aside_since(self, since: datetime) -> list[tuple[Outbound, str]]:
        """Messages set aside at or after `since`, oldest first, each with its error."""

    async def set_aside_to(self, platform: str, to: str) -> bool:
        """Whether a message to this recipient was set aside before."""

    async def mark_sent(self, outbox_id: int, at: datetime, ref: str | None = None) -> None: ...
    async def mark_all_sent(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        """`mark_sent` for several messages at once: (outbox id, platform's id) pairs."""
        ...

    async def erase_person(
        self, identities: Sequence[tuple[str, str]], replacements: dict[str, str]
    ) -> int:
        """Erase a forgotten person's copies. Messages to one of `identities` (platform,
        external id) are deleted when unsent, and lose their text, parts and address when
        sent or set aside. Other sent or set-aside messages whose text holds a key of
        `replacements` (a whole word, any case) lose their text and parts; other unsent
        ones still go out, with each such word replaced by its value. A message that lost
        its text still reads back, with its topic and subject and no parts. Returns how
        many messages changed."""
        ...

    async def erase_delivered(self, before: datetime) -> int:
        """Empty the text and parts of the messages delivered (or set aside) before then;
        they still read back, with their topic and subject. Returns how many changed."""
        ...

    async def drop_delivered_files(self) -> int:
        """Drop the attached files of the messages delivered or set aside (their other
        parts stay); returns how many messages lost one."""
        ...


class RequestRepository(Protocol):
    async def create(
        self,
        community: CommunityId,
        idea: IdeaId,
        requester: MemberId,
        kind: str,
        price: int,
        tags: Sequence[str],
        at: datetime,
    ) -> HelpRequest: ...
    async def get(self, request: RequestId) -> HelpRequest | None: ...
    async def by_number(self, community: CommunityId, number: int) -> HelpRequest | None: ...
    async def of_member(self, member: MemberId) -> list[HelpRequest]:
        """Requests the member asked for or works on, newest first."""
        ...

    async def of_idea(self, idea: IdeaId) -> list[HelpRequest]:
        """The idea's requests, oldest first."""
        ...

    async def all(self, community: CommunityId) -> list[HelpRequest]: ...
    async def committed(self, requester: MemberId) -> int:
        """Prices of the member's requests that are not yet held in escrow."""
        ...

    async def transition(
        self,
        request: RequestId,
        from_: Sequence[RequestStatus],
        to: RequestStatus,
        **fields: Any,
    ) -> bool:
        """Conditional state change (one UPDATE ... WHERE status IN from_); True if it won."""
        ...

    async def claim_auto_release(self, now: datetime, limit: int) -> list[HelpRequest]: ...
    async def add_offer(
        self,
        request: RequestId,
        peer: MemberId,
        round_: int,
        explanation: str,
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> Offer: ...
    async def add_offers(
        self,
        request: RequestId,
        round_: int,
        peers: Sequence[tuple[MemberId, str]],
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> None:
        """`add_offer` for several (peer, explanation) at once, in that order."""
        ...

    async def offers(self, request: RequestId) -> list[Offer]: ...
    async def offer_for(self, request: RequestId, peer: MemberId) -> Offer | None: ...
    async def open_offers(self, peer: MemberId) -> list[Offer]: ...
    async def answer_offer(
        self,
        offer: int,
        to: OfferStatus,
        at: datetime,
        reason: str | None = None,
    ) -> bool:
        """Move an offer out of `offered` (conditional); True if this call did it."""
        ...

    async def withdraw_offers(self, request: RequestId, at: datetime) -> list[Offer]:
        """Withdraw every still-open offer of a request; returns those withdrawn."""
        ...

    async def claim_offers_to_remind(self, now: datetime, limit: int) -> list[Offer]: ...
    async def clear_reminder(self, offer: int) -> None: ...
    async def claim_expired_offers(self, now: datetime, limit: int) -> list[Offer]: ...


class StatsQueries(Protocol):
    """The read side of `stats` and the metrics: aggregates over a community since a
    moment, and counts across every community."""

    async def window(self, community: CommunityId, since: datetime) -> list[RequestTimes]:
        """The requests created at `since` or later, in number order."""
        ...

    async def offer_counts(self, community: CommunityId, since: datetime) -> dict[OfferStatus, int]:
        """The offers of the requests created at `since` or later, counted by status."""
        ...

    async def busiest_peers(
        self, community: CommunityId, since: datetime, limit: int
    ) -> list[tuple[str, int]]:
        """Peers' names with how many of the requests created at `since` or later they
        delivered, most first; ties in the order of their first such request."""
        ...

    async def never_offered(self, community: CommunityId, since: datetime) -> list[str]:
        """Names of the members who could review (some expertise, capacity above 0) and
        whose name is on no offer of a request created at `since` or later."""
        ...

    async def reviewing_tags(self, community: CommunityId) -> set[str]:
        """The tags of members who take reviews (capacity above 0)."""
        ...

    async def count_introductions(self, community: CommunityId, since: datetime) -> int:
        """The introductions made in the community at `since` or later (how many)."""
        ...

    async def credits(
        self,
        community: CommunityId,
        kinds: Sequence[EntryKind],
        since: datetime,
        until: datetime,
    ) -> list[tuple[datetime, EntryKind, int]]:
        """(at, kind, amount) of every positive posting of the transactions of these kinds
        made from `since` to `until` (both included): the amount each one moved."""
        ...

    async def sharing(self, community: CommunityId) -> tuple[int, int]:
        """How many members `LedgerRepository.all_balances` lists, and how many of them
        both gave and received (`given` and `received` above 0)."""
        ...

    async def circulation(self, community: CommunityId) -> int:
        """SIF in circulation: the sum of the members' positive balances (what members
        hold and can spend; mutual credit creates it, grants add to it), in hundredths."""
        ...

    async def count_open_offers(self) -> int:
        """Offers waiting for the peer's answer, in every community (a metric)."""
        ...

    async def backlog(self) -> int:
        """How many messages are waiting to be sent, on every platform (a metric)."""
        ...

    async def set_aside(self) -> int:
        """How many messages were set aside as undeliverable, on every platform (a metric)."""
        ...


class FindQueries(Protocol):
    """The read side of `find`."""

    async def search_ids(
        self, community: CommunityId, words: Sequence[str], *, exclude: MemberId
    ) -> list[MemberId]:
        """Members with a chat identity, other than `exclude`, whose name, bio, tags or
        profile may contain one of the lowercase `words`, in id order: every member whose
        text does, and perhaps a few others (the caller scores them)."""
        ...

    async def find_candidates(self, members: Sequence[MemberId]) -> list[FindCandidate]:
        """What `find` scores and shows of these members, in id order."""
        ...


class RoutingQueries(Protocol):
    """The read side of routing."""

    async def peer_facts(self, community: CommunityId, since: datetime) -> list[PeerFacts]:
        """Every member of the community with what routing needs; reviews counted since `since`."""
        ...

    async def peer_index(self, community: CommunityId, now: datetime, since: datetime) -> PeerIndex:
        """The community's peers who may be offered a review at `now` (opted in, room left,
        not paused), ready to rank; reviews counted since `since`. The same peers as
        `peer_facts` gives, kept between rounds where the store can."""
        ...


class CrossRequests(Protocol):
    """Requests that cross to a partner node, with their id on both nodes."""

    async def add(
        self,
        community: CommunityId,
        request: RequestId,
        partner: str,
        xid: str,
        role: str,
        at: datetime,
        remote_ref: str | None = None,
    ) -> bool:
        """Record it; False (nothing changed) when ``xid`` is recorded already."""
        ...

    async def by_xid(self, xid: str) -> CrossRequest | None: ...
    async def of_request(self, request: RequestId) -> CrossRequest | None: ...
    async def set_remote(self, xid: str, remote_ref: str) -> None: ...
    async def all(self, community: CommunityId) -> list[CrossRequest]: ...
    async def last_heard(self, partner: str) -> datetime | None:
        """When a message from ``partner`` was last taken at the door."""
        ...

    async def waiting(self, partner: str) -> int:
        """Messages for ``partner`` still in the outbox."""
        ...

    async def transfers(self, partner: str) -> dict[str, int]:
        """Committed transfers with ``partner`` (xid → hundredths the origin paid the
        host), from the postings on its mirror account."""
        ...


class TextQueries(Protocol):
    """The texts of similar ideas and text affinity (SPEC §14)."""

    async def corpus(self, community: CommunityId) -> Corpus:
        """The community's ideas and peers as affinity indexes, with every committed
        change; kept in memory between calls and brought up to date incrementally. This
        unit of work's own uncommitted changes are not in it yet."""
        ...

    async def peer_changed(self, member: MemberId) -> None:
        """What the peer's text is made of changed besides the bio (a review of theirs
        was rated well): their affinity is recomputed."""
        ...


class UnitOfWork(Protocol):
    """One database transaction; rolls back unless committed."""

    @property
    def communities(self) -> CommunityRepository: ...
    @property
    def members(self) -> MemberRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def conversations(self) -> ConversationRepository: ...
    @property
    def ideas(self) -> IdeaRepository: ...
    @property
    def requests(self) -> RequestRepository: ...
    @property
    def links(self) -> LinkRepository: ...
    @property
    def introductions(self) -> IntroductionRepository: ...
    @property
    def stats(self) -> StatsQueries: ...
    @property
    def find(self) -> FindQueries: ...
    @property
    def routing(self) -> RoutingQueries: ...
    @property
    def texts(self) -> TextQueries: ...
    @property
    def cross(self) -> CrossRequests: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

    def reading(self, single: bool = False) -> UnitOfWork:
        """A unit of work for reading only: never committed, refused by the database if it
        tries to write where the database can enforce it, and on SQLite served by reader
        connections that do not queue behind writers. With `single`, where the store can
        save a round trip by it, the unit may run one statement only (its own snapshot);
        a second raises `NeedsSnapshot`."""
        ...


class Messenger(Protocol):
    """Delivers outbound messages on one platform; raises when the platform refused.

    `send` may return the platform's id of the message. A messenger that can tell whether
    a message from the outbox already arrived (after a crash between sending and
    recording it) also has `async def delivered(message) -> str | None`, returning that
    id; without it such a message is sent again."""

    platform: str

    async def send(self, message: Outbound) -> str | None: ...


@dataclass(frozen=True)
class Status:
    """One part's health for ``/healthz``: whether it works, and a few words on it."""

    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


class Outlet(Protocol):
    """Where an adapter registers its messenger and hands answers to deliver."""

    def register(self, messenger: Messenger) -> None: ...

    async def deliver(self, messages: list[Outbound]) -> None: ...


class Core(Protocol):
    """The core as the adapters see it (the service's `Bot` is the one implementation)."""

    @property
    def relay(self) -> Outlet: ...

    async def handle(
        self,
        inbound: Inbound,
        committed: Callable[[list[Outbound]], Awaitable[None]] | None = None,
        *,
        answer_in_ack: bool = False,
        answer_directly: bool = False,
        later: Callable[[Coroutine[Any, Any, None]], object] | None = None,
    ) -> list[Outbound]: ...

    async def home(self, platform: str, user: str) -> Parts: ...
