"""The Slack door: a Bolt AsyncApp that turns Slack into Inbound, and a Messenger back.

HTTP mode serves ``POST /slack/events`` (signature checked by Bolt); Socket Mode is
used when ``SLACK_APP_TOKEN`` is set. A listener acks as soon as the core has committed
the outcome, before anything is sent: an event that dies with the process before that
is not acknowledged, so Slack sends it again, and the core's event keys make the retry
a no-op when the first try did commit. A slash command's answer that changes nothing
(a read-only command's private answer, a refusal) is the command's response itself,
shown by Slack to the caller only; everything else goes through the outbox. Requests
Bolt cannot take safely are answered here first: a malformed body gets 400 and a
timestamp that is not a number 401 (Bolt would answer 500 to either, and Slack would
retry), and a slash command is parsed here so that its text may contain the word
"payload" (a slack-bolt 1.30 bug). With SLACK_TEAM_ID set, requests from any other
workspace are answered and dropped before they reach the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import translate
from bot.i18n import _, speaking
from bot.messages import Delivery, Inbound, Outbound
from bot.ports import Core as Bot
from bot.ports import PlatformUnavailable, Status, Undeliverable

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # Slack payloads are far smaller; anything bigger is not Slack
OUTBOX_EVENT = "sif_outbox"  # message metadata: its topic, subject and outbox row
HISTORY_LOOKBACK = 200  # latest messages searched for one whose delivery is in doubt
NOT_SERVED = "This workspace is not served by this bot."


# Slack's error codes for a message it will never take as it is: the conversation or
# person is gone or closed to the bot, the app lacks a permission, or the message itself
# is refused (its blocks, after splitting, would be our mistake: it must not hold back
# any other message either).
UNDELIVERABLE = frozenset(
    {
        "account_inactive",
        "cannot_dm_bot",
        "channel_not_found",
        "ekm_access_denied",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "is_archived",
        "messages_tab_disabled",
        "metadata_too_large",
        "missing_scope",
        "msg_blocks_too_long",
        "msg_too_long",
        "no_text",
        "not_allowed_token_type",
        "not_in_channel",
        "restricted_action",
        "restricted_action_non_threadable_channel",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "team_access_not_granted",
        "too_many_attachments",
        "user_disabled",
        "user_not_found",
        "users_not_found",
    }
)
# ... and for Slack not taking any message now: rate limited, down, or our token refused
# (a token problem is the whole platform's, not one message's fault). HTTP 429 and 5xx
# answers count here whatever their error code.
UNAVAILABLE = frozenset(
    {
        "fatal_error",
        "internal_error",
        "invalid_auth",
        "not_authed",
        "ratelimited",
        "request_timeout",
        "service_unavailable",
        "token_expired",
        "token_revoked",
    }
)


def _answer(exc: SlackApiError) -> dict[str, Any]:
    """Slack's JSON answer to a failed call ({} when it was not JSON: an error page)."""
    data = exc.response.data
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _classified() -> Iterator[None]:
    """Slack's refusals as the outbox reads them: `Undeliverable(error)` for a message
    Slack will never take, `PlatformUnavailable` when Slack takes none now (no answer,
    rate limited, a server error, our token refused); anything else as it was raised."""
    try:
        yield
    except SlackApiError as exc:
        error = str(_answer(exc).get("error") or "")
        status = exc.response.status_code
        if status == 429 or status >= 500 or error in UNAVAILABLE:
            raise PlatformUnavailable(f"Slack answered {error or f'HTTP {status}'}") from exc
        if error in UNDELIVERABLE:
            raise Undeliverable(error) from exc
        raise
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
        raise PlatformUnavailable(f"no answer from Slack: {type(exc).__name__}") from exc


