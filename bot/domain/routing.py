"""Ranking of peers for one review request (SPEC §5): who may be offered it, in what order, why.

Pure: the core builds :class:`Peer` snapshots from the store, passes the current time in,
and gets back :class:`Candidate` rows, best first, each with the one-line explanation the
offer stores. No I/O, no clock, no database.

Eligible: not the requester or a co-owner; not paused; fewer open reviews than capacity;
not already offered, declined or expired on this request; no conflict declared with the
requester; speaks one of the idea's languages when both sides' languages are known.

Order, best first:

1. expertise, as a threshold: peers who hold at least one of the needed tags at
   ``Policy.qualifying_level`` or above (everyone, when no tag is needed) come before
   those who hold none. Among qualified peers a higher level or a second matching tag
   gives no advantage: expertise decides *who may* review, fairness *who is asked*;
2. rest: longer since the last offer, counted up to ``Policy.rest_days`` (never offered
   counts as rested). Everyone asked within those days waits behind everyone who was
   not, oldest offer first, so a peer who ignores offers is asked at most once in that
   time while rested peers are available;
3. fairness: fewer reviews in the fairness window; then, among qualified rested peers
   with as many reviews, text affinity with the idea (SPEC §14: their bio and the ideas
   they reviewed well share its words), higher first; then the oldest last offer (never
   offered before any offer);
4. reciprocity: more SIF received than given first, counted up to ``Policy.reciprocity_cap``;
5. member id ascending, so the order is total and the same on every run.

Why it is fast: keys 3-5 are properties of the peer, so :class:`PeerIndex` sorts the
peers by them once (one ``np.lexsort``) and keeps every column in that order; the
position of a row *is* its rank on keys 3-5. Key 1 depends on the request and key 2 on
the time, each a yes/no: ranking computes both columns for the needed tags and ``now``,
combines them with eligibility into a level per row (qualified and rested best) and
takes the first rows of the best level, then of the next one while fewer than ``limit``
were found. Rested rows are taken in row order; peers asked within the rest days are
ordered by their last offer, then by row, which sorts only the rows of that one level.
That is a few vectorised O(n) passes over small integer columns and usually no sort at
request time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter, methodcaller
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from bot.domain.ids import MemberId
from bot.domain.records import PeerFacts

MIN_LEVEL, MAX_LEVEL = 1, 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# "Never offered" sorts before any real instant, so such peers are asked first.
_NEVER = int(np.iinfo(np.int64).min)
_WORD_BITS = 64
_WORD_MASK = (1 << _WORD_BITS) - 1
# A tag column is kept dense (one int8 per peer) once that costs no more memory than its
# sparse form (an 8-byte row index and an int8 level per holder): dense sums are several
# times faster than scattered adds, and rare tags stay cheap to store and to add.
_SPARSE_BYTES_PER_HOLDER = 9

# The level `rank` gives eligible rows that are qualified and rested (the best).
_QUALIFIED_RESTED = 4

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Rows = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True)
class Peer:
    """One member as the router sees them; the core builds these from the store."""

    member: MemberId
    name: str
    expertise: Mapping[str, int]  # tag -> level 1..3
    languages: frozenset[str]  # lower-case names; empty = unknown
    capacity: int  # most open reviews at once (0 = none)
    open_reviews: int  # offered-and-accepted but not finished
    paused: bool
    reviews_90d: int  # reviews delivered within Policy.fairness_window_days
    last_offer_at: datetime | None  # last time this peer was offered any request
    given: int  # lifetime SIF earned by reviewing (hundredths)
    received: int  # lifetime SIF paid for reviews they received (hundredths)
    conflicts: frozenset[MemberId] = frozenset()  # members this peer declared a conflict with


@dataclass(frozen=True)
class Need:
    """The request being routed."""

    requester: MemberId
    co_owners: frozenset[MemberId]
    tags: tuple[str, ...]  # needed expertise tags, may be empty; a repeated tag counts once
    languages: frozenset[str]  # the idea's languages, lower-case; empty = unknown
    excluded: frozenset[MemberId]  # already offered / declined / expired on this request


@dataclass(frozen=True)
class Policy:
    """Thresholds and limits of the ranking; a community may change them.

    ``qualifying_level``: the lowest level at which a needed tag qualifies a peer (1: any
    level the peer declared).
    ``rest_days``: a peer asked within this many days waits behind peers who were not
    (0: no rest, fairness alone decides).
    ``fairness_window_days`` is the window the core counts ``Peer.reviews_90d`` over; the
    router only names it in explanations ("1 review in 90 days").
    ``reciprocity_cap`` (hundredths): how far received-minus-given moves a peer forward;
    beyond it a larger balance counts no more, and a balance of zero or below (gave at
    least as much as received) counts as zero, so generous reviewers are not pushed back.
    """

    qualifying_level: int = MIN_LEVEL
    rest_days: float = 2.0
    fairness_window_days: int = 90
    reciprocity_cap: int = 1000

    def __post_init__(self) -> None:
        if not MIN_LEVEL <= self.qualifying_level <= MAX_LEVEL:
            raise ValueError(f"qualifying_level must be {MIN_LEVEL}..{MAX_LEVEL}")
        if not 0 <= self.rest_days <= 3650:
            raise ValueError("rest_days must be 0..3650")
        if self.fairness_window_days < 1:
            raise ValueError("fairness_window_days must be at least 1")
        if self.reciprocity_cap < 0:
            raise ValueError("reciprocity_cap must not be negative")

    @property
    def rest(self) -> timedelta:
        return timedelta(days=self.rest_days)


@dataclass(frozen=True)
class Candidate:
    """A peer the request may be offered to, with the reason in one line for people."""

    member: MemberId
    name: str
    qualified: bool  # holds a needed tag at the qualifying level (or none is needed)
    match: int  # sum over needed tags of the peer's level (0 when none needed); shown only
    explanation: str
    affinity: float = 0.0  # the text affinity the ranking weighed (0: none, or not asked)


def _instant(moment: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware datetime (exact, for sorting)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware (UTC): {moment!r}")
    return (moment - _EPOCH) // _MICROSECOND


def _needed_tags(need: Need) -> tuple[str, ...]:
    """The need's tags in their order, each once (a repeated tag must not double a match)."""
    return tuple(dict.fromkeys(need.tags))


