"""The bot in encrypted rooms, against a REAL Synapse, with real end-to-end encrypting
users (matrix-nio with encryption and a store of its own per device, from
tests/adapters/matrix/e2ee.py).

Every test ends by reading every event of its encrypted rooms as the homeserver has them:
the bot never sent a plaintext message into any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from nio import Api, RoomSendResponse, ToDeviceMessage, ToDeviceResponse

from adapters.matrix.client import UNDECRYPTABLE_NOTICE, MatrixError, manage_devices
from bot.domain.ledger import AccountKey, format_sif
from tests.adapters.matrix.conftest import INTAKE, MakeUser, Net, open_dm
from tests.adapters.matrix.e2ee import E2EEUser, E2EEUsers, Message
from tests.adapters.matrix.synapse import Synapse
from tests.adapters.matrix.test_cross_signing import assert_cross_signed, seen_keys

NOTICE_START = UNDECRYPTABLE_NOTICE.split(":")[0]


@pytest.fixture
async def e2ee(synapse: Synapse, tmp_path: Path) -> AsyncIterator[E2EEUsers]:
    users = E2EEUsers(synapse, tmp_path / "users")
    yield users
    await users.close()


async def talk(user: E2EEUser, room: str, text: str, bot: str, expect: str) -> Message:
    """Send an encrypted message and wait for the bot's encrypted answer."""
    await user.send_text(room, text)
    reply = await user.wait_for_message(room, bot, contains=expect, timeout=30)
    assert reply.encrypted, f"the answer to {text!r} came in plaintext: {reply.body!r}"
    return reply


async def assert_no_plaintext(user: E2EEUser, rooms: list[str], bot: str) -> None:
    """Every event the bot sent into these encrypted rooms, as the server has it, is
    m.room.encrypted (state and membership aside): no message in plaintext."""
    for room in rooms:
        events = await user.raw_events(room)
        assert any(e.get("type") == "m.room.encryption" for e in events), room
        sent = [e for e in events if e.get("sender") == bot and "state_key" not in e]
        assert sent, f"the bot sent nothing into {room}"
        plaintext = [e for e in sent if e.get("type") != "m.room.encrypted"]
        assert plaintext == [], plaintext


