"""Sending to Slack when Slack says no, and when a message is longer than Slack takes.

The real messenger (`SlackMessenger`, slack-sdk's client) against the fake Slack Web API
on 127.0.0.1, which refuses like Slack does: for good (`Undeliverable`), for now
(`PlatformUnavailable`), a history lookup without its scope, and a message over
Slack's limits (50 blocks, 3,000 characters per section, about 12,000 in all blocks,
40,000 of text). End to end, the Bolt app over HTTP with the core and its outbox.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk.errors import SlackApiError

from adapters.slack import translate
from adapters.slack.app import SlackMessenger, make_client
from bot.messages import (
    Actions,
    Button,
    Delivery,
    Outbound,
    Strong,
    Table,
    Text,
    plain,
)
from bot.ports import PlatformUnavailable, Undeliverable
from store.models import OutboxRow
from tests.adapters.slack.fake_slack import Call, FakeSlack, message_error
from tests.adapters.slack.test_slack_app import STAFF_CHANNEL, Env, env  # noqa: F401

MANIFEST = Path(__file__).parents[3] / "adapters" / "slack" / "manifest.yml"
ZWSP = translate.ZWSP


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def messenger(slack: FakeSlack) -> SlackMessenger:
    return SlackMessenger(make_client("xoxb-test", slack.base_url))


def to_channel(parts: Any, outbox_id: int | None = 1, channel: str = "C0001") -> Outbound:
    return Outbound("slack", Delivery.CHANNEL, channel, "notice", parts, outbox_id=outbox_id)


def to_dm(parts: Any, user: str = "T0001:U0002") -> Outbound:
    return Outbound("slack", Delivery.DM, user, "notice", parts, outbox_id=1)


# -- A. what Slack's refusals mean for the outbox ---------------------------------------

REFUSED_FOR_GOOD = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "user_not_found",
    "account_inactive",
    "user_disabled",
    "missing_scope",
    "not_allowed_token_type",
    "cannot_dm_bot",
    "team_access_not_granted",
    "restricted_action",
    "msg_too_long",
    "msg_blocks_too_long",
    "invalid_blocks",
]


@pytest.mark.parametrize("error", REFUSED_FOR_GOOD)
async def test_a_message_slack_refuses_for_good_is_undeliverable(
    slack: FakeSlack, messenger: SlackMessenger, error: str
) -> None:
    slack.fail_next("chat.postMessage", status=200, error=error)
    with pytest.raises(Undeliverable) as refused:
        await messenger.send(to_channel(plain("hello")))
    assert refused.value.reason == error


async def test_a_dm_to_a_person_slack_cannot_reach_is_undeliverable(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    slack.fail_next("conversations.open", status=200, error="user_disabled")
    with pytest.raises(Undeliverable) as refused:
        await messenger.send(to_dm(plain("hello")))
    assert refused.value.reason == "user_disabled"
    assert slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("status", "error", "body"),
    [
        (429, "ratelimited", None),  # still limited after the client's own retries
        (500, "internal_error", None),
        (503, "", "<html><body>503 Service Temporarily Unavailable</body></html>"),
        (200, "fatal_error", None),
        (200, "service_unavailable", None),
        (200, "invalid_auth", None),  # the token: no message can go, not this one's fault
        (200, "token_revoked", None),
    ],
)
async def test_slack_taking_no_message_now_is_platform_unavailable(
    slack: FakeSlack, messenger: SlackMessenger, status: int, error: str, body: str | None
) -> None:
    slack.fail_next(
        "chat.postMessage", status=status, error=error, body=body, retry_after=0, times=5
    )
    with pytest.raises(PlatformUnavailable):
        await messenger.send(to_channel(plain("hello")))


async def test_no_connection_to_slack_is_platform_unavailable() -> None:
    messenger = SlackMessenger(make_client("xoxb-test", "http://127.0.0.1:9/api/"))
    with pytest.raises(PlatformUnavailable):
        await messenger.send(to_channel(plain("hello")))


async def test_a_slack_that_does_not_answer_in_time_is_platform_unavailable(
    slack: FakeSlack,
) -> None:
    slack.stall_next("chat.postMessage", seconds=0.5, times=5)
    client = make_client("xoxb-test", slack.base_url)
    client.timeout = 0.2
    with pytest.raises(PlatformUnavailable):
        await SlackMessenger(client).send(to_channel(plain("hello")))


async def test_any_other_refusal_is_raised_as_it_is(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    """Counted against that one message by the outbox (tried again, set aside at last)."""
    slack.fail_next("chat.postMessage", status=200, error="invalid_arguments")
    with pytest.raises(SlackApiError) as raised:
        await messenger.send(to_channel(plain("hello")))
    assert not isinstance(raised.value, Undeliverable | PlatformUnavailable)


# -- B. looking a message up before sending it again -------------------------------------


def manifest_scopes() -> set[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return set(manifest["oauth_config"]["scopes"]["bot"])


async def staff_balances_failing_once(env: Env) -> Call:  # noqa: F811
    """Staff ask for `balances` in the staff channel (a message through the outbox); Slack
    fails the first send of it with an error that counts against the message."""
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral")
    env.slack.fail_next("chat.postMessage", status=200, error="unknown_hiccup")
    await env.command("balances", user_id="USTAFF", user_name="staff", channel_id=STAFF_CHANNEL)
    for _ in range(100):
        if env.slack.rejected:
            break
        await asyncio.sleep(0.02)
    (failed,) = env.slack.rejected
    assert failed.args["channel"] == STAFF_CHANNEL
    await asyncio.sleep(0.1)  # the failure is recorded
    env.bot.clock.advance(minutes=5)  # type: ignore[attr-defined]
    return failed


async def test_a_staff_channel_message_is_delivered_on_its_retry_without_history_scope(
    env: Env,  # noqa: F811
) -> None:
    """An installation from before the manifest asked for channels:history: the lookup
    answers missing_scope, and the message is sent again instead of failing forever."""
    env.slack.scopes -= {"channels:history", "groups:history"}
    failed = await staff_balances_failing_once(env)
    assert await env.bot.relay.flush() == 1
    (lookup,) = env.slack.calls_to("conversations.history")
    assert lookup.args["channel"] == STAFF_CHANNEL  # asked, and refused: missing_scope
    (post,) = [
        c for c in env.slack.calls_to("chat.postMessage") if c.args["channel"] == STAFF_CHANNEL
    ]
    assert post.args["text"] == failed.args["text"]
    assert await env.bot.relay.flush() == 0


async def test_with_the_manifest_scopes_a_staff_message_that_arrived_is_not_sent_again(
    env: Env,  # noqa: F811
) -> None:
    env.slack.scopes = manifest_scopes()
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral")
    await env.command("balances", user_id="USTAFF", user_name="staff", channel_id=STAFF_CHANNEL)
    (post,) = await env.slack.wait_for(
        "chat.postMessage", where=lambda c: c.args["channel"] == STAFF_CHANNEL
    )
    outbox_id = post.args["metadata"]["event_payload"]["outbox_id"]
    # another message of ours in the channel, about the same, is not taken for it
    other = {**post.args["metadata"]["event_payload"], "outbox_id": outbox_id + 1000}
    await env.adapter.client.chat_postMessage(
        channel=STAFF_CHANNEL,
        text="other",
        metadata={"event_type": "sif_outbox", "event_payload": other},
    )
    for _ in range(100):  # the sender records it just after Slack answered
        async with env.bot.uow_factory() as uow:
            row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
            if row.sent_at is not None:
                break
        await asyncio.sleep(0.02)
    async with env.bot.uow_factory() as uow:  # the process died before recording it
        row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
        row.sent_at, row.platform_ref = None, None
        row.claimed_until = env.bot.clock.now() - timedelta(seconds=1)
        await uow.commit()
    before = len(env.slack.calls_to("chat.postMessage"))
    assert await env.bot.relay.flush() == 1
    assert len(env.slack.calls_to("chat.postMessage")) == before  # found, not sent again
    async with env.bot.uow_factory() as uow:
        row = await uow.session.get(OutboxRow, outbox_id)  # type: ignore[attr-defined]
        assert row.sent_at is not None and row.platform_ref == post_ts(env.slack, post)


def post_ts(slack: FakeSlack, post: Call) -> str:
    channel = slack.history[post.args["channel"]]
    return str(next(m["ts"] for m in channel if m.get("metadata") == post.args["metadata"]))


def test_the_manifest_asks_for_the_history_of_every_conversation_the_bot_posts_in() -> None:
    assert {"channels:history", "groups:history", "im:history"} <= manifest_scopes()


# -- C. messages longer than Slack takes ---------------------------------------------------


def shown(text: str) -> str:
    """What a reader sees of mrkdwn text: no zero-width spaces, escapes undone."""
    return translate.unescape(text.replace(ZWSP, ""))


def sections_of(calls: list[Call]) -> list[str]:
    return [
        shown(b["text"]["text"]) for c in calls for b in c.args["blocks"] if b["type"] == "section"
    ]


def table_rows(sections: list[str]) -> list[list[str]]:
    """The rows of the monospace tables in these sections, headers and rules left out."""
    rows: list[list[str]] = []
    for text in sections:
        for block in re.findall(r"```(.*?)```", text, re.S):
            header, rule, *lines = block.split("\n")
            assert header.split() == ["idea", "title", "owner"] and set(rule) <= {"-", " "}
            rows += [line.split("  ") for line in lines]
    return [[cell.strip() for cell in row if cell.strip()] for row in rows]


def assert_within_limits(slack: FakeSlack, calls: list[Call]) -> None:
    assert slack.rejected == []
    for call in calls:
        assert message_error(call.args) is None
        assert len(call.args["blocks"]) <= 50


ROWS = tuple((f"I-{i}", f"Repair café <{i}> & more", f"member {i % 97}") for i in range(1500))


async def test_a_1500_row_table_arrives_whole_in_several_messages_in_order(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    table = Table(("idea", "title", "owner"), ROWS)
    buttons = (Button("Accept", "accept R-1"), Button("Decline", "decline R-1"))
    parts = (
        Strong("All ideas"),
        Text(" (1500):\n"),
        table,
        Text("\nThat is all."),
        Actions(buttons),
    )
    ts = await messenger.send(to_channel(parts, outbox_id=7))
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) > 1
    assert_within_limits(slack, posts)
    payloads = [p.args["metadata"]["event_payload"] for p in posts]
    assert [(p["outbox_id"], p["part"], p["parts"]) for p in payloads] == [
        (7, i, len(posts)) for i in range(len(posts))
    ]
    sections = sections_of(posts)
    assert sections[0].startswith("*All ideas* (1500):\n```idea")
    assert sections[-1].endswith("```\nThat is all.")
    assert table_rows(sections) == [list(row) for row in ROWS]
    # the buttons come with the last part, whose ts is the message's
    assert [any(b["type"] == "actions" for b in p.args["blocks"]) for p in posts] == [False] * (
        len(posts) - 1
    ) + [True]
    assert ts == slack.history["C0001"][-1]["ts"]


WORDS = [f"w{i}&<{'x' * (i % 13)}>" for i in range(20_000)]


def long_text() -> str:
    out: list[str] = []
    for i, word in enumerate(WORDS):
        out.append(word)
        out.append("\n\n" if i % 500 == 499 else "\n" if i % 40 == 39 else " ")
    return "".join(out)


async def test_a_200000_character_text_arrives_whole_split_between_words(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    text = long_text()
    assert len(text) > 200_000
    await messenger.send(to_dm(plain(text)))
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) > 1 and {p.args["channel"] for p in posts} == {"D0002"}
    assert_within_limits(slack, posts)
    # every section holds whole words: the words of all of them, in order, are the text's
    assert [w for s in sections_of(posts) for w in s.split()] == WORDS
    assert [w for p in posts for w in shown(p.args["text"]).split()] == WORDS


async def test_a_long_private_answer_goes_as_several_ephemeral_messages(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    table = Table(("idea", "title", "owner"), ROWS)
    message = Outbound("slack", Delivery.PRIVATE, "T0001:U0002", "ideas", (table,), channel="C0001")
    assert await messenger.send(message) is None
    posts = slack.calls_to("chat.postEphemeral")
    assert len(posts) > 1 and slack.calls_to("chat.postMessage") == []
    assert_within_limits(slack, posts)
    assert table_rows(sections_of(posts)) == [list(row) for row in ROWS]


async def test_a_send_that_failed_midway_goes_on_where_it_stopped(
    slack: FakeSlack, messenger: SlackMessenger
) -> None:
    message = to_channel((Table(("idea", "title", "owner"), ROWS),), outbox_id=9)
    slack.fail_next("chat.postMessage", status=200, error="fatal_error", after=2)
    with pytest.raises(PlatformUnavailable):
        await messenger.send(message)
    assert len(slack.calls_to("chat.postMessage")) == 2
    await messenger.send(message)  # the outbox tries it again
    posts = slack.calls_to("chat.postMessage")
    parts = [p.args["metadata"]["event_payload"]["part"] for p in posts]
    assert parts == list(range(len(posts)))  # each part once, in order
    assert table_rows(sections_of(posts)) == [list(row) for row in ROWS]


async def test_after_a_crash_midway_only_the_missing_parts_are_sent(slack: FakeSlack) -> None:
    message = to_channel((Table(("idea", "title", "owner"), ROWS),), outbox_id=11)
    slack.fail_next("chat.postMessage", status=200, error="fatal_error", after=3)
    with pytest.raises(PlatformUnavailable):
        await SlackMessenger(make_client("xoxb-test", slack.base_url)).send(message)
    # another process takes the message over: it finds the first three parts
    again = SlackMessenger(make_client("xoxb-test", slack.base_url))
    assert await again.delivered(message) is None
    await again.send(message)
    posts = slack.calls_to("chat.postMessage")
    parts = [p.args["metadata"]["event_payload"]["part"] for p in posts]
    assert parts == list(range(len(posts))) and len(posts) > 3
    # now all of it is there: found by its last part, not sent again
    third = SlackMessenger(make_client("xoxb-test", slack.base_url))
    assert await third.delivered(message) == slack.history["C0001"][-1]["ts"]


def test_a_long_section_is_cut_between_words_never_inside_an_escape() -> None:
    text = " ".join(["&gt;<&>"] * 2000)
    for section in translate.sections(plain(text)):
        mrkdwn = section["text"]["text"]
        assert len(mrkdwn) <= translate.SECTION_LIMIT
        assert re.sub(r"&(amp|lt|gt);", "", mrkdwn).count("&") == 0
        assert shown(mrkdwn).split() == ["&gt;<&>"] * len(shown(mrkdwn).split())


def test_a_table_is_never_cut_inside_its_code_block() -> None:
    table = Table(("idea", "title", "owner"), ROWS[:300])
    for section in translate.sections((Text("Ideas:\n"), table)):
        body = section["text"]["text"]
        assert body.count("```") in (0, 2)
        if "```" in body:
            assert body.rstrip().endswith("```")


def test_an_answer_that_fits_in_one_message_is_the_command_response() -> None:
    message = Outbound(
        "slack", Delivery.PRIVATE, "T0001:U0002", "ideas", plain("short"), channel="C1"
    )
    reply = translate.ack_reply([message])
    assert reply is not None and reply["text"] == "short"
    long = Outbound(
        "slack", Delivery.PRIVATE, "T0001:U0002", "ideas", plain("word " * 5000), channel="C1"
    )
    assert translate.ack_reply([long]) is None
    assert len(translate.payloads(long)) > 1
