"""The read side of `stats` and the metrics: aggregates over a community's requests,
offers, ledger, members and introductions since a moment (what `stats` reports and
charts), and the counts the metrics gauges read across every community. Nothing here
writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.ids import CommunityId
from bot.domain.ledger import AccountKind, EntryKind
from bot.domain.records import OfferStatus
from bot.ports import RequestTimes
from store.models import (
    AccountRow,
    ExpertiseRow,
    IntroductionRow,
    MemberRow,
    OfferRow,
    OutboxRow,
    PostingRow,
    RequestRow,
    TransactionRow,
)
from store.rows import as_credit, as_request_times

_REQUEST_PEER = aliased(MemberRow)


class SqlStatsQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- requests and offers ----------------------------------------------------------

    async def window(self, community: CommunityId, since: datetime) -> list[RequestTimes]:
        """The requests created at `since` or later, in number order."""
        rows = await self.s.execute(
            select(
                RequestRow.number,
                RequestRow.status,
                RequestRow.tags,
                RequestRow.created_at,
                RequestRow.accepted_at,
                RequestRow.delivered_at,
                RequestRow.closed_at,
                RequestRow.escalated_at,
            )
            .where(RequestRow.community_id == community, RequestRow.created_at >= since)
            .order_by(RequestRow.number)
        )
        return [as_request_times(r) for r in rows]

    async def offer_counts(self, community: CommunityId, since: datetime) -> dict[OfferStatus, int]:
        """The offers of the requests created at `since` or later, counted by status."""
        rows = await self.s.execute(
            select(OfferRow.status, func.count())
            .join(RequestRow, RequestRow.id == OfferRow.request_id)
            .where(RequestRow.community_id == community, RequestRow.created_at >= since)
            .group_by(OfferRow.status)
        )
        return {OfferStatus(status): int(n) for status, n in rows}

    async def busiest_peers(
        self, community: CommunityId, since: datetime, limit: int
    ) -> list[tuple[str, int]]:
        """Peers' names with how many of the requests created at `since` or later they
        delivered, most first; ties in the order of their first such request."""
        delivered = func.count()
        rows = await self.s.execute(
            select(_REQUEST_PEER.name, delivered)
            .select_from(RequestRow)
            .join(_REQUEST_PEER, _REQUEST_PEER.id == RequestRow.peer_id)
            .where(
                RequestRow.community_id == community,
                RequestRow.created_at >= since,
                RequestRow.delivered_at.is_not(None),
                _REQUEST_PEER.name != "",
            )
            .group_by(_REQUEST_PEER.name)
            .order_by(delivered.desc(), func.min(RequestRow.number))
            .limit(limit)
        )
        return [(name, int(n)) for name, n in rows]

    async def never_offered(self, community: CommunityId, since: datetime) -> list[str]:
        """Names of the members who could review (some expertise, capacity above 0) and
        whose name is on no offer of a request created at `since` or later."""
        asked = (
            select(_REQUEST_PEER.name)
            .select_from(OfferRow)
            .join(RequestRow, RequestRow.id == OfferRow.request_id)
            .join(_REQUEST_PEER, _REQUEST_PEER.id == OfferRow.peer_id)
            .where(RequestRow.community_id == community, RequestRow.created_at >= since)
        )
        rows = await self.s.scalars(
            select(MemberRow.name)
            .where(
                MemberRow.community_id == community,
                MemberRow.capacity > 0,
                select(ExpertiseRow.tag).where(ExpertiseRow.member_id == MemberRow.id).exists(),
                MemberRow.name.not_in(asked),
            )
            .order_by(MemberRow.id)
        )
        return list(rows)

    # -- members and introductions ----------------------------------------------------

    async def reviewing_tags(self, community: CommunityId) -> set[str]:
        """The tags of members who take reviews (capacity above 0)."""
        rows = await self.s.scalars(
            select(ExpertiseRow.tag)
            .distinct()
            .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
            .where(MemberRow.community_id == community, MemberRow.capacity > 0)
        )
        return set(rows)

    async def count_introductions(self, community: CommunityId, since: datetime) -> int:
        """The introductions made in the community at `since` or later."""
        found = await self.s.scalar(
            select(func.count()).where(
                IntroductionRow.community_id == community, IntroductionRow.created_at >= since
            )
        )
        return int(found or 0)

    # -- the ledger -------------------------------------------------------------------

    async def credits(
        self,
        community: CommunityId,
        kinds: Sequence[EntryKind],
        since: datetime,
        until: datetime,
    ) -> list[tuple[datetime, EntryKind, int]]:
        """(at, kind, amount) of every positive posting of the transactions of these kinds
        made from `since` to `until` (both included): the amount each one moved."""
        rows = await self.s.execute(
            select(TransactionRow.created_at, TransactionRow.kind, PostingRow.amount)
            .join(PostingRow, PostingRow.transaction_id == TransactionRow.id)
            .where(
                TransactionRow.community_id == community,
                TransactionRow.kind.in_([k.value for k in kinds]),
                TransactionRow.created_at >= since,
                TransactionRow.created_at <= until,
                PostingRow.amount > 0,
            )
            .order_by(TransactionRow.id, PostingRow.id)
        )
        return [as_credit(r) for r in rows]

    async def sharing(self, community: CommunityId) -> tuple[int, int]:
        """How many members `all_balances` lists, and how many of them both gave and
        received (`given` and `received` above 0)."""
        # `given` and `received` as all_balances defines them, aggregated once rather
        # than per member, and only compared with zero.
        release = TransactionRow.kind == EntryKind.RELEASE.value
        given = (
            select(PostingRow.account_id)
            .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
            .where(release)
            .group_by(PostingRow.account_id)
            .having(func.sum(PostingRow.amount) > 0)
        )
        received = (
            select(PostingRow.holder_id)
            .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
            .where(release, PostingRow.holder_id.is_not(None))
            .group_by(PostingRow.holder_id)
            .having(func.sum(-PostingRow.amount) > 0)
        )
        both = and_(AccountRow.id.in_(given), MemberRow.id.in_(received))
        members, sharing = (
            await self.s.execute(
                select(func.count(), func.count(sa.case((both, 1))))
                .select_from(MemberRow)
                .join(
                    AccountRow,
                    and_(
                        AccountRow.member_id == MemberRow.id,
                        AccountRow.kind == AccountKind.MEMBER.value,
                    ),
                )
                .where(MemberRow.community_id == community)
            )
        ).one()
        return int(members), int(sharing)

    async def circulation(self, community: CommunityId) -> int:
        """The sum of the community's positive member balances."""
        value = await self.s.scalar(
            select(func.coalesce(func.sum(AccountRow.balance), 0)).where(
                AccountRow.community_id == community,
                AccountRow.kind == AccountKind.MEMBER.value,
                AccountRow.balance > 0,
            )
        )
        return int(value or 0)

    # -- metrics, across every community ----------------------------------------------

    async def count_open_offers(self) -> int:
        """Offers waiting for the peer's answer, in every community."""
        value = await self.s.scalar(
            select(func.count())
            .select_from(OfferRow)
            .where(OfferRow.status == OfferStatus.OFFERED.value)
        )
        return int(value or 0)

    async def backlog(self) -> int:
        """How many messages are waiting to be sent, on every platform."""
        value = await self.s.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.sent_at.is_(None), OutboxRow.failed_at.is_(None))
        )
        return int(value or 0)

    async def set_aside(self) -> int:
        """How many messages were set aside as undeliverable, on every platform."""
        value = await self.s.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.failed_at.is_not(None))
        )
        return int(value or 0)
