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

from bot.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.ledger import AccountKey, AccountKind, EntryKind, TransactionDraft, floor_for
from bot.messages import Attachment, Button, Delivery, Outbound, Table
from bot.ports import LimitExceeded
from bot.records import (
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
        rows = await self.s.scalars(
            select(TagRow.tag).where(TagRow.community_id == community).order_by(TagRow.tag)
        )
        return list(rows)

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
        dialect = self.s.get_bind().dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(CounterRow).values(community_id=community, name=counter, value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CounterRow.community_id, CounterRow.name],
            set_={"value": CounterRow.value + 1},
        ).returning(CounterRow.value)
        return int(await self.s.scalar(stmt) or 0)


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


def _by_identity_statement() -> Select[Any]:
    members = MemberRow.__table__
    asked = IdentityRow.__table__.alias("asked")
    every = IdentityRow.__table__.alias("every")
    return (
        select(
            *members.c,
            every.c.platform.label("i_platform"),
            every.c.external_id.label("i_external_id"),
        )
        .join(asked, asked.c.member_id == members.c.id)
        .join(every, every.c.member_id == members.c.id)
        .where(
            asked.c.platform == bindparam("platform"),
            asked.c.external_id == bindparam("external_id"),
        )
        .order_by(every.c.id)
    )


_BY_IDENTITY = _by_identity_statement()


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
        # Every command starts here: one prebuilt statement, the member with all identities.
        connection = await self.s.connection()  # a plain statement: skip the ORM layer
        rows = (
            await connection.execute(
                _BY_IDENTITY, {"platform": platform, "external_id": external_id}
            )
        ).all()
        if not rows:
            return None
        return _member(rows[0], [_IdentityOf(r.i_platform, r.i_external_id) for r in rows])

    async def get(self, member: MemberId) -> Member | None:
        row = await self.s.get(MemberRow, member)
        return (await self._with_identities([row]))[0] if row else None

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
        await self._set(member, last_active_at=at)

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


def _conversation(row: ConversationRow) -> Conversation:
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


class SqlConversations:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, member: MemberId) -> Conversation | None:
        row = await self.s.get(ConversationRow, member)
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


def _idea(row: IdeaRow, owner_name: str = "") -> Idea:
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
        row = (
            await self.s.execute(
                self._select().where(IdeaRow.community_id == community, IdeaRow.number == number)
            )
        ).first()
        return _idea(row[0], row[1]) if row else None

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


_REQUEST_PEER = aliased(MemberRow)


def _help_request(row: Any) -> HelpRequest:
    req, idea_number, idea_title, requester_name, peer_name = row
    return HelpRequest(
        id=RequestId(req.id),
        community=CommunityId(req.community_id),
        number=req.number,
        idea=IdeaId(req.idea_id),
        idea_number=idea_number,
        idea_title=idea_title,
        requester=MemberId(req.requester_id),
        requester_name=requester_name,
        kind=req.kind,
        price=req.price,
        tags=tuple(req.tags or ()),
        status=RequestStatus(req.status),
        round=req.round,
        created_at=req.created_at,
        peer=MemberId(req.peer_id) if req.peer_id is not None else None,
        peer_name=peer_name,
        hours=req.hours,
        feedback=req.feedback,
        rating=req.rating,
        note=req.note,
        accepted_at=req.accepted_at,
        delivered_at=req.delivered_at,
        closed_at=req.closed_at,
        escalated_at=req.escalated_at,
        auto_release_at=req.auto_release_at,
    )


def _offer(row: Any) -> Offer:
    offer, number, name = row
    return Offer(
        id=offer.id,
        request=RequestId(offer.request_id),
        request_number=number,
        peer=MemberId(offer.peer_id),
        peer_name=name,
        round=offer.round,
        status=OfferStatus(offer.status),
        explanation=offer.explanation,
        offered_at=offer.offered_at,
        expires_at=offer.expires_at,
        remind_at=offer.remind_at,
        answered_at=offer.answered_at,
        reason=offer.reason,
    )


