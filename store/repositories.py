"""Repositories over one AsyncSession: the store's side of bot.ports."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy import Select, and_, bindparam, delete, func, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.ledger import AccountKey, AccountKind, EntryKind, TransactionDraft, floor_for
from bot.domain.records import (
    BalanceInfo,
    Community,
    Conversation,
    Expertise,
    HelpRequest,
    Idea,
    IdeaStatus,
    Identity,
    LedgerLine,
    Member,
    Offer,
    OfferStatus,
    PeerFacts,
    RequestStatus,
    Role,
)
from bot.messages import Attachment, Button, Delivery, Outbound, Table
from bot.ports import FindCandidate, LimitExceeded, RequestTimes
from store.models import (
    AccountRow,
    CommunityRow,
    ConversationRow,
    CounterRow,
    ExpertiseRow,
    IdeaRow,
    IdentityRow,
    IntroductionRow,
    LinkCodeRow,
    MemberRow,
    OfferRow,
    OutboxRow,
    PostingRow,
    ProcessedEventRow,
    RequestRow,
    TagRow,
    TransactionRow,
)


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the session's dialect."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


_TAGS = (
    select(TagRow.__table__.c.tag)
    .where(TagRow.__table__.c.community_id == bindparam("community"))
    .order_by(TagRow.__table__.c.tag)
)
_COUNTERS = cast(sa.Table, CounterRow.__table__)
_NEXT_NUMBER = {
    name: module.insert(_COUNTERS)
    .on_conflict_do_update(
        index_elements=[_COUNTERS.c.community_id, _COUNTERS.c.name],
        set_={"value": _COUNTERS.c.value + 1},
    )
    .returning(_COUNTERS.c.value)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


class SqlCommunities:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_or_create(
        self, key: str, name: str, tags: Sequence[str], at: datetime
    ) -> Community:
        row = await self.s.scalar(select(CommunityRow).where(CommunityRow.key == key))
        if row is None:
            await self.s.execute(
                insert_ignoring_conflicts(self.s, CommunityRow).values(
                    key=key, name=name, settings={}, created_at=at
                )
            )
            row = await self.s.scalar(select(CommunityRow).where(CommunityRow.key == key))
            assert row is not None
            await self.s.execute(
                insert_ignoring_conflicts(self.s, AccountRow).values(
                    [
                        {"community_id": row.id, "kind": k.value, "member_id": 0, "balance": 0}
                        for k in (AccountKind.NETWORK, AccountKind.ESCROW)
                    ]
                )
            )
            if tags:
                await self.s.execute(
                    insert_ignoring_conflicts(self.s, TagRow).values(
                        [{"community_id": row.id, "tag": t} for t in tags]
                    )
                )
        return Community(CommunityId(row.id), row.key, row.name)

    async def tags(self, community: CommunityId) -> list[str]:
        connection = await self.s.connection()  # asked for every request: prebuilt
        return list((await connection.execute(_TAGS, {"community": community})).scalars())

    async def get(self, community: CommunityId) -> Community | None:
        row = await self.s.get(CommunityRow, community)
        return Community(CommunityId(row.id), row.key, row.name) if row else None

    async def all(self) -> list[Community]:
        rows = await self.s.scalars(select(CommunityRow).order_by(CommunityRow.id))
        return [Community(CommunityId(r.id), r.key, r.name) for r in rows]

    async def find(self, key: str) -> Community | None:
        row = await self.s.scalar(select(CommunityRow).where(CommunityRow.key == key))
        return Community(CommunityId(row.id), row.key, row.name) if row else None

    async def next_number(self, community: CommunityId, counter: str) -> int:
        # One atomic upsert: concurrent transactions queue on the counter row.
        connection = await self.s.connection()
        value = await connection.scalar(
            _NEXT_NUMBER[connection.dialect.name],
            {"community_id": community, "name": counter, "value": 1},
        )
        return int(value or 0)


def _member(row: Any, identities: Sequence[Any] = ()) -> Member:
    """A member from its row (an ORM object or plain columns) and its identities' rows."""
    return Member(
        id=MemberId(row.id),
        community=CommunityId(row.community_id),
        name=row.name,
        role=Role(row.role),
        capacity=row.capacity,
        paused_until=row.paused_until,
        languages=tuple(row.languages or ()),
        bio=row.bio or "",
        identities=tuple(Identity(i.platform, i.external_id) for i in identities),
        profile=dict(row.profile or {}),
        last_active=getattr(row, "last_active_at", None),
    )


class _IdentityOf(NamedTuple):
    platform: str
    external_id: str


def _member_statements() -> tuple[Select[Any], Select[Any], Select[Any]]:
    """Members with all their identities (a row per identity, in identity order): by one
    of their identities, by id, and by several ids."""
    members = MemberRow.__table__
    every = IdentityRow.__table__.alias("every")
    asked = IdentityRow.__table__.alias("asked")
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
_BY_IDENTITY, _MEMBER_BY_ID, _MEMBERS_BY_IDS = _member_statements()


def _members_of(rows: Sequence[Any]) -> dict[MemberId, Member]:
    """Members from rows of `_member_statements`, in the order they first appear."""
    identities: dict[int, list[_IdentityOf]] = {}
    first: dict[int, Any] = {}
    for r in rows:
        first.setdefault(r.id, r)
        if r.i_platform is not None:
            identities.setdefault(r.id, []).append(_IdentityOf(r.i_platform, r.i_external_id))
    return {MemberId(i): _member(r, identities.get(i, [])) for i, r in first.items()}


