"""The core through Bot.handle with the real store: ledger commands, roles, idempotency."""

from __future__ import annotations

from bot.bootstrap import App, assemble
from bot.domain.ledger import AccountKey, format_sif
from bot.messages import Outbound
from tests.fakes import FakeClock, RecordingMessenger, said


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def balance_of(app: App, name: str) -> int:
    async with app.bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", name)
        assert member is not None
        return await uow.ledger.balance(member.community, AccountKey.of(member.id))


async def invariants(app: App) -> list[str]:
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.get_or_create("console", "", [], app.bot.clock.now())
        return await uow.ledger.check_invariants(community.id)


async def test_replaying_the_same_event_changes_the_ledger_once(app: App) -> None:
    await app.bot.handle(said("ann", "balance"))
    first = await app.bot.handle(said("staff", "grant @ann 5 welcome", event_id="Ev1"))
    again = await app.bot.handle(said("staff", "grant @ann 5 welcome", event_id="Ev1"))
    assert first and again == []
    assert await balance_of(app, "ann") == 500
    other = await app.bot.handle(said("staff", "grant @ann 5 welcome", event_id="Ev2"))
    assert other
    assert await balance_of(app, "ann") == 1000
    assert await invariants(app) == []


async def test_messages_are_delivered_after_commit_and_marked_sent(app: App) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger(app).clear()
    out = await app.bot.handle(said("staff", "grant @ann 2 prize"))
    assert all(m.outbox_id is not None for m in out)
    assert messenger(app).to("ann") == [
        "You received 2.00 SIF from staff: prize. Your balance is now 2.00 SIF."
    ]
    assert await app.relay.flush() == 0  # nothing left pending


async def test_a_message_the_platform_refused_stays_in_the_outbox(
    app: App, clock: FakeClock
) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger(app).clear()
    messenger(app).fail_next = 1
    await app.bot.handle(said("staff", "grant @ann 2 prize"))
    assert messenger(app).sent == []
    assert await app.relay.flush() == 0  # the platform gets a break first
    clock.advance(seconds=5)
    assert await app.relay.flush() == 2
    assert len(messenger(app).to("ann")) == 1 and len(messenger(app).to("staff")) == 1


async def test_failures_in_a_row_wait_longer_each_time(app: App, clock: FakeClock) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger(app).clear()
    messenger(app).fail_next = 3
    await app.bot.handle(said("staff", "grant @ann 2 prize"))  # failure 1: wait 5 s
    for wait in (5, 10):  # failures 2 and 3 on the retries: 10 s, then 20 s
        clock.advance(seconds=wait - 1)
        assert await app.relay.flush() == 0
        clock.advance(seconds=1)
        assert await app.relay.flush() == 0  # tried, and refused again
    clock.advance(seconds=19)
    assert await app.relay.flush() == 0
    clock.advance(seconds=1)
    assert await app.relay.flush() == 2  # a success resets the wait
    assert app.relay.backoff("console", failed=True).total_seconds() == 5


async def test_refusals_change_nothing(app: App) -> None:
    await app.bot.handle(said("ann", "balance"))
    await app.bot.handle(said("bob", "balance"))
    messenger(app).clear()
    limit = app.settings.credit_limit  # one hundredth past it, whatever the default
    past_limit = format_sif(limit - 1).removesuffix(" SIF")
    cases = [
        ("ann", "grant @bob 5 x", "`grant` is for staff only"),
        ("staff", "grant @ann abc x", "'abc' is not an amount"),
        ("staff", "grant @nobody 5 x", "I don't know a member @nobody"),
        (
            "staff",
            f"adjust @ann {past_limit} too much",
            f"below the credit limit of {format_sif(limit)}",
        ),
        ("ann", "balance @bob", "Only staff can see another member's balance"),
        ("ann", "history @bob", "Only staff can see another member's history"),
        ("ann", "role @ann staff", "`role` is for admins only"),
        ("ann", "x" * 20_000, "too long (20,000 characters"),
        ("ann", "request I-1", "There is no idea I-1 here"),
        (
            "ann",
            "expertise add finance:3 astrology",
            "'astrology' is not one of this community's tags",
        ),
        ("ann", "expertise remove finance", "'finance' is not in your expertise"),
        ("ann", "resume", "You are not paused"),
    ]
    for who, text, fragment in cases:
        messenger(app).clear()
        await app.bot.handle(said(who, text))
        replies = messenger(app).to(who)
        assert len(replies) == 1, (text, replies)
        assert fragment in replies[0], (text, replies[0])
        assert "\n" not in replies[0]
    assert await balance_of(app, "ann") == 0
    assert await balance_of(app, "bob") == 0
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        assert await uow.members.expertise(ann.id) == []
        assert await uow.ledger.history(ann.id, 10) == []


