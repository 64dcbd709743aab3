"""The E2EE test users themselves, against the real Synapse: encrypt, decrypt, new devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.matrix.e2ee import E2EEUsers
from tests.adapters.matrix.synapse import Synapse


@pytest.fixture
async def e2ee(synapse: Synapse, tmp_path: Path) -> AsyncIterator[E2EEUsers]:
    users = E2EEUsers(synapse, tmp_path)
    try:
        yield users
    finally:
        await users.close()


def _message_types(events: list[dict[str, object]]) -> list[str]:
    return [
        str(e["type"]) for e in events if e.get("type") in {"m.room.message", "m.room.encrypted"}
    ]


async def test_encrypted_room_round_trip(e2ee: E2EEUsers) -> None:
    alice = await e2ee.new("alice")
    bob = await e2ee.new("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await alice.wait_joined(room_id, bob.user_id)  # bob's loop accepts the invite

    sent = await alice.send_text(room_id, "hello")
    got = await bob.wait_for_message(room_id, alice.user_id, contains="hello")

    assert got.event_id == sent
    assert got.body == "hello"
    assert got.encrypted is True
    assert got.source["type"] == "m.room.encrypted"
    assert got.content["msgtype"] == "m.text"
    assert [m.body for m in bob.messages_from(room_id, alice.user_id)] == ["hello"]
    # Her own device reads her message too (nio decrypts its own megolm session).
    mine = await alice.wait_for_message(room_id, alice.user_id, contains="hello")
    assert mine.encrypted is True

    raw = await bob.raw_events(room_id)
    assert raw[0]["type"] == "m.room.create"  # from the very start
    assert _message_types(raw) == ["m.room.encrypted"]
    assert "hello" not in str(raw)

    # A reply and a reaction are encrypted too; the relation stays in clear (as Element).
    reply_id = await bob.send_text(room_id, "hi alice", reply_to=sent)
    reply = await alice.wait_for_message(room_id, bob.user_id, contains="hi alice")
    assert reply.event_id == reply_id and reply.reply_to == sent and reply.encrypted
    reaction_id = await bob.react(room_id, sent, "👍")
    raw = await alice.raw_events(room_id)
    reaction = next(e for e in raw if e["event_id"] == reaction_id)
    assert reaction["type"] == "m.room.encrypted"
    assert reaction["content"]["m.relates_to"]["event_id"] == sent
    assert _message_types(raw) == ["m.room.encrypted"] * 3


async def test_waits_for_the_same_text_twice(e2ee: E2EEUsers) -> None:
    alice = await e2ee.new("alice")
    bob = await e2ee.new("bob")
    room_id = await alice.create_room(invite=[bob.user_id], is_direct=True)
    await alice.wait_joined(room_id, bob.user_id)

    first = await alice.send_text(room_id, "ping")
    second = await alice.send_text(room_id, "ping")
    assert (await bob.wait_for_message(room_id, alice.user_id, contains="ping")).event_id == first
    assert (await bob.wait_for_message(room_id, alice.user_id, contains="ping")).event_id == second
    with pytest.raises(AssertionError, match="'ping'"):
        await bob.wait_for_message(room_id, alice.user_id, contains="ping", timeout=1.5)
    later = await alice.send_text(room_id, "pong")
    got = await bob.wait_for_message(room_id, alice.user_id, after=second)
    assert got.event_id == later

    direct = await alice.http.api("GET", f"/user/{alice.user_id}/account_data/m.direct")
    assert direct == {bob.user_id: [room_id]}


async def test_second_device_reads_new_messages(e2ee: E2EEUsers) -> None:
    alice = await e2ee.new("alice")
    bob = await e2ee.new("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await alice.wait_joined(room_id, bob.user_id)
    await alice.send_text(room_id, "before")
    await bob.wait_for_message(room_id, alice.user_id, contains="before")

    bob2 = await e2ee.second_device(bob)
    assert bob2.user_id == bob.user_id and bob2.device_id != bob.device_id
    # Straight after the login, with no wait: send_text asks for the members' devices.
    sent = await alice.send_text(room_id, "after")

    got = await bob2.wait_for_message(room_id, alice.user_id, contains="after")
    assert got.event_id == sent and got.encrypted
    assert (await bob.wait_for_message(room_id, alice.user_id, contains="after")).encrypted
    # The old message was encrypted before bob2 existed: it has no key for it.
    assert "before" not in [m.body for m in bob2.messages_from(room_id, alice.user_id)]

    # And bob's own devices share keys with each other.
    own = await bob2.send_text(room_id, "from bob2")
    assert (await bob.wait_for_message(room_id, bob.user_id, contains="from bob2")).event_id == own
    await alice.wait_for_message(room_id, bob.user_id, contains="from bob2")


async def test_unencrypted_room(e2ee: E2EEUsers) -> None:
    alice = await e2ee.new("alice")
    bob = await e2ee.new("bob")
    room_id = await alice.create_room(invite=[bob.user_id], encrypted=False, name="plain")
    await alice.wait_joined(room_id, bob.user_id)

    sent = await alice.send_text(room_id, "hello in clear")
    got = await bob.wait_for_message(room_id, alice.user_id, contains="hello in clear")

    assert got.event_id == sent
    assert got.encrypted is False
    assert got.source["type"] == "m.room.message"
    assert got.source["content"]["body"] == "hello in clear"
    raw = await bob.raw_events(room_id)
    assert _message_types(raw) == ["m.room.message"]
    reaction_id = await bob.react(room_id, sent, "🎉")
    reaction = next(e for e in await alice.raw_events(room_id) if e["event_id"] == reaction_id)
    assert reaction["type"] == "m.reaction"