_MEMBER_TABLE = cast(sa.Table, MemberRow.__table__)
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
        return [_member(r, by_member.get(r.id, [])) for r in rows]

    async def by_identity(self, platform: str, external_id: str) -> Member | None:
        found = await self._members(
            _BY_IDENTITY, {"platform": platform, "external_id": external_id}
        )
        return next(iter(found.values()), None)

    async def get(self, member: MemberId) -> Member | None:
        return (await self._members(_MEMBER_BY_ID, {"member": member})).get(member)

    async def get_many(self, members: Sequence[MemberId]) -> dict[MemberId, Member]:
        if not members:
            return {}
        return await self._members(_MEMBERS_BY_IDS, {"members": list(members)})

    async def _members(self, statement: Any, params: dict[str, Any]) -> dict[MemberId, Member]:
        connection = await self.s.connection()  # a plain statement: skip the ORM layer
        return _members_of((await connection.execute(statement, params)).all())

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
        return _member(row, [IdentityRow(platform=platform, external_id=external_id)])

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

    async def set_role(self, member: MemberId, role: Role) -> None:
        await self._set(member, role=role.value)

    async def set_capacity(self, member: MemberId, capacity: int) -> None:
        await self._set(member, capacity=capacity)

    async def set_paused_until(self, member: MemberId, until: datetime | None) -> None:
        await self._set(member, paused_until=until)

    async def touch(self, member: MemberId, at: datetime) -> None:
        # After every command: a prebuilt statement on the connection, not an ORM update.
        connection = await self.s.connection()
        await connection.execute(_TOUCH, {"member": member, "at": at})

    async def expertise(self, member: MemberId) -> list[Expertise]:
        rows = await self.s.scalars(
            select(ExpertiseRow).where(ExpertiseRow.member_id == member).order_by(ExpertiseRow.tag)
        )
        return [Expertise(r.tag, r.level) for r in rows]

    async def set_expertise(self, member: MemberId, tag: str, level: int) -> None:
        row = await self.s.get(ExpertiseRow, (member, tag))
        if row is None:
            self.s.add(ExpertiseRow(member_id=member, tag=tag, level=level))
        else:
            row.level = level
        await self.s.flush()

    async def remove_expertise(self, member: MemberId, tag: str) -> bool:
        row = await self.s.get(ExpertiseRow, (member, tag))
        if row is None:
            return False
        await self.s.delete(row)
        await self.s.flush()
        return True

    async def forget(self, member: MemberId, placeholder: str) -> None:
        await self._set(member, name=placeholder, bio="", languages=[], profile={}, capacity=0)
        for table, column in (
            (ExpertiseRow, ExpertiseRow.member_id),
            (ConversationRow, ConversationRow.member_id),
            (LinkCodeRow, LinkCodeRow.member_id),
            (IdentityRow, IdentityRow.member_id),
        ):
            await self.s.execute(delete(table).where(column == member))
        await self.s.execute(
            update(IdeaRow)
            .where(IdeaRow.owner_id == member)
            .values(title="(removed on request)", answers={})
            .execution_options(synchronize_session=False)
        )

    async def set_profile(
        self,
        member: MemberId,
        *,
        languages: Sequence[str],
        bio: str,
        profile: dict[str, Any],
    ) -> None:
        await self._set(member, languages=list(languages), bio=bio, profile=profile)

    async def search_ids(
        self, community: CommunityId, words: Sequence[str], *, exclude: MemberId
    ) -> list[MemberId]:
        match = _may_contain_any(words, self.s.get_bind().dialect.name)
        if match is None:
            return []
        has_identity = select(IdentityRow.id).where(IdentityRow.member_id == MemberRow.id).exists()
        # Ids only, in one pass: the tags' subqueries run once, and 10,000 ids are small.
        ids = await self.s.scalars(
            select(MemberRow.id)
            .where(
                MemberRow.community_id == community,
                MemberRow.id != exclude,
                has_identity,
                match,
            )
            .order_by(MemberRow.id)
        )
        return [MemberId(i) for i in ids]

    async def find_candidates(self, members: Sequence[MemberId]) -> list[FindCandidate]:
        if not members:
            return []
        rows = (
            await self.s.execute(
                select(MemberRow.id, MemberRow.name, MemberRow.bio, MemberRow.profile)
                .where(MemberRow.id.in_(members))
                .order_by(MemberRow.id)
            )
        ).all()
        expertise: dict[int, dict[str, int]] = {}
        for member_id, tag, level in await self.s.execute(
            select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
            .where(ExpertiseRow.member_id.in_(members))
            .order_by(ExpertiseRow.member_id, ExpertiseRow.tag)
        ):
            expertise.setdefault(member_id, {})[tag] = level
        return [
            FindCandidate(
                MemberId(r.id), r.name, r.bio or "", dict(r.profile or {}), expertise.get(r.id, {})
            )
            for r in rows
        ]

    async def reviewing_tags(self, community: CommunityId) -> set[str]:
        rows = await self.s.scalars(
            select(ExpertiseRow.tag)
            .distinct()
            .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
            .where(MemberRow.community_id == community, MemberRow.capacity > 0)
        )
        return set(rows)


# `find` looks for words in text as Python's str.lower() sees it. SQL can rule a member out
# only for words of printable ASCII without the characters that JSON escapes (" \) or that
# separate the parts of a profile's offers (, ( )): such a word is in the lowered text
# exactly when it is in the text with its ASCII letters lowered, once the only two
# characters that str.lower() turns into ASCII letters (the Kelvin sign and İ) are.
_UNPLAIN = frozenset('"\\,()')


def _plain(word: str) -> bool:
    return bool(word) and all(
        "!" <= c <= "~" and c not in _UNPLAIN and not "A" <= c <= "Z" for c in word
    )


def _folded(text: Any, dialect: str) -> Any:
    """`text` with ASCII letters lowered, and the Kelvin sign and İ turned into k and i."""
    text = func.replace(func.replace(text, "\u212a", "k"), "\u0130", "i", type_=sa.Text)
    if dialect == "postgresql":  # in the C collation lower() changes ASCII letters only,
        text = sa.collate(text, "C")  # whatever the database's locale (Turkish I...)
    return func.lower(text, type_=sa.Text)  # as SQLite's lower() does


def _may_contain_any(words: Sequence[str], dialect: str) -> Any:
    """A condition on MemberRow true for every member whose name, bio, tags or profile
    contain one of `words` (None for no words); not restrictive for unplain words."""
    if not words:
        return None
    if not all(_plain(w) for w in words):
        return true()
    # The profile is JSON text: non-ASCII characters are \u escapes there.
    profile = _folded(sa.cast(MemberRow.profile, sa.Text), dialect)
    profile = func.replace(func.replace(profile, "\\u212a", "k"), "\\u0130", "i", type_=sa.Text)
    name, bio = _folded(MemberRow.name, dialect), _folded(MemberRow.bio, dialect)
    tag = _folded(ExpertiseRow.tag, dialect)
    return or_(
        *(
            or_(
                name.contains(w, autoescape=True),
                bio.contains(w, autoescape=True),
                profile.contains(w, autoescape=True),
                select(ExpertiseRow.tag)
                .where(ExpertiseRow.member_id == MemberRow.id, tag.contains(w, autoescape=True))
                .exists(),
            )
            for w in dict.fromkeys(words)
        )
    )


def _conversation(row: Any) -> Conversation:
    """A conversation from its row (an ORM object or plain columns)."""
    return Conversation(
        member=MemberId(row.member_id),
        community=CommunityId(row.community_id),
        flow=row.flow,
        state=dict(row.state),
        platform=row.platform,
        external_id=row.external_id,
        started_at=row.started_at,
        updated_at=row.updated_at,
        reminded_at=row.reminded_at,
    )


_CONVERSATIONS = cast(sa.Table, ConversationRow.__table__)
_CONVERSATION = select(_CONVERSATIONS).where(_CONVERSATIONS.c.member_id == bindparam("member"))


