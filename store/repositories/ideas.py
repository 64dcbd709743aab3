"""Ideas: a member's submitted idea with its numbered I-n, its answers and its status,
read by number (with its owner's name) or listed per owner or community."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, IdeaId, MemberId
from bot.domain.records import Idea, IdeaStatus
from store.models import IdeaRow, MemberRow
from store.repositories.communities import SqlCommunities
from store.repositories.texts import take_revision
from store.rows import as_idea
from store.sql import table


def _idea_by_number_statement() -> Select[Any]:
    ideas = table(IdeaRow)
    members = table(MemberRow)
    return (
        select(*ideas.c, members.c.name.label("owner_name"))
        .join(members, members.c.id == ideas.c.owner_id)
        .where(
            ideas.c.community_id == bindparam("community"),
            ideas.c.number == bindparam("number"),
        )
    )


_IDEA_BY_NUMBER = _idea_by_number_statement()


class SqlIdeas:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.communities = SqlCommunities(session)

    async def create(
        self,
        community: CommunityId,
        owner: MemberId,
        title: str,
        answers: dict[str, Any],
        at: datetime,
    ) -> Idea:
        number = await self.communities.next_number(community, "idea")
        row = IdeaRow(
            community_id=community,
            number=number,
            owner_id=owner,
            title=title,
            answers=answers,
            status=IdeaStatus.SUBMITTED.value,
            created_at=at,
            updated_at=at,
            text_rev=await take_revision(self.s, community),
        )
        self.s.add(row)
        await self.s.flush()
        return as_idea(row)

    def _select(self) -> Select[IdeaRow, str]:
        return select(IdeaRow, MemberRow.name).join(MemberRow, MemberRow.id == IdeaRow.owner_id)

    async def by_number(self, community: CommunityId, number: int) -> Idea | None:
        # Every request, accept and offer reads its idea: prebuilt, plain columns.
        connection = await self.s.connection()
        row = (
            await connection.execute(_IDEA_BY_NUMBER, {"community": community, "number": number})
        ).first()
        return as_idea(row, row.owner_name) if row else None

    async def of_owner(self, owner: MemberId) -> list[Idea]:
        rows = await self.s.execute(
            self._select().where(IdeaRow.owner_id == owner).order_by(IdeaRow.number)
        )
        return [as_idea(r[0], r[1]) for r in rows]

    async def all(self, community: CommunityId) -> list[Idea]:
        rows = await self.s.execute(
            self._select().where(IdeaRow.community_id == community).order_by(IdeaRow.number)
        )
        return [as_idea(r[0], r[1]) for r in rows]

    async def set_status(self, idea: IdeaId, status: IdeaStatus, at: datetime) -> None:
        await self.s.execute(
            update(IdeaRow).where(IdeaRow.id == idea).values(status=status.value, updated_at=at)
        )
