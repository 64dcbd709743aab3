"""Delivery of outbound messages through the adapters' messengers.

Messages written to the outbox are sent after their transaction committed and
marked sent once the platform accepted them; replies that changed nothing
(errors) are sent directly. A message whose platform has no messenger in this
process stays in the outbox for a process that has one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.messages import Outbound
from bot.ports import Clock, Messenger, UnitOfWorkFactory

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.messengers: dict[str, Messenger] = {}
        self._lock = asyncio.Lock()

    def register(self, messenger: Messenger) -> None:
        self.messengers[messenger.platform] = messenger

    async def deliver(self, messages: Sequence[Outbound]) -> None:
        """Send what one command produced: direct replies, then its outbox messages (which
        are already committed), marking those sent. A failure leaves the rest in the outbox
        for the next `flush` (the scheduler's retry), rather than hammering the platform."""
        for message in messages:
            if message.outbox_id is None:
                messenger = self.messengers.get(message.platform)
                if messenger is not None:
                    try:
                        await messenger.send(message)
                    except Exception:
                        log.exception("could not send a reply on %s", message.platform)
        stored = [m for m in messages if m.outbox_id is not None]
        if not stored:
            return
        async with self._lock:
            sent: list[int] = []
            for message in stored:
                messenger = self.messengers.get(message.platform)
                if messenger is None:
                    continue  # another process with that platform delivers it
                try:
                    await messenger.send(message)
                except Exception:
                    log.exception("outbox message %s not delivered yet", message.outbox_id)
                    break
                assert message.outbox_id is not None
                sent.append(message.outbox_id)
            if sent:
                async with self.uow_factory() as uow:
                    for outbox_id in sent:
                        await uow.outbox.mark_sent(outbox_id, self.clock.now())
                    await uow.commit()

    async def flush(self, batch: int = 100) -> int:
        """Send every pending outbox message this process can deliver; returns how many."""
        if not self.messengers:
            return 0
        sent = 0
        # One flush at a time per process, so a message is not picked up twice here.
        async with self._lock:
            while True:
                async with self.uow_factory() as uow:
                    pending = await uow.outbox.pending(sorted(self.messengers), batch)
                if not pending:
                    return sent
                for message in pending:
                    try:
                        await self.messengers[message.platform].send(message)
                    except Exception:
                        log.exception("outbox message %s not delivered yet", message.outbox_id)
                        return sent
                    assert message.outbox_id is not None
                    async with self.uow_factory() as uow:
                        await uow.outbox.mark_sent(message.outbox_id, self.clock.now())
                        await uow.commit()
                    sent += 1
                if len(pending) < batch:
                    return sent  # that was all; no need to ask again
