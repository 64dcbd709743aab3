"""One message that cannot be delivered never holds back the others (SPEC §13).

A recipient the platform refuses for good (a deactivated user, a channel the bot is
not in) has its message set aside at once; a message that keeps failing otherwise is
tried again alone, with longer and longer waits, and set aside after about a day.
Either way staff are told once in the staff channel and `/metrics` counts it.
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.bootstrap import App
from bot.messages import Outbound
from bot.ports import Undeliverable
from tests.fakes import FakeClock, RecordingMessenger, said


class PickyMessenger(RecordingMessenger):
    """Refuses some recipients for good, fails for others, or is down altogether."""

    def __init__(self, inner: RecordingMessenger) -> None:
        super().__init__(inner.platform)
        self.sent = inner.sent
        self.gone: set[str] = set()  # deactivated accounts
        self.broken: set[str] = set()  # messages to them fail, not for good
        self.down = False
        self.tries: list[str] = []

    async def send(self, message: Outbound) -> None:
        self.tries.append(message.to)
        if self.down:
            raise ConnectionError("no route to the platform")
        if message.to in self.gone:
            raise Undeliverable("account_inactive")
        if message.to in self.broken:
            raise RuntimeError("invalid_blocks")
        self.sent.append(message)


def picky(app: App) -> PickyMessenger:
    messenger = PickyMessenger(app.messenger)  # type: ignore[attr-defined]
    app.relay.register(messenger)
    return messenger


async def rows(app: App, where: str) -> list[tuple[str, str | None]]:
    async with app.engine.connect() as conn:
        result = await conn.execute(text(f'SELECT "to", error FROM outbox WHERE {where}'))
        return [(r[0], r[1]) for r in result]


def staff_notices(messenger: PickyMessenger) -> list[str]:
    return [m.text for m in messenger.sent if m.topic == "outbox.set-aside"]


async def test_a_recipient_refused_for_good_holds_back_nobody(app: App, clock: FakeClock) -> None:
    for name in ("ann", "bob", "carol", "dan"):
        await app.bot.handle(said(name, "balance"))
    messenger = picky(app)
    messenger.sent.clear()
    messenger.gone = {"ann"}
    messenger.down = True  # everything piles up in the outbox first
    for name in ("ann", "bob", "carol", "dan"):
        await app.bot.handle(said("staff", f"grant @{name} 2 prize"))
    assert messenger.sent == []
    messenger.down = False
    clock.advance(minutes=5)
    sent = await app.relay.flush()
    # Everyone else's messages arrived in that one retry, in spite of ann coming first.
    for name in ("bob", "carol", "dan"):
        assert len(messenger.to(name)) == 1, name
    assert len([m for m in messenger.sent if m.topic == "grant"]) == 4  # staff's replies
    assert await rows(app, "failed_at IS NOT NULL") == [("ann", "account_inactive")]
    (notice,) = staff_notices(messenger)
    assert "account_inactive" in notice and "ann" in notice and "sif.granted" in notice
    assert sent == 3 + 4 + 1
    # Never tried again, and staff are not told again.
    tries = messenger.tries.count("ann")
    for _ in range(4):
        clock.advance(hours=12)
        assert await app.relay.flush() == 0
    assert messenger.tries.count("ann") == tries
    assert len(staff_notices(messenger)) == 1
    # A later message to ann is set aside too, without a second notice about her.
    await app.bot.handle(said("staff", "grant @ann 1 again"))
    assert len(await rows(app, "failed_at IS NOT NULL")) == 2
    assert len(staff_notices(messenger)) == 1
    await app.bot.metrics.refresh(app.bot.uow_factory, scheduler_alive=False)
    found = {
        s.name: s.value
        for family in text_string_to_metric_families(app.bot.metrics.exposition().decode())
        for s in family.samples
    }
    assert found["sif_outbox_set_aside"] == 2
    assert found["sif_outbox_backlog"] == 0


async def test_a_message_that_keeps_failing_is_set_aside_after_about_a_day(
    app: App, clock: FakeClock
) -> None:
    await app.bot.handle(said("ann", "balance"))
    await app.bot.handle(said("bob", "balance"))
    messenger = picky(app)
    messenger.sent.clear()
    messenger.broken = {"ann"}
    start = clock.now()
    await app.bot.handle(said("staff", "grant @ann 2 prize"))
    await app.bot.handle(said("staff", "grant @bob 2 prize"))
    assert len(messenger.to("bob")) == 1  # ann's failure did not stop bob's message
    elapsed = timedelta(0)
    while not await rows(app, "failed_at IS NOT NULL"):
        clock.advance(minutes=10)
        elapsed = clock.now() - start
        assert elapsed < timedelta(hours=30), "never set aside"
        await app.relay.flush()
        await app.bot.handle(said("bob", "balance"))  # bob is served all along
    tries = messenger.tries.count("ann")
    assert 5 <= tries <= 20  # a capped number of tries, spread out
    assert timedelta(hours=12) <= elapsed <= timedelta(hours=25)
    assert await rows(app, "failed_at IS NOT NULL") == [("ann", "RuntimeError: invalid_blocks")]
    assert len(staff_notices(messenger)) == 1
    clock.advance(days=3)
    await app.relay.flush()
    assert messenger.tries.count("ann") == tries
    assert len(staff_notices(messenger)) == 1


async def test_after_a_failure_a_persons_next_messages_wait_to_stay_in_order(
    app: App, clock: FakeClock
) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger = picky(app)
    messenger.sent.clear()
    messenger.broken = {"ann"}
    await app.bot.handle(said("staff", "grant @ann 2 first"))
    messenger.down = True
    await app.bot.handle(said("staff", "grant @ann 3 second"))
    messenger.down = False
    messenger.broken = set()
    clock.advance(seconds=10)
    await app.relay.flush()  # the second may go, but not before the first
    assert messenger.to("ann") == []
    clock.advance(minutes=1)
    await app.relay.flush()
    received = messenger.to("ann")
    assert [("first" in t, "second" in t) for t in received] == [(True, False), (False, True)]


async def test_a_set_aside_notice_to_the_staff_channel_is_not_announced_again(
    app: App, clock: FakeClock
) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger = picky(app)
    messenger.sent.clear()
    messenger.gone = {"ann", "staff"}  # the staff channel is gone too
    await app.bot.handle(said("staff", "grant @ann 2 prize"))
    clock.advance(days=2)
    await app.relay.flush()
    failed = await rows(app, "failed_at IS NOT NULL")
    # ann's message, the reply in the staff console, and the one notice about ann's:
    # nothing announces the notice that could not arrive either.
    assert sorted(to for to, _ in failed) == ["ann", "staff", "staff"]
    assert await rows(app, "sent_at IS NULL AND failed_at IS NULL") == []
