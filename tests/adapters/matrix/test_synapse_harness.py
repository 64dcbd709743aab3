"""The Synapse harness itself: users, DMs, bursts past the default rate limits, reactions,
encrypted rooms, readable failures, and how long a homeserver takes to start.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.adapters.matrix import synapse as harness
from tests.adapters.matrix.conftest import MakeUser
from tests.adapters.matrix.synapse import Synapse, synapse_server, synapse_version


async def test_direct_message_round_trip(matrix_users: MakeUser) -> None:
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")

    room = await alice.create_room(invite=[bob.user_id], is_direct=True)
    assert await bob.wait_for_invite(inviter=alice.user_id) == room
    await bob.join(room)
    await alice.wait_joined(room, bob.user_id)
    assert await alice.joined_members(room) == sorted([alice.user_id, bob.user_id])

    # The invite carries is_direct, and alice's client-side DM list names the room.
    invites = [
        e
        for e in await alice.events(room, event_type="m.room.member")
        if e["content"].get("membership") == "invite"
    ]
    assert [(e["state_key"], e["content"].get("is_direct")) for e in invites] == [
        (bob.user_id, True)
    ]
    direct = await alice.api("GET", f"/user/{alice.user_id}/account_data/m.direct")
    assert direct == {bob.user_id: [room]}

    hello = await alice.send_text(room, "hello bob")
    [seen] = await bob.wait_for_message(room, alice.user_id, contains="hello")
    assert (seen["event_id"], seen["content"]["body"]) == (hello, "hello bob")

    await bob.send_text(room, "hi alice", reply_to=hello)
    [reply] = await alice.wait_for_message(room, bob.user_id)
    assert reply["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": hello}}

    reaction = await bob.react(room, hello, "👍")
    event = await alice.get_event(room, reaction)
    assert event["type"] == "m.reaction"
    assert event["content"]["m.relates_to"] == {
        "rel_type": "m.annotation",
        "event_id": hello,
        "key": "👍",
    }

    await bob.leave(room)
    assert await alice.joined_members(room) == [alice.user_id]


async def test_wait_finds_a_reply_sent_before_the_wait_started(matrix_users: MakeUser) -> None:
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    room = await alice.create_room(invite=[bob.user_id])
    await bob.join(room)
    await bob.send_text(room, "early")
    await bob.send_text(room, "later")
    # Each wait consumes up to its last match, so the same message is not returned twice.
    assert [m["content"]["body"] for m in await alice.wait_for_message(room, bob.user_id)] == [
        "early"
    ]
    [later] = await alice.wait_for_message(room, bob.user_id)
    assert later["content"]["body"] == "later"
    assert await alice.messages_from(room, bob.user_id, since_start=False) == []
    assert len(await alice.messages_from(room, bob.user_id)) == 2


async def test_bursts_pass_the_raised_rate_limits(matrix_users: MakeUser) -> None:
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    room = await alice.create_room(invite=[bob.user_id], is_direct=True)
    await bob.join(room)

    # Default Synapse allows a burst of 10 messages, then 0.2/s: 30 would be refused.
    started = time.monotonic()
    for i in range(30):
        await alice.send_text(room, f"burst {i}")
    sequential = time.monotonic() - started
    got = await bob.wait_for_message(room, alice.user_id, count=30, timeout=30)
    assert [m["content"]["body"] for m in got] == [f"burst {i}" for i in range(30)]

    # Concurrent sends too (how a busy bot would talk).
    started = time.monotonic()
    await asyncio.gather(*(alice.send_text(room, f"parallel {i}") for i in range(30)))
    concurrent = time.monotonic() - started
    got = await bob.wait_for_message(room, alice.user_id, contains="parallel", count=30)
    assert sorted(m["content"]["body"] for m in got) == sorted(f"parallel {i}" for i in range(30))
    assert len(await bob.messages_from(room, alice.user_id)) == 60

    # Defaults: 10 room creations then one a minute, and 5 /invite calls per invited user
    # then one per ≈ 5 minutes (invites inside createRoom are not counted there).
    started = time.monotonic()
    rooms = [await alice.create_room() for _ in range(12)]
    for r in rooms:
        await alice.invite(r, bob.user_id)
        await bob.join(r)
    creating = time.monotonic() - started
    print(
        f"\n[harness] 30 sequential sends {sequential:.2f} s, 30 concurrent {concurrent:.2f} s, "
        f"12 rooms + invites + joins {creating:.2f} s"
    )


async def test_encrypted_room_can_be_created(matrix_users: MakeUser) -> None:
    alice = await matrix_users("alice")
    room = await alice.create_room(encrypted=True, name="secret")
    assert await alice.get_state(room, "m.room.encryption") == {"algorithm": "m.megolm.v1.aes-sha2"}
    assert await alice.get_state(room, "m.room.name") == {"name": "secret"}


async def test_failures_read_well(synapse: Synapse, matrix_users: MakeUser) -> None:
    alice = await matrix_users("alice")
    bob = await matrix_users("bob")
    room = await alice.create_room(invite=[bob.user_id])
    await bob.join(room)
    await alice.send_text(room, "not what you want")

    with pytest.raises(AssertionError, match=r"(?s)found 0.*not what you want"):
        await bob.wait_for_message(room, alice.user_id, contains="never sent", timeout=0.5)
    with pytest.raises(AssertionError, match=r"HTTP 403: .*M_FORBIDDEN"):
        await alice.send_text("!nowhere:sif.test", "x")
    with pytest.raises(AssertionError, match="M_USER_IN_USE"):
        await synapse.register(alice.user_id.split(":")[0][1:])


async def test_login_and_admin(synapse: Synapse) -> None:
    name = synapse.unique_localpart("carol")
    carol = await synapse.register(name, admin=True)
    again = await synapse.login(name)
    try:
        assert again.user_id == carol.user_id
        assert again.access_token != carol.access_token
        whois = await carol.api("GET", "/account/whoami")
        assert whois["user_id"] == carol.user_id
        admin = await carol.api("GET", f"/_synapse/admin/v1/users/{carol.user_id}/admin")
        assert admin == {"admin": True}
    finally:
        await carol.close()
        await again.close()


async def test_start_up_times(synapse: Synapse) -> None:
    """A second, fresh homeserver: compare with the session's (first) start."""
    async with synapse_server() as second:
        user = await second.register("dave")
        await user.close()
        assert second.start_seconds is not None
        started = time.monotonic()
        await second.stop()
        stopping = time.monotonic() - started
        assert not second.running
    install = harness.LAST_INSTALL_SECONDS
    installed = "already present" if install is None else f"{install:.1f} s"
    print(
        f"\n[harness] matrix-synapse {synapse_version()}; install {installed}; "
        f"session start {synapse.start_seconds:.2f} s, second fresh start "
        f"{second.start_seconds:.2f} s, stop {stopping:.2f} s"
    )
