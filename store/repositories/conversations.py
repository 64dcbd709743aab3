"""Conversations: the one open conversation of a member (its flow and state), read on
every message, saved after it, and claimed by the sweep that reminds or ends the silent
ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import MemberId
from bot.domain.records import Conversation
from store.models import ConversationRow
from store.rows import as_conversation
from store.sql import table

_CONVERSATIONS = table(ConversationRow)
_CONVERSATION = select(_CONVERSATIONS).where(_CONVERSATIONS.c.member_id == bindparam("member"))


class SqlConversations:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, member: MemberId) -> Conversation | None:
        # Asked for every message: a prebuilt statement on the connection, not the ORM.
        connection = await self.s.connection()
        row = (await connection.execute(_CONVERSATION, {"member": member})).first()
        return as_conversation(row) if row else None

    async def save(self, conversation: Conversation) -> None:
        row = await self.s.get(ConversationRow, conversation.member)
        if row is None:
            row = ConversationRow(member_id=conversation.member)
            self.s.add(row)
        row.community_id = conversation.community
        row.flow = conversation.flow
        row.state = conversation.state
        row.platform = conversation.platform
        row.external_id = conversation.external_id
        row.started_at = conversation.started_at
        row.updated_at = conversation.updated_at
        row.reminded_at = conversation.reminded_at
        await self.s.flush()

    async def delete(self, member: MemberId) -> None:
        await self.s.execute(delete(ConversationRow).where(ConversationRow.member_id == member))

    async def claim_due(
        self, silent_since: datetime, *, reminded: bool | None, limit: int
    ) -> list[Conversation]:
        query = select(ConversationRow).where(ConversationRow.updated_at < silent_since)
        if reminded is not None:
            reminded_at = ConversationRow.reminded_at
            query = query.where(reminded_at.is_not(None) if reminded else reminded_at.is_(None))
        rows = await self.s.scalars(
            query.order_by(ConversationRow.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [as_conversation(r) for r in rows]

    async def mark_reminded(self, member: MemberId, at: datetime) -> None:
        await self.s.execute(
            update(ConversationRow)
            .where(ConversationRow.member_id == member)
            .values(reminded_at=at)
        )
