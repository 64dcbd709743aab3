"""Load test: simulated members on Slack's HTTP path against several `sif-bot run` processes.

A scratch PostgreSQL database, one local fake Slack Web API (in this process) and
`--processes` real `sif-bot run` processes in Slack HTTP mode on the same database and
the same fake Slack, each on its own port. `--members` simulated people write to the bot
in their DMs for `--seconds`; each request goes to a randomly chosen process, as behind
a load balancer. A person sends their next message only after the previous one was
answered with an HTTP status (the bot acknowledges once the command is committed), after
a think time of 0-200 ms. Every request is a signed `message.im` event with a unique
event_id; a non-200 or a connection error counts as an error and is sent once more,
to the other process, with X-Slack-Retry-Num, as Slack would.

The people (SIF_FANOUT=3, so several peers race for each request):

* one staff member: grants SIF to innovators, looks at `balances`;
* innovators (40 %): `intake` and its answers, then `request I-n review`; `thanks R-n 5`
  once the review arrived; sometimes a new intake; they cancel a request that found
  nobody (and a few cancel right away, racing the peers' accepts);
* peers (the rest): `expertise add <tag>:3`, then `accept R-n` (sometimes `decline`) for
  every offer the fake Slack delivered to their DM, `done R-n 2 <text>` for those they won;
* everybody mixes in `balance`, `history`, `ideas`, `help` (peers `offers`).

People only learn what the bot told them: they read their DM channel in the fake Slack.

Reported: requests, throughput, HTTP round-trip latency (p50/p95/p99/max, and per
command), errors (non-200 or exceptions, replies "Sorry, something went wrong", log lines
at level error in the bots' logs) and duplicate side effects once the outbox is empty
(an outbox row reaching Slack more than once, an event recorded other than once, a
request with more than one accepted offer, escrow hold, release or refund), plus the
ledger invariants and a few consistency checks (every outbox row delivered, every event
recorded, a request the bot said it cancelled is cancelled). Exits 1 when the goal
(0 errors, 0 duplicate side effects) is missed or a consistency check fails.

    .venv/bin/python tests/bench/load.py [--seconds 60] [--members 50] [--processes 2]

The outbox runs with the bot's production defaults (lease 120 s, retry 30 s) unless
`--lease`/`--retry` say otherwise (the crash test uses 2 s and 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp

from tests.adapters.slack.fake_slack import FakeSlack, event_body, message_im_event, post_event
from tests.conftest import PG_ADMIN_DSN, _pg_admin
from tests.e2e.test_crash import (
    SECRET,
    STAFF,
    BotProcess,
    _environment,
    _free_port,
    _intake,
    _invariants,
    _query,
)

TAGS = ("finance", "legal", "marketing", "design")
FEEDBACK = "Clear need; test the income plan with a pilot."
SLACK_TIMEOUT = 3.0  # Slack retries an event it got no answer for within 3 s
PATIENCE = 60.0  # seconds a person waits for an answer before carrying on

# What people react to is read from the topic and subject each message carries in its
# Slack metadata (never from the wording).
GONE = frozenset({"offer.taken", "offer.cancelled", "request.cancelled"})
LOST = frozenset({"taken", "offer-gone", "not-offered"})


def _about(message: dict[str, Any]) -> tuple[str, int | None]:
    """A delivered message's topic and the number of the request or idea it is about."""
    payload = (message.get("metadata") or {}).get("event_payload") or {}
    subject = payload.get("subject")
    return str(payload.get("topic", "")), int(subject.split("-", 1)[1]) if subject else None


def now() -> float:
    return time.monotonic()


# -- the people ------------------------------------------------------------------------------


