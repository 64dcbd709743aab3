"""Two nodes talking through the federation door (SPEC §12), each with its own store.

Node "ghent" queues messages for node "lyon" in its outbox; the relay signs and posts
them to lyon's `/federation/inbox`, served by the real HTTP monitor. A message arrives
once even when lyon is down for a while (it waits in ghent's outbox) or the same bytes
come twice; the door refuses what a partner did not sign for it just now, changing
nothing. The `sif-bot federation` commands make a key and check a partner.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from nacl.signing import SigningKey
from sqlalchemy import text

from adapters.federation.messenger import FederationMessenger, PartnerUnavailable
from bot.app.federation import HANDLERS, Federation, FederationError
from bot.bootstrap import App, build
from bot.domain.federation import MAX_BYTES, Message, Refused, load_key, new_key, seal
from bot.entrypoints.http import Monitor
from bot.ports import UnitOfWork
from tests.conftest import make_settings
from tests.fakes import FakeClock

SIF_BOT = str(Path(sys.executable).parent / "sif-bot")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Door:
    """Lyon's HTTP server (the monitor's routes), which can be stopped and started again
    on the same port; it keeps every answer it gave to a POST."""

    def __init__(self, app: App, port: int) -> None:
        self.app = app
        self.port = port
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None

    @property
    def inbox(self) -> str:
        return f"http://127.0.0.1:{self.port}/federation/inbox"

    async def start(self) -> None:
        monitor = Monitor(self.app.bot)
        monitor.federation = self.app.federation
        answers = self.answers

        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            response = await handler(request)
            if request.method == "POST" and isinstance(response, web.Response):
                assert response.text is not None
                answers.append((response.status, json.loads(response.text)))
            return response

        web_app = web.Application(middlewares=[record])
        web_app.add_routes(monitor.routes())
        self._runner = web.AppRunner(web_app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@dataclass
class Node:
    name: str
    app: App
    key_file: Path
    partners_file: Path
    public_key: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def federation(self) -> Federation:
        assert self.app.federation is not None
        return self.app.federation

    async def keys(self) -> list[str]:
        """The keys in the node's event log."""
        assert self.app.engine is not None
        async with self.app.engine.connect() as connection:
            rows = await connection.execute(text("SELECT key FROM processed_events ORDER BY key"))
            return [row[0] for row in rows]

    async def pending(self) -> list[str]:
        """The topics of the federation messages still waiting in the node's outbox."""
        async with self.app.bot.uow_factory() as uow:
            return [f"{m.to} {m.topic}" for m in await uow.outbox.pending(["federation"], 10)]

    async def send(self, partner: str, kind: str, message_id: str, **body: Any) -> None:
        async with self.app.bot.uow_factory() as uow:
            await self.federation.send(uow, partner, kind, body, message_id)
            await uow.commit()


@dataclass
class Network:
    clock: FakeClock
    ghent: Node
    lyon: Node
    door: Door
    tmp_path: Path

    def sealed(self, kind: str = "hello", message_id: str = "m1", **body: Any) -> bytes:
        """Ghent's message to lyon, signed by ghent now, as the relay would post it."""
        _, data = self.ghent.federation.seal(
            self.ghent.federation.outbound("lyon", kind, body, message_id)
        )
        return data


