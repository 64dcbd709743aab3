"""The ledger: transactions posted atomically against the accounts' floors (exactly once
per key), the accounts' balances and the members' summaries, the postings for exports
and a member's history, and the checks that the books add up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import AccountKey, AccountKind, EntryKind, TransactionDraft
from bot.domain.privacy import redact
from bot.domain.records import BalanceInfo, LedgerLine, Member
from bot.ports import LimitExceeded
from store.models import AccountRow, MemberRow, PostingRow, RequestRow, TransactionRow
from store.rows import as_balance_info, as_ledger_entry, as_ledger_line
from store.sql import may_mention, per_dialect, table

_ACCOUNTS = table(AccountRow)
_TX = table(TransactionRow)
_POSTINGS = table(PostingRow)
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
_INSERT_TX = per_dialect(
    lambda dialect_insert: dialect_insert(_TX).on_conflict_do_nothing().returning(_TX.c.id)
)
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


def _postings(author: Any, *columns: Any) -> Select[Any]:
    """`columns` of the postings with their transaction and account, and the
    transaction's author (`author`, an alias of MemberRow) where it has one."""
    return (
        select(*columns)
        .join(PostingRow, PostingRow.transaction_id == TransactionRow.id)
        .join(AccountRow, AccountRow.id == PostingRow.account_id)
        .outerjoin(author, author.id == TransactionRow.author_id)
    )


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
            floor = draft.floor(posting.account, credit_limit)
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

    async def balance_info(self, member: Member) -> BalanceInfo:
        connection = await self.s.connection()  # rows, not objects: skip the ORM layer
        row = (
            await connection.execute(
                _SUMMARY_OF_MEMBER, {"b_community": member.community, "b_member": member.id}
            )
        ).one()
        return as_balance_info(row)

    async def all_balances(self, community: CommunityId) -> list[BalanceInfo]:
        rows = await self.s.execute(
            _SUMMARY.order_by(AccountRow.balance, MemberRow.id), {"b_community": community}
        )
        return [as_balance_info(r) for r in rows]

    async def entries(
        self, community: CommunityId, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every posting of the community with its transaction, oldest first (exports);
        with `since`, those of transactions made then or later (stats' window)."""
        window = TransactionRow.created_at >= since if since is not None else true()
        author = aliased(MemberRow)
        owner = aliased(MemberRow)
        rows = await self.s.execute(
            _postings(
                author,
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
            .outerjoin(owner, owner.id == AccountRow.member_id)
            .where(TransactionRow.community_id == community, window)
            .order_by(TransactionRow.id, PostingRow.id)
        )
        return [as_ledger_entry(row) for row in rows]

    async def history(self, member: MemberId, limit: int) -> list[LedgerLine]:
        author = aliased(MemberRow)
        rows = await self.s.execute(
            _postings(
                author,
                TransactionRow.id,
                TransactionRow.created_at,
                TransactionRow.kind,
                PostingRow.amount,
                TransactionRow.reason,
                author.name,
                RequestRow.number,
            )
            .outerjoin(RequestRow, RequestRow.id == TransactionRow.request_id)
            .where(
                AccountRow.member_id == member,
                AccountRow.kind == AccountKind.MEMBER.value,
            )
            .order_by(TransactionRow.id.desc())
            .limit(limit)
        )
        return [as_ledger_line(r) for r in rows]

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

    async def redact_reasons(self, community: CommunityId, replacements: dict[str, str]) -> int:
        # A reason is text, not an amount: erasing a name from it is the one change an
        # entry ever sees (SPEC §13); its postings stay as they were.
        rows = await self.s.execute(
            select(TransactionRow.id, TransactionRow.reason).where(
                TransactionRow.community_id == community,
                may_mention(TransactionRow.reason, list(replacements)),
            )
        )
        changed = [
            {"b_id": row.id, "b_reason": new}
            for row in rows
            if (new := redact(row.reason, replacements)) != row.reason
        ]
        if changed:
            connection = await self.s.connection()
            await connection.execute(
                update(_TX)
                .where(_TX.c.id == bindparam("b_id"))
                .values(reason=bindparam("b_reason")),
                changed,
            )
        return len(changed)
