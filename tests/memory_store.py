"""An in-memory store for tests: the ports of `bot.ports` in plain Python (cosmicpython's
fake unit of work), with the semantics of the SQL store in store/ and no database.

`MemoryUnitOfWorkFactory()` is a drop-in `UnitOfWorkFactory` for `Bot`, `Relay` and the
jobs; tests/store/test_contract.py runs the same contract on it as on SQLite and
PostgreSQL.

How it keeps the SQL store's promises:

* Isolation. The committed database is one version of every table. A unit of work
  works on its own copy-on-write version (a table is copied the first time the unit
  changes it), which becomes the committed version on `commit`; without a commit it is
  dropped, so everything rolls back. Writers take turns (one lock, held from
  `__aenter__` to `__aexit__`, as SQLite's single writer): conditional transitions,
  counters, idempotency keys and claims can never race. A second writer opened in the
  task that holds the lock raises at once instead of waiting for itself forever.
  `reading()` units read the version committed when they began (one snapshot, as on
  both databases), take no lock, refuse every write with `ReadOnlyError` (as
  PostgreSQL's read-only transactions do, `FOR UPDATE` claims included) and cannot
  commit.
* Rows are frozen records; JSON columns are kept as JSON text, so what the core stores
  must be JSON and what it reads back is a fresh object, as from the databases.
  Datetimes must be aware and come back in UTC; a naive one is refused with ValueError.
* The schema's constraints: unique keys and foreign keys raise `ConstraintViolation`,
  and so does a string longer than its PostgreSQL column.
* Ids come from sequences that a rollback does not take back (as PostgreSQL's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from bot.domain.affinity import GOOD_RATING, Corpus, IdeaText, PeerText, answer_text
from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.ledger import AccountKey, AccountKind, EntryKind, TransactionDraft
from bot.domain.privacy import mentions, redact
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
    Identity,
    LedgerLine,
    Member,
    Offer,
    OfferStatus,
    PeerFacts,
    RequestStatus,
    Role,
)
from bot.domain.routing import PeerIndex, index_of_facts
from bot.messages import File, Outbound
from bot.ports import FindCandidate, LimitExceeded, RequestTimes, StoreBusy
from store.rows import redacted

K = TypeVar("K")
V = TypeVar("V")

MEMBER = AccountKind.MEMBER.value
ESCROW_KIND = AccountKind.ESCROW.value
RELEASE = EntryKind.RELEASE.value
OFFERED = OfferStatus.OFFERED.value


class ConstraintViolation(Exception):
    """What the SQL schema refuses: a duplicate unique key, a row that refers to a missing
    row or that others still refer to, a string longer than its column."""


class ReadOnlyError(RuntimeError):
    """A read-only unit of work tried to write or to lock rows."""


# -- tables and versions ---------------------------------------------------------------


class _Table(Generic[K, V]):
    """The rows of one table in one version, by key, in insertion order (id order for
    tables keyed by id: ids only grow). Versions share a table's dict until one of them
    changes it; only the unit of work that owns a version changes it."""

    __slots__ = ("_read_only", "_rows", "_shared")

    def __init__(
        self, rows: dict[K, V] | None = None, *, shared: bool = False, read_only: bool = False
    ) -> None:
        self._rows: dict[K, V] = {} if rows is None else rows
        self._shared = shared
        self._read_only = read_only

    def fork(self, *, read_only: bool = False) -> _Table[K, V]:
        return _Table(self._rows, shared=True, read_only=read_only)

    def get(self, key: K) -> V | None:
        return self._rows.get(key)

    def __getitem__(self, key: K) -> V:
        return self._rows[key]

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self) -> list[K]:
        return list(self._rows)  # lists: a caller may change the table while looping

    def values(self) -> list[V]:
        return list(self._rows.values())

    def items(self) -> list[tuple[K, V]]:
        return list(self._rows.items())

    def put(self, key: K, value: V) -> None:
        self._own()
        self._rows[key] = value

    def pop(self, key: K) -> V | None:
        if key not in self._rows:
            return None
        self._own()
        return self._rows.pop(key)

    def _own(self) -> None:
        if self._read_only:
            raise ReadOnlyError("a read-only unit of work cannot write")
        if self._shared:
            self._rows = dict(self._rows)
            self._shared = False


@dataclass(frozen=True, slots=True)
class _CommunityRow:
    id: int
    key: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _MemberRow:
    id: int
    community_id: int
    name: str
    role: str
    capacity: int
    paused_until: datetime | None
    languages: str  # JSON
    bio: str
    profile: str  # JSON
    created_at: datetime
    last_active_at: datetime | None
    language: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class _IdentityRow:  # keyed by (platform, external_id)
    id: int
    member_id: int


@dataclass(frozen=True, slots=True)
class _AccountRow:
    id: int
    community_id: int
    kind: str
    member_id: int  # 0 for the community's network and escrow accounts
    balance: int


@dataclass(frozen=True, slots=True)
class _TransactionRow:
    id: int
    community_id: int
    kind: str
    reason: str
    author_id: int | None
    request_id: int | None
    key: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _PostingRow:
    id: int
    transaction_id: int
    account_id: int
    amount: int
    holder_id: int | None


@dataclass(frozen=True, slots=True)
class _OutboxRow:
    id: int
    message: Outbound  # without outbox id and hold: those are the row's
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    claimed_until: datetime | None
    platform_ref: str | None
    failed_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _ConversationRow:  # keyed by member id
    member_id: int
    community_id: int
    flow: str
    state: str  # JSON
    platform: str
    external_id: str
    started_at: datetime
    updated_at: datetime
    reminded_at: datetime | None


@dataclass(frozen=True, slots=True)
class _CrossRow:
    community_id: int
    record: CrossRequest


@dataclass(frozen=True, slots=True)
class _IdeaRow:
    id: int
    community_id: int
    number: int
    owner_id: int
    title: str
    answers: str  # JSON
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class _RequestRow:
    id: int
    community_id: int
    number: int
    idea_id: int
    requester_id: int
    kind: str
    price: int
    tags: str  # JSON
    status: str
    round: int
    created_at: datetime
    peer_id: int | None = None
    hours: float | None = None
    feedback: str | None = None
    rating: int | None = None
    comment: str | None = None
    note: str | None = None
    accepted_at: datetime | None = None
    delivered_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    auto_release_at: datetime | None = None


# What `transition` may set: every column but the key and the status it moves.
_REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(_RequestRow)) - {"id", "status"}


@dataclass(frozen=True, slots=True)
class _OfferRow:
    id: int
    request_id: int
    peer_id: int
    round: int
    status: str
    explanation: str
    offered_at: datetime
    expires_at: datetime
    remind_at: datetime | None
    answered_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _LinkCodeRow:  # keyed by code
    code: str
    member_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class _IntroductionRow:
    id: int
    community_id: int
    idea_id: int
    from_id: int
    to_id: int
    note: str
    created_at: datetime


@dataclass
class _Tables:
    """One version of the whole database. The `..._keys` tables are unique indexes."""

    communities: _Table[int, _CommunityRow] = field(default_factory=_Table)
    community_keys: _Table[str, int] = field(default_factory=_Table)
    tags: _Table[tuple[int, str], None] = field(default_factory=_Table)
    members: _Table[int, _MemberRow] = field(default_factory=_Table)
    identities: _Table[tuple[str, str], _IdentityRow] = field(default_factory=_Table)
    expertise: _Table[tuple[int, str], int] = field(default_factory=_Table)
    accounts: _Table[int, _AccountRow] = field(default_factory=_Table)
    account_keys: _Table[tuple[int, str, int], int] = field(default_factory=_Table)
    transactions: _Table[int, _TransactionRow] = field(default_factory=_Table)
    transaction_keys: _Table[str, int] = field(default_factory=_Table)
    postings: _Table[int, _PostingRow] = field(default_factory=_Table)
    events: _Table[str, datetime] = field(default_factory=_Table)
    outbox: _Table[int, _OutboxRow] = field(default_factory=_Table)
    counters: _Table[tuple[int, str], int] = field(default_factory=_Table)
    conversations: _Table[int, _ConversationRow] = field(default_factory=_Table)
    ideas: _Table[int, _IdeaRow] = field(default_factory=_Table)
    requests: _Table[int, _RequestRow] = field(default_factory=_Table)
    offers: _Table[int, _OfferRow] = field(default_factory=_Table)
    link_codes: _Table[str, _LinkCodeRow] = field(default_factory=_Table)
    introductions: _Table[int, _IntroductionRow] = field(default_factory=_Table)
    # digests of forgotten identities, and the salt of each community that has one
    forgotten_identities: _Table[str, datetime] = field(default_factory=_Table)
    community_salts: _Table[int, str] = field(default_factory=_Table)
    cross_requests: _Table[str, _CrossRow] = field(default_factory=_Table)  # by xid

    def fork(self, *, read_only: bool = False) -> _Tables:
        return _Tables(
            **{
                f.name: getattr(self, f.name).fork(read_only=read_only)
                for f in dataclasses.fields(self)
            }
        )


class MemoryDatabase:
    """The committed version of the tables, the writers' lock and the id sequences."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.lock = asyncio.Lock()
        self.writer: asyncio.Task[Any] | None = None  # the task whose unit holds the lock
        self._sequences: dict[str, int] = {}

    def next_id(self, table: str) -> int:
        value = self._sequences.get(table, 0) + 1
        self._sequences[table] = value
        return value