def why_not_eligible(peer: Peer, need: Need) -> str | None:
    """The first rule of SPEC §5 that keeps ``peer`` from being offered ``need``, or None."""
    if peer.member == need.requester:
        return "is the requester"
    if peer.member in need.co_owners:
        return "is a co-owner of the idea"
    if peer.member in need.excluded:
        return "declined or already offered"
    if peer.paused:
        return "paused"
    if peer.capacity <= 0:
        return "takes no reviews (capacity 0)"
    if peer.open_reviews >= peer.capacity:
        return f"at capacity ({peer.open_reviews} of {peer.capacity} open)"
    if need.requester in peer.conflicts:
        return "declared a conflict with the requester"
    if peer.languages and need.languages and not peer.languages & need.languages:
        return "speaks none of the idea's languages"
    return None


@dataclass
class _Columns:
    """What a :class:`PeerIndex` is built from, by slot (0..n-1): from a list of
    :class:`Peer` (`_columns_of`) or from a :class:`PeerTable` (`PeerTable.index`)."""

    members: Ints
    reviews: Ints
    last: Ints  # microseconds since the epoch; _NEVER when never offered
    owed: Ints  # received - given, clipped to 0..reciprocity_cap
    available: Bools  # has room and is not paused
    tags: dict[str, tuple[Rows, npt.NDArray[np.int8]]]  # tag -> (slots ascending, levels)
    language_bit: dict[str, int]
    language_words: list[npt.NDArray[np.uint64]]  # by slot
    languages_known: Bools
    declared_against: dict[int, Rows]  # member -> slots of the peers declaring a conflict
    slot_of: Callable[[int], int | None]  # member -> slot
    peer: Callable[[int], Peer]  # slot -> the Peer it stands for


