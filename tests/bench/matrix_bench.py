"""`!sif balance` round trips through a real Synapse, next to a bare matrix-nio echo bot,
in an unencrypted direct room and in an encrypted one.

Both bots run against the same local Synapse in the same run; a user sends a message and
waits for the bot's answer, one at a time: unencrypted, a user driven by a plain HTTP
client; encrypted, a user with matrix-nio's encryption (tests/adapters/matrix/e2ee.py),
next to an echo bot that encrypts too. The ratios of the medians (sif-bot / echo) are the
figures (goals: ≤ 1.2 unencrypted, ≤ 1.2 encrypted); absolute numbers are mostly
Synapse's own CPU and vary with the machine.

    .venv/bin/python tests/bench/matrix_bench.py [--messages 50]
"""

from __future__ import annotations

import argparse
import asyncio
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
from bot.bootstrap import assemble
from bot.ports import SystemClock
from bot.settings import load_settings
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.uow import SqlUnitOfWorkFactory
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    ensure_synapse_venv()
    user_dir = tempfile.mkdtemp(prefix="sif-bench-user-")
    async with synapse_server() as synapse:
        user = await synapse.register(synapse.unique_localpart("user"))
        echo_name = synapse.unique_localpart("echo")
        await synapse.register(echo_name)
        sif_name = synapse.unique_localpart("sif")
        sif = await synapse.register(sif_name)

        client, task = await echo_bot(synapse, echo_name)
        room = await user.create_room(invite=[client.user_id], is_direct=True)
        await user.wait_joined(room, client.user_id)
        await round_trips(user, room, client.user_id, "warm", "echo warm", 5)
        echo = await round_trips(user, room, client.user_id, "ping", "echo ping", args.messages)
        task.cancel()
        await client.close()

        with tempfile.TemporaryDirectory() as tmp:
            secret = await E2EEUser.register(synapse, "secret", Path(user_dir))
            name = synapse.unique_localpart("echo-e2ee")
            await synapse.register(name)
            client, task = await echo_bot(synapse, name, Path(tmp) / "echo")
            room = await secret.create_room(invite=[client.user_id], is_direct=True)
            await secret.wait_joined(room, client.user_id)
            await round_trips(secret, room, client.user_id, "warm", "echo warm", 5)
            echo_e2ee = await round_trips(
                secret, room, client.user_id, "ping", "echo ping", args.messages
            )
            task.cancel()
            await client.close()

        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await asyncio.to_thread(upgrade, db_url)
            engine = make_engine(db_url)
            uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
            settings = load_settings(
                _env_file=None, database_url=db_url, sif_rate_commands_per_minute=0
            )
            bot = assemble(settings, uow, SystemClock()).bot
            adapter = MatrixAdapter(
                bot,
                homeserver=synapse.base_url,
                user_id=sif.user_id,
                password=f"pw-{sif_name}",
                store_path=Path(tmp) / "store",
            )
            await adapter.start()
            room = await user.create_room(invite=[sif.user_id], is_direct=True)
            await user.wait_joined(room, sif.user_id)
            await round_trips(user, room, sif.user_id, "!sif balance", "Your balance", 5)
            ours = await round_trips(
                user, room, sif.user_id, "!sif balance", "Your balance", args.messages
            )
            room = await secret.create_room(invite=[sif.user_id], is_direct=True)
            await secret.wait_joined(room, sif.user_id)
            await round_trips(secret, room, sif.user_id, "!sif balance", "Your balance", 5)
            ours_e2ee = await round_trips(
                secret, room, sif.user_id, "!sif balance", "Your balance", args.messages
            )
            await secret.close()
            await adapter.stop()
            await engine.dispose()
        await user.close()
    shutil.rmtree(user_dir, ignore_errors=True)
    base = summary("bare nio echo bot", echo)
    mine = summary("sif-bot !sif balance", ours)
    print(f"ratio sif-bot / echo (medians): {mine / base:.2f} (goal ≤ 1.2)")
    base = summary("encrypted nio echo bot", echo_e2ee)
    mine = summary("sif-bot !sif balance, encrypted", ours_e2ee)
    print(f"ratio sif-bot / echo, encrypted (medians): {mine / base:.2f} (goal ≤ 1.2)")


if __name__ == "__main__":
    asyncio.run(main())
