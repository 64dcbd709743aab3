"""Forged and replayed requests at the Slack door, beyond those in test_slack_app.py (a wrong
secret, a stale timestamp, malformed bodies, a retried event): no signature, a body changed
after signing, a signed timestamp that is not the one sent, a timestamp from the future,
and a correctly signed slash command or button click sent twice. The real Bolt app serves
HTTP on 127.0.0.1 against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import aiohttp

from bot.domain.ledger import AccountKey
from tests.adapters.slack.fake_slack import (
    block_actions_body,
    post_signed,
    sign,
    slash_command_body,
)
from tests.adapters.slack.test_slack_app import FORM, SECRET, Env, env  # noqa: F401

GRANT = "grant <@U0002> 2 prize"


async def ann_balance(env: Env) -> int | None:  # noqa: F811
    async with env.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("slack", "T0001:U0002")
        if ann is None:
            return None
        return await uow.ledger.balance(ann.community, AccountKey.of(ann.id))


async def nothing_happened(env: Env) -> None:  # noqa: F811
    await asyncio.sleep(0.3)
    assert env.slack.calls == []
    assert await ann_balance(env) is None


async def test_unsigned_tampered_and_mistimed_requests_are_refused(env: Env) -> None:  # noqa: F811
    body = slash_command_body(text="balance")
    now = int(time.time())
    async with aiohttp.ClientSession() as session:  # no signature headers at all
        async with session.post(env.url, data=body, headers={"Content-Type": FORM}) as resp:
            assert resp.status == 401
    # signed, then the body changed (another command) on the way
    signed = sign(SECRET, body, now)
    tampered = slash_command_body(text=GRANT, user_id="USTAFF", user_name="staff")
    status, _ = await post_signed(env.url, tampered, SECRET, content_type=FORM, headers=signed)
    assert status == 401
    # the signature of one moment sent with another timestamp
    moved = {**signed, "X-Slack-Request-Timestamp": str(now + 1)}
    status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, headers=moved)
    assert status == 401
    # correctly signed, but from more than five minutes in the future
    future = now + 6 * 60
    status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, timestamp=future)
    assert status == 401
    # a signature that is not hex, and one of another scheme
    for forged in ("v0=" + "zz" * 32, "v1=" + signed["X-Slack-Signature"][3:]):
        headers = {**signed, "X-Slack-Signature": forged}
        status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, headers=headers)
        assert status == 401
    await nothing_happened(env)


async def test_a_replayed_slash_command_acts_once(env: Env) -> None:  # noqa: F811
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral")
    before = await ann_balance(env)
    assert before is not None
    body = slash_command_body(text=GRANT, user_id="USTAFF", user_name="staff")
    headers = sign(SECRET, body)  # the very same signed request, captured and sent again
    for _ in range(3):
        status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, headers=headers)
        assert status == 200
    await env.slack.wait_for("chat.postMessage", where=lambda c: "2.00 SIF" in c.args["text"])
    await asyncio.sleep(0.5)
    assert await ann_balance(env) == before + 200
    received = [
        c for c in env.slack.calls_to("chat.postMessage") if "You received" in c.args["text"]
    ]
    assert len(received) == 1


async def test_a_replayed_button_click_acts_once(env: Env) -> None:  # noqa: F811
    await env.command("balance", user_id="USTAFF", user_name="staff")  # staff exists
    await env.slack.wait_for("chat.postEphemeral")
    # a button's value is the core's own command, with the core's form of a mention
    action = "grant <@slack:T0001:U0002> 2 prize"
    body = block_actions_body(
        value=action, user_id="USTAFF", user_name="staff", channel_id="DSTAFF"
    )
    await env.command("balance")  # ann exists
    await env.slack.wait_for("chat.postEphemeral", count=2)
    before = await ann_balance(env)
    assert before is not None
    headers = sign(SECRET, body)
    for _ in range(3):
        status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, headers=headers)
        assert status == 200
    await env.slack.wait_for("chat.postMessage", where=lambda c: "You received" in c.args["text"])
    await asyncio.sleep(0.5)
    assert await ann_balance(env) == before + 200


async def test_a_timestamp_that_is_not_a_number_is_refused(env: Env) -> None:  # noqa: F811
    body = slash_command_body(text="balance")
    for timestamp in ("", "soon", "1e9"):
        headers = {**sign(SECRET, body), "X-Slack-Request-Timestamp": timestamp}
        status, _ = await post_signed(env.url, body, SECRET, content_type=FORM, headers=headers)
        assert status == 401, timestamp
    await nothing_happened(env)


async def _raw_post(url: str, body: bytes, headers: dict[str, str], pieces: int) -> int:
    """POST over a plain socket, the body in `pieces` TCP writes with a pause between, as a
    slow network delivers it; returns the status (0 when the server closed the door)."""
    parsed = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    head = [f"POST {parsed.path} HTTP/1.1", f"Host: {parsed.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    step = -(-len(body) // pieces)
    try:
        for start in range(0, len(body), step):
            writer.write(body[start : start + step])
            await writer.drain()
            await asyncio.sleep(0.05)
    except ConnectionError:
        pass  # refused before the end of the body
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1]) if status_line else 0


async def test_a_body_in_several_writes_is_read_whole_and_a_huge_one_is_413(
    env: Env,  # noqa: F811
) -> None:
    # a correctly signed slash command padded to 30 KB (Slack bodies can be that long)
    body = slash_command_body(text="balance") + "&padding=" + "x" * 30_000
    headers = {"Content-Type": FORM, **sign(SECRET, body, int(time.time()))}
    assert await _raw_post(env.url, body.encode(), headers, pieces=2) == 200
    for size in (300 * 1024, 10 * 1024 * 1024):  # larger than any Slack payload
        big = slash_command_body(text="balance") + "&padding=" + "x" * size
        headers = {"Content-Type": FORM, **sign(SECRET, big, int(time.time()))}
        assert await _raw_post(env.url, big.encode(), headers, pieces=4) == 413