class _Txn:
    """What a unit of work's repositories share: its version of the tables."""

    def __init__(self, database: MemoryDatabase, read_only: bool) -> None:
        self.database = database
        self.read_only = read_only
        self._tables: _Tables | None = database.tables.fork(read_only=read_only)

    @property
    def t(self) -> _Tables:
        """The tables, for reading."""
        assert self._tables is not None, "use the unit of work in `async with`"
        return self._tables

    def writing(self) -> _Tables:
        """The tables, for a statement that writes or locks rows (refused when read-only)."""
        if self.read_only:
            raise ReadOnlyError("a read-only unit of work cannot write or lock rows")
        return self.t

    def new_id(self, table: str) -> int:
        self.writing()
        return self.database.next_id(table)

    def begin(self) -> None:
        self._tables = self.database.tables.fork(read_only=self.read_only)

    def commit(self) -> None:
        self.database.tables = self.t
        self.begin()  # what the unit does after its commit is a new transaction

    def close(self) -> None:
        self._tables = None


# -- values as the databases keep them -------------------------------------------------


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _dump(value: Any) -> str:
    return json.dumps(value)


def _load(text: str) -> Any:
    return json.loads(text)


def _fits(value: str | None, length: int, column: str) -> str | None:
    if value is not None and len(value) > length:
        raise ConstraintViolation(f"{column}: {len(value)} characters, the column holds {length}")
    return value


def _text(value: str, length: int, column: str) -> str:
    _fits(value, length, column)
    return value


def _exists(table: _Table[Any, Any], key: Any, column: str) -> None:
    """A foreign key: `key` must be a row of `table`."""
    if key not in table:
        raise ConstraintViolation(f"{column}: no row {key!r} to refer to")


# -- communities ------------------------------------------------------------------------


def _community(row: _CommunityRow) -> Community:
    return Community(CommunityId(row.id), row.key, row.name)


def _open_account(x: _Txn, community: int, kind: str, member: int) -> None:
    t = x.writing()
    key = (community, kind, member)
    if key in t.account_keys:
        raise ConstraintViolation(f"accounts: {key} exists")
    account = x.new_id("accounts")
    t.accounts.put(account, _AccountRow(account, community, kind, member, 0))
    t.account_keys.put(key, account)


class MemoryCommunities:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def get_or_create(
        self, key: str, name: str, tags: Sequence[str], at: datetime
    ) -> Community:
        found = self._x.t.community_keys.get(key)
        if found is None:
            t = self._x.writing()
            row = _CommunityRow(
                self._x.new_id("communities"),
                _text(key, 200, "communities.key"),
                _text(name, 200, "communities.name"),
                _utc(at),
            )
            t.communities.put(row.id, row)
            t.community_keys.put(key, row.id)
            for kind in (AccountKind.NETWORK, AccountKind.ESCROW):
                _open_account(self._x, row.id, kind.value, 0)
            for tag in tags:
                t.tags.put((row.id, _text(tag, 64, "tags.tag")), None)
            found = row.id
        return _community(self._x.t.communities[found])

    async def tags(self, community: CommunityId) -> list[str]:
        return sorted(tag for c, tag in self._x.t.tags.keys() if c == community)

    async def get(self, community: CommunityId) -> Community | None:
        row = self._x.t.communities.get(community)
        return _community(row) if row else None

    async def find(self, key: str) -> Community | None:
        found = self._x.t.community_keys.get(key)
        return None if found is None else _community(self._x.t.communities[found])

    async def all(self) -> list[Community]:
        return [_community(r) for r in self._x.t.communities.values()]

    async def next_number(self, community: CommunityId, counter: str) -> int:
        t = self._x.writing()
        _exists(t.communities, community, "counters.community_id")
        key = (int(community), _text(counter, 32, "counters.name"))
        value = (t.counters.get(key) or 0) + 1
        t.counters.put(key, value)
        return value

    async def salt(self, community: CommunityId, new: str | None = None) -> str | None:
        found = self._x.t.community_salts.get(community)
        if found is not None or new is None:
            return found
        t = self._x.writing()
        _exists(t.communities, community, "communities.settings")
        t.community_salts.put(int(community), new)
        return new


# -- members ----------------------------------------------------------------------------


def _identities(t: _Tables, members: set[int] | None = None) -> dict[int, list[Identity]]:
    """Identities by member (of `members`, or all), each member's in identity id order."""
    found: dict[int, list[Identity]] = {}
    for (platform, external_id), row in t.identities.items():
        if members is None or row.member_id in members:
            found.setdefault(row.member_id, []).append(Identity(platform, external_id))
    return found


def _member(row: _MemberRow, identities: Sequence[Identity] = ()) -> Member:
    return Member(
        id=MemberId(row.id),
        community=CommunityId(row.community_id),
        name=row.name,
        role=Role(row.role),
        capacity=row.capacity,
        paused_until=row.paused_until,
        languages=tuple(_load(row.languages)),
        bio=row.bio,
        identities=tuple(identities),
        profile=_load(row.profile),
        last_active=row.last_active_at,
        language=row.language,
        locale=row.locale,
    )


def _expertise_by_member(t: _Tables) -> dict[int, dict[str, int]]:
    """Every member's expertise, tags in order."""
    found: dict[int, dict[str, int]] = {}
    for (member, tag), level in sorted(t.expertise.items()):
        found.setdefault(member, {})[tag] = level
    return found


# `search_ids` narrows members down as the SQL store does: for words of printable ASCII
# without the characters that JSON escapes or that separate the parts of a profile's offers,
# a member may match when a word is in their name, bio, a tag or their profile's JSON text,
# each with ASCII letters lowered once the Kelvin sign and İ are k and i (the only two
# characters that str.lower() turns into ASCII letters); any other word rules nobody out.
_UNPLAIN = frozenset('"\\,()')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _plain(word: str) -> bool:
    return bool(word) and all(
        "!" <= c <= "~" and c not in _UNPLAIN and not "A" <= c <= "Z" for c in word
    )


def _folded(text: str) -> str:
    return text.replace("\u212a", "k").replace("\u0130", "i").translate(_ASCII_LOWER)


def _folded_json(text: str) -> str:
    """JSON text folded; its non-ASCII characters are \\u escapes there."""
    return _folded(text).replace("\\u212a", "k").replace("\\u0130", "i")


