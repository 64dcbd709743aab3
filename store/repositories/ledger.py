"""The ledger: transactions posted atomically against the accounts' floors (exactly once
per key), the accounts' balances and the members' summaries, the postings for exports
and a member's history, and the checks that the books add up."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import AccountKey, AccountKind, EntryKind, TransactionDraft
from bot.domain.privacy import redact
from bot.domain.records import BalanceInfo, BalanceTable, LedgerLine, Member
from bot.ports import LimitExceeded
from store.inloop import InLoopConnection
from store.models import AccountRow, MemberRow, PostingRow, RequestRow, TransactionRow
from store.pgsingle import PgSingleConnection
from store.prepared import Prepared
from store.repositories.members import BY_IDENTITY
from store.rows import as_balance_info, as_ledger_entry, as_ledger_line, as_members
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
# The same statements for `SqlLedger._post_in_loop`.
_RAW_INSERT_TX = Prepared(
    _INSERT_TX["sqlite"],
    ["community_id", "kind", "reason", "author_id", "request_id", "key", "created_at"],
)
_RAW_MOVE = Prepared(_MOVE)
_RAW_DEBIT_TO_FLOOR = Prepared(_DEBIT_TO_FLOOR)
_RAW_UNDO = Prepared(_UNDO)
_RAW_DELETE_TX = Prepared(delete(_TX).where(_TX.c.id == bindparam("b_id")))
_RAW_BALANCE = Prepared(_BALANCE)
_RAW_INSERT_POSTING = Prepared(
    _INSERT_POSTING, ["transaction_id", "account_id", "amount", "holder_id"]
)


def _held_given_received(member: Any, community: Any, own_account: Any) -> tuple[Any, ...]:
    """A member's SIF held in escrow for them, given in reviews (released from their
    account `own_account`) and received in reviews, as scalar subqueries correlated to
    the statement's `member` and `community` columns."""
    escrow = aliased(AccountRow)
    held = (
        select(func.coalesce(func.sum(PostingRow.amount), 0))
        .join(escrow, escrow.id == PostingRow.account_id)
        .where(
            escrow.community_id == community,
            escrow.kind == AccountKind.ESCROW.value,
            PostingRow.holder_id == member,
        )
        .scalar_subquery()
    )
    given = (
        select(func.coalesce(func.sum(PostingRow.amount), 0))
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            PostingRow.account_id == own_account,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .scalar_subquery()
    )
    received = (
        select(func.coalesce(func.sum(-PostingRow.amount), 0))
        .join(TransactionRow, TransactionRow.id == PostingRow.transaction_id)
        .where(
            PostingRow.holder_id == member,
            TransactionRow.kind == EntryKind.RELEASE.value,
        )
        .scalar_subquery()
    )
    return held, given, received


# a member's own account (not the network's or escrow)
_OWN_ACCOUNT = and_(
    AccountRow.member_id == MemberRow.id, AccountRow.kind == AccountKind.MEMBER.value
)


def _summary_statement() -> Select[Any]:
    """Balance, held, given and received of every member of a community (`b_community`)."""
    held, given, received = _held_given_received(
        MemberRow.id, bindparam("b_community"), AccountRow.id
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
        .join(AccountRow, _OWN_ACCOUNT)
        .where(MemberRow.community_id == bindparam("b_community"))
    )


# Built once: constructing this statement costs more than running it.
_SUMMARY = _summary_statement()
_SUMMARY_OF_MEMBER = _SUMMARY.where(MemberRow.id == bindparam("b_member"))


def _of_identity_statement() -> Any:
    """The member behind an identity (`platform`, `external_id`) with all their identities
    (a row per identity, as `store.repositories.members` reads them) and on every row
    their balance, held, given and received: a read-only command's caller and answer in
    one statement."""
    member = table(MemberRow)
    own = aliased(AccountRow)
    mine = and_(own.member_id == member.c.id, own.kind == AccountKind.MEMBER.value)
    balance = select(own.balance).where(mine).scalar_subquery()
    account = select(own.id).where(mine).correlate(member).scalar_subquery()
    held, given, received = _held_given_received(member.c.id, member.c.community_id, account)
    return BY_IDENTITY.add_columns(
        balance.label("b_balance"),
        held.label("b_held"),
        given.label("b_given"),
        received.label("b_received"),
    )


