"""Repositories over one AsyncSession: the store's side of bot.ports, one module per
aggregate, each with the statements it alone uses; their read-only stats, find and
routing queries live in `store.queries`, the rows-to-records builders in `store.rows`."""

from __future__ import annotations

from store.repositories.communities import SqlCommunities
from store.repositories.conversations import SqlConversations
from store.repositories.events import SqlEventLog
from store.repositories.ideas import SqlIdeas
from store.repositories.introductions import SqlIntroductions
from store.repositories.ledger import SqlLedger
from store.repositories.links import SqlLinks
from store.repositories.members import SqlMembers
from store.repositories.outbox import SqlOutbox
from store.repositories.requests import SqlRequests

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
