"""The Slack door end to end: the real Bolt app over HTTP on 127.0.0.1, correctly signed
requests, and a local fake Slack Web API that records every call."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.slack.app import SlackAdapter
from bot.app.service import Bot
from bot.bootstrap import assemble
from bot.domain.ledger import AccountKey
from bot.domain.records import RequestStatus
from store.db import create_schema, make_engine, make_sessionmaker
from store.models import OutboxRow
from store.uow import SqlUnitOfWorkFactory
from tests.adapters.slack.fake_slack import (
    FakeSlack,
    app_home_opened_event,
    block_actions_body,
    event_body,
    message_im_event,
    post_signed,
    slash_command_body,
    slash_command_payload,
    socket_envelope,
)
from tests.conftest import make_settings
from tests.fakes import FakeClock

SECRET = "test-signing-secret"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
STAFF_CHANNEL = "CSTAFF"


@dataclass
class Env:
    slack: FakeSlack
    bot: Bot
    adapter: SlackAdapter
    url: str

    async def command(self, text: str, **kwargs: Any) -> int:
        status, self.response = await post_signed(
            self.url, slash_command_body(text=text, **kwargs), SECRET, content_type=FORM
        )
        return status

    response: str = ""  # the body of the last slash command's response

    def answer(self) -> dict[str, Any]:
        """The last slash command's answer carried in its response (shown to the caller)."""
        assert self.response, "the last command was not answered in its response"
        reply: dict[str, Any] = json.loads(self.response)
        assert reply["response_type"] == "ephemeral"
        return reply

    async def event(self, event: dict[str, Any], **kwargs: Any) -> int:
        status, _ = await post_signed(
            self.url,
            event_body(event, **kwargs),
            SECRET,
            content_type=JSON,
            headers=kwargs.pop("headers", None),
        )
        return status


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    url = f"sqlite+aiosqlite:///{tmp_path}/slack.db"
    engine = make_engine(url)
    await create_schema(engine)
    uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    settings = make_settings(url, sif_admins="slack:T0001:USTAFF", sif_staff_channel=STAFF_CHANNEL)
    clock = FakeClock()
    bot = assemble(settings, uow, clock).bot
    async with FakeSlack() as slack:
        slack.users["U0002"] = {"name": "ann", "real_name": "Ann Peeters"}
        slack.users["U0003"] = {"name": "bob", "real_name": "Bob Claes"}
        slack.users["USTAFF"] = {"name": "staff", "real_name": "Sam Staff"}
        adapter = SlackAdapter(
            bot, token="xoxb-test", signing_secret=SECRET, api_url=slack.base_url
        )
        runner = web.AppRunner(adapter.web_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield Env(slack, bot, adapter, f"http://127.0.0.1:{port}/slack/events")
        await runner.cleanup()
    await engine.dispose()


def texts(calls: list[Any]) -> list[str]:
    return [str(c.args.get("text", "")) for c in calls]


async def test_slash_balance_is_answered_privately(env: Env) -> None:
    # First contact creates the member: committed, so the answer comes from the outbox.
    assert await env.command("balance") == 200
    assert env.response == ""
    (call,) = await env.slack.wait_for("chat.postEphemeral")
    assert call.args["channel"] == "C0001" and call.args["user"] == "U0002"
    assert call.args["text"].startswith("Your balance: 0.00 SIF")
    assert call.args["blocks"][0]["type"] == "section"
    # Afterwards an answer that changes nothing is the response itself: no Web API call.
    assert await env.command("balance") == 200
    answer = env.answer()
    assert answer["text"].startswith("Your balance: 0.00 SIF")
    assert answer["blocks"][0]["type"] == "section"
    await asyncio.sleep(0.2)
    assert len(env.slack.calls_to("chat.postEphemeral")) == 1
    assert env.slack.calls_to("chat.postMessage") == []


async def test_a_read_only_command_records_activity_at_most_every_ten_minutes(env: Env) -> None:
    assert await env.command("balance") == 200
    await env.slack.wait_for("chat.postEphemeral")
    env.bot.clock.advance(minutes=9)  # type: ignore[attr-defined]
    assert await env.command("balance") == 200
    assert env.answer()["text"].startswith("Your balance")
    env.bot.clock.advance(minutes=2)  # type: ignore[attr-defined]
    assert await env.command("balance") == 200
    assert env.response == ""  # recorded the member's activity: through the outbox
    await env.slack.wait_for("chat.postEphemeral", count=2)
    async with env.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("slack", "T0001:U0002")
        assert ann is not None and ann.last_active is not None
        assert ann.last_active.replace(tzinfo=None) == env.bot.clock.now().replace(tzinfo=None)


async def test_a_command_that_changes_something_is_answered_from_the_outbox(env: Env) -> None:
    assert await env.command("balance") == 200
    await env.slack.wait_for("chat.postEphemeral")
    assert await env.command("availability 3") == 200
    assert env.response == ""
    await env.slack.wait_for("chat.postEphemeral", count=2)


async def test_slash_command_text_may_contain_the_word_payload(env: Env) -> None:
    assert await env.command("help payload") == 200
    assert "There is no command 'payload'" in env.answer()["text"]


async def test_intake_moves_to_the_dm_and_answers_flow_through_message_im(env: Env) -> None:
    slack = env.slack
    assert await env.command("intake") == 200
    await slack.wait_for("chat.postEphemeral", where=lambda c: "direct message" in c.args["text"])
    first = await slack.wait_for("chat.postMessage", where=lambda c: "(1/12)" in c.args["text"])
    dm = first[0].args["channel"]
    assert dm == slack.dm_channel("U0002")
    answers = [
        "Repair café network",
        "Volunteer-run repair cafés in every neighbourhood.",
        "Too much waste",
        "Neighbours meet",
        "grants",
        "don't know",
        "idea",
        "volunteers",
        "civil society",
        "finance",
        "skip",
        "English",
        "confirm",
    ]
    for answer in answers:
        before = len(slack.calls_to("chat.postMessage"))
        assert await env.event(message_im_event(text=answer, channel=dm)) == 200
        await slack.wait_for("chat.postMessage", count=before + 1)
    await slack.wait_for(
        "chat.postMessage", where=lambda c: "Your idea is saved as I-1" in c.args["text"]
    )
    staff = await slack.wait_for(
        "chat.postMessage", where=lambda c: c.args["channel"] == STAFF_CHANNEL
    )
    assert staff[0].args["text"].startswith("New idea I-1 from ann: Repair café network")
    stage = next(c for c in slack.calls_to("chat.postMessage") if "(7/12)" in c.args["text"])
    buttons = next(b for b in stage.args["blocks"] if b["type"] == "actions")["elements"]
    assert [b["value"] for b in buttons] == ["idea", "prototype", "pilot", "running"]


async def test_an_accept_button_assigns_the_request_and_closes_the_message(env: Env) -> None:
    slack, bot = env.slack, env.bot
    await env.command("expertise add finance:3", user_id="U0003", user_name="bob")
    await env.command("balance")  # ann says hello first
    await slack.wait_for("chat.postEphemeral", count=2)
    await env.command("grant <@U0002> 5 welcome", user_id="USTAFF", user_name="staff")
    await slack.wait_for("chat.postEphemeral", count=3)
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("slack", "T0001:U0002")
        assert ann is not None
        idea = {"title": "Repair café", "help": ["finance"]}
        await uow.ideas.create(ann.community, ann.id, "Repair café", idea, bot.clock.now())
        await uow.commit()
    await env.command("request I-1 review", channel_id="D0002", channel_name="directmessage")
    offer = await slack.wait_for(
        "chat.postMessage", where=lambda c: c.args["text"].startswith("Can you help? R-1")
    )
    assert offer[0].args["channel"] == slack.dm_channel("U0003")
    # what the message is about travels in its metadata, for tools that must not read wording
    metadata = offer[0].args["metadata"]
    assert metadata["event_type"] == "sif_outbox"
    assert metadata["event_payload"]["topic"] == "offer"
    assert metadata["event_payload"]["subject"] == "R-1"
    assert isinstance(metadata["event_payload"]["outbox_id"], int)
    actions = next(b for b in offer[0].args["blocks"] if b["type"] == "actions")["elements"]
    assert [a["value"] for a in actions] == ["accept R-1", "decline R-1"]
    status, _ = await post_signed(
        env.url,
        block_actions_body(
            value="accept R-1",
            user_id="U0003",
            user_name="bob",
            channel_id=slack.dm_channel("U0003"),
            message_ts="1700000000.000200",
        ),
        SECRET,
        content_type=FORM,
    )
    assert status == 200
    (update,) = await slack.wait_for("chat.update")
    assert all(b["type"] != "actions" for b in update.args["blocks"])
    assert "Done: accept R-1" in str(update.args["blocks"][-1])
    async with bot.uow_factory() as uow:
        request = await uow.requests.by_number(ann.community, 1)
        assert request is not None and request.status is RequestStatus.ASSIGNED
        assert await uow.ledger.balance(ann.community, AccountKey.of(ann.id)) == 300
    await slack.wait_for("views.publish")  # the home tab is refreshed after the click


async def test_staff_balances_are_posted_in_the_channel(env: Env) -> None:
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral")
    await env.command("balances", user_id="USTAFF", user_name="staff", channel_id=STAFF_CHANNEL)
    (post,) = await env.slack.wait_for(
        "chat.postMessage", where=lambda c: c.args["channel"] == STAFF_CHANNEL
    )
    assert post.args["text"].startswith("Balances, lowest first (2 members")
    assert "```member" in post.args["blocks"][0]["text"]["text"]
    await env.command("balances", channel_id=STAFF_CHANNEL)  # ann is not staff
    assert "`balances` is for staff only" in env.answer()["text"]


async def test_forged_stale_and_malformed_requests_change_nothing(env: Env) -> None:
    body = slash_command_body(text="balance")
    status, _ = await post_signed(env.url, body, "wrong-secret", content_type=FORM)
    assert status == 401
    stale = int(time.time()) - 6 * 60
    status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, timestamp=stale)
    assert status == 401
    status, _ = await post_signed(env.url, "{not json", SECRET, content_type=JSON)
    assert status == 400
    status, _ = await post_signed(env.url, "payload=%7Bbroken", SECRET, content_type=FORM)
    assert status == 400
    await asyncio.sleep(0.3)
    assert env.slack.calls == []
    async with env.bot.uow_factory() as uow:
        assert await uow.members.by_identity("slack", "T0001:U0002") is None


