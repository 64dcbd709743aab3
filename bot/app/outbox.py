"""Delivery of outbound messages through the adapters' messengers.

Messages written to the outbox are sent after their transaction committed and marked
sent (with the platform's id for them) once the platform accepted them; replies that
changed nothing and answer no platform event are sent directly.

Exactly once, across crashes and processes: the process that commits a message holds
it (a lease, `SIF_OUTBOX_LEASE_SECONDS`) while it sends it; any process's `flush`
claims only messages nobody holds, with `FOR UPDATE SKIP LOCKED`. A message whose
send was tried before (the process died between sending and recording, or the send
failed midway) is first looked up on the platform by the messenger's `delivered`,
and only sent when it did not arrive. A message whose platform has no messenger in
this process stays in the outbox for a process that has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from bot.messages import Outbound
from bot.ports import Clock, Messenger, UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
# After a failed send the platform's messages wait, doubling with each failure in a row.
BACKOFF_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 15 * 60.0


class Relay:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, clock: Clock, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.messengers: dict[str, Messenger] = {}
        self._locks = _KeyedLocks()
        self._failures: dict[str, int] = {}  # failed sends in a row, per platform

    def register(self, messenger: Messenger) -> None:
        self.messengers[messenger.platform] = messenger

    def holds(self, platform: str, now: datetime) -> datetime | None:
        """The lease for a message this process will send itself (None: it cannot)."""
        return now + self.lease if platform in self.messengers else None

    async def deliver(self, messages: Sequence[Outbound]) -> None:
        """Send what one command produced: direct replies, then its outbox messages (which
        are already committed and held for this process), recording each as sent. After
        a failure the rest are released for the next `flush` (the scheduler's retry),
        rather than hammering the platform."""
        for message in messages:
            if message.outbox_id is None:
                messenger = self.messengers.get(message.platform)
                if messenger is not None:
                    try:
                        await messenger.send(message)
                    except Exception:
                        log.exception("could not send a reply on %s", message.platform)
        stored = [m for m in messages if m.outbox_id is not None]
        if stored:
            await self._send_all([(m, False) for m in stored])

    async def flush(self, batch: int = 100) -> int:
        """Send every pending outbox message this process can deliver; returns how many."""
        if not self.messengers:
            return 0
        sent = 0
        while True:
            now = self.clock.now()
            until = now + self.lease
            async with self.uow_factory() as uow:
                claimed = await uow.outbox.claim(sorted(self.messengers), now, until, batch)
                await uow.commit()
            if not claimed:
                return sent
            held = [(replace(m, held_until=until), tried) for m, tried in claimed]
            done, failed = await self._send_all(held)
            sent += done
            if failed or len(claimed) < batch:
                return sent

    async def _send_all(self, messages: Sequence[tuple[Outbound, bool]]) -> tuple[int, bool]:
        """Send held messages in order and record them as sent in one commit; on a failure
        the rest are released. A crash before that commit leaves them held and tried, so
        the next claim looks each up before sending it. Returns how many were sent and
        whether one failed."""
        sent: list[tuple[int, str | None]] = []
        failed: list[int] = []
        wait = timedelta(0)
        # One sender at a time per conversation keeps each person's messages in order;
        # messages to different people go out side by side.
        async with self._locks.holding({(m.platform, m.to, m.channel) for m, _ in messages}):
            for index, (message, tried) in enumerate(messages):
                assert message.outbox_id is not None
                messenger = self.messengers.get(message.platform)
                if messenger is None:
                    continue  # another process with that platform delivers it
                if not await self._still_held(message):
                    continue  # its hold ran out and another delivery took it
                try:
                    ref = await self._lookup(messenger, message) if tried else None
                    if ref is None:
                        ref = await messenger.send(message)
                except Exception:
                    wait = self.backoff(message.platform, failed=True)
                    log.exception(
                        "outbox message %s not delivered yet; trying again in %.0f s",
                        message.outbox_id,
                        wait.total_seconds(),
                    )
                    failed = [m.outbox_id for m, _ in messages[index:] if m.outbox_id is not None]
                    break
                self.backoff(message.platform, failed=False)
                sent.append((message.outbox_id, ref))
            if sent or failed:
                async with self.uow_factory() as uow:
                    now = self.clock.now()
                    await uow.outbox.mark_all_sent(sent, now)  # one statement for all
                    await uow.outbox.release(failed, now + wait)
                    await uow.commit()
        return len(sent), bool(failed)

    async def _still_held(self, message: Outbound) -> bool:
        """Whether this process may send the message now: its hold has at least half a
        lease to run (a send takes far less), or it could be renewed because nobody else
        took it meanwhile (sending was delayed, e.g. behind a slow platform)."""
        now = self.clock.now()
        if message.held_until is not None and now + self.lease / 2 < message.held_until:
            return True
        assert message.outbox_id is not None
        async with self.uow_factory() as uow:
            renewed = await uow.outbox.renew(
                message.outbox_id, message.held_until, now + self.lease
            )
            await uow.commit()
        if not renewed:
            log.info("outbox message %s is held by another delivery now", message.outbox_id)
        return renewed

    def backoff(self, platform: str, *, failed: bool) -> timedelta:
        """Count a send's outcome; how long the platform's messages wait after a failure."""
        if not failed:
            self._failures.pop(platform, None)
            return timedelta(0)
        count = self._failures[platform] = self._failures.get(platform, 0) + 1
        return timedelta(seconds=min(BACKOFF_SECONDS * 2 ** (count - 1), MAX_BACKOFF_SECONDS))

    @staticmethod
    async def _lookup(messenger: Messenger, message: Outbound) -> str | None:
        """The platform's id of the message if it already arrived, else None."""
        delivered = getattr(messenger, "delivered", None)
        if delivered is None:
            return None
        found = await cast(Callable[[Outbound], Awaitable[str | None]], delivered)(message)
        if found is not None:
            log.info("outbox message %s had arrived before; not sent again", message.outbox_id)
        return found


class _KeyedLocks:
    """Locks by key, taken together in a fixed order (so two holders never deadlock), and
    forgotten when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str, str | None], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def holding(self, keys: set[tuple[str, str, str | None]]) -> AsyncIterator[None]:
        ordered = sorted(keys, key=lambda k: (k[0], k[1], k[2] or ""))
        for key in ordered:
            lock, users = self._locks.get(key, (None, 0))
            self._locks[key] = (lock or asyncio.Lock(), users + 1)
        taken: list[asyncio.Lock] = []
        try:
            for key in ordered:
                lock = self._locks[key][0]
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in taken:
                lock.release()
            for key in ordered:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
