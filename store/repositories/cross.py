"""Requests that cross to a partner node (SPEC §12), with the id both nodes know them by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, RequestId
from bot.domain.records import CrossRequest
from store.models import CrossRequestRow
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