@dataclass
class Person:
    user: str
    name: str
    rng: random.Random
    cursor: int = 0  # messages of the DM channel already read
    waiting: str = ""  # what the person waits for the bot to say, if anything
    waiting_since: float = 0.0

    @property
    def channel(self) -> str:
        return FakeSlack.dm_channel(self.user)

    def read(self, slack: FakeSlack) -> None:
        messages = slack.history.get(self.channel, [])
        for message in messages[self.cursor :]:
            self.heard(*_about(message))
        self.cursor = len(messages)
        if self.waiting and now() - self.waiting_since > PATIENCE:
            self.waiting = ""  # a lost or unexpected answer: carry on

    def wait_for(self, what: str) -> None:
        self.waiting, self.waiting_since = what, now()

    def heard(self, topic: str, number: int | None) -> None:
        if topic == "error":
            self.waiting = ""

    def filler(self) -> str:
        return self.rng.choice(("balance", "history", "ideas", "help"))

    def next_text(self) -> str:
        raise NotImplementedError


@dataclass
class Staff(Person):
    innovators: list[str] = field(default_factory=list)
    grants: int = 0

    def next_text(self) -> str:
        roll = self.rng.random()
        if roll < 0.3 and self.innovators:
            self.grants += 1
            return f"grant <@{self.rng.choice(self.innovators)}> 3 top-up {self.grants}"
        if roll < 0.45:
            return "balances"
        return self.filler()


@dataclass
class Innovator(Person):
    tag: str = "finance"
    answers: list[str] = field(default_factory=list)  # intake answers still to give
    rounds: int = 0  # intakes started
    idea: int | None = None
    request: int | None = None
    state: str = ""  # of the request: open, escalated, assigned, delivered, thanking
    since: float = 0.0
    poor_until: float = 0.0
    reviews: int = 0  # thanked
    told_cancelled: set[int] = field(default_factory=set)  # requests the bot said it cancelled

    def heard(self, topic: str, number: int | None) -> None:
        super().heard(topic, number)
        if topic == "idea.saved":
            self.idea = number
            self.waiting = ""
        elif topic in ("asked", "asked.escalated"):
            self.request, self.since, self.waiting = number, now(), ""
            self.state = "escalated" if topic == "asked.escalated" else "open"
        elif topic == "credit-limit":
            self.waiting, self.poor_until = "", now() + 1.0
        elif topic == "request.accepted" and number == self.request:
            self.state = "assigned"
        elif topic == "request.delivered" and number == self.request:
            self.state = "delivered"
        elif topic == "thanked" and number == self.request:
            self.request, self.state, self.waiting = None, "", ""
            self.reviews += 1
        elif topic == "cancelled" and number is not None:
            self.told_cancelled.add(number)
            if number == self.request:
                self.request, self.state, self.waiting = None, "", ""
        elif topic == "not-cancellable" and number == self.request:
            self.waiting = ""

    def next_text(self) -> str:
        rng = self.rng
        if self.answers:
            if rng.random() < 0.1:
                return rng.choice(("balance", "history"))  # commands between answers
            answer = self.answers.pop(0)
            if not self.answers:
                self.wait_for("idea")
            return answer
        if self.waiting:
            return self.filler()
        if self.state == "thanking":  # the answer to the thanks never came
            self.request, self.state = None, ""
        if self.idea is None or (self.request is None and self.reviews and rng.random() < 0.1):
            self.rounds += 1
            self.idea = None
            self.answers = _intake(self.user, self.rounds, self.tag)
            return self.answers.pop(0)  # "intake"
        if self.request is None:
            if now() < self.poor_until or rng.random() < 0.3:
                return self.filler()
            self.wait_for("request")
            return f"request I-{self.idea} review"
        age = now() - self.since
        if self.state == "delivered":
            self.state = "thanking"
            self.wait_for("thanks")
            return f"thanks R-{self.request} 5"
        if self.state in ("open", "escalated") and (
            self.state == "escalated" or age > PATIENCE / 2 or (age < 1 and rng.random() < 0.05)
        ):
            self.wait_for("cancel")
            return f"cancel R-{self.request}"
        return self.filler()