async def test_staff_grant_adjust_history_and_balances(app: App) -> None:
    bot = app.bot
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    await bot.handle(said("staff", "adjust @ann -1.25 double booking"))
    messenger(app).clear()
    await bot.handle(said("ann", "balance"))
    assert messenger(app).to("ann")[0].startswith("Your balance: 3.75 SIF")
    await bot.handle(said("ann", "history"))
    history = messenger(app).to("ann")[1]
    assert "adjust -1.25 SIF — double booking (by staff)" in history
    assert "grant +5.00 SIF — welcome (by staff)" in history
    messenger(app).clear()
    await bot.handle(said("staff", "balances", channel="staff"))
    post = messenger(app).sent[-1]
    assert post.to == "staff" and post.table is not None
    assert [row[0] for row in post.table.rows] == ["staff", "ann"]
    await bot.handle(said("staff", "balance @ann"))
    assert "ann's balance: 3.75 SIF" in messenger(app).to("staff")[-1]
    assert await invariants(app) == []


async def test_roles_profile_settings_and_help(app: App) -> None:
    bot = app.bot
    await bot.handle(said("ann", "help"))
    member_help = messenger(app).to("ann")[-1]
    assert "`balance [@member]`" in member_help and "grant" not in member_help
    await bot.handle(said("staff", "help"))
    assert "`grant @member <amount> <reason>`" in messenger(app).to("staff")[-1]
    await bot.handle(said("ann", "help export"))
    assert "`export [ledger|members|requests]` (staff only)" in messenger(app).to("ann")[-1]
    await bot.handle(said("staff", "role @ann staff"))
    await bot.handle(said("ann", "grant @ann 1 self"))
    assert "it is for yourself, so it needs a second look" in messenger(app).to("ann")[-1]
    await bot.handle(said("ann", "grant confirm @ann 1 self"))
    assert "Granted 1.00 SIF to ann" in messenger(app).to("ann")[-1]
    await bot.handle(said("staff", "role @staff member"))
    assert "last admin" in messenger(app).to("staff")[-1]
    await bot.handle(said("ann", "expertise add finance:3 legal legal:1"))
    assert messenger(app).to("ann")[-1] == "Your expertise: finance:3, legal:1."
    await bot.handle(said("ann", "availability 4"))
    await bot.handle(said("ann", "pause 3"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and ann.capacity == 4 and ann.paused_until is not None
        assert (ann.paused_until - bot.clock.now()).days == 3
    await bot.handle(said("ann", "resume"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and ann.paused_until is None


async def _late_delivery(
    app: App, clock: FakeClock, other_process_flushes: bool
) -> RecordingMessenger:
    """Staff grant ann 2 SIF; between the commit and this process's sending, the hold runs
    out (a long stall) and, maybe, another process's retry job takes the messages."""
    await app.bot.handle(said("ann", "balance"))
    messenger(app).clear()
    other = RecordingMessenger("console")
    # the other process's relay, over the same store
    second = assemble(app.settings, app.bot.uow_factory, clock, messengers=[other]).relay

    async def stall(in_ack: list[Outbound]) -> None:
        assert in_ack == []  # without answer_in_ack everything goes through the outbox
        clock.advance(seconds=app.bot.settings.sif_outbox_lease_seconds + 1)
        if other_process_flushes:
            assert await second.flush() == 2

    await app.bot.handle(said("staff", "grant @ann 2 prize"), committed=stall)
    return other


async def test_a_sender_whose_hold_ran_out_leaves_the_message_to_the_new_holder(
    app: App, clock: FakeClock
) -> None:
    other = await _late_delivery(app, clock, other_process_flushes=True)
    assert messenger(app).sent == []  # this process did not send them a second time
    assert len(other.to("ann")) == 1 and len(other.to("staff")) == 1
    assert await app.relay.flush() == 0


async def test_a_late_sender_renews_its_hold_when_nobody_took_it(
    app: App, clock: FakeClock
) -> None:
    other = await _late_delivery(app, clock, other_process_flushes=False)
    assert len(messenger(app).to("ann")) == 1 and len(messenger(app).to("staff")) == 1
    assert other.sent == []
    assert await app.relay.flush() == 0