class SqlConversations:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, member: MemberId) -> Conversation | None:
        # Asked for every message: a prebuilt statement on the connection, not the ORM.
        connection = await self.s.connection()
        row = (await connection.execute(_CONVERSATION, {"member": member})).first()
        return _conversation(row) if row else None

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
        return [_conversation(r) for r in rows]

    async def mark_reminded(self, member: MemberId, at: datetime) -> None:
        await self.s.execute(
            update(ConversationRow)
            .where(ConversationRow.member_id == member)
            .values(reminded_at=at)
        )


def _idea(row: Any, owner_name: str = "") -> Idea:
    return Idea(
        id=IdeaId(row.id),
        community=CommunityId(row.community_id),
        number=row.number,
        owner=MemberId(row.owner_id),
        title=row.title,
        answers=dict(row.answers),
        status=IdeaStatus(row.status),
        created_at=row.created_at,
        owner_name=owner_name,
    )


def _idea_by_number_statement() -> Select[Any]:
    ideas = cast(sa.Table, IdeaRow.__table__)
    members = cast(sa.Table, MemberRow.__table__)
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
        )
        self.s.add(row)
        await self.s.flush()
        return _idea(row)

    def _select(self) -> Select[IdeaRow, str]:
        return select(IdeaRow, MemberRow.name).join(MemberRow, MemberRow.id == IdeaRow.owner_id)

    async def by_number(self, community: CommunityId, number: int) -> Idea | None:
        # Every request, accept and offer reads its idea: prebuilt, plain columns.
        connection = await self.s.connection()
        row = (
            await connection.execute(_IDEA_BY_NUMBER, {"community": community, "number": number})
        ).first()
        return _idea(row, row.owner_name) if row else None

    async def of_owner(self, owner: MemberId) -> list[Idea]:
        rows = await self.s.execute(
            self._select().where(IdeaRow.owner_id == owner).order_by(IdeaRow.number)
        )
        return [_idea(r[0], r[1]) for r in rows]

    async def all(self, community: CommunityId) -> list[Idea]:
        rows = await self.s.execute(
            self._select().where(IdeaRow.community_id == community).order_by(IdeaRow.number)
        )
        return [_idea(r[0], r[1]) for r in rows]

    async def set_status(self, idea: IdeaId, status: IdeaStatus, at: datetime) -> None:
        await self.s.execute(
            update(IdeaRow).where(IdeaRow.id == idea).values(status=status.value, updated_at=at)
        )


_ACCOUNTS = cast(sa.Table, AccountRow.__table__)
_TX = cast(sa.Table, TransactionRow.__table__)
_POSTINGS = cast(sa.Table, PostingRow.__table__)
_ACCOUNT_IS = and_(
    _ACCOUNTS.c.community_id == bindparam("b_community"),
    _ACCOUNTS.c.kind == bindparam("b_kind"),
    _ACCOUNTS.c.member_id == bindparam("b_member"),
)
# Statements built once: the ledger's hot path only binds values to them.
_MOVE = (
    update(_ACCOUNTS)
    .where(_ACCOUNT_IS)
    .values(balance=_ACCOUNTS.c.balance + bindparam("b_amount"))
    .returning(_ACCOUNTS.c.id)
)
_DEBIT_TO_FLOOR = (
    update(_ACCOUNTS)
    .where(_ACCOUNT_IS, _ACCOUNTS.c.balance + bindparam("b_amount") >= bindparam("b_floor"))
    .values(balance=_ACCOUNTS.c.balance + bindparam("b_amount"))
    .returning(_ACCOUNTS.c.id)
)
_UNDO = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("b_account"))
    .values(balance=_ACCOUNTS.c.balance - bindparam("b_amount"))
)
_BALANCE = select(_ACCOUNTS.c.balance).where(_ACCOUNT_IS)
_INSERT_TX = {
    name: module.insert(_TX).on_conflict_do_nothing().returning(_TX.c.id)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}
_INSERT_POSTING = insert(_POSTINGS)


def _summary_statement() -> Select[Any]:
    """Balance, held, given and received of every member of a community (`b_community`)."""
    escrow = aliased(AccountRow)
    held = (
        select(func.coalesce(func.sum(PostingRow.amount), 0))
        .join(escrow, escrow.id == PostingRow.account_id)
        .where(
            escrow.community_id == bindparam("b_community"),
            escrow.kind == AccountKind.ESCROW.value,
            PostingRow.holder_id == MemberRow.id,
        )
        .scalar_subquery()
    )
    given = (
        select(func.coalesce(func.sum(PostingRow.amount), 0))
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            PostingRow.account_id == AccountRow.id,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .scalar_subquery()
    )
    received = (
        select(func.coalesce(func.sum(-PostingRow.amount), 0))
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            PostingRow.holder_id == MemberRow.id,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .scalar_subquery()
    )
    return (
        select(
            MemberRow.id,
            MemberRow.name,
            AccountRow.balance,
            held,
            given,
            received,
            MemberRow.last_active_at,
        )
        .join(
            AccountRow,
            and_(
                AccountRow.member_id == MemberRow.id,
                AccountRow.kind == AccountKind.MEMBER.value,
            ),
        )
        .where(MemberRow.community_id == bindparam("b_community"))
    )


# Built once: constructing this statement costs more than running it.
_SUMMARY = _summary_statement()
_SUMMARY_OF_MEMBER = _SUMMARY.where(MemberRow.id == bindparam("b_member"))


def _sort_key(account: AccountKey) -> tuple[str, int]:
    return (account.kind.value, int(account.member or 0))


