"""Abuse limits (SPEC §13): per-member commands per minute and introductions per day
answer one sentence and change nothing."""

from __future__ import annotations

from bot.bootstrap import App, assemble
from bot.domain.ledger import AccountKey
from tests.conftest import make_settings
from tests.fakes import FakeClock, RecordingMessenger, said


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def balance_of(app: App, name: str) -> int:
    async with app.bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", name)
        assert member is not None
        return await uow.ledger.balance(member.community, AccountKey.of(member.id))


async def test_a_flood_of_commands_gets_one_sentence_and_changes_nothing(
    app: App, clock: FakeClock
) -> None:
    limit = app.settings.sif_rate_commands_per_minute
    assert limit > 0
    await app.bot.handle(said("bob", "balance"))
    messenger(app).clear()
    for _ in range(limit + 70):
        await app.bot.handle(said("staff", "grant @bob 1 flood"))
        clock.advance(seconds=0.1)
    answers = messenger(app).to("staff")
    slow_down = [a for a in answers if "messages a minute" in a]
    assert len(slow_down) == 1  # one sentence, not one per message
    assert "nothing was changed" in slow_down[0]
    assert await balance_of(app, "bob") == limit * 100  # only the grants within the limit
    # Other members are not limited by staff's flood.
    await app.bot.handle(said("bob", "balance"))
    assert "balance" in messenger(app).to("bob")[-1].lower()
    # A minute later staff may go on.
    clock.advance(seconds=61)
    await app.bot.handle(said("staff", "grant @bob 1 later"))
    assert await balance_of(app, "bob") == (limit + 1) * 100


async def test_the_command_limit_is_a_setting_and_zero_turns_it_off(
    app: App, clock: FakeClock
) -> None:
    free = assemble(
        make_settings(app.settings.database_url, sif_rate_commands_per_minute=0),
        app.bot.uow_factory,
        clock,
        messengers=[messenger(app)],
    )
    for _ in range(100):
        await free.bot.handle(said("ann", "balance"))
    assert not any("messages a minute" in a for a in messenger(app).to("ann"))
    tight = assemble(
        make_settings(app.settings.database_url, sif_rate_commands_per_minute=3),
        app.bot.uow_factory,
        clock,
        messengers=[messenger(app)],
    )
    messenger(app).clear()
    for _ in range(5):
        await tight.bot.handle(said("ann", "balance"))
    assert [("messages a minute" in a) for a in messenger(app).to("ann")] == [
        False,
        False,
        False,
        True,
    ]


async def introduce(app: App, clock: FakeClock, members: list[str]) -> list[str]:
    await app.bot.handle(said("ann", "balance"))
    for name in members:
        await app.bot.handle(said(name, "balance"))
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, "Repair café", {}, clock.now())
        await uow.commit()
    messenger(app).clear()
    replies = []
    for name in members:
        clock.advance(seconds=10)  # slow enough for the per-minute limit
        await app.bot.handle(said("ann", f"intro @{name} I-1 see http://phish.example"))
        replies.append(messenger(app).to("ann")[-1])
    return replies


async def test_the_same_introduction_twice_is_refused(app: App, clock: FakeClock) -> None:
    replies = await introduce(app, clock, ["bob", "bob", "bob"])
    assert replies[0].startswith("Introduced bob to I-1")
    assert replies[1:] == ["You already introduced bob to I-1; one introduction is enough."] * 2
    assert len(messenger(app).to("bob")) == 1  # bob got one DM, not three


async def test_introductions_per_day_are_limited(app: App, clock: FakeClock) -> None:
    per_day = app.settings.sif_rate_intros_per_day
    names = [f"m{i}" for i in range(per_day + 2)]
    replies = await introduce(app, clock, names)
    assert all(r.startswith("Introduced") for r in replies[:per_day])
    refused = replies[per_day:]
    assert all(f"{per_day} introductions in the last 24 hours" in r for r in refused)
    assert all("nothing was sent" in r for r in refused)
    for late in names[per_day:]:
        assert messenger(app).to(late) == []  # the refused ones were never contacted
    clock.advance(hours=24)
    await app.bot.handle(said("ann", f"intro @{names[-1]} I-1"))
    assert messenger(app).to("ann")[-1].startswith(f"Introduced {names[-1]}")


def staff_channel(app: App) -> list[str]:
    return [m.text for m in messenger(app).sent if m.delivery.value == "channel"]


async def test_big_grants_and_grants_to_oneself_are_confirmed_and_posted(
    app: App, clock: FakeClock
) -> None:
    await app.bot.handle(said("bob", "balance"))
    await app.bot.handle(said("staff", "balance"))
    messenger(app).clear()
    above = app.settings.grant_confirm // 100 + 10
    for typed, why in (
        (f"grant @bob {above} prize", "it is above 50.00 SIF"),
        ("grant @staff 1000000 mine", "it is for yourself"),
        ("adjust @staff 5 fix", "it is for yourself"),
        (f"adjust @bob -{above} fix", "it is above 50.00 SIF"),
    ):
        out = await app.bot.handle(said("staff", typed))
        (answer,) = [m for m in out if m.to == "staff"]
        assert why in answer.text and "needs a second look" in answer.text, typed
        (button,) = answer.buttons
        assert button.action == typed.replace(" ", " confirm ", 1)
    assert await balance_of(app, "bob") == 0 and await balance_of(app, "staff") == 0
    assert staff_channel(app) == []  # nothing happened, so nothing is posted
    await app.bot.handle(said("staff", f"grant confirm @bob {above} prize"))
    assert await balance_of(app, "bob") == above * 100
    (posted,) = staff_channel(app)
    assert (
        f"staff granted {above}.00 SIF to bob (prize), confirmed because it is above 50.00 SIF"
        in posted
    )
    await app.bot.handle(said("staff", "grant confirm @staff 3 mine"))
    assert await balance_of(app, "staff") == 300
    assert "confirmed because it is for themselves" in staff_channel(app)[-1]
    # An ordinary grant needs no second look and is not posted.
    await app.bot.handle(said("staff", "grant @bob 50 ok"))
    assert await balance_of(app, "bob") == (above + 50) * 100
    assert len(staff_channel(app)) == 2
