"""Introductions: a record that one member introduced an idea to another, with a note
(counted by `stats`)."""

from __future__ import annotations

from datetime import datetime

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
