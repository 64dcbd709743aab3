"""The store's read side: queries that only read, over one AsyncSession, for `stats` and
the metrics (`stats`), `find` (`find`) and routing (`routing`). The repositories reach
them where bot.ports declares these reads on a repository."""

from __future__ import annotations

from store.queries.find import SqlFindQueries
from store.queries.routing import SqlRoutingQueries
from store.queries.stats import SqlStatsQueries

__all__ = ["SqlFindQueries", "SqlRoutingQueries", "SqlStatsQueries"]
