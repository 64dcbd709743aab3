"""The Matrix door end to end against a REAL Synapse: users are driven by a plain HTTP
client (tests/adapters/matrix/synapse.py), the bot by matrix-nio through our adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nio import RoomMessageText, UnknownBadEvent

from adapters.matrix.client import MatrixAdapter
from bot.app.service import Bot
from bot.bootstrap import assemble
from bot.domain.ledger import AccountKey
from bot.domain.records import RequestStatus
from store.db import create_schema, make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.adapters.matrix.conftest import MakeUser
from tests.adapters.matrix.synapse import MatrixUser, Synapse
from tests.conftest import make_settings
from tests.fakes import FakeClock

INTAKE = [
    "Repair café network",
    "Volunteer-run repair cafés in every neighbourhood.",
    "Too much waste",
    "Neighbours meet each month",
    "grants",
    "don't know",
    "prototype",
    "whether volunteers stay",
    "civil society",
    "finance",
    "skip",
    "English",
]


@dataclass
class Net:
    synapse: Synapse
    bot: Bot
    bot_user: str
    staff: MatrixUser
    start: Callable[[], Awaitable[MatrixAdapter]]
    adapters: list[MatrixAdapter]


@pytest.fixture
async def net(synapse: Synapse, matrix_users: MakeUser, tmp_path: Path) -> AsyncIterator[Net]:
    url = f"sqlite+aiosqlite:///{tmp_path}/matrix.db"
    engine = make_engine(url)
    await create_schema(engine)
    uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    bot_account = await matrix_users("sifbot")
    staff = await matrix_users("staff")
    # One peer per round: the flow below expects the request to go to bob alone.
    settings = make_settings(url, sif_admins=f"matrix:{staff.user_id}", sif_fanout=1)
    clock = FakeClock()
    bot = assemble(settings, uow, clock).bot
    adapters: list[MatrixAdapter] = []
    localpart = bot_account.user_id.split(":")[0].lstrip("@")

    async def start() -> MatrixAdapter:
        adapter = MatrixAdapter(
            bot,
            homeserver=synapse.base_url,
            user_id=bot_account.user_id,
            password=f"pw-{localpart}",
            store_path=tmp_path / "matrix-store",
        )
        await adapter.start()
        adapters.append(adapter)
        return adapter

    yield Net(synapse, bot, bot_account.user_id, staff, start, adapters)
    for adapter in adapters:
        await adapter.stop()
    await engine.dispose()


async def open_dm(user: MatrixUser, bot_user: str) -> str:
    room = await user.create_room(invite=[bot_user], is_direct=True)
    await user.wait_joined(room, bot_user)
    return room


async def say(user: MatrixUser, room: str, text: str, bot_user: str, expect: str) -> dict[str, Any]:
    await user.send_text(room, text)
    (reply,) = await user.wait_for_message(room, bot_user, contains=expect, timeout=20)
    return reply


async def test_dm_help_intake_offer_reaction_and_staff_room(
    net: Net, matrix_users: MakeUser
) -> None:
    await net.start()
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    dm = await open_dm(alice, net.bot_user)

    help_reply = await say(alice, dm, "!sif help", net.bot_user, "Commands you can use")
    content = help_reply["content"]
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html"
    assert "<code>balance [@member]</code>" in content["formatted_body"]

    await say(alice, dm, "intake", net.bot_user, "(1/12)")
    for number, answer in enumerate(INTAKE, start=2):
        expect = f"({number}/12)" if number <= 12 else "Here is what you told me"
        await say(alice, dm, answer, net.bot_user, expect)
    await say(alice, dm, "confirm", net.bot_user, "Your idea is saved as I-1")

    bob_dm = await open_dm(bob, net.bot_user)
    await say(bob, bob_dm, "expertise add finance:3", net.bot_user, "Your expertise: finance:3")

    staff_room = await net.staff.create_room(invite=[net.bot_user], name="staff")
    await net.staff.wait_joined(staff_room, net.bot_user)
    await say(
        net.staff, staff_room, f"!sif grant {alice.user_id} 5 welcome", net.bot_user, "Granted"
    )

    await say(alice, dm, "request I-1 review", net.bot_user, "Offered to 1 peer")
    offer = await bob.wait_for_message(bob_dm, net.bot_user, contains="Can you help? R-1")
    assert offer[0]["content"]["org.sif.actions"] == ["accept R-1", "decline R-1"]
    assert "React ✅ to accept" in offer[0]["content"]["body"]
    await bob.react(bob_dm, offer[0]["event_id"], "✅")
    await bob.wait_for_message(bob_dm, net.bot_user, contains="You accepted R-1")
    async with net.bot.uow_factory() as uow:
        member = await uow.members.by_identity("matrix", alice.user_id)
        assert member is not None
        request = await uow.requests.by_number(member.community, 1)
        assert request is not None and request.status is RequestStatus.ASSIGNED
        assert await uow.ledger.balance(member.community, AccountKey.of(member.id)) == 300

    table = await say(
        net.staff, staff_room, "!sif balances", net.bot_user, "Balances, lowest first"
    )
    assert "<table>" in table["content"]["formatted_body"]


async def test_a_restart_answers_the_new_message_once_and_not_the_old_one(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    await say(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await adapter.stop()
    net.adapters.remove(adapter)
    await alice.send_text(dm, "tags")  # while the bot is down
    await net.start()
    await alice.wait_for_message(dm, net.bot_user, contains="Expertise tags here")
    await asyncio.sleep(2)  # time for any duplicate to show up
    replies = await alice.messages_from(dm, net.bot_user)
    bodies = [r["content"]["body"] for r in replies]
    assert sum(b.startswith("Your balance") for b in bodies) == 1
    assert sum(b.startswith("Expertise tags here") for b in bodies) == 1


async def test_bad_input_gets_a_clear_answer_or_nothing(net: Net, matrix_users: MakeUser) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    await say(alice, dm, "x" * 20_000, net.bot_user, "too long (20,000 characters")
    help_reply = await say(alice, dm, "help", net.bot_user, "Commands you can use")
    await alice.react(dm, help_reply["event_id"], "✅")  # not an offer: ignored
    unknown = RoomMessageText.from_dict(
        {
            "type": "m.room.message",
            "event_id": "$unknown",
            "sender": alice.user_id,
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "!sif grant @x 5 y"},
        }
    )
    await adapter.on_event("!nowhere:sif.test", unknown)
    broken = UnknownBadEvent({"type": "m.room.message", "sender": alice.user_id}, "m.room.message")
    await adapter.on_event(dm, broken)
    await say(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    replies = await alice.messages_from(dm, net.bot_user)
    assert len(replies) == 3  # too long, help, tags: nothing for the reaction or the bad events
    async with net.bot.uow_factory() as uow:
        member = await uow.members.by_identity("matrix", alice.user_id)
        assert member is not None
        assert await uow.ledger.history(member.id, 5) == []


async def test_an_export_arrives_as_a_file_in_the_room(net: Net, matrix_users: MakeUser) -> None:
    await net.start()
    room = await net.staff.create_room(invite=[net.bot_user], name="staff")
    await net.staff.wait_joined(room, net.bot_user)
    await say(net.staff, room, "!sif export members", net.bot_user, "Export of members")
    files = [
        e
        for e in await net.staff.events(room, event_type="m.room.message", sender=net.bot_user)
        if e["content"].get("msgtype") == "m.file"
    ]
    for _ in range(20):
        if files:
            break
        await asyncio.sleep(0.25)
        files = [
            e
            for e in await net.staff.events(room, event_type="m.room.message", sender=net.bot_user)
            if e["content"].get("msgtype") == "m.file"
        ]
    assert files and files[0]["content"]["body"].startswith("sif-members-")
    assert files[0]["content"]["url"].startswith("mxc://")


async def test_stats_chart_arrives_as_an_image(net: Net, matrix_users: MakeUser) -> None:
    await net.start()
    room = await net.staff.create_room(invite=[net.bot_user], name="staff")
    await net.staff.wait_joined(room, net.bot_user)
    await say(net.staff, room, "!sif stats", net.bot_user, "Requests: 0 opened")
    images: list[dict[str, Any]] = []
    for _ in range(40):
        events = await net.staff.events(room, event_type="m.room.message", sender=net.bot_user)
        images = [e for e in events if e["content"].get("msgtype") == "m.image"]
        if images:
            break
        await asyncio.sleep(0.25)
    assert images and images[0]["content"]["info"]["mimetype"] == "image/png"
    assert images[0]["content"]["url"].startswith("mxc://")