class SlackMessenger:
    """Delivers Outbound messages with the Web API; raises when Slack refused.

    A message longer than Slack takes in one is sent as several, in order
    (`translate.payloads`); each carries its index ("part" of "parts") in its metadata.
    Exactly once for the outbox: `delivered` finds the parts already in the conversation
    after a crash, and a message is delivered once its last part is there (parts go out
    one after the other, so all before it are too); when only the first parts are, the
    next `send` of that message goes on after them. A send that failed midway (a rate
    limit on the fifth of twelve parts) also goes on where it stopped when it is tried
    again in this process, ephemeral messages and files included, which cannot be looked
    up."""

    platform = translate.PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._dm_channels: dict[str, str] = {}
        self._sent_parts: dict[int, int] = {}  # outbox id -> parts known to be in Slack

    async def _dm_channel(self, user: str) -> str:
        if user not in self._dm_channels:
            opened = await self.client.conversations_open(users=user)
            self._dm_channels[user] = str(opened["channel"]["id"])
        return self._dm_channels[user]

    async def send(self, message: Outbound) -> str | None:
        """Send one message (in parts when long); returns the ts of its last part (None
        for an ephemeral message or a file). Raises `Undeliverable` or
        `PlatformUnavailable` for Slack's refusals (see `_classified`)."""
        posts = translate.payloads(message)
        key = message.outbox_id
        done = min(self._sent_parts.pop(key, 0), len(posts) - 1) if key is not None else 0
        ts: str | None = None
        try:
            with _classified():
                for index in range(done, len(posts)):
                    ts = await self._post(message, posts[index], index, len(posts))
                    done = index + 1
        except BaseException:
            if key is not None and done:
                self._sent_parts[key] = done  # a retry goes on from there
            raise
        return ts

    async def _post(
        self, message: Outbound, post: dict[str, Any], index: int, count: int
    ) -> str | None:
        """Send one part of a message; the file, if any, goes with its last part."""
        if message.file is None and message.delivery is Delivery.PRIVATE and message.channel:
            await self.client.chat_postEphemeral(
                channel=message.channel,
                user=translate.user_of(message.to),
                text=post["text"],
                blocks=post["blocks"],
            )
            return None
        channel = await self._channel_of(message)  # a private file goes to the DM
        if message.file is not None and index == count - 1:
            await self.client.files_upload_v2(
                channel=channel,
                content=message.file.content,
                filename=message.file.filename,
                initial_comment=post["text"],
            )
            return None
        # Tagged with what it is about and its outbox id, so `delivered` can find it after
        # a crash and tools can tell messages apart without reading their wording.
        payload: dict[str, Any] = {"topic": message.topic}
        if message.subject is not None:
            payload["subject"] = message.subject
        if message.outbox_id is not None:
            payload["outbox_id"] = message.outbox_id
        if count > 1:
            payload["part"], payload["parts"] = index, count
        response = await self.client.chat_postMessage(
            channel=channel,
            text=post["text"],
            blocks=post["blocks"],
            metadata={"event_type": OUTBOX_EVENT, "event_payload": payload},
        )
        return str(response.get("ts") or "") or None

    async def delivered(self, message: Outbound) -> str | None:
        """The ts of this outbox message's last part if it is already in its conversation
        (looked up among the latest messages there by its metadata), else None; when
        only its first parts are there, the next `send` sends the rest. Ephemeral
        messages and files leave nothing to find, so they are sent again.

        A lookup Slack refuses for good (`missing_scope` when the app was installed
        without the history scope of that kind of conversation, `not_in_channel`,
        `channel_not_found`) answers None, with a warning: the message is sent again,
        and that send says whether it can be delivered at all. Sending again may repeat
        a message that did arrive before a crash, but a repeated notice is better than a
        lost one, and with the manifest's history scopes it is rare (a message pushed out
        of the latest HISTORY_LOOKBACK by then)."""
        if message.outbox_id is None or message.file is not None:
            return None
        if message.delivery is Delivery.PRIVATE and message.channel:
            return None
        count = len(translate.payloads(message))
        try:
            with _classified():
                history = await self.client.conversations_history(
                    channel=await self._channel_of(message),
                    limit=HISTORY_LOOKBACK,
                    include_all_metadata=True,
                )
        except Undeliverable as blind:
            cause = blind.__cause__
            needed = _answer(cause).get("needed") if isinstance(cause, SlackApiError) else None
            log.warning(
                "could not look up whether outbox message %s arrived (Slack: %s%s); "
                "sending it again",
                message.outbox_id,
                blind.reason,
                f", needs {needed}" if needed else "",
            )
            return None
        found: dict[int, str] = {}
        for seen in history.get("messages") or []:
            metadata = seen.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") != OUTBOX_EVENT or not seen.get("ts"):
                continue
            if str(payload.get("outbox_id")) != str(message.outbox_id):
                continue
            part = payload.get("part", 0)
            if isinstance(part, int) and 0 <= part < count:
                found[part] = str(seen["ts"])
        if count - 1 in found:
            self._sent_parts.pop(message.outbox_id, None)
            return found[count - 1]
        if found:
            known = self._sent_parts.get(message.outbox_id, 0)
            self._sent_parts[message.outbox_id] = max(known, max(found) + 1)
        return None

    async def _channel_of(self, message: Outbound) -> str:
        if message.delivery is Delivery.CHANNEL:
            return message.to
        return await self._dm_channel(translate.user_of(message.to))


