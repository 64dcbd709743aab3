"""A local fake of Slack for tests: the Web API, file uploads, Socket Mode, and signed requests.

`FakeSlack` is an aiohttp server on 127.0.0.1 (random port) that answers the Web API methods a
bot uses with the same `{"ok": true, ...}` shapes as Slack, so the real slack-sdk
`AsyncWebClient(base_url=slack.base_url)` works against it unchanged. Every call is recorded as
a `Call`; tests assert on `slack.calls_to(...)` or wait with `await slack.wait_for(...)`.
It also serves the `files_upload_v2` upload URL, a Socket Mode websocket (`/socket`), and
`response_url`s, and it can inject failures (`fail_next`) such as 429 rate limits. Like
Slack, it refuses a message over Slack's limits (`message_error`: 50 blocks, 3,000
characters in a section, about 12,000 in all blocks, 40,000 of text) and a history lookup
without the scope for that kind of conversation (`scopes`, by default all of them).

The module-level helpers build what Slack sends *to* the bot over HTTP (slash commands, Events
API callbacks, interactivity) with Slack's v0 HMAC-SHA256 signature, plus the same payloads as
dicts for Socket Mode envelopes.

Nothing here talks to the network beyond 127.0.0.1: default `response_url`s point at a closed
loopback port, so a bot that answers one by accident fails fast instead of reaching Slack.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        await client.chat_postMessage(channel="C0001", text="hi")
        [call] = await slack.wait_for("chat.postMessage")
"""

# The waiting helpers take `timeout=` on purpose: it is a deadline for a test assertion that
# fails with a readable message, not a cancellation scope for callers to wrap.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web

__all__ = [
    "ALL_SCOPES",
    "Call",
    "FakeSlack",
    "app_home_opened_event",
    "app_mention_event",
    "block_actions_body",
    "block_actions_payload",
    "event_body",
    "event_payload",
    "message_error",
    "message_im_event",
    "post_signed",
    "sign",
    "slash_command_body",
    "slash_command_payload",
    "socket_envelope",
]

# Form-encoded Web API calls carry structured arguments as JSON strings (the SDK json.dumps
# them); decoding these keys lets tests compare `call.args["blocks"]` to lists either way.
_JSON_ARGS = frozenset(
    {"attachments", "blocks", "files", "metadata", "unfurls", "user_auth_blocks", "view"}
)

# Slack's ts is "<unix seconds>.<6 digits>"; the fake counts in steps of 100 µs from here, so
# the first message it posts is "1700000000.000100" (the default message_ts of
# block_actions_body).
_TS_EPOCH = 1_700_000_000
_TS_STEP = 100

# What a bot token may hold; `FakeSlack(scopes=...)` installs the app with fewer.
ALL_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "files:write",
        "groups:history",
        "groups:read",
        "im:history",
        "im:read",
        "im:write",
        "mpim:history",
        "users:read",
    }
)

# Slack's limits for one message (Block Kit docs; the total of the blocks' text as
# reported for msg_blocks_too_long).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BLOCKS_TEXT = 12_000
MAX_TEXT = 40_000
MAX_BUTTONS = 25
_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update"})

# Default response_url: a loopback port nothing listens on (9 = discard), so a stray POST fails
# at once with "connection refused" instead of leaving the machine.
_DEAD_RESPONSE_BASE = "http://127.0.0.1:9"


@dataclass
class Call:
    """One Web API call the fake received."""

    method: str  # "chat.postMessage"
    args: dict[str, Any]  # query + form/JSON body; JSON strings in _JSON_ARGS decoded
    token: str | None  # from "Authorization: Bearer ..." or the token argument


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str
    remaining: int
    after: int = 0  # calls still answered normally before this failure starts
    body: str | None = None  # a raw (non-JSON) body, like a proxy's error page