class PeerIndex:
    """A snapshot of the community's peers prepared for fast ranking.

    Columns are numpy arrays in rank order on the request-independent keys (see the module
    docstring), so a row number is a rank; tags are dense or sparse level columns;
    languages are bitmasks. Building it is a few O(n) passes and one sort; ranking one
    request is a few vectorised passes over the columns, never a Python loop over the
    peers. Made from a list of :class:`Peer`, or for each routing round from a
    :class:`PeerTable` kept up to date as peers change (no pass over Peer objects then).
    """

    def __init__(self, peers: Sequence[Peer], policy: Policy = Policy()) -> None:
        self._build(_columns_of(tuple(peers), policy), policy)

    @classmethod
    def _of(cls, columns: _Columns, policy: Policy) -> PeerIndex:
        index = cls.__new__(cls)
        index._build(columns, policy)
        return index

    def _build(self, columns: _Columns, policy: Policy) -> None:
        self._policy = policy
        self._slot_of = columns.slot_of
        self._peer_of = columns.peer
        members = columns.members
        n = self._n = len(members)
        self._members = members
        # members in id order with their rows, made when an affinity is first ranked
        self._by_member: tuple[Ints, Rows] | None = None
        # lexsort's last key is the primary one.
        order: Rows = np.lexsort((members, -columns.owed, columns.last, columns.reviews))
        row_of: Rows = np.empty(n, dtype=np.intp)
        row_of[order] = np.arange(n, dtype=np.intp)
        self._peer_at = order  # row -> slot
        self._row_of = row_of  # slot -> row
        self._reviews: Ints = columns.reviews[order]
        self._last: Ints = columns.last[order]
        self._owed: Ints = columns.owed[order]
        # Eligibility that does not depend on the request, computed once.
        self._available: Bools = columns.available[order]
        self._run_ends()
        self._index_tags(columns.tags)
        self._language_bit = columns.language_bit
        self._language_words = [column[order] for column in columns.language_words]
        self._languages_known: Bools = columns.languages_known[order]
        self._declared_against = {
            member: row_of[slots] for member, slots in columns.declared_against.items()
        }

    def __len__(self) -> int:
        return self._n

    @property
    def policy(self) -> Policy:
        return self._policy

    def rank(
        self,
        need: Need,
        now: datetime,
        limit: int,
        affinity: Mapping[MemberId, float] | None = None,
    ) -> list[Candidate]:
        """The eligible peers for ``need``, best first, at most ``limit`` of them.

        ``affinity``: each peer's text affinity with the idea (missing: none); among
        qualified rested peers with as many reviews in the window, higher goes first."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        moment = _instant(now)  # also refuses a naive time before it reaches an explanation
        if limit == 0 or not self._n:
            return []
        tags = _needed_tags(need)
        eligible = self._eligible(need)
        qualified = self._qualified(tags)
        rested = self._last <= moment - self._policy.rest // _MICROSECOND
        # Level 0 holds the ineligible rows; then unqualified recent, unqualified rested,
        # qualified recent, qualified rested (best).
        levels = np.add(qualified, qualified, dtype=np.int8)
        levels += rested
        levels += 1
        np.multiply(levels, eligible, out=levels)
        chosen: list[int] = []
        close = self._affinity_column(affinity) if affinity else None
        # The best level usually holds `limit` rows, so this stops after a pass or two.
        for level in range(int(levels.max()), 0, -1):
            rows = np.flatnonzero(levels == level)
            wanted = limit - len(chosen)
            if level == _QUALIFIED_RESTED and close is not None and len(rows):
                chosen.extend(self._by_affinity(rows, close, wanted))
            elif level % 2 == 0:
                # Rested: row order is the order on the remaining keys.
                chosen.extend(rows[:wanted].tolist())
            else:
                # Asked within the rest days: the oldest last offer first, then row order.
                chosen.extend(rows[np.lexsort((rows, self._last[rows]))[:wanted]].tolist())
            if len(chosen) >= limit:
                break
        return [self._candidate(row, tags, eligible, qualified, now, close) for row in chosen]

    def why_not(self, member: MemberId, need: Need) -> str | None:
        """None when ``member`` may be offered ``need``, else a short reason for people."""
        slot = self._slot_of(member)
        if slot is None:
            return "not a member of this snapshot"
        return why_not_eligible(self._peer_of(slot), need)

    def _affinity_column(self, affinity: Mapping[MemberId, float]) -> Floats:
        """The affinities by row (0 for peers not named, and names not peers here)."""
        column = np.zeros(self._n, dtype=np.float64)
        count = len(affinity)
        members = np.fromiter(affinity.keys(), np.int64, count=count)
        values = np.fromiter(affinity.values(), np.float64, count=count)
        if self._by_member is None:
            order = np.argsort(self._members)
            self._by_member = (self._members[order], self._row_of[order])
        ids, rows = self._by_member
        at = np.clip(np.searchsorted(ids, members), 0, max(len(ids) - 1, 0))
        known = ids[at] == members if len(ids) else np.zeros(count, np.bool_)
        column[rows[at[known]]] = values[known]
        return column

    def _by_affinity(self, rows: Rows, close: Floats, wanted: int) -> list[int]:
        """The first ``wanted`` of ``rows`` (one level, in row order) by reviews in the
        window, then affinity (higher first), then row order."""
        reviews = self._reviews[rows]
        # Rows are in order of reviews: only those with no more reviews than the
        # `wanted`-th row can be among the first `wanted`.
        last = reviews[min(wanted, len(rows)) - 1]
        head = rows[: int(np.searchsorted(reviews, last, side="right"))]
        order = np.lexsort((head, -close[head], self._reviews[head]))
        taken: list[int] = head[order][:wanted].tolist()
        return taken

    # building

    def _run_ends(self) -> None:
        """For each row, where its run of equal fairness keys ends, with and without owed.

        Rows between the two ends share the row's request-independent keys except for a
        smaller reciprocity balance; an eligible one with the same match is a peer this
        row was put ahead of *because of* reciprocity, which is when the explanation
        mentions it.
        """
        n = self._n
        same_fairness = (self._reviews[1:] == self._reviews[:-1]) & (
            self._last[1:] == self._last[:-1]
        )
        same_owed = same_fairness & (self._owed[1:] == self._owed[:-1])
        self._fairness_end = _run_ends(same_fairness, n)
        self._owed_end = _run_ends(same_owed, n)

    def _index_tags(self, tags: dict[str, tuple[Rows, npt.NDArray[np.int8]]]) -> None:
        n = self._n
        self._dense: dict[str, npt.NDArray[np.int8]] = {}
        self._sparse: dict[str, tuple[Rows, npt.NDArray[np.int8]]] = {}
        for tag, (slots, levels) in tags.items():
            if not len(slots):
                continue
            rows = self._row_of[slots]
            if len(slots) * _SPARSE_BYTES_PER_HOLDER >= n:
                column = np.zeros(n, dtype=np.int8)
                column[rows] = levels
                self._dense[tag] = column
            else:
                # Rows ascending within a tag, so sparse adds walk memory forwards.
                ascending = np.argsort(rows, kind="stable")
                self._sparse[tag] = (rows[ascending], levels[ascending])

    # ranking

    def _rows(self, members: Iterable[MemberId]) -> Rows:
        slots = [s for m in members if (s := self._slot_of(m)) is not None]
        rows: Rows = self._row_of[np.array(slots, dtype=np.intp)]
        return rows

    def _eligible(self, need: Need) -> Bools:
        eligible = self._available.copy()
        eligible[self._rows(need.co_owners | need.excluded | {need.requester})] = False
        against = self._declared_against.get(need.requester)
        if against is not None:
            eligible[against] = False
        if need.languages:
            wanted = sum(
                1 << bit
                for lang in need.languages
                if (bit := self._language_bit.get(lang)) is not None
            )
            speaks = np.zeros(self._n, dtype=np.bool_)
            for word, column in enumerate(self._language_words):
                part = (wanted >> (word * _WORD_BITS)) & _WORD_MASK
                if part:
                    speaks |= (column & np.uint64(part)) != 0
            # Peers whose languages are unknown stay eligible; the rest must share one.
            eligible &= speaks | ~self._languages_known
        return eligible

    def _qualified(self, tags: Sequence[str]) -> Bools:
        """Rows holding at least one of ``tags`` at the qualifying level; all, when none."""
        n = self._n
        if not tags:
            return np.ones(n, dtype=np.bool_)
        level = self._policy.qualifying_level
        qualified = np.zeros(n, dtype=np.bool_)
        for tag in tags:
            column = self._dense.get(tag)
            if column is not None:
                qualified |= column >= level
            elif (sparse := self._sparse.get(tag)) is not None:
                rows, levels = sparse
                qualified[rows[levels >= level]] = True
        return qualified

    def _reciprocity_mattered(self, row: int, eligible: Bools, qualified: Bools) -> bool:
        if self._owed[row] <= 0:
            return False
        start, stop = int(self._owed_end[row]), int(self._fairness_end[row])
        if start >= stop:
            return False
        # Rows of one fairness run share the last offer, so they are equally rested too.
        same = eligible[start:stop] & (qualified[start:stop] == qualified[row])
        return bool(np.any(same))

    def _candidate(
        self,
        row: int,
        tags: Sequence[str],
        eligible: Bools,
        qualified: Bools,
        now: datetime,
        close: Floats | None = None,
    ) -> Candidate:
        peer = self._peer_of(int(self._peer_at[row]))
        parts = [
            _expertise_phrase(peer, tags, self._policy.qualifying_level),
            _reviews_phrase(peer.reviews_90d, self._policy.fairness_window_days),
            _last_offer_phrase(peer.last_offer_at, now),
        ]
        if self._reciprocity_mattered(row, eligible, qualified):
            parts.append(f"received {_sif(peer.received - peer.given)} more than given")
        match = sum(peer.expertise.get(tag, 0) for tag in tags)
        affinity = float(close[row]) if close is not None else 0.0
        return Candidate(
            peer.member, peer.name, bool(qualified[row]), match, "; ".join(parts), affinity
        )


def _columns_of(peers: tuple[Peer, ...], policy: Policy) -> _Columns:
    """The columns of a list of peers; a peer's slot is its place in the list."""
    n = len(peers)
    members = _int_column(peers, "member")
    position: dict[int, int] = dict(zip(members.tolist(), range(n), strict=True))
    if len(position) != n:
        raise ValueError("each member may appear only once in a snapshot")
    owed = np.clip(
        _int_column(peers, "received") - _int_column(peers, "given"), 0, policy.reciprocity_cap
    )
    paused = np.fromiter(map(attrgetter("paused"), peers), np.bool_, count=n)
    has_room = _int_column(peers, "open_reviews") < _int_column(peers, "capacity")
    bit, words, known = _language_columns(list(map(attrgetter("languages"), peers)))
    return _Columns(
        members=members,
        reviews=_int_column(peers, "reviews_90d"),
        last=np.fromiter(_last_offer_keys(peers), np.int64, count=n),
        owed=owed,
        available=has_room & ~paused,
        tags=_tag_columns(peers),
        language_bit=bit,
        language_words=words,
        languages_known=known,
        declared_against=_conflict_columns(peers),
        slot_of=position.get,
        peer=peers.__getitem__,
    )