def make_client(
    token: str, base_url: str | None, session: ClientSession | None = None
) -> AsyncWebClient:
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    client = AsyncWebClient(token=token, session=session, **kwargs)
    # 429s wait for Retry-After; dropped connections are tried again.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=2))
    return client


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body however many TCP writes it arrives in, or None when it is larger
    than MAX_BODY (said by its Content-Length, or found while reading)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):  # b"" only at the end
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class SlackAdapter:
    """Wires one Bolt app to the core. Create it inside the running event loop."""

    _socket: Any = None  # the Socket Mode handler, once connected
    _listening = False  # HTTP mode: the events route is served

    def __init__(
        self,
        bot: Bot,
        *,
        token: str,
        signing_secret: str | None,
        api_url: str | None = None,
        session: ClientSession | None = None,
        team_ids: Collection[str] = (),
    ) -> None:
        self.bot = bot
        # The workspaces served (SLACK_TEAM_ID); empty: any that signs with our secret.
        self.team_ids = frozenset(team_ids)
        self._verifying = signing_secret is not None
        self.client = make_client(token, api_url, session)
        self.app = AsyncApp(
            signing_secret=signing_secret or "socket-mode",
            client=self.client,
            request_verification_enabled=signing_secret is not None,
            # Bolt acks events on its own when a listener starts; only with this does the
            # response wait for the listener, which returns once the work is committed.
            process_before_response=True,
        )
        self.messenger = SlackMessenger(self.client)
        bot.relay.register(self.messenger)
        self._names: dict[str, str] = {}
        self._locales: dict[str, str | None] = {}  # a person's Slack locale ("fr-FR")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._register()

    # -- helpers -------------------------------------------------------------------

    async def _person(self, user_id: str, fallback: str = "") -> tuple[str, str | None]:
        """A person's display name and Slack locale ("fr-FR", None when Slack does not
        say), asked once per process from Slack when the person is first seen (first
        contact names the member; the locale is the language the bot speaks to someone
        who chose none). A failed lookup never holds the event up: the name falls back,
        the locale is None."""
        if user_id not in self._names:
            name, locale = fallback, None
            try:
                info = await self.client.users_info(user=user_id, include_locale=True)
                user = info.get("user") or {}
                profile = user.get("profile") or {}
                name = (
                    profile.get("display_name")
                    or user.get("real_name")
                    or user.get("name")
                    or fallback
                )
                found = user.get("locale")
                locale = found if isinstance(found, str) and found else None
            except SlackApiError as exc:
                log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("users.info failed for %s: %s", user_id, type(exc).__name__)
            self._names[user_id] = str(name or user_id)
            self._locales[user_id] = locale
        return self._names[user_id], self._locales.get(user_id)

    async def _run(
        self, inbound: Inbound, ack: Callable[..., Awaitable[None]], in_ack: bool = False
    ) -> None:
        """Hand the event to the core and return (so Bolt answers Slack) once its outcome is
        committed; sending the answers goes on in the background. With `in_ack` (a slash
        command) answers that change nothing are the ack's body, shown to the caller."""
        acked = False

        async def acknowledge(answers: list[Outbound]) -> None:
            nonlocal acked
            reply = translate.ack_reply(answers)
            if reply is None and answers:
                # Too big for one response: sent as they are (nothing to lose on a crash).
                self.later(self.bot.relay.deliver(answers))
            await (ack(**reply) if reply is not None else ack())
            acked = True

        try:
            await self.bot.handle(
                inbound, committed=acknowledge, answer_in_ack=in_ack, later=self.later
            )
        except Exception:
            if not acked:
                raise  # Bot.handle does not raise; if it ever did, Bolt answers 500
            log.exception("failed after the event was acknowledged")

    def later(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work after the response, kept until done so a shutdown can wait for it."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, seconds: float = 20.0) -> None:
        """Wait for work still running after its response (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)

    def _register(self) -> None:
        app = self.app

        async def served_workspaces(
            body: dict[str, Any],
            context: AsyncBoltContext,
            next_: Callable[[], Awaitable[Any]],
        ) -> BoltResponse | None:
            """With SLACK_TEAM_ID, a request from another workspace is answered 200 (so
            Slack does not retry it) and goes no further: no community, member or event
            is made of it. A slash command is told why."""
            teams = {translate.team_of(body), context.team_id or translate.team_of(body)}
            if teams <= self.team_ids:
                await next_()
                return None
            log.warning("refused a Slack request from workspace %s", ", ".join(sorted(teams)))
            if "command" in body:
                return BoltResponse(
                    status=200, body={"response_type": "ephemeral", "text": NOT_SERVED}
                )
            return BoltResponse(status=200, body="")

        if self.team_ids:  # a middleware costs every request its call: only when needed
            app.middleware(served_workspaces)

        @app.command("/sif")
        async def on_command(ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
            name, locale = await self._person(
                str(body.get("user_id", "")), str(body.get("user_name", ""))
            )
            await self._run(translate.from_command(body, name, locale), ack, in_ack=True)

        @app.event("message")
        async def on_message(
            ack: Callable[..., Awaitable[None]], body: dict[str, Any], event: dict[str, Any]
        ) -> None:
            if event.get("channel_type") != "im" or not translate.is_human_message(event):
                await ack()
                return
            team = str(body.get("team_id", ""))
            name, locale = await self._person(str(event.get("user", "")))
            inbound = translate.from_message(event, team, body.get("event_id"), name, locale)
            await self._run(inbound, ack)

        @app.event("app_mention")
        async def on_mention(
            ack: Callable[..., Awaitable[None]],
            body: dict[str, Any],
            event: dict[str, Any],
            context: AsyncBoltContext,
        ) -> None:
            if not translate.is_human_message(event):
                await ack()
                return
            team = str(body.get("team_id", ""))
            name, locale = await self._person(str(event.get("user", "")))
            inbound = translate.from_mention(
                event, team, body.get("event_id"), context.bot_user_id, name, locale
            )
            await self._run(inbound, ack)

        @app.event("app_home_opened")
        async def on_home(
            ack: Callable[..., Awaitable[None]], body: dict[str, Any], event: dict[str, Any]
        ) -> None:
            await ack()
            if event.get("tab", "home") != "home":
                return
            team = str(body.get("team_id", ""))
            self.later(self.publish_home(team, str(event.get("user", ""))))

        @app.action(re.compile(r"^sif_action_\d+$"))
        async def on_action(
            ack: Callable[..., Awaitable[None]], body: dict[str, Any], action: dict[str, Any]
        ) -> None:
            user = body.get("user") or {}
            name, locale = await self._person(str(user.get("id", "")))
            inbound = translate.from_action(body, action, name, locale)
            await self._run(inbound, ack)
            team = inbound.community_key.split(":", 1)[1]
            self.later(self._after_click(body, action, team, str(user.get("id", ""))))

        # Any other event is acknowledged, so Slack does not retry it.
        @app.event(re.compile(r"^(?!(message|app_mention|app_home_opened)$)"))
        async def on_other_event(ack: Callable[..., Awaitable[None]]) -> None:
            await ack()

    async def _after_click(
        self, body: dict[str, Any], action: dict[str, Any], team: str, user_id: str
    ) -> None:
        await self._close_buttons(body, action)
        await self.publish_home(team, user_id)

    async def _close_buttons(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        if not channel or not message.get("ts"):
            return  # an ephemeral message: Slack keeps no copy we could update
        # The adapter does not know a language chosen with `language`: the person's Slack
        # locale is the best it has (the core speaks it too to whoever chose none).
        user_id = str((body.get("user") or {}).get("id", ""))
        with speaking(self._locales.get(user_id)):
            chosen = _("Done: {action}").format(action=action.get("value", ""))
        try:
            await self.client.chat_update(
                channel=channel,
                ts=message["ts"],
                text=message.get("text") or chosen,
                blocks=translate.closed_blocks(message.get("blocks") or [], chosen),
            )
        except SlackApiError as exc:
            log.warning("could not close the buttons: %s", exc.response.get("error"))

    async def publish_home(self, team: str, user_id: str) -> None:
        parts = await self.bot.home(translate.PLATFORM, translate.identity(team, user_id))
        view = {
            "type": "home",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "sif-bot"}},
                *translate.blocks(
                    Outbound(translate.PLATFORM, Delivery.DM, user_id, "home", parts)
                ),
            ],
        }
        try:
            await self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))

    # -- HTTP mode -----------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: guard the body, then let Bolt verify and dispatch."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if self._verifying and not (timestamp.isascii() and timestamp.isdigit()):
            # Bolt's verifier would raise on it and answer 500, which Slack retries.
            log.warning("rejected a Slack request without a numeric timestamp")
            return web.Response(status=401, text="invalid request timestamp")
        raw = await _read_body(request)
        if raw is None:
            return web.Response(status=413, text="request too large")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("rejected a Slack request whose body is not UTF-8")
            return web.Response(status=400, text="body is not UTF-8")
        parsed = _parse(body, request.content_type)
        if parsed is None:
            log.warning("rejected a malformed Slack request body (%d bytes)", len(raw))
            return web.Response(status=400, text="malformed body")
        if "command" in parsed and "payload" not in parsed:
            # slack-bolt 1.30 misreads a slash command whose text contains "payload": it
            # gets the body parsed here (and so does not parse it twice). The signature is
            # still checked by Bolt, on the raw body.
            bolt_request = AsyncBoltRequest(
                body="", query=request.query_string, headers=dict(request.headers)
            )
            bolt_request.raw_body = body
            bolt_request.body = parsed
            bolt_request.context = build_async_context(AsyncBoltContext({}), parsed)
        else:
            bolt_request = AsyncBoltRequest(
                body=body, query=request.query_string, headers=dict(request.headers)
            )
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    def web_app(self, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
        application = web.Application(client_max_size=MAX_BODY * 2)
        self._listening = True
        application.add_routes([web.post("/slack/events", self.handle_http), *(extra_routes or [])])
        return application

    async def socket_mode(self, app_token: str) -> Any:
        """Connect over Socket Mode (returns the handler; `await handler.close_async()`)."""
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        self._socket = handler
        log.info("connected to Slack in Socket Mode")
        return handler

    async def status(self) -> Status:
        """For /healthz: Socket Mode connected, or HTTP mode listening for events."""
        if self._socket is not None:
            if await self._socket.client.is_connected():
                return Status(True, "connected (Socket Mode)")
            return Status(False, "Socket Mode disconnected")
        if self._listening:
            return Status(True, "listening (HTTP)")
        return Status(False, "not started")


def _parse(body: str, content_type: str) -> dict[str, Any] | None:
    """The body as Slack sends it (JSON or a form, maybe with a JSON `payload`), or None."""
    if not body:
        return None
    try:
        if content_type == "application/json" or body.lstrip().startswith("{"):
            value = json.loads(body)
            return value if isinstance(value, dict) else None
        form = dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True))
        if "payload" in form:
            payload = json.loads(form["payload"])
            return {"payload": payload} if isinstance(payload, dict) else None
        return form or None
    except (ValueError, TypeError):
        return None