async def new_room_with(user: E2EEUser, bot: str, known: set[str], seconds: float = 30) -> str:
    """The room the bot invited the user to (the user joins invites by itself)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        for room_id, room in list(user.client.rooms.items()):
            if room_id not in known and bot in room.users:
                return str(room_id)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{bot} opened no room with {user.user_id}")


async def encrypted_dm(user: E2EEUser, bot: str) -> str:
    room = await user.create_room(invite=[bot], is_direct=True, encrypted=True)
    await user.wait_joined(room, bot)
    return room


async def test_an_encrypted_dm_from_a_new_member_gets_the_welcome_and_a_full_intake(
    net: Net, e2ee: E2EEUsers
) -> None:
    await net.start()
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "hello", net.bot_user, "Welcome to")
    await talk(alice, dm, "intake", net.bot_user, "(1/12)")
    for number, answer in enumerate(INTAKE, start=2):
        expect = f"({number}/12)" if number <= 12 else "Here is what you told me"
        await talk(alice, dm, answer, net.bot_user, expect)
    await talk(alice, dm, "confirm", net.bot_user, "Your idea is saved as I-1")
    async with net.bot.uow_factory() as uow:
        member = await uow.members.by_identity("matrix", alice.user_id)
        assert member is not None
        idea = await uow.ideas.by_number(member.community, 1)
        assert idea is not None and idea.title == INTAKE[0]
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_a_grant_in_an_encrypted_staff_room_shows_in_the_members_encrypted_balance(
    net: Net, e2ee: E2EEUsers
) -> None:
    await net.start()
    staff = await e2ee.login(net.staff.user_id.split(":")[0].lstrip("@"))
    carol = await e2ee.new("carol")
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    before = await talk(alice, dm, "balance", net.bot_user, "Your balance")

    room = await staff.create_room(invite=[net.bot_user, carol.user_id], name="staff")
    await staff.wait_joined(room, net.bot_user)
    await staff.wait_joined(room, carol.user_id)
    net.bot.settings.sif_staff_channel = room  # SIF_STAFF_CHANNEL
    await staff.send_text(room, f"!sif grant {alice.user_id} 7 welcome")
    # A grant is answered privately: in a direct room the bot opens, encrypted too.
    staff_dm = await new_room_with(staff, net.bot_user, known={room})
    granted = await staff.wait_for_message(staff_dm, net.bot_user, contains="Granted", timeout=30)
    assert granted.encrypted
    # A staff answer in the staff room replies to the command; carol reads it too.
    command = await staff.send_text(room, "!sif balances")
    table = await staff.wait_for_message(room, net.bot_user, contains="Balances", timeout=30)
    assert table.encrypted
    assert table.content["m.relates_to"] == {"m.in_reply_to": {"event_id": command}}
    await carol.wait_for_message(room, net.bot_user, contains="Balances", timeout=30)

    async with net.bot.uow_factory() as uow:
        member = await uow.members.by_identity("matrix", alice.user_id)
        assert member is not None
        balance = await uow.ledger.balance(member.community, AccountKey.of(member.id))
    after = await talk(alice, dm, "balance", net.bot_user, "Your balance")
    assert format_sif(balance) in after.body and after.body != before.body
    await assert_no_plaintext(alice, [dm], net.bot_user)
    await assert_no_plaintext(staff, [room, staff_dm], net.bot_user)


async def test_a_restart_between_two_encrypted_messages_answers_each_once(
    net: Net, e2ee: E2EEUsers
) -> None:
    adapter = await net.start()
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await net.stop(adapter)
    await alice.send_text(dm, "tags")  # while the bot is down
    await net.start()
    await alice.wait_for_message(dm, net.bot_user, contains="Expertise tags here", timeout=30)
    await alice.send_text(dm, "!sif balance")  # and the one after the restart
    await alice.wait_for_message(dm, net.bot_user, contains="Your balance", timeout=30)
    await asyncio.sleep(2)  # time for any duplicate to show up
    bodies = [m.body for m in alice.messages_from(dm, net.bot_user)]
    assert sum(b.startswith("Your balance") for b in bodies) == 2, bodies
    assert sum(b.startswith("Expertise tags here") for b in bodies) == 1, bodies
    assert all(m.encrypted for m in alice.messages_from(dm, net.bot_user))
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_a_second_device_of_the_member_reads_the_bots_replies(
    net: Net, e2ee: E2EEUsers, tmp_path: Path
) -> None:
    await net.start()
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "!sif balance", net.bot_user, "Your balance")
    phone = await alice.second_device(tmp_path / "alice-phone")
    await talk(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    seen = await phone.wait_for_message(dm, net.bot_user, contains="Expertise tags here")
    assert seen.encrypted
    # and the bot reads the new device's own messages
    await phone.send_text(dm, "!sif balance")
    await phone.wait_for_message(dm, net.bot_user, contains="Your balance", timeout=30)
    await assert_no_plaintext(alice, [dm], net.bot_user)


# -- messages the bot cannot decrypt ------------------------------------------------------


# the session id and first key of each withheld session, by (user, room)
_WITHHELD: dict[tuple[str, str], tuple[str, str]] = {}


async def send_withheld(user: E2EEUser, room: str, body: str, *, new_session: bool = True) -> str:
    """An encrypted message whose room key nobody has been given: the user's device
    starts a new megolm session and encrypts with it without sharing it (as when the
    key's to-device message is lost or late). `share_late` sends the key afterwards."""
    olm = user.client.olm
    assert olm is not None
    if new_session:
        olm.create_outbound_group_session(room)
        session = olm.outbound_group_sessions[room]
        session.shared = True  # encrypt before sharing
        _WITHHELD[(user.user_id, room)] = (session.id, session.session_key)
    payload = olm.group_encrypt(
        room, {"type": "m.room.message", "content": {"msgtype": "m.text", "body": body}}
    )
    method, path, data = Api.room_send(
        user.client.access_token, room, "m.room.encrypted", payload, uuid4()
    )
    response = await user.client._send(RoomSendResponse, method, path, data, (room,))
    assert isinstance(response, RoomSendResponse), response
    return str(response.event_id)


async def share_late(user: E2EEUser, room: str, bot: str) -> None:
    """Send the bot's devices the withheld session's key (from its first message on), as
    a late m.room_key does, over the Olm session the two devices already share."""
    olm = user.client.olm
    assert olm is not None
    session_id, key = _WITHHELD[(user.user_id, room)]
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": room,
        "session_id": session_id,
        "session_key": key,
    }
    devices = list(user.client.device_store.active_user_devices(bot))
    assert devices, f"{user.user_id} knows no device of {bot}"
    for device in devices:
        olm_session = olm.session_store.get(device.curve25519)
        assert olm_session is not None, f"no Olm session with {device.id}"
        payload = olm._olm_encrypt(olm_session, device, "m.room_key", content)
        response = await user.client.to_device(
            ToDeviceMessage("m.room.encrypted", bot, device.id, payload)
        )
        assert isinstance(response, ToDeviceResponse), response


