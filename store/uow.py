"""The unit of work: one session, one transaction, rolled back unless committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ports import Conflict, StoreBusy
from store.queries import SqlFindQueries, SqlRoutingQueries, SqlStatsQueries
from store.repositories import (
    SqlCommunities,
    SqlConversations,
    SqlEventLog,
    SqlIdeas,
    SqlIntroductions,
    SqlLedger,
    SqlLinks,
    SqlMembers,
    SqlOutbox,
    SqlRequests,
)
from store.repositories.cross import SqlCrossRequests
from store.repositories.peers import PeerCache
from store.repositories.texts import SqlTexts, TextCache


class SqlUnitOfWork:
    communities: SqlCommunities
    members: SqlMembers
    ledger: SqlLedger
    events: SqlEventLog
    outbox: SqlOutbox
    conversations: SqlConversations
    ideas: SqlIdeas
    requests: SqlRequests
    links: SqlLinks
    introductions: SqlIntroductions
    stats: SqlStatsQueries
    find: SqlFindQueries
    routing: SqlRoutingQueries
    texts: SqlTexts
    cross: SqlCrossRequests

    def __init__(
        self,
        sessions: Callable[[], Any],
        read_only: bool = False,
        texts: TextCache | None = None,
        peers: PeerCache | None = None,
    ) -> None:
        self._sessions = sessions
        self._texts = texts if texts is not None else TextCache()
        self._peers = peers if peers is not None else PeerCache()
        self._session: AsyncSession | None = None
        self._committed = False
        self._read_only = read_only

    @property
    def session(self) -> Any:
        assert self._session is not None, "use the unit of work in `async with`"
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        await self._session.begin()
        self._committed = False
        s = self._session
        self.communities = SqlCommunities(s)
        self.members = SqlMembers(s)
        self.ledger = SqlLedger(s)
        self.events = SqlEventLog(s)
        self.outbox = SqlOutbox(s)
        self.conversations = SqlConversations(s)
        self.ideas = SqlIdeas(s)
        self.requests = SqlRequests(s)
        self.links = SqlLinks(s)
        self.introductions = SqlIntroductions(s)
        self.stats = SqlStatsQueries(s)
        self.find = SqlFindQueries(s)
        self.routing = SqlRoutingQueries(s, self._peers)
        self.texts = SqlTexts(s, self._texts)
        self.cross = SqlCrossRequests(s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if not self._committed:
                await session.rollback()
        finally:
            await session.close()
            self._session = None
        if isinstance(exc, IntegrityError) and _unique_violation(exc):
            raise Conflict(f"a unique key was taken meanwhile: {exc.orig}") from exc
        if self._read_only and isinstance(exc, DBAPIError) and exc.connection_invalidated:
            # A reader's connection had dropped (readers do not ping): nothing was changed.
            raise StoreBusy("the connection had dropped") from exc

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.session.commit()
        self._committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


def _unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a row for a unique key another row holds (not, say,
    a foreign key or a NOT NULL)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL's unique_violation
        return True
    return getattr(orig, "sqlite_errorname", None) in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    )


class SqlUnitOfWorkFactory:
    """Units of work on `sessions`; read-only ones on `readers` when given (sessions of
    `store.db.reader_sessions`, which refuse writes), else on `sessions` too."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | Callable[[], Any],
        readers: Callable[[], Any] | None = None,
        single: Callable[[], Any] | None = None,
    ) -> None:
        self.sessions = sessions
        self.readers = readers
        self.single = single  # `store.db.single_statement_sessions`, where they save a trip
        # this process's similar-ideas and affinity indexes and its peer tables, shared
        # by its units of work
        self.texts = TextCache()
        self.peers = PeerCache()

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions, texts=self.texts, peers=self.peers)

    def reading(self, single: bool = False) -> SqlUnitOfWork:
        sessions = (self.single if single else None) or self.readers or self.sessions
        return SqlUnitOfWork(sessions, read_only=True, texts=self.texts, peers=self.peers)
