"""The Matrix door: a matrix-nio AsyncClient that syncs, turns room events into Inbound,
and delivers Outbound as ``m.notice`` messages.

The device, its encryption keys (nio's crypto store) and the sync token are kept in
``MATRIX_STORE_PATH``, so a restart neither replays old messages nor loses new ones (and
the core drops an event it has already handled, should a batch be seen twice), and it
still reads and writes the encrypted rooms. One process at a time uses a store: a lock
file refuses a second. The first sync of a new device only catches up: events from
before it are not answered; nor, in a room the bot joins, what was said there before it
joined. After a restart the first sync brings every room's whole state.

Encrypted rooms and DMs work as unencrypted ones do; the answers there are encrypted,
and nothing is ever sent in plaintext into a room that is encrypted. Which devices of the
members receive the room keys is the trust policy (``MATRIX_TRUST``): ``tofu`` trusts a
device the first time the bot sees it; ``verified`` only devices verified in the store.
A message the bot cannot decrypt gets a key request; when the key has not come within
``KEY_WAIT`` seconds, the sender is told once (per sender and session) to send it again,
and that message is then never answered, so nothing is answered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import IO, Any

import aiohttp
from nio import (
    Api,
    AsyncClient,
    AsyncClientConfig,
    EnableEncryptionBuilder,
    EncryptionError,
    ErrorResponse,
    JoinError,
    KeysUploadError,
    LocalProtocolError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    OlmUnverifiedDeviceError,
    ProfileGetError,
    ReactionEvent,
    RoomCreateError,
    RoomGetEventResponse,
    RoomMemberEvent,
    RoomMessageText,
    RoomPreset,
    RoomSendError,
    SyncError,
    SyncResponse,
    WhoamiResponse,
)
from nio.store import SqliteStore

from adapters.matrix import translate
from adapters.matrix.cross_signing import CrossSigningError, ensure_cross_signed
from bot import i18n
from bot.i18n import N_
from bot.messages import Delivery, File, Inbound, Outbound
from bot.ports import Core as Bot
from bot.ports import PlatformUnavailable, Status, Undeliverable

log = logging.getLogger(__name__)


class CryptoStore(SqliteStore):  # type: ignore[misc]  # nio has no types
    """nio's SQLite store of the device's keys, which after every sync saved the rooms
    found encrypted in it, none as a rule: a transaction and a look-up of the account
    each time (a millisecond of each answer's wait). A sync that finds none saves none."""

    def save_encrypted_rooms(self, rooms: Any) -> None:
        if rooms:
            super().save_encrypted_rooms(rooms)


SYNC_TIMEOUT_MS = 30_000
MAX_BACKOFF = 60.0
STOP_GRACE = 10.0  # seconds `stop` waits for a batch of events being handled
# A healthy long poll returns at least every SYNC_TIMEOUT_MS; allow a failed one and a
# full back-off before /healthz calls the sync stale.
STALE_SYNC_SECONDS = 2 * SYNC_TIMEOUT_MS / 1000 + MAX_BACKOFF
# Seconds the first sync after a restart may take before the start goes on without it.
RESYNC_TIMEOUT = 120.0
# Longest M_LIMIT_EXCEEDED wait a send sits out itself; a longer one (or one more than its
# attempts allow) raises PlatformUnavailable, so the outbox holds every message back.
MAX_RATE_LIMIT_WAIT = 10.0
# The homeserver's answers that this message can never be delivered as it is: not in the
# room (never joined, left, kicked, banned; Synapse says so for unknown rooms too), no
# such user, an event too large or malformed. 4xx only: a 5xx is the server's trouble.
UNDELIVERABLE = frozenset(
    {
        "M_FORBIDDEN",
        "M_UNKNOWN",
        "M_NOT_FOUND",
        "M_TOO_LARGE",
        "M_BAD_JSON",
        "M_NOT_JSON",
        "M_INVALID_PARAM",
        "M_GUEST_ACCESS_FORBIDDEN",
    }
)
# Answers that the homeserver takes no messages from the bot now, whatever they say:
# rate limited, the bot's token no longer valid, its account locked or suspended, the
# server full or waiting for the bot to accept its terms.
UNAVAILABLE = frozenset(
    {
        "M_LIMIT_EXCEEDED",
        "M_UNKNOWN_TOKEN",
        "M_MISSING_TOKEN",
        "M_USER_LOCKED",
        "M_USER_SUSPENDED",
        "M_RESOURCE_LIMIT_EXCEEDED",
        "M_CONSENT_NOT_GIVEN",
    }
)
# Seconds an undecryptable message waits for its key (asked of the sender's devices)
# before the sender is told to send it again; after that it is never answered.
KEY_WAIT = 10.0
UNDECRYPTABLE_NOTICE = N_(
    "I could not read your last message: the key to decrypt it has not reached me. "
    "Please send it again."
)
TRUST_POLICIES = ("tofu", "verified")
# Undecryptable messages, and the (room, sender, session) told, that state.json keeps.
MAX_REMEMBERED = 1000


class MatrixError(RuntimeError):
    pass


class MatrixAdapter:
    """One bot account on one homeserver, serving one community."""

    _last_sync: float | None = None  # time.monotonic() of the last good sync

    def __init__(
        self,
        bot: Bot,
        *,
        homeserver: str,
        user_id: str,
        password: str | None = None,
        access_token: str | None = None,
        device_id: str | None = None,
        store_path: Path,
        community: str | None = None,
        allowed_servers: list[str] | None = None,
        trust: str = "tofu",
        language: str = "en",
    ) -> None:
        if trust not in TRUST_POLICIES:
            raise MatrixError(f"MATRIX_TRUST must be one of {', '.join(TRUST_POLICIES)}")
        self.bot = bot
        self.user_id = user_id
        self.password = password
        self.access_token = access_token
        self.store_path = Path(store_path)
        self.community = translate.community_key(community, user_id)
        self.allowed_servers = allowed_servers
        self.trust = trust
        self.language = language  # the community's: for the adapter's own notices
        self.key_wait = KEY_WAIT  # seconds an undecryptable message waits for its key
        self.store_path.mkdir(parents=True, exist_ok=True)
        self._lock: IO[str] | None = None
        saved = self._load("credentials.json")
        device = device_id or saved.get("device_id")
        if device and not device_id and not self._crypto_store(device).exists():
            # The device's keys are lost: the homeserver would refuse its new ones for
            # good. A new login makes a new device with new keys.
            log.warning(
                "the encryption keys of Matrix device %s are not in %s: logging in as a new device",
                device,
                self.store_path,
            )
            saved, device = {}, None
        self.client = AsyncClient(
            homeserver,
            user_id,
            device_id=device,
            store_path=str(self.store_path),
            config=AsyncClientConfig(
                encryption_enabled=True,
                store=CryptoStore,
                store_sync_tokens=False,
                # nio would otherwise retry a 429 or a lost connection forever, inside
                # the call: a send must come back so the outbox can hold the rest back.
                max_limit_exceeded=0,
                max_timeouts=2,
            ),
        )
        self._saved_credentials = saved
        self._direct: dict[str, str] = {}
        state = self._load("state.json")
        # undecryptable events waiting for their key: event id -> (room, source, seen at)
        self._pending: dict[str, tuple[str, dict[str, Any], float]] = {
            str(k): (str(v[0]), dict(v[1]), float(v[2]))
            for k, v in (state.get("pending") or {}).items()
            if isinstance(v, list) and len(v) == 3
        }
        self._told: list[str] = [str(t) for t in state.get("told") or []]
        self._given_up: list[str] = [str(t) for t in state.get("given_up") or []]
        self._known_room = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._processing = False  # the sync loop is handling a batch of events
        self._stopping = asyncio.Event()
        self.synced = asyncio.Event()
        self.messenger = MatrixMessenger(self)
        bot.relay.register(self.messenger)

    def _crypto_store(self, device_id: str) -> Path:
        """nio's crypto store file for a device of the bot."""
        return self.store_path / f"{self.user_id}_{device_id}.db"

    # -- persistence ---------------------------------------------------------------

    def _load(self, name: str) -> dict[str, Any]:
        path = self.store_path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, name: str, data: dict[str, Any]) -> None:
        path = self.store_path / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)  # atomic: a crash leaves the old file or the new one

    # -- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        self._take_lock()
        try:
            await self._start()
        except BaseException:
            self._release_lock()
            raise

    async def _start(self) -> None:
        await self._login()
        # The device's keys are on the homeserver before it joins or says anything.
        await self._upload_keys()
        await self._cross_sign()
        token = self._load("sync.json").get("next_batch")
        if not token:
            # A new device: catch up without answering anything from before now.
            first = await self.client.sync(timeout=0, full_state=True)
            if isinstance(first, SyncError):
                raise MatrixError(f"first sync failed: {first.message}")
            await self._upkeep()
            await self._join_invites(first)
            self._save("sync.json", {"next_batch": first.next_batch})
        caught_up = await self._resync(token) if token else True
        await self._load_direct_rooms()
        self._last_sync = time.monotonic()
        self._task = asyncio.create_task(
            self._sync_forever(since=None if caught_up else token, full_state=not caught_up),
            name="matrix-sync",
        )
        log.info("Matrix sync started for %s", self.user_id)

    async def stop(self) -> None:
        """Stop syncing: a batch of events being handled is finished and its sync position
        saved first (up to STOP_GRACE seconds), so a restart does not get it again."""
        self._stopping.set()
        if self._task is not None:
            if self._processing:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()
        self._release_lock()

    def _take_lock(self) -> None:
        """Two processes must never use one device: its keys and sessions would fork. The
        lock is the operating system's, so it goes with the process however it ends."""
        path = self.store_path / "lock"
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise MatrixError(
                f"the Matrix store {self.store_path} is in use by {holder}: two "
                "processes must never share one Matrix device (stop the other one, or "
                "give this one its own MATRIX_STORE_PATH and account)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    async def status(self) -> Status:
        """For /healthz: logged in, and the sync loop ran a sync recently."""
        if not self.client.logged_in:
            return Status(False, "not logged in")
        if self._task is None or self._last_sync is None:
            return Status(False, "not started")
        if self._task.done():
            return Status(False, "sync loop stopped")
        age = time.monotonic() - self._last_sync
        if age > STALE_SYNC_SECONDS:
            return Status(False, f"last sync {age:.0f} s ago")
        return Status(True, f"syncing (last sync {age:.0f} s ago)")

    async def _login(self) -> None:
        saved = self._saved_credentials
        token = self.access_token or (
            saved.get("access_token") if saved.get("user_id") == self.user_id else None
        )
        if token:
            device = self.client.device_id or saved.get("device_id")
            if not device:
                # An access token without its device id: the homeserver knows it.
                self.client.access_token = token
                whoami = await self.client.whoami()
                if not isinstance(whoami, WhoamiResponse) or not whoami.device_id:
                    raise MatrixError(f"could not find the device of MATRIX_ACCESS_TOKEN: {whoami}")
                device = whoami.device_id
            self.client.restore_login(self.user_id, device, token)
            return
        if not self.password:
            raise MatrixError("set MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN")
        response = await self.client.login(self.password, device_name="sif-bot")
        if not isinstance(response, LoginResponse):
            raise MatrixError(f"login failed: {getattr(response, 'message', response)}")
        self._save(
            "credentials.json",
            {
                "user_id": response.user_id,
                "device_id": response.device_id,
                "access_token": response.access_token,
            },
        )

    async def _resync(self, since: str) -> bool:
        """After a restart: one sync with every joined room's whole state, handled as any
        other. nio keeps no rooms across restarts, and a quiet room would otherwise be in
        no sync (its direct room unknown), or come with no members (a group room would
        look like a direct one). False when the homeserver did not answer; the sync loop
        then does it. (The token is not given to nio before: nio ignores a sync answer
        that ends where it already is.)"""
        try:
            # nio sets no HTTP timeout on a full-state sync: a hung server must not hang
            # the start.
            response = await asyncio.wait_for(
                self.client.sync(timeout=0, since=since, full_state=True), RESYNC_TIMEOUT
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("first sync after the restart failed (%r); the sync loop retries", exc)
            return False
        if isinstance(response, SyncError):
            log.warning("first sync after the restart refused (%s)", response.message)
            return False
        await self._upkeep()
        await self.process(response)
        self._save("sync.json", {"next_batch": response.next_batch})
        self.synced.set()
        return True

    async def _sync_forever(self, since: str | None = None, full_state: bool = False) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                response = await self.client.sync(
                    # a message waiting for its key is looked at again soon
                    timeout=int(self.key_wait * 500) if self._pending else SYNC_TIMEOUT_MS,
                    since=since or self.client.next_batch,
                    full_state=full_state,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network errors: back off and resume
                log.warning("sync failed (%s); retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if isinstance(response, SyncError):
                wait = _retry_after(response) or backoff
                log.warning("sync refused (%s); retrying in %.1f s", response.message, wait)
                await asyncio.sleep(wait)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 1.0
            since, full_state = None, False
            self._last_sync = time.monotonic()
            self._processing = True  # `stop` lets this batch finish and be saved
            try:
                await self._upkeep()
                await self.process(response)
                self._save("sync.json", {"next_batch": response.next_batch})
            finally:
                self._processing = False
            self.synced.set()

    # -- encryption upkeep -------------------------------------------------------------

    async def _upload_keys(self) -> None:
        if not self.client.should_upload_keys:
            return
        response = await self.client.keys_upload()
        if isinstance(response, KeysUploadError):
            if "already exists" in (response.message or ""):
                raise MatrixError(
                    f"the homeserver already has other keys for Matrix device "
                    f"{self.client.device_id}: its store is lost. Log in as a new device "
                    "(MATRIX_PASSWORD, and no MATRIX_DEVICE_ID or MATRIX_ACCESS_TOKEN of "
                    f"the old one), or put the old store back in {self.store_path}"
                )
            log.warning("could not upload the device keys: %s", response.message)

    async def _cross_sign(self) -> None:
        """Sign this device with the account's own cross-signing keys (kept in the store),
        so clients that share room keys only with cross-signed devices still write to the
        bot. A failure is logged: the bot works without it for clients that do not ask."""
        try:
            outcome = await ensure_cross_signed(
                self.client, password=self.password, store_path=self.store_path
            )
        except CrossSigningError as exc:
            log.warning("could not cross-sign Matrix device %s: %s", self.client.device_id, exc)
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("could not cross-sign Matrix device %s: %r", self.client.device_id, exc)
            return
        if outcome == "no-password":
            log.warning(
                "Matrix device %s is not cross-signed: the account has other cross-signing "
                "keys, and replacing them needs MATRIX_PASSWORD",
                self.client.device_id,
            )
        elif outcome == "signed":
            log.info("Matrix device %s is now cross-signed", self.client.device_id)

    async def _upkeep(self) -> None:
        """What nio's own sync loop does after each sync, for ours: the device's one-time
        keys topped up, the members' device lists refreshed (a new device of a member gets
        the room keys with the next answer), Olm sessions claimed, and the to-device
        messages nio queued (room keys, key requests) sent. A failure waits for the next
        sync."""
        client = self.client
        steps: list[tuple[str, Any]] = []
        if client.should_upload_keys:
            steps.append(("upload the device keys", self._upload_keys))
        if client.should_query_keys:
            steps.append(("query the members' devices", client.keys_query))
        if client.should_claim_keys:
            users = client.get_users_for_key_claiming()
            steps.append(("claim one-time keys", lambda: client.keys_claim(users)))
        if client.outgoing_to_device_messages:
            steps.append(("send to-device messages", client.send_to_device_messages))
        for what, step in steps:
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # the next sync tries again
                log.warning("could not %s: %r", what, exc)

    # -- inbound -------------------------------------------------------------------

    async def process(self, response: SyncResponse) -> None:
        await self._join_invites(response)
        for room_id, info in response.rooms.join.items():
            events = info.timeline.events
            # A room the bot has just joined comes with some of its history: what was said
            # before the bot was there was not said to it. Its own join event marks where
            # that history ends (a timeline too short to hold the join is all newer).
            for event in events[_after_own_join(events, self.user_id) :]:
                try:
                    await self.on_event(room_id, event)
                except Exception:  # one bad event must not stop the others
                    log.exception("could not handle event %s", getattr(event, "event_id", "?"))
        if response.rooms.join:
            async with self._known_room:
                self._known_room.notify_all()
        await self._retry_pending()

    async def _join_invites(self, response: SyncResponse) -> None:
        for room_id in response.rooms.invite:
            inviter = _inviter(response, room_id)
            if not self.serves(inviter or ""):
                log.info("ignored an invite to %s from %s", room_id, inviter)
                continue
            result = await self.client.join(room_id)
            if isinstance(result, JoinError):
                log.warning("could not join %s: %s", room_id, result.message)

    def _room(self, room_id: str) -> MatrixRoom | None:
        room: MatrixRoom | None = self.client.rooms.get(room_id)
        return room

    def _is_direct(self, room_id: str) -> bool:
        room = self._room(room_id)
        if room is None:
            return False
        return room_id in self._direct.values() or len(room.users) <= 2

    def _display_name(self, room_id: str, user_id: str) -> str:
        room = self._room(room_id)
        name = room.user_name(user_id) if room is not None else None
        return name or user_id.split(":", 1)[0].lstrip("@")

    async def on_event(self, room_id: str, event: Any) -> None:
        sender = getattr(event, "sender", None)
        if not sender or sender == self.user_id:
            return
        if self._room(room_id) is None:
            log.info("ignored an event from unknown room %s", room_id)
            return
        if isinstance(event, RoomMemberEvent):
            if event.membership in ("leave", "ban"):
                room = self._room(room_id)
                if room is not None and set(room.users) <= {self.user_id}:
                    await self.client.room_leave(room_id)
            return
        if not self.serves(sender):
            # Silently: an answer would let anyone on any server in a shared room make the
            # bot talk (and tell them it is there); nothing reaches the core, so nothing
            # is stored either.
            log.debug("ignored an event from %s: not an allowed server", sender)
            return
        if isinstance(event, RoomMessageText):
            await self._on_text(room_id, event)
        elif isinstance(event, ReactionEvent):
            await self._on_reaction(room_id, event)
        elif isinstance(event, MegolmEvent):
            await self._on_undecryptable(room_id, event)

    def serves(self, user_id: str) -> bool:
        """Whether the bot answers this person: MATRIX_ALLOWED_SERVERS (when set) lists
        the servers whose users it serves, for commands as for invites."""
        server = user_id.split(":", 1)[-1] if ":" in user_id else ""
        return not self.allowed_servers or server in self.allowed_servers

    async def _on_text(self, room_id: str, event: RoomMessageText) -> None:
        content = event.source.get("content") or {}
        direct = self._is_direct(room_id)
        replies_to_bot = False
        reply_to = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        if reply_to and not direct:
            original = await self._event(room_id, reply_to)
            replies_to_bot = original is not None and original.get("sender") == self.user_id
        inbound = translate.from_message(
            content,
            sender=event.sender,
            room_id=room_id,
            event_id=event.event_id,
            direct=direct,
            replies_to_bot=replies_to_bot,
            community=self.community,
            display_name=self._display_name(room_id, event.sender),
        )
        if inbound is not None:
            if direct:
                # Answers go where the person last wrote to the bot (say, the encrypted
                # direct chat they opened after an older, unencrypted one).
                self._direct[event.sender] = room_id
            await self._answer(inbound)

    async def _answer(self, inbound: Inbound) -> None:
        """Handle a message; a read-only command's answers to the sender alone are sent
        here at once, not through the outbox (nothing was changed, so there is nothing to
        record). If one cannot be sent now, the message is handled again the usual way,
        which keeps its answer in the outbox until Matrix takes it."""
        answers: list[Outbound] = []

        async def keep(read_only: list[Outbound]) -> None:
            answers.extend(read_only)

        await self.bot.handle(inbound, committed=keep, answer_directly=True)
        try:
            for message in answers:
                await self.messenger.send(message)
        except Exception as exc:
            log.warning(
                "could not answer %s directly (%r); through the outbox", inbound.event_id, exc
            )
            await self.bot.handle(inbound)

    async def _on_reaction(self, room_id: str, event: ReactionEvent) -> None:
        original = await self._event(room_id, event.reacts_to)
        if original is None or original.get("sender") != self.user_id:
            return
        actions = (original.get("content") or {}).get(translate.ACTIONS_KEY)
        if not isinstance(actions, list):
            return
        action = translate.reaction_action(event.key, [str(a) for a in actions])
        if action is None:
            return
        await self.bot.handle(
            translate.from_reaction(
                sender=event.sender,
                room_id=room_id,
                event_id=event.event_id,
                action=action,
                direct=self._is_direct(room_id),
                community=self.community,
                display_name=self._display_name(room_id, event.sender),
            )
        )

    async def _on_undecryptable(self, room_id: str, event: MegolmEvent) -> None:
        """An encrypted message nio could not decrypt (its room key has not come): ask the
        sender's devices for the key and wait for it a little (`_retry_pending`)."""
        if event.event_id in self._pending or event.event_id in self._given_up:
            return
        with contextlib.suppress(LocalProtocolError):  # asked already for this session
            try:
                await self.client.request_room_key(event)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("could not ask for the key of %s: %r", event.event_id, exc)
        self._pending[event.event_id] = (room_id, event.source, time.time())
        self._save_state()

    async def _retry_pending(self) -> None:
        """Messages waiting for their key: answered once it has come; after KEY_WAIT
        seconds without it, the sender is told (once per room, sender and session) to
        send the message again, and this one is dropped for good."""
        for event_id, (room_id, source, seen) in list(self._pending.items()):
            event = MegolmEvent.from_dict(source)
            decrypted: Any = None
            if isinstance(event, MegolmEvent):
                event.room_id = room_id  # the sync's event knew it; the session is the room's
                try:
                    decrypted = self.client.decrypt_event(event)
                except EncryptionError:
                    decrypted = None
            if decrypted is not None and not isinstance(decrypted, MegolmEvent):
                del self._pending[event_id]
                self._save_state()
                await self.on_event(room_id, decrypted)
                continue
            if time.time() - seen < self.key_wait:
                continue
            del self._pending[event_id]
            self._given_up = [*self._given_up, event_id][-MAX_REMEMBERED:]
            session = (source.get("content") or {}).get("session_id")
            told = f"{room_id}|{source.get('sender')}|{session}"
            first = told not in self._told
            if first:
                self._told = [*self._told, told][-MAX_REMEMBERED:]
            self._save_state()
            if first and self._room(room_id) is not None:
                log.info("could not decrypt %s in %s: told the sender", event_id, room_id)
                with i18n.speaking(self.language):  # the sender's is unknown here
                    content = {"msgtype": "m.notice", "body": i18n._(UNDECRYPTABLE_NOTICE)}
                if not self._is_direct(room_id):
                    content = translate.replying(content, event_id)
                try:
                    await self.send(room_id, content, txn_id=f"sif-undecryptable-{event_id}")
                except Exception as exc:
                    log.warning("could not tell %s about %s: %r", room_id, event_id, exc)

    def _save_state(self) -> None:
        self._save(
            "state.json",
            {
                "pending": {k: list(v) for k, v in self._pending.items()},
                "told": self._told,
                "given_up": self._given_up,
            },
        )

    async def _event(self, room_id: str, event_id: str) -> dict[str, Any] | None:
        response = await self.client.room_get_event(room_id, event_id)
        if not isinstance(response, RoomGetEventResponse):
            return None
        event = response.event
        if isinstance(event, MegolmEvent):
            # An encrypted room gives the event as it was sent: encrypted.
            try:
                event = self.client.decrypt_event(event)
            except EncryptionError:
                return None
            if isinstance(event, MegolmEvent):
                return None
        source: dict[str, Any] = event.source
        return source

    # -- outbound ------------------------------------------------------------------

    async def _load_direct_rooms(self) -> None:
        response = await self.client.list_direct_rooms()
        rooms = getattr(response, "rooms", None)
        if isinstance(rooms, dict):
            for user, room_ids in rooms.items():
                if room_ids:
                    self._direct.setdefault(user, room_ids[-1])

    async def direct_room(self, user_id: str) -> str:
        """The direct room with a person: known, found among joined rooms, or created."""
        known = self._direct.get(user_id)
        if known and known in self.client.rooms:
            return known
        for room_id, room in self.client.rooms.items():
            if set(room.users) == {self.user_id, user_id}:
                self._direct[user_id] = str(room_id)
                return str(room_id)
        what = f"could not open a direct room with {user_id}"
        try:
            # Synapse invites a user who does not exist without complaint: ask first.
            # Only a 404 says so (a 403 may just be a server that shows profiles only to
            # people who share a room).
            profile = await self.client.get_profile(user_id)
            if isinstance(profile, ProfileGetError) and _http_status(profile) == 404:
                raise Undeliverable("M_NOT_FOUND")
            # Encrypted, as Element does, when the person has a device that can read it.
            encrypted = await self._has_device_keys(user_id)
            created = await self.client.room_create(
                is_direct=True,
                invite=[user_id],
                preset=RoomPreset.trusted_private_chat,
                initial_state=[EnableEncryptionBuilder().as_dict()] if encrypted else (),
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformUnavailable(f"{what}: {exc!r}") from exc
        if isinstance(created, RoomCreateError):
            raise _refusal(what, created)
        self._remember_created(created.room_id, user_id, encrypted)
        self._direct[user_id] = created.room_id
        await self._update_m_direct()
        return str(created.room_id)

    def _remember_created(self, room_id: str, invitee: str, encrypted: bool) -> None:
        """Tell nio of a direct room the bot has just created, before any sync brings it:
        the first answer goes out at once, and in an encrypted room its key is shared
        with the invitee's devices too, so they read it once they join."""
        if room_id in self.client.rooms:
            return
        room = MatrixRoom(room_id, self.user_id, encrypted)
        room.add_member(self.user_id, None, None)
        room.add_member(invitee, None, None, invited=True)
        self.client.rooms[room_id] = room
        if encrypted:
            self.client.encrypted_rooms.add(room_id)
            if self.client.olm is not None:
                self.client.olm.update_tracked_users(room)

    async def _has_device_keys(self, user_id: str) -> bool:
        path = Api._build_path(["keys", "query"])
        response = await self.client.send(
            "POST",
            path,
            json.dumps({"device_keys": {user_id: []}}),
            headers={"Authorization": f"Bearer {self.client.access_token}"},
        )
        try:
            if response.status != 200:
                return False
            body = await response.json()
        finally:
            response.release()
        return bool((body.get("device_keys") or {}).get(user_id))

    def drop_direct(self, user_id: str, room_id: str) -> None:
        """Stop using a direct room the bot can no longer write to (nio keeps rooms the
        bot left or was kicked from among its rooms)."""
        if self._direct.get(user_id) == room_id:
            del self._direct[user_id]
        self.client.rooms.pop(room_id, None)

    async def _update_m_direct(self) -> None:
        """Record our direct rooms in m.direct so clients show them as DMs."""
        content: dict[str, list[str]] = {}
        for user, room_id in self._direct.items():
            content.setdefault(user, []).append(room_id)
        # nio has no helper for account data
        path = Api._build_path(["user", self.user_id, "account_data", "m.direct"])
        try:
            response = await self.client.send(
                "PUT",
                path,
                json.dumps(content),
                headers={"Authorization": f"Bearer {self.client.access_token}"},
            )
            response.release()
        except Exception as exc:
            log.warning("could not update m.direct: %s", exc)

    async def send(
        self,
        room_id: str,
        content: dict[str, Any],
        attempts: int = 5,
        txn_id: str | None = None,
    ) -> str:
        """Send one event; a short M_LIMIT_EXCEEDED is waited out. Raises Undeliverable
        when the homeserver refuses the event for good, PlatformUnavailable when it takes
        nothing now (no connection, rate limited, a server error), MatrixError otherwise.
        The homeserver turns a repeated `txn_id` (same device) into the first event."""
        room = await self._known(room_id)
        if room.encrypted:
            if self.client.olm is None:  # nio would send it in plaintext
                raise MatrixError(f"the encryption keys are not loaded: not sending to {room_id}")
            await self._refresh_devices(room)
            self._apply_trust(room)
        for _ in range(attempts):
            try:
                response = await self.client.room_send(
                    room_id, "m.room.message", content, tx_id=txn_id
                )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise PlatformUnavailable(f"could not reach the homeserver: {exc!r}") from exc
            except OlmUnverifiedDeviceError as exc:
                # A device the trust policy neither trusts nor blocks came in between.
                raise PlatformUnavailable(f"could not send to {room_id}: {exc}") from exc
            except LocalProtocolError as exc:
                raise PlatformUnavailable(f"could not send to {room_id}: {exc}") from exc
            if not isinstance(response, RoomSendError):
                return str(response.event_id)
            wait = _retry_after(response)
            if wait is None or wait > MAX_RATE_LIMIT_WAIT:
                raise _refusal(f"could not send to {room_id}", response)
            await asyncio.sleep(wait)
        raise PlatformUnavailable(f"could not send to {room_id}: still rate limited")

    async def _known(self, room_id: str, wait: float = 10.0) -> MatrixRoom:
        """The room as nio knows it: nio sends only to a room it knows (so never in
        plaintext to a room that is encrypted). A room the bot has just created or joined
        is known once a sync has brought it (the sync loop is told at once): wait that
        long, not longer. Raises Undeliverable when the homeserver says the bot is not in
        the room, PlatformUnavailable when it does not answer or the sync is late."""
        room = self._room(room_id)
        if room is not None:
            return room
        await self._check_member(room_id)
        if asyncio.current_task() is self._task:
            wait = 0  # called from the sync loop itself: no sync comes while it waits
        async with self._known_room:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._known_room.wait_for(lambda: self._room(room_id) is not None), wait
                )
        room = self._room(room_id)
        if room is None:
            raise PlatformUnavailable(f"could not send to {room_id}: not synced yet")
        return room

    async def _check_member(self, room_id: str) -> None:
        """Raises unless the homeserver says the bot is in the room."""
        # (nio's room_get_state_event takes an error answer for the state's content)
        path = Api._build_path(["rooms", room_id, "state", "m.room.create", ""])
        what = f"could not send to {room_id}"
        try:
            response = await self.client.send(
                "GET", path, headers={"Authorization": f"Bearer {self.client.access_token}"}
            )
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = {}
            finally:
                response.release()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformUnavailable(f"could not reach the homeserver: {exc!r}") from exc
        if response.status != 200:
            body = body if isinstance(body, dict) else {}
            error = ErrorResponse(str(body.get("error", "")), body.get("errcode"), None)
            error.transport_response = response
            raise _refusal(what, error)

    async def _refresh_devices(self, room: MatrixRoom) -> None:
        """The room's members and their devices as they are now, so that the trust policy
        sees every device the room key will go to (nio would fetch them itself, after the
        policy, inside the send)."""
        try:
            if not room.members_synced:
                await self.client.joined_members(room.room_id)
            if self.client.should_query_keys:
                await self.client.keys_query()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformUnavailable(f"could not reach the homeserver: {exc!r}") from exc

    def _apply_trust(self, room: MatrixRoom) -> None:
        """The trust policy, for every device of the room's members that nio knows: `tofu`
        trusts a device the first time it is seen (and keeps that in the store: a device
        blocked there stays blocked); `verified` blocks every device not verified in the
        store. The room keys go only to trusted devices, and a change makes nio share a
        new room key."""
        olm = self.client.olm
        if olm is None:
            return
        for user_id in room.users:
            for device in self.client.device_store.active_user_devices(user_id):
                if device.id == self.client.device_id and user_id == self.user_id:
                    continue
                if olm.is_device_verified(device) or olm.is_device_blacklisted(device):
                    continue
                if self.trust == "tofu":
                    log.info("trusting %s's device %s on first use", user_id, device.id)
                    self.client.verify_device(device)
                else:
                    log.info("%s's device %s is not verified: it gets no keys", user_id, device.id)
                    self.client.blacklist_device(device)

    async def upload(
        self, attachment: File, encrypt: bool = False
    ) -> tuple[str, dict[str, Any] | None]:
        """Upload a file; returns its mxc URI, and for an encrypted room the keys that
        decrypt it (the file itself is then encrypted)."""
        try:
            response, keys = await self.client.upload(
                io.BytesIO(attachment.content),
                content_type=attachment.mimetype,
                filename=attachment.filename,
                filesize=len(attachment.content),
                encrypt=encrypt,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformUnavailable(f"could not reach the homeserver: {exc!r}") from exc
        if isinstance(response, ErrorResponse):
            raise _refusal(f"upload of {attachment.filename} failed", response)
        uri = getattr(response, "content_uri", None)
        if not uri:
            raise MatrixError(f"upload of {attachment.filename} failed: {response}")
        return str(uri), keys

    async def send_file(self, room_id: str, attachment: File, txn_id: str | None = None) -> str:
        encrypted = (await self._known(room_id)).encrypted
        uri, keys = await self.upload(attachment, encrypt=encrypted)
        msgtype = "m.image" if attachment.mimetype.startswith("image/") else "m.file"
        content: dict[str, Any] = {
            "msgtype": msgtype,
            "body": attachment.filename,
            "info": {"mimetype": attachment.mimetype, "size": len(attachment.content)},
        }
        if encrypted and keys is not None:
            content["file"] = {**keys, "url": uri, "mimetype": attachment.mimetype}
        else:
            content["url"] = uri
        return await self.send(room_id, content, txn_id=txn_id)


class MatrixMessenger:
    platform = translate.PLATFORM

    def __init__(self, adapter: MatrixAdapter) -> None:
        self.adapter = adapter

    async def send(self, message: Outbound) -> str:
        """Send one message; returns its event id. An outbox message is sent with a
        transaction id made from its outbox id and content, so sending it again after a
        crash (same device) gives back the first event instead of a second message.
        Raises Undeliverable or PlatformUnavailable as `MatrixAdapter.send` does."""
        if message.delivery is Delivery.CHANNEL:
            return await self._send_to(message.to, message)
        # Matrix has no private replies in a room: those go to the direct room.
        room_id = await self.adapter.direct_room(message.to)
        try:
            return await self._send_to(room_id, message)
        except Undeliverable as exc:
            if exc.reason != "M_FORBIDDEN":
                raise
        # The person left that direct room or put the bot out of it; they can still be
        # written to, in a new one.
        self.adapter.drop_direct(message.to, room_id)
        return await self._send_to(await self.adapter.direct_room(message.to), message)

    async def _send_to(self, room_id: str, message: Outbound) -> str:
        """Send the message as one event or, too large for one, as several in order (the
        id of the first is returned). Each event of an outbox message has a transaction id
        of its own, so a message sent again after a crash midway adds only the rest."""
        contents = translate.contents(message)
        if message.in_reply_to and not self.adapter._is_direct(room_id):
            # In a group room the answer replies to the command, so a busy room stays
            # readable; a direct room is one conversation and stays plain.
            contents[0] = translate.replying(contents[0], message.in_reply_to)
        ids: list[str] = []
        txn = None
        for index, content in enumerate(contents):
            if message.outbox_id is not None:
                digest = hashlib.sha256(
                    json.dumps([room_id, content], sort_keys=True).encode("utf-8")
                ).hexdigest()[:16]
                txn = f"sif-outbox-{message.outbox_id}-{digest}"
                if len(contents) > 1:
                    txn += f"-{index + 1}"  # two parts may read the same
            ids.append(await self.adapter.send(room_id, content, txn_id=txn))
        if message.file is not None:
            await self.adapter.send_file(
                room_id, message.file, txn_id=None if txn is None else f"{txn}-file"
            )
        return ids[0]


def _refusal(what: str, response: ErrorResponse) -> Exception:
    """The exception for a homeserver's error answer: Undeliverable(errcode) when this
    message can never go through, PlatformUnavailable when nothing can now (the HTTP
    status counts first: Synapse calls its own 500s M_UNKNOWN), else MatrixError."""
    code = response.status_code
    status = _http_status(response)
    detail = f"{what}: {code or status} {response.message}"
    if code in UNAVAILABLE or (status is not None and (status >= 500 or status == 429)):
        return PlatformUnavailable(detail)
    if code in UNDELIVERABLE:
        return Undeliverable(str(code))
    return MatrixError(detail)


def _http_status(response: Any) -> int | None:
    status = getattr(getattr(response, "transport_response", None), "status", None)
    return status if isinstance(status, int) else None


def _retry_after(response: Any) -> float | None:
    if getattr(response, "status_code", None) != "M_LIMIT_EXCEEDED":
        return None
    millis = getattr(response, "retry_after_ms", None) or 1000
    return float(millis) / 1000 + random.uniform(0, 0.1)


def _after_own_join(events: list[Any], user_id: str) -> int:
    """The index after the bot's last own join in a timeline (0 when there is none); a
    join that follows a join only changes the bot's name or avatar."""
    start = 0
    for index, event in enumerate(events):
        if (
            isinstance(event, RoomMemberEvent)
            and event.state_key == user_id
            and event.membership == "join"
            and event.prev_membership != "join"
        ):
            start = index + 1
    return start


def _inviter(response: SyncResponse, room_id: str) -> str | None:
    info = response.rooms.invite.get(room_id)
    for event in getattr(info, "invite_state", []) or []:
        if getattr(event, "membership", None) == "invite" and getattr(event, "sender", None):
            return str(event.sender)
    return None


async def manage_devices(
    *,
    homeserver: str,
    user_id: str,
    store_path: Path,
    member: str,
    action: str = "list",
    device_id: str | None = None,
) -> list[str]:
    """For the operator (`sif-bot matrix devices|verify|block`): a member's devices as the
    bot's store knows them, with their fingerprints and trust, after asking the homeserver
    for the member's current devices; `verify` marks one verified (it then gets the room
    keys under either trust policy), `block` marks it blocked (it never gets them). Runs
    on the bot's own device, so only while the bot is stopped (the store's lock)."""
    adapter = _Operator(homeserver=homeserver, user_id=user_id, store_path=store_path)
    adapter._take_lock()
    client = adapter.client
    try:
        saved = adapter._load("credentials.json")
        if saved.get("user_id") != user_id or not saved.get("access_token"):
            raise MatrixError(
                f"no Matrix login of {user_id} in {store_path}: start the bot once first"
            )
        client.restore_login(user_id, saved["device_id"], saved["access_token"])
        assert client.olm is not None
        client.olm.users_for_key_query.add(member)
        response = await client.keys_query()
        if isinstance(response, ErrorResponse):
            raise MatrixError(f"could not ask the homeserver for {member}'s devices: {response}")
        devices = {d.id: d for d in client.device_store.active_user_devices(member)}
        if action in ("verify", "block"):
            device = devices.get(device_id or "")
            if device is None:
                known = ", ".join(sorted(devices)) or "none"
                raise MatrixError(f"{member} has no device {device_id} (devices: {known})")
            if action == "verify":
                client.unblacklist_device(device)
                client.verify_device(device)
            else:
                client.unverify_device(device)
                client.blacklist_device(device)
        lines = []
        for device in sorted(devices.values(), key=lambda d: d.id):
            if client.olm.is_device_blacklisted(device):
                trust = "blocked"
            elif client.olm.is_device_verified(device):
                trust = "trusted"
            else:
                trust = "not seen in a room yet"
            name = f" ({device.display_name})" if device.display_name else ""
            key = " ".join(device.ed25519[i : i + 4] for i in range(0, len(device.ed25519), 4))
            lines.append(f"{device.id}{name}: {trust}; session key {key}")
        return lines or [f"{member} has no devices with encryption keys."]
    finally:
        await client.close()
        adapter._release_lock()


class _Operator(MatrixAdapter):
    """The bot's device and store without a core: for operator commands."""

    def __init__(self, *, homeserver: str, user_id: str, store_path: Path) -> None:
        self.user_id = user_id
        self.store_path = Path(store_path)
        self._lock = None
        saved = self._load("credentials.json")
        self.client = AsyncClient(
            homeserver,
            user_id,
            device_id=saved.get("device_id"),
            store_path=str(self.store_path),
            config=AsyncClientConfig(
                encryption_enabled=True, store=CryptoStore, store_sync_tokens=False
            ),
        )
