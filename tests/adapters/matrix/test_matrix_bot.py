"""The Matrix door end to end against a REAL Synapse: users are driven by a plain HTTP
client (tests/adapters/matrix/synapse.py), the bot by matrix-nio through our adapter."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from nio import RoomMessageText, UnknownBadEvent
from sqlalchemy import text

from adapters.matrix.client import MatrixAdapter, MatrixMessenger
from bot.domain.ledger import AccountKey
from bot.domain.records import RequestStatus
from bot.i18n import translations
from bot.messages import Actions, Button, Delivery, Outbound, Strong, Table, Text, plain
from bot.ports import PlatformUnavailable, Undeliverable
from tests.adapters.matrix.conftest import INTAKE, MakeUser, Net, open_dm, say
from tests.adapters.matrix.synapse import MatrixUser, Synapse


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


async def alice_known(net: Net, matrix_users: MakeUser) -> tuple[MatrixAdapter, MatrixUser, str]:
    """The bot started and a member, alice, who asked for her balance in a direct chat
    (her first contact): (the adapter, alice, the direct room)."""
    adapter = await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    await say(alice, dm, "!sif balance", net.bot_user, "Your balance")
    return adapter, alice, dm


async def outbox_rows(net: Net) -> int:
    async with net.bot.uow_factory() as uow:
        return int((await uow.session.execute(text("SELECT count(*) FROM outbox"))).scalar())


async def test_a_restart_answers_the_new_message_once_and_not_the_old_one(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter, alice, dm = await alice_known(net, matrix_users)
    await net.stop(adapter)
    await alice.send_text(dm, "tags")  # while the bot is down
    await net.start()
    await alice.wait_for_message(dm, net.bot_user, contains="Expertise tags here")
    await asyncio.sleep(2)  # time for any duplicate to show up
    replies = await alice.messages_from(dm, net.bot_user)
    bodies = [r["content"]["body"] for r in replies]
    assert sum(b.startswith("Your balance") for b in bodies) == 1
    assert sum(b.startswith("Expertise tags here") for b in bodies) == 1


async def test_a_read_only_answer_goes_straight_to_the_direct_room_and_stores_nothing(
    net: Net, matrix_users: MakeUser
) -> None:
    _, alice, dm = await alice_known(net, matrix_users)
    before = await outbox_rows(net)
    await say(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await say(alice, dm, "tags", net.bot_user, "Expertise tags here")
    assert await outbox_rows(net) == before  # answered without a write
    await say(alice, dm, "!sif balance @nobody-here", net.bot_user, "nobody-here")
    assert await outbox_rows(net) == before + 1  # a refusal is kept, as before
    replies = await alice.messages_from(dm, net.bot_user)
    assert sum(r["content"]["body"].startswith("Your balance") for r in replies) == 2


async def test_a_read_only_answer_that_cannot_be_sent_goes_through_the_outbox(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter, alice, dm = await alice_known(net, matrix_users)
    before = await outbox_rows(net)
    room_send = adapter.client.room_send
    dropped: list[str] = []

    async def drops_the_first(*args: Any, **kwargs: Any) -> Any:
        if not dropped:  # the homeserver's connection drops once
            dropped.append(args[0])
            raise aiohttp.ClientConnectionError("connection reset")
        return await room_send(*args, **kwargs)

    adapter.client.room_send = drops_the_first  # type: ignore[method-assign]
    await say(alice, dm, "!sif balance", net.bot_user, "Your balance")
    assert dropped == [dm]
    assert await outbox_rows(net) == before + 1  # kept, then sent from the outbox
    await asyncio.sleep(1)  # time for any duplicate to show up
    replies = await alice.messages_from(dm, net.bot_user)
    assert sum(r["content"]["body"].startswith("Your balance") for r in replies) == 2


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


# -- hardening: error classes, history, allowed servers ----------------------------------


def note(to: str, text: str, delivery: Delivery = Delivery.CHANNEL) -> Outbound:
    return Outbound(platform="matrix", delivery=delivery, to=to, topic="note", parts=plain(text))


async def kick(by: MatrixUser, room: str, user_id: str) -> None:
    await by.api("POST", f"/rooms/{quote(room, safe='')}/kick", body={"user_id": user_id})


async def test_a_room_the_bot_is_out_of_is_undeliverable(net: Net) -> None:
    adapter = await net.start()
    messenger = MatrixMessenger(adapter)
    kicked = await net.staff.create_room(invite=[net.bot_user], name="kicked")
    left = await net.staff.create_room(invite=[net.bot_user], name="left")
    for room in (kicked, left):
        await net.staff.wait_joined(room, net.bot_user)
        assert (await messenger.send(note(room, "hello"))).startswith("$")
    await kick(net.staff, kicked, net.bot_user)
    await adapter.client.room_leave(left)
    for room in (kicked, left, "!no-such-room:sif.test"):
        with pytest.raises(Undeliverable) as refused:
            await messenger.send(note(room, "still there?"))
        assert refused.value.reason == "M_FORBIDDEN"


async def test_a_direct_message_to_nobody_is_undeliverable_and_opens_no_room(net: Net) -> None:
    adapter = await net.start()
    rooms_before = (await adapter.client.joined_rooms()).rooms
    with pytest.raises(Undeliverable) as refused:
        await MatrixMessenger(adapter).send(note("@nobody:sif.test", "hi", Delivery.DM))
    assert refused.value.reason == "M_NOT_FOUND"
    assert (await adapter.client.joined_rooms()).rooms == rooms_before


async def test_a_direct_message_after_the_bot_was_kicked_from_the_dm_opens_a_new_one(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    await say(alice, dm, "help", net.bot_user, "Commands you can use")
    await kick(alice, dm, net.bot_user)
    await MatrixMessenger(adapter).send(note(alice.user_id, "a new room", Delivery.DM))
    fresh = await alice.wait_for_invite(inviter=net.bot_user)
    assert fresh != dm
    await alice.join(fresh)
    await alice.wait_for_message(fresh, net.bot_user, contains="a new room")
    bot_client = await net.synapse.login(net.bot_user.split(":")[0].lstrip("@"))
    try:
        path = f"/user/{quote(net.bot_user, safe='')}/account_data/m.direct"
        assert (await bot_client.api("GET", path))[alice.user_id] == [fresh]
    finally:
        await bot_client.close()


async def test_an_unreachable_or_failing_homeserver_is_platform_unavailable(
    net: Net, synapse: Synapse, tmp_path: Path
) -> None:
    async def bad_gateway(request: web.Request) -> web.Response:
        return web.Response(
            status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bad_gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy_port = runner.addresses[0][1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens there once closed
    localpart = net.bot_user.split(":")[0].lstrip("@")
    logged_out = await synapse.login(localpart)
    await logged_out.api("POST", "/logout")
    homeservers = {
        f"http://127.0.0.1:{closed_port}": "sif-bot",
        f"http://127.0.0.1:{proxy_port}": "sif-bot",
        synapse.base_url: logged_out.access_token,  # M_UNKNOWN_TOKEN
    }
    try:
        for index, (homeserver, token) in enumerate(homeservers.items()):
            adapter = MatrixAdapter(
                net.bot,
                homeserver=homeserver,
                user_id=net.bot_user,
                access_token=token,
                device_id="SIFBOT",
                store_path=tmp_path / f"other-{index}",
            )
            try:
                await adapter._login()  # with a token and its device: no request
                with pytest.raises(PlatformUnavailable):
                    await asyncio.wait_for(
                        MatrixMessenger(adapter).send(note("!room:sif.test", "hi")), 30
                    )
            finally:
                await adapter.stop()
    finally:
        await logged_out.close()
        await runner.cleanup()


async def test_a_rate_limited_bot_waits_a_little_then_reports_the_platform_unavailable(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    admin = await matrix_users("admin", admin=True)
    room = await net.staff.create_room(invite=[net.bot_user], name="busy")
    await net.staff.wait_joined(room, net.bot_user)
    path = f"/_synapse/admin/v1/users/{quote(net.bot_user, safe='')}/override_ratelimit"
    await admin.api("POST", path, body={"messages_per_second": 1, "burst_count": 1})
    messenger = MatrixMessenger(adapter)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(messenger.send(note(room, f"message {n}")) for n in range(25)),
            return_exceptions=True,
        ),
        20,
    )
    sent = [r for r in results if isinstance(r, str)]
    held = [r for r in results if isinstance(r, PlatformUnavailable)]
    assert len(sent) + len(held) == len(results), results
    assert sent and held  # some got through after a wait, the rest are left to the outbox


async def count_from(user: MatrixUser, room: str, sender: str, text: str) -> int:
    """How many of the sender's messages in the room hold the text."""
    replies = await user.messages_from(room, sender)
    return sum(text in r["content"]["body"] for r in replies)


