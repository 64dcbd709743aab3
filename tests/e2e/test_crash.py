"""Crash safety of the real `sif-bot run` (Slack HTTP mode, PostgreSQL).

A script of 500 Slack DM events (intakes, grants, requests, accepts, deliveries,
thanks, queries, refusals) is played against the bot process, which is killed with
SIGKILL at random points and restarted. The driver behaves like Slack: an event that
was not acknowledged with 200 is sent again with X-Slack-Retry-Num. At the end every
command must have been applied exactly once and every outbound message delivered
exactly once: the database and the messages Slack received equal those of a run of
the same script without kills, each outbox row reached Slack once, and the ledger
invariants hold. One crash run is part of the normal suite; `--slow` runs 20.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.adapters.slack.fake_slack import (
    FakeSlack,
    event_body,
    message_im_event,
    post_event,
    post_signed,
)
from tests.conftest import PG_ADMIN_DSN, _pg_admin

SIF_BOT = str(Path(sys.executable).parent / "sif-bot")
SECRET = "crash-test-signing-secret"
STAFF = "USTAFF"
INNOVATORS = ("U0101", "U0102", "U0103", "U0104")
PEERS = ("U0201", "U0202", "U0203", "U0204")
TAGS = ("finance", "legal", "marketing", "design")
COMMANDS = 500
SLOW_RUNS = 20


def build_script(seed: int = 7) -> list[tuple[str, str]]:
    """(Slack user, DM text) in order; the same for every run."""
    rng = random.Random(seed)
    everyone = (STAFF, *INNOVATORS, *PEERS)
    steps: list[tuple[str, str]] = [(user, "balance") for user in everyone]
    steps += [(peer, f"expertise add {tag}:3") for peer, tag in zip(PEERS, TAGS, strict=True)]
    steps += [(STAFF, f"grant <@{u}> 3 welcome-{i}") for i, u in enumerate(INNOVATORS)]
    idea = 0
    request = 0
    for round_ in range(2):
        # Intakes interleaved answer by answer: each member's conversation state must
        # take every answer exactly once for the ideas to come out right.
        answers = {u: _intake(u, round_, tag) for u, tag in zip(INNOVATORS, TAGS, strict=True)}
        for position in range(len(next(iter(answers.values())))):
            steps += [(u, answers[u][position]) for u in INNOVATORS]
        ideas = {u: idea + k + 1 for k, u in enumerate(INNOVATORS)}
        idea += len(INNOVATORS)
        for k, (innovator, peer) in enumerate(zip(INNOVATORS, PEERS, strict=True)):
            request += 1
            steps += [
                (STAFF, f"grant <@{innovator}> 2 round-{round_}-{k}"),
                (innovator, f"request I-{ideas[innovator]} review"),
                (peer, f"accept R-{request}"),
                (peer, f"done R-{request} 2 Clear need; test the income plan with a pilot."),
                (innovator, f"thanks R-{request} {5 - k % 2}"),
            ]
        steps += _filler(rng, everyone, 40)
    steps += _filler(rng, everyone, COMMANDS - len(steps))
    assert len(steps) == COMMANDS
    return steps


def _intake(user: str, round_: int, tag: str) -> list[str]:
    return [
        "intake",
        f"Idea {round_} of {user}",
        f"A neighbourhood initiative number {round_} run by {user}.",
        "Loneliness among older people",
        "Neighbours meet every week",
        "grants, donations",
        "about 5000 EUR",
        "prototype",
        "whether volunteers stay",
        "civil society",
        tag,
        "skip",
        "English",
        "confirm",
    ]


def _filler(rng: random.Random, everyone: tuple[str, ...], count: int) -> list[tuple[str, str]]:
    """Queries and refusals: they change no balance but each must be answered once."""
    out = []
    for n in range(count):
        user = rng.choice(everyone)
        choice = rng.choice(
            [
                "balance",
                "history",
                "ideas",
                "offers",
                "help",
                "frobnicate",
                f"grant <@{rng.choice(INNOVATORS)}> 1 not-staff-{n}",
                "accept R-999",
                f"grant <@{rng.choice(PEERS)}> 1 bonus-{n}",
            ]
        )
        if choice.startswith("grant") and "bonus" in choice:
            user = STAFF
        out.append((user, choice))
    return out


@dataclass
class BotProcess:
    """`sif-bot run` in Slack HTTP mode, killable and restartable."""

    env: dict[str, str]
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                SIF_BOT,
                "run",
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if self.proc.returncode is not None:
                    raise AssertionError(f"sif-bot exited: {self.log.read_text()[-3000:]}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            self.ready.set()
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("sif-bot did not become healthy in 60 s")

    async def kill(self) -> None:
        self.ready.clear()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s; the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.ready.clear()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


@dataclass
class Outcome:
    messages: Counter[tuple[str, str]]  # (channel, text with times masked) Slack received
    state: dict[str, Any]  # what the database holds
    retries: int
    starts: int


TRACE: list[tuple[int, int, int]] = []  # (step, attempt, status) of every retry
# Clock times and ages in texts depend on how long the run took, not on what happened.
TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?|just now|\d+ (second|minute|hour|day)s? ago"
)


@contextlib.asynccontextmanager
async def fresh_bot(tmp_path: Path) -> AsyncIterator[tuple[BotProcess, FakeSlack, str]]:
    """A started `sif-bot run` on a new PostgreSQL database and a fake Slack; yields
    (bot, slack, libpq DSN) and removes the database afterwards."""
    name = f"sif_crash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    try:
        async with FakeSlack() as slack:
            for user in (STAFF, *INNOVATORS, *PEERS):
                slack.users[user] = {"name": user.lower(), "real_name": f"Member {user}"}
            port = _free_port()
            environment = {**_environment(dsn, slack.base_url), "PORT": str(port)}
            bot = BotProcess(environment, port, tmp_path / "bot.log")
            await bot.start()
            try:
                yield bot, slack, dsn
            finally:
                await bot.stop()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def play(tmp_path: Path, kills: int, seed: int) -> Outcome:
    """Play the script against a fresh database, killing the bot `kills` times."""
    async with fresh_bot(tmp_path) as (bot, slack, dsn):
        retries = await _drive(bot, slack, kills, random.Random(seed))
        await _wait_until_delivered(dsn)
        await bot.stop()
        outcome = Outcome(Counter(), await _state(dsn), retries, bot.starts)
        posted = slack.calls_to("chat.postMessage")
        ids = Counter(c.args["metadata"]["event_payload"]["outbox_id"] for c in posted)
        twice = {i: n for i, n in ids.items() if n > 1}
        assert not twice, f"outbox messages sent more than once: {twice}"
        assert set(ids) == set(outcome.state["outbox_ids"]), "outbox rows vs Slack differ"
        for call in posted:
            text = TIME.sub("<time>", str(call.args.get("text", "")))
            outcome.messages[(str(call.args["channel"]), text)] += 1
        return outcome


def _environment(dsn: str, api_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "SLACK_BOT_TOKEN": "xoxb-crash-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": api_url,
        "SIF_ADMINS": f"slack:T0001:{STAFF}",
        "SIF_OUTBOX_LEASE_SECONDS": "2",
        "SIF_OUTBOX_RETRY_SECONDS": "1",
        # the script sends as fast as it can; limits are tested in test_abuse_limits
        "SIF_RATE_COMMANDS_PER_MINUTE": "0",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drive(bot: BotProcess, slack: FakeSlack, kills: int, rng: random.Random) -> int:
    """Send every step as Slack would (retrying until acknowledged) while a killer task
    SIGKILLs and restarts the bot after randomly chosen steps; returns the retries."""
    script = build_script()
    kill_after = dict.fromkeys(sorted(rng.sample(range(5, COMMANDS - 5), kills)), 0.0)
    for step in kill_after:
        kill_after[step] = rng.uniform(0.0, 0.08)  # before, during or after the work
    reached = asyncio.Event()
    position = 0
    retries = 0

    async def killer() -> None:
        for step, delay in kill_after.items():
            while position < step:
                reached.clear()
                await reached.wait()
            await asyncio.sleep(delay)
            await bot.kill()
            await bot.start()

    killing = asyncio.create_task(killer())
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for index, (user, text) in enumerate(script):
                position = index
                reached.set()
                event = message_im_event(text=text, user=user, channel=slack.dm_channel(user))
                body = event_body(event, event_id=f"Ev{index:05d}")
                attempt = 0
                while True:
                    status = 0
                    sent_at = asyncio.get_running_loop().time()
                    try:
                        status, _ = await post_event(
                            bot.url, body, SECRET, attempt=attempt, session=session
                        )
                        if status == 200:
                            took = asyncio.get_running_loop().time() - sent_at
                            if took > 1:
                                TRACE.append((index, attempt, -int(took * 1000)))
                            break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    attempt += 1
                    retries += 1
                    TRACE.append((index, attempt, status))
                    # Slack waits before retrying; a live but slow bot gets time to finish.
                    await asyncio.sleep(0.05 if status == 0 else 1.0)
                    await asyncio.wait_for(bot.ready.wait(), 90)
            position = COMMANDS
            reached.set()
        await asyncio.wait_for(killing, 120)
    finally:
        killing.cancel()
    return retries


async def _query(dsn: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _wait_until_delivered(dsn: str) -> None:
    for _ in range(600):
        rows = await _query(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        if rows[0][0] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("outbox messages still unsent after 60 s")


async def _state(dsn: str) -> dict[str, Any]:
    """What the database holds, in terms that do not depend on timing."""
    balances = await _query(
        dsn,
        "SELECT i.external_id, a.kind, a.balance FROM accounts a "
        "LEFT JOIN identities i ON i.member_id = a.member_id ORDER BY 1, 2",
    )
    transactions = await _query(
        dsn,
        "SELECT kind, reason, count(*) FROM ledger_transactions GROUP BY 1, 2 ORDER BY 1, 2",
    )
    ideas = await _query(dsn, "SELECT number, title, answers::text FROM ideas ORDER BY number")
    requests = await _query(dsn, "SELECT number, status FROM requests ORDER BY number")
    offers = await _query(dsn, "SELECT status, count(*) FROM offers GROUP BY status ORDER BY 1")
    events = await _query(dsn, "SELECT count(*) FROM processed_events")
    conversations = await _query(dsn, "SELECT count(*) FROM conversations")
    outbox = await _query(dsn, "SELECT id FROM outbox WHERE platform = 'slack' ORDER BY id")
    return {
        "balances": [tuple(r) for r in balances],
        "transactions": [tuple(r) for r in transactions],
        "ideas": [tuple(r) for r in ideas],
        "requests": [tuple(r) for r in requests],
        "offers": [tuple(r) for r in offers],
        "events": events[0][0],
        "conversations": conversations[0][0],
        "outbox_ids": [r[0] for r in outbox],
        "invariants": await _invariants(dsn),
    }


async def _invariants(dsn: str) -> list[str]:
    from store.db import make_engine, make_sessionmaker
    from store.uow import SqlUnitOfWorkFactory

    engine = make_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
        problems: list[str] = []
        communities = await _query(dsn, "SELECT id FROM communities")
        async with factory() as uow:
            for (community,) in communities:
                problems += await uow.ledger.check_invariants(community)
        return problems
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The script played once without kills: what every crash run must end up with."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    return asyncio.run(play(tmp_path_factory.mktemp("reference"), kills=0, seed=0))


def check_against(outcome: Outcome, reference: Outcome) -> None:
    assert outcome.state["invariants"] == []
    assert outcome.state["events"] == COMMANDS  # every event recorded once
    for key in ("balances", "transactions", "ideas", "requests", "offers", "conversations"):
        assert outcome.state[key] == reference.state[key], key
    assert len(outcome.state["outbox_ids"]) == len(reference.state["outbox_ids"])
    missing = reference.messages - outcome.messages
    extra = outcome.messages - reference.messages
    assert not missing and not extra, f"missing {list(missing)[:5]}, extra {list(extra)[:5]}"


async def test_the_script_without_kills_does_what_it_says(reference: Outcome) -> None:
    state = reference.state
    assert state["invariants"] == [] and state["events"] == COMMANDS
    assert len(state["ideas"]) == 8 and all(i[1].startswith("Idea ") for i in state["ideas"])
    assert [status for _, status in state["requests"]] == ["confirmed"] * 8
    assert reference.retries == 0 and reference.starts == 1
    assert sum(reference.messages.values()) >= COMMANDS  # every command was answered


async def test_killed_at_random_points_every_command_and_message_happens_once(
    reference: Outcome, tmp_path: Path
) -> None:
    outcome = await play(tmp_path, kills=6, seed=int(os.environ.get("SIF_CRASH_SEED", "1")))
    assert outcome.starts == 7 and outcome.retries > 0
    check_against(outcome, reference)


@pytest.mark.slow
@pytest.mark.parametrize("run", range(SLOW_RUNS))
async def test_twenty_crash_runs(reference: Outcome, tmp_path: Path, run: int) -> None:
    outcome = await play(tmp_path, kills=8, seed=1000 + run)
    print(f"run {run}: {outcome.starts - 1} kills, {outcome.retries} retried events")
    check_against(outcome, reference)


async def test_sigterm_finishes_the_work_in_flight(tmp_path: Path) -> None:
    """A burst of events, SIGTERM as soon as the first is acknowledged: the bot exits 0,
    every acknowledged event was answered, nothing is left in the outbox, and events
    after the stop are refused at the door (Slack retries them elsewhere)."""
    try:
        await _pg_admin("SELECT 1")
    except Exception as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    async with fresh_bot(tmp_path) as (bot, slack, dsn):
        users = [f"U9{n:03d}" for n in range(40)]
        acked: list[str] = []
        first = asyncio.Event()

        async def send(user: str) -> None:
            event = message_im_event(text="balance", user=user, channel=slack.dm_channel(user))
            try:
                status, _ = await post_signed(
                    bot.url,
                    event_body(event, event_id=f"EvT{user}"),
                    SECRET,
                    content_type="application/json",
                )
            except aiohttp.ClientError:
                return
            if status == 200:
                acked.append(user)
                first.set()

        burst = [asyncio.create_task(send(user)) for user in users]
        await asyncio.wait_for(first.wait(), 30)
        code = await bot.stop()
        await asyncio.gather(*burst)
        assert code == 0, bot.log.read_text()[-2000:]
        assert acked and len(acked) <= len(users)
        answered = {c.args["channel"] for c in slack.calls_to("chat.postMessage")}
        assert {slack.dm_channel(user) for user in acked} <= answered
        rows = await _query(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        assert rows[0][0] == 0
        with pytest.raises(aiohttp.ClientError):
            await post_signed(bot.url, event_body({}), SECRET, content_type="application/json")
