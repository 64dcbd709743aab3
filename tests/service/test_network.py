"""A request across two factories (SPEC §12), through both real cores and stores: ghent
has no peer for it, lyon's peer reviews it, and SIF settles through the mirror
accounts. The nodes are wired to each other in-process (each message signed by the
sender and opened by the receiver's door code); the HTTP transport has its own tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.app.network import local_chain
from bot.bootstrap import App, build
from bot.domain.federation import Link, first_difference, new_key
from bot.domain.ledger import AccountKey
from bot.messages import Outbound
from tests.conftest import make_settings
from tests.fakes import FakeClock, RecordingMessenger, said


class Wire:
    """The federation messenger of one node: hands each message, sealed, to the other
    node's door code; a refusal fails the send (the outbox keeps it), as over HTTP."""

    platform = "federation"

    def __init__(self, sender: App) -> None:
        self.sender = sender
        self.receiver: App | None = None
        self.down = False
        self.answers: list[dict[str, Any]] = []

    async def send(self, message: Outbound) -> None:
        assert self.sender.federation is not None and self.receiver is not None
        if self.down:
            raise ConnectionError("partner down")
        _url, data = self.sender.federation.seal(message)
        assert self.receiver.federation is not None
        answer = await self.receiver.federation.receive(data)
        self.answers.append(answer.body)
        if answer.status != 200:
            raise ConnectionError(f"refused: {answer.body}")


def node_files(tmp: Path, name: str, other: str, other_public: str, limit: int) -> None:
    (tmp / f"{name}.toml").write_text(
        f'[[partner]]\nname = "{other}"\nurl = "http://127.0.0.1:9"\n'
        f'public_key = "{other_public}"\nlimit = {limit}\ntags = ["finance"]\n'
    )


async def two_nodes(tmp_path: Path, clock: FakeClock, **ghent_settings: Any) -> dict[str, Any]:
    keys = {name: new_key() for name in ("ghent", "lyon")}
    apps: dict[str, App] = {}
    for name, other in (("ghent", "lyon"), ("lyon", "ghent")):
        (tmp_path / f"{name}.key").write_text(keys[name][0] + "\n")
        node_files(tmp_path, name, other, keys[other][1], 50)
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
            sif_node_name=name,
            sif_node_key_file=tmp_path / f"{name}.key",
            sif_partners_file=tmp_path / f"{name}.toml",
            sif_federate_after_rounds=1,
            sif_welcome_grant=0,
            **(ghent_settings if name == "ghent" else {}),
        )
        recording = RecordingMessenger("console")
        apps[name] = await build(settings, clock, messengers=[recording])
        apps[name].messenger = recording  # type: ignore[attr-defined]
    wires = {name: Wire(app) for name, app in apps.items()}
    wires["ghent"].receiver, wires["lyon"].receiver = apps["lyon"], apps["ghent"]
    for name, app in apps.items():
        app.relay.register(wires[name])
    return {"apps": apps, "wires": wires}


async def balance(app: App, who: str, platform: str = "console") -> int:
    async with app.bot.uow_factory() as uow:
        member = await uow.members.by_identity(platform, who)
        assert member is not None
        found = await uow.ledger.balance(member.community, AccountKey.of(member.id))
        assert await uow.ledger.check_invariants(member.community) == []
        return found


def told(app: App, who: str) -> str:
    return "\n".join(m.text for m in app.messenger.sent if m.to == who)  # type: ignore[attr-defined]


async def ann_and_bob(
    ghent: App,
    lyon: App,
    title: str,
    answers: dict[str, Any] | None = None,
    *,
    local_peer: bool = False,
) -> None:
    """bob, a finance peer at lyon; ghent: staff who do not review, ann with 5 SIF and
    her idea I-1 (and with ``local_peer``, carl, a finance peer at ghent)."""
    await lyon.bot.handle(said("bob", "expertise add finance:2"))
    if local_peer:
        await ghent.bot.handle(said("carl", "expertise add finance:1"))
    await ghent.bot.handle(said("ann", "balance"))
    await ghent.bot.handle(said("staff", "availability 0"))
    await ghent.bot.handle(said("staff", "grant @ann 5 welcome"))
    async with ghent.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, title, answers or {}, ghent.bot.clock.now())
        await uow.commit()


@pytest.fixture
async def network(tmp_path: Path, clock: FakeClock) -> Any:
    made = await two_nodes(tmp_path, clock)
    yield made
    for app in made["apps"].values():
        await app.close()


