"""Identity links: the one-time codes that join a second platform identity to a member,
claimed once, and the move of an identity onto the member it joins (removing the empty
member it leaves); staff's merge of two members of one person; expired codes are pruned."""

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
from store.repositories.peers import stamp_peers
from store.repositories.texts import stamp_members


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

    async def merge_members(self, keep: MemberId, gone: MemberId, placeholder: str) -> None:
        s = self.s
        # What was the second member's becomes the first's: one UPDATE per column.
        for model, column in (
            (IdentityRow, IdentityRow.member_id),
            (IdeaRow, IdeaRow.owner_id),
            (RequestRow, RequestRow.requester_id),
            (RequestRow, RequestRow.peer_id),
            (OfferRow, OfferRow.peer_id),
            (IntroductionRow, IntroductionRow.from_id),
            (IntroductionRow, IntroductionRow.to_id),
        ):
            await s.execute(
                update(model)
                .where(column == gone)
                .values({column.key: keep})
                .execution_options(synchronize_session=False)
            )
        # An introduction between the two accounts introduced the person to themself.
        await s.execute(
            delete(IntroductionRow).where(
                IntroductionRow.from_id == keep, IntroductionRow.to_id == keep
            )
        )
        levels = await s.execute(
            select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level).where(
                ExpertiseRow.member_id.in_((keep, gone))
            )
        )
        held: dict[int, dict[str, int]] = {keep: {}, gone: {}}
        for member_id, tag, level in levels:
            held[member_id][tag] = level
        await s.execute(delete(ExpertiseRow).where(ExpertiseRow.member_id == gone))
        for tag, level in held[gone].items():
            if tag not in held[keep]:
                s.add(ExpertiseRow(member_id=keep, tag=tag, level=level))
            elif level > held[keep][tag]:
                await s.execute(
                    update(ExpertiseRow)
                    .where(ExpertiseRow.member_id == keep, ExpertiseRow.tag == tag)
                    .values(level=level)
                    .execution_options(synchronize_session=False)
                )
        if await s.scalar(
            select(ConversationRow.member_id).where(ConversationRow.member_id == keep)
        ):
            await s.execute(delete(ConversationRow).where(ConversationRow.member_id == gone))
        else:
            await s.execute(
                update(ConversationRow)
                .where(ConversationRow.member_id == gone)
                .values(member_id=keep)
                .execution_options(synchronize_session=False)
            )
        await s.execute(delete(LinkCodeRow).where(LinkCodeRow.member_id == gone))
        profiles = {
            row.id: row
            for row in await s.execute(
                select(
                    MemberRow.id,
                    MemberRow.languages,
                    MemberRow.bio,
                    MemberRow.profile,
                    MemberRow.last_active_at,
                ).where(MemberRow.id.in_((keep, gone)))
            )
        }
        kept, joined = profiles[keep], profiles[gone]
        languages = list(kept.languages or [])
        languages += [lang for lang in joined.languages or [] if lang not in languages]
        active = [a for a in (kept.last_active_at, joined.last_active_at) if a is not None]
        await s.execute(
            update(MemberRow)
            .where(MemberRow.id == keep)
            .values(
                languages=languages,
                bio=kept.bio or joined.bio,
                profile={**(joined.profile or {}), **(kept.profile or {})},
                last_active_at=max(active) if active else None,
            )
            .execution_options(synchronize_session=False)
        )
        await s.execute(
            update(MemberRow)
            .where(MemberRow.id == gone)
            .values(name=placeholder, bio="", languages=[], profile={}, capacity=0)
            .execution_options(synchronize_session=False)
        )
        # Their ideas, bios and reviews are one member's now: the affinity index rereads.
        await stamp_members(s, [keep, gone], ideas=True)
        await stamp_peers(s, [keep, gone])
        await s.flush()

    async def prune(self, expired_before: datetime) -> int:
        result = await self.s.execute(
            delete(LinkCodeRow).where(LinkCodeRow.expires_at < expired_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