def _tag_columns(peers: Sequence[Peer]) -> dict[str, tuple[Rows, npt.NDArray[np.int8]]]:
    """Each tag's holders (slots ascending) and their levels; refuses a level out of range."""
    n = len(peers)
    expertise = list(map(attrgetter("expertise"), peers))
    holdings = np.fromiter(map(len, expertise), np.intp, count=n)
    tags = list(chain.from_iterable(expertise))
    level_lists = map(methodcaller("values"), expertise)
    levels = np.array(list(chain.from_iterable(level_lists)), dtype=np.int64)
    bad = np.flatnonzero((levels < MIN_LEVEL) | (levels > MAX_LEVEL))
    if len(bad):
        at = int(bad[0])
        holder = peers[int(np.searchsorted(np.cumsum(holdings), at, side="right"))]
        raise ValueError(
            f"member {holder.member}: level of {tags[at]!r} must be "
            f"{MIN_LEVEL}..{MAX_LEVEL}, not {levels[at]}"
        )
    slots = np.repeat(np.arange(n, dtype=np.intp), holdings)
    tag_code = {tag: code for code, tag in enumerate(dict.fromkeys(tags))}
    codes = np.fromiter(map(tag_code.__getitem__, tags), np.intp, count=len(tags))
    by_tag = np.lexsort((slots, codes))
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(tag_code)))))
    columns = {}
    for tag, code in tag_code.items():
        held = by_tag[bounds[code] : bounds[code + 1]]
        columns[tag] = (slots[held], levels[held].astype(np.int8))
    return columns