async def test_a_retried_event_acts_once(env: Env) -> None:
    event = message_im_event(text="balance")
    body = event_body(event, event_id="Ev0001")
    for retry in ({}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}):
        status, _ = await post_signed(env.url, body, SECRET, content_type=JSON, headers=retry)
        assert status == 200
    await env.slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.5)
    assert len(env.slack.calls_to("chat.postMessage")) == 1


async def _interrupt_delivery(env: Env) -> int:
    """Staff grant ann 2 SIF; the DM to ann reaches Slack, then the process 'dies' before
    recording it: the outbox row is put back as unsent, tried once, its lease run out."""
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral")
    await env.command("grant <@U0002> 2 prize", user_id="USTAFF", user_name="staff")
    (dm,) = await env.slack.wait_for(
        "chat.postMessage", where=lambda c: "You received 2.00 SIF" in c.args["text"]
    )
    outbox_id = dm.args["metadata"]["event_payload"]["outbox_id"]
    for _ in range(100):  # the sender records it just after Slack answered
        async with env.bot.uow_factory() as uow:
            row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
            if row.sent_at is not None:
                break
        await asyncio.sleep(0.02)
    async with env.bot.uow_factory() as uow:
        row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
        posted = env.slack.history[env.slack.dm_channel("U0002")][-1]
        assert row.sent_at is not None and row.platform_ref == posted["ts"]
        row.sent_at, row.platform_ref = None, None
        row.claimed_until = env.bot.clock.now() - timedelta(seconds=1)
        await uow.commit()
    return int(outbox_id)


