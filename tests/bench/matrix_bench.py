"""`!sif balance` round trips through a real Synapse, next to a bare matrix-nio echo bot,
in an unencrypted direct room and in an encrypted one.

Both bots run against the same local Synapse at the same time; a user sends a message
and waits for the bot's answer, one at a time, to each bot in turn: unencrypted, a user
driven by a plain HTTP client; encrypted, a user with matrix-nio's encryption
(tests/adapters/matrix/e2ee.py), next to an echo bot that encrypts too. The ratios of the
medians (sif-bot / echo) are the figures (goals: ≤ 1.05 unencrypted, ≤ 1.2 encrypted);
absolute numbers are mostly Synapse's own CPU and vary with the machine.

    .venv/bin/python tests/bench/matrix_bench.py [--messages 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, MatrixRoom, RoomMessageText
from nio.store import SqliteStore

from adapters.matrix.client import MatrixAdapter
from bot.bootstrap import build
from bot.settings import load_settings
from tests.adapters.matrix.e2ee import E2EEUser, Message
from tests.adapters.matrix.synapse import (
    MatrixUser,
    Synapse,
    ensure_synapse_venv,
    synapse_server,
)


async def round_trips(
    user: MatrixUser | E2EEUser, room: str, bot_user: str, text: str, expect: str, count: int
) -> list[float]:
    """Milliseconds from each message sent to the bot's answer; an encrypting user checks
    that every answer came encrypted."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await user.send_text(room, text)
        reply = await user.wait_for_message(room, bot_user, contains=expect, timeout=30)
        if isinstance(user, E2EEUser):
            assert isinstance(reply, Message) and reply.encrypted
        times.append((time.perf_counter() - start) * 1000)
    return times


async def echo_bot(
    synapse: Synapse, localpart: str, store: Path | None = None
) -> tuple[AsyncClient, asyncio.Task[None]]:
    """The baseline: a minimal nio bot that answers every text with an m.notice; with a
    store, with encryption (nio's own sync loop does the key upkeep), trusting every
    device."""
    config = None
    if store is not None:
        await asyncio.to_thread(store.mkdir, parents=True, exist_ok=True)
        config = AsyncClientConfig(encryption_enabled=True, store=SqliteStore)
    client = AsyncClient(
        synapse.base_url,
        f"@{localpart}:{synapse.server_name}",
        store_path=str(store) if store else "",
        config=config,
    )
    await client.login(f"pw-{localpart}")
    if store is not None:
        await client.keys_upload()
    await client.sync(timeout=0)

    async def on_text(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender != client.user_id:
            await client.room_send(
                room.room_id,
                "m.room.message",
                {"msgtype": "m.notice", "body": "echo " + event.body},
                ignore_unverified_devices=True,
            )

    async def on_invite(room: MatrixRoom, event: InviteMemberEvent) -> None:
        await client.join(room.room_id)

    client.add_event_callback(on_text, RoomMessageText)  # type: ignore[arg-type]
    client.add_event_callback(on_invite, InviteMemberEvent)  # type: ignore[arg-type]
    return client, asyncio.create_task(client.sync_forever(timeout=30_000))


def summary(label: str, times: list[float]) -> float:
    times = sorted(times)
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label:<28} median {median:7.1f} ms   p95 {p95:7.1f} ms   ({len(times)} messages)")
    return median


async def taking_turns(
    user: MatrixUser | E2EEUser,
    sides: list[tuple[str, str, str, str]],
    count: int,
) -> list[list[float]]:
    """Round trips to each side (room, bot, text, expected answer), one message to each
    in turn and each going first every other time, so that whatever else the homeserver
    does weighs on both alike; returns each side's times."""
    for room, bot_user, text, expect in sides:
        await round_trips(user, room, bot_user, text, expect, 5)  # warm-up
    times: list[list[float]] = [[] for _ in sides]
    order = list(range(len(sides)))
    for turn in range(count):
        for side in order if turn % 2 == 0 else reversed(order):
            room, bot_user, text, expect = sides[side]
            times[side] += await round_trips(user, room, bot_user, text, expect, 1)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    ensure_synapse_venv()
    user_dir = tempfile.mkdtemp(prefix="sif-bench-user-")
    async with synapse_server() as synapse, contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        user = await synapse.register(synapse.unique_localpart("user"))
        stack.push_async_callback(user.close)
        secret = await E2EEUser.register(synapse, "secret", Path(user_dir))
        stack.push_async_callback(secret.close)
        bots: dict[str, str] = {}
        for label, store in (("echo", None), ("echo-e2ee", tmp / "echo")):
            name = synapse.unique_localpart(label)
            await synapse.register(name)
            client, task = await echo_bot(synapse, name, store)
            stack.push_async_callback(client.close)
            stack.callback(task.cancel)
            bots[label] = client.user_id or ""
        sif_name = synapse.unique_localpart("sif")
        sif = await synapse.register(sif_name)
        settings = load_settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            sif_rate_commands_per_minute=0,
        )
        app = await build(settings)  # wired as `sif-bot run` wires it
        stack.push_async_callback(app.close)
        adapter = MatrixAdapter(
            app.bot,
            homeserver=synapse.base_url,
            user_id=sif.user_id,
            password=f"pw-{sif_name}",
            store_path=tmp / "store",
        )
        await adapter.start()
        stack.push_async_callback(adapter.stop)
        results = []
        for person, echo_bot_user in ((user, bots["echo"]), (secret, bots["echo-e2ee"])):
            sides = []
            for bot_user, text, expect in (
                (echo_bot_user, "ping", "echo ping"),
                (sif.user_id, "!sif balance", "Your balance"),
            ):
                room = await person.create_room(invite=[bot_user], is_direct=True)
                await person.wait_joined(room, bot_user)
                sides.append((room, bot_user, text, expect))
            results.append(await taking_turns(person, sides, args.messages))
    shutil.rmtree(user_dir, ignore_errors=True)
    (echo, ours), (echo_e2ee, ours_e2ee) = results
    base = summary("bare nio echo bot", echo)
    mine = summary("sif-bot !sif balance", ours)
    print(f"ratio sif-bot / echo (medians): {mine / base:.2f} (goal ≤ 1.05)")
    base = summary("encrypted nio echo bot", echo_e2ee)
    mine = summary("sif-bot !sif balance, encrypted", ours_e2ee)
    print(f"ratio sif-bot / echo, encrypted (medians): {mine / base:.2f} (goal ≤ 1.2)")


if __name__ == "__main__":
    asyncio.run(main())
