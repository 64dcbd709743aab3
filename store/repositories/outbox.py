"""The outbox: every outbound message stored in the transaction that made it, then
claimed, held, released and marked sent by the processes that deliver it, on statements
built once; and erased: a forgotten person's copies, delivered messages' files and, after
the retention days, their text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.privacy import mentions
from bot.messages import Outbound
from store import rows as stored
from store import sql
from store.models import OutboxRow
from store.rows import as_outbound, outbox_parts
from store.sql import table

_OUTBOX = table(OutboxRow)
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
_EARLIER = _OUTBOX.alias("earlier")
_CLAIMABLE = (
    select(_OUTBOX)
    .where(
        _OUTBOX.c.sent_at.is_(None),
        _OUTBOX.c.failed_at.is_(None),
        _OUTBOX.c.platform.in_(bindparam("b_platforms", expanding=True)),
        or_(
            _OUTBOX.c.claimed_until.is_(None),
            _OUTBOX.c.claimed_until <= bindparam("b_now", type_=_OUTBOX.c.claimed_until.type),
        ),
        # A person's messages go in order: none while an earlier one to them waits for
        # its retry or is being sent (earlier ones that are due come first in this claim).
        ~exists().where(
            _EARLIER.c.sent_at.is_(None),
            _EARLIER.c.failed_at.is_(None),
            _EARLIER.c.claimed_until > bindparam("b_now", type_=_OUTBOX.c.claimed_until.type),
            _EARLIER.c.id < _OUTBOX.c.id,
            _EARLIER.c.platform == _OUTBOX.c.platform,
            _EARLIER.c.to == _OUTBOX.c.to,
            func.coalesce(_EARLIER.c.channel, "") == func.coalesce(_OUTBOX.c.channel, ""),
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


# What erasing a message's text writes (forget, the retention job), and the rows it reads
# at once.
_REWRITE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(
        text=bindparam("b_text"),
        parts=bindparam("b_parts", type_=_OUTBOX.c.parts.type),
        to=bindparam("b_to"),
    )
)
_SET_PARTS = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(parts=bindparam("b_parts", type_=_OUTBOX.c.parts.type))
)
ERASE_PAGE = 500


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
                "parts": outbox_parts(message),
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
            .where(
                OutboxRow.sent_at.is_(None),
                OutboxRow.failed_at.is_(None),
                OutboxRow.platform.in_(list(platforms)),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [as_outbound(r) for r in rows]

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
        claimed = [
            (
                replace(as_outbound(r), attempts=r.attempts + 1, created_at=r.created_at),
                r.attempts > 0,
            )
            for r in rows
        ]
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

    async def release(
        self, outbox_ids: Sequence[int], at: datetime, error: str | None = None
    ) -> None:
        """Let deliveries take these messages again from `at` (a send failed or never began)."""
        if outbox_ids:
            values: dict[str, object] = {"claimed_until": at}
            if error is not None:
                values["error"] = error[:255]
            await self.s.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(list(outbox_ids)), OutboxRow.sent_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def set_aside(self, failures: Sequence[tuple[int, str]], at: datetime) -> None:
        """Never try these unsent messages again, keeping the platform's error."""
        for outbox_id, error in failures:
            await self.s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outbox_id, OutboxRow.sent_at.is_(None))
                .values(failed_at=at, claimed_until=None, error=error[:255])
                .execution_options(synchronize_session=False)
            )

    async def set_aside_to(self, platform: str, to: str) -> bool:
        found = await self.s.scalar(
            select(OutboxRow.id)
            .where(
                OutboxRow.platform == platform,
                OutboxRow.to == to,
                OutboxRow.failed_at.is_not(None),
            )
            .limit(1)
        )
        return found is not None

    async def set_aside_since(self, since: datetime) -> list[tuple[Outbound, str]]:
        rows = await self.s.scalars(
            select(OutboxRow)
            .where(OutboxRow.failed_at.is_not(None), OutboxRow.failed_at >= since)
            .order_by(OutboxRow.id)
        )
        return [(as_outbound(r), r.error or "") for r in rows]

    async def mark_sent(self, outbox_id: int, at: datetime, ref: str | None = None) -> None:
        await self.mark_all_sent([(outbox_id, ref)], at)

    async def mark_all_sent(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        if sent:
            connection = await self.s.connection()
            await connection.execute(
                _MARK_SENT, [{"b_id": i, "b_at": at, "b_ref": ref} for i, ref in sent]
            )

    # -- erasing (SPEC §13: forget, and the retention job) ------------------------------

    async def _rewrite(self, changes: list[dict[str, object]]) -> None:
        """Set the text, parts and address of rows: dicts of b_id, b_text, b_parts, b_to."""
        if changes:
            connection = await self.s.connection()
            await connection.execute(_REWRITE, changes)

    async def erase_person(
        self, identities: Sequence[tuple[str, str]], replacements: dict[str, str]
    ) -> int:
        theirs = set(identities)
        to_them = (
            sa.or_(*(sa.and_(OutboxRow.platform == p, OutboxRow.to == e) for p, e in theirs))
            if theirs
            else sa.false()
        )
        unsent = sa.and_(OutboxRow.sent_at.is_(None), OutboxRow.failed_at.is_(None))
        # Nothing waits to be said to someone who is gone.
        deleted = await self.s.execute(
            sa.delete(OutboxRow).where(to_them, unsent).execution_options(synchronize_session=False)
        )
        words = list(replacements)
        found = await self.s.execute(
            select(_OUTBOX).where(sa.or_(to_them, sql.may_mention(OutboxRow.text, words)))
        )
        changes: list[dict[str, object]] = []
        for row in found:
            mine = (row.platform, row.to) in theirs
            if row.sent_at is None and row.failed_at is None:
                # To someone else and still to go out: it goes, without the words.
                message = as_outbound(row)
                changed = stored.redacted(message, replacements)
                if changed != message:
                    changes.append(
                        {
                            "b_id": row.id,
                            "b_text": changed.text,
                            "b_parts": outbox_parts(changed),
                            "b_to": row.to,
                        }
                    )
            elif mine or mentions(row.text, words):
                changes.append(
                    {
                        "b_id": row.id,
                        "b_text": "",
                        "b_parts": stored.erased_parts(row.parts),
                        "b_to": "" if mine else row.to,
                    }
                )
        await self._rewrite(changes)
        return int(getattr(deleted, "rowcount", 0) or 0) + len(changes)

    async def erase_delivered(self, before: datetime) -> int:
        says_something = sa.or_(
            OutboxRow.text != "",
            *(sa.cast(OutboxRow.parts, sa.Text).contains(m) for m in stored.PARTS_MARKERS),
        )
        done_before = sa.or_(OutboxRow.sent_at < before, OutboxRow.failed_at < before)
        erased = last = 0
        while True:  # in pages: an old outbox may hold many such messages the first time
            page = (
                await self.s.execute(
                    select(OutboxRow.id, OutboxRow.to, OutboxRow.parts)
                    .where(OutboxRow.id > last, done_before, says_something)
                    .order_by(OutboxRow.id)
                    .limit(ERASE_PAGE)
                )
            ).all()
            if not page:
                return erased
            await self._rewrite(
                [
                    {
                        "b_id": r.id,
                        "b_text": "",
                        "b_parts": stored.erased_parts(r.parts),
                        "b_to": r.to,
                    }
                    for r in page
                ]
            )
            erased += len(page)
            last = page[-1].id

    async def drop_delivered_files(self) -> int:
        found = await self.s.execute(
            select(OutboxRow.id, OutboxRow.parts).where(
                sa.or_(OutboxRow.sent_at.is_not(None), OutboxRow.failed_at.is_not(None)),
                sa.or_(
                    *(sa.cast(OutboxRow.parts, sa.Text).contains(m) for m in stored.FILE_MARKERS)
                ),
            )
        )
        changes = [
            {"b_id": row.id, "b_parts": kept}
            for row in found
            if (kept := stored.without_files(row.parts)) is not None
        ]
        if changes:
            connection = await self.s.connection()
            await connection.execute(_SET_PARTS, changes)
        return len(changes)
