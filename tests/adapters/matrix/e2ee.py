"""Real end-to-end-encrypting Matrix users for tests, built on matrix-nio with vodozemac.

``E2EEUser`` is one device of a user (its own SQLite crypto store in its own directory). A
background task syncs with a short long-poll, does the key upkeep that only nio's own
``sync_forever`` would otherwise do (upload, query, claim, to-device), joins every room it is
invited to and records every timeline event of every joined room, decrypting what it can
and retrying the rest after later syncs (a room key may arrive after its message). Tests
wait on what the loop records through an ``asyncio.Condition``, so waits end as soon as an
event is in.

Sending trusts every device of the room's members on first use, so it never raises
``OlmUnverifiedDeviceError`` and a member's new device always gets the room key.
``raw_events`` reads the room as the server stores it, to check that nothing went out in
plaintext.
"""

# The API takes plain ``timeout`` seconds (deadlines for waits), as tests read best.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import nio
from nio.exceptions import EncryptionError
from nio.store import SqliteStore

from tests.adapters.matrix.synapse import MatrixUser, Synapse

MEGOLM = "m.megolm.v1.aes-sha2"
SYNC_POLL_MS = 1000  # the long-poll of the sync loop: a stop takes at most this long
# Big enough that a burst of bot messages between two syncs is not cut ("limited").
SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": 200}},
}


def _log(msg: str) -> None:
    print(f"[e2ee] {msg}", file=sys.stderr, flush=True)


def _q(part: str) -> str:
    return quote(part, safe="")


@dataclass
class Message:
    """One m.room.message as a member's device saw it."""

    event_id: str
    sender: str
    body: str
    content: dict[str, Any]  # the decrypted content (for an encrypted event: the inner one)
    encrypted: bool  # arrived as m.room.encrypted and was decrypted
    source: dict[str, Any]  # the event as received (the encrypted one when encrypted)

    @property
    def msgtype(self) -> str | None:
        value = self.content.get("msgtype")
        return str(value) if value is not None else None

    @property
    def reply_to(self) -> str | None:
        """The event id this message replies to (m.in_reply_to), if any."""
        relates = self.content.get("m.relates_to") or {}
        reply = relates.get("m.in_reply_to") or {}
        event_id = reply.get("event_id")
        return str(event_id) if event_id is not None else None


@dataclass
class _Entry:
    """One timeline event of a room, in the order the sync delivered it."""

    event_id: str
    source: dict[str, Any]  # as received from the server
    event: dict[str, Any] | None  # the plain (decrypted) event; None while undecryptable
    encrypted: bool
    pending: Any = None  # the nio MegolmEvent to retry while event is None
    error: str = ""  # why it could not be decrypted (yet)

    def message(self) -> Message | None:
        if self.event is None or self.event.get("type") != "m.room.message":
            return None
        content = self.event.get("content")
        content = content if isinstance(content, dict) else {}
        return Message(
            event_id=self.event_id,
            sender=str(self.source.get("sender", "")),
            body=str(content.get("body", "")),
            content=content,
            encrypted=self.encrypted,
            source=self.source,
        )


@dataclass
class _RoomRecord:
    entries: list[_Entry] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # event id -> position in entries
    returned: set[str] = field(default_factory=set)  # ids wait_for_message gave out