class MemoryMembers:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    def _with_identities(self, rows: Sequence[_MemberRow]) -> list[Member]:
        identities = _identities(self._x.t, {r.id for r in rows})
        return [_member(r, identities.get(r.id, ())) for r in rows]

    async def by_identity(self, platform: str, external_id: str) -> Member | None:
        t = self._x.t
        identity = t.identities.get((platform, external_id))
        row = None if identity is None else t.members.get(identity.member_id)
        return None if row is None else self._with_identities([row])[0]

    async def get(self, member: MemberId) -> Member | None:
        row = self._x.t.members.get(member)
        return None if row is None else self._with_identities([row])[0]

    async def get_many(self, members: Sequence[MemberId]) -> dict[MemberId, Member]:
        t = self._x.t
        rows = [r for m in dict.fromkeys(members) if (r := t.members.get(m)) is not None]
        # in the order of their first identity, those without one last (as PostgreSQL)
        first = {
            m: i for i, m in enumerate(dict.fromkeys(v.member_id for v in t.identities.values()))
        }
        rows.sort(key=lambda r: first.get(r.id, len(first)))
        return {MemberId(m.id): m for m in self._with_identities(rows)}

    async def by_name(self, community: CommunityId, name: str) -> list[Member]:
        lowered = name.lower()
        return self._with_identities(
            [
                r
                for r in self._x.t.members.values()
                if r.community_id == community and r.name.lower() == lowered
            ]
        )

    async def create(
        self,
        community: CommunityId,
        name: str,
        role: Role,
        platform: str,
        external_id: str,
        at: datetime,
    ) -> Member:
        t = self._x.writing()
        _exists(t.communities, community, "members.community_id")
        identity = (
            _text(platform, 32, "identities.platform"),
            _text(external_id, 255, "identities.external_id"),
        )
        if identity in t.identities:
            raise ConstraintViolation(f"identities: {identity} belongs to a member already")
        row = _MemberRow(
            id=self._x.new_id("members"),
            community_id=community,
            name=_text(name, 200, "members.name"),
            role=role.value,
            capacity=2,
            paused_until=None,
            languages="[]",
            bio="",
            profile="{}",
            created_at=_utc(at),
            last_active_at=None,
        )
        t.members.put(row.id, row)
        t.identities.put(identity, _IdentityRow(self._x.new_id("identities"), row.id))
        _open_account(self._x, community, MEMBER, row.id)
        return _member(row, [Identity(platform, external_id)])

    async def all(self, community: CommunityId) -> list[Member]:
        return self._with_identities(
            [r for r in self._x.t.members.values() if r.community_id == community]
        )

    def _set(self, member: MemberId, **values: Any) -> None:
        t = self._x.writing()
        row = t.members.get(member)
        if row is not None:
            t.members.put(member, replace(row, **values))

    async def set_role(self, member: MemberId, role: Role) -> None:
        self._set(member, role=role.value)

    async def set_capacity(self, member: MemberId, capacity: int) -> None:
        self._set(member, capacity=capacity)

    async def set_paused_until(self, member: MemberId, until: datetime | None) -> None:
        self._set(member, paused_until=_utc_or_none(until))

    async def touch(self, member: MemberId, at: datetime) -> None:
        self._set(member, last_active_at=_utc(at))

    async def set_language(
        self, member: MemberId, *, language: str | None = None, locale: str | None = None
    ) -> None:
        values: dict[str, Any] = {"language": language} if language is not None else {}
        if locale is not None:
            values["locale"] = _text(locale, 35, "members.locale")
        if values:
            self._set(member, **values)

    async def expertise(self, member: MemberId) -> list[Expertise]:
        return [
            Expertise(tag, level)
            for (m, tag), level in sorted(self._x.t.expertise.items())
            if m == member
        ]

    async def set_expertise(self, member: MemberId, tag: str, level: int) -> None:
        t = self._x.writing()
        _exists(t.members, member, "expertise.member_id")
        t.expertise.put((int(member), _text(tag, 64, "expertise.tag")), level)

    async def remove_expertise(self, member: MemberId, tag: str) -> bool:
        if (member, tag) not in self._x.t.expertise:
            return False
        self._x.writing().expertise.pop((int(member), tag))
        return True

    async def forget(self, member: MemberId, placeholder: str) -> None:
        self._set(
            member,
            name=_text(placeholder, 200, "members.name"),
            bio="",
            languages="[]",
            profile="{}",
            capacity=0,
        )
        t = self._x.writing()
        for key in t.expertise.keys():
            if key[0] == member:
                t.expertise.pop(key)
        t.conversations.pop(member)
        for code, link in t.link_codes.items():
            if link.member_id == member:
                t.link_codes.pop(code)
        for identity, row in t.identities.items():
            if row.member_id == member:
                t.identities.pop(identity)
        for idea in t.ideas.values():
            if idea.owner_id == member:
                t.ideas.put(idea.id, replace(idea, title="(removed on request)", answers="{}"))

    async def set_profile(
        self,
        member: MemberId,
        *,
        languages: Sequence[str],
        bio: str,
        profile: dict[str, Any],
    ) -> None:
        self._set(member, languages=_dump(list(languages)), bio=bio, profile=_dump(profile))

    async def expertise_of_community(
        self, community: CommunityId
    ) -> dict[MemberId, list[Expertise]]:
        t = self._x.t
        found: dict[MemberId, list[Expertise]] = {}
        for (member, tag), level in sorted(t.expertise.items()):
            row = t.members.get(member)
            if row is not None and row.community_id == community:
                found.setdefault(MemberId(member), []).append(Expertise(tag, level))
        return found

    async def erase_writings(self, member: MemberId) -> None:
        t = self._x.writing()
        for request in t.requests.values():
            if request.peer_id == member:
                request = replace(request, feedback=None)
            if request.requester_id == member:
                request = replace(request, comment=None, note=None)
            t.requests.put(request.id, request)
        for offer in t.offers.values():
            if offer.peer_id == member and offer.reason is not None:
                t.offers.put(offer.id, replace(offer, reason=None))
        for intro in t.introductions.values():
            if member in (intro.from_id, intro.to_id):
                t.introductions.put(intro.id, replace(intro, note=""))

    async def remember_forgotten(self, digests: Sequence[str], at: datetime) -> None:
        if not digests:
            return
        t = self._x.writing()
        for digest in digests:
            if _text(digest, 64, "forgotten_identities.digest") not in t.forgotten_identities:
                t.forgotten_identities.put(digest, _utc(at))

    async def was_forgotten(self, digest: str) -> bool:
        return digest in self._x.t.forgotten_identities


# -- links and introductions ------------------------------------------------------------


class MemoryLinks:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def create(self, member: MemberId, code: str, at: datetime, expires: datetime) -> None:
        t = self._x.writing()
        _exists(t.members, member, "link_codes.member_id")
        if _text(code, 16, "link_codes.code") in t.link_codes:
            raise ConstraintViolation(f"link_codes: {code!r} exists")
        t.link_codes.put(code, _LinkCodeRow(code, member, _utc(at), _utc(expires), None))

    async def claim(self, code: str, at: datetime) -> tuple[str, MemberId | None]:
        t = self._x.writing()  # the code's row is locked (FOR UPDATE)
        row = t.link_codes.get(code)
        if row is None:
            return "unknown", None
        if row.used_at is not None:
            return "used", None
        if row.expires_at <= _utc(at):
            return "expired", None
        t.link_codes.put(code, replace(row, used_at=_utc(at)))
        return "ok", MemberId(row.member_id)

    async def has_history(self, member: MemberId) -> bool:
        t = self._x.t
        accounts = {a.id for a in t.accounts.values() if a.kind == MEMBER and a.member_id == member}
        return (
            any(p.account_id in accounts for p in t.postings.values())
            or any(i.owner_id == member for i in t.ideas.values())
            or any(member in (r.requester_id, r.peer_id) for r in t.requests.values())
            or any(o.peer_id == member for o in t.offers.values())
            or any(tx.author_id == member for tx in t.transactions.values())
        )

    async def move_identity(
        self, platform: str, external_id: str, from_member: MemberId, to_member: MemberId
    ) -> None:
        t = self._x.writing()
        identity = t.identities.get((platform, external_id))
        if identity is not None:
            _exists(t.members, to_member, "identities.member_id")
            t.identities.put((platform, external_id), replace(identity, member_id=to_member))
        if any(row.member_id == from_member for row in t.identities.values()):
            return
        for key, intro in list(t.introductions.items()):  # introductions follow the person
            if from_member in (intro.from_id, intro.to_id):
                t.introductions.put(
                    key,
                    replace(
                        intro,
                        from_id=to_member if intro.from_id == from_member else intro.from_id,
                        to_id=to_member if intro.to_id == from_member else intro.to_id,
                    ),
                )
        accounts = [
            a for a in t.accounts.values() if a.kind == MEMBER and a.member_id == from_member
        ]
        ids = {a.id for a in accounts}
        referred = [
            ("ledger_postings", any(p.account_id in ids for p in t.postings.values())),
            ("ideas", any(i.owner_id == from_member for i in t.ideas.values())),
            (
                "requests",
                any(from_member in (r.requester_id, r.peer_id) for r in t.requests.values()),
            ),
            ("offers", any(o.peer_id == from_member for o in t.offers.values())),
            (
                "ledger_transactions",
                any(tx.author_id == from_member for tx in t.transactions.values()),
            ),
            (
                "introductions",
                any(from_member in (i.from_id, i.to_id) for i in t.introductions.values()),
            ),
        ]
        for table, refers in referred:
            if refers:  # checked before anything is deleted: a refusal changes nothing
                raise ConstraintViolation(f"{table} still refer to member {from_member}")
        t.conversations.pop(from_member)
        for key in t.expertise.keys():
            if key[0] == from_member:
                t.expertise.pop(key)
        for code, link in t.link_codes.items():
            if link.member_id == from_member:
                t.link_codes.pop(code)
        for account in accounts:
            t.accounts.pop(account.id)
            t.account_keys.pop((account.community_id, account.kind, account.member_id))
        t.members.pop(from_member)

    async def merge_members(self, keep: MemberId, gone: MemberId, placeholder: str) -> None:
        t = self._x.writing()
        _exists(t.members, keep, "members.id")

        def moved(member: int) -> int:
            return keep if member == gone else member

        for identity, row in t.identities.items():
            if row.member_id == gone:
                t.identities.put(identity, replace(row, member_id=keep))
        for idea in t.ideas.values():
            if idea.owner_id == gone:
                t.ideas.put(idea.id, replace(idea, owner_id=keep))
        for request in t.requests.values():
            if gone in (request.requester_id, request.peer_id):
                peer = None if request.peer_id is None else moved(request.peer_id)
                t.requests.put(
                    request.id,
                    replace(request, requester_id=moved(request.requester_id), peer_id=peer),
                )
        for offer in t.offers.values():
            if offer.peer_id == gone:
                t.offers.put(offer.id, replace(offer, peer_id=keep))
        for key, intro in t.introductions.items():
            if gone in (intro.from_id, intro.to_id):
                from_id, to_id = moved(intro.from_id), moved(intro.to_id)
                if from_id == to_id == keep:
                    t.introductions.pop(key)
                else:
                    t.introductions.put(key, replace(intro, from_id=from_id, to_id=to_id))
        for (member, tag), level in t.expertise.items():
            if member == gone:
                t.expertise.pop((member, tag))
                if level > (t.expertise.get((int(keep), tag)) or 0):
                    t.expertise.put((int(keep), tag), level)
        conversation = t.conversations.pop(gone)
        if conversation is not None and keep not in t.conversations:
            t.conversations.put(keep, replace(conversation, member_id=keep))
        for code, link in t.link_codes.items():
            if link.member_id == gone:
                t.link_codes.pop(code)
        kept, joined = t.members[keep], t.members[gone]
        languages = json.loads(kept.languages)
        languages += [lang for lang in json.loads(joined.languages) if lang not in languages]
        active = [a for a in (kept.last_active_at, joined.last_active_at) if a is not None]
        t.members.put(
            keep,
            replace(
                kept,
                languages=_dump(languages),
                bio=kept.bio or joined.bio,
                profile=_dump({**json.loads(joined.profile), **json.loads(kept.profile)}),
                last_active_at=max(active) if active else None,
            ),
        )
        t.members.put(
            gone,
            replace(
                joined,
                name=_text(placeholder, 200, "members.name"),
                bio="",
                languages="[]",
                profile="{}",
                capacity=0,
            ),
        )

    async def prune(self, expired_before: datetime) -> int:
        expired_before = _utc(expired_before)
        old = [c for c, row in self._x.t.link_codes.items() if row.expires_at < expired_before]
        if old:
            t = self._x.writing()
            for code in old:
                t.link_codes.pop(code)
        return len(old)