def _language_columns(
    spoken: Sequence[frozenset[str]],
) -> tuple[dict[str, int], list[npt.NDArray[np.uint64]], Bools]:
    """Each language's bit, the bitmask words by slot, and whether any language is known."""
    n = len(spoken)
    # Peers share few distinct language sets, so each set's bitmask is computed once.
    distinct = set(spoken)
    vocabulary = sorted(set(chain.from_iterable(distinct)))
    language_bit = {lang: bit for bit, lang in enumerate(vocabulary)}
    mask_of = {s: sum(1 << language_bit[lang] for lang in s) for s in distinct}
    masks = list(map(mask_of.__getitem__, spoken))
    known = np.fromiter(map(bool, spoken), np.bool_, count=n)
    return language_bit, _mask_words(masks, len(vocabulary)), known


def _mask_words(masks: Sequence[int], bits: int) -> list[npt.NDArray[np.uint64]]:
    """Bitmasks as columns of uint64 words, one word per 64 languages."""
    n = len(masks)
    words = max(1, -(-bits // _WORD_BITS))
    if words == 1:
        return [np.fromiter(masks, np.uint64, count=n)]
    return [
        np.fromiter(
            ((mask >> (word * _WORD_BITS)) & _WORD_MASK for mask in masks),
            dtype=np.uint64,
            count=n,
        )
        for word in range(words)
    ]


def _conflict_columns(peers: Sequence[Peer]) -> dict[int, Rows]:
    declared = list(map(attrgetter("conflicts"), peers))
    declared_against: dict[int, list[int]] = {}
    # Few peers declare conflicts; visit only those.
    for slot in np.flatnonzero(np.fromiter(map(bool, declared), np.bool_)).tolist():
        for other in declared[slot]:
            declared_against.setdefault(other, []).append(slot)
    return {member: np.array(slots, dtype=np.intp) for member, slots in declared_against.items()}


def rank(
    peers: Sequence[Peer],
    need: Need,
    now: datetime,
    limit: int,
    policy: Policy = Policy(),
    affinity: Mapping[MemberId, float] | None = None,
) -> list[Candidate]:
    """Convenience for one request: ``PeerIndex(peers, policy).rank(need, now, limit)``."""
    return PeerIndex(peers, policy).rank(need, now, limit, affinity)


def _int_column(peers: Sequence[Peer], field: str) -> Ints:
    column: Ints = np.fromiter(map(attrgetter(field), peers), np.int64, count=len(peers))
    return column


def _last_offer_keys(peers: Sequence[Peer]) -> list[int]:
    """Each peer's last offer in microseconds since the epoch; never offered sorts first."""
    try:
        # Subtracting an aware epoch refuses naive datetimes, which _instant() would too,
        # without a Python call per peer.
        return [
            _NEVER if moment is None else (moment - _EPOCH) // _MICROSECOND
            for moment in map(attrgetter("last_offer_at"), peers)
        ]
    except TypeError:
        for peer in peers:
            if peer.last_offer_at is not None:
                _instant(peer.last_offer_at)  # raises the ValueError naming the datetime
        raise


def _run_ends(same_as_previous: Bools, n: int) -> Rows:
    """For each of ``n`` rows, the index one past the end of its run of equal rows."""
    starts_run = np.concatenate(([True], ~same_as_previous)) if n else np.zeros(0, np.bool_)
    run_of_row = np.cumsum(starts_run) - 1
    starts = np.flatnonzero(starts_run)
    ends = np.append(starts[1:], n).astype(np.intp)
    result: Rows = ends[run_of_row]
    return result


def _expertise_phrase(peer: Peer, tags: Sequence[str], qualifying_level: int) -> str:
    if not tags:
        return "no expertise asked for"
    held = [(tag, peer.expertise[tag]) for tag in tags if tag in peer.expertise]
    matched = [f"{tag}:{level}" for tag, level in held if level >= qualifying_level]
    if matched:
        return "matches " + ", ".join(matched)
    if held:
        below = ", ".join(f"{tag}:{level}" for tag, level in held)
        return f"matches only {below} (level {qualifying_level} wanted)"
    return "matches none of " + ", ".join(tags)


def _reviews_phrase(reviews: int, window_days: int) -> str:
    return f"{_count(reviews, 'review')} in {window_days} days"


def _last_offer_phrase(last_offer_at: datetime | None, now: datetime) -> str:
    if last_offer_at is None:
        return "never offered"
    seconds = (now - last_offer_at).total_seconds()
    if seconds < 60:  # includes a last offer stamped slightly after `now` by another clock
        return "last offer just now"
    if seconds < 3600:
        return f"last offer {_count(int(seconds // 60), 'minute')} ago"
    if seconds < 86400:
        return f"last offer {_count(int(seconds // 3600), 'hour')} ago"
    return f"last offer {_count(int(seconds // 86400), 'day')} ago"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _sif(hundredths: int) -> str:
    whole, cents = divmod(hundredths, 100)
    return f"{whole}.{cents:02d} SIF"


@dataclass(frozen=True)
class Activity:
    """What changes with every offer, by member (members not named: none): open reviews
    (offered or accepted, not finished), reviews delivered in the fairness window, the
    last offer, and lifetime SIF given and received in reviews (hundredths)."""

    open_reviews: Mapping[int, int]
    reviews: Mapping[int, int]
    last_offer_at: Mapping[int, datetime]
    given: Mapping[int, int]
    received: Mapping[int, int]


@dataclass(frozen=True, slots=True)  # one per peer: no __dict__ each
class _Static:
    name: str
    expertise: Mapping[str, int]
    languages: frozenset[str]
    capacity: int
    paused_until: datetime | None


class PeerTable:
    """One community's peers, kept from one routing round to the next and changed one
    peer at a time (`put`, `drop`); `index` makes the round's :class:`PeerIndex` from it
    and the peers' :class:`Activity` then, with numpy passes over columns kept here, so a
    round costs no Python pass over the peers. Only peers who may be offered a review then
    (room left, not paused) are in the index, as when it is built from the list of them.
    Conflicts are not kept (the store records none)."""

    def __init__(self) -> None:
        self._position: dict[int, int] = {}  # member -> position
        self._size = 0  # positions used, dropped ones included
        self._dropped = 0
        self._statics: list[_Static | None] = []
        self._members: Ints = np.zeros(0, np.int64)
        self._capacity: Ints = np.zeros(0, np.int64)
        self._paused_until: Ints = np.zeros(0, np.int64)  # _NEVER when not paused
        self._present: Bools = np.zeros(0, np.bool_)
        self._known: Bools = np.zeros(0, np.bool_)
        self._levels: dict[str, npt.NDArray[np.int8]] = {}
        self._language_bit: dict[str, int] = {}
        self._words: list[npt.NDArray[np.uint64]] = [np.zeros(0, np.uint64)]

    def __len__(self) -> int:
        return len(self._position)

    def __contains__(self, member: object) -> bool:
        return member in self._position

    def put(
        self,
        member: MemberId,
        name: str,
        expertise: Mapping[str, int],
        languages: frozenset[str],
        capacity: int,
        paused_until: datetime | None,
    ) -> None:
        """Add or replace a member's facts; one who is no peer (no expertise, or capacity
        0) is dropped."""
        if not expertise or capacity <= 0:
            self.drop(member)
            return
        for tag, level in expertise.items():
            if not MIN_LEVEL <= level <= MAX_LEVEL:
                raise ValueError(
                    f"member {member}: level of {tag!r} must be {MIN_LEVEL}..{MAX_LEVEL}, "
                    f"not {level}"
                )
        position = self._position.get(member)
        if position is None:
            position = self._append(member)
        else:
            old = self._statics[position]
            for tag in old.expertise if old is not None else ():
                self._levels[tag][position] = 0
        self._statics[position] = _Static(name, dict(expertise), languages, capacity, paused_until)
        self._capacity[position] = capacity
        self._paused_until[position] = _NEVER if paused_until is None else _instant(paused_until)
        for tag, level in expertise.items():
            column = self._levels.get(tag)
            if column is None:
                column = self._levels[tag] = np.zeros(len(self._members), np.int8)
            column[position] = level
        mask = 0
        for language in languages:
            bit = self._language_bit.setdefault(language, len(self._language_bit))
            mask |= 1 << bit
        while len(self._words) * _WORD_BITS < len(self._language_bit):
            self._words.append(np.zeros(len(self._members), np.uint64))
        for word, bits in enumerate(self._words):
            bits[position] = (mask >> (word * _WORD_BITS)) & _WORD_MASK
        self._known[position] = bool(languages)

    def drop(self, member: MemberId) -> None:
        """Forget a member (no longer a peer, or gone); nothing when not here."""
        position = self._position.pop(member, None)
        if position is None:
            return
        self._present[position] = False
        self._statics[position] = None
        self._dropped += 1
        if self._dropped > max(1024, self._size // 2):
            self._compact()

    def index(self, activity: Activity, now: datetime, policy: Policy = Policy()) -> PeerIndex:
        """The round's index: the peers who may be offered a review at ``now``."""
        n = self._size
        moment = _instant(now)
        open_reviews = self._scatter(activity.open_reviews, 0)
        free = self._present[:n] & (open_reviews < self._capacity[:n])
        free &= self._paused_until[:n] <= moment
        keep: Rows = np.flatnonzero(free)
        slot_at = np.full(n, -1, dtype=np.intp)
        slot_at[keep] = np.arange(len(keep), dtype=np.intp)
        last = self._scatter({m: _instant(at) for m, at in activity.last_offer_at.items()}, _NEVER)
        reviews = self._scatter(activity.reviews, 0)
        given = self._scatter(activity.given, 0)
        received = self._scatter(activity.received, 0)
        tags: dict[str, tuple[Rows, npt.NDArray[np.int8]]] = {}
        for tag, column in self._levels.items():
            levels = column[keep]
            held = np.flatnonzero(levels)
            if len(held):
                tags[tag] = (held, levels[held])
        position = self._position
        statics = self._statics

        def slot_of(member: int) -> int | None:
            at = position.get(member)
            slot = -1 if at is None else int(slot_at[at])
            return None if slot < 0 else slot

        def peer(slot: int) -> Peer:
            at = int(keep[slot])
            facts = statics[at]
            assert facts is not None
            member = int(self._members[at])
            return Peer(
                member=MemberId(member),
                name=facts.name,
                expertise=facts.expertise,
                languages=facts.languages,
                capacity=facts.capacity,
                open_reviews=int(open_reviews[at]),
                paused=False,
                reviews_90d=int(reviews[at]),
                last_offer_at=activity.last_offer_at.get(member),
                given=int(given[at]),
                received=int(received[at]),
            )

        columns = _Columns(
            members=self._members[keep],
            reviews=reviews[keep],
            last=last[keep],
            owed=np.clip(received[keep] - given[keep], 0, policy.reciprocity_cap),
            available=np.ones(len(keep), np.bool_),
            tags=tags,
            language_bit=dict(self._language_bit),
            language_words=[column[keep] for column in self._words],
            languages_known=self._known[keep],
            declared_against={},
            slot_of=slot_of,
            peer=peer,
        )
        return PeerIndex._of(columns, policy)

    def _scatter(self, values: Mapping[int, int], default: int) -> Ints:
        """A column by position of ``values`` by member (``default`` elsewhere)."""
        column = np.full(self._size, default, dtype=np.int64)
        if values:
            position = self._position
            pairs = [(at, v) for m, v in values.items() if (at := position.get(m)) is not None]
            if pairs:
                at_, v_ = zip(*pairs, strict=True)
                column[np.array(at_, dtype=np.intp)] = np.array(v_, dtype=np.int64)
        return column

    def _append(self, member: MemberId) -> int:
        position = self._size
        if position == len(self._members):
            grown = max(16, 2 * position)
            self._members = _grow(self._members, grown)
            self._capacity = _grow(self._capacity, grown)
            self._paused_until = _grow(self._paused_until, grown)
            self._present = _grow(self._present, grown)
            self._known = _grow(self._known, grown)
            self._levels = {tag: _grow(column, grown) for tag, column in self._levels.items()}
            self._words = [_grow(column, grown) for column in self._words]
        self._size += 1
        self._statics.append(None)
        self._members[position] = member
        self._present[position] = True
        self._position[member] = position
        return position

    def _compact(self) -> None:
        """Close the gaps dropped members left (positions change; members keep theirs)."""
        kept: Rows = np.flatnonzero(self._present[: self._size])
        self._members = self._members[kept]
        self._capacity = self._capacity[kept]
        self._paused_until = self._paused_until[kept]
        self._present = self._present[kept]
        self._known = self._known[kept]
        self._levels = {tag: column[kept] for tag, column in self._levels.items()}
        self._words = [column[kept] for column in self._words]
        self._statics = [self._statics[int(at)] for at in kept]
        self._size = len(kept)
        self._dropped = 0
        self._position = {int(m): at for at, m in enumerate(self._members.tolist())}


def _grow(column: npt.NDArray[_T], size: int) -> npt.NDArray[_T]:
    grown = np.zeros(size, dtype=column.dtype)
    grown[: len(column)] = column
    return grown


def index_of_facts(
    facts: Sequence[PeerFacts], now: datetime, policy: Policy = Policy()
) -> PeerIndex:
    """A round's index built afresh from every member's facts (as the store gives them):
    the peers who may be offered a review at ``now``."""
    table = PeerTable()
    for f in facts:
        table.put(
            f.member,
            f.name,
            f.expertise,
            frozenset(language.lower() for language in f.languages),
            f.capacity,
            f.paused_until,
        )
    activity = Activity(
        open_reviews={f.member: f.open_reviews for f in facts if f.open_reviews},
        reviews={f.member: f.reviews_recent for f in facts if f.reviews_recent},
        last_offer_at={f.member: f.last_offer_at for f in facts if f.last_offer_at is not None},
        given={f.member: f.given for f in facts if f.given},
        received={f.member: f.received for f in facts if f.received},
    )
    return table.index(activity, now, policy)