async def test_a_request_no_peer_here_takes_is_reviewed_by_a_partners_peer(network: Any) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(
        ghent,
        lyon,
        "Repair café",
        {"title": "Repair café", "summary": "Neighbours fix things.", "stage": "idea"},
    )

    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    assert "went to the network" in told(ghent, "ann") and "lyon" in told(ghent, "ann")
    offer = told(lyon, "bob")
    assert "Can you help? R-1" in offer and "Repair café" in offer

    await lyon.bot.handle(said("bob", "accept R-1"))
    assert "bob of the factory lyon accepted R-1" in told(ghent, "ann")
    await lyon.bot.handle(said("bob", "done R-1 1.5 Start with a cost model per café."))
    assert "Start with a cost model per café." in told(ghent, "ann")
    await ghent.bot.handle(said("ann", "thanks R-1 5 very helpful"))
    assert "thanked you for R-1 (5/5)" in told(lyon, "bob")

    assert await balance(ghent, "ann") == 300  # paid 2 SIF of the 5 granted
    assert await balance(lyon, "bob") == 200  # earned 2 SIF
    # the mirror accounts are equal and opposite
    assert await balance(ghent, "lyon", "federation") == 200
    assert await balance(lyon, "ghent", "federation") == -200


async def test_a_partner_that_is_down_delays_the_exchange_and_loses_nothing(
    network: Any, clock: FakeClock
) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    network["wires"]["ghent"].down = True
    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    assert "Can you help?" not in told(lyon, "bob")
    network["wires"]["ghent"].down = False
    clock.advance(minutes=30)  # the outbox tries again after a pause
    await ghent.relay.flush()
    await ghent.relay.flush()  # a second flush sends nothing twice
    assert told(lyon, "bob").count("Can you help? R-1") == 1
    async with lyon.bot.uow_factory() as uow:
        community = (await uow.communities.all())[0]
        assert len(await uow.requests.all(community.id)) == 1


async def reviewed_across(network: Any) -> None:
    """The whole exchange of the first test, for the tests that start after it."""
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    for app, who, line in (
        (ghent, "ann", "request I-1 review finance"),
        (lyon, "bob", "accept R-1"),
        (lyon, "bob", "done R-1 1 Good."),
        (ghent, "ann", "thanks R-1 4"),
    ):
        await app.bot.handle(said(who, line))


async def compare(ghent: App, lyon: App) -> tuple[str | None, list[Link]]:
    """What `sif-bot federation check` does, without HTTP: lyon's chain, asked with a
    signed message, against ghent's own."""
    assert ghent.federation is not None and lyon.federation is not None
    _url, data = ghent.federation.seal(ghent.federation.outbound("lyon", "chain", {}))
    answer = await lyon.federation.receive(data)
    assert answer.status == 200, answer.body
    theirs = [Link(x, a, h) for x, a, h in answer.body["chain"]]
    mine = await local_chain(ghent.federation, "lyon")
    return first_difference(mine, theirs), mine


async def test_both_ledgers_agree_and_a_tampered_mirror_entry_is_found(network: Any) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    assert (await compare(ghent, lyon))[0] is None  # nothing yet: both chains empty
    await reviewed_across(network)
    differs, mine = await compare(ghent, lyon)
    assert differs is None
    assert [(link.xid, link.amount) for link in mine] == [("ghent:R-1", 200)]
    # someone changes lyon's mirror entry behind the ledger's back
    async with lyon.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE ledger_postings SET amount = amount + 50 WHERE account_id IN "
                "(SELECT a.id FROM accounts a JOIN identities i ON i.member_id = a.member_id "
                "WHERE i.platform = 'federation' AND a.kind = 'member')"
            )
        )
    differs, _ = await compare(ghent, lyon)
    assert differs == "ghent:R-1: 200 hundredths here, 150 there"


async def test_a_transfer_over_the_partners_limit_is_refused_and_changes_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    made = await two_nodes(tmp_path, clock)
    ghent, lyon = made["apps"]["ghent"], made["apps"]["lyon"]
    try:
        # lyon trusts ghent for 1 SIF only: a 2 SIF review would take it below
        node_files(tmp_path, "lyon", "ghent", ghent.federation.public_key, 1)  # type: ignore[union-attr]
        await ann_and_bob(ghent, lyon, "Idea")
        await ghent.bot.handle(said("ann", "request I-1 review finance"))
        lyon.messenger.sent.clear()  # type: ignore[attr-defined]
        await lyon.bot.handle(said("bob", "accept R-1"))
        refusal = told(lyon, "bob")
        assert "below the credit limit of -1.00 SIF; nothing was changed" in refusal, refusal
        async with lyon.bot.uow_factory() as uow:
            community = (await uow.communities.all())[0]
            (request,) = await uow.requests.all(community.id)
            assert request.status.is_open and request.peer is None
            assert await uow.ledger.check_invariants(community.id) == []
        assert await balance(lyon, "ghent", "federation") == 0
        assert await balance(ghent, "ann") == 500
    finally:
        for app in made["apps"].values():
            await app.close()


