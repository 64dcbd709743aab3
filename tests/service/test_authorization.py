"""Every staff or admin command run by a member is refused and changes nothing.

The commands come from the parser's registry, so a new privileged command without an
example here fails this test instead of skipping it.
"""

from __future__ import annotations

from bot.bootstrap import App
from bot.commands import COMMANDS, parse
from bot.domain.records import Role
from tests.fakes import RecordingMessenger, said

EXAMPLES = {
    "balances": "balances",
    "stats": "stats 30",
    "grant": "grant @bob 5 prize",
    "adjust": "adjust @bob -1 correction",
    "assign": "assign R-1 @bob",
    "resolve": "resolve R-1 pay",
    "role": "role @ann admin",
    "export": "export ledger",
    "merge": "merge @ann @bob",
    "network": "network",
}


async def snapshot(app: App) -> tuple[object, ...]:
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        members = await uow.members.all(ann.community)
        return (
            tuple((m.name, m.role) for m in members),
            tuple(await uow.ledger.all_balances(ann.community)),
            tuple(await uow.requests.all(ann.community)),
        )


async def test_every_privileged_command_is_refused_to_members(app: App) -> None:
    privileged = {name for name, spec in COMMANDS.items() if spec.role is not Role.MEMBER}
    assert privileged == set(EXAMPLES), "add an example for every staff/admin command"
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    for name in ("ann", "bob"):
        await app.bot.handle(said(name, "balance"))
    await app.bot.handle(said("staff", "grant @bob 3 start"))
    before = await snapshot(app)
    for name, text in sorted(EXAMPLES.items()):
        assert type(parse(text)) is COMMANDS[name].cls  # the example really is that command
        out.clear()
        await app.bot.handle(said("ann", text))
        (reply,) = out.to("ann")
        role = COMMANDS[name].role
        assert reply == f"`{name}` is for {role.plural} only; type `help` for yours.", reply
        assert out.sent[0].to == "ann" and len(out.sent) == 1  # nobody else was told
    assert await snapshot(app) == before
    await app.bot.handle(said("staff", "role @bob staff"))
    out.clear()
    await app.bot.handle(said("bob", "role @ann admin"))  # staff are not admins either
    assert out.to("bob") == ["`role` is for admins only; type `help` for yours."]
