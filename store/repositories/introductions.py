"""Introductions: a record that one member introduced an idea to another, with a note
(counted by `stats`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, IdeaId, MemberId
from store.models import IntroductionRow


class SqlIntroductions:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(
        self,
        community: CommunityId,
        idea: IdeaId,
        from_member: MemberId,
        to_member: MemberId,
        note: str,
        at: datetime,
    ) -> None:
        self.s.add(
            IntroductionRow(
                community_id=community,
                idea_id=idea,
                from_id=from_member,
                to_id=to_member,
                note=note,
                created_at=at,
            )
        )
        await self.s.flush()

    async def made_since(self, from_member: MemberId, since: datetime) -> int:
        value = await self.s.scalar(
            select(func.count())
            .select_from(IntroductionRow)
            .where(IntroductionRow.from_id == from_member, IntroductionRow.created_at >= since)
        )
        return int(value or 0)

    async def exists(self, idea: IdeaId, from_member: MemberId, to_member: MemberId) -> bool:
        found = await self.s.scalar(
            select(IntroductionRow.id)
            .where(
                IntroductionRow.idea_id == idea,
                IntroductionRow.from_id == from_member,
                IntroductionRow.to_id == to_member,
            )
            .limit(1)
        )
        return found is not None