async def test_a_message_that_arrived_before_a_crash_is_not_sent_again(env: Env) -> None:
    outbox_id = await _interrupt_delivery(env)
    before = len(env.slack.calls_to("chat.postMessage"))
    assert await env.bot.relay.flush() == 1
    assert len(env.slack.calls_to("chat.postMessage")) == before  # found, not re-sent
    (lookup,) = env.slack.calls_to("conversations.history")
    assert lookup.args["channel"] == env.slack.dm_channel("U0002")
    async with env.bot.uow_factory() as uow:
        row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
        assert row.sent_at is not None and row.platform_ref
    assert await env.bot.relay.flush() == 0


async def test_a_message_that_did_not_arrive_before_a_crash_is_sent_once(env: Env) -> None:
    outbox_id = await _interrupt_delivery(env)
    env.slack.history[env.slack.dm_channel("U0002")].clear()  # it never got there
    before = len(env.slack.calls_to("chat.postMessage"))
    assert await env.bot.relay.flush() == 1
    again = env.slack.calls_to("chat.postMessage")[before:]
    assert [c.args["metadata"]["event_payload"]["outbox_id"] for c in again] == [outbox_id]
    assert await env.bot.relay.flush() == 0


async def test_a_message_held_by_a_live_sender_is_left_alone(env: Env) -> None:
    outbox_id = await _interrupt_delivery(env)
    async with env.bot.uow_factory() as uow:
        row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
        row.claimed_until = env.bot.clock.now() + timedelta(seconds=60)
        await uow.commit()
    assert await env.bot.relay.flush() == 0
    assert env.slack.calls_to("conversations.history") == []