def notices(user: E2EEUser, room: str, bot: str) -> list[Message]:
    return [m for m in user.messages_from(room, bot) if m.body.startswith(NOTICE_START)]


async def test_an_undecryptable_message_gets_one_notice_and_is_never_answered(
    net: Net, e2ee: E2EEUsers
) -> None:
    adapter = await net.start()
    adapter.key_wait = 1.5
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    await send_withheld(alice, dm, "!sif balance")
    await send_withheld(alice, dm, "!sif balance", new_session=False)  # no second notice
    notice = await alice.wait_for_message(dm, net.bot_user, contains=NOTICE_START, timeout=30)
    assert notice.encrypted and notice.body == UNDECRYPTABLE_NOTICE
    # The key comes after the sender was told: the old messages stay unanswered (she
    # sends again), the new one of that session is read.
    await share_late(alice, dm, net.bot_user)
    await talk(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await asyncio.sleep(3)
    bodies = [m.body for m in alice.messages_from(dm, net.bot_user)]
    assert len(notices(alice, dm, net.bot_user)) == 1, bodies
    assert sum(b.startswith("Your balance") for b in bodies) == 1, bodies
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_a_key_that_comes_within_the_wait_gets_its_message_answered_once(
    net: Net, e2ee: E2EEUsers
) -> None:
    adapter = await net.start()
    adapter.key_wait = 60
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    await send_withheld(alice, dm, "!sif balance")
    await asyncio.sleep(2)  # the bot has seen it and asked for the key
    await share_late(alice, dm, net.bot_user)
    await alice.wait_for_message(dm, net.bot_user, contains="Your balance", timeout=30)
    await asyncio.sleep(3)
    bodies = [m.body for m in alice.messages_from(dm, net.bot_user)]
    assert sum(b.startswith("Your balance") for b in bodies) == 1, bodies
    assert notices(alice, dm, net.bot_user) == []
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_in_a_group_room_the_notice_replies_to_the_message_it_could_not_read(
    net: Net, e2ee: E2EEUsers
) -> None:
    adapter = await net.start()
    adapter.key_wait = 1.5
    alice = await e2ee.new("alice")
    carol = await e2ee.new("carol")
    room = await alice.create_room(invite=[net.bot_user, carol.user_id], name="group")
    await alice.wait_joined(room, net.bot_user)
    await alice.wait_joined(room, carol.user_id)
    await alice.send_text(room, "!sif tags")  # answered privately, in a direct room
    dm = await new_room_with(alice, net.bot_user, known={room})
    await alice.wait_for_message(dm, net.bot_user, contains="Expertise tags here", timeout=30)
    unread = await send_withheld(alice, room, "!sif tags")
    notice = await alice.wait_for_message(room, net.bot_user, contains=NOTICE_START, timeout=30)
    assert notice.content["m.relates_to"] == {"m.in_reply_to": {"event_id": unread}}
    await assert_no_plaintext(alice, [room], net.bot_user)


# -- encrypted and unencrypted side by side; the store -----------------------------------


async def test_unencrypted_and_encrypted_rooms_side_by_side(
    net: Net, e2ee: E2EEUsers, matrix_users: MakeUser
) -> None:
    await net.start()
    alice = await e2ee.new("alice")
    plain_dm = await alice.create_room(invite=[net.bot_user], is_direct=True, encrypted=False)
    await alice.wait_joined(plain_dm, net.bot_user)
    dm = await encrypted_dm(alice, net.bot_user)
    await alice.send_text(plain_dm, "!sif tags")
    reply = await alice.wait_for_message(plain_dm, net.bot_user, contains="Expertise tags")
    assert not reply.encrypted and reply.content["msgtype"] == "m.notice"
    await talk(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    # A user without any encryption keys: the direct room the bot opens is not encrypted,
    # so they can read it.
    bob = await matrix_users("bob")
    room = await open_dm(bob, net.bot_user)
    await bob.send_text(room, "!sif tags")
    (answer,) = await bob.wait_for_message(room, net.bot_user, contains="Expertise tags")
    assert answer["type"] == "m.room.message"
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_a_direct_room_the_bot_opens_for_a_member_with_keys_is_encrypted(
    net: Net, e2ee: E2EEUsers
) -> None:
    await net.start()
    alice = await e2ee.new("alice")
    carol = await e2ee.new("carol")  # three in the room: a group room, not a direct one
    group = await alice.create_room(
        invite=[net.bot_user, carol.user_id], name="group", encrypted=False
    )
    await alice.wait_joined(group, net.bot_user)
    await alice.wait_joined(group, carol.user_id)
    await alice.send_text(group, "!sif help")  # answered privately: in a new direct room
    dm = await new_room_with(alice, net.bot_user, known={group})
    reply = await alice.wait_for_message(dm, net.bot_user, contains="Commands you can use")
    assert reply.encrypted  # the first message, sent before she joined, she reads
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_a_second_process_on_the_same_store_is_refused(net: Net) -> None:
    adapter = await net.start()
    with pytest.raises(MatrixError, match="two processes must never share one Matrix device"):
        await net.start()
    await net.stop(adapter)
    await net.start()  # the lock went with the first one


async def test_a_lost_store_logs_in_as_a_new_device_that_still_reads_encrypted_rooms(
    net: Net, e2ee: E2EEUsers, tmp_path: Path
) -> None:
    adapter = await net.start()
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await talk(alice, dm, "!sif tags", net.bot_user, "Expertise tags here")
    old_device = adapter.client.device_id
    await net.stop(adapter)
    for lost in (tmp_path / "matrix-store").glob("*.db"):
        lost.unlink()
    adapter = await net.start()
    assert adapter.client.device_id != old_device
    await talk(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await assert_no_plaintext(alice, [dm], net.bot_user)


async def test_verified_only_blocks_unverified_devices_until_the_operator_verifies_one(
    net: Net, e2ee: E2EEUsers, tmp_path: Path
) -> None:
    adapter = await net.start(trust="verified")
    alice = await e2ee.new("alice")
    dm = await encrypted_dm(alice, net.bot_user)
    await alice.send_text(dm, "!sif tags")
    # The answer is sent, encrypted, but not for alice's device: she cannot read it.
    for _ in range(100):
        if alice.undecrypted(dm):
            break
        await asyncio.sleep(0.2)
    assert alice.undecrypted(dm) and alice.messages_from(dm, net.bot_user) == []
    await net.stop(adapter)
    store = dict(
        homeserver=net.synapse.base_url, user_id=net.bot_user, store_path=tmp_path / "matrix-store"
    )
    listed = await manage_devices(**store, member=alice.user_id)
    assert listed == [f"{alice.device_id} (test): blocked; session key {spaced(alice)}"]
    with pytest.raises(MatrixError, match="has no device NOSUCH"):
        await manage_devices(**store, member=alice.user_id, action="verify", device_id="NOSUCH")
    verified = await manage_devices(
        **store, member=alice.user_id, action="verify", device_id=alice.device_id
    )
    assert verified == [f"{alice.device_id} (test): trusted; session key {spaced(alice)}"]
    await net.start(trust="verified")
    await talk(alice, dm, "!sif balance", net.bot_user, "Your balance")
    await assert_no_plaintext(alice, [dm], net.bot_user)


def spaced(user: E2EEUser) -> str:
    key = user.client.olm.account.identity_keys["ed25519"]
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


async def test_the_bots_device_is_cross_signed_and_stays_so_across_a_new_device(
    net: Net, matrix_users: MakeUser, tmp_path: Path
) -> None:
    adapter = await net.start()
    observer = await matrix_users("observer")
    master = assert_cross_signed(
        await seen_keys(observer, net.bot_user), net.bot_user, adapter.client.device_id
    )
    await net.stop(adapter)
    for lost in (tmp_path / "matrix-store").glob("*.db"):
        lost.unlink()  # a new device, the same account and cross-signing keys
    adapter = await net.start()
    again = assert_cross_signed(
        await seen_keys(observer, net.bot_user), net.bot_user, adapter.client.device_id
    )
    assert again == master
