"""Staff answers (balances, stats, exports, all ideas, assignments) never go public in a
shared channel: they are posted in the staff channel, or given privately."""

from __future__ import annotations

from bot.bootstrap import App
from bot.messages import Delivery, Inbound
from tests.fakes import RecordingMessenger, said

STAFF_ONLY = ("balances", "stats 7", "export members", "ideas all")


def slack(user: str, text: str, channel: str | None) -> Inbound:
    return Inbound("slack", "slack:T1", f"T1:{user}", text, display_name=user, channel=channel)


async def test_asked_in_a_shared_channel_the_answer_goes_to_the_staff_channel(app: App) -> None:
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    await app.bot.handle(said("ann", "balance"))
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, "Repair café", {}, app.bot.clock.now())
        await uow.commit()
    for command in STAFF_ONLY:
        out.clear()
        await app.bot.handle(said("staff", command, channel="general"))
        assert not [m for m in out.sent if m.to == "general"], command  # nothing in #general
        posted = [m for m in out.sent if m.delivery is Delivery.CHANNEL]
        assert [m.to for m in posted] == ["staff"], command
        (note,) = [m for m in out.sent if m.delivery is Delivery.PRIVATE]
        assert note.topic == "moved-to-staff-channel" and "staff channel" in note.text
    out.clear()
    await app.bot.handle(said("staff", "balances", channel="staff"))  # in the staff channel
    assert [(m.delivery, m.to) for m in out.sent] == [(Delivery.CHANNEL, "staff")]


async def test_without_a_staff_channel_the_answer_is_private(app: App) -> None:
    app.bot.settings = app.bot.settings.model_copy(update={"sif_admins": ["slack:T1:UA"]})
    out = RecordingMessenger("slack")
    app.relay.register(out)
    await app.bot.handle(slack("UA", "balance", None))  # the admin, first contact
    await app.bot.handle(slack("UB", "balance", None))
    for command in STAFF_ONLY:
        out.clear()
        await app.bot.handle(slack("UA", command, "CGENERAL"))
        assert out.sent, command
        for message in out.sent:
            assert message.delivery is Delivery.PRIVATE and message.to == "T1:UA", command
        if command != "ideas all":  # (there are none: a private answer anyway)
            assert out.sent[0].text.startswith("Only you see this: staff answers are not posted")