@dataclass
class Peer(Person):
    tags: tuple[str, ...] = ()
    registered: bool = False
    offered: list[int] = field(default_factory=list)
    accepting: set[int] = field(default_factory=set)
    assigned: list[int] = field(default_factory=list)
    won: int = 0
    lost: int = 0

    def heard(self, topic: str, number: int | None) -> None:
        super().heard(topic, number)
        if number is None:
            return
        if topic == "offer":
            self.offered.append(number)
        elif topic in GONE:
            if number in self.offered:
                self.offered.remove(number)
            if number in self.assigned:
                self.assigned.remove(number)
        elif topic == "accepted":
            self.accepting.discard(number)
            self.assigned.append(number)
            self.won += 1
        elif topic in LOST:
            self.accepting.discard(number)
            self.lost += 1

    def next_text(self) -> str:
        rng = self.rng
        if not self.registered:
            self.registered = True
            return "expertise add " + " ".join(f"{tag}:3" for tag in self.tags)
        if self.assigned and rng.random() < 0.6:
            return f"done R-{self.assigned.pop(0)} 2 {FEEDBACK}"
        if self.offered:
            number = self.offered.pop(0)
            if rng.random() < 0.1:
                return f"decline R-{number} busy this week"
            self.accepting.add(number)
            return f"accept R-{number}"
        if rng.random() < 0.3:
            return "offers"
        return self.filler()


def community(members: int, rng: random.Random) -> list[Person]:
    innovators = max(1, round((members - 1) * 0.4))
    peers = max(1, members - 1 - innovators)
    people: list[Person] = []
    for i in range(innovators):
        people.append(
            Innovator(
                f"U1{i:03d}", f"inno{i:02d}", random.Random(rng.random()), tag=TAGS[i % len(TAGS)]
            )
        )
    for i in range(peers):
        tags: tuple[str, ...] = (TAGS[i % len(TAGS)],)
        if rng.random() < 0.4:
            tags += (TAGS[(i + 1) % len(TAGS)],)
        people.append(Peer(f"U2{i:03d}", f"peer{i:02d}", random.Random(rng.random()), tags=tags))
    staff = Staff(STAFF, "staff", random.Random(rng.random()))
    staff.innovators = [p.user for p in people if isinstance(p, Innovator)]
    return [staff, *people]


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[tuple[str, float]] = field(default_factory=list)  # (command, ms)
    requests: int = 0  # first attempts
    retries: int = 0
    failures: list[str] = field(default_factory=list)  # non-200 or exceptions, per attempt
    unanswered: int = 0  # events that failed twice
    event_ids: list[str] = field(default_factory=list)
    events: int = 0


async def drive(
    people: list[Person],
    bots: list[BotProcess],
    slack: FakeSlack,
    seconds: float,
    rng: random.Random,
) -> tuple[Stats, float]:
    stats = Stats()
    deadline = now() + seconds
    timeout = aiohttp.ClientTimeout(total=30)

    async def send(session: aiohttp.ClientSession, person: Person, text: str) -> None:
        stats.events += 1
        event_id = f"EvLoad{stats.events:07d}"
        stats.event_ids.append(event_id)
        event = message_im_event(text=text, user=person.user, channel=person.channel)
        body = event_body(event, event_id=event_id)
        command = _command_name(text)
        stats.requests += 1
        target = rng.randrange(len(bots))
        for attempt in range(2):
            bot = bots[(target + attempt) % len(bots)]
            started = time.perf_counter()
            try:
                status, answer = await post_event(
                    bot.url, body, SECRET, attempt=attempt, session=session
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                waited = time.perf_counter() - started
                stats.failures.append(
                    f"{event_id} ({command}, attempt {attempt + 1}) to :{bot.port}: "
                    f"{type(exc).__name__} {exc} after {waited:.1f} s"
                )
            else:
                if status == 200:
                    took = (time.perf_counter() - started) * 1000
                    stats.latencies.append((command, took))
                    return
                stats.failures.append(
                    f"{event_id} ({command}, attempt {attempt + 1}) to :{bot.port}: "
                    f"HTTP {status} {answer[:200]}"
                )
            if attempt == 0:
                stats.retries += 1
        stats.unanswered += 1

    async def live(session: aiohttp.ClientSession, person: Person) -> None:
        await asyncio.sleep(person.rng.uniform(0, 0.5))  # people arrive over half a second
        while now() < deadline:
            person.read(slack)
            await send(session, person, person.next_text())
            await asyncio.sleep(person.rng.uniform(0, 0.2))

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(live(session, person) for person in people))
    return stats, time.perf_counter() - started


