"""Requests that cross to a partner node (SPEC §12), with the id both nodes know them by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, RequestId
from bot.domain.ledger import AccountKind
from bot.domain.records import CrossRequest, RequestStatus
from store.models import (
    AccountRow,
    CrossRequestRow,
    IdentityRow,
    OutboxRow,
    PostingRow,
    ProcessedEventRow,
    RequestRow,
    TransactionRow,
)
from store.sql import insert_ignoring_conflicts


def _record(row: CrossRequestRow) -> CrossRequest:
    return CrossRequest(RequestId(row.request_id), row.partner, row.xid, row.role, row.remote_ref)


class SqlCrossRequests:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

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
        statement = insert_ignoring_conflicts(self.s, CrossRequestRow).values(
            community_id=community,
            request_id=request,
            partner=partner,
            xid=xid,
            role=role,
            remote_ref=remote_ref,
            created_at=at,
        )
        return await self.s.scalar(statement.returning(CrossRequestRow.id)) is not None

    async def by_xid(self, xid: str) -> CrossRequest | None:
        row = await self.s.scalar(select(CrossRequestRow).where(CrossRequestRow.xid == xid))
        return _record(row) if row else None

    async def of_request(self, request: RequestId) -> CrossRequest | None:
        row = await self.s.scalar(
            select(CrossRequestRow).where(CrossRequestRow.request_id == request)
        )
        return _record(row) if row else None

    async def set_remote(self, xid: str, remote_ref: str) -> None:
        await self.s.execute(
            update(CrossRequestRow).where(CrossRequestRow.xid == xid).values(remote_ref=remote_ref)
        )

    async def all(self, community: CommunityId) -> list[CrossRequest]:
        rows = await self.s.scalars(
            select(CrossRequestRow)
            .where(CrossRequestRow.community_id == community)
            .order_by(CrossRequestRow.id)
        )
        return [_record(r) for r in rows]

    async def last_heard(self, partner: str) -> datetime | None:
        found: datetime | None = await self.s.scalar(
            select(func.max(ProcessedEventRow.created_at)).where(
                ProcessedEventRow.key.startswith(f"federation:{partner}:", autoescape=True)
            )
        )
        return found

    async def waiting(self, partner: str) -> int:
        count = await self.s.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(
                OutboxRow.platform == "federation",
                OutboxRow.to == partner,
                OutboxRow.sent_at.is_(None),
            )
        )
        return int(count or 0)

    async def transfers(self, partner: str) -> dict[str, int]:
        """The committed transfers with ``partner`` as this ledger shows them: for each
        confirmed request crossed with it, what its transactions moved on the partner's
        mirror account, as hundredths the origin paid the host."""
        mirror = (
            select(AccountRow.id)
            .join(IdentityRow, IdentityRow.member_id == AccountRow.member_id)
            .where(
                IdentityRow.platform == "federation",
                IdentityRow.external_id == partner,
                AccountRow.kind == AccountKind.MEMBER.value,
            )
            .scalar_subquery()
        )
        rows = await self.s.execute(
            select(CrossRequestRow.xid, CrossRequestRow.role, func.sum(PostingRow.amount))
            .join(RequestRow, RequestRow.id == CrossRequestRow.request_id)
            .join(TransactionRow, TransactionRow.request_id == CrossRequestRow.request_id)
            .join(PostingRow, PostingRow.transaction_id == TransactionRow.id)
            .where(
                CrossRequestRow.partner == partner,
                RequestRow.status == RequestStatus.CONFIRMED.value,
                PostingRow.account_id == mirror,
            )
            .group_by(CrossRequestRow.xid, CrossRequestRow.role)
        )
        # The origin's mirror account is credited what it pays the host; the host's is
        # debited what the origin pays: the same amount, seen from each side.
        return {xid: int(total) if role == "origin" else -int(total) for xid, role, total in rows}
