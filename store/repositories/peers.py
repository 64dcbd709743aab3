"""The peers routing ranks (SPEC §5), kept in this process's memory from one routing
round to the next: each community's :class:`PeerTable`, brought up to date with the
members whose profile changed since it last looked, and each round's
:class:`PeerIndex` made from it with the activity read fresh then.

Who the peers are (name, expertise, languages, capacity, pause) changes rarely, and
every change takes the community's next peer revision (`stamp_peers`) and stamps it
on the member's row, as texts do (`store.repositories.texts`, whose docstring says why
catching up to the committed counter, or to just below this transaction's own first
revision, misses nothing). What changes with every offer (open reviews, reviews in the
window, the last offer, SIF given and received) is read in one statement each round,
from the offers, requests and postings: it is never cached, so it is always as the
transaction sees it.

A transaction that changed a peer itself (a member who pauses, and whose offers go to
the next peers in the same transaction) ranks from every member as it sees them, as
before the table was kept: its own changes may still roll back, so the table does not
take them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, MemberId
from bot.domain.routing import Activity, PeerIndex, PeerTable, Policy
from store.models import ExpertiseRow, MemberRow
from store.repositories import revisions
from store.rows import as_utc

PEER_COUNTER = "peers"
# Expertise of this many changed members or more is read for the whole community.
_FEW = 200


async def stamp_peers(session: AsyncSession, members: list[MemberId]) -> None:
    """Mark the members' routing facts (name, expertise, languages, capacity, pause) as
    changed."""
    found = await session.execute(
        select(MemberRow.id, MemberRow.community_id).where(MemberRow.id.in_(members))
    )
    for member, community in found.all():
        revision = await revisions.take(session, CommunityId(community), PEER_COUNTER)
        await session.execute(
            update(MemberRow)
            .where(MemberRow.id == member)
            .values(peer_rev=revision)
            .execution_options(synchronize_session=False)
        )


def took_peer_revision(session: AsyncSession) -> bool:
    return revisions.took(session, PEER_COUNTER)


@functools.lru_cache(maxsize=4096)
def _language_set(languages: tuple[str, ...]) -> frozenset[str]:
    """A peer's languages, lower-cased; peers who speak the same share one set (most do:
    at 10,000 members a set each was 2.5 MB)."""
    return frozenset(language.lower() for language in languages)


@dataclass
class _Cached:
    table: PeerTable = field(default_factory=PeerTable)
    revision: int = -1  # everything up to it is in the table
    members: dict[int, int] = field(default_factory=dict)  # member -> revision held


class PeerCache:
    """One process's peer tables, one per community (a unit of work factory holds it)."""

    def __init__(self) -> None:
        self.communities: dict[int, _Cached] = {}


_CHANGED = select(
    MemberRow.id,
    MemberRow.name,
    MemberRow.capacity,
    MemberRow.paused_until,
    MemberRow.languages,
    MemberRow.peer_rev,
).where(
    MemberRow.community_id == bindparam("community"),
    MemberRow.peer_rev > bindparam("after"),
    MemberRow.peer_rev <= bindparam("upto"),
)
_EXPERTISE = (
    select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
    .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
    .where(
        MemberRow.community_id == bindparam("community"),
        MemberRow.peer_rev > bindparam("after"),
        MemberRow.peer_rev <= bindparam("upto"),
    )
)


async def peer_table(session: AsyncSession, cache: PeerCache, community: CommunityId) -> PeerTable:
    """The community's table with every committed change (and none of this transaction's
    own, which a later call reads once they are committed)."""
    cached = cache.communities.setdefault(community, _Cached())
    upto = await revisions.readable(session, community, PEER_COUNTER)
    connection = await session.connection()
    params: dict[str, Any] = {"community": community}
    if upto <= cached.revision:
        return cached.table
    params.update(after=cached.revision, upto=upto)
    changed = (await connection.execute(_CHANGED, params)).all()
    expertise: dict[int, dict[str, int]] = {}
    if changed:
        query = _EXPERTISE
        if len(changed) < _FEW:
            query = query.where(ExpertiseRow.member_id.in_([row[0] for row in changed]))
        for member, tag, level in await connection.execute(query, params):
            expertise.setdefault(member, {})[tag] = level
    table = cached.table
    for member, name, capacity, paused_until, languages, revision in changed:
        # Two catch-ups may overlap (one from an older snapshot): the newer row wins.
        if revision <= cached.members.get(member, -1):
            continue
        cached.members[member] = revision
        table.put(
            MemberId(member),
            name,
            expertise.get(member, {}),
            _language_set(tuple(languages or ())),
            capacity,
            paused_until,
        )
    cached.revision = max(cached.revision, upto)
    return table


def index_of(table: PeerTable, counts: list[dict[Any, Any]], now: datetime) -> PeerIndex:
    """The round's index from the six per-member aggregates of `SqlRoutingQueries`
    (assigned, offered, recent, last offer, given, received)."""
    assigned, offered, recent, last_offer, given, received = counts
    open_reviews = {m: int(n) for m, n in assigned.items()}
    for member, number in offered.items():
        open_reviews[member] = open_reviews.get(member, 0) + int(number)
    last = {m: at for m, v in last_offer.items() if (at := as_utc(v)) is not None}
    activity = Activity(
        open_reviews=open_reviews,
        reviews={m: int(n) for m, n in recent.items()},
        last_offer_at=last,
        given={m: int(n or 0) for m, n in given.items()},
        received={m: int(n or 0) for m, n in received.items()},
    )
    return table.index(activity, now, Policy())
