"""Members: their rows with their chat identities and expertise, looked up by identity,
id or name, created with their ledger account, changed field by field, and forgotten
on request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import AccountKind
from bot.domain.records import Expertise, Member, Role
from store.models import (
    AccountRow,
    ConversationRow,
    ExpertiseRow,
    ForgottenIdentityRow,
    IdeaRow,
    IdentityRow,
    IntroductionRow,
    LinkCodeRow,
    MemberRow,
    OfferRow,
    RequestRow,
)
from store.repositories.peers import stamp_peers
from store.repositories.texts import stamp_members
from store.rows import as_expertise, as_member, as_members
from store.sql import insert_ignoring_conflicts, table


def _member_statements() -> tuple[Select[Any], Select[Any], Select[Any]]:
    """Members with all their identities (a row per identity, in identity order): by one
    of their identities, by id, and by several ids."""
    members = table(MemberRow)
    every = table(IdentityRow).alias("every")
    asked = table(IdentityRow).alias("asked")
    with_identities = (
        select(
            *members.c,
            every.c.platform.label("i_platform"),
            every.c.external_id.label("i_external_id"),
        )
        .outerjoin(every, every.c.member_id == members.c.id)
        .order_by(every.c.id)
    )
    by_identity = with_identities.join(asked, asked.c.member_id == members.c.id).where(
        asked.c.platform == bindparam("platform"),
        asked.c.external_id == bindparam("external_id"),
    )
    by_id = with_identities.where(members.c.id == bindparam("member"))
    by_ids = with_identities.where(members.c.id.in_(bindparam("members", expanding=True)))
    return by_identity, by_id, by_ids


# Every command looks its caller up and every notice its member: prebuilt statements.
BY_IDENTITY, _MEMBER_BY_ID, _MEMBERS_BY_IDS = _member_statements()

_MEMBER_TABLE = table(MemberRow)
# A member's columns routing reads (`store.repositories.peers`): a change stamps them.
_ROUTED = frozenset({"name", "capacity", "paused_until", "languages"})
_TOUCH = (
    update(_MEMBER_TABLE)
    .where(_MEMBER_TABLE.c.id == bindparam("member"))
    .values(last_active_at=bindparam("at", type_=_MEMBER_TABLE.c.last_active_at.type))
)


class SqlMembers:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def _with_identities(self, rows: Sequence[Any]) -> list[Member]:
        if not rows:
            return []
        ids = await self.s.execute(
            select(IdentityRow.member_id, IdentityRow.platform, IdentityRow.external_id)
            .where(IdentityRow.member_id.in_([r.id for r in rows]))
            .order_by(IdentityRow.id)
        )
        by_member: dict[int, list[Any]] = {}
        for ident in ids:
            by_member.setdefault(ident.member_id, []).append(ident)
        return [as_member(r, by_member.get(r.id, [])) for r in rows]

    async def by_identity(self, platform: str, external_id: str) -> Member | None:
        found = await self._members(BY_IDENTITY, {"platform": platform, "external_id": external_id})
        return next(iter(found.values()), None)

    async def get(self, member: MemberId) -> Member | None:
        return (await self._members(_MEMBER_BY_ID, {"member": member})).get(member)

    async def get_many(self, members: Sequence[MemberId]) -> dict[MemberId, Member]:
        if not members:
            return {}
        return await self._members(_MEMBERS_BY_IDS, {"members": list(members)})

    async def _members(self, statement: Any, params: dict[str, Any]) -> dict[MemberId, Member]:
        connection = await self.s.connection()  # a plain statement: skip the ORM layer
        return as_members((await connection.execute(statement, params)).all())

    async def by_name(self, community: CommunityId, name: str) -> list[Member]:
        rows = await self.s.scalars(
            select(MemberRow)
            .where(
                MemberRow.community_id == community,
                func.lower(MemberRow.name) == name.lower(),
            )
            .order_by(MemberRow.id)
        )
        return await self._with_identities(list(rows))

    async def create(
        self,
        community: CommunityId,
        name: str,
        role: Role,
        platform: str,
        external_id: str,
        at: datetime,
    ) -> Member:
        row = MemberRow(
            community_id=community,
            name=name,
            role=role.value,
            capacity=2,
            languages=[],
            bio="",
            profile={},
            created_at=at,
        )
        self.s.add(row)
        await self.s.flush()
        self.s.add(IdentityRow(platform=platform, external_id=external_id, member_id=row.id))
        self.s.add(
            AccountRow(
                community_id=community, kind=AccountKind.MEMBER.value, member_id=row.id, balance=0
            )
        )
        await self.s.flush()
        return as_member(row, [IdentityRow(platform=platform, external_id=external_id)])

    async def all(self, community: CommunityId) -> list[Member]:
        # Plain rows rather than ORM objects: with 10,000 members the ORM's bookkeeping
        # would cost more memory than the members themselves (`find`, exports).
        rows = await self.s.execute(
            select(*MemberRow.__table__.columns)
            .where(MemberRow.community_id == community)
            .order_by(MemberRow.id)
        )
        return await self._with_identities(rows.all())

    async def _set(self, member: MemberId, **values: Any) -> None:
        await self.s.execute(update(MemberRow).where(MemberRow.id == member).values(**values))
        if _ROUTED.intersection(values):
            await stamp_peers(self.s, [member])

    async def set_role(self, member: MemberId, role: Role) -> None:
        await self._set(member, role=role.value)

    async def set_capacity(self, member: MemberId, capacity: int) -> None:
        await self._set(member, capacity=capacity)

    async def set_paused_until(self, member: MemberId, until: datetime | None) -> None:
        await self._set(member, paused_until=until)

    async def set_language(
        self, member: MemberId, *, language: str | None = None, locale: str | None = None
    ) -> None:
        values = {"language": language} if language is not None else {}
        if locale is not None:
            values["locale"] = locale
        if values:
            await self._set(member, **values)

    async def touch(self, member: MemberId, at: datetime) -> None:
        # After every command: a prebuilt statement on the connection, not an ORM update.
        connection = await self.s.connection()
        await connection.execute(_TOUCH, {"member": member, "at": at})

    async def expertise(self, member: MemberId) -> list[Expertise]:
        rows = await self.s.scalars(
            select(ExpertiseRow).where(ExpertiseRow.member_id == member).order_by(ExpertiseRow.tag)
        )
        return [as_expertise(r) for r in rows]

    async def set_expertise(self, member: MemberId, tag: str, level: int) -> None:
        row = await self.s.get(ExpertiseRow, (member, tag))
        if row is None:
            self.s.add(ExpertiseRow(member_id=member, tag=tag, level=level))
        else:
            row.level = level
        await self.s.flush()
        await stamp_peers(self.s, [member])

    async def remove_expertise(self, member: MemberId, tag: str) -> bool:
        row = await self.s.get(ExpertiseRow, (member, tag))
        if row is None:
            return False
        await self.s.delete(row)
        await self.s.flush()
        await stamp_peers(self.s, [member])
        return True

    async def forget(self, member: MemberId, placeholder: str) -> None:
        await self._set(member, name=placeholder, bio="", languages=[], profile={}, capacity=0)
        for model, column in (
            (ExpertiseRow, ExpertiseRow.member_id),
            (ConversationRow, ConversationRow.member_id),
            (LinkCodeRow, LinkCodeRow.member_id),
            (IdentityRow, IdentityRow.member_id),
        ):
            await self.s.execute(delete(model).where(column == member))
        await self.s.execute(
            update(IdeaRow)
            .where(IdeaRow.owner_id == member)
            .values(title="(removed on request)", answers={})
            .execution_options(synchronize_session=False)
        )
        await stamp_members(self.s, [member], ideas=True)

    async def set_profile(
        self,
        member: MemberId,
        *,
        languages: Sequence[str],
        bio: str,
        profile: dict[str, Any],
    ) -> None:
        await self._set(member, languages=list(languages), bio=bio, profile=profile)
        await stamp_members(self.s, [member])

    async def expertise_of_community(
        self, community: CommunityId
    ) -> dict[MemberId, list[Expertise]]:
        # One query for the whole community (exports): not one per member.
        rows = await self.s.execute(
            select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
            .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
            .where(MemberRow.community_id == community)
            .order_by(ExpertiseRow.member_id, ExpertiseRow.tag)
        )
        found: dict[MemberId, list[Expertise]] = {}
        for row in rows:
            found.setdefault(MemberId(row.member_id), []).append(as_expertise(row))
        return found

    async def erase_writings(self, member: MemberId) -> None:
        for where, values in (
            (RequestRow.peer_id == member, {"feedback": None}),
            (RequestRow.requester_id == member, {"comment": None, "note": None}),
        ):
            await self.s.execute(
                update(RequestRow)
                .where(where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        await self.s.execute(
            update(OfferRow)
            .where(OfferRow.peer_id == member, OfferRow.reason.is_not(None))
            .values(reason=None)
            .execution_options(synchronize_session=False)
        )
        await self.s.execute(
            update(IntroductionRow)
            .where((IntroductionRow.from_id == member) | (IntroductionRow.to_id == member))
            .values(note="")
            .execution_options(synchronize_session=False)
        )

    async def remember_forgotten(self, digests: Sequence[str], at: datetime) -> None:
        if digests:
            await self.s.execute(
                insert_ignoring_conflicts(self.s, ForgottenIdentityRow).values(
                    [{"digest": d, "created_at": at} for d in dict.fromkeys(digests)]
                )
            )

    async def was_forgotten(self, digest: str) -> bool:
        found = await self.s.scalar(
            select(ForgottenIdentityRow.digest).where(ForgottenIdentityRow.digest == digest)
        )
        return found is not None