_OF_IDENTITY = _of_identity_statement()
_RAW_OF_IDENTITY = Prepared(_OF_IDENTITY)


def _caller_of(rows: Sequence[Any]) -> tuple[Member, BalanceInfo] | None:
    """The member and balance in the rows of `_OF_IDENTITY` (None: no such member)."""
    if not rows or rows[0].b_balance is None:
        return None
    member = next(iter(as_members(rows).values()))
    first = rows[0]
    info = as_balance_info(
        (
            member.id,
            member.name,
            first.b_balance,
            first.b_held,
            first.b_given,
            first.b_received,
            member.last_active,
        )
    )
    return member, info


@functools.lru_cache(maxsize=1024)
def _remembered_caller(
    dialect: str, records: tuple[tuple[Any, ...], ...]
) -> tuple[Member, BalanceInfo] | None:
    """`_caller_of` SQLite's rows (`Prepared.records`), remembered for the same rows: a
    member asking again with nothing changed (their balance, activity and profile are all
    in the rows) costs a look-up instead of turning a row's values into a member's again.
    Both are frozen; whoever changes the profile's dict copies it first. (asyncpg's rows
    hold JSON decoded, which cannot be a key.)"""
    return _caller_of(_RAW_OF_IDENTITY.rows(dialect, records))