def partners_file(path: Path, name: str, port: int, public_key: str) -> Path:
    path.write_text(
        f"""[[partner]]
name = "{name}"
url = "http://127.0.0.1:{port}"
public_key = "{public_key}"
limit = 50
tags = ["Wood"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    # Both nodes read one clock that starts at the real time, so the `sif-bot` commands
    # (on the system clock) are within lyon's five minutes too.
    clock = FakeClock(datetime.now(UTC))
    ports = {"ghent": free_port(), "lyon": free_port()}
    keys = {name: new_key() for name in ports}
    nodes: dict[str, Node] = {}
    for name, other in (("ghent", "lyon"), ("lyon", "ghent")):
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(keys[name][0] + "\n", encoding="utf-8")
        partners = partners_file(
            tmp_path / f"{name}-partners.toml", other, ports[other], keys[other][1]
        )
        env = {
            "SIF_NODE_NAME": name,
            "SIF_NODE_KEY_FILE": str(key_file),
            "SIF_PARTNERS_FILE": str(partners),
            "SIF_NODE_URL": f"http://127.0.0.1:{ports[name]}",
        }
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
            sif_node_name=name,
            sif_node_key_file=key_file,
            sif_partners_file=partners,
            sif_node_url=env["SIF_NODE_URL"],
        )
        app = await build(settings, clock)
        nodes[name] = Node(name, app, key_file, partners, keys[name][1], env)
    door = Door(nodes["lyon"].app, ports["lyon"])
    await door.start()
    try:
        yield Network(clock, nodes["ghent"], nodes["lyon"], door, tmp_path)
    finally:
        await door.stop()
        for node in nodes.values():
            await node.app.close()


async def post(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers={"Content-Type": "application/json"}) as response,
    ):
        return response.status, await response.json()


# wiring


async def test_each_node_is_wired_from_its_settings(network: Network) -> None:
    ghent, lyon = network.ghent, network.lyon
    assert ghent.federation.name == "ghent" and lyon.federation.name == "lyon"
    assert ghent.federation.public_key == ghent.public_key
    assert list(ghent.federation.partners) == ["lyon"]
    assert ghent.federation.partners["lyon"].limit == 5000
    assert ghent.federation.partners["lyon"].tags == ("wood",)
    assert ghent.federation.partners["lyon"].public_key == lyon.public_key
    assert ghent.app.bot.federation is ghent.federation
    assert isinstance(ghent.app.relay.messengers["federation"], FederationMessenger)
    # The door is only open on a node.
    assert not any(r.path == "/federation/inbox" for r in Monitor(ghent.app.bot).routes())


async def test_a_store_without_a_node_name_has_no_federation(tmp_path: Path) -> None:
    app = await build(make_settings(f"sqlite+aiosqlite:///{tmp_path}/plain.db"), FakeClock())
    try:
        assert app.federation is None
        assert "federation" not in app.relay.messengers
    finally:
        await app.close()


def test_a_node_needs_a_key_file_and_a_good_partners_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    with pytest.raises(FederationError, match="SIF_NODE_KEY_FILE is not"):
        Federation.from_settings(make_settings(url, sif_node_name="ghent"), None, FakeClock())  # type: ignore[arg-type]
    with pytest.raises(FederationError, match="SIF_NODE_KEY_FILE: cannot read"):
        Federation.from_settings(
            make_settings(url, sif_node_name="ghent", sif_node_key_file=tmp_path / "none"),
            None,  # type: ignore[arg-type]
            FakeClock(),
        )
    key_file = tmp_path / "ghent.key"
    key_file.write_text(new_key()[0], encoding="utf-8")
    bad = tmp_path / "partners.toml"
    bad.write_text('[[partner]]\nname = "ghent"\n', encoding="utf-8")
    with pytest.raises(FederationError, match=r"partners.toml: partner 'ghent' is this node's"):
        Federation.from_settings(
            make_settings(
                url, sif_node_name="ghent", sif_node_key_file=key_file, sif_partners_file=bad
            ),
            None,  # type: ignore[arg-type]
            FakeClock(),
        )


async def test_only_partners_are_sent_to(network: Network) -> None:
    with pytest.raises(FederationError, match="'paris' is not a partner"):
        network.ghent.federation.outbound("paris", "hello", {})
    assert await network.ghent.pending() == []


# delivery through the outbox


async def test_a_queued_hello_reaches_the_partner_once(network: Network) -> None:
    ghent, lyon = network.ghent, network.lyon
    await ghent.send("lyon", "hello", "m1")
    assert await ghent.pending() == ["lyon federation.hello"]

    assert await ghent.app.relay.flush() == 1

    assert network.door.answers == [(200, {"done": "now", "node": "lyon"})]
    assert await lyon.keys() == ["federation:ghent:m1"]
    assert await ghent.pending() == []
    # The same message again (the relay retrying after a lost answer) changes nothing.
    again = await lyon.federation.receive(network.sealed(message_id="m1"))
    assert (again.status, again.body) == (200, {"done": "before"})
    assert await ghent.app.relay.flush() == 0
    assert len(network.door.answers) == 1
    assert await lyon.keys() == ["federation:ghent:m1"]


async def test_a_message_waits_while_the_partner_is_down(network: Network) -> None:
    ghent, lyon, door = network.ghent, network.lyon, network.door
    await door.stop()
    await ghent.send("lyon", "hello", "m2")

    assert await ghent.app.relay.flush() == 0

    assert await ghent.pending() == ["lyon federation.hello"]  # not lost
    assert door.answers == [] and await lyon.keys() == []

    await door.start()
    network.clock.advance(seconds=30)  # past the relay's wait after a failure
    assert await ghent.app.relay.flush() == 1

    assert door.answers == [(200, {"done": "now", "node": "lyon"})]
    assert await lyon.keys() == ["federation:ghent:m2"]
    assert await ghent.pending() == []
    network.clock.advance(minutes=5)
    assert await ghent.app.relay.flush() == 0
    assert len(door.answers) == 1


async def test_a_message_that_arrived_before_is_marked_sent_without_being_done_again(
    network: Network,
) -> None:
    """The first attempt arrived but its answer was lost: the retry carries the same id,
    is signed afresh, and lyon answers that it was done before."""
    ghent, lyon = network.ghent, network.lyon
    first = await lyon.federation.receive(network.sealed(message_id="m3"))
    assert first.status == 200 and first.body["done"] == "now"
    network.clock.advance(seconds=10)
    await ghent.send("lyon", "hello", "m3")

    assert await ghent.app.relay.flush() == 1

    assert network.door.answers == [(200, {"done": "before"})]
    assert await lyon.keys() == ["federation:ghent:m3"]
    assert await ghent.pending() == []


async def test_the_messenger_raises_when_the_partner_refuses(network: Network) -> None:
    stranger = Federation(
        "ghent",
        SigningKey.generate(),  # lyon does not know this key
        network.ghent.federation.partners,
        network.ghent.app.bot.uow_factory,
        network.clock,
        settings=network.ghent.app.settings,
    )
    messenger = FederationMessenger(stranger.seal)

    with pytest.raises(PartnerUnavailable, match="answered 403"):
        await messenger.send(stranger.outbound("lyon", "hello", {}, "m4"))
    await network.door.stop()
    with pytest.raises(PartnerUnavailable, match="unreachable"):
        await messenger.send(network.ghent.federation.outbound("lyon", "hello", {}, "m4"))
    assert await network.lyon.keys() == []


# the door


async def test_a_replay_of_the_same_bytes_is_a_no_op(network: Network) -> None:
    raw = network.sealed(message_id="r1")

    assert await post(network.door.inbox, raw) == (200, {"done": "now", "node": "lyon"})
    network.clock.advance(minutes=4)
    assert await post(network.door.inbox, raw) == (200, {"done": "before"})

    assert await network.lyon.keys() == ["federation:ghent:r1"]
    # Past the five minutes the same bytes are refused outright.
    network.clock.advance(minutes=2)
    assert await post(network.door.inbox, raw) == (400, {"refused": "stale or future timestamp"})


TOO_LARGE = "too large"


def message(network: Network, **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "id": "x1",
        "sender": "ghent",
        "recipient": "lyon",
        "kind": "hello",
        "body": {},
        "sent_at": network.clock.now(),
    }
    fields.update(changes)
    return Message(**fields)


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda n, k: seal(message(n), SigningKey.generate()), 403, "bad signature"),
        (
            lambda n, k: seal(message(n, sent_at=n.clock.now() - timedelta(minutes=6)), k),
            400,
            "stale or future timestamp",
        ),
        (
            lambda n, k: seal(message(n, sent_at=n.clock.now() + timedelta(minutes=6)), k),
            400,
            "stale or future timestamp",
        ),
        (
            lambda n, k: seal(message(n, sender="paris"), SigningKey.generate()),
            400,
            "unknown partner 'paris'",
        ),
        (
            lambda n, k: seal(message(n, recipient="brno"), k),
            400,
            "meant for 'brno', not this node",
        ),
        (lambda n, k: seal(message(n, kind="teleport"), k), 400, "unknown kind 'teleport'"),
        (lambda n, k: b"not json at all", 400, "not a federation message"),
        # "too large", or "not a federation message" as long as the door reads only the
        # first segment of a body (see test_a_message_arriving_in_two_segments_...)
        (lambda n, k: b"x" * (MAX_BYTES + 10), 400, TOO_LARGE),
    ],
    ids=[
        "forged",
        "stale",
        "future",
        "unknown-partner",
        "wrong-recipient",
        "unknown-kind",
        "garbage",
        "too-large",
    ],
)
async def test_the_door_refuses_with_nothing_changed(
    network: Network,
    make: Callable[[Network, SigningKey], bytes],
    status: int,
    reason: str,
) -> None:
    before = await network.lyon.keys()
    raw = make(network, load_key(network.ghent.key_file.read_text()))

    answer = await post(network.door.inbox, raw)

    if reason == TOO_LARGE:
        assert answer[0] == status
        assert answer[1]["refused"] in ("too large", "not a federation message")
    else:
        assert answer == (status, {"refused": reason})
    assert await network.lyon.keys() == before == []
    assert network.door.answers == [answer]
    # Nothing was recorded: a good message with that id is done now.
    good = network.sealed(message_id="x1")
    assert await post(network.door.inbox, good) == (200, {"done": "now", "node": "lyon"})
    assert await network.lyon.keys() == ["federation:ghent:x1"]


async def test_a_handler_that_refuses_leaves_no_trace(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def picky(
        federation: Federation, uow: UnitOfWork, message: Message, *rest: Any
    ) -> dict[str, Any]:
        calls.append(message.id)
        if message.body.get("ok") is not True:
            raise Refused("not now")
        return {"took": message.body["ok"]}

    monkeypatch.setitem(HANDLERS, "picky", picky)

    refused = network.sealed(kind="picky", message_id="p1", ok=False)
    assert await post(network.door.inbox, refused) == (409, {"refused": "not now"})
    assert await network.lyon.keys() == []  # the event log was rolled back with it

    taken = network.sealed(kind="picky", message_id="p1", ok=True)
    assert await post(network.door.inbox, taken) == (200, {"done": "now", "took": True})
    assert await post(network.door.inbox, taken) == (200, {"done": "before"})
    assert calls == ["p1", "p1"]
    assert await network.lyon.keys() == ["federation:ghent:p1"]


async def post_in_pieces(port: int, pieces: list[bytes]) -> tuple[int, dict[str, Any]]:
    """POST the pieces as one body (with its Content-Length), a moment apart, as a
    message that crosses the network in several segments arrives."""
    data = b"".join(pieces)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /federation/inbox HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        writer.write(head + pieces[0])
        await writer.drain()
        for piece in pieces[1:]:
            await asyncio.sleep(0.1)
            writer.write(piece)
            await writer.drain()
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"application/json" in headers, response[:300]
    return int(status_line.split()[1]), json.loads(body)


async def test_a_message_posted_in_one_piece_by_hand_is_done(network: Network) -> None:
    raw = network.sealed(message_id="whole", note="x" * 2000)

    assert await post_in_pieces(network.door.port, [raw]) == (
        200,
        {"done": "now", "node": "lyon"},
    )


async def test_a_message_arriving_in_two_segments_is_read_whole(network: Network) -> None:
    raw = network.sealed(message_id="split", note="x" * 2000)

    answer = await post_in_pieces(network.door.port, [raw[:1000], raw[1000:]])

    assert answer == (200, {"done": "now", "node": "lyon"})
    assert await network.lyon.keys() == ["federation:ghent:split"]


async def test_deeply_nested_garbage_is_refused_at_the_door(network: Network) -> None:
    assert await post(network.door.inbox, b"[" * 100_000) == (
        400,
        {"refused": "not a federation message"},
    )


# the command line


def cli(
    args: list[str], cwd: Path, **env: str
) -> Callable[[], Awaitable[subprocess.CompletedProcess[str]]]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/cli.db",
        "SIF_ADMINS": "console:staff",
        **env,
    }

    async def run() -> subprocess.CompletedProcess[str]:
        # In a thread: lyon's door, in this event loop, must answer meanwhile.
        return await asyncio.to_thread(
            subprocess.run,
            [SIF_BOT, *args],
            env=environment,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


async def test_keygen_writes_a_private_key_file_and_prints_its_public_key(
    tmp_path: Path,
) -> None:
    out = tmp_path / "node.key"

    done = await cli(["federation", "keygen", "--out", str(out)], tmp_path)()

    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = load_key(out.read_text(encoding="utf-8"))
    public = key.verify_key.encode().hex()
    assert done.stdout.splitlines()[-1] == f"Public key, for your partners' files: {public}"
    assert key.encode().hex() not in done.stdout  # the private key is not printed
    written = out.read_bytes()

    again = await cli(["federation", "keygen", "--out", str(out)], tmp_path)()

    assert again.returncode == 2
    assert "exists" in again.stderr and again.stdout == ""
    assert out.read_bytes() == written


async def test_ping_says_the_partner_is_reachable_and_trusts_the_key(network: Network) -> None:
    ping = cli(["federation", "ping", "lyon"], network.tmp_path, **network.ghent.env)

    done = await ping()

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"lyon: reachable at {network.door.inbox}; it trusts this node's key."
    )
    assert len(network.door.answers) == 1 and network.door.answers[0][0] == 200
    assert len(await network.lyon.keys()) == 1


async def test_ping_reports_a_key_the_partner_does_not_trust(network: Network) -> None:
    stranger = network.tmp_path / "stranger.key"
    stranger.write_text(new_key()[0], encoding="utf-8")
    env = {**network.ghent.env, "SIF_NODE_KEY_FILE": str(stranger)}

    done = await cli(["federation", "ping", "lyon"], network.tmp_path, **env)()

    assert done.returncode == 1
    assert done.stdout.strip() == f"lyon: answered 403 at {network.door.inbox}: bad signature"
    assert await network.lyon.keys() == []


async def test_ping_reports_a_partner_that_is_down_or_unknown(network: Network) -> None:
    await network.door.stop()
    ping = cli(["federation", "ping", "lyon"], network.tmp_path, **network.ghent.env)
    down = await ping()
    assert down.returncode == 1
    assert down.stdout.startswith(f"lyon: unreachable at {network.door.inbox}")

    unknown = await cli(["federation", "ping", "paris"], network.tmp_path, **network.ghent.env)()
    assert unknown.returncode == 2
    assert "'paris' is not a partner (partners: lyon)" in unknown.stderr
