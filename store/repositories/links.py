"""Identity links: the one-time codes that join a second platform identity to a member,
claimed once, and the move of an identity onto the member it joins (removing the empty
member it leaves); expired codes are pruned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import MemberId
from bot.domain.ledger import AccountKind
from store.models import (
    AccountRow,
    ConversationRow,
    ExpertiseRow,
    IdeaRow,
    IdentityRow,
    IntroductionRow,
    LinkCodeRow,
    MemberRow,
    OfferRow,
    PostingRow,
    RequestRow,
    TransactionRow,
)


class SqlLinks:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def create(self, member: MemberId, code: str, at: datetime, expires: datetime) -> None:
        self.s.add(LinkCodeRow(code=code, member_id=member, created_at=at, expires_at=expires))
        await self.s.flush()

    async def claim(self, code: str, at: datetime) -> tuple[str, MemberId | None]:
        row = await self.s.get(LinkCodeRow, code, with_for_update=True)
        if row is None:
            return "unknown", None
        if row.used_at is not None:
            return "used", None
        if row.expires_at <= at:
            return "expired", None
        # Conditional: two identities racing for one code cannot both get it.
        result = await self.s.execute(
            update(LinkCodeRow)
            .where(LinkCodeRow.code == code, LinkCodeRow.used_at.is_(None))
            .values(used_at=at)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return "used", None
        return "ok", MemberId(row.member_id)

    async def has_history(self, member: MemberId) -> bool:
        checks = [
            select(PostingRow.id)
            .join(AccountRow, AccountRow.id == PostingRow.account_id)
            .where(AccountRow.kind == AccountKind.MEMBER.value, AccountRow.member_id == member),
            select(IdeaRow.id).where(IdeaRow.owner_id == member),
            select(RequestRow.id).where(
                (RequestRow.requester_id == member) | (RequestRow.peer_id == member)
            ),
            select(OfferRow.id).where(OfferRow.peer_id == member),
            select(TransactionRow.id).where(TransactionRow.author_id == member),
        ]
        for check in checks:
            if await self.s.scalar(check.limit(1)) is not None:
                return True
        return False

    async def move_identity(
        self, platform: str, external_id: str, from_member: MemberId, to_member: MemberId
    ) -> None:
        await self.s.execute(
            update(IdentityRow)
            .where(IdentityRow.platform == platform, IdentityRow.external_id == external_id)
            .values(member_id=to_member)
            .execution_options(synchronize_session=False)
        )
        remaining = await self.s.scalar(
            select(func.count()).where(IdentityRow.member_id == from_member)
        )
        if remaining:
            return
        # Introductions made to or by the account are the person's: they follow it.
        for column in (IntroductionRow.from_id, IntroductionRow.to_id):
            await self.s.execute(
                update(IntroductionRow)
                .where(column == from_member)
                .values({column.key: to_member})
                .execution_options(synchronize_session=False)
            )
        for model, column in (
            (ConversationRow, ConversationRow.member_id),
            (ExpertiseRow, ExpertiseRow.member_id),
            (LinkCodeRow, LinkCodeRow.member_id),
        ):
            await self.s.execute(delete(model).where(column == from_member))
        await self.s.execute(
            delete(AccountRow).where(
                AccountRow.kind == AccountKind.MEMBER.value, AccountRow.member_id == from_member
            )
        )
        await self.s.execute(delete(MemberRow).where(MemberRow.id == from_member))

    async def prune(self, expired_before: datetime) -> int:
        result = await self.s.execute(
            delete(LinkCodeRow).where(LinkCodeRow.expires_at < expired_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