class MemoryIntroductions:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def add(
        self,
        community: CommunityId,
        idea: IdeaId,
        from_member: MemberId,
        to_member: MemberId,
        note: str,
        at: datetime,
    ) -> None:
        t = self._x.writing()
        _exists(t.communities, community, "introductions.community_id")
        _exists(t.ideas, idea, "introductions.idea_id")
        _exists(t.members, from_member, "introductions.from_id")
        _exists(t.members, to_member, "introductions.to_id")
        row = _IntroductionRow(
            self._x.new_id("introductions"),
            community,
            idea,
            from_member,
            to_member,
            note,
            _utc(at),
        )
        t.introductions.put(row.id, row)

    async def made_since(self, from_member: MemberId, since: datetime) -> int:
        since = _utc(since)
        return sum(
            1
            for i in self._x.t.introductions.values()
            if i.from_id == from_member and i.created_at >= since
        )

    async def exists(self, idea: IdeaId, from_member: MemberId, to_member: MemberId) -> bool:
        return any(
            (i.idea_id, i.from_id, i.to_id) == (idea, from_member, to_member)
            for i in self._x.t.introductions.values()
        )


# -- conversations ----------------------------------------------------------------------


def _conversation(row: _ConversationRow) -> Conversation:
    return Conversation(
        member=MemberId(row.member_id),
        community=CommunityId(row.community_id),
        flow=row.flow,
        state=_load(row.state),
        platform=row.platform,
        external_id=row.external_id,
        started_at=row.started_at,
        updated_at=row.updated_at,
        reminded_at=row.reminded_at,
    )


class MemoryConversations:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def get(self, member: MemberId) -> Conversation | None:
        row = self._x.t.conversations.get(member)
        return None if row is None else _conversation(row)

    async def save(self, conversation: Conversation) -> None:
        t = self._x.writing()
        _exists(t.members, conversation.member, "conversations.member_id")
        _exists(t.communities, conversation.community, "conversations.community_id")
        t.conversations.put(
            conversation.member,
            _ConversationRow(
                member_id=conversation.member,
                community_id=conversation.community,
                flow=_text(conversation.flow, 32, "conversations.flow"),
                state=_dump(conversation.state),
                platform=_text(conversation.platform, 32, "conversations.platform"),
                external_id=_text(conversation.external_id, 255, "conversations.external_id"),
                started_at=_utc(conversation.started_at),
                updated_at=_utc(conversation.updated_at),
                reminded_at=_utc_or_none(conversation.reminded_at),
            ),
        )

    async def delete(self, member: MemberId) -> None:
        self._x.writing().conversations.pop(member)

    async def claim_due(
        self, silent_since: datetime, *, reminded: bool | None, limit: int
    ) -> list[Conversation]:
        t = self._x.writing()  # FOR UPDATE: the writers' lock keeps other sweepers out
        silent_since = _utc(silent_since)
        due = [
            row
            for row in t.conversations.values()
            if row.updated_at < silent_since
            and (reminded is None or (row.reminded_at is not None) is reminded)
        ]
        due.sort(key=lambda row: (row.updated_at, row.member_id))
        return [_conversation(row) for row in due[: max(limit, 0)]]

    async def mark_reminded(self, member: MemberId, at: datetime) -> None:
        t = self._x.writing()
        row = t.conversations.get(member)
        if row is not None:
            t.conversations.put(member, replace(row, reminded_at=_utc(at)))


# -- ideas ------------------------------------------------------------------------------


def _idea(row: _IdeaRow, owner_name: str = "") -> Idea:
    return Idea(
        id=IdeaId(row.id),
        community=CommunityId(row.community_id),
        number=row.number,
        owner=MemberId(row.owner_id),
        title=row.title,
        answers=_load(row.answers),
        status=IdeaStatus(row.status),
        created_at=row.created_at,
        owner_name=owner_name,
    )


class MemoryIdeas:
    def __init__(self, x: _Txn) -> None:
        self._x = x
        self._communities = MemoryCommunities(x)

    def _named(self, rows: list[_IdeaRow]) -> list[Idea]:
        members = self._x.t.members
        rows.sort(key=lambda row: (row.number, row.id))
        return [_idea(row, members[row.owner_id].name) for row in rows]

    async def create(
        self,
        community: CommunityId,
        owner: MemberId,
        title: str,
        answers: dict[str, Any],
        at: datetime,
    ) -> Idea:
        number = await self._communities.next_number(community, "idea")
        t = self._x.writing()
        _exists(t.members, owner, "ideas.owner_id")
        row = _IdeaRow(
            id=self._x.new_id("ideas"),
            community_id=community,
            number=number,
            owner_id=owner,
            title=_text(title, 200, "ideas.title"),
            answers=_dump(answers),
            status=IdeaStatus.SUBMITTED.value,
            created_at=_utc(at),
            updated_at=_utc(at),
        )
        t.ideas.put(row.id, row)
        return _idea(row)  # without the owner's name, as the SQL store returns it

    async def by_number(self, community: CommunityId, number: int) -> Idea | None:
        found = [
            r
            for r in self._x.t.ideas.values()
            if r.community_id == community and r.number == number
        ]
        return self._named(found)[0] if found else None

    async def of_owner(self, owner: MemberId) -> list[Idea]:
        return self._named([r for r in self._x.t.ideas.values() if r.owner_id == owner])

    async def all(self, community: CommunityId) -> list[Idea]:
        return self._named([r for r in self._x.t.ideas.values() if r.community_id == community])

    async def set_status(self, idea: IdeaId, status: IdeaStatus, at: datetime) -> None:
        t = self._x.writing()
        row = t.ideas.get(idea)
        if row is not None:
            t.ideas.put(idea, replace(row, status=status.value, updated_at=_utc(at)))


# -- the ledger -------------------------------------------------------------------------


def _sort_key(account: AccountKey) -> tuple[str, int]:
    return (account.kind.value, int(account.member or 0))


def _postings_by_transaction(t: _Tables) -> dict[int, list[_PostingRow]]:
    found: dict[int, list[_PostingRow]] = defaultdict(list)
    for posting in t.postings.values():  # in id order
        found[posting.transaction_id].append(posting)
    return found


def _released(t: _Tables, community: int | None = None) -> list[_PostingRow]:
    """The postings of release transactions (of one community, or all)."""
    releases = {
        tx.id
        for tx in t.transactions.values()
        if tx.kind == RELEASE and (community is None or tx.community_id == community)
    }
    return [p for p in t.postings.values() if p.transaction_id in releases]


