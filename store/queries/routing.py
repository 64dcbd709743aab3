"""The read side of routing: every member of a community with what the router weighs
(role, expertise, languages, capacity, open and recent reviews, last offer, SIF given and
received), from three statements built once, for every routing round. Nothing here
writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId
from bot.domain.ledger import AccountKind, EntryKind
from bot.domain.records import OfferStatus, PeerFacts, RequestStatus
from bot.domain.routing import PeerIndex, index_of_facts
from store.models import (
    AccountRow,
    ExpertiseRow,
    MemberRow,
    OfferRow,
    PostingRow,
    RequestRow,
    TransactionRow,
)
from store.repositories.peers import PeerCache, index_of, peer_table, took_peer_revision
from store.rows import as_peer_facts


def _facts_statements() -> tuple[Any, Any, Any]:
    """`peer_facts`' statements (bound: `b_community`, `b_since`): the members, their
    expertise, and six per-member aggregates: assigned requests, open offers, reviews
    delivered since, last offer, SIF given and received in reviews."""
    community: Any = bindparam("b_community")
    members = (
        select(
            MemberRow.id,
            MemberRow.name,
            MemberRow.role,
            MemberRow.capacity,
            MemberRow.paused_until,
            MemberRow.languages,
        )
        .where(MemberRow.community_id == community)
        .order_by(MemberRow.id)
    )
    expertise = (
        select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
        .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
        .where(MemberRow.community_id == community)
    )
    assigned = (
        select(RequestRow.peer_id, func.count())
        .where(
            RequestRow.community_id == community,
            RequestRow.status == RequestStatus.ASSIGNED.value,
        )
        .group_by(RequestRow.peer_id)
    )
    offered = (
        select(OfferRow.peer_id, func.count())
        .join(RequestRow, RequestRow.id == OfferRow.request_id)
        .where(
            RequestRow.community_id == community,
            OfferRow.status == OfferStatus.OFFERED.value,
        )
        .group_by(OfferRow.peer_id)
    )
    recent = (
        select(RequestRow.peer_id, func.count())
        .where(
            RequestRow.community_id == community,
            RequestRow.delivered_at >= bindparam("b_since", type_=RequestRow.delivered_at.type),
        )
        .group_by(RequestRow.peer_id)
    )
    last_offer = (
        select(OfferRow.peer_id, func.max(OfferRow.offered_at))
        .join(RequestRow, RequestRow.id == OfferRow.request_id)
        .where(RequestRow.community_id == community)
        .group_by(OfferRow.peer_id)
    )
    released = (
        select(PostingRow.account_id, PostingRow.holder_id, PostingRow.amount)
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            TransactionRow.community_id == community,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .subquery()
    )
    given = (
        select(AccountRow.member_id, func.sum(released.c.amount))
        .join(released, released.c.account_id == AccountRow.id)
        .where(AccountRow.kind == AccountKind.MEMBER.value)
        .group_by(AccountRow.member_id)
    )
    received = (
        select(released.c.holder_id, func.sum(-released.c.amount))
        .where(released.c.holder_id.is_not(None))
        .group_by(released.c.holder_id)
    )
    # One statement for the six: (which, member, number, moment) rows. One round trip to
    # the database instead of six; the aggregates are the same. The NULLs are typed, so
    # PostgreSQL matches the columns of the branches.
    parts = []
    no_number = sa.cast(sa.null(), sa.BigInteger())
    no_moment = sa.cast(sa.null(), OfferRow.offered_at.type)
    for which, part in enumerate((assigned, offered, recent, last_offer, given, received)):
        member, value = part.selected_columns
        number, moment = (no_number, value) if part is last_offer else (value, no_moment)
        parts.append(part.with_only_columns(sa.literal(which), member, number, moment))
    return members, expertise, sa.union_all(*parts)


_FACTS_MEMBERS, _FACTS_EXPERTISE, _FACTS_COUNTS = _facts_statements()


class SqlRoutingQueries:
    def __init__(self, session: AsyncSession, peers: PeerCache | None = None) -> None:
        self.s = session
        self.peers = peers if peers is not None else PeerCache()

    async def peer_index(self, community: CommunityId, now: datetime, since: datetime) -> PeerIndex:
        """The peers who may be offered a review at `now`, ready to rank; reviews counted
        since `since`. From the process's table and this round's activity (one statement
        and, when a profile changed since the last round, one or two more), or from every
        member when this transaction changed a peer itself (`store.repositories.peers`)."""
        if took_peer_revision(self.s):
            return index_of_facts(await self.peer_facts(community, since), now)
        table = await peer_table(self.s, self.peers, community)
        connection = await self.s.connection()
        params = {"b_community": community, "b_since": since}
        counts: list[dict[Any, Any]] = [{} for _ in range(6)]
        for which, member_id, number, moment in await connection.execute(_FACTS_COUNTS, params):
            counts[which][member_id] = number if moment is None else moment
        return index_of(table, counts, now)

    async def peer_facts(self, community: CommunityId, since: datetime) -> list[PeerFacts]:
        """Every member of the community with what routing needs; reviews counted since
        `since`."""
        # Plain columns, not ORM objects, from statements built once: this runs for every
        # routing round, over every member of the community.
        connection = await self.s.connection()
        params = {"b_community": community, "b_since": since}
        members = (await connection.execute(_FACTS_MEMBERS, params)).all()
        if not members:
            return []
        expertise: dict[int, dict[str, int]] = {}
        for member_id, tag, level in await connection.execute(_FACTS_EXPERTISE, params):
            expertise.setdefault(member_id, {})[tag] = level
        counts: list[dict[Any, Any]] = [{} for _ in range(6)]
        for which, member_id, number, moment in await connection.execute(_FACTS_COUNTS, params):
            counts[which][member_id] = number if moment is None else moment
        return as_peer_facts(members, expertise, counts)