@dataclass
class _PendingUpload:
    filename: str
    length: int | None
    content: bytes | None = None
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FakeSlack:
    """An aiohttp server imitating the Slack Web API and Socket Mode; records every call.

    Recorded state, all public for assertions:
      calls            accepted Web API calls (and `response_url` posts, method "response_url")
      rejected         calls answered with an injected failure (see `fail_next`)
      uploads          (filename, bytes) for every file sent to the upload URL
      responses        (response_url, JSON body) posted to URLs from `response_url()`
      socket_received  every JSON message a Socket Mode client sent (acks)
      home_views       the last view published per user by views.publish
      users            per-user overrides for users.info: {"name", "real_name", "tz",
                       "locale", ...}; the locale ("en-US" unless set) is in the answer
                       only when asked with include_locale, as Slack does
      history          messages posted per channel, oldest first (conversations.history)
      scopes           the bot token's scopes (conversations.history checks them)
      private_channels channels read with groups:history rather than channels:history
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "A0001",
        scopes: Iterable[str] = ALL_SCOPES,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id

        self.calls: list[Call] = []
        self.rejected: list[Call] = []
        self.uploads: list[tuple[str, bytes]] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.socket_received: list[dict[str, Any]] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.scopes: set[str] = set(scopes)
        self.private_channels: set[str] = set()

        self._failures: dict[str, list[_Failure]] = {}
        self._stalls: dict[str, list[float]] = {}
        self._pending_uploads: dict[str, _PendingUpload] = {}
        self._view_ids: dict[str, str] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._ids = itertools.count(1)
        self._ts = 0
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        # Created lazily so a FakeSlack can be built outside the event loop that uses it.
        self._changed_cond: asyncio.Condition | None = None

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 on a random free port and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/socket", self._socket)
        # A short shutdown timeout: stop() must not hang on a client that keeps a request open.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])  # port 0 asked the OS for a free one

    async def stop(self) -> None:
        """Close Socket Mode connections (code 1001, like a server going away) and stop."""
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What `AsyncWebClient(base_url=...)` takes: "http://127.0.0.1:PORT/api/"."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket"

    # ---------------------------------------------------------------------------- assertions

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until `count` calls to `method` (matching `where`) arrived; return all matches.

        Raises AssertionError listing every call seen if they do not arrive within `timeout`.
        """

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if where is None or where(c)]

        try:
            await self._wait_until(lambda: len(matching()) >= count, timeout)
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {_short(c.args)}" for c in self.calls) or "  (none)"
            raise AssertionError(
                f"expected {count} call(s) to {method}"
                f"{' matching the filter' if where else ''} within {timeout}s, "
                f"got {len(matching())}; calls seen:\n{seen}"
            ) from None
        return matching()

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        error: str = "ratelimited",
        after: int = 0,
        body: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with `{"ok": false, "error": error}`.

        With status 429 the answer carries `Retry-After: retry_after`, as Slack's rate limiter
        does. Use status=200 for ordinary API errors (Slack reports e.g. channel_not_found with
        HTTP 200). Failed calls go to `rejected`, not `calls`, so a retried call is in `calls`
        exactly once. With `after`, that many calls are answered normally first; with `body`,
        the answer is that text/html body instead of JSON (a load balancer's error page).
        """
        self._failures.setdefault(method, []).append(
            _Failure(
                status=status,
                retry_after=retry_after,
                error=error,
                remaining=times,
                after=after,
                body=body,
            )
        )

    def stall_next(self, method: str, *, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls to `method` only after `seconds` (a slow Slack)."""
        self._stalls.setdefault(method, []).extend([seconds] * times)

    def clear(self) -> None:
        """Forget recorded calls, uploads, responses and socket messages (not configuration)."""
        self.calls.clear()
        self.rejected.clear()
        self.uploads.clear()
        self.responses.clear()
        self.socket_received.clear()

    def history_scope(self, channel: str) -> str:
        """The scope conversations.history needs for a channel: D… is a DM (im:history),
        G… a group DM or old private channel (groups:history), C… a public channel unless
        listed in `private_channels`."""
        if channel.startswith("D"):
            return "im:history"
        if channel.startswith("G") or channel in self.private_channels:
            return "groups:history"
        return "channels:history"

    @staticmethod
    def dm_channel(user_id: str) -> str:
        """The DM channel id conversations.open returns for a user: U0002 -> D0002."""
        return "D" + (user_id[1:] if user_id[:1] in ("U", "W") else user_id)

    def response_url(self) -> str:
        """A fresh response_url on this fake; POSTs to it are recorded in `responses`."""
        return f"http://127.0.0.1:{self.port}/response/{next(self._ids)}"

    # --------------------------------------------------------------------------- Socket Mode

    @property
    def socket_connections(self) -> int:
        return len(self._sockets)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until `count` Socket Mode clients are connected."""
        try:
            await self._wait_until(lambda: len(self._sockets) >= count, timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} Socket Mode connection(s) within {timeout}s, "
                f"have {len(self._sockets)}"
            ) from None

    async def socket_send(self, envelope: dict[str, Any], timeout: float = 5.0) -> str:
        """Send an envelope to every connected client; returns its envelope_id.

        Waits up to `timeout` for a client, because a client's connect() can return before
        this server has registered the websocket. An envelope without envelope_id gets one.
        """
        envelope = dict(envelope)
        envelope.setdefault("envelope_id", str(uuid.uuid4()))
        await self.wait_for_socket(1, timeout)
        for ws in list(self._sockets):
            await ws.send_str(json.dumps(envelope))
        return str(envelope["envelope_id"])

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell clients to reconnect, as Slack does every few hours ("refresh_requested")."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        for ws in list(self._sockets):
            await ws.send_str(json.dumps(message))

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Return the message a client sent back for `envelope_id` (its ack)."""

        def ack() -> dict[str, Any] | None:
            for m in self.socket_received:
                if m.get("envelope_id") == envelope_id:
                    return m
            return None

        try:
            await self._wait_until(lambda: ack() is not None, timeout)
        except TimeoutError:
            raise AssertionError(
                f"no ack for envelope {envelope_id} within {timeout}s; "
                f"socket messages seen: {self.socket_received}"
            ) from None
        found = ack()
        assert found is not None
        return found

    # ------------------------------------------------------------------------------ internals

    def _cond(self) -> asyncio.Condition:
        if self._changed_cond is None:
            self._changed_cond = asyncio.Condition()
        return self._changed_cond

    async def _notify(self) -> None:
        cond = self._cond()
        async with cond:
            cond.notify_all()

    async def _wait_until(self, predicate: Callable[[], bool], limit: float) -> None:
        # A condition notified on every recorded change instead of a sleep loop: wakes at once
        # when the awaited call lands, and raises TimeoutError after `limit` seconds.
        cond = self._cond()
        async with asyncio.timeout(limit), cond:
            await cond.wait_for(predicate)

    def _next_ts(self) -> str:
        self._ts += _TS_STEP
        return f"{_TS_EPOCH + self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        if failure.after > 0:
            failure.after -= 1
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await _read_args(request)
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        elif isinstance(args.get("token"), str):
            token = args["token"]
        call = Call(method=method, args=args, token=token)
        stalls = self._stalls.get(method)
        if stalls:
            await asyncio.sleep(stalls.pop(0))

        failure = self._take_failure(method)
        if failure is not None:
            self.rejected.append(call)
            await self._notify()
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            if failure.body is not None:
                return web.Response(
                    text=failure.body,
                    status=failure.status,
                    headers=headers,
                    content_type="text/html",
                )
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )

        refused = message_error(args) if method in _MESSAGE_METHODS else None
        if refused is not None:  # Slack delivers none of a message over its limits
            self.rejected.append(call)
            await self._notify()
            return web.json_response({"ok": False, "error": refused})

        self.calls.append(call)
        await self._notify()
        handler = self._handlers().get(method)
        body = handler(call) if handler is not None else {"ok": True}
        # Slack answers every API call with JSON and HTTP 200, errors included.
        return web.json_response(body)

    def _handlers(self) -> dict[str, Callable[[Call], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "views.publish": self._views_publish,
            "views.open": self._views_modal,
            "views.update": self._views_modal,
            "views.push": self._views_modal,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

    def _auth_test(self, call: Call) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://sif-test.slack.com/",
            "team": "SIF Test",
            "user": "sif",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _conversations_open(self, call: Call) -> dict[str, Any]:
        if call.args.get("channel"):
            return {"ok": True, "channel": {"id": str(call.args["channel"])}}
        users = [u for u in str(call.args.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            return {"ok": True, "channel": {"id": self.dm_channel(users[0])}}
        # A group DM: stable for the same set of people, whatever their order.
        digest = hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:8].upper()
        return {"ok": True, "channel": {"id": f"G{digest}"}}

    def _bot_message(self, call: Call, ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": call.args.get("text", ""),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in call.args:
                message[key] = call.args[key]
        return message

    def _chat_post_message(self, call: Call) -> dict[str, Any]:
        ts = self._next_ts()
        channel = str(call.args.get("channel", ""))
        message = self._bot_message(call, ts)
        self.history.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _conversations_history(self, call: Call) -> dict[str, Any]:
        """Newest first, at most `limit`; metadata only with include_all_metadata."""
        channel = str(call.args.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        needed = self.history_scope(channel)
        if needed not in self.scopes:
            provided = ",".join(sorted(self.scopes))
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided}
        limit = int(call.args.get("limit") or 100)
        with_metadata = str(call.args.get("include_all_metadata", "")).lower() in {"1", "true"}
        messages = []
        for message in reversed(self.history.get(channel, [])[-limit:]):
            shown = dict(message)
            if not with_metadata:
                shown.pop("metadata", None)
            messages.append(shown)
        return {"ok": True, "messages": messages, "has_more": False}

    def _chat_post_ephemeral(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, call: Call) -> dict[str, Any]:
        ts = str(call.args.get("ts", ""))
        return {
            "ok": True,
            "channel": str(call.args.get("channel", "")),
            "ts": ts,
            "text": call.args.get("text", ""),
            "message": self._bot_message(call, ts),
        }

    def _chat_delete(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "channel": call.args.get("channel"), "ts": call.args.get("ts")}

    def _view(self, view_id: str, view: Any) -> dict[str, Any]:
        spec: dict[str, Any] = view if isinstance(view, dict) else {}
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec.get("type", "home"),
            "blocks": spec.get("blocks", []),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "external_id": spec.get("external_id", ""),
            "title": spec.get("title"),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._ids):08d}",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _views_publish(self, call: Call) -> dict[str, Any]:
        user_id = str(call.args.get("user_id", ""))
        # One Home view per user, re-published in place, so its id stays the same.
        view_id = self._view_ids.setdefault(user_id, f"VH{next(self._ids):07d}")
        view = self._view(view_id, call.args.get("view"))
        self.home_views[user_id] = view
        return {"ok": True, "view": view}

    def _views_modal(self, call: Call) -> dict[str, Any]:
        view_id = str(call.args.get("view_id") or f"VM{next(self._ids):07d}")
        return {"ok": True, "view": self._view(view_id, call.args.get("view"))}

    def _users_info(self, call: Call) -> dict[str, Any]:
        user_id = str(call.args.get("user", ""))
        cfg = dict(self.users.get(user_id, {}))
        name = str(cfg.pop("name", f"name-{user_id}"))
        real_name = str(cfg.pop("real_name", name))
        tz = str(cfg.pop("tz", "UTC"))
        locale = cfg.pop("locale", "en-US")
        profile: dict[str, Any] = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        if "email" in cfg:
            profile["email"] = cfg.pop("email")
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": _tz_offset(tz),
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": _TS_EPOCH,
        }
        if locale is not None and str(call.args.get("include_locale", "")).lower() in ("1", "true"):
            user["locale"] = locale
        user.update(cfg)  # anything else configured ("is_bot", "deleted", ...) wins
        return {"ok": True, "user": user}

    def _files_get_upload_url(self, call: Call) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        length = call.args.get("length")
        self._pending_uploads[file_id] = _PendingUpload(
            filename=str(call.args.get("filename", "")),
            length=int(length) if length not in (None, "") else None,
        )
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
            "file_id": file_id,
        }

    def _files_complete_upload(self, call: Call) -> dict[str, Any]:
        files = call.args.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        out: list[dict[str, Any]] = []
        for f in files:
            file_id = str(f.get("id", ""))
            pending = self._pending_uploads.get(file_id)
            if pending is None or pending.content is None:
                # Slack refuses to complete a file whose bytes never arrived.
                return {"ok": False, "error": "file_not_found"}
            out.append(
                {
                    "id": file_id,
                    "name": pending.filename,
                    "title": f.get("title") or pending.filename,
                    "size": len(pending.content),
                    "user": self.bot_user_id,
                    "created": int(time.time()),
                    "url_private": f"https://files.slack.invalid/{file_id}/{pending.filename}",
                }
            )
        return {"ok": True, "files": out}

    def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        # Slack's URL carries a one-time ticket; clients just connect to whatever they get.
        return {
            "ok": True,
            "url": f"{self.socket_url}?ticket={next(self._ids)}&app_id={self.app_id}",
        }

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        pending = self._pending_uploads.get(file_id)
        if pending is None:
            return web.Response(status=404, text="unknown upload", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            # Slack also accepts the bytes as a multipart form field; take the first file part.
            content = b""
            form = await request.post()
            for value in form.values():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    break
        else:
            content = await request.read()
        pending.content = content
        self.uploads.append((pending.filename, content))
        await self._notify()
        # The real upload URL answers text/plain "OK - <bytes>"; slack-sdk reads it as text.
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw}
        if not isinstance(body, dict):
            body = {"_raw": body}
        refused = message_error(body)
        if refused is not None:  # a response_url answer has a message's limits too
            self.rejected.append(Call(method="response_url", args=body, token=None))
            await self._notify()
            return web.Response(status=400, text=refused, content_type="text/plain")
        self.responses.append((str(request.url), body))
        self.calls.append(Call(method="response_url", args=body, token=None))
        await self._notify()
        return web.Response(text="ok", content_type="text/plain")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        # autoping answers the SDK's "sdk-ping-pong:<time>" pings with matching pongs; the SDK
        # reconnects when it sees no pong.
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": len(self._sockets),
                        "debug_info": {
                            "host": "fake-slack",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            await self._notify()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    data = {"_raw": msg.data}
                self.socket_received.append(data if isinstance(data, dict) else {"_raw": data})
                await self._notify()
        finally:
            self._sockets.remove(ws)
            await self._notify()
        return ws


# ---------------------------------------------------------------------------------- parsing


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Merge query parameters and a form or JSON body, the ways slack-sdk sends arguments."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        args.update(await _read_body(request))
    # The SDK json.dumps structured arguments in forms and query strings, and passes a str
    # through even in JSON bodies (views_publish(view="{...}")): decode all of them alike.
    for key in _JSON_ARGS & args.keys():
        if isinstance(args[key], str):
            args[key] = _maybe_json(args[key])
    return args


async def _read_body(request: web.Request) -> dict[str, Any]:
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json()
        return body if isinstance(body, dict) else {}
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        args: dict[str, Any] = {}
        for key, value in form.items():
            # Legacy multipart uploads (files.upload): keep the file name, not the bytes.
            args[key] = value.filename if isinstance(value, web.FileField) else value
        return args
    # Unknown content type: try JSON, then a query string, as Slack is lenient too.
    raw = (await request.read()).decode("utf-8", "replace")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        return dict(parse_qsl(raw))
    return body if isinstance(body, dict) else {}


def message_error(args: dict[str, Any]) -> str | None:
    """Slack's error for a message over its limits (None: it takes it): `msg_too_long`
    past 40,000 characters of text, `invalid_blocks` past 50 blocks, 3,000 characters in
    a section, 25 buttons or a 75-character button label, `msg_blocks_too_long` when the
    blocks' text adds up to more than 12,000, `no_text` with neither."""
    text = args.get("text")
    blocks = args.get("blocks") or []
    if not isinstance(blocks, list):
        return "invalid_blocks_format"
    if not text and not blocks:
        return "no_text"
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return "msg_too_long"
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    total = 0
    for block in blocks:
        if not isinstance(block, dict):
            return "invalid_blocks"
        shown = block.get("text") or {}
        size = len(str(shown.get("text", ""))) if isinstance(shown, dict) else 0
        if block.get("type") == "section" and not 0 < size <= MAX_SECTION_TEXT:
            return "invalid_blocks"
        elements = block.get("elements") or []
        if block.get("type") == "actions" and len(elements) > MAX_BUTTONS:
            return "invalid_blocks"
        for element in elements:
            label = element.get("text") if isinstance(element, dict) else None
            if isinstance(label, dict) and element.get("type") == "button":
                if len(str(label.get("text", ""))) > 75:
                    return "invalid_blocks"
            if isinstance(label, str):
                size += len(label)
        total += size
    if total > MAX_BLOCKS_TEXT:
        return "msg_blocks_too_long"
    return None


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _short(args: dict[str, Any], limit: int = 200) -> str:
    text = json.dumps(args, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


# ---------------------------------------------------------------------- requests to the bot

_ts_seq = itertools.count(1)


def _fresh_ts() -> str:
    # Wall-clock seconds with a process-wide sequence as the fraction: unique and increasing
    # within a test run, shaped like Slack's "1712345678.000123".
    return f"{int(time.time())}.{next(_ts_seq) % 1_000_000:06d}"


def _trigger_id() -> str:
    # Slack's trigger ids look like "13345224609.738474920.8088930838d88f008e0".
    return f"{int(time.time() * 1000)}.{next(_ts_seq)}.{uuid.uuid4().hex}"


def _dead_response_url(kind: str, team_id: str) -> str:
    return f"{_DEAD_RESPONSE_BASE}/{kind}/{team_id}/{next(_ts_seq)}/{uuid.uuid4().hex[:24]}"


def sign(secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature: the X-Slack-Request-Timestamp and X-Slack-Signature headers.

    signature = "v0=" + hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}")); the timestamp
    defaults to now (receivers reject ones more than five minutes off).
    """
    ts = int(time.time()) if timestamp is None else timestamp
    raw = body.encode() if isinstance(body, str) else body
    basestring = b"v0:" + str(ts).encode() + b":" + raw
    digest = hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def slash_command_payload(
    *,
    text: str,
    user_id: str = "U0002",
    team_id: str = "T0001",
    channel_id: str = "C0001",
    channel_name: str = "general",
    command: str = "/sif",
    trigger_id: str | None = None,
    user_name: str = "ann",
    response_url: str | None = None,
    api_app_id: str = "A0001",
) -> dict[str, str]:
    """A slash command's fields as Slack sends them (all strings; the Socket Mode payload)."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "team_domain": "sif-test",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or _dead_response_url("commands", team_id),
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(
    *,
    text: str,
    user_id: str = "U0002",
    team_id: str = "T0001",
    channel_id: str = "C0001",
    channel_name: str = "general",
    command: str = "/sif",
    trigger_id: str | None = None,
    user_name: str = "ann",
    response_url: str | None = None,
    api_app_id: str = "A0001",
) -> str:
    """The urlencoded form body of a slash command request (Content-Type form-urlencoded)."""
    return urlencode(
        slash_command_payload(
            text=text,
            user_id=user_id,
            team_id=team_id,
            channel_id=channel_id,
            channel_name=channel_name,
            command=command,
            trigger_id=trigger_id,
            user_name=user_name,
            response_url=response_url,
            api_app_id=api_app_id,
        )
    )


def event_payload(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    event_id: str | None = None,
    api_app_id: str = "A0001",
    authorized_user_id: str = "UBOT",
) -> dict[str, Any]:
    """An Events API "event_callback" envelope with a fresh event_id and event_time."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        # Since 2021 Slack lists one installation the event is visible to: the bot's.
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": authorized_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def event_body(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    event_id: str | None = None,
    api_app_id: str = "A0001",
    authorized_user_id: str = "UBOT",
) -> str:
    """`event_payload` as the JSON body Slack POSTs (Content-Type application/json)."""
    return json.dumps(
        event_payload(
            event,
            team_id=team_id,
            event_id=event_id,
            api_app_id=api_app_id,
            authorized_user_id=authorized_user_id,
        )
    )


def _rich_text(text: str) -> list[dict[str, Any]]:
    # Messages typed in Slack carry their text again as a rich_text block.
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def message_im_event(
    *,
    text: str,
    user: str = "U0002",
    channel: str = "D0002",
    ts: str | None = None,
    team: str = "T0001",
) -> dict[str, Any]:
    """A `message` event in a DM with the bot (message.im), as a user typed it."""
    ts = ts or _fresh_ts()
    return {
        "client_msg_id": str(uuid.uuid4()),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
    }


def app_mention_event(
    *,
    text: str,
    user: str = "U0002",
    channel: str = "C0001",
    ts: str | None = None,
    team: str = "T0001",
) -> dict[str, Any]:
    """An `app_mention` event; `text` is verbatim, so include "<@UBOT>" as Slack would."""
    ts = ts or _fresh_ts()
    return {
        "client_msg_id": str(uuid.uuid4()),
        "type": "app_mention",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }


def app_home_opened_event(
    *, user: str = "U0002", tab: str = "home", channel: str | None = None
) -> dict[str, Any]:
    """An `app_home_opened` event (without `view`, which Slack adds only once one was published)."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": channel or FakeSlack.dm_channel(user),
        "tab": tab,
        "event_ts": _fresh_ts(),
    }


def block_actions_payload(
    *,
    value: str,
    action_id: str = "sif_action_0",
    user_id: str = "U0002",
    team_id: str = "T0001",
    channel_id: str = "D0002",
    message_ts: str = "1700000000.000100",
    trigger_id: str | None = None,
    block_id: str = "sif_block_0",
    user_name: str = "ann",
    response_url: str | None = None,
    api_app_id: str = "A0001",
    bot_user_id: str = "UBOT",
    bot_id: str = "BBOT",
) -> dict[str, Any]:
    """A `block_actions` interaction: a button click on a bot message in `channel_id`."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": "sif-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {
            "id": channel_id,
            "name": "directmessage" if channel_id.startswith("D") else "general",
        },
        "message": {
            "type": "message",
            "subtype": "bot_message",
            "text": "",
            "user": bot_user_id,
            "bot_id": bot_id,
            "app_id": api_app_id,
            "team": team_id,
            "ts": message_ts,
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": response_url or _dead_response_url("actions", team_id),
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": "Button", "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": _fresh_ts(),
            }
        ],
    }


def block_actions_body(
    *,
    value: str,
    action_id: str = "sif_action_0",
    user_id: str = "U0002",
    team_id: str = "T0001",
    channel_id: str = "D0002",
    message_ts: str = "1700000000.000100",
    trigger_id: str | None = None,
    block_id: str = "sif_block_0",
    user_name: str = "ann",
    response_url: str | None = None,
    api_app_id: str = "A0001",
) -> str:
    """`block_actions_payload` as Slack POSTs interactivity: form-urlencoded `payload=<json>`."""
    payload = block_actions_payload(
        value=value,
        action_id=action_id,
        user_id=user_id,
        team_id=team_id,
        channel_id=channel_id,
        message_ts=message_ts,
        trigger_id=trigger_id,
        block_id=block_id,
        user_name=user_name,
        response_url=response_url,
        api_app_id=api_app_id,
    )
    return urlencode({"payload": json.dumps(payload)})


def socket_envelope(
    type_: str,
    payload: dict[str, Any],
    *,
    envelope_id: str | None = None,
    accepts_response_payload: bool | None = None,
) -> dict[str, Any]:
    """A Socket Mode envelope: type_ is "events_api", "slash_commands" or "interactive".

    Slack lets the app answer slash commands and interactivity in the ack
    (accepts_response_payload true), Events API envelopes not.
    """
    if accepts_response_payload is None:
        accepts_response_payload = type_ != "events_api"
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": type_,
        "accepts_response_payload": accepts_response_payload,
    }


async def post_signed(
    url: str,
    body: str,
    secret: str,
    *,
    content_type: str,
    headers: dict[str, str] | None = None,
    timestamp: int | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, str]:
    """POST `body` to `url` signed with `secret`, as Slack delivers; returns (status, text).

    `headers` are added last, so a test can override the signature or add x-slack-retry-num.
    """
    all_headers = {"Content-Type": content_type, **sign(secret, body, timestamp)}
    all_headers.update(headers or {})
    if session is not None:
        return await _post(session, url, body, all_headers)
    async with aiohttp.ClientSession() as own:
        return await _post(own, url, body, all_headers)


async def post_event(
    url: str,
    body: str,
    secret: str,
    *,
    attempt: int = 0,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, str]:
    """POST a signed Events API body as Slack delivers it; `attempt` > 0 is Slack's retry
    of it (X-Slack-Retry-Num), after the previous try got no 200."""
    headers = (
        {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"} if attempt else {}
    )
    return await post_signed(
        url, body, secret, content_type="application/json", headers=headers, session=session
    )


async def _post(
    session: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]
) -> tuple[int, str]:
    async with session.post(url, data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.text()