class _RecordingClient(nio.AsyncClient):  # type: ignore[misc]  # nio is untyped
    """An AsyncClient that remembers each timeline event's source before nio decrypts it.

    nio replaces the MegolmEvent in a sync response by its decryption, dropping the
    encrypted original; tests want both.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original_sources: dict[str, dict[str, Any]] = {}

    async def receive_response(self, response: Any) -> None:
        if isinstance(response, nio.SyncResponse):
            for info in response.rooms.join.values():
                for event in info.timeline.events:
                    source = getattr(event, "source", None)
                    event_id = getattr(event, "event_id", None)
                    if isinstance(source, dict) and event_id:
                        self.original_sources[event_id] = source
        await super().receive_response(response)


class E2EEUser:
    """A Matrix user on one device with encryption: nio ``AsyncClient`` with
    ``encryption_enabled=True``, a ``SqliteStore`` and a ``store_path`` of its own."""

    user_id: str
    device_id: str
    client: nio.AsyncClient

    def __init__(
        self, synapse: Synapse, localpart: str, password: str, client: _RecordingClient
    ) -> None:
        self.synapse = synapse
        self.localpart = localpart
        self.password = password
        self.client = client
        self.user_id = str(client.user_id)
        self.device_id = str(client.device_id)
        self.store_dir = Path(client.store_path)
        self.syncs = 0  # completed syncs of the loop
        self.sync_errors: list[str] = []
        self._rooms: dict[str, _RoomRecord] = {}
        self._joining: set[str] = set()
        self._changed = asyncio.Condition()
        self._upkeep_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._http: MatrixUser | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"E2EEUser({self.user_id!r}, device={self.device_id!r})"

    # -- setting up --------------------------------------------------------------------

    @classmethod
    async def login(
        cls,
        synapse: Synapse,
        localpart: str,
        store_dir: Path,
        *,
        password: str | None = None,
        device_name: str = "test",
    ) -> E2EEUser:
        """Log an existing user in as a NEW device, upload its keys, sync once, and start
        the background sync loop. ``password`` defaults to ``pw-<localpart>``."""
        password = f"pw-{localpart}" if password is None else password
        store_dir = Path(store_dir)
        store_dir.mkdir(parents=True, exist_ok=True)
        config = nio.AsyncClientConfig(
            encryption_enabled=True, store=SqliteStore, store_sync_tokens=False
        )
        client = _RecordingClient(
            synapse.base_url,
            f"@{localpart}:{synapse.server_name}",
            store_path=str(store_dir),
            config=config,
        )
        try:
            reply = await client.login(password, device_name=device_name)
            if not isinstance(reply, nio.LoginResponse):
                raise AssertionError(f"login of {localpart} failed: {reply}")
            if client.olm is None:
                raise AssertionError(f"nio has no encryption for {localpart} (store not loaded)")
            user = cls(synapse, localpart, password, client)
            # Before anything else: others can only encrypt for a device with keys.
            await user._upkeep()
            await user._sync_once(full_state=True)
        except BaseException:
            await client.close()
            raise
        user._task = asyncio.create_task(user._sync_loop(), name=f"e2ee-sync {user.user_id}")
        return user

    @classmethod
    async def register(cls, synapse: Synapse, name: str, store_dir: Path) -> E2EEUser:
        """Register a fresh user (``synapse.unique_localpart(name)``) and log it in."""
        localpart = synapse.unique_localpart(name)
        plain = await synapse.register(localpart)
        await plain.close()
        return await cls.login(synapse, localpart, store_dir)

    async def second_device(self, store_dir: Path, *, device_name: str = "test-2") -> E2EEUser:
        """The same user logged in again: another device with its own store."""
        if Path(store_dir) == self.store_dir:
            raise ValueError("a second device needs a store directory of its own")
        return await E2EEUser.login(
            self.synapse, self.localpart, store_dir, password=self.password, device_name=device_name
        )

    @property
    def http(self) -> MatrixUser:
        """A plain-HTTP client with this device's access token (for raw API calls)."""
        if self._http is None:
            self._http = MatrixUser(self.synapse.base_url, self.user_id, self.client.access_token)
        return self._http

    async def close(self) -> None:
        """Stop the sync loop and close the client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()
        if self._http is not None:
            await self._http.close()

    # -- the sync loop -----------------------------------------------------------------

    async def _sync_loop(self) -> None:
        try:
            while True:
                try:
                    await self._sync_once(full_state=False)
                except (TimeoutError, aiohttp.ClientError, nio.ProtocolError) as exc:
                    # A transient transport failure: note it and sync again.
                    self.sync_errors.append(repr(exc))
                    await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            _log(f"sync loop of {self.user_id} died: {exc!r}")
            async with self._changed:
                self._changed.notify_all()
            raise

    async def _sync_once(self, *, full_state: bool) -> None:
        timeout = 0 if full_state else SYNC_POLL_MS
        reply = await self.client.sync(
            timeout=timeout, sync_filter=SYNC_FILTER, full_state=full_state or None
        )
        if not isinstance(reply, nio.SyncResponse):
            self.sync_errors.append(str(reply))
            await asyncio.sleep(0.2)
            return
        self._record(reply)
        if reply.to_device_events:
            # Room keys come as to-device events. Retrying only then also keeps nio from
            # sending a key request for an old undecryptable event after every sync.
            self._retry_pending()
        await self._upkeep()
        # nio keeps invites until they are joined, so a failed join is retried next time.
        for room_id in list(self.client.invited_rooms):
            await self._accept_invite(room_id)
        self.syncs += 1
        async with self._changed:
            self._changed.notify_all()

    async def _upkeep(self) -> None:
        """What sync_forever does after each sync: keys upload/query/claim, to-device."""
        client = self.client
        async with self._upkeep_lock:
            if client.should_upload_keys:
                self._check(await client.keys_upload(), nio.KeysUploadResponse, "keys_upload")
            if client.should_query_keys:
                self._check(await client.keys_query(), nio.KeysQueryResponse, "keys_query")
            if client.should_claim_keys:
                users = client.get_users_for_key_claiming()
                if users:
                    self._check(await client.keys_claim(users), nio.KeysClaimResponse, "keys_claim")
            for reply in await client.send_to_device_messages():
                self._check(reply, nio.ToDeviceResponse, "to_device")

    def _check(self, reply: Any, expected: Any, what: str) -> None:
        if not isinstance(reply, expected):
            self.sync_errors.append(f"{what}: {reply}")
            _log(f"{self.user_id}/{self.device_id} {what} failed: {reply}")

    async def _accept_invite(self, room_id: str) -> None:
        if room_id in self._joining or room_id in self.client.rooms:
            return
        self._joining.add(room_id)
        reply = await self.client.join(room_id)
        if not isinstance(reply, nio.JoinResponse):
            self._joining.discard(room_id)  # try again after the next sync
            self.sync_errors.append(f"join {room_id}: {reply}")

    def _record(self, reply: Any) -> None:
        originals = self.client.original_sources
        for room_id, info in reply.rooms.join.items():
            record = self._rooms.setdefault(room_id, _RoomRecord())
            for event in info.timeline.events:
                event_id = getattr(event, "event_id", None)
                if not event_id or event_id in record.index:
                    continue
                current = getattr(event, "source", None)
                current = current if isinstance(current, dict) else {}
                source = originals.pop(event_id, current)
                encrypted = source.get("type") == "m.room.encrypted"
                if isinstance(event, nio.MegolmEvent):
                    event.room_id = room_id
                    entry = _Entry(event_id, source, None, True, pending=event, error="no key yet")
                else:
                    entry = _Entry(event_id, source, current, encrypted)
                record.index[event_id] = len(record.entries)
                record.entries.append(entry)
        originals.clear()

    def _retry_pending(self) -> None:
        for record in self._rooms.values():
            for entry in record.entries:
                if entry.pending is None:
                    continue
                try:
                    decrypted = self.client.decrypt_event(entry.pending)
                except EncryptionError as exc:
                    entry.error = str(exc)
                    continue
                if isinstance(decrypted, nio.MegolmEvent):
                    continue
                source = getattr(decrypted, "source", None)
                entry.event = source if isinstance(source, dict) else {}
                entry.pending = None
                entry.error = ""

    # -- waiting -----------------------------------------------------------------------

    async def _wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` (checked after every sync); False on timeout."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                while True:
                    if ready():
                        return True
                    if self._failure is not None:
                        raise AssertionError(
                            f"sync loop of {self.user_id} died: {self._failure!r}"
                        ) from self._failure
                    await self._changed.wait()
        except TimeoutError:
            return ready()

    async def wait_synced(self, timeout: float = 20) -> None:
        """Wait until the loop has completed one more sync (and its key upkeep)."""
        target = self.syncs + 1
        if not await self._wait(lambda: self.syncs >= target, timeout):
            raise AssertionError(f"{self.user_id} did not sync within {timeout} s")

    async def wait_for_room(self, room_id: str, timeout: float = 20) -> None:
        """Wait until this device knows the room (it has joined it and synced it)."""
        if not await self._wait(lambda: room_id in self.client.rooms, timeout):
            raise AssertionError(f"{self.user_id} has not synced room {room_id} in {timeout} s")

    def _is_joined(self, room_id: str, user_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return room is not None and user_id in room.users and user_id not in room.invited_users

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = 20) -> None:
        """Wait until ``user_id`` is a joined member of the room, as this device sees it."""
        if not await self._wait(lambda: self._is_joined(room_id, user_id), timeout):
            room = self.client.rooms.get(room_id)
            members = sorted(room.users) if room is not None else "(room unknown)"
            raise AssertionError(
                f"{user_id} did not join {room_id} within {timeout} s "
                f"(seen by {self.user_id}); members: {members}"
            )

    def knows_device(self, user_id: str, device_id: str) -> bool:
        return any(d.id == device_id for d in self.client.device_store.active_user_devices(user_id))

    async def wait_for_device(self, user_id: str, device_id: str, timeout: float = 20) -> None:
        """Wait until this device has the keys of another device (a keys_query got them)."""
        self.client.users_for_key_query.add(user_id)
        await self._upkeep()
        if not await self._wait(lambda: self.knows_device(user_id, device_id), timeout):
            raise AssertionError(
                f"{self.user_id} does not know device {device_id} of {user_id} after {timeout} s"
            )

    # -- rooms -------------------------------------------------------------------------

    async def create_room(
        self,
        *,
        invite: list[str],
        is_direct: bool = False,
        encrypted: bool = True,
        name: str | None = None,
    ) -> str:
        """Create a room (megolm m.room.encryption in its initial state when ``encrypted``)
        and return its id once this device has synced it. ``is_direct`` also records it in
        m.direct, as Element does, with the trusted_private_chat preset."""
        initial_state = (
            [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}]
            if encrypted
            else []
        )
        preset = nio.RoomPreset.trusted_private_chat if is_direct else nio.RoomPreset.private_chat
        reply = await self.client.room_create(
            name=name,
            is_direct=is_direct,
            preset=preset,
            invite=list(invite),
            initial_state=initial_state,
        )
        if not isinstance(reply, nio.RoomCreateResponse):
            raise AssertionError(f"createRoom by {self.user_id} failed: {reply}")
        room_id = str(reply.room_id)
        if is_direct and invite:
            await self._add_direct(room_id, list(invite))
        await self.wait_for_room(room_id)
        return room_id

    async def _add_direct(self, room_id: str, others: list[str]) -> None:
        path = f"/user/{_q(self.user_id)}/account_data/m.direct"
        try:
            direct = await self.http.api("GET", path)
        except AssertionError as exc:
            if "M_NOT_FOUND" not in str(exc):
                raise
            direct = {}
        for other in others:
            rooms = direct.setdefault(other, [])
            if room_id not in rooms:
                rooms.append(room_id)
        await self.http.api("PUT", path, body=direct)

    async def invite(self, room_id: str, user_id: str) -> None:
        reply = await self.client.room_invite(room_id, user_id)
        if not isinstance(reply, nio.RoomInviteResponse):
            raise AssertionError(f"invite of {user_id} to {room_id} failed: {reply}")

    async def leave(self, room_id: str) -> None:
        reply = await self.client.room_leave(room_id)
        if not isinstance(reply, nio.RoomLeaveResponse):
            raise AssertionError(f"leaving {room_id} failed: {reply}")

    # -- sending -----------------------------------------------------------------------

    async def _trust_room(self, room_id: str) -> Any:
        """Know every device of the room's members and trust it (trust on first use)."""
        await self.wait_for_room(room_id)
        room = self.client.rooms[room_id]
        if not room.encrypted:
            return room
        if not room.members_synced:
            self._check(
                await self.client.joined_members(room_id), nio.JoinedMembersResponse, "members"
            )
        # Ask again for every member's devices, not only when nio thinks it is due: a
        # device that logged in a moment ago must get this message's room key.
        self.client.users_for_key_query.update(room.users)
        await self._upkeep()
        for user_id in list(room.users):
            for device in self.client.device_store.active_user_devices(user_id):
                if not self.client.olm.is_device_verified(device):
                    self.client.verify_device(device)  # invalidates the outbound session
        return room

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send any room event through nio (encrypted when the room is) and return its id."""
        await self._trust_room(room_id)
        reply = await self.client.room_send(
            room_id, event_type, content, ignore_unverified_devices=True
        )
        if not isinstance(reply, nio.RoomSendResponse):
            raise AssertionError(f"{self.user_id} could not send to {room_id}: {reply}")
        return str(reply.event_id)

    async def send_text(self, room_id: str, body: str, *, reply_to: str | None = None) -> str:
        """Send m.text (encrypted when the room is) and return the event id."""
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send(room_id, "m.room.message", content)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        """Send an m.reaction; in an encrypted room it is encrypted, as Element does
        (nio's room_send would send it in plaintext), with m.relates_to left in clear."""
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        room = await self._trust_room(room_id)
        if not room.encrypted:
            return await self.send(room_id, "m.reaction", content)
        client = self.client
        if client.olm.should_share_group_session(room_id):
            sharing = client.sharing_session.get(room_id)
            if sharing is not None:
                await sharing.wait()
            else:
                self._check(
                    await client.share_group_session(room_id, ignore_unverified_devices=True),
                    nio.ShareGroupSessionResponse,
                    "share_group_session",
                )
        event_type, encrypted = client.encrypt(room_id, "m.reaction", content)
        path = f"/rooms/{_q(room_id)}/send/{_q(event_type)}/{uuid.uuid4().hex}"
        return str((await self.http.api("PUT", path, body=encrypted))["event_id"])

    # -- reading -----------------------------------------------------------------------

    def events(self, room_id: str) -> list[dict[str, Any]]:
        """Every timeline event of the room this device has seen and could read, in
        order: decrypted events as their plain (inner) form."""
        record = self._rooms.get(room_id)
        if record is None:
            return []
        return [e.event for e in record.entries if e.event is not None]

    def undecrypted(self, room_id: str) -> list[str]:
        """Ids of the room's events this device could not decrypt (so far)."""
        record = self._rooms.get(room_id)
        if record is None:
            return []
        return [e.event_id for e in record.entries if e.event is None]

    def _messages(self, room_id: str) -> list[Message]:
        record = self._rooms.get(room_id)
        if record is None:
            return []
        return [m for m in (e.message() for e in record.entries) if m is not None]

    def messages_from(self, room_id: str, sender: str) -> list[Message]:
        """Every m.room.message seen so far in the room from ``sender``, in order."""
        return [m for m in self._messages(room_id) if m.sender == sender]

    def _candidates(self, room_id: str, sender: str, after: str | None) -> list[Message]:
        record = self._rooms.get(room_id)
        if record is None:
            return []
        start = 0
        if after is not None:
            if after not in record.index:
                return []  # the event to start after has not arrived yet
            start = record.index[after] + 1
        found = (e.message() for e in record.entries[start:])
        return [
            m
            for m in found
            if m is not None and m.sender == sender and m.event_id not in record.returned
        ]

    async def wait_for_message(
        self,
        room_id: str,
        sender: str,
        *,
        contains: str | None = None,
        timeout: float = 20,
        after: str | None = None,
    ) -> Message:
        """Wait for a message from ``sender`` (body containing ``contains``) that no earlier
        wait of this user returned for this room; ``after``: only messages after that
        event. Raises AssertionError listing what was seen on timeout."""
        found: list[Message] = []

        def ready() -> bool:
            for message in self._candidates(room_id, sender, after):
                if contains is None or contains in message.body:
                    found.append(message)
                    return True
            return False

        started = time.monotonic()
        if await self._wait(ready, timeout):
            message = found[0]
            self._rooms[room_id].returned.add(message.event_id)
            return message
        seen = [f"{m.sender}: {m.body!r}" for m in self._messages(room_id)]
        want = f" containing {contains!r}" if contains is not None else ""
        pending = self.undecrypted(room_id)
        errors = "; ".join(
            sorted({e.error for e in self._rooms.get(room_id, _RoomRecord()).entries if e.error})
        )
        raise AssertionError(
            f"{self.user_id}/{self.device_id} waited {time.monotonic() - started:.1f} s for a "
            f"new message from {sender}{want} in {room_id}"
            + (f" after {after}" if after else "")
            + f". Messages seen ({len(seen)}):\n  "
            + "\n  ".join(seen or ["(none)"])
            + (f"\nUndecryptable events: {pending} ({errors})" if pending else "")
        )

    async def raw_events(self, room_id: str) -> list[dict[str, Any]]:
        """Every event of the room as the server has it (/messages dir=f from the start,
        all pages, no filter), raw JSON, oldest first."""
        events: list[dict[str, Any]] = []
        params = {"dir": "f", "limit": "1000"}
        while True:
            reply = await self.http.api("GET", f"/rooms/{_q(room_id)}/messages", params=params)
            chunk = reply.get("chunk", [])
            events.extend(chunk)
            end = reply.get("end")
            if not chunk or not end:
                return events
            params["from"] = str(end)


class E2EEUsers:
    """Makes E2EEUsers with store directories under ``base_dir`` and closes them all."""

    def __init__(self, synapse: Synapse, base_dir: Path) -> None:
        self.synapse = synapse
        self.base_dir = Path(base_dir)
        self.made: list[E2EEUser] = []
        self._stores = 0

    def _store_dir(self, name: str) -> Path:
        self._stores += 1
        return self.base_dir / f"store-{self._stores}-{name}"

    async def new(self, name: str) -> E2EEUser:
        """A freshly registered user (``name-N``) on its first device."""
        user = await E2EEUser.register(self.synapse, name, self._store_dir(name))
        self.made.append(user)
        return user

    async def login(
        self, localpart: str, *, password: str | None = None, device_name: str = "test"
    ) -> E2EEUser:
        """An existing user logged in as a new device."""
        user = await E2EEUser.login(
            self.synapse,
            localpart,
            self._store_dir(localpart),
            password=password,
            device_name=device_name,
        )
        self.made.append(user)
        return user

    async def second_device(self, user: E2EEUser) -> E2EEUser:
        other = await user.second_device(self._store_dir(user.localpart))
        self.made.append(other)
        return other

    async def close(self) -> None:
        made, self.made = self.made, []
        for user in made:
            await user.close()