class SqlLedger:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def _account_ids(
        self, community: CommunityId, keys: Sequence[AccountKey]
    ) -> dict[AccountKey, int]:
        wanted = {(k.kind.value, int(k.member or 0)): k for k in keys}
        rows = await self.s.execute(
            select(AccountRow.id, AccountRow.kind, AccountRow.member_id).where(
                AccountRow.community_id == community,
                AccountRow.kind.in_({k for k, _ in wanted}),
                AccountRow.member_id.in_({m for _, m in wanted}),
            )
        )
        found = {wanted[(kind, mid)]: id_ for id_, kind, mid in rows if (kind, mid) in wanted}
        missing = [k for k in keys if k not in found]
        if missing:
            raise LookupError(f"no such account in community {community}: {missing}")
        return found

    async def post(
        self,
        community: CommunityId,
        draft: TransactionDraft,
        credit_limit: int,
        at: datetime,
    ) -> int | None:
        conn = await self.s.connection()
        # The transaction row goes first: with a key, a concurrent duplicate waits on
        # the unique index and then inserts nothing, so it is posted exactly once.
        tx_id = (
            await conn.execute(
                _INSERT_TX[conn.dialect.name],
                {
                    "community_id": community,
                    "kind": draft.kind.value,
                    "reason": draft.reason,
                    "author_id": draft.author,
                    "request_id": draft.request,
                    "key": draft.key,
                    "created_at": at,
                },
            )
        ).scalar()
        if tx_id is None:
            return None
        applied: list[tuple[int, int]] = []
        # Accounts are updated in one fixed order so concurrent writers lock rows alike.
        for posting in sorted(draft.postings, key=lambda p: _sort_key(p.account)):
            floor = floor_for(posting.account, credit_limit)
            params = {
                "b_community": community,
                "b_kind": posting.account.kind.value,
                "b_member": int(posting.account.member or 0),
                "b_amount": posting.amount,
            }
            if posting.amount < 0 and floor is not None:
                # Conditional UPDATE: the check and the write are one statement, so two
                # writers can never both pass the floor (no lost update, no breach).
                row = (await conn.execute(_DEBIT_TO_FLOOR, {**params, "b_floor": floor})).first()
            else:
                row = (await conn.execute(_MOVE, params)).first()
            if row is None:
                await self._undo(conn, tx_id, applied)
                balance = await conn.scalar(_BALANCE, params)
                if balance is None:
                    raise LookupError(f"no account {posting.account} in community {community}")
                assert floor is not None
                raise LimitExceeded(posting.account, int(balance), floor, posting.amount)
            applied.append((row.id, posting.amount))
        account_ids = dict(
            zip(
                sorted(draft.postings, key=lambda p: _sort_key(p.account)),
                (a for a, _ in applied),
                strict=True,
            )
        )
        await conn.execute(
            _INSERT_POSTING,
            [
                {
                    "transaction_id": tx_id,
                    "account_id": account_ids[p],
                    "amount": p.amount,
                    "holder_id": p.holder,
                }
                for p in draft.postings
            ],
        )
        return int(tx_id)

    @staticmethod
    async def _undo(conn: AsyncConnection, tx_id: int, applied: list[tuple[int, int]]) -> None:
        """Take back the updates of a refused transaction (its rows are still locked by us)."""
        for account_id, amount in applied:
            await conn.execute(_UNDO, {"b_account": account_id, "b_amount": amount})
        await conn.execute(delete(_TX).where(_TX.c.id == tx_id))

    async def balance(self, community: CommunityId, account: AccountKey) -> int:
        ids = await self._account_ids(community, [account])
        value = await self.s.scalar(select(AccountRow.balance).where(AccountRow.id == ids[account]))
        return int(value or 0)

    @staticmethod
    def _info(row: Any) -> BalanceInfo:
        mid, name, balance, held, given, received, last = row
        return BalanceInfo(
            MemberId(mid), name, int(balance), int(held), int(given), int(received), last
        )

    async def balance_info(self, member: Member) -> BalanceInfo:
        connection = await self.s.connection()  # rows, not objects: skip the ORM layer
        row = (
            await connection.execute(
                _SUMMARY_OF_MEMBER, {"b_community": member.community, "b_member": member.id}
            )
        ).one()
        return self._info(row)

    async def all_balances(self, community: CommunityId) -> list[BalanceInfo]:
        rows = await self.s.execute(
            _SUMMARY.order_by(AccountRow.balance, MemberRow.id), {"b_community": community}
        )
        return [self._info(r) for r in rows]

    async def entries(
        self, community: CommunityId, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every posting of the community with its transaction, oldest first (exports);
        with `since`, those of transactions made then or later (stats' window)."""
        window = TransactionRow.created_at >= since if since is not None else true()
        author = aliased(MemberRow)
        owner = aliased(MemberRow)
        rows = await self.s.execute(
            select(
                TransactionRow.id,
                TransactionRow.created_at,
                TransactionRow.kind,
                TransactionRow.request_id,
                TransactionRow.reason,
                author.name,
                AccountRow.kind,
                owner.name,
                PostingRow.amount,
            )
            .join(PostingRow, PostingRow.transaction_id == TransactionRow.id)
            .join(AccountRow, AccountRow.id == PostingRow.account_id)
            .outerjoin(author, author.id == TransactionRow.author_id)
            .outerjoin(owner, owner.id == AccountRow.member_id)
            .where(TransactionRow.community_id == community, window)
            .order_by(TransactionRow.id, PostingRow.id)
        )
        keys = (
            "transaction",
            "at",
            "kind",
            "request",
            "reason",
            "author",
            "account",
            "member",
            "amount",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def history(self, member: MemberId, limit: int) -> list[LedgerLine]:
        author = aliased(MemberRow)
        rows = await self.s.execute(
            select(
                TransactionRow.id,
                TransactionRow.created_at,
                TransactionRow.kind,
                PostingRow.amount,
                TransactionRow.reason,
                author.name,
                RequestRow.number,
            )
            .join(PostingRow, PostingRow.transaction_id == TransactionRow.id)
            .join(AccountRow, AccountRow.id == PostingRow.account_id)
            .outerjoin(author, author.id == TransactionRow.author_id)
            .outerjoin(RequestRow, RequestRow.id == TransactionRow.request_id)
            .where(
                AccountRow.member_id == member,
                AccountRow.kind == AccountKind.MEMBER.value,
            )
            .order_by(TransactionRow.id.desc())
            .limit(limit)
        )
        return [
            LedgerLine(tid, at, EntryKind(kind), int(amount), reason, who, req)
            for tid, at, kind, amount, reason, who, req in rows
        ]

    async def check_invariants(self, community: CommunityId) -> list[str]:
        problems: list[str] = []
        unbalanced = await self.s.execute(
            select(PostingRow.transaction_id, func.sum(PostingRow.amount))
            .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
            .where(TransactionRow.community_id == community)
            .group_by(PostingRow.transaction_id)
            .having(func.sum(PostingRow.amount) != 0)
        )
        problems += [f"transaction {t} sums to {s}" for t, s in unbalanced]
        empty = await self.s.scalar(
            select(func.count(TransactionRow.id)).where(
                TransactionRow.community_id == community,
                ~select(PostingRow.id)
                .where(PostingRow.transaction_id == TransactionRow.id)
                .exists(),
            )
        )
        if empty:
            problems.append(f"{empty} transactions without postings")
        total = await self.s.scalar(
            select(func.coalesce(func.sum(PostingRow.amount), 0))
            .join(AccountRow, AccountRow.id == PostingRow.account_id)
            .where(AccountRow.community_id == community)
        )
        if total:
            problems.append(f"community total is {total}, not 0")
        derived = (
            select(
                PostingRow.account_id.label("account_id"),
                func.sum(PostingRow.amount).label("total"),
            )
            .group_by(PostingRow.account_id)
            .subquery()
        )
        mismatched = await self.s.execute(
            select(AccountRow.id, AccountRow.balance, func.coalesce(derived.c.total, 0))
            .outerjoin(derived, derived.c.account_id == AccountRow.id)
            .where(
                AccountRow.community_id == community,
                AccountRow.balance != func.coalesce(derived.c.total, 0),
            )
        )
        problems += [f"account {a} caches {b} but its entries sum to {d}" for a, b, d in mismatched]
        negative_escrow = await self.s.execute(
            select(PostingRow.holder_id, func.sum(PostingRow.amount))
            .join(AccountRow, AccountRow.id == PostingRow.account_id)
            .where(
                AccountRow.community_id == community,
                AccountRow.kind == AccountKind.ESCROW.value,
            )
            .group_by(PostingRow.holder_id)
            .having(func.sum(PostingRow.amount) < 0)
        )
        problems += [f"escrow for member {h} is negative ({s})" for h, s in negative_escrow]
        return problems

    async def credits(
        self,
        community: CommunityId,
        kinds: Sequence[EntryKind],
        since: datetime,
        until: datetime,
    ) -> list[tuple[datetime, EntryKind, int]]:
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
        return [(at, EntryKind(kind), int(amount)) for at, kind, amount in rows]

    async def sharing(self, community: CommunityId) -> tuple[int, int]:
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


_REQUEST_PEER = aliased(MemberRow)


def _help_request(row: Any) -> HelpRequest:
    """A request from a flat row of `_REQUEST_SELECT` (the request's columns and names)."""
    return HelpRequest(
        id=RequestId(row.id),
        community=CommunityId(row.community_id),
        number=row.number,
        idea=IdeaId(row.idea_id),
        idea_number=row.idea_number,
        idea_title=row.idea_title,
        requester=MemberId(row.requester_id),
        requester_name=row.requester_name,
        kind=row.kind,
        price=row.price,
        tags=tuple(row.tags or ()),
        status=RequestStatus(row.status),
        round=row.round,
        created_at=row.created_at,
        peer=MemberId(row.peer_id) if row.peer_id is not None else None,
        peer_name=row.peer_name,
        hours=row.hours,
        feedback=row.feedback,
        rating=row.rating,
        note=row.note,
        accepted_at=row.accepted_at,
        delivered_at=row.delivered_at,
        closed_at=row.closed_at,
        escalated_at=row.escalated_at,
        auto_release_at=row.auto_release_at,
    )


def _offer(row: Any) -> Offer:
    """An offer from a flat row of `_OFFER_SELECT` (the offer's columns and names)."""
    return Offer(
        id=row.id,
        request=RequestId(row.request_id),
        request_number=row.request_number,
        peer=MemberId(row.peer_id),
        peer_name=row.peer_name,
        round=row.round,
        status=OfferStatus(row.status),
        explanation=row.explanation,
        offered_at=row.offered_at,
        expires_at=row.expires_at,
        remind_at=row.remind_at,
        answered_at=row.answered_at,
        reason=row.reason,
    )


# Requests and offers are read and moved on by every command and sweep: their statements
# are built once, as plain (Core) statements that return rows rather than ORM objects, and
# run on the session's connection with only values bound (no statement construction and
# cache-key generation per call, no identity-map bookkeeping).
_REQUESTS = cast(sa.Table, RequestRow.__table__)
_OFFERS = cast(sa.Table, OfferRow.__table__)
_MEMBERS = cast(sa.Table, MemberRow.__table__)
_IDEAS = cast(sa.Table, IdeaRow.__table__)


def _request_select() -> Select[Any]:
    requester = _MEMBERS.alias("requester")
    peer = _MEMBERS.alias("peer")
    return (
        select(
            *_REQUESTS.c,
            _IDEAS.c.number.label("idea_number"),
            _IDEAS.c.title.label("idea_title"),
            requester.c.name.label("requester_name"),
            peer.c.name.label("peer_name"),
        )
        .join(_IDEAS, _IDEAS.c.id == _REQUESTS.c.idea_id)
        .join(requester, requester.c.id == _REQUESTS.c.requester_id)
        .outerjoin(peer, peer.c.id == _REQUESTS.c.peer_id)
    )


def _offer_select() -> Select[Any]:
    return (
        select(
            *_OFFERS.c,
            _REQUESTS.c.number.label("request_number"),
            _MEMBERS.c.name.label("peer_name"),
        )
        .join(_REQUESTS, _REQUESTS.c.id == _OFFERS.c.request_id)
        .join(_MEMBERS, _MEMBERS.c.id == _OFFERS.c.peer_id)
    )


_REQUEST_SELECT = _request_select()
_REQUEST_BY_ID = _REQUEST_SELECT.where(_REQUESTS.c.id == bindparam("b_id"))
_REQUEST_BY_NUMBER = _REQUEST_SELECT.where(
    _REQUESTS.c.community_id == bindparam("b_community"),
    _REQUESTS.c.number == bindparam("b_number"),
)
_REQUESTS_BY_IDS = _REQUEST_SELECT.where(_REQUESTS.c.id.in_(bindparam("b_ids", expanding=True)))
_OFFER_SELECT = _offer_select()
_OFFER_BY_ID = _OFFER_SELECT.where(_OFFERS.c.id == bindparam("b_id"))
_OFFER_ID_IN = _OFFERS.c.id.in_(bindparam("b_ids", expanding=True))
_OFFERS_BY_IDS = _OFFER_SELECT.where(_OFFER_ID_IN).order_by(_OFFERS.c.id)
_OFFER_OF_REQUEST = _OFFERS.c.request_id == bindparam("b_request")
_OFFERS_OF_REQUEST = _OFFER_SELECT.where(_OFFER_OF_REQUEST).order_by(_OFFERS.c.id)
_OFFER_FOR = (
    _OFFER_SELECT.where(
        _OFFERS.c.request_id == bindparam("b_request"), _OFFERS.c.peer_id == bindparam("b_peer")
    )
    .order_by(_OFFERS.c.id.desc())
    .limit(1)
)
_OPEN_OFFERS_OF_PEER = _OFFER_SELECT.where(
    _OFFERS.c.peer_id == bindparam("b_peer"), _OFFERS.c.status == OfferStatus.OFFERED.value
).order_by(_OFFERS.c.id)
_INSERT_REQUEST = insert(_REQUESTS).returning(_REQUESTS.c.id)
_INSERT_OFFER = insert(_OFFERS).returning(_OFFERS.c.id)
_INSERT_OFFERS = insert(_OFFERS)
_ANSWER_OFFER = (
    update(_OFFERS)
    .where(_OFFERS.c.id == bindparam("b_id"), _OFFERS.c.status == OfferStatus.OFFERED.value)
    .values(
        status=bindparam("b_status"),
        answered_at=bindparam("b_at", type_=_OFFERS.c.answered_at.type),
        reason=bindparam("b_reason"),
        remind_at=None,
    )
)
_CLEAR_REMINDER = update(_OFFERS).where(_OFFERS.c.id == bindparam("b_id")).values(remind_at=None)
_COMMITTED = select(func.coalesce(func.sum(_REQUESTS.c.price), 0)).where(
    _REQUESTS.c.requester_id == bindparam("b_requester"),
    _REQUESTS.c.status.in_([RequestStatus.OPEN.value, RequestStatus.ESCALATED.value]),
)
# `transition` statements, one per shape (how many statuses it moves from, which fields).
_TRANSITIONS: dict[tuple[int, tuple[str, ...]], Any] = {}


def _transition_statement(sources: int, names: tuple[str, ...]) -> Any:
    statement = _TRANSITIONS.get((sources, names))
    if statement is None:
        column = _REQUESTS.c
        statement = (
            update(_REQUESTS)
            .where(
                column.id == bindparam("b_id"),
                column.status.in_([bindparam(f"b_from{i}") for i in range(sources)]),
            )
            .values(
                status=bindparam("b_to"),
                **{n: bindparam(f"b_{n}", type_=column[n].type) for n in names},
            )
        )
        _TRANSITIONS[(sources, names)] = statement
    return statement


def _facts_statements() -> tuple[Any, Any, Any]:
    """`peer_facts`' statements (bound: `b_community`, `b_since`): the members, their
    expertise, and six per-member aggregates: assigned requests, open offers, reviews
    delivered since, last offer, SIF given and received in reviews."""
    community: Any = bindparam("b_community")
    members = (
        select(
            MemberRow.id,
            MemberRow.name,
            MemberRow.role,
            MemberRow.capacity,
            MemberRow.paused_until,
            MemberRow.languages,
        )
        .where(MemberRow.community_id == community)
        .order_by(MemberRow.id)
    )
    expertise = (
        select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
        .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
        .where(MemberRow.community_id == community)
    )
    assigned = (
        select(RequestRow.peer_id, func.count())
        .where(
            RequestRow.community_id == community,
            RequestRow.status == RequestStatus.ASSIGNED.value,
        )
        .group_by(RequestRow.peer_id)
    )
    offered = (
        select(OfferRow.peer_id, func.count())
        .join(RequestRow, RequestRow.id == OfferRow.request_id)
        .where(
            RequestRow.community_id == community,
            OfferRow.status == OfferStatus.OFFERED.value,
        )
        .group_by(OfferRow.peer_id)
    )
    recent = (
        select(RequestRow.peer_id, func.count())
        .where(
            RequestRow.community_id == community,
            RequestRow.delivered_at >= bindparam("b_since", type_=RequestRow.delivered_at.type),
        )
        .group_by(RequestRow.peer_id)
    )
    last_offer = (
        select(OfferRow.peer_id, func.max(OfferRow.offered_at))
        .join(RequestRow, RequestRow.id == OfferRow.request_id)
        .where(RequestRow.community_id == community)
        .group_by(OfferRow.peer_id)
    )
    released = (
        select(PostingRow.account_id, PostingRow.holder_id, PostingRow.amount)
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            TransactionRow.community_id == community,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .subquery()
    )
    given = (
        select(AccountRow.member_id, func.sum(released.c.amount))
        .join(released, released.c.account_id == AccountRow.id)
        .where(AccountRow.kind == AccountKind.MEMBER.value)
        .group_by(AccountRow.member_id)
    )
    received = (
        select(released.c.holder_id, func.sum(-released.c.amount))
        .where(released.c.holder_id.is_not(None))
        .group_by(released.c.holder_id)
    )
    # One statement for the six: (which, member, number, moment) rows. One round trip to
    # the database instead of six; the aggregates are the same. The NULLs are typed, so
    # PostgreSQL matches the columns of the branches.
    parts = []
    no_number = sa.cast(sa.null(), sa.BigInteger())
    no_moment = sa.cast(sa.null(), OfferRow.offered_at.type)
    for which, part in enumerate((assigned, offered, recent, last_offer, given, received)):
        member, value = part.selected_columns
        number, moment = (no_number, value) if part is last_offer else (value, no_moment)
        parts.append(part.with_only_columns(sa.literal(which), member, number, moment))
    return members, expertise, sa.union_all(*parts)


_FACTS_MEMBERS, _FACTS_EXPERTISE, _FACTS_COUNTS = _facts_statements()
_ROLES = {role.value: role for role in Role}


class SqlRequests:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.communities = SqlCommunities(session)

    async def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        """Plain rows of a prebuilt statement, on the session's connection (sees what the
        session flushed in this transaction)."""
        connection = await self.s.connection()
        return (await connection.execute(statement, params)).all()

    async def _update(self, statement: Any, params: dict[str, Any]) -> int:
        connection = await self.s.connection()
        return int((await connection.execute(statement, params)).rowcount)

    async def create(
        self,
        community: CommunityId,
        idea: IdeaId,
        requester: MemberId,
        kind: str,
        price: int,
        tags: Sequence[str],
        at: datetime,
    ) -> HelpRequest:
        number = await self.communities.next_number(community, "request")
        connection = await self.s.connection()
        request_id = (
            await connection.execute(
                _INSERT_REQUEST,
                {
                    "community_id": community,
                    "number": number,
                    "idea_id": idea,
                    "requester_id": requester,
                    "kind": kind,
                    "price": price,
                    "tags": list(tags),
                    "status": RequestStatus.OPEN.value,
                    "round": 0,
                    "created_at": at,
                },
            )
        ).scalar_one()
        found = await self.get(RequestId(request_id))
        assert found is not None
        return found

    async def get(self, request: RequestId) -> HelpRequest | None:
        rows = await self._rows(_REQUEST_BY_ID, {"b_id": request})
        return _help_request(rows[0]) if rows else None

    async def by_number(self, community: CommunityId, number: int) -> HelpRequest | None:
        rows = await self._rows(_REQUEST_BY_NUMBER, {"b_community": community, "b_number": number})
        return _help_request(rows[0]) if rows else None

    async def of_member(self, member: MemberId) -> list[HelpRequest]:
        rows = await self.s.execute(
            _REQUEST_SELECT.where(
                (_REQUESTS.c.requester_id == member) | (_REQUESTS.c.peer_id == member)
            ).order_by(_REQUESTS.c.number.desc())
        )
        return [_help_request(r) for r in rows]

    async def all(self, community: CommunityId) -> list[HelpRequest]:
        rows = await self.s.execute(
            _REQUEST_SELECT.where(_REQUESTS.c.community_id == community).order_by(
                _REQUESTS.c.number
            )
        )
        return [_help_request(r) for r in rows]

    async def committed(self, requester: MemberId) -> int:
        rows = await self._rows(_COMMITTED, {"b_requester": requester})
        return int(rows[0][0] or 0)

    async def transition(
        self,
        request: RequestId,
        from_: Sequence[RequestStatus],
        to: RequestStatus,
        **fields: Any,
    ) -> bool:
        names = tuple(sorted(fields))
        params = {f"b_{name}": fields[name] for name in names}
        params.update({f"b_from{i}": status.value for i, status in enumerate(from_)})
        params.update(b_id=request, b_to=to.value)
        return await self._update(_transition_statement(len(from_), names), params) == 1

    async def claim_auto_release(self, now: datetime, limit: int) -> list[HelpRequest]:
        ids = list(
            await self.s.scalars(
                select(RequestRow.id)
                .where(
                    RequestRow.status == RequestStatus.DELIVERED.value,
                    RequestRow.auto_release_at <= now,
                )
                .order_by(RequestRow.auto_release_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        found = {r.id: r for r in await self._rows(_REQUESTS_BY_IDS, {"b_ids": ids})}
        return [_help_request(found[i]) for i in ids if i in found]

    async def add_offer(
        self,
        request: RequestId,
        peer: MemberId,
        round_: int,
        explanation: str,
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> Offer:
        connection = await self.s.connection()
        offer_id = (
            await connection.execute(
                _INSERT_OFFER,
                {
                    "request_id": request,
                    "peer_id": peer,
                    "round": round_,
                    "status": OfferStatus.OFFERED.value,
                    "explanation": explanation,
                    "offered_at": at,
                    "expires_at": expires_at,
                    "remind_at": remind_at,
                },
            )
        ).scalar_one()
        return _offer((await self._rows(_OFFER_BY_ID, {"b_id": offer_id}))[0])

    async def add_offers(
        self,
        request: RequestId,
        round_: int,
        peers: Sequence[tuple[MemberId, str]],
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> None:
        if not peers:
            return
        connection = await self.s.connection()
        await connection.execute(
            _INSERT_OFFERS,  # one statement for the round, rows in the order given
            [
                {
                    "request_id": request,
                    "peer_id": peer,
                    "round": round_,
                    "status": OfferStatus.OFFERED.value,
                    "explanation": explanation,
                    "offered_at": at,
                    "expires_at": expires_at,
                    "remind_at": remind_at,
                }
                for peer, explanation in peers
            ],
        )

    async def offers(self, request: RequestId) -> list[Offer]:
        return [_offer(r) for r in await self._rows(_OFFERS_OF_REQUEST, {"b_request": request})]

    async def offer_for(self, request: RequestId, peer: MemberId) -> Offer | None:
        rows = await self._rows(_OFFER_FOR, {"b_request": request, "b_peer": peer})
        return _offer(rows[0]) if rows else None

    async def open_offers(self, peer: MemberId) -> list[Offer]:
        return [_offer(r) for r in await self._rows(_OPEN_OFFERS_OF_PEER, {"b_peer": peer})]

    async def answer_offer(
        self, offer: int, to: OfferStatus, at: datetime, reason: str | None = None
    ) -> bool:
        params = {"b_id": offer, "b_status": to.value, "b_at": at, "b_reason": reason}
        return await self._update(_ANSWER_OFFER, params) == 1

    async def withdraw_offers(self, request: RequestId, at: datetime) -> list[Offer]:
        still_open = [o for o in await self.offers(request) if o.status is OfferStatus.OFFERED]
        withdrawn = []
        for offer in still_open:
            if await self.answer_offer(offer.id, OfferStatus.WITHDRAWN, at):
                withdrawn.append(offer)
        return withdrawn

    async def _claim_offers(self, condition: Any, order: Any, limit: int) -> list[Offer]:
        ids = list(
            await self.s.scalars(
                select(OfferRow.id)
                .where(OfferRow.status == OfferStatus.OFFERED.value, condition)
                .order_by(order)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        return [_offer(r) for r in await self._rows(_OFFERS_BY_IDS, {"b_ids": ids})]

    async def claim_offers_to_remind(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(
            and_(OfferRow.remind_at.is_not(None), OfferRow.remind_at <= now),
            OfferRow.remind_at,
            limit,
        )

    async def clear_reminder(self, offer: int) -> None:
        await self._update(_CLEAR_REMINDER, {"b_id": offer})

    async def claim_expired_offers(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(OfferRow.expires_at <= now, OfferRow.expires_at, limit)

    async def peer_facts(self, community: CommunityId, since: datetime) -> list[PeerFacts]:
        # Plain columns, not ORM objects, from statements built once: this runs for every
        # routing round, over every member of the community.
        connection = await self.s.connection()
        params = {"b_community": community, "b_since": since}
        members = (await connection.execute(_FACTS_MEMBERS, params)).all()
        if not members:
            return []
        expertise: dict[int, dict[str, int]] = {}
        for member_id, tag, level in await connection.execute(_FACTS_EXPERTISE, params):
            expertise.setdefault(member_id, {})[tag] = level
        counts: list[dict[Any, Any]] = [{} for _ in range(6)]
        for which, member_id, number, moment in await connection.execute(_FACTS_COUNTS, params):
            counts[which][member_id] = number if moment is None else moment
        assigned, offered, recent, last_offer, given, received = counts
        utc_last = {k: _as_utc(v) for k, v in last_offer.items()}
        roles = _ROLES
        return [
            PeerFacts(
                member=MemberId(member_id),
                name=name,
                role=roles[role],
                expertise=expertise.get(member_id, {}),
                languages=tuple(languages or ()),
                capacity=capacity,
                paused_until=paused_until,
                open_reviews=int(assigned.get(member_id, 0)) + int(offered.get(member_id, 0)),
                reviews_recent=int(recent.get(member_id, 0)),
                last_offer_at=utc_last.get(member_id),
                given=int(given.get(member_id, 0) or 0),
                received=int(received.get(member_id, 0) or 0),
            )
            for member_id, name, role, capacity, paused_until, languages in members
        ]

    async def count_open_offers(self) -> int:
        value = await self.s.scalar(
            select(func.count())
            .select_from(OfferRow)
            .where(OfferRow.status == OfferStatus.OFFERED.value)
        )
        return int(value or 0)

    async def window(self, community: CommunityId, since: datetime) -> list[RequestTimes]:
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
        return [
            RequestTimes(
                r.number,
                RequestStatus(r.status),
                tuple(r.tags or ()),
                r.created_at,
                r.accepted_at,
                r.delivered_at,
                r.closed_at,
                r.escalated_at,
            )
            for r in rows
        ]

    async def offer_counts(self, community: CommunityId, since: datetime) -> dict[OfferStatus, int]:
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


def _as_utc(value: Any) -> datetime | None:
    """Aggregates bypass the column type: SQLite returns a naive string or datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        for table, column in (
            (ConversationRow, ConversationRow.member_id),
            (ExpertiseRow, ExpertiseRow.member_id),
            (LinkCodeRow, LinkCodeRow.member_id),
        ):
            await self.s.execute(delete(table).where(column == from_member))
        await self.s.execute(
            delete(AccountRow).where(
                AccountRow.kind == AccountKind.MEMBER.value, AccountRow.member_id == from_member
            )
        )
        await self.s.execute(delete(MemberRow).where(MemberRow.id == from_member))


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

    async def count(self, community: CommunityId, since: datetime) -> int:
        found = await self.s.scalar(
            select(func.count()).where(
                IntroductionRow.community_id == community, IntroductionRow.created_at >= since
            )
        )
        return int(found or 0)


class SqlEventLog:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def first_time(self, key: str, at: datetime) -> bool:
        stmt = insert_ignoring_conflicts(self.s, ProcessedEventRow).values(key=key, created_at=at)
        inserted = await self.s.scalar(stmt.returning(ProcessedEventRow.key))
        return inserted is not None


def _parts(message: Outbound) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if message.attachment is not None:
        parts["attachment"] = {
            "filename": message.attachment.filename,
            "mimetype": message.attachment.mimetype,
            "content": base64.b64encode(message.attachment.content).decode("ascii"),
        }
    if message.table is not None:
        parts["table"] = {
            "headers": list(message.table.headers),
            "rows": [list(r) for r in message.table.rows],
        }
    if message.buttons:
        parts["buttons"] = [[b.label, b.action] for b in message.buttons]
    return parts


def _outbound(row: Any) -> Outbound:
    parts = row.parts or {}
    table = parts.get("table")
    return Outbound(
        platform=row.platform,
        delivery=Delivery(row.delivery),
        to=row.to,
        text=row.text,
        channel=row.channel,
        table=Table(tuple(table["headers"]), tuple(tuple(r) for r in table["rows"]))
        if table
        else None,
        buttons=tuple(Button(label, action) for label, action in parts.get("buttons", [])),
        outbox_id=row.id,
        attachment=Attachment(
            attached["filename"], base64.b64decode(attached["content"]), attached["mimetype"]
        )
        if (attached := parts.get("attachment"))
        else None,
    )


_OUTBOX = cast(sa.Table, OutboxRow.__table__)
# Every message goes through these: built once, run on the connection (no ORM flush).
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(
        sent_at=bindparam("b_at", type_=_OUTBOX.c.sent_at.type),
        claimed_until=None,
        platform_ref=bindparam("b_ref"),
    )
)
_CLAIMABLE = (
    select(_OUTBOX)
    .where(
        _OUTBOX.c.sent_at.is_(None),
        _OUTBOX.c.platform.in_(bindparam("b_platforms", expanding=True)),
        or_(
            _OUTBOX.c.claimed_until.is_(None),
            _OUTBOX.c.claimed_until <= bindparam("b_now", type_=_OUTBOX.c.claimed_until.type),
        ),
    )
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        claimed_until=bindparam("b_until", type_=_OUTBOX.c.claimed_until.type),
        attempts=_OUTBOX.c.attempts + 1,
    )
)


class SqlOutbox:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(
        self, message: Outbound, at: datetime, claimed_until: datetime | None = None
    ) -> int:
        connection = await self.s.connection()
        result = await connection.execute(
            _INSERT_OUTBOX,
            {
                "platform": message.platform,
                "delivery": message.delivery.value,
                "to": message.to,
                "channel": message.channel,
                "text": message.text,
                "parts": _parts(message),
                "created_at": at,
                # Claimed by the process about to send it, which counts the attempt now.
                "attempts": 0 if claimed_until is None else 1,
                "claimed_until": claimed_until,
            },
        )
        return int(result.scalar_one())

    async def pending(self, platforms: Sequence[str], limit: int) -> list[Outbound]:
        rows = await self.s.scalars(
            select(OutboxRow)
            .where(OutboxRow.sent_at.is_(None), OutboxRow.platform.in_(list(platforms)))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [_outbound(r) for r in rows]

    async def claim(
        self, platforms: Sequence[str], now: datetime, until: datetime, limit: int
    ) -> list[tuple[Outbound, bool]]:
        """Unsent messages nobody holds, now held until `until`; with each, whether a send
        was tried before (then it may have arrived). Rows other processes are claiming at
        this moment are skipped, not waited for."""
        connection = await self.s.connection()
        rows = (
            await connection.execute(
                _CLAIMABLE, {"b_platforms": list(platforms), "b_now": now, "b_limit": limit}
            )
        ).all()
        claimed = [(_outbound(r), r.attempts > 0) for r in rows]
        if rows:
            await connection.execute(_CLAIM, {"b_ids": [r.id for r in rows], "b_until": until})
        return claimed

    async def renew(self, outbox_id: int, held_until: datetime | None, until: datetime) -> bool:
        """Extend a hold that is still ours: unsent and held until exactly `held_until`."""
        held = (
            OutboxRow.claimed_until.is_(None)
            if held_until is None
            else OutboxRow.claimed_until == held_until
        )
        result = await self.s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id, OutboxRow.sent_at.is_(None), held)
            .values(claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, outbox_ids: Sequence[int], at: datetime) -> None:
        """Let deliveries take these messages again from `at` (a send failed or never began)."""
        if outbox_ids:
            await self.s.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(list(outbox_ids)), OutboxRow.sent_at.is_(None))
                .values(claimed_until=at)
                .execution_options(synchronize_session=False)
            )

    async def mark_sent(self, outbox_id: int, at: datetime, ref: str | None = None) -> None:
        await self.mark_all_sent([(outbox_id, ref)], at)

    async def mark_all_sent(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        if sent:
            connection = await self.s.connection()
            await connection.execute(
                _MARK_SENT, [{"b_id": i, "b_at": at, "b_ref": ref} for i, ref in sent]
            )

    async def backlog(self) -> int:
        value = await self.s.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))
        )
        return int(value or 0)


__all__ = [
    "SqlCommunities",
    "SqlConversations",
    "SqlEventLog",
    "SqlIdeas",
    "SqlIntroductions",
    "SqlLedger",
    "SqlLinks",
    "SqlMembers",
    "SqlOutbox",
    "SqlRequests",
]