async def test_staff_see_the_partners_and_the_requests_crossing(network: Any) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    await lyon.bot.handle(said("bob", "accept R-1"))
    ghent.messenger.sent.clear()  # type: ignore[attr-defined]
    await ghent.bot.handle(said("staff", "network"))
    shown = told(ghent, "staff")
    assert shown.startswith("Node ghent, 1 partner:"), shown
    assert "lyon" in shown and "0.00 SIF" in shown  # nothing paid yet: 2 SIF are held
    assert "R-1" in shown and "sent by us" in shown and "accepted" in shown, shown
    lyon.messenger.sent.clear()  # type: ignore[attr-defined]
    await lyon.bot.handle(said("staff", "network"))
    there = told(lyon, "staff")
    assert "ghent" in there and "-2.00 SIF" in there and "from them" in there, there
    assert "never" not in there.split("ghent", 1)[1].splitlines()[0]  # heard from ghent


async def test_network_says_how_to_join_when_the_bot_is_not_a_node(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/alone.db")
    recording = RecordingMessenger("console")
    app = await build(settings, clock, messengers=[recording])
    try:
        await app.bot.handle(said("staff", "network"))
        assert "not part of a network of factories" in recording.sent[-1].text
    finally:
        await app.close()


async def test_stats_count_the_work_across_factories(network: Any) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await reviewed_across(network)
    for app, sent, hosted in ((ghent, 1, 0), (lyon, 0, 1)):
        app.messenger.sent.clear()  # type: ignore[attr-defined]
        await app.bot.handle(said("staff", "stats"))
        shown = told(app, "staff")
        expected = (
            f"Requests across factories: sent to partner factories {sent}, "
            f"reviewed here for them {hosted}."
        )
        assert expected in shown, shown


async def test_cancelling_a_request_that_crossed_gives_the_hold_back_on_both_sides(
    network: Any,
) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    await lyon.bot.handle(said("bob", "accept R-1"))
    assert await balance(lyon, "ghent", "federation") == -200
    await ghent.bot.handle(said("ann", "cancel R-1"))
    assert "you can stop working on it" in told(lyon, "bob")
    assert await balance(ghent, "ann") == 500
    assert await balance(lyon, "ghent", "federation") == 0
    assert await balance(lyon, "bob") == 0


@pytest.mark.parametrize(("outcome", "bob", "mirror"), [("refund", 0, 0), ("pay", 200, -200)])
async def test_a_dispute_resolved_at_the_origin_settles_at_the_host(
    network: Any, outcome: str, bob: int, mirror: int
) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    for app, who, line in (
        (ghent, "ann", "request I-1 review finance"),
        (lyon, "bob", "accept R-1"),
        (lyon, "bob", "done R-1 1 Not much."),
        (ghent, "ann", "dispute R-1 it was empty"),
        (ghent, "staff", f"resolve R-1 {outcome}"),
    ):
        await app.bot.handle(said(who, line))
    assert await balance(lyon, "bob") == bob
    assert await balance(lyon, "ghent", "federation") == mirror
    assert await balance(ghent, "lyon", "federation") == -mirror
    assert await balance(ghent, "ann") == 500 + mirror


async def test_an_innovator_sends_a_request_to_the_network_at_once(network: Any) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café", local_peer=True)
    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    assert "Can you help? R-1" in told(ghent, "carl")  # offered here first
    assert "Can you help?" not in told(lyon, "bob")
    for who, line, answer in (
        ("carl", "forward R-1", "not your request"),
        ("ann", "forward R-1 paris", "'paris' is not a partner factory; partners: lyon."),
        ("ann", "forward R-9", "There is no request R-9 here"),
    ):
        ghent.messenger.sent.clear()  # type: ignore[attr-defined]
        await ghent.bot.handle(said(who, line))
        assert answer in told(ghent, who), told(ghent, who)
    ghent.messenger.sent.clear()  # type: ignore[attr-defined]
    await ghent.bot.handle(said("ann", "forward R-1 lyon"))
    assert "Sent R-1 to the factory lyon" in told(ghent, "ann")
    assert "R-1 went to the network of factories" in told(ghent, "carl")
    assert "Can you help? R-1" in told(lyon, "bob")
    ghent.messenger.sent.clear()  # type: ignore[attr-defined]
    await ghent.bot.handle(said("carl", "accept R-1"))
    assert "accepted R-1" not in told(ghent, "carl")  # the offer here was withdrawn
    await ghent.bot.handle(said("ann", "forward R-1"))
    assert "R-1 is already with the network (lyon)." in told(ghent, "ann")


async def test_when_the_partner_finds_no_peer_either_staff_on_both_sides_are_asked(
    network: Any,
) -> None:
    ghent, lyon = network["apps"]["ghent"], network["apps"]["lyon"]
    await ann_and_bob(ghent, lyon, "Repair café")
    await lyon.bot.handle(said("bob", "availability 0"))  # lyon has no peer now
    await ghent.bot.handle(said("ann", "request I-1 review finance"))
    await ghent.relay.flush()  # sent by the next round of the outbox (a send was under way)
    assert "found no peer for it either" in told(ghent, "ann"), told(ghent, "ann")
    assert "staff have been asked" in told(ghent, "ann")
    async with ghent.bot.uow_factory() as uow:
        community = (await uow.communities.all())[0]
        (request,) = await uow.requests.all(community.id)
        assert request.status.value == "escalated"