@functools.cache
def _one_statement_post(postings: int) -> Any:
    """PostgreSQL: a transaction of `postings` postings (on distinct accounts) in one
    statement, as `SqlLedger.post` does it in several. The transaction row goes first (a
    duplicate key inserts nothing, and then nothing else happens); the accounts are locked
    in one fixed order (kind, member), as there; each is moved, a debit only while it stays
    at or above its floor (the conditional UPDATE, re-checked on the newest row when a
    concurrent writer changed it); the postings are inserted, in the draft's order, only
    when every account moved. Returns the transaction's id (NULL: posted before) and
    the moves made, as (posting, account, amount) rows, for `post` to take back when
    one was refused."""
    values = ", ".join(
        f"(CAST({n} AS INTEGER), CAST(:k{n} AS VARCHAR), CAST(:m{n} AS BIGINT),"
        f" CAST(:a{n} AS BIGINT), CAST(:f{n} AS BIGINT), CAST(:h{n} AS BIGINT))"
        for n in range(postings)
    )
    sql = f"""
WITH tx AS (
    INSERT INTO ledger_transactions
        (community_id, kind, reason, author_id, request_id, key, created_at)
    VALUES (:community_id, :kind, :reason, :author_id, :request_id, :key, :created_at)
    ON CONFLICT DO NOTHING
    RETURNING id
), wanted (posting, kind, member, amount, floor, holder) AS (
    VALUES {values}
), locked AS (
    SELECT accounts.id, wanted.posting
    FROM accounts JOIN wanted
        ON accounts.kind = wanted.kind AND accounts.member_id = wanted.member
    WHERE accounts.community_id = :community_id AND EXISTS (SELECT 1 FROM tx)
    ORDER BY accounts.kind, accounts.member_id
    FOR UPDATE OF accounts
), moved AS (
    UPDATE accounts SET balance = accounts.balance + wanted.amount
    FROM locked JOIN wanted ON wanted.posting = locked.posting
    WHERE accounts.id = locked.id
        AND (wanted.floor IS NULL OR accounts.balance + wanted.amount >= wanted.floor)
    RETURNING wanted.posting, accounts.id, wanted.amount, wanted.holder
), posted AS (
    INSERT INTO ledger_postings (transaction_id, account_id, amount, holder_id)
    SELECT tx.id, moved.id, moved.amount, moved.holder
    FROM tx, moved
    WHERE (SELECT count(*) FROM moved) = {postings}
    ORDER BY moved.posting
    RETURNING 1
)
SELECT (SELECT id FROM tx),
       (SELECT array_agg(ARRAY[moved.posting, moved.id, moved.amount]) FROM moved)
"""
    return text(sql).bindparams(
        bindparam("created_at", type_=TransactionRow.created_at.type),
        bindparam("key", type_=TransactionRow.key.type),
        bindparam("author_id", type_=TransactionRow.author_id.type),
        bindparam("request_id", type_=TransactionRow.request_id.type),
    )


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
        # balances read by `of_identity`, until this unit of work posts
        self._known: dict[MemberId, BalanceInfo] = {}

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
        self._known.clear()
        conn = await self.s.connection()
        accounts = [p.account for p in draft.postings]
        if conn.dialect.name == "postgresql" and len(set(accounts)) == len(accounts):
            return await self._post_in_one(conn, community, draft, credit_limit, at)
        if isinstance(conn, InLoopConnection):
            return self._post_in_loop(conn, community, draft, credit_limit, at)
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

    def _post_in_loop(
        self,
        conn: InLoopConnection,
        community: CommunityId,
        draft: TransactionDraft,
        credit_limit: int,
        at: datetime,
    ) -> int | None:
        """`post` on a SQLite file, its statements run straight on the connection
        (`store.prepared`): the same statements in the same order, without SQLAlchemy's
        per-execution work. A refusal is taken back the same way."""
        raw, dialect = conn.raw(), conn.dialect
        tx_params = {
            "community_id": community,
            "kind": draft.kind.value,
            "reason": draft.reason,
            "author_id": draft.author,
            "request_id": draft.request,
            "key": draft.key,
            "created_at": at,
        }
        row = _RAW_INSERT_TX.execute(raw, dialect, tx_params).fetchone()
        if row is None:
            return None
        tx_id = int(row[0])
        applied: list[tuple[int, int]] = []
        ordered = sorted(draft.postings, key=lambda p: _sort_key(p.account))
        for posting in ordered:
            floor = draft.floor(posting.account, credit_limit)
            params = {
                "b_community": community,
                "b_kind": posting.account.kind.value,
                "b_member": int(posting.account.member or 0),
                "b_amount": posting.amount,
                "b_floor": floor,
            }
            if posting.amount < 0 and floor is not None:
                moved = _RAW_DEBIT_TO_FLOOR.execute(raw, dialect, params).fetchone()
            else:
                moved = _RAW_MOVE.execute(raw, dialect, params).fetchone()
            if moved is None:
                for account_id, amount in applied:
                    _RAW_UNDO.execute(raw, dialect, {"b_account": account_id, "b_amount": amount})
                _RAW_DELETE_TX.execute(raw, dialect, {"b_id": tx_id})
                balance = _RAW_BALANCE.execute(raw, dialect, params).fetchone()
                if balance is None:
                    raise LookupError(f"no account {posting.account} in community {community}")
                assert floor is not None
                raise LimitExceeded(posting.account, int(balance[0]), floor, posting.amount)
            applied.append((int(moved[0]), posting.amount))
        account_ids = dict(zip(ordered, (a for a, _ in applied), strict=True))
        _RAW_INSERT_POSTING.executemany(
            raw,
            dialect,
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
        return tx_id

    async def _post_in_one(
        self,
        conn: AsyncConnection,
        community: CommunityId,
        draft: TransactionDraft,
        credit_limit: int,
        at: datetime,
    ) -> int | None:
        """`post` on PostgreSQL in one statement (`_one_statement_post`): one round trip
        where the steps above take four. Refused the same way: the moves it made are taken
        back, then LimitExceeded or LookupError."""
        params: dict[str, Any] = {
            "community_id": community,
            "kind": draft.kind.value,
            "reason": draft.reason,
            "author_id": draft.author,
            "request_id": draft.request,
            "key": draft.key,
            "created_at": at,
        }
        for n, posting in enumerate(draft.postings):
            floor = draft.floor(posting.account, credit_limit)
            params.update(
                {
                    f"k{n}": posting.account.kind.value,
                    f"m{n}": int(posting.account.member or 0),
                    f"a{n}": posting.amount,
                    f"f{n}": floor if posting.amount < 0 else None,
                    f"h{n}": posting.holder,
                }
            )
        row = (await conn.execute(_one_statement_post(len(draft.postings)), params)).one()
        tx_id, moved = row
        if tx_id is None:
            return None  # posted before under this key
        done = {int(order): (int(account), int(amount)) for order, account, amount in moved or ()}
        if len(done) == len(draft.postings):
            return int(tx_id)
        await self._undo(conn, tx_id, list(done.values()))
        refused = next(n for n in range(len(draft.postings)) if n not in done)
        posting = draft.postings[refused]
        balance = await conn.scalar(
            _BALANCE,
            {
                "b_community": community,
                "b_kind": posting.account.kind.value,
                "b_member": int(posting.account.member or 0),
            },
        )
        if balance is None:
            raise LookupError(f"no account {posting.account} in community {community}")
        floor = draft.floor(posting.account, credit_limit)
        assert floor is not None
        raise LimitExceeded(posting.account, int(balance), floor, posting.amount)

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

    async def of_identity(
        self, platform: str, external_id: str
    ) -> tuple[Member, BalanceInfo] | None:
        connection = await self.s.connection()
        params = {"platform": platform, "external_id": external_id}
        found: tuple[Member, BalanceInfo] | None
        if isinstance(connection, InLoopConnection):
            found = _remembered_caller(
                connection.dialect.name,
                _RAW_OF_IDENTITY.records(connection.raw(), connection.dialect, params),
            )
        elif isinstance(connection, PgSingleConnection):
            # Its own snapshot: straight on asyncpg, one round trip.
            records = await _RAW_OF_IDENTITY.records_on(connection, params)
            found = _caller_of(_RAW_OF_IDENTITY.rows(connection.dialect.name, records))
        else:
            found = _caller_of((await connection.execute(_OF_IDENTITY, params)).all())
        if found is not None:
            self._known[found[0].id] = found[1]
        return found

    async def balance_info(self, member: Member) -> BalanceInfo:
        known = self._known.get(member.id)
        if known is not None:
            return known  # read in this unit of work's statement with the member
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

    async def balance_table(
        self,
        community: CommunityId,
        edge: int,
        member: MemberId | None = None,
        negative: bool = False,
    ) -> BalanceTable:
        # Counted and summed in the database; held, given and received (a subquery each
        # per member) only for the rows shown, not for every member of the community.
        only = []
        if member is not None:
            only.append(MemberRow.id == member)
        if negative:
            only.append(AccountRow.balance < 0)
        matching = (
            select(MemberRow.id)
            .join(AccountRow, _OWN_ACCOUNT)
            .where(MemberRow.community_id == community, *only)
        )
        count, total = (
            await self.s.execute(
                matching.with_only_columns(
                    func.count(), func.coalesce(func.sum(AccountRow.balance), 0)
                )
            )
        ).one()
        params = {"b_community": community}
        lowest_first = (AccountRow.balance, MemberRow.id)
        if count <= 2 * edge:
            rows = await self.s.execute(_SUMMARY.where(*only).order_by(*lowest_first), params)
            return BalanceTable(count, int(total), tuple(as_balance_info(r) for r in rows))
        ends = []
        for order in (lowest_first, (AccountRow.balance.desc(), MemberRow.id.desc())):
            # a list of its own, not correlated to the outer statement's member
            shown = matching.order_by(*order).limit(edge).correlate(None).scalar_subquery()
            rows = await self.s.execute(
                _SUMMARY.where(*only, MemberRow.id.in_(shown)).order_by(*lowest_first),
                params,
            )
            ends.append(tuple(as_balance_info(r) for r in rows))
        return BalanceTable(count, int(total), ends[0], ends[1])

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
