"""Proves FakeSlack and the signing helpers against the real slack-sdk.

If these pass, adapter tests can trust that what works against the fake is what slack-sdk
does against Slack: same client code, same response shapes, same retry and Socket Mode logic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.adapters.slack.fake_slack import (
    FakeSlack,
    app_home_opened_event,
    app_mention_event,
    block_actions_body,
    event_body,
    message_im_event,
    post_signed,
    sign,
    slash_command_body,
    slash_command_payload,
    socket_envelope,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.base_url)


# ------------------------------------------------------------------------------- Web API


async def test_auth_test_answers_as_the_bot(slack: FakeSlack, client: AsyncWebClient) -> None:
    resp = await client.auth_test()

    assert resp["ok"] is True
    assert (resp["user"], resp["user_id"], resp["bot_id"], resp["team_id"]) == (
        "sif",
        "UBOT",
        "BBOT",
        "T0001",
    )
    [call] = slack.calls_to("auth.test")
    assert call.token == "xoxb-test"


async def test_open_dm_then_post_message(slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.conversations_open(users="U0002")
    again = await client.conversations_open(users=["U0002"])
    channel = opened["channel"]["id"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = await client.chat_postMessage(channel=channel, text="hi", blocks=blocks)
    second = await client.chat_postMessage(channel=channel, text="again")

    assert channel == "D0002" == again["channel"]["id"] == FakeSlack.dm_channel("U0002")
    assert first["channel"] == channel
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == blocks
    assert first["message"]["bot_id"] == "BBOT"
    [call, _] = await slack.wait_for("chat.postMessage", count=2)
    assert call.args["channel"] == "D0002"
    assert call.args["blocks"] == blocks  # sent as JSON by the SDK, a list either way
    assert call.token == "xoxb-test"


async def test_ephemeral_update_and_views_publish(slack: FakeSlack, client: AsyncWebClient) -> None:
    eph = await client.chat_postEphemeral(channel="C0001", user="U0002", text="only you")
    upd = await client.chat_update(channel="D0002", ts="1700000000.000100", text="edited")
    view = {"type": "home", "blocks": [{"type": "divider"}]}
    pub1 = await client.views_publish(user_id="U0002", view=view)
    # Also a view passed as a JSON string, which the SDK forwards untouched.
    pub2 = await client.api_call(
        "views.publish", json={"user_id": "U0002", "view": json.dumps(view)}
    )

    assert eph["message_ts"]
    assert (upd["channel"], upd["ts"]) == ("D0002", "1700000000.000100")
    assert pub1["view"]["id"] == pub2["view"]["id"]  # the Home view is re-published in place
    assert pub1["view"]["blocks"] == [{"type": "divider"}]
    assert slack.home_views["U0002"]["type"] == "home"
    assert [c.args["view"] for c in slack.calls_to("views.publish")] == [view, view]
    assert slack.calls_to("chat.postEphemeral")[0].args["user"] == "U0002"


async def test_users_info_default_and_configured(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.users["U0003"] = {"name": "bo", "real_name": "Bo Berg", "tz": "Europe/Berlin"}

    default = (await client.users_info(user="U0002"))["user"]
    configured = (await client.users_info(user="U0003"))["user"]

    assert default["real_name"] == default["profile"]["display_name"] == "name-U0002"
    assert configured["profile"]["display_name"] == "bo"
    assert configured["real_name"] == "Bo Berg"
    assert configured["tz"] == "Europe/Berlin"
    assert configured["tz_offset"] in (3600, 7200)
    assert slack.calls_to("users.info")[0].args == {"user": "U0002"}  # a GET: query params


async def test_files_upload_v2_stores_the_bytes(slack: FakeSlack, client: AsyncWebClient) -> None:
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    resp = await client.files_upload_v2(
        channel="D0002", filename="chart.png", content=content, title="Chart"
    )

    assert slack.uploads == [("chart.png", content)]
    assert resp["file"]["name"] == "chart.png"
    assert resp["file"]["size"] == len(content)
    [complete] = slack.calls_to("files.completeUploadExternal")
    assert complete.args["channel_id"] == "D0002"
    assert complete.args["files"][0]["id"] == resp["file"]["id"]
    assert slack.calls_to("files.getUploadURLExternal")[0].args["length"] == str(len(content))


async def test_other_methods_answer_ok_and_are_recorded(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    resp = await client.reactions_add(channel="C0001", timestamp="1.2", name="tada")

    assert resp["ok"] is True
    assert slack.calls_to("reactions.add")[0].args["name"] == "tada"


async def test_wait_for_reports_what_it_saw(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0001", text="one")

    with pytest.raises(AssertionError, match=r"(?s)got 0.*chat\.postMessage.*one"):
        await slack.wait_for(
            "chat.postMessage", timeout=0.2, where=lambda c: c.args.get("text") == "two"
        )


async def test_wait_for_wakes_when_the_call_lands(slack: FakeSlack, client: AsyncWebClient) -> None:
    waiter = asyncio.create_task(slack.wait_for("chat.postMessage", timeout=2))
    await asyncio.sleep(0.05)
    assert not waiter.done()

    await client.chat_postMessage(channel="C0001", text="late")

    [call] = await waiter
    assert call.args["text"] == "late"


# --------------------------------------------------------------------------- rate limits


async def test_429_is_retried_with_the_retry_handler(slack: FakeSlack) -> None:
    client = AsyncWebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.fail_next("chat.postMessage", retry_after=0)

    resp = await client.chat_postMessage(channel="C0001", text="eventually")

    assert resp["ok"] is True
    assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == ["eventually"]
    assert len(slack.rejected) == 1


async def test_429_without_retry_handler_raises(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", retry_after=7)

    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0001", text="dropped")

    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] == "7"
    assert slack.calls_to("chat.postMessage") == []
    # The failure is used up: the next call goes through.
    await client.chat_postMessage(channel="C0001", text="ok now")
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_fail_next_with_an_api_error(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", status=200, error="channel_not_found", times=2)

    for _ in range(2):
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_postMessage(channel="C9999", text="x")
    await client.chat_postMessage(channel="C0001", text="x")

    assert len(slack.rejected) == 2
    assert len(slack.calls) == 1


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "blocks": [_section("x")] * 51}, "invalid_blocks"),
        ({"text": "x", "blocks": [_section("x" * 3001)]}, "invalid_blocks"),
        ({"text": "x", "blocks": [_section("x" * 2500)] * 5}, "msg_blocks_too_long"),
    ],
)
async def test_a_message_over_slacks_limits_is_refused_whole(
    slack: FakeSlack, client: AsyncWebClient, message: dict[str, Any], error: str
) -> None:
    for method in (client.chat_postMessage, client.chat_postEphemeral):
        with pytest.raises(SlackApiError, match=error):
            await method(channel="C0001", user="U0002", **message)
    assert slack.calls == [] and slack.history == {}
    # at the limits it is taken
    await client.chat_postMessage(channel="C0001", text="x" * 40_000)
    await client.chat_postMessage(channel="C0001", text="x", blocks=[_section("x" * 3000)] * 4)
    await client.chat_postMessage(channel="C0001", text="x", blocks=[_section("x")] * 50)


async def test_history_needs_the_scope_of_its_kind_of_conversation(slack: FakeSlack) -> None:
    slack.scopes = {"chat:write", "im:history"}
    slack.private_channels.add("C0PRIVATE")
    client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
    assert (await client.conversations_history(channel="D0002"))["ok"]
    for channel, needed in [
        ("C0001", "channels:history"),
        ("C0PRIVATE", "groups:history"),
        ("G0001", "groups:history"),
    ]:
        with pytest.raises(SlackApiError, match="missing_scope") as refused:
            await client.conversations_history(channel=channel)
        assert refused.value.response["needed"] == needed


async def test_a_failure_can_wait_for_calls_and_answer_a_page(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", status=502, error="", after=1, body="<html>502</html>")
    await client.chat_postMessage(channel="C0001", text="first")
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C0001", text="second")
    assert failed.value.response.status_code == 502 and failed.value.response.data == {}
    await client.chat_postMessage(channel="C0001", text="third")
    assert [c.args["text"] for c in slack.calls] == ["first", "third"]


# ------------------------------------------------------------------------------- signing


def _verify(body: str, headers: dict[str, str]) -> bool:
    return SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_signatures_verify_with_slack_sdk() -> None:
    bodies = [
        slash_command_body(text="offer design help"),
        event_body(message_im_event(text="hello")),
        event_body(app_mention_event(text="<@UBOT> hi")),
        event_body(app_home_opened_event()),
        block_actions_body(value="accept:42"),
    ]
    for body in bodies:
        headers = sign(SECRET, body)
        assert _verify(body, headers)
        assert _verify(body, sign(SECRET, body.encode()))
        assert not _verify(body + "x", headers)
        assert not _verify(body, sign("other-secret", body))


def test_old_timestamps_are_rejected() -> None:
    body = slash_command_body(text="hi")
    assert not _verify(body, sign(SECRET, body, timestamp=1_600_000_000))


def test_payload_shapes() -> None:
    form = {k: v[0] for k, v in parse_qs(slash_command_body(text="a b&c=d")).items()}
    assert form["text"] == "a b&c=d"
    assert form["command"] == "/sif"
    assert form["response_url"].startswith("http://127.0.0.1:9/")  # never the real Slack

    envelope = json.loads(event_body(message_im_event(text="hi")))
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["event"]["channel_type"] == "im"
    assert envelope["event"]["ts"] == envelope["event"]["event_ts"]
    assert json.loads(event_body({"type": "x"}))["event_id"] != envelope["event_id"]

    home = app_home_opened_event(user="U0007")
    assert (home["channel"], home["tab"]) == ("D0007", "home")

    [payload_json] = parse_qs(block_actions_body(value="v1"))["payload"]
    payload = json.loads(payload_json)
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["value"] == "v1"
    assert payload["container"]["message_ts"] == payload["message"]["ts"]
    assert payload["channel"]["id"] == payload["container"]["channel_id"] == "D0002"


async def test_post_signed_delivers_a_verifiable_request() -> None:
    received: list[tuple[str, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append((await request.text(), dict(request.headers)))
        return web.Response(text="acked")

    app = web.Application()
    app.router.add_post("/slack/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        body = slash_command_body(text="hi")
        status, text = await post_signed(
            url,
            body,
            SECRET,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Slack-Retry-Num": "1"},
        )
        async with aiohttp.ClientSession() as session:
            status2, _ = await post_signed(
                url, body, "wrong", content_type="application/json", session=session
            )
    finally:
        await runner.cleanup()

    assert (status, text, status2) == (200, "acked", 200)
    got_body, got_headers = received[0]
    assert got_body == body
    assert got_headers["X-Slack-Retry-Num"] == "1"
    assert _verify(got_body, got_headers)
    assert not _verify(*received[1])


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_client_connects_and_acks(slack: FakeSlack) -> None:
    client = SocketModeClient(
        app_token="xapp-test", web_client=AsyncWebClient(base_url=slack.base_url)
    )
    seen: list[SocketModeRequest] = []

    async def listener(sm: Any, req: SocketModeRequest) -> None:
        seen.append(req)
        await sm.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "got it"})
        )

    client.socket_mode_request_listeners.append(listener)
    try:
        await client.connect()  # type: ignore[no-untyped-call]  # untyped in slack-sdk
        envelope = socket_envelope("slash_commands", slash_command_payload(text="hi"))
        envelope_id = await slack.socket_send(envelope)
        ack = await slack.wait_for_ack(envelope_id)
    finally:
        await client.close()  # type: ignore[no-untyped-call]

    assert envelope_id == envelope["envelope_id"]
    assert ack == {"envelope_id": envelope_id, "payload": {"text": "got it"}}
    assert seen[0].type == "slash_commands"
    assert seen[0].payload["text"] == "hi"
    [open_call] = slack.calls_to("apps.connections.open")
    assert open_call.token == "xapp-test"


async def test_socket_mode_reconnects_after_disconnect(slack: FakeSlack) -> None:
    client = SocketModeClient(
        app_token="xapp-test", web_client=AsyncWebClient(base_url=slack.base_url)
    )

    async def listener(sm: Any, req: SocketModeRequest) -> None:
        await sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client.socket_mode_request_listeners.append(listener)
    try:
        await client.connect()  # type: ignore[no-untyped-call]  # untyped in slack-sdk
        await slack.wait_for_socket()
        await slack.socket_disconnect()
        await slack.wait_for("apps.connections.open", count=2)
        envelope_id = await slack.socket_send(
            socket_envelope("events_api", json.loads(event_body(message_im_event(text="hi"))))
        )
        ack = await slack.wait_for_ack(envelope_id)
    finally:
        await client.close()  # type: ignore[no-untyped-call]

    assert ack == {"envelope_id": envelope_id}
