"""The store's read side: queries that only read, over one AsyncSession, for `stats` and
the metrics, `find` and routing. A unit of work gives them as its `stats`, `find` and
`routing` (bot.ports' StatsQueries, FindQueries and RoutingQueries)."""

from __future__ import annotations

from store.queries.find import SqlFindQueries
from store.queries.routing import SqlRoutingQueries
from store.queries.stats import SqlStatsQueries

__all__ = ["SqlFindQueries", "SqlRoutingQueries", "SqlStatsQueries"]
