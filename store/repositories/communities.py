"""Communities: created once per workspace with their pool accounts and tags, looked up
by key or id, and their atomic counters (the I-n and R-n numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId
from bot.domain.ledger import AccountKind
from bot.domain.records import Community
from store.models import AccountRow, CommunityRow, CounterRow, TagRow
from store.rows import as_community
from store.sql import insert_ignoring_conflicts, per_dialect, table

_TAG_TABLE = table(TagRow)
_TAGS = (
    select(_TAG_TABLE.c.tag)
    .where(_TAG_TABLE.c.community_id == bindparam("community"))
    .order_by(_TAG_TABLE.c.tag)
)
_COUNTERS = table(CounterRow)
_NEXT_NUMBER = per_dialect(
    lambda dialect_insert: (
        dialect_insert(_COUNTERS)
        .on_conflict_do_update(
            index_elements=[_COUNTERS.c.community_id, _COUNTERS.c.name],
            set_={"value": _COUNTERS.c.value + 1},
        )
        .returning(_COUNTERS.c.value)
    )
)


# The key of the salt of forgotten identities' digests in a community's settings.
SALT = "identity_salt"


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
        return as_community(row)

    async def tags(self, community: CommunityId) -> list[str]:
        connection = await self.s.connection()  # asked for every request: prebuilt
        return list((await connection.execute(_TAGS, {"community": community})).scalars())

    async def get(self, community: CommunityId) -> Community | None:
        row = await self.s.get(CommunityRow, community)
        return as_community(row) if row else None

    async def all(self) -> list[Community]:
        rows = await self.s.scalars(select(CommunityRow).order_by(CommunityRow.id))
        return [as_community(r) for r in rows]

    async def find(self, key: str) -> Community | None:
        row = await self.s.scalar(select(CommunityRow).where(CommunityRow.key == key))
        return as_community(row) if row else None

    async def next_number(self, community: CommunityId, counter: str) -> int:
        # One atomic upsert: concurrent transactions queue on the counter row.
        connection = await self.s.connection()
        value = await connection.scalar(
            _NEXT_NUMBER[connection.dialect.name],
            {"community_id": community, "name": counter, "value": 1},
        )
        return int(value or 0)

    async def salt(self, community: CommunityId, new: str | None = None) -> str | None:
        # Kept in the community's settings; the row is locked while the first one is set.
        query = select(CommunityRow.settings).where(CommunityRow.id == community)
        settings = await self.s.scalar(query)
        found = (settings or {}).get(SALT)
        if found is not None or new is None:
            return None if found is None else str(found)
        settings = await self.s.scalar(query.with_for_update())
        found = (settings or {}).get(SALT)
        if found is not None:
            return str(found)
        await self.s.execute(
            update(CommunityRow)
            .where(CommunityRow.id == community)
            .values(settings={**(settings or {}), SALT: new})
            .execution_options(synchronize_session=False)
        )
        return new
