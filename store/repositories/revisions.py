"""Per-community revisions that let an in-memory index catch up with the rows changed
since it last looked (texts: `store.repositories.texts`, whose docstring says why this
misses nothing; peers: `store.repositories.peers`). A change takes the community's next
revision of a counter and stamps it on its row; the counter row stays locked until the
transaction ends, so revisions commit in order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId
from store.models import CounterRow
from store.repositories.communities import SqlCommunities

_COMMITTED = select(CounterRow.value).where(
    CounterRow.community_id == bindparam("community"), CounterRow.name == bindparam("counter")
)


def _taken_key(counter: str) -> str:
    return f"sif_{counter}_revisions"  # session.info: the revisions this transaction took


async def take(session: AsyncSession, community: CommunityId, counter: str) -> int:
    """The community's next revision of `counter`, for a row that changes now."""
    revision = await SqlCommunities(session).next_number(community, counter)
    session.info.setdefault(_taken_key(counter), []).append(revision)
    return revision


def took(session: AsyncSession, counter: str) -> bool:
    """Whether this transaction changed a row of `counter` itself."""
    return bool(session.info.get(_taken_key(counter)))


async def readable(session: AsyncSession, community: CommunityId, counter: str) -> int:
    """The revision up to which every change is committed and none of this transaction's
    own is included: the counter as committed when this transaction took none, else just
    below the first one it took."""
    taken = session.info.get(_taken_key(counter))
    if taken:
        return int(min(taken)) - 1
    connection: Any = await session.connection()
    params = {"community": community, "counter": counter}
    return int(await connection.scalar(_COMMITTED, params) or 0)