class SqlRequests:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.communities = SqlCommunities(session)

    def _select(self) -> Any:
        requester = aliased(MemberRow)
        return (
            select(RequestRow, IdeaRow.number, IdeaRow.title, requester.name, _REQUEST_PEER.name)
            .join(IdeaRow, IdeaRow.id == RequestRow.idea_id)
            .join(requester, requester.id == RequestRow.requester_id)
            .outerjoin(_REQUEST_PEER, _REQUEST_PEER.id == RequestRow.peer_id)
        )

    def _offers(self) -> Any:
        return (
            select(OfferRow, RequestRow.number, MemberRow.name)
            .join(RequestRow, RequestRow.id == OfferRow.request_id)
            .join(MemberRow, MemberRow.id == OfferRow.peer_id)
        )

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
        row = RequestRow(
            community_id=community,
            number=number,
            idea_id=idea,
            requester_id=requester,
            kind=kind,
            price=price,
            tags=list(tags),
            status=RequestStatus.OPEN.value,
            round=0,
            created_at=at,
        )
        self.s.add(row)
        await self.s.flush()
        found = await self.get(RequestId(row.id))
        assert found is not None
        return found

    async def get(self, request: RequestId) -> HelpRequest | None:
        row = (await self.s.execute(self._select().where(RequestRow.id == request))).first()
        return _help_request(row) if row else None

    async def by_number(self, community: CommunityId, number: int) -> HelpRequest | None:
        row = (
            await self.s.execute(
                self._select().where(
                    RequestRow.community_id == community, RequestRow.number == number
                )
            )
        ).first()
        return _help_request(row) if row else None

    async def of_member(self, member: MemberId) -> list[HelpRequest]:
        rows = await self.s.execute(
            self._select()
            .where((RequestRow.requester_id == member) | (RequestRow.peer_id == member))
            .order_by(RequestRow.number.desc())
        )
        return [_help_request(r) for r in rows]

    async def all(self, community: CommunityId) -> list[HelpRequest]:
        rows = await self.s.execute(
            self._select().where(RequestRow.community_id == community).order_by(RequestRow.number)
        )
        return [_help_request(r) for r in rows]

    async def committed(self, requester: MemberId) -> int:
        total = await self.s.scalar(
            select(func.coalesce(func.sum(RequestRow.price), 0)).where(
                RequestRow.requester_id == requester,
                RequestRow.status.in_([RequestStatus.OPEN.value, RequestStatus.ESCALATED.value]),
            )
        )
        return int(total or 0)

    async def transition(
        self,
        request: RequestId,
        from_: Sequence[RequestStatus],
        to: RequestStatus,
        **fields: Any,
    ) -> bool:
        result = await self.s.execute(
            update(RequestRow)
            .where(RequestRow.id == request, RequestRow.status.in_([f.value for f in from_]))
            .values(status=to.value, **fields)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_auto_release(self, now: datetime, limit: int) -> list[HelpRequest]:
        ids = await self.s.scalars(
            select(RequestRow.id)
            .where(
                RequestRow.status == RequestStatus.DELIVERED.value,
                RequestRow.auto_release_at <= now,
            )
            .order_by(RequestRow.auto_release_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = [await self.get(RequestId(i)) for i in list(ids)]
        return [r for r in found if r is not None]

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
        row = OfferRow(
            request_id=request,
            peer_id=peer,
            round=round_,
            status=OfferStatus.OFFERED.value,
            explanation=explanation,
            offered_at=at,
            expires_at=expires_at,
            remind_at=remind_at,
        )
        self.s.add(row)
        await self.s.flush()
        found = (await self.s.execute(self._offers().where(OfferRow.id == row.id))).first()
        return _offer(found)

    async def offers(self, request: RequestId) -> list[Offer]:
        rows = await self.s.execute(
            self._offers().where(OfferRow.request_id == request).order_by(OfferRow.id)
        )
        return [_offer(r) for r in rows]

    async def offer_for(self, request: RequestId, peer: MemberId) -> Offer | None:
        row = (
            await self.s.execute(
                self._offers()
                .where(OfferRow.request_id == request, OfferRow.peer_id == peer)
                .order_by(OfferRow.id.desc())
                .limit(1)
            )
        ).first()
        return _offer(row) if row else None

    async def open_offers(self, peer: MemberId) -> list[Offer]:
        rows = await self.s.execute(
            self._offers()
            .where(OfferRow.peer_id == peer, OfferRow.status == OfferStatus.OFFERED.value)
            .order_by(OfferRow.id)
        )
        return [_offer(r) for r in rows]

    async def answer_offer(
        self, offer: int, to: OfferStatus, at: datetime, reason: str | None = None
    ) -> bool:
        result = await self.s.execute(
            update(OfferRow)
            .where(OfferRow.id == offer, OfferRow.status == OfferStatus.OFFERED.value)
            .values(status=to.value, answered_at=at, reason=reason, remind_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

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
        rows = await self.s.execute(
            self._offers().where(OfferRow.id.in_(ids)).order_by(OfferRow.id)
        )
        return [_offer(r) for r in rows]

    async def claim_offers_to_remind(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(
            and_(OfferRow.remind_at.is_not(None), OfferRow.remind_at <= now),
            OfferRow.remind_at,
            limit,
        )

    async def clear_reminder(self, offer: int) -> None:
        await self.s.execute(
            update(OfferRow)
            .where(OfferRow.id == offer)
            .values(remind_at=None)
            .execution_options(synchronize_session=False)
        )

    async def claim_expired_offers(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(OfferRow.expires_at <= now, OfferRow.expires_at, limit)

    async def _pairs(self, statement: Any) -> dict[Any, Any]:
        """A two-column query as a dict (a Result itself looks like a mapping to dict())."""
        return {key: value for key, value in await self.s.execute(statement)}

    async def peer_facts(self, community: CommunityId, since: datetime) -> list[PeerFacts]:
        # Plain columns, not ORM objects: this runs for every routing round.
        members = list(
            await self.s.execute(
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
        )
        if not members:
            return []
        expertise: dict[int, dict[str, int]] = {}
        for member_id, tag, level in await self.s.execute(
            select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
            .join(MemberRow, MemberRow.id == ExpertiseRow.member_id)
            .where(MemberRow.community_id == community)
        ):
            expertise.setdefault(member_id, {})[tag] = level
        assigned = await self._pairs(
            select(RequestRow.peer_id, func.count())
            .where(
                RequestRow.community_id == community,
                RequestRow.status == RequestStatus.ASSIGNED.value,
            )
            .group_by(RequestRow.peer_id)
        )
        offered = await self._pairs(
            select(OfferRow.peer_id, func.count())
            .join(RequestRow, RequestRow.id == OfferRow.request_id)
            .where(
                RequestRow.community_id == community,
                OfferRow.status == OfferStatus.OFFERED.value,
            )
            .group_by(OfferRow.peer_id)
        )
        recent = await self._pairs(
            select(RequestRow.peer_id, func.count())
            .where(RequestRow.community_id == community, RequestRow.delivered_at >= since)
            .group_by(RequestRow.peer_id)
        )
        last_offer = await self._pairs(
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
        given = await self._pairs(
            select(AccountRow.member_id, func.sum(released.c.amount))
            .join(released, released.c.account_id == AccountRow.id)
            .where(AccountRow.kind == AccountKind.MEMBER.value)
            .group_by(AccountRow.member_id)
        )
        received = await self._pairs(
            select(released.c.holder_id, func.sum(-released.c.amount))
            .where(released.c.holder_id.is_not(None))
            .group_by(released.c.holder_id)
        )
        utc_last = {k: _as_utc(v) for k, v in last_offer.items()}
        return [
            PeerFacts(
                member=MemberId(m.id),
                name=m.name,
                role=Role(m.role),
                expertise=expertise.get(m.id, {}),
                languages=tuple(m.languages or ()),
                capacity=m.capacity,
                paused_until=m.paused_until,
                open_reviews=int(assigned.get(m.id, 0)) + int(offered.get(m.id, 0)),
                reviews_recent=int(recent.get(m.id, 0)),
                last_offer_at=utc_last.get(m.id),
                given=int(given.get(m.id, 0) or 0),
                received=int(received.get(m.id, 0) or 0),
            )
            for m in members
        ]

    async def count_open_offers(self) -> int:
        value = await self.s.scalar(
            select(func.count())
            .select_from(OfferRow)
            .where(OfferRow.status == OfferStatus.OFFERED.value)
        )
        return int(value or 0)


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


def _outbound(row: OutboxRow) -> Outbound:
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


class SqlOutbox:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(
        self, message: Outbound, at: datetime, claimed_until: datetime | None = None
    ) -> int:
        row = OutboxRow(
            platform=message.platform,
            delivery=message.delivery.value,
            to=message.to,
            channel=message.channel,
            text=message.text,
            parts=_parts(message),
            created_at=at,
            # Claimed by the process about to send it, which counts the attempt now.
            attempts=0 if claimed_until is None else 1,
            claimed_until=claimed_until,
        )
        self.s.add(row)
        await self.s.flush()
        return row.id

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
        rows = list(
            await self.s.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.sent_at.is_(None),
                    OutboxRow.platform.in_(list(platforms)),
                    or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= now),
                )
                .order_by(OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        claimed = [(_outbound(r), r.attempts > 0) for r in rows]
        if rows:
            await self.s.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_([r.id for r in rows]))
                .values(claimed_until=until, attempts=OutboxRow.attempts + 1)
                .execution_options(synchronize_session=False)
            )
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
        await self.s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(sent_at=at, claimed_until=None, platform_ref=ref)
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
