"""`link`: a second platform identity joins a member, with its balance and conversation."""

from __future__ import annotations

import re

from bot.bootstrap import App
from bot.messages import Inbound
from tests.fakes import FakeClock, RecordingMessenger, said

ANN_MATRIX = "@ann:sif.test"


def on_matrix(text: str) -> Inbound:
    return Inbound("matrix", "matrix:sif.test", ANN_MATRIX, text, display_name="Ann")


def code_in(text: str) -> str:
    match = re.search(r"link code is ([A-Z0-9]{8})", text)
    assert match, text
    return match.group(1)


async def test_link_shares_balance_and_conversation(app: App, clock: FakeClock) -> None:
    bot = app.bot
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    matrix = RecordingMessenger("matrix")
    app.relay.register(matrix)
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("staff", "grant @ann 5 welcome"))
    await bot.handle(said("ann", "intake"))
    await bot.handle(said("ann", "Repair café network"))  # now at question 2
    await bot.handle(said("ann", "link"))
    code, again = out.to("ann")[-2:]  # the code, then the pending question again
    code = code_in(code)
    assert again.startswith("Back to your intake:\n(2/12)")

    await bot.handle(on_matrix("link WRONGCOD"))
    assert "That link code is not valid" in matrix.to(ANN_MATRIX)[-1]
    await bot.handle(on_matrix(f"link {code.lower()}"))
    # First the bot says whom the code joins, and nothing is linked yet.
    shown = matrix.to(ANN_MATRIX)[-1]
    assert shown.startswith("This code joins this account to ann (member, balance 5.00 SIF)")
    assert f"`link {code} confirm`" in shown
    async with bot.uow_factory() as uow:
        still = await uow.members.by_identity("matrix", ANN_MATRIX)
        assert still is None or still.name != "ann"
    await bot.handle(on_matrix(f"link {code.lower()} confirm"))
    assert matrix.to(ANN_MATRIX)[-1].startswith("Linked: this account is now ann")
    assert "matrix account was linked" in out.to("ann")[-1]
    await bot.handle(on_matrix("balance"))
    assert matrix.to(ANN_MATRIX)[-2].startswith("Your balance: 5.00 SIF")
    assert matrix.to(ANN_MATRIX)[-1].startswith("Back to your intake:\n(2/12)")
    await bot.handle(on_matrix("A network of volunteer-run repair cafés."))
    assert "(3/12)" in matrix.to(ANN_MATRIX)[-1]  # the same conversation went on

    await bot.handle(said("bob", f"link {code}"))
    assert "That link code was already used" in out.to("bob")[-1]
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("matrix", ANN_MATRIX)
        assert ann is not None and ann.name == "ann"
        assert {i.platform for i in ann.identities} == {"console", "matrix"}
        members = await uow.members.all(ann.community)
        assert sorted(m.name for m in members) == ["ann", "staff"]  # no orphan left behind
        assert await uow.ledger.check_invariants(ann.community) == []


async def test_an_expired_code_or_an_account_with_history_is_refused(
    app: App, clock: FakeClock
) -> None:
    bot = app.bot
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    await bot.handle(said("ann", "link"))
    code = code_in(out.to("ann")[-1])
    clock.advance(minutes=16)
    await bot.handle(said("bob", f"link {code}"))
    assert "That link code has expired" in out.to("bob")[-1]
    await bot.handle(said("ann", "link"))
    code = code_in(out.to("ann")[-1])
    await bot.handle(said("bob", "balance"))
    await bot.handle(said("staff", "grant @bob 1 prize"))  # bob now has history
    await bot.handle(said("bob", f"link {code}"))
    assert "already has its own SIF history" in out.to("bob")[-1]
    await bot.handle(said("ann", f"link {code}"))
    assert "already linked" in out.to("ann")[-1]
    async with bot.uow_factory() as uow:
        bob = await uow.members.by_identity("console", "bob")
        assert bob is not None and bob.name == "bob"


async def test_linking_never_changes_a_role(app: App) -> None:
    """An admin who is talked into typing a member's code does not make the member an admin
    (nor the other way round): the link is refused and every role stays as it was."""
    bot = app.bot
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    await bot.handle(said("mallory", "balance"))
    await bot.handle(said("mallory", "link"))
    code = code_in(out.to("mallory")[-1])
    admin = Inbound("matrix", "matrix:sif.test", "@boss:sif.test", f"link {code} confirm")
    bot.settings = bot.settings.model_copy(
        update={"sif_admins": [*bot.settings.sif_admins, "matrix:@boss:sif.test"]}
    )
    matrix = RecordingMessenger("matrix")
    app.relay.register(matrix)
    await bot.handle(Inbound("matrix", "matrix:sif.test", "@boss:sif.test", "balance"))
    await bot.handle(admin)
    assert "linking never changes a role" in matrix.to("@boss:sif.test")[-1]
    await bot.handle(said("mallory", "grant @mallory 1000 please"))
    assert "`grant` is for staff only" in out.to("mallory")[-1]
    async with bot.uow_factory() as uow:
        mallory = await uow.members.by_identity("console", "mallory")
        boss = await uow.members.by_identity("matrix", "@boss:sif.test")
        assert mallory is not None and boss is not None and mallory.id != boss.id
        assert (mallory.role.value, boss.role.value) == ("member", "admin")


async def test_an_account_someone_was_introduced_to_can_still_be_linked(app: App) -> None:
    bot = app.bot
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    matrix = RecordingMessenger("matrix")
    app.relay.register(matrix)
    await bot.handle(said("ann", "balance"))
    await bot.handle(on_matrix("balance"))  # ann's matrix account, a member of its own
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, "Repair café", {}, bot.clock.now())
        await uow.commit()
    await bot.handle(said("ann", "link"))
    code = code_in(out.to("ann")[-1])
    await bot.handle(said("ann", f"intro <@matrix:{ANN_MATRIX}> I-1 meet my other account"))
    await bot.handle(on_matrix(f"link {code} confirm"))
    assert matrix.to(ANN_MATRIX)[-1].startswith("Linked: this account is now ann")