def _command_name(text: str) -> str:
    first = text.split(maxsplit=1)[0].lower() if text.strip() else ""
    known = {
        "balance",
        "balances",
        "history",
        "ideas",
        "help",
        "offers",
        "intake",
        "request",
        "accept",
        "decline",
        "done",
        "thanks",
        "cancel",
        "grant",
        "expertise",
    }
    return first if first in known else "intake answer"


LOCK_WAITS = """
SELECT left(regexp_replace(a.query, '\\s+', ' ', 'g'), 110),
       extract(epoch FROM now() - a.query_start),
       b.state,
       left(regexp_replace(b.query, '\\s+', ' ', 'g'), 110)
FROM pg_stat_activity a
LEFT JOIN pg_stat_activity b ON b.pid = (pg_blocking_pids(a.pid))[1]
WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
"""


@dataclass
class LockWaits:
    """What PostgreSQL sessions waited for a lock on, sampled twice a second."""

    samples: int = 0
    waiting: int = 0  # waiting sessions summed over the samples
    most: int = 0  # most sessions waiting at once
    longest: float = 0.0  # seconds
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (waiter, blocker)


async def sample_lock_waits(dsn: str, waits: LockWaits, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            rows = await _query(dsn, LOCK_WAITS)
        except Exception:  # the sampler must never disturb the run
            rows = []
        waits.samples += 1
        waits.waiting += len(rows)
        waits.most = max(waits.most, len(rows))
        for waiter, seconds, state, blocker in rows:
            waits.longest = max(waits.longest, float(seconds or 0))
            waits.pairs[(str(waiter), f"[{state}] {blocker}")] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def wait_until_delivered(dsn: str, limit: float) -> float | None:
    """Seconds until the outbox was empty, or None if it was not within `limit`."""
    started = now()
    while now() - started < limit:
        rows = await _query(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        if rows[0][0] == 0:
            return now() - started
        await asyncio.sleep(0.2)
    return None


# -- the checks ------------------------------------------------------------------------------


@dataclass
class Findings:
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    duplicates: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    inconsistencies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    facts: dict[str, Any] = field(default_factory=dict)


def log_errors(logs: list[Path]) -> list[str]:
    found = []
    for path in logs:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if not line.startswith("{"):
                if "Traceback" in line:
                    found.append(f"{path.name}:{number}: {line}")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if str(record.get("level", "")).lower() in ("error", "critical"):
                found.append(f"{path.name}:{number}: {line[:4000]}")
    return found


async def check(
    dsn: str, slack: FakeSlack, stats: Stats, people: list[Person], logs: list[Path]
) -> Findings:
    found = Findings()
    found.errors["non-200 or exception"] = stats.failures
    posted = slack.calls_to("chat.postMessage")
    found.errors["reply 'Sorry, something went wrong'"] = [
        f"{c.args.get('channel')}: {str(c.args.get('text'))[:200]}"
        for c in posted
        if _about(c.args)[0] == "error"
    ]
    found.errors["log line at level error"] = log_errors(logs)

    # Every outbox row reached Slack exactly once.
    ids: Counter[int] = Counter()
    untagged = 0
    for call in posted:
        metadata = call.args.get("metadata")
        if isinstance(metadata, dict) and "outbox_id" in (metadata.get("event_payload") or {}):
            ids[int(metadata["event_payload"]["outbox_id"])] += 1
        else:
            untagged += 1
    rows = {r[0] for r in await _query(dsn, "SELECT id FROM outbox WHERE platform = 'slack'")}
    found.duplicates["outbox row posted more than once"] = [
        f"outbox {i}: {n} times" for i, n in sorted(ids.items()) if n > 1
    ]
    unsent = await _query(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    found.facts["unsent"] = unsent[0][0]
    found.inconsistencies["outbox row never posted (unsent or lost)"] = [
        f"outbox {i}" for i in sorted(rows - set(ids))
    ]
    found.inconsistencies["message posted for no outbox row"] = [
        f"outbox {i}" for i in sorted(set(ids) - rows)
    ] + ([f"{untagged} chat.postMessage calls without outbox metadata"] if untagged else [])
    found.facts["outbox rows"] = len(rows)
    found.facts["chat.postMessage calls"] = len(posted)
    found.facts["history look-ups (sends in doubt)"] = len(slack.calls_to("conversations.history"))

    # Every event recorded exactly once.
    keys = [r[0] for r in await _query(dsn, "SELECT key FROM processed_events")]
    recorded = Counter(key.rsplit(":", 1)[1] for key in keys)
    found.duplicates["event recorded more than once"] = [
        f"{e}: {n}" for e, n in recorded.items() if n > 1
    ]
    sent = set(stats.event_ids)
    found.inconsistencies["event sent but not recorded"] = [
        e for e in stats.event_ids if e not in recorded
    ]
    found.inconsistencies["event recorded but never sent"] = [e for e in recorded if e not in sent]
    found.facts["events recorded"] = len(keys)
    lag = await _query(
        dsn,
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s), max(s) "
        "FROM (SELECT extract(epoch FROM sent_at - created_at) AS s FROM outbox) AS lags",
    )
    (p50, p95, p99), longest = lag[0][0] or (0, 0, 0), lag[0][1] or 0
    found.facts["delivery lag"] = (
        f"p50 {p50:.1f} s, p95 {p95:.1f} s, p99 {p99:.1f} s, max {float(longest):.1f} s"
    )

    # Per request: at most one accepted offer and one hold, release and refund.
    per_request = await _query(
        dsn,
        "SELECT r.number, r.status, r.peer_id IS NOT NULL, "
        "(SELECT count(*) FROM offers o WHERE o.request_id = r.id AND o.status = 'accepted'), "
        "(SELECT count(*) FROM ledger_transactions t WHERE t.request_id = r.id "
        " AND t.kind = 'hold'), "
        "(SELECT count(*) FROM ledger_transactions t WHERE t.request_id = r.id "
        " AND t.kind = 'release'), "
        "(SELECT count(*) FROM ledger_transactions t WHERE t.request_id = r.id "
        " AND t.kind = 'refund') "
        "FROM requests r ORDER BY r.number",
    )
    status_of = {}
    for number, status, has_peer, accepted, holds, releases, refunds in per_request:
        status_of[number] = status
        ref = f"R-{number} ({status})"
        for what, count in (
            ("accepted offers", accepted),
            ("holds", holds),
            ("releases", releases),
            ("refunds", refunds),
        ):
            if count > 1:
                found.duplicates[f"request with more than one of its {what}"].append(
                    f"{ref}: {count}"
                )
        if has_peer and (accepted != 1 or holds != 1):
            found.inconsistencies["assigned request without its accepted offer and hold"].append(
                f"{ref}: {accepted} accepted, {holds} holds"
            )
        if not has_peer and (accepted or holds):
            found.inconsistencies["unassigned request with an accepted offer or hold"].append(
                f"{ref}: {accepted} accepted, {holds} holds"
            )
        if status == "confirmed" and releases != 1:
            found.inconsistencies["confirmed request not paid once"].append(ref)
    for person in people:
        if isinstance(person, Innovator):
            for number in sorted(person.told_cancelled):
                if status_of.get(number) != "cancelled":
                    found.inconsistencies["told 'Cancelled' but the request is not"].append(
                        f"R-{number} of {person.name} is {status_of.get(number)}"
                    )
    found.inconsistencies["ledger invariant broken"] = await _invariants(dsn)

    requests = Counter(status for status in status_of.values())
    offers = await _query(dsn, "SELECT status, count(*) FROM offers GROUP BY 1 ORDER BY 1")
    ideas = await _query(dsn, "SELECT count(*) FROM ideas")
    transactions = await _query(
        dsn, "SELECT kind, count(*) FROM ledger_transactions GROUP BY 1 ORDER BY 1"
    )
    found.facts["ideas"] = ideas[0][0]
    found.facts["requests"] = ", ".join(f"{s} {n}" for s, n in sorted(requests.items())) or "-"
    found.facts["offers"] = ", ".join(f"{s} {n}" for s, n in offers) or "-"
    found.facts["ledger transactions"] = ", ".join(f"{k} {n}" for k, n in transactions) or "-"
    return found


# -- the report ------------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def report(
    args: argparse.Namespace,
    people: list[Person],
    stats: Stats,
    seconds: float,
    found: Findings,
    load: tuple[float, float],
    cpu: list[float],
    waits: LockWaits,
    drained: float | None,
) -> bool:
    innovators = [p for p in people if isinstance(p, Innovator)]
    peers = [p for p in people if isinstance(p, Peer)]
    lease = f"{args.lease:g} s" if args.lease else "default 120 s"
    retry = f"{args.retry:g} s" if args.retry else "default 30 s"
    print(
        f"\nload test: {len(people)} members (1 staff, {len(innovators)} innovators, "
        f"{len(peers)} peers) for {args.seconds:g} s against {args.processes} sif-bot "
        f"processes (Slack HTTP mode, PostgreSQL); SIF_FANOUT=3, outbox lease {lease}, "
        f"retry {retry}"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} before, {load[1]:.2f} "
        "after (the driver and fake Slack share them with the bots and PostgreSQL)"
    )
    used = ", ".join(f"bot{i + 1} {c:.1f} s" for i, c in enumerate(cpu[:-1]))
    print(f"CPU time      during the load: {used}, driver + fake Slack {cpu[-1]:.1f} s")
    all_ms = [ms for _, ms in stats.latencies]
    print(
        f"requests      {stats.requests} events in {seconds:.1f} s "
        f"({len(all_ms)} answered 200, {stats.retries} retried, {stats.unanswered} unanswered)"
    )
    print(f"throughput    {len(all_ms) / seconds:.1f} requests/s")
    print(
        f"latency       p50 {percentile(all_ms, 0.5):.1f} ms, p95 {percentile(all_ms, 0.95):.1f}"
        f" ms, p99 {percentile(all_ms, 0.99):.1f} ms, max {max(all_ms, default=0):.1f} ms "
        f"(HTTP round trip to the ack after commit); over Slack's 3 s: "
        f"{sum(ms > SLACK_TIMEOUT * 1000 for ms in all_ms)}"
    )
    by_command: dict[str, list[float]] = defaultdict(list)
    for command, ms in stats.latencies:
        by_command[command].append(ms)
    print("  per command  count     p50 ms   p99 ms")
    for command, values in sorted(by_command.items(), key=lambda kv: -len(kv[1])):
        print(
            f"  {command:<13}{len(values):6d}   {percentile(values, 0.5):8.1f} "
            f"{percentile(values, 0.99):8.1f}"
        )
    won = sum(p.won for p in peers)
    lost = sum(p.lost for p in peers)
    print(
        f"flow          ideas {found.facts['ideas']}; requests: {found.facts['requests']}; "
        f"offers: {found.facts['offers']}; accepts won {won}, lost races {lost}; "
        f"reviews thanked {sum(p.reviews for p in innovators)}"
    )
    print(f"ledger        {found.facts['ledger transactions']}")
    print(
        f"delivery lag  {found.facts['delivery lag']} (outbox row created at the start of "
        "the command to marked sent: what a person waits for the answer)"
    )
    empty = (
        f"empty {drained:.1f} s after the load"
        if drained is not None
        else f"NOT empty {args.drain:g} s after the load "
        f"({found.facts['unsent']} unsent in the end)"
    )
    print(
        f"outbox        {found.facts['outbox rows']} rows, {found.facts['chat.postMessage calls']}"
        f" chat.postMessage calls, {found.facts['history look-ups (sends in doubt)']} history "
        f"look-ups; {empty}; "
        f"{found.facts['events recorded']} events recorded"
    )
    print(
        f"lock waits    {waits.waiting / max(waits.samples, 1):.1f} sessions waiting on average,"
        f" {waits.most} at most, longest {waits.longest:.1f} s (PostgreSQL, sampled every 0.5 s)"
    )
    for (waiter, blocker), count in waits.pairs.most_common(3):
        print(f"  {count:4d}x  {waiter}\n        behind {blocker}")
    errors = sum(len(v) for v in found.errors.values())
    duplicates = sum(len(v) for v in found.duplicates.values())
    inconsistencies = sum(len(v) for v in found.inconsistencies.values())
    for title, groups in (
        (f"errors        {errors}", found.errors),
        (f"duplicates    {duplicates}", found.duplicates),
        (f"consistency   {inconsistencies} problems", found.inconsistencies),
    ):
        print(title)
        for what, items in groups.items():
            if items:
                print(f"  {what}: {len(items)}")
                for item in items[:5]:
                    print(f"    {item}")
    met = errors == 0 and duplicates == 0
    print(f"goal: 0 errors, 0 duplicate side effects: {'met' if met else 'missed'}")
    return met and inconsistencies == 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lease", type=float, help="SIF_OUTBOX_LEASE_SECONDS (default: bot's)")
    parser.add_argument("--retry", type=float, help="SIF_OUTBOX_RETRY_SECONDS (default: bot's)")
    parser.add_argument(
        "--drain", type=float, default=180, help="seconds to wait for the outbox to empty"
    )
    parser.add_argument("--logs", type=Path, help="directory for the bots' logs (default: temp)")
    args = parser.parse_args()
    if args.members < 3 or args.processes < 1:
        parser.error("needs at least 3 members and 1 process")
    rng = random.Random(args.seed)
    logs_dir = args.logs or Path(tempfile.mkdtemp(prefix="sif-load-"))
    logs_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]

    name = f"sif_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    dsn = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    print(f"database {name}; bot logs in {logs_dir}", flush=True)
    try:
        async with FakeSlack() as slack:
            people = community(args.members, rng)
            for person in people:
                slack.users[person.user] = {"name": person.name, "real_name": person.name}
            environment = _environment(dsn, slack.base_url)
            environment.pop("SIF_OUTBOX_LEASE_SECONDS")
            environment.pop("SIF_OUTBOX_RETRY_SECONDS")
            if args.lease:
                environment["SIF_OUTBOX_LEASE_SECONDS"] = f"{args.lease:g}"
            if args.retry:
                environment["SIF_OUTBOX_RETRY_SECONDS"] = f"{args.retry:g}"
            environment["SIF_FANOUT"] = "3"
            bots = []
            for index in range(args.processes):
                port = _free_port()
                bot = BotProcess(
                    {**environment, "PORT": str(port)}, port, logs_dir / f"bot{index + 1}.log"
                )
                await bot.start()  # the first migrates the database; the next find it done
                bots.append(bot)
            print(
                f"{len(bots)} sif-bot processes healthy; driving {len(people)} members", flush=True
            )
            waits = LockWaits()
            try:
                cpu = [cpu_seconds(b.proc.pid if b.proc else None) for b in bots]
                cpu.append(time.process_time())
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_lock_waits(dsn, waits, stop))
                try:
                    stats, seconds = await drive(people, bots, slack, args.seconds, rng)
                finally:
                    stop.set()
                    await sampler
                load_after = os.getloadavg()[0]
                cpu = [
                    after - before
                    for before, after in zip(
                        cpu,
                        [
                            *(cpu_seconds(b.proc.pid if b.proc else None) for b in bots),
                            time.process_time(),
                        ],
                        strict=True,
                    )
                ]
                drained = await wait_until_delivered(dsn, args.drain)
            finally:
                for bot in bots:
                    await bot.stop()
            found = await check(dsn, slack, stats, people, [b.log for b in bots])
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    met = report(
        args, people, stats, seconds, found, (load_before, load_after), cpu, waits, drained
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