async def test_a_429_is_retried_and_the_message_arrives_once(env: Env) -> None:
    env.slack.fail_next("chat.postEphemeral", status=429, retry_after=1)
    assert await env.command("balance") == 200
    calls = await env.slack.wait_for(
        "chat.postEphemeral", count=1, timeout=10, where=lambda c: "Your balance" in c.args["text"]
    )
    await asyncio.sleep(0.3)
    assert len(calls) == 1


async def test_app_home_shows_balance_and_ideas(env: Env) -> None:
    await env.command("balance")
    await env.slack.wait_for("chat.postEphemeral")
    assert await env.event(app_home_opened_event(user="U0002")) == 200
    (publish,) = await env.slack.wait_for("views.publish")
    assert publish.args["user_id"] == "U0002"
    assert "*Balance* 0.00 SIF" in str(publish.args["view"])


async def test_socket_mode_acks_a_slash_command(env: Env) -> None:
    handler = await env.adapter.socket_mode("xapp-test")
    try:
        await env.slack.wait_for_socket()
        envelope = socket_envelope("slash_commands", slash_command_payload(text="balance"))
        envelope_id = await env.slack.socket_send(envelope)
        ack = await env.slack.wait_for_ack(envelope_id)
        assert ack["envelope_id"] == envelope_id
        (call,) = await env.slack.wait_for("chat.postEphemeral")
        assert call.args["text"].startswith("Your balance: 0.00 SIF")
    finally:
        await handler.close_async()


async def test_an_export_is_uploaded_as_a_file(env: Env) -> None:
    await env.command("balance")
    await env.slack.wait_for("chat.postEphemeral")
    await env.command(
        "export members", user_id="USTAFF", user_name="staff", channel_id=STAFF_CHANNEL
    )
    await env.slack.wait_for("files.completeUploadExternal")
    (name, content) = env.slack.uploads[-1]
    assert name.startswith("sif-members-") and name.endswith(".csv")
    assert content.decode().startswith("member,name,role,identities")
    assert "T0001:U0002" in content.decode()


async def test_stats_posts_its_chart_as_a_file(env: Env) -> None:
    await env.command("stats", user_id="USTAFF", user_name="staff", channel_id=STAFF_CHANNEL)
    await env.slack.wait_for("files.completeUploadExternal")
    (name, content) = env.slack.uploads[-1]
    assert name.startswith("sif-stats-") and content.startswith(b"\x89PNG")
    complete = env.slack.calls_to("files.completeUploadExternal")[-1]
    assert complete.args["channel_id"] == STAFF_CHANNEL
    assert "Requests: 0 opened" in complete.args["initial_comment"]