async def test_what_was_said_before_the_bot_joined_is_not_answered(
    net: Net, matrix_users: MakeUser
) -> None:
    alice = await matrix_users("alice")
    room = await alice.create_room(invite=[net.bot_user], name="early")
    await alice.send_text(room, "!sif help")  # invited, not joined: the bot never ran yet
    await net.start()
    await alice.wait_joined(room, net.bot_user)
    await say(alice, room, "!sif help", net.bot_user, "Commands you can use")
    await asyncio.sleep(2)  # time for an answer to the old one to show up
    assert await count_from(alice, room, net.bot_user, "Commands you can use") == 1


async def test_after_a_restart_what_came_since_the_join_is_answered_once_and_no_older(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    dm = await open_dm(alice, net.bot_user)
    await net.stop(adapter)
    # While the bot is down: alice writes in a room it is in; bob invites it and writes.
    await alice.send_text(dm, "!sif help")
    room = await bob.create_room(invite=[net.bot_user], name="while down")
    await bob.send_text(room, "!sif help")
    await net.start()
    await alice.wait_for_message(dm, net.bot_user, contains="Commands you can use")
    await bob.wait_joined(room, net.bot_user)
    await say(bob, room, "!sif help", net.bot_user, "Commands you can use")
    await asyncio.sleep(2)  # time for duplicates or an answer to the old one to show up
    assert await count_from(alice, dm, net.bot_user, "Commands you can use") == 1
    assert await count_from(bob, room, net.bot_user, "Commands you can use") == 1


async def test_allowed_servers_limit_who_is_served_not_only_who_invites(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start(allowed_servers=["elsewhere.test"])
    alice = await matrix_users("alice")  # on sif.test, not an allowed server
    await MatrixMessenger(adapter).send(note(alice.user_id, "Hello from the bot", Delivery.DM))
    dm = await alice.wait_for_invite(inviter=net.bot_user)
    await alice.join(dm)
    await alice.send_text(dm, "!sif help")
    await alice.send_text(dm, "balance")
    await asyncio.sleep(2)  # time for answers to show up
    replies = await alice.messages_from(dm, net.bot_user)
    assert [r["content"]["body"] for r in replies] == ["Hello from the bot"]
    async with net.bot.uow_factory() as uow:
        assert await uow.members.by_identity("matrix", alice.user_id) is None
    await net.stop(adapter)
    await net.start(allowed_servers=["elsewhere.test", "sif.test"])
    await say(alice, dm, "!sif help", net.bot_user, "Commands you can use")
    async with net.bot.uow_factory() as uow:
        assert await uow.members.by_identity("matrix", alice.user_id) is not None
    assert await count_from(alice, dm, net.bot_user, "Commands you can use") == 1


def long_text(chars: int) -> str:
    """Paragraphs of words, some escaped in HTML or JSON, some not ASCII."""
    words = ["review", "café", "a&b", "<tag>", '"quoted"', "it's", "back\\slash", "🎉", "net"]
    out: list[str] = []
    size = 0
    for n in itertools.count():
        word = words[n % len(words)] + str(n % 13)
        gap = "\n\n" if n % 97 == 96 else "\n" if n % 31 == 30 else " "
        out += [word, gap]
        size += len(word) + len(gap)
        if size >= chars:
            return "".join(out[:-1])
    raise AssertionError("unreachable")


def joined_back(text: str, bodies: list[str]) -> bool:
    """Whether the bodies are the text in order, split only at whitespace it dropped."""
    at = 0
    for body in bodies:
        if not body or not text.startswith(body, at):
            return False
        at += len(body)
        while at < len(text) and text[at].isspace():
            at += 1
    return at == len(text)


async def test_a_message_too_large_for_one_event_arrives_whole_as_several(net: Net) -> None:
    adapter = await net.start()
    messenger = MatrixMessenger(adapter)
    room = await net.staff.create_room(invite=[net.bot_user], name="long")
    await net.staff.wait_joined(room, net.bot_user)
    text = long_text(200_000)
    offer = (Button("Accept", "accept R-1"), Button("Decline", "decline R-1"))
    message = replace(note(room, text), parts=(Text(text), Actions(offer)), outbox_id=9001)
    await messenger.send(message)
    await messenger.send(message)  # sent again, as after a crash midway: nothing twice
    events = await net.staff.events(room, event_type="m.room.message", sender=net.bot_user)
    contents = [e["content"] for e in events]
    assert len(contents) > 1
    hint = "\nReact ✅ to accept or ❌ to decline."
    assert contents[-1]["body"].endswith(hint)
    assert contents[-1]["org.sif.actions"] == ["accept R-1", "decline R-1"]
    assert all("org.sif.actions" not in c for c in contents[:-1])
    bodies = [c["body"] for c in contents]
    bodies[-1] = bodies[-1].removesuffix(hint)
    assert joined_back(text, bodies)


async def test_a_long_table_arrives_as_whole_tables_of_whole_rows(net: Net) -> None:
    adapter = await net.start()
    messenger = MatrixMessenger(adapter)
    room = await net.staff.create_room(invite=[net.bot_user], name="table")
    await net.staff.wait_joined(room, net.bot_user)
    headers = ("Member", "Balance", "Note")
    rows = tuple((f"member {n}", f"{n}.00", f"<{n}> & co") for n in range(1500))
    parts = (Strong("Balances"), Text("\n"), Table(headers, rows))
    message = replace(note(room, ""), parts=parts, outbox_id=9002)
    await messenger.send(message)
    await messenger.send(message)
    events = await net.staff.events(room, event_type="m.room.message", sender=net.bot_user)
    formatted = [e["content"]["formatted_body"] for e in events]
    assert len(formatted) > 1 and formatted[0].startswith("<b>Balances</b>")
    head = "<thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead>"
    seen: list[tuple[str, ...]] = []
    for html_ in formatted:
        assert html_.count("<table>") == 1 and head in html_
        body = html_.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        for row in re.findall(r"<tr>(.*?)</tr>", body):
            seen.append(tuple(unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)))
    assert seen == list(rows)


async def test_after_a_restart_a_direct_message_goes_to_the_known_direct_room(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    await say(alice, dm, "help", net.bot_user, "Commands you can use")
    await net.stop(adapter)
    adapter = await net.start()  # the direct room is quiet: no sync mentions it
    await MatrixMessenger(adapter).send(note(alice.user_id, "still here", Delivery.DM))
    await alice.wait_for_message(dm, net.bot_user, contains="still here")
    assert [room async for room in invites_from(alice, net.bot_user)] == []


async def invites_from(user: MatrixUser, inviter: str) -> AsyncIterator[str]:
    """Invites from `inviter` not yet returned (none when there is none within 1 s)."""
    while True:
        try:
            yield await user.wait_for_invite(inviter=inviter, timeout=1)
        except AssertionError:
            return


async def test_after_a_restart_talk_in_a_group_room_is_still_not_for_the_bot(
    net: Net, matrix_users: MakeUser
) -> None:
    adapter = await net.start()
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    room = await alice.create_room(invite=[net.bot_user, bob.user_id], name="group")
    await bob.join(room)
    await alice.wait_joined(room, net.bot_user)
    await net.stop(adapter)
    await net.start()
    await alice.send_text(room, "help")  # to bob, not to the bot: no !sif
    await alice.send_text(room, "!sif help")  # answered privately, in a direct room
    dm = await alice.wait_for_invite(inviter=net.bot_user)
    await alice.join(dm)
    await alice.wait_for_message(dm, net.bot_user, contains="Commands you can use")
    await asyncio.sleep(1)
    assert await alice.messages_from(room, net.bot_user) == []
    assert await count_from(alice, dm, net.bot_user, "Commands you can use") == 1


async def test_language_de_then_the_answers_are_german(net: Net, matrix_users: MakeUser) -> None:
    await net.start()
    alice = await matrix_users("alice")
    dm = await open_dm(alice, net.bot_user)
    english = await say(alice, dm, "!sif balance", net.bot_user, "Your balance")
    chosen = translations("de").gettext(
        "From now on I speak {language} to you. Commands keep their English names; "
        "type `help` for them."
    )
    assert chosen.startswith("Ab jetzt")
    await alice.send_text(dm, "!sif language de")
    await alice.wait_for_message(dm, net.bot_user, contains=chosen.split("{")[0], timeout=20)
    await alice.send_text(dm, "!sif balance")
    await asyncio.sleep(0)
    replies = await alice.messages_from(dm, net.bot_user)
    for _ in range(50):
        if len(replies) >= 3:
            break
        await asyncio.sleep(0.2)
        replies = await alice.messages_from(dm, net.bot_user)
    german = replies[-1]["content"]["body"]
    assert german != english["content"]["body"]
    assert "SIF" in german and not german.startswith("Your balance")
    assert re.findall(r"\d+,\d\d SIF", german)  # amounts the German way