class MemoryLedger:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def post(
        self,
        community: CommunityId,
        draft: TransactionDraft,
        credit_limit: int,
        at: datetime,
    ) -> int | None:
        t = self._x.writing()
        key = _fits(draft.key, 255, "ledger_transactions.key")
        if key is not None and key in t.transaction_keys:
            return None
        _exists(t.communities, community, "ledger_transactions.community_id")
        if draft.author is not None:
            _exists(t.members, draft.author, "ledger_transactions.author_id")
        at = _utc(at)
        # Every posting is checked before anything is written, in the SQL store's order.
        accounts: dict[AccountKey, _AccountRow] = {}
        for posting in sorted(draft.postings, key=lambda p: _sort_key(p.account)):
            account_key = (
                int(community),
                posting.account.kind.value,
                _sort_key(posting.account)[1],
            )
            account_id = t.account_keys.get(account_key)
            if account_id is None:
                raise LookupError(f"no account {posting.account} in community {community}")
            account = t.accounts[account_id]
            floor = draft.floor(posting.account, credit_limit)
            if (
                posting.amount < 0
                and floor is not None
                and account.balance + posting.amount < floor
            ):
                raise LimitExceeded(posting.account, account.balance, floor, posting.amount)
            accounts[posting.account] = account
        tx = _TransactionRow(
            id=self._x.new_id("ledger_transactions"),
            community_id=community,
            kind=draft.kind.value,
            reason=draft.reason,
            author_id=draft.author,
            request_id=draft.request,
            key=key,
            created_at=at,
        )
        t.transactions.put(tx.id, tx)
        if key is not None:
            t.transaction_keys.put(key, tx.id)
        for posting in draft.postings:
            account = accounts[posting.account]
            t.accounts.put(account.id, replace(account, balance=account.balance + posting.amount))
            row = _PostingRow(
                self._x.new_id("ledger_postings"), tx.id, account.id, posting.amount, posting.holder
            )
            t.postings.put(row.id, row)
        return tx.id

    async def balance(self, community: CommunityId, account: AccountKey) -> int:
        t = self._x.t
        found = t.account_keys.get((int(community), account.kind.value, _sort_key(account)[1]))
        if found is None:
            raise LookupError(f"no such account in community {community}: {[account]}")
        return t.accounts[found].balance

    def _summaries(self, community: CommunityId, member: MemberId | None) -> list[BalanceInfo]:
        """`all_balances`' rows (of one member when given): members with an account."""
        t = self._x.t
        escrow = t.account_keys.get((int(community), ESCROW_KIND, 0))
        held: Counter[int] = Counter()
        for posting in t.postings.values():
            if posting.account_id == escrow and posting.holder_id is not None:
                held[posting.holder_id] += posting.amount
        given: Counter[int] = Counter()  # by account
        received: Counter[int] = Counter()  # by holder
        for posting in _released(t):
            given[posting.account_id] += posting.amount
            if posting.holder_id is not None:
                received[posting.holder_id] -= posting.amount
        accounts = {a.member_id: a for a in t.accounts.values() if a.kind == MEMBER}
        return [
            BalanceInfo(
                MemberId(row.id),
                row.name,
                account.balance,
                held[row.id],
                given[account.id],
                received[row.id],
                row.last_active_at,
            )
            for row in t.members.values()
            if row.community_id == community
            and (member is None or row.id == member)
            and (account := accounts.get(row.id)) is not None
        ]

    async def of_identity(
        self, platform: str, external_id: str
    ) -> tuple[Member, BalanceInfo] | None:
        member = await MemoryMembers(self._x).by_identity(platform, external_id)
        if member is None:
            return None
        found = self._summaries(member.community, member.id)
        return (member, found[0]) if found else None

    async def balance_info(self, member: Member) -> BalanceInfo:
        found = self._summaries(member.community, member.id)
        if not found:
            raise LookupError(f"no member {member.id} with an account in {member.community}")
        return found[0]

    async def all_balances(self, community: CommunityId) -> list[BalanceInfo]:
        return sorted(self._summaries(community, None), key=lambda i: (i.balance, i.member))

    async def balance_table(
        self,
        community: CommunityId,
        edge: int,
        member: MemberId | None = None,
        negative: bool = False,
    ) -> BalanceTable:
        rows = sorted(self._summaries(community, member), key=lambda i: (i.balance, i.member))
        if negative:
            rows = [i for i in rows if i.balance < 0]
        total = sum(i.balance for i in rows)
        if len(rows) <= 2 * edge:
            return BalanceTable(len(rows), total, tuple(rows))
        return BalanceTable(len(rows), total, tuple(rows[:edge]), tuple(rows[-edge:]))

    async def history(self, member: MemberId, limit: int) -> list[LedgerLine]:
        t = self._x.t
        accounts = {a.id for a in t.accounts.values() if a.kind == MEMBER and a.member_id == member}
        postings = [p for p in t.postings.values() if p.account_id in accounts]
        postings.sort(key=lambda p: p.transaction_id, reverse=True)
        lines = []
        for posting in postings[: max(limit, 0)]:
            tx = t.transactions[posting.transaction_id]
            author = t.members.get(tx.author_id) if tx.author_id is not None else None
            request = t.requests.get(tx.request_id) if tx.request_id is not None else None
            lines.append(
                LedgerLine(
                    tx.id,
                    tx.created_at,
                    EntryKind(tx.kind),
                    posting.amount,
                    tx.reason,
                    author.name if author else None,
                    request.number if request else None,
                )
            )
        return lines

    async def entries(
        self, community: CommunityId, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        t = self._x.t
        since = _utc_or_none(since)
        postings = _postings_by_transaction(t)
        found = []
        for tx in t.transactions.values():
            if tx.community_id != community or (since is not None and tx.created_at < since):
                continue
            author = t.members.get(tx.author_id) if tx.author_id is not None else None
            for posting in postings.get(tx.id, []):
                account = t.accounts[posting.account_id]
                owner = t.members.get(account.member_id)
                found.append(
                    {
                        "transaction": tx.id,
                        "at": tx.created_at,
                        "kind": tx.kind,
                        "request": tx.request_id,
                        "reason": tx.reason,
                        "author": author.name if author else None,
                        "account": account.kind,
                        "member": owner.name if owner else None,
                        "amount": posting.amount,
                    }
                )
        return found

    async def check_invariants(self, community: CommunityId) -> list[str]:
        t = self._x.t
        problems: list[str] = []
        postings = _postings_by_transaction(t)
        transactions = [tx for tx in t.transactions.values() if tx.community_id == community]
        for tx in transactions:
            total = sum(p.amount for p in postings.get(tx.id, []))
            if postings.get(tx.id) and total != 0:
                problems.append(f"transaction {tx.id} sums to {total}")
        empty = sum(1 for tx in transactions if not postings.get(tx.id))
        if empty:
            problems.append(f"{empty} transactions without postings")
        accounts = [a for a in t.accounts.values() if a.community_id == community]
        derived: Counter[int] = Counter()
        for posting in t.postings.values():
            derived[posting.account_id] += posting.amount
        total = sum(derived[a.id] for a in accounts)
        if total:
            problems.append(f"community total is {total}, not 0")
        problems += [
            f"account {a.id} caches {a.balance} but its entries sum to {derived[a.id]}"
            for a in accounts
            if a.balance != derived[a.id]
        ]
        escrow = {a.id for a in accounts if a.kind == ESCROW_KIND}
        held: dict[int | None, int] = defaultdict(int)
        for posting in t.postings.values():
            if posting.account_id in escrow:
                held[posting.holder_id] += posting.amount
        problems += [f"escrow for member {h} is negative ({s})" for h, s in held.items() if s < 0]
        return problems

    def set_cached_balances(self, kind: AccountKind, balance: int) -> None:
        """Overwrite the cached balance of every account of `kind`, behind the ledger's
        back (a raw `UPDATE accounts SET balance = ...`): for tests of check_invariants."""
        t = self._x.writing()
        for account in t.accounts.values():
            if account.kind == kind.value:
                t.accounts.put(account.id, replace(account, balance=balance))

    async def redact_reasons(self, community: CommunityId, replacements: dict[str, str]) -> int:
        changed = [
            replace(tx, reason=new)
            for tx in self._x.t.transactions.values()
            if tx.community_id == community
            and (new := redact(tx.reason, replacements)) != tx.reason
        ]
        if changed:
            t = self._x.writing()
            for tx in changed:
                t.transactions.put(tx.id, tx)
        return len(changed)


# -- events and the outbox --------------------------------------------------------------


class MemoryEventLog:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def first_time(self, key: str, at: datetime) -> bool:
        t = self._x.writing()
        if _text(key, 255, "processed_events.key") in t.events:
            return False
        t.events.put(key, _utc(at))
        return True

    async def seen(self, key: str) -> bool:
        return key in self._x.t.events

    async def prune(self, before: datetime) -> int:
        before = _utc(before)
        old = [key for key, at in self._x.t.events.items() if at < before]
        if old:
            t = self._x.writing()
            for key in old:
                t.events.pop(key)
        return len(old)


def _stored(message: Outbound) -> Outbound:
    """The message as the outbox keeps it: its id and this process's hold are the row's."""
    cleared: dict[str, Any] = {"outbox_id": None}
    if any(f.name == "held_until" for f in dataclasses.fields(message)):
        cleared["held_until"] = None
    return replace(message, **cleared)


def _outbound(row: _OutboxRow) -> Outbound:
    return replace(row.message, outbox_id=row.id)


class MemoryOutbox:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def add(
        self, message: Outbound, at: datetime, claimed_until: datetime | None = None
    ) -> int:
        t = self._x.writing()
        _fits(message.platform, 32, "outbox.platform")
        _fits(message.to, 255, "outbox.to")
        _fits(message.channel, 255, "outbox.channel")
        row = _OutboxRow(
            id=self._x.new_id("outbox"),
            message=_stored(message),
            created_at=_utc(at),
            sent_at=None,
            # Claimed by the process about to send it, which counts the attempt now.
            attempts=0 if claimed_until is None else 1,
            claimed_until=_utc_or_none(claimed_until),
            platform_ref=None,
        )
        t.outbox.put(row.id, row)
        return row.id

    async def pending(self, platforms: Sequence[str], limit: int) -> list[Outbound]:
        wanted = set(platforms)
        rows = [
            r
            for r in self._x.t.outbox.values()
            if r.sent_at is None and r.failed_at is None and r.message.platform in wanted
        ]
        return [_outbound(r) for r in rows[: max(limit, 0)]]

    async def claim(
        self, platforms: Sequence[str], now: datetime, until: datetime, limit: int
    ) -> list[tuple[Outbound, bool]]:
        t = self._x.writing()
        now, until = _utc(now), _utc(until)
        wanted = set(platforms)
        waiting: set[tuple[str, str, str | None]] = set()  # conversations with an earlier one
        rows = []
        for r in t.outbox.values():
            if r.sent_at is not None or r.failed_at is not None:
                continue
            key = (r.message.platform, r.message.to, r.message.channel)
            if key in waiting:
                continue
            due = r.claimed_until is None or r.claimed_until <= now
            if not due:  # held or waiting for its retry: later ones to them wait too
                waiting.add(key)
            elif r.message.platform in wanted:
                rows.append(r)
        rows = rows[: max(limit, 0)]
        for row in rows:
            t.outbox.put(row.id, replace(row, claimed_until=until, attempts=row.attempts + 1))
        return [
            (
                replace(_outbound(r), attempts=r.attempts + 1, created_at=r.created_at),
                r.attempts > 0,
            )
            for r in rows
        ]

    async def renew(self, outbox_id: int, held_until: datetime | None, until: datetime) -> bool:
        t = self._x.writing()
        held_until, until = _utc_or_none(held_until), _utc(until)
        row = t.outbox.get(outbox_id)
        if row is None or row.sent_at is not None or row.claimed_until != held_until:
            return False
        t.outbox.put(outbox_id, replace(row, claimed_until=until))
        return True

    async def release(
        self, outbox_ids: Sequence[int], at: datetime, error: str | None = None
    ) -> None:
        if not outbox_ids:
            return
        t = self._x.writing()
        at = _utc(at)
        for outbox_id in outbox_ids:
            row = t.outbox.get(outbox_id)
            if row is not None and row.sent_at is None:
                kept = row.error if error is None else error[:255]
                t.outbox.put(outbox_id, replace(row, claimed_until=at, error=kept))

    async def set_aside(self, failures: Sequence[tuple[int, str]], at: datetime) -> None:
        if not failures:
            return
        t = self._x.writing()
        at = _utc(at)
        for outbox_id, error in failures:
            row = t.outbox.get(outbox_id)
            if row is not None and row.sent_at is None:
                t.outbox.put(
                    outbox_id, replace(row, failed_at=at, claimed_until=None, error=error[:255])
                )

    async def set_aside_to(self, platform: str, to: str) -> bool:
        return any(
            r.failed_at is not None and (r.message.platform, r.message.to) == (platform, to)
            for r in self._x.t.outbox.values()
        )

    async def set_aside_since(self, since: datetime) -> list[tuple[Outbound, str]]:
        since = _utc(since)
        return [
            (_outbound(r), r.error or "")
            for r in self._x.t.outbox.values()
            if r.failed_at is not None and r.failed_at >= since
        ]

    async def mark_sent(self, outbox_id: int, at: datetime, ref: str | None = None) -> None:
        await self.mark_all_sent([(outbox_id, ref)], at)

    async def mark_all_sent(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        if not sent:
            return
        t = self._x.writing()
        at = _utc(at)
        for outbox_id, ref in sent:
            row = t.outbox.get(outbox_id)
            if row is not None:
                ref = _fits(ref, 255, "outbox.platform_ref")
                t.outbox.put(
                    outbox_id, replace(row, sent_at=at, claimed_until=None, platform_ref=ref)
                )

    async def erase_person(
        self, identities: Sequence[tuple[str, str]], replacements: dict[str, str]
    ) -> int:
        theirs = set(identities)
        changed = 0
        t = self._x.writing()
        for row in t.outbox.values():
            message = row.message
            mine = (message.platform, message.to) in theirs
            unsent = row.sent_at is None and row.failed_at is None
            if mine and unsent:
                t.outbox.pop(row.id)  # nothing waits to be said to someone who is gone
            elif unsent:
                kept = redacted(message, replacements)
                if kept == message:
                    continue
                t.outbox.put(row.id, replace(row, message=kept))
            elif mine or mentions(message.text, replacements):
                erased = replace(message, parts=(), to="" if mine else message.to)
                t.outbox.put(row.id, replace(row, message=erased))
            else:
                continue
            changed += 1
        return changed

    async def erase_delivered(self, before: datetime) -> int:
        before = _utc(before)
        old = [
            row
            for row in self._x.t.outbox.values()
            if row.message.parts
            and any(at is not None and at < before for at in (row.sent_at, row.failed_at))
        ]
        if old:
            t = self._x.writing()
            for row in old:
                t.outbox.put(row.id, replace(row, message=replace(row.message, parts=())))
        return len(old)

    async def drop_delivered_files(self) -> int:
        with_files = [
            row
            for row in self._x.t.outbox.values()
            if (row.sent_at is not None or row.failed_at is not None)
            and row.message.file is not None
        ]
        if with_files:
            t = self._x.writing()
            for row in with_files:
                kept = tuple(p for p in row.message.parts if not isinstance(p, File))
                t.outbox.put(row.id, replace(row, message=replace(row.message, parts=kept)))
        return len(with_files)


# -- requests and offers ----------------------------------------------------------------


class MemoryRequests:
    def __init__(self, x: _Txn) -> None:
        self._x = x
        self._communities = MemoryCommunities(x)

    def _request(self, row: _RequestRow) -> HelpRequest:
        t = self._x.t
        idea = t.ideas[row.idea_id]
        peer = t.members[row.peer_id] if row.peer_id is not None else None
        return HelpRequest(
            id=RequestId(row.id),
            community=CommunityId(row.community_id),
            number=row.number,
            idea=IdeaId(row.idea_id),
            idea_number=idea.number,
            idea_title=idea.title,
            requester=MemberId(row.requester_id),
            requester_name=t.members[row.requester_id].name,
            kind=row.kind,
            price=row.price,
            tags=tuple(_load(row.tags)),
            status=RequestStatus(row.status),
            round=row.round,
            created_at=row.created_at,
            peer=MemberId(row.peer_id) if row.peer_id is not None else None,
            peer_name=peer.name if peer else None,
            hours=row.hours,
            feedback=row.feedback,
            rating=row.rating,
            note=row.note,
            accepted_at=row.accepted_at,
            delivered_at=row.delivered_at,
            closed_at=row.closed_at,
            escalated_at=row.escalated_at,
            auto_release_at=row.auto_release_at,
        )

    def _offer(self, row: _OfferRow) -> Offer:
        t = self._x.t
        return Offer(
            id=row.id,
            request=RequestId(row.request_id),
            request_number=t.requests[row.request_id].number,
            peer=MemberId(row.peer_id),
            peer_name=t.members[row.peer_id].name,
            round=row.round,
            status=OfferStatus(row.status),
            explanation=row.explanation,
            offered_at=row.offered_at,
            expires_at=row.expires_at,
            remind_at=row.remind_at,
            answered_at=row.answered_at,
            reason=row.reason,
        )

    def _of_community(self, community: CommunityId) -> list[_RequestRow]:
        return _requests_of(self._x.t, community)

    async def create(
        self,
        community: CommunityId,
        idea: IdeaId,
        requester: MemberId,
        kind: str,
        price: int,
        tags: Sequence[str],
        at: datetime,
    ) -> HelpRequest:
        number = await self._communities.next_number(community, "request")
        t = self._x.writing()
        _exists(t.ideas, idea, "requests.idea_id")
        _exists(t.members, requester, "requests.requester_id")
        row = _RequestRow(
            id=self._x.new_id("requests"),
            community_id=community,
            number=number,
            idea_id=idea,
            requester_id=requester,
            kind=_text(kind, 16, "requests.kind"),
            price=price,
            tags=_dump(list(tags)),
            status=RequestStatus.OPEN.value,
            round=0,
            created_at=_utc(at),
        )
        t.requests.put(row.id, row)
        return self._request(row)

    async def get(self, request: RequestId) -> HelpRequest | None:
        row = self._x.t.requests.get(request)
        return None if row is None else self._request(row)

    async def by_number(self, community: CommunityId, number: int) -> HelpRequest | None:
        found = [r for r in self._of_community(community) if r.number == number]
        return self._request(found[0]) if found else None

    async def of_member(self, member: MemberId) -> list[HelpRequest]:
        rows = [r for r in self._x.t.requests.values() if member in (r.requester_id, r.peer_id)]
        rows.sort(key=lambda r: (-r.number, r.id))
        return [self._request(r) for r in rows]

    async def of_idea(self, idea: IdeaId) -> list[HelpRequest]:
        rows = [r for r in self._x.t.requests.values() if r.idea_id == idea]
        rows.sort(key=lambda r: (r.number, r.id))
        return [self._request(r) for r in rows]

    async def all(self, community: CommunityId) -> list[HelpRequest]:
        rows = sorted(self._of_community(community), key=lambda r: (r.number, r.id))
        return [self._request(r) for r in rows]

    async def committed(self, requester: MemberId) -> int:
        open_ = {RequestStatus.OPEN.value, RequestStatus.ESCALATED.value}
        return sum(
            r.price
            for r in self._x.t.requests.values()
            if r.requester_id == requester and r.status in open_
        )

    async def transition(
        self,
        request: RequestId,
        from_: Sequence[RequestStatus],
        to: RequestStatus,
        **fields: Any,
    ) -> bool:
        t = self._x.writing()
        for name in fields:
            if name not in _REQUEST_FIELDS:
                raise KeyError(f"requests has no column {name!r} to set")
        row = t.requests.get(request)
        if row is None or row.status not in {status.value for status in from_}:
            return False
        values = dict(fields)
        for name, value in fields.items():
            if isinstance(value, datetime):
                values[name] = _utc(value)
        if values.get("peer_id") is not None:
            _exists(t.members, values["peer_id"], "requests.peer_id")
        if "tags" in values:
            values["tags"] = _dump(list(values["tags"]))
        t.requests.put(request, replace(row, status=to.value, **values))
        return True

    async def claim_auto_release(self, now: datetime, limit: int) -> list[HelpRequest]:
        t = self._x.writing()  # FOR UPDATE
        now = _utc(now)
        due = [
            r
            for r in t.requests.values()
            if r.status == RequestStatus.DELIVERED.value
            and r.auto_release_at is not None
            and r.auto_release_at <= now
        ]
        due.sort(key=lambda r: (r.auto_release_at or now, r.id))
        return [self._request(r) for r in due[: max(limit, 0)]]

    def _insert_offer(
        self,
        request: RequestId,
        peer: MemberId,
        round_: int,
        explanation: str,
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> _OfferRow:
        t = self._x.writing()
        _exists(t.requests, request, "offers.request_id")
        _exists(t.members, peer, "offers.peer_id")
        row = _OfferRow(
            id=self._x.new_id("offers"),
            request_id=request,
            peer_id=peer,
            round=round_,
            status=OFFERED,
            explanation=explanation,
            offered_at=_utc(at),
            expires_at=_utc(expires_at),
            remind_at=_utc_or_none(remind_at),
        )
        t.offers.put(row.id, row)
        return row

    async def add_offer(
        self,
        request: RequestId,
        peer: MemberId,
        round_: int,
        explanation: str,
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> Offer:
        row = self._insert_offer(request, peer, round_, explanation, at, expires_at, remind_at)
        return self._offer(row)

    async def add_offers(
        self,
        request: RequestId,
        round_: int,
        peers: Sequence[tuple[MemberId, str]],
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> None:
        for peer, explanation in peers:
            self._insert_offer(request, peer, round_, explanation, at, expires_at, remind_at)

    async def offers(self, request: RequestId) -> list[Offer]:
        return [self._offer(o) for o in self._x.t.offers.values() if o.request_id == request]

    async def offer_for(self, request: RequestId, peer: MemberId) -> Offer | None:
        found = [
            o for o in self._x.t.offers.values() if o.request_id == request and o.peer_id == peer
        ]
        return self._offer(found[-1]) if found else None

    async def open_offers(self, peer: MemberId) -> list[Offer]:
        return [
            self._offer(o)
            for o in self._x.t.offers.values()
            if o.peer_id == peer and o.status == OFFERED
        ]

    async def answer_offer(
        self,
        offer: int,
        to: OfferStatus,
        at: datetime,
        reason: str | None = None,
    ) -> bool:
        t = self._x.writing()
        row = t.offers.get(offer)
        if row is None or row.status != OFFERED:
            return False
        t.offers.put(
            offer,
            replace(row, status=to.value, answered_at=_utc(at), reason=reason, remind_at=None),
        )
        return True

    async def withdraw_offers(self, request: RequestId, at: datetime) -> list[Offer]:
        still_open = [o for o in await self.offers(request) if o.status is OfferStatus.OFFERED]
        withdrawn = []
        for offer in still_open:
            if await self.answer_offer(offer.id, OfferStatus.WITHDRAWN, at):
                withdrawn.append(offer)  # as it was: still offered
        return withdrawn

    def _claim_offers(self, due: list[_OfferRow], order: Any, limit: int) -> list[Offer]:
        due.sort(key=lambda o: (order(o), o.id))
        claimed = sorted(due[: max(limit, 0)], key=lambda o: o.id)
        return [self._offer(o) for o in claimed]

    async def claim_offers_to_remind(self, now: datetime, limit: int) -> list[Offer]:
        t = self._x.writing()  # FOR UPDATE
        now = _utc(now)
        due = [
            o
            for o in t.offers.values()
            if o.status == OFFERED and o.remind_at is not None and o.remind_at <= now
        ]
        return self._claim_offers(due, lambda o: o.remind_at, limit)

    async def clear_reminder(self, offer: int) -> None:
        t = self._x.writing()
        row = t.offers.get(offer)
        if row is not None:
            t.offers.put(offer, replace(row, remind_at=None))

    async def claim_expired_offers(self, now: datetime, limit: int) -> list[Offer]:
        t = self._x.writing()  # FOR UPDATE
        now = _utc(now)
        due = [o for o in t.offers.values() if o.status == OFFERED and o.expires_at <= now]
        return self._claim_offers(due, lambda o: o.expires_at, limit)


# -- the read side: stats, find, routing ---------------------------------------------


def _requests_of(t: _Tables, community: CommunityId) -> list[_RequestRow]:
    return [r for r in t.requests.values() if r.community_id == community]


class MemoryStatsQueries:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    def _since(self, community: CommunityId, since: datetime) -> list[_RequestRow]:
        since = _utc(since)
        rows = [r for r in _requests_of(self._x.t, community) if r.created_at >= since]
        return sorted(rows, key=lambda r: (r.number, r.id))

    async def window(self, community: CommunityId, since: datetime) -> list[RequestTimes]:
        return [
            RequestTimes(
                r.number,
                RequestStatus(r.status),
                tuple(_load(r.tags)),
                r.created_at,
                r.accepted_at,
                r.delivered_at,
                r.closed_at,
                r.escalated_at,
            )
            for r in self._since(community, since)
        ]

    async def offer_counts(self, community: CommunityId, since: datetime) -> dict[OfferStatus, int]:
        ids = {r.id for r in self._since(community, since)}
        counts = Counter(o.status for o in self._x.t.offers.values() if o.request_id in ids)
        return {OfferStatus(status): n for status, n in counts.items()}

    async def busiest_peers(
        self, community: CommunityId, since: datetime, limit: int
    ) -> list[tuple[str, int]]:
        members = self._x.t.members
        delivered: Counter[str] = Counter()
        first: dict[str, int] = {}
        for r in self._since(community, since):  # in number order
            if r.delivered_at is None or r.peer_id is None:
                continue
            name = members[r.peer_id].name
            if name == "":
                continue
            delivered[name] += 1
            first.setdefault(name, r.number)
        ranked = sorted(delivered.items(), key=lambda item: (-item[1], first[item[0]]))
        return ranked[: max(limit, 0)]

    async def never_offered(self, community: CommunityId, since: datetime) -> list[str]:
        t = self._x.t
        ids = {r.id for r in self._since(community, since)}
        asked = {t.members[o.peer_id].name for o in t.offers.values() if o.request_id in ids}
        experts = {member for member, _ in t.expertise.keys()}
        return [
            m.name
            for m in t.members.values()
            if m.community_id == community
            and m.capacity > 0
            and m.id in experts
            and m.name not in asked
        ]

    async def reviewing_tags(self, community: CommunityId) -> set[str]:
        t = self._x.t
        return {
            tag
            for (member, tag) in t.expertise.keys()
            if (row := t.members.get(member)) is not None
            and row.community_id == community
            and row.capacity > 0
        }

    async def count_introductions(self, community: CommunityId, since: datetime) -> int:
        since = _utc(since)
        return sum(
            1
            for row in self._x.t.introductions.values()
            if row.community_id == community and row.created_at >= since
        )

    async def credits(
        self,
        community: CommunityId,
        kinds: Sequence[EntryKind],
        since: datetime,
        until: datetime,
    ) -> list[tuple[datetime, EntryKind, int]]:
        t = self._x.t
        since, until = _utc(since), _utc(until)
        wanted = {k.value for k in kinds}
        postings = _postings_by_transaction(t)
        return [
            (tx.created_at, EntryKind(tx.kind), posting.amount)
            for tx in t.transactions.values()
            if tx.community_id == community
            and tx.kind in wanted
            and since <= tx.created_at <= until
            for posting in postings.get(tx.id, [])
            if posting.amount > 0
        ]

    async def sharing(self, community: CommunityId) -> tuple[int, int]:
        t = self._x.t
        given: Counter[int] = Counter()  # by account
        received: Counter[int] = Counter()  # by holder
        for posting in _released(t):
            given[posting.account_id] += posting.amount
            if posting.holder_id is not None:
                received[posting.holder_id] -= posting.amount
        accounts = {a.member_id: a for a in t.accounts.values() if a.kind == MEMBER}
        listed = [
            (row, account)
            for row in t.members.values()
            if row.community_id == community and (account := accounts.get(row.id)) is not None
        ]
        both = sum(1 for row, account in listed if given[account.id] > 0 and received[row.id] > 0)
        return len(listed), both

    async def circulation(self, community: CommunityId) -> int:
        return sum(
            a.balance
            for a in self._x.t.accounts.values()
            if a.community_id == community and a.kind == MEMBER and a.balance > 0
        )

    async def count_open_offers(self) -> int:
        return sum(1 for o in self._x.t.offers.values() if o.status == OFFERED)

    async def backlog(self) -> int:
        return sum(
            1 for r in self._x.t.outbox.values() if r.sent_at is None and r.failed_at is None
        )

    async def set_aside(self) -> int:
        return sum(1 for r in self._x.t.outbox.values() if r.failed_at is not None)


class MemoryFindQueries:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def search_ids(
        self, community: CommunityId, words: Sequence[str], *, exclude: MemberId
    ) -> list[MemberId]:
        if not words:
            return []
        t = self._x.t
        reachable = {row.member_id for row in t.identities.values()}
        candidates = [
            r
            for r in t.members.values()
            if r.community_id == community and r.id != exclude and r.id in reachable
        ]
        if not all(_plain(w) for w in words):
            return [MemberId(r.id) for r in candidates]
        wanted = list(dict.fromkeys(words))
        expertise = _expertise_by_member(t)

        def may_contain(row: _MemberRow) -> bool:
            texts = [_folded(text) for text in (row.name, row.bio, *expertise.get(row.id, {}))]
            texts.append(_folded_json(row.profile))
            return any(w in text for w in wanted for text in texts)

        return [MemberId(r.id) for r in candidates if may_contain(r)]

    async def find_candidates(self, members: Sequence[MemberId]) -> list[FindCandidate]:
        t = self._x.t
        wanted = set(members)
        expertise = _expertise_by_member(t)
        return [
            FindCandidate(MemberId(r.id), r.name, r.bio, _load(r.profile), expertise.get(r.id, {}))
            for r in t.members.values()
            if r.id in wanted
        ]


class MemoryRoutingQueries:
    def __init__(self, x: _Txn) -> None:
        self._x = x

    async def peer_index(self, community: CommunityId, now: datetime, since: datetime) -> PeerIndex:
        return index_of_facts(await self.peer_facts(community, since), now)

    async def peer_facts(self, community: CommunityId, since: datetime) -> list[PeerFacts]:
        t = self._x.t
        since = _utc(since)
        members = [m for m in t.members.values() if m.community_id == community]
        if not members:
            return []
        expertise = _expertise_by_member(t)
        requests = _requests_of(t, community)
        ids = {r.id for r in requests}
        assigned = Counter(r.peer_id for r in requests if r.status == RequestStatus.ASSIGNED.value)
        recent = Counter(
            r.peer_id for r in requests if r.delivered_at is not None and r.delivered_at >= since
        )
        offered: Counter[int] = Counter()
        last_offer: dict[int, datetime] = {}
        for offer in t.offers.values():
            if offer.request_id not in ids:
                continue
            if offer.status == OFFERED:
                offered[offer.peer_id] += 1
            last = last_offer.get(offer.peer_id)
            if last is None or offer.offered_at > last:
                last_offer[offer.peer_id] = offer.offered_at
        given: Counter[int] = Counter()  # by member, on their own account
        received: Counter[int] = Counter()  # by holder
        for posting in _released(t, community):
            account = t.accounts[posting.account_id]
            if account.kind == MEMBER:
                given[account.member_id] += posting.amount
            if posting.holder_id is not None:
                received[posting.holder_id] -= posting.amount
        return [
            PeerFacts(
                member=MemberId(m.id),
                name=m.name,
                role=Role(m.role),
                expertise=expertise.get(m.id, {}),
                languages=tuple(_load(m.languages)),
                capacity=m.capacity,
                paused_until=m.paused_until,
                open_reviews=assigned[m.id] + offered[m.id],
                reviews_recent=recent[m.id],
                last_offer_at=last_offer.get(m.id),
                given=given[m.id],
                received=received[m.id],
            )
            for m in members
        ]


# -- the unit of work -------------------------------------------------------------------


class MemoryCrossRequests:
    def __init__(self, x: _Txn) -> None:
        self._x = x

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
        t = self._x.writing()
        _exists(t.requests, request, "cross_requests.request_id")
        if xid in t.cross_requests or any(
            c.record.request == request for c in t.cross_requests.values()
        ):
            return False
        record = CrossRequest(request, partner, xid, role, remote_ref)
        t.cross_requests.put(xid, _CrossRow(int(community), record))
        return True

    async def by_xid(self, xid: str) -> CrossRequest | None:
        row = self._x.t.cross_requests.get(xid)
        return row.record if row else None

    async def of_request(self, request: RequestId) -> CrossRequest | None:
        return next(
            (c.record for c in self._x.t.cross_requests.values() if c.record.request == request),
            None,
        )

    async def set_remote(self, xid: str, remote_ref: str) -> None:
        t = self._x.writing()
        row = t.cross_requests.get(xid)
        if row is not None:
            t.cross_requests.put(
                xid, replace(row, record=replace(row.record, remote_ref=remote_ref))
            )

    async def all(self, community: CommunityId) -> list[CrossRequest]:
        return [c.record for c in self._x.t.cross_requests.values() if c.community_id == community]

    async def last_heard(self, partner: str) -> datetime | None:
        prefix = f"federation:{partner}:"
        times = [at for key, at in self._x.t.events.items() if key.startswith(prefix)]
        return max(times) if times else None

    async def waiting(self, partner: str) -> int:
        return sum(
            1
            for row in self._x.t.outbox.values()
            if row.message.platform == "federation"
            and row.message.to == partner
            and row.sent_at is None
        )

    async def transfers(self, partner: str) -> dict[str, int]:
        t = self._x.t
        identity = t.identities.get(("federation", partner))
        if identity is None:
            return {}
        mirror = {a.id for a in t.accounts.values() if a.member_id == identity.member_id}
        found: dict[str, int] = {}
        for row in t.cross_requests.values():
            cross = row.record
            request = t.requests.get(cross.request)
            if cross.partner != partner or request is None or request.status != "confirmed":
                continue
            moved = sum(
                p.amount
                for p in t.postings.values()
                if p.account_id in mirror
                and t.transactions[p.transaction_id].request_id == request.id
            )
            found[cross.xid] = moved if cross.role == "origin" else -moved
        return found


class MemoryTexts:
    """The corpus built afresh from the committed tables on every call (the SQL store
    keeps one and catches up; tests/store/test_texts.py proves the two agree). Like the
    SQL store's, it leaves out this unit's own uncommitted changes."""

    def __init__(self, database: MemoryDatabase) -> None:
        self._database = database

    async def corpus(self, community: CommunityId) -> Corpus:
        t = self._database.tables
        corpus = Corpus()
        members = {m.id: m for m in t.members.values() if m.community_id == community}
        for idea in t.ideas.values():
            if idea.community_id == community:
                owner = members.get(idea.owner_id)
                hint = (owner.language or owner.locale) if owner else None
                text = answer_text(json.loads(idea.answers))
                corpus.put_idea(IdeaText(idea.number, idea.owner_id, text, _hint(hint)))
        numbers = {i.id: i.number for i in t.ideas.values()}
        reviewed: dict[int, list[int]] = defaultdict(list)
        for r in sorted(t.requests.values(), key=lambda r: r.id):
            if r.community_id == community and r.peer_id is not None:
                if r.rating is not None and r.rating >= GOOD_RATING:
                    reviewed[r.peer_id].append(numbers[r.idea_id])
        for m in members.values():
            corpus.put_peer(
                PeerText(m.id, m.bio, _hint(m.language or m.locale), tuple(reviewed[m.id]))
            )
        return corpus

    async def peer_changed(self, member: MemberId) -> None:
        return None  # every call rebuilds from the tables


def _hint(language: str | None) -> str | None:
    return language.split("-")[0].lower() if language else None


class MemoryUnitOfWork:
    """One transaction on a `MemoryDatabase`; rolled back unless committed."""

    communities: MemoryCommunities
    members: MemoryMembers
    ledger: MemoryLedger
    events: MemoryEventLog
    outbox: MemoryOutbox
    conversations: MemoryConversations
    ideas: MemoryIdeas
    requests: MemoryRequests
    links: MemoryLinks
    introductions: MemoryIntroductions
    stats: MemoryStatsQueries
    find: MemoryFindQueries
    routing: MemoryRoutingQueries
    texts: MemoryTexts
    cross: MemoryCrossRequests

    def __init__(
        self, database: MemoryDatabase, read_only: bool = False, busy: bool = False
    ) -> None:
        self._database = database
        self._read_only = read_only
        self._busy = busy
        self._txn: _Txn | None = None
        self._holds_lock = False

    async def __aenter__(self) -> Self:
        database = self._database
        if self._read_only:
            if self._busy:
                raise StoreBusy("the memory store was told its readers are busy")
        else:
            task = asyncio.current_task()
            if task is not None and database.writer is task:
                raise RuntimeError(
                    "a unit of work is already open in this task: a second one would wait "
                    "for it forever (on SQLite too)"
                )
            await database.lock.acquire()
            database.writer = task
            self._holds_lock = True
        x = self._txn = _Txn(database, self._read_only)
        self.communities = MemoryCommunities(x)
        self.members = MemoryMembers(x)
        self.ledger = MemoryLedger(x)
        self.events = MemoryEventLog(x)
        self.outbox = MemoryOutbox(x)
        self.conversations = MemoryConversations(x)
        self.ideas = MemoryIdeas(x)
        self.requests = MemoryRequests(x)
        self.links = MemoryLinks(x)
        self.introductions = MemoryIntroductions(x)
        self.stats = MemoryStatsQueries(x)
        self.find = MemoryFindQueries(x)
        self.routing = MemoryRoutingQueries(x)
        self.texts = MemoryTexts(database)
        self.cross = MemoryCrossRequests(x)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._txn is not None:
            self._txn.close()  # what was not committed is dropped with it
            self._txn = None
        if self._holds_lock:
            self._holds_lock = False
            self._database.writer = None
            self._database.lock.release()

    def _open(self) -> _Txn:
        assert self._txn is not None, "use the unit of work in `async with`"
        return self._txn

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._open().commit()

    async def rollback(self) -> None:
        self._open().begin()


class MemoryUnitOfWorkFactory:
    """Units of work on one in-memory database (a new, empty one unless given).

    Set `busy_readers` to make read-only units raise `StoreBusy` when they begin, as a
    momentarily locked SQLite file or a dropped PostgreSQL connection does."""

    def __init__(self, database: MemoryDatabase | None = None) -> None:
        self.database = database if database is not None else MemoryDatabase()
        self.busy_readers = False

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.database)

    def reading(self, single: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.database, read_only=True, busy=self.busy_readers)
