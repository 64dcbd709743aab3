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

No message holds back another (SPEC §13): one the platform refuses for good is set
aside at once, one that keeps failing is tried again alone and set aside after about a
day, and staff are told once in the staff channel; a person's later messages wait
behind their earlier one, so each person still reads them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from bot.app.notices import FEDERATION
from bot.i18n import speaking
from bot.messages import Delivery, Outbound, plain
from bot.ports import Clock, Messenger, PlatformUnavailable, Undeliverable, UnitOfWorkFactory
from bot.settings import Settings

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
# After the platform was found down its messages wait, doubling with each failure in a row.
BACKOFF_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 15 * 60.0
# A message that failed waits before its next try, doubling with its tries up to two
# hours; it is set aside after MAX_ATTEMPTS tries or once GIVE_UP_AFTER old (about a day).
MESSAGE_BACKOFF_SECONDS = 30.0
MAX_MESSAGE_BACKOFF_SECONDS = 2 * 3600.0
MAX_ATTEMPTS = 20
GIVE_UP_AFTER = timedelta(hours=24)
SHOWN_IN_NOTICE = 10


class Relay:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        lease_seconds: float = LEASE_SECONDS,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        give_up_after: timedelta = GIVE_UP_AFTER,
        staff_channel: Callable[[str], str] = lambda platform: "",
    ) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.give_up_after = give_up_after
        self.staff_channel = staff_channel
        self.messengers: dict[str, Messenger] = {}
        self._locks = _KeyedLocks()
        self._failures: dict[str, int] = {}  # platform-wide failures in a row, per platform

    @classmethod
    def from_settings(
        cls, uow_factory: UnitOfWorkFactory, clock: Clock, settings: Settings
    ) -> Relay:
        return cls(
            uow_factory,
            clock,
            settings.sif_outbox_lease_seconds,
            max_attempts=settings.sif_outbox_max_attempts,
            give_up_after=timedelta(hours=settings.sif_outbox_give_up_hours),
            staff_channel=settings.staff_channel,
        )

    def register(self, messenger: Messenger) -> None:
        self.messengers[messenger.platform] = messenger

    def holds(self, platform: str, now: datetime) -> datetime | None:
        """The lease for a message this process will send itself (None: it cannot)."""
        return now + self.lease if platform in self.messengers else None

    async def deliver(self, messages: Sequence[Outbound]) -> None:
        """Send what one command produced: direct replies, then its outbox messages (which
        are already committed and held for this process), recording each as sent. A
        message that fails waits for the next `flush` (the scheduler's retry)."""
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
            done, stalled = await self._send_all(held)
            sent += done
            if stalled or len(claimed) < batch:
                return sent

    async def _send_all(self, messages: Sequence[tuple[Outbound, bool]]) -> tuple[int, bool]:
        """Send held messages in order and record the outcomes in one commit. A crash
        before that commit leaves them held and tried, so the next claim looks each up
        before sending it.

        A failure holds back nobody else: a message the platform refuses for good
        (`Undeliverable`) is set aside at once and staff are told; one that fails
        otherwise is tried again later, alone, with a wait that doubles with its tries,
        and set aside after `max_attempts` tries or once older than `give_up_after`;
        later messages to the same conversation wait with it, to stay in order. Only a
        platform that is down (`PlatformUnavailable`, or no connection to it at all)
        holds back its own messages, with a wait that doubles while it stays down.
        Returns how many were sent and whether a platform was found down."""
        sent: list[tuple[int, str | None]] = []
        retry: list[tuple[int, datetime, str]] = []
        aside: list[tuple[Outbound, str]] = []
        notices: list[tuple[Outbound, bool]] = []
        paused: dict[str, datetime] = {}  # platform -> when its messages may go again
        waiting: dict[tuple[str, str, str | None], datetime] = {}  # conversation -> retry at
        # One sender at a time per conversation keeps each person's messages in order;
        # messages to different people go out side by side.
        async with self._locks.holding({_conversation(m) for m, _ in messages}):
            for message, tried in messages:
                assert message.outbox_id is not None
                messenger = self.messengers.get(message.platform)
                if messenger is None:
                    continue  # another process with that platform delivers it
                key = _conversation(message)
                if message.platform in paused or key in waiting:
                    at = paused.get(message.platform) or waiting[key]
                    retry.append((message.outbox_id, at, ""))
                    continue
                if not await self._still_held(message):
                    continue  # its hold ran out and another delivery took it
                now = self.clock.now()
                try:
                    ref = await self._lookup(messenger, message) if tried else None
                    if ref is None:
                        with speaking(message.language):
                            ref = await messenger.send(message)
                except Undeliverable as refused:
                    log.warning(
                        "outbox message %s to %s on %s set aside: %s",
                        message.outbox_id, message.to, message.platform, refused.reason,
                    )  # fmt: skip
                    aside.append((message, refused.reason or "undeliverable"))
                    continue
                except (PlatformUnavailable, ConnectionError, TimeoutError) as down:
                    wait = self.backoff(message.platform, failed=True)
                    log.exception(
                        "outbox message %s not delivered yet: %s cannot take messages now; "
                        "its messages wait %.0f s",
                        message.outbox_id, message.platform, wait.total_seconds(),
                    )  # fmt: skip
                    paused[message.platform] = now + wait
                    retry.append((message.outbox_id, now + wait, _error(down)))
                    continue
                except Exception as failure:
                    if self._gives_up(message, now):
                        log.exception("outbox message %s set aside after %d tries",
                                      message.outbox_id, message.attempts)  # fmt: skip
                        aside.append((message, _error(failure)))
                        continue
                    wait = _message_backoff(message.attempts)
                    log.exception(
                        "outbox message %s not delivered yet; trying again in %.0f s",
                        message.outbox_id,
                        wait.total_seconds(),
                    )
                    waiting[key] = now + wait
                    retry.append((message.outbox_id, now + wait, _error(failure)))
                    continue
                self.backoff(message.platform, failed=False)
                sent.append((message.outbox_id, ref))
            if sent or retry or aside:
                async with self.uow_factory() as uow:
                    now = self.clock.now()
                    await uow.outbox.mark_all_sent(sent, now)  # one statement for all
                    for outbox_id, at, error in retry:
                        await uow.outbox.release([outbox_id], at, error or None)
                    if aside:
                        # Staff hear once of each recipient, not of every message to them.
                        known = {
                            (m.platform, m.to)
                            for m, _ in aside
                            if await uow.outbox.set_aside_to(m.platform, m.to)
                        }
                        await uow.outbox.set_aside([(m.outbox_id or 0, e) for m, e in aside], now)
                        news = [(m, e) for m, e in aside if (m.platform, m.to) not in known]
                        for notice in self._tell_staff(news):
                            until = self.holds(notice.platform, now)
                            stored = await uow.outbox.add(notice, now, until)
                            notices.append(
                                (replace(notice, outbox_id=stored, held_until=until), False)
                            )
                    await uow.commit()
        if notices:  # staff hear of it now, not at the next retry
            done, _ = await self._send_all(notices)
            return len(sent) + done, bool(paused)
        return len(sent), bool(paused)

    def _gives_up(self, message: Outbound, now: datetime) -> bool:
        if message.platform == FEDERATION:
            # A partner node that is down only delays the exchange: its messages carry
            # money and are tried again, however long it takes (SPEC §12).
            return False
        if message.attempts >= self.max_attempts:
            return True
        return message.created_at is not None and now - message.created_at >= self.give_up_after

    def _tell_staff(self, aside: Sequence[tuple[Outbound, str]]) -> list[Outbound]:
        """One staff-channel notice per platform for the recipients whose messages were
        just set aside for the first time (never about a notice to the staff channel
        itself, which could not arrive either)."""
        notices: list[Outbound] = []
        platforms = sorted({m.platform for m, _ in aside})
        for platform in platforms:
            channel = self.staff_channel(platform)
            lost = [(m, e) for m, e in aside if m.platform == platform and m.to != channel]
            if not channel or not lost:
                continue
            lines = [
                f"{len(lost)} message(s) could not be delivered on {platform} and were set "
                "aside (they will not be tried again; nothing else waits for them):"
            ]
            for message, error in lost[:SHOWN_IN_NOTICE]:
                about = f" about {message.subject}" if message.subject else ""
                lines.append(f"- {message.topic}{about} to {message.to}: {error}")
            if len(lost) > SHOWN_IN_NOTICE:
                lines.append(f"- and {len(lost) - SHOWN_IN_NOTICE} more")
            lines.append(
                "Check that the bot is still in that channel and that the person's account "
                "is active. Later messages to them are set aside without another notice; "
                "`/metrics` counts set-aside messages."
            )
            notices.append(
                Outbound(
                    platform, Delivery.CHANNEL, channel, "outbox.set-aside", plain("\n".join(lines))
                )
            )
        return notices

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


def _conversation(message: Outbound) -> tuple[str, str, str | None]:
    return (message.platform, message.to, message.channel)


def _message_backoff(attempts: int) -> timedelta:
    seconds = MESSAGE_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, MAX_MESSAGE_BACKOFF_SECONDS))


def _error(failure: BaseException) -> str:
    """A short name for what went wrong, for the row and for staff."""
    text = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
    name = type(failure).__name__
    return f"{name}: {text}"[:255] if text else name


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
