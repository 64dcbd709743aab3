"""Abuse: whatever arrives, `Bot.handle` answers without raising, never with the generic
SORRY (which means an unexpected exception), every answer renders on Slack and Matrix,
and the ledger's invariants still hold afterwards.

Inputs are built from the real command table (`bot.commands.COMMANDS`): every command
with well-typed arguments (so that grants, requests, accepts, deliveries, thanks,
disputes and resolutions really happen), the same commands with arguments of the wrong
kind, negative and huge numbers, unicode digits, R-n/I-n references, tags, mentions of
known and unknown members, random unicode with control characters and lone surrogates,
texts around the length limits, button actions, explicit and implicit commands, in the
direct chat and in channels, from a handful of members (two of them staff, several with
hostile names) and from newcomers; among them whole request stories (asked, assigned,
accepted, delivered, thanked, disputed and resolved, or cancelled) with guessed numbers.
Now and then the clock moves on and the offer and conversation sweeps run.

Each Hypothesis example is a batch of about 50 inputs against a fresh copy of a seeded
SQLite database; the invariants are checked after each batch. By default 1,500 inputs run;
`--slow` adds the 100,000-input run, and SIF_ABUSE_EXAMPLES=N sets the default run's
number of inputs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from adapters.matrix import translate as matrix
from adapters.slack import translate as slack
from bot.app import jobs
from bot.app.service import SORRY
from bot.bootstrap import assemble, sql_store
from bot.commands import (
    COMMANDS,
    IDEA,
    REQUEST,
    Amount,
    Arg,
    Choice,
    Hours,
    Int,
    Member,
    Ref,
    Rest,
    Tags,
    Word,
)
from bot.domain import ledger
from bot.domain.records import Role
from bot.messages import Inbound, Outbound
from bot.ports import UnitOfWorkFactory
from bot.settings import Settings
from conversations.answers import TAG_PATTERN
from conversations.loader import load_flows
from store.db import create_schema, dispose, make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import make_settings
from tests.fakes import FakeClock, RecordingMessenger

BATCH = 50  # about this many inputs per Hypothesis example (one database copy each)
DEFAULT_INPUTS = int(os.environ.get("SIF_ABUSE_EXAMPLES") or 1_500)
SLOW_INPUTS = 100_000
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAFF_CHANNEL = "#staff"
FLOWS = load_flows()

# (user, display name, role, expertise, languages): hostile names on purpose.
MEMBERS = (
    ("ann", "Ann", Role.MEMBER, (("finance", 3), ("legal", 2)), ["English", "Dutch"]),
    ("bob", "*bold* _it_", Role.MEMBER, (("finance", 2), ("marketing", 3)), ["English"]),
    ("cat", "<script>alert(1)</script>", Role.MEMBER, (("legal", 3), ("design", 1)), ["English"]),
    ("sam", "~strike~ `code` <!channel>", Role.STAFF, (("finance", 1),), ["English"]),
    ("staff", "Staff &amp; co", Role.ADMIN, (), ["English"]),
)
IDEAS = (("ann", "Repair café"), ("cat", "*Tool* <library>"), ("bob", "`Food` ~coop~"))
NEWCOMERS = ("newbie", "ünïcødé", "new 2")
USERS = (*(m[0] for m in MEMBERS), *NEWCOMERS)
NAMES = ("ann", "Ann", "ANN", "bob", "cat", "sam", "staff", "nobody", "newbie", "x" * 300)


# -- the inputs ---------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>", "*bold*", "_it_", "~strike~", "`code`", "```pre```",
    "<!channel>", "<!here>", "<@U123>", "&amp;", "&lt;", "> quote", "@channel", "%s%n{0}",
    "'; DROP TABLE members; --", "\x00", "\x1b[31m", "\u202eevil", "\ufeff", "\u200b",
    "\ud800", "\udfff", "e\u0301", "👩‍👩‍👧", "مقهى", "İ", "ß", "\n", "\r\n", "\t", " ",
]  # fmt: skip
DIGITS = ["²", "³", "½", "٣", "۵", "１２", "Ⅻ", "⑤", "𝟓", "5", "0", "-0", "+-5", "--5", "1e9"]
free_text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),  # surrogates too
    st.text(st.characters(max_codepoint=0x9F), max_size=30),  # ASCII and C0/C1 controls
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map(" ".join),
    st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["x", "é", "🛠", "\x00", "a b ", "*_~`"]),
        st.sampled_from([199, 200, 201, 499, 500, 501, 999, 1000, 1001, 1999, 2000, 2001, 3500]),
    ),
)
numbers = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(DIGITS),
    st.builds(lambda n: "9" * n, st.integers(8, 5000)),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
amounts = st.one_of(
    numbers,
    st.sampled_from(["5", "0.01", "0.001", "1.5", "2,5", "-1.25", "+3", "10 SIF", "5sif", "-"]),
    st.sampled_from(["1000000", "1000000.01", "999999999", "1000000000", "0.00", "-0"]),
    st.decimals(-(10**7), 10**7, places=2).map(str),
)
hours = st.one_of(
    numbers,
    st.sampled_from(["1", "1.5", "2,5", "200", "200.01", "0", "-1", "nan", "inf", "1e-9"]),
)


def refs(prefix: str) -> st.SearchStrategy[str]:
    low = prefix.lower()
    return st.one_of(
        st.integers(1, 6).map(lambda n: f"{prefix}-{n}"),
        st.integers(0, 8).map(lambda n: f"{low}{n}"),
        st.integers(1, 4).map(str),
        st.sampled_from([f"{prefix}-0", f"{prefix}--1", f"{prefix}-", f"{prefix}-999999999"]),
        st.sampled_from([f"{prefix}-9999999999", f"{prefix}-٣", f"{prefix}-1.5", f"{prefix}-²"]),
    )


tags = st.one_of(
    st.sampled_from(["finance", "legal", "marketing", "design", "governance", "FINANCE"]),
    st.from_regex(TAG_PATTERN, fullmatch=True),
    st.sampled_from(["#finance", "finanse", "-x", "a" * 41, "finance:", "x:y:z", ":3"]),
)
tag_levels = st.one_of(
    tags,
    st.tuples(tags, st.sampled_from(["1", "2", "3", "0", "4", "-1", "³", "", "3:3"])).map(":".join),
)
mentions = st.one_of(
    st.sampled_from(NAMES).map(lambda n: f"@{n}"),
    st.sampled_from(USERS).map(lambda u: f"<@console:{u}>"),
    st.sampled_from(
        [
            "@",
            "@@",
            "@@ann",
            "<@console:>",
            "<@console:nobody>",
            "<@slack:T1:U2>",
            "<@matrix:@ann:example.org>",
            "<@CONSOLE:ann>",
            "<@console:ann",
            "@<script>",
        ]
    ),
    free_text.map(lambda t: "@" + "".join(t.split())),
)
any_token = st.one_of(
    numbers, amounts, hours, refs("R"), refs("I"), tag_levels, mentions, free_text,
    st.sampled_from(["pay", "refund", "negative", "all", "confirm", "member", "staff", "admin",
                     "advice", "feedback", "review", "ledger", "members", "requests"]),
)  # fmt: skip


COMMUNITY_TAGS = ("finance", "legal", "marketing", "design", "governance", "technology")
plain_text = st.one_of(
    st.sampled_from(["great work", "thanks!", "double booking", "welcome", "see the deck"]),
    st.sampled_from(["*nice* <b>x</b>", "`help` me", "~no~", "<!channel> look", "R-1 I-2"]),
    st.text(st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=25),
)


def valid(reader: Arg) -> st.SearchStrategy[str]:
    """A value the command accepts (whether the command then succeeds is up to the state)."""
    if isinstance(reader, Member):
        return st.sampled_from(["@ann", "@Ann", "@staff", *(f"<@console:{u}>" for u in USERS)])
    if isinstance(reader, Amount):
        signed = ["-2", "-0.5", "-12"] if reader.signed else []
        return st.sampled_from(["5", "1.5", "0.25", "2,5", "10", "+3", "3 SIF", *signed])
    if isinstance(reader, Int):
        return st.integers(reader.low, min(reader.high, reader.low + 10)).map(str)
    if isinstance(reader, Hours):
        return st.sampled_from(["1", "1.5", "2,5", "0.25", "8"])
    if isinstance(reader, Ref):
        return st.integers(1, 5 if reader is REQUEST else 3).map(
            lambda n: f"{'R' if reader is REQUEST else 'I'}-{n}"
        )
    if isinstance(reader, Choice):
        return st.sampled_from(reader.options)
    if isinstance(reader, Tags):
        tag = st.sampled_from(COMMUNITY_TAGS)
        item = (
            st.tuples(tag, st.sampled_from(["1", "2", "3"])).map(":".join) if reader.levels else tag
        )
        return st.lists(item, min_size=1, max_size=3).map(" ".join)
    if isinstance(reader, Rest | Word):
        return plain_text
    raise AssertionError(f"no strategy for {reader!r}")


def argument(reader: Arg) -> st.SearchStrategy[str]:
    """A value of the kind the command reads, in range or not, or hostile."""
    if isinstance(reader, Member):
        return mentions
    if isinstance(reader, Amount):
        return amounts
    if isinstance(reader, Int):
        return st.one_of(st.integers(reader.low - 1, reader.high + 1).map(str), numbers)
    if isinstance(reader, Hours):
        return hours
    if isinstance(reader, Ref):
        return refs("R" if reader is REQUEST else "I" if reader is IDEA else "X")
    if isinstance(reader, Choice):
        return st.one_of(
            st.sampled_from(reader.options), st.sampled_from(reader.options).map(str.upper)
        )
    if isinstance(reader, Tags):
        return st.lists(tag_levels if reader.levels else tags, min_size=1, max_size=4).map(" ".join)
    if isinstance(reader, Rest | Word):
        return free_text
    raise AssertionError(f"no strategy for {reader!r}")


SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", " \u3000 ", "\xa0"])


@st.composite
def well_typed(draw: st.DrawFn) -> str:
    """A command from the table with arguments of the right kinds (each optional one maybe)."""
    name = draw(st.sampled_from(sorted(COMMANDS)))
    spec = COMMANDS[name]
    words = [draw(st.sampled_from([name, name.upper(), name.title()]))]
    for _field, reader, required in spec.fields:
        if required or draw(st.booleans()):
            # mostly accepted values, so that commands get past parsing and do things
            good = draw(st.integers(0, 3)) > 0
            words.append(draw(valid(reader) if good else argument(reader)))
    if draw(st.integers(0, 9)) == 0:
        words.append(draw(any_token))  # one too many
    sep = draw(SEPARATORS)
    return sep.join(words)


@st.composite
def random_arguments(draw: st.DrawFn) -> str:
    """A command word followed by arguments of any kind."""
    name = draw(st.sampled_from(sorted({n.split()[0] for n in COMMANDS} | set(COMMANDS))))
    words = [name, *draw(st.lists(any_token, max_size=5))]
    return draw(SEPARATORS).join(words)


def _padded(prefix: str, length: int) -> str:
    return (prefix + "x" * length)[:length] if length > len(prefix) else prefix


limit_texts = st.builds(
    _padded,
    st.sampled_from(["find ", "thanks R-1 5 ", "done R-1 1 ", "grant @ann 5 ", "", "intake "]),
    st.sampled_from([3_999, 4_000, 4_001, 20_000, 100_001]),  # SIF_MAX_MESSAGE_CHARS is 4000
)
answers = st.one_of(
    st.sampled_from(["1", "2", "idea", "peer", "confirm", "back", "skip", "status", "cancel"]),
    st.sampled_from(["edit 1", "edit title", "help", "yes", "no", "English", "finance:3 legal"]),
    st.sampled_from(["Repair café", "5000 EUR", "sales and grants", "don't know", "2", "0"]),
    free_text,
)
message_text = st.one_of(
    well_typed(),
    well_typed(),
    well_typed(),
    well_typed(),
    random_arguments(),
    answers,
    limit_texts,
)
button_actions = st.one_of(
    st.sampled_from(["1", "2", "1 · my idea", "confirm", "skip"]),
    refs("R").map(lambda r: f"accept {r}"),
    refs("R").map(lambda r: f"decline {r}"),
    well_typed(),
    free_text,
)


@dataclass(frozen=True)
class Tick:
    """The clock moves on and the scheduler's sweeps run."""

    hours: float


OWNERS = {1: "ann", 2: "cat", 3: "bob"}  # the seeded ideas' owners
PEERS = ("ann", "bob", "cat", "sam")


@st.composite
def story(draw: st.DrawFn) -> list[Inbound | Tick]:
    """A request's life as its people would type it, with guessed request numbers: asked,
    maybe assigned by staff, accepted (by whoever guesses right), delivered, then thanked,
    disputed and resolved, or cancelled."""
    idea = draw(st.integers(1, 3))
    owner = OWNERS[idea]
    number = draw(st.integers(1, 5))
    ref = f"R-{number}"
    kind = draw(st.sampled_from(["review", "advice", "feedback"]))
    tag = draw(st.sampled_from(["", " finance", " legal", " finance legal", " marketing"]))
    lines = [(owner, f"request I-{idea} {kind}{tag}")]
    if draw(st.booleans()):
        lines.append(("staff", f"assign {ref} <@console:{draw(st.sampled_from(PEERS))}>"))
    peer = draw(st.sampled_from(PEERS))
    lines.append((peer, f"accept {ref}"))
    lines.append((peer, f"done {ref} {draw(valid(Hours()))} {draw(plain_text)}"))
    ending = draw(st.integers(0, 3))
    if ending == 0:
        lines.append((owner, f"thanks {ref} {draw(st.integers(1, 5))} {draw(plain_text)}"))
    elif ending == 1:
        lines.append((owner, f"dispute {ref} {draw(plain_text)}"))
        lines.append(("sam", f"resolve {ref} {draw(st.sampled_from(['pay', 'refund']))}"))
    elif ending == 2:
        lines.append((owner, f"cancel {ref}"))
    return [Inbound("console", "console", user, text, user) for user, text in lines]


@st.composite
def inbound(draw: st.DrawFn) -> Inbound | Tick:
    kind = draw(st.integers(0, 99))
    if kind < 2:
        return Tick(draw(st.sampled_from([0.5, 13, 25, 24 * 8, 24 * 40])))
    user = draw(st.sampled_from(USERS))
    if kind < 4:  # someone on another platform, in a community of their own
        platform, community, user = "slack", "slack:T1", f"T1:{user}"
    else:
        platform, community = "console", "console"
    display = draw(st.one_of(st.just(user), free_text))
    channel = draw(st.sampled_from([None, None, None, "#general", STAFF_CHANNEL]))
    explicit = draw(st.booleans())
    action = draw(button_actions) if kind < 14 else None
    text = action if action is not None and draw(st.booleans()) else draw(message_text)
    # mostly fresh event ids, sometimes one seen before (a redelivery)
    replay = draw(st.integers(0, 19))
    event_id = None if replay > 10 else "e1" if replay == 0 else f"{replay}-{draw(st.integers())}"
    return Inbound(platform, community, user, text, display, channel, event_id, action, explicit)


single = inbound().map(lambda item: [item])
steps = st.one_of(single, single, single, single, single, story())
STEPS = 32  # per example: about 50 inputs with the stories


def flat(groups: list[list[Inbound | Tick]]) -> list[Inbound | Tick]:
    return [item for group in groups for item in group]


# -- running them -------------------------------------------------------------------------


class Failures(logging.Handler):
    """Keeps the exceptions `Bot.handle` logged while answering SORRY."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _settings(url: str) -> Settings:
    return make_settings(url, sif_admins="console:staff", sif_staff_channel=STAFF_CHANNEL)


async def _seed(url: str) -> None:
    engine = make_engine(url)
    await create_schema(engine)
    uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    config = _settings(url)
    async with uow_factory() as uow:
        community = await uow.communities.get_or_create(
            "console", config.sif_community_name, config.sif_tags, START
        )
        ids = {}
        for user, name, role, expertise, languages in MEMBERS:
            member = await uow.members.create(community.id, name, role, "console", user, START)
            ids[user] = member.id
            for tag, level in expertise:
                await uow.members.set_expertise(member.id, tag, level)
            await uow.members.set_profile(
                member.id,
                languages=languages,
                bio=f"{name} knows *things* & <stuff>",
                profile={"offers": {"choices": ["mentoring"], "note": name}},
            )
            await uow.ledger.post(
                community.id, ledger.grant(member.id, 500, "seed", None), config.credit_limit, START
            )
        for owner, title in IDEAS:
            await uow.ideas.create(
                community.id,
                ids[owner],
                title,
                {
                    "title": title,
                    "summary": f"{title}: <b>bold</b> *claims*",
                    "help": ["finance", "legal"],
                    "language": {"choices": ["English"]},
                    "stage": {"choice": "idea"},
                },
                START,
            )
        await uow.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("abuse") / "template.db"
    asyncio.run(_seed(f"sqlite+aiosqlite:///{path}"))
    yield path


def _render(message: Outbound) -> None:
    """Every answer renders on both platforms, as valid UTF-8 JSON, and shows its text: the
    mrkdwn and the Matrix body are the text again once the escaping is undone."""
    assert isinstance(message.text, str)
    payload = {
        "slack": {"text": slack.fallback_text(message), "blocks": slack.blocks(message)},
        "matrix": matrix.content(message),
    }
    json.dumps(payload, ensure_ascii=False).encode("utf-8")
    shown = slack.unescape(slack.mrkdwn(message.parts, tables=False).replace(slack.ZWSP, ""))
    assert shown == message.text.replace(slack.ZWSP, "")  # (people may type ZWSP too)
    assert payload["matrix"]["body"].startswith(message.text)


ESCROW_BY_REQUEST = sql(
    """
    SELECT r.number, r.status, r.price, r.requester_id,
           COALESCE(SUM(p.amount), 0), COUNT(DISTINCT p.holder_id), MIN(p.holder_id)
    FROM requests r
    LEFT JOIN ledger_transactions t ON t.request_id = r.id
    LEFT JOIN ledger_postings p ON p.transaction_id = t.id
        AND p.account_id IN (SELECT id FROM accounts WHERE kind = 'escrow')
    GROUP BY r.id, r.number, r.status, r.price, r.requester_id
    """
)
HOLDING = {"assigned", "delivered", "disputed"}


async def check_invariants(engine: Any, uow_factory: UnitOfWorkFactory, limit: int) -> None:
    """Every community's ledger: zero-sum transactions, cached balances equal their entries,
    no member below the credit limit, and escrow holding exactly the accepted requests."""
    async with uow_factory() as uow:
        for community in await uow.communities.all():
            assert await uow.ledger.check_invariants(community.id) == []
            for info in await uow.ledger.all_balances(community.id):
                assert info.balance >= limit, (info.name, info.balance)
                assert info.held >= 0, (info.name, info.held)
    async with engine.connect() as conn:
        for number, status, price, requester, held, holders, holder in await conn.execute(
            ESCROW_BY_REQUEST
        ):
            expected = price if status in HOLDING else 0
            assert held == expected, f"R-{number} is {status} but escrow holds {held}"
            if held:
                assert holders == 1 and holder == requester, f"R-{number} held for another"


@dataclass
class Run:
    inputs: int = 0
    answered: int = 0
    said: list[str] | None = None  # the answers' texts, when a test wants to read them


def _fresh_copy(template: Path, path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, path)
    return path


async def run_batch(template: Path, workdir: Path, items: list[Inbound | Tick], run: Run) -> None:
    path = _fresh_copy(template, workdir / "abuse.db")
    url = f"sqlite+aiosqlite:///{path}"
    config = _settings(url)
    uow_factory, engine, readers = sql_store(url)
    assert readers is not None  # read-only answers refuse to write
    clock = FakeClock(START)
    messengers = [RecordingMessenger(platform) for platform in ("console", "slack")]
    app = assemble(config, uow_factory, clock, messengers=messengers, flows=FLOWS)
    bot, relay = app.bot, app.relay
    failures = Failures()
    service_log = logging.getLogger("bot.app.service")
    service_log.addHandler(failures)
    try:
        for item in items:
            if isinstance(item, Tick):
                clock.advance(hours=item.hours)
                await jobs.sweep_offers(uow_factory, config, clock, relay)
                await jobs.sweep_conversations(uow_factory, config, clock, FLOWS, relay)
                continue
            run.inputs += 1
            logged = len(failures.records)
            # explicit commands as a Slack slash command: answers that change nothing are
            # carried in the acknowledgement (here: returned and delivered directly)
            out = await bot.handle(item, answer_in_ack=item.explicit)
            for message in out:
                if message.text == SORRY:
                    traces = [
                        logging.Formatter().formatException(r.exc_info)
                        for r in failures.records[logged:]
                        if r.exc_info
                    ]
                    pytest.fail(f"SORRY for {item!r}\n" + "\n".join(traces))
                _render(message)
                if run.said is not None:
                    run.said.append(message.text)
            run.answered += bool(out)
            clock.advance(seconds=7)
        await check_invariants(engine, uow_factory, config.credit_limit)
    finally:
        service_log.removeHandler(failures)
        await dispose(engine, readers)


def abuse(template: Path, workdir: Path, total: int) -> Run:
    run = Run()

    @settings(
        # Hypothesis may run a few examples fewer than asked: ask for more, stop at `total`.
        max_examples=math.ceil(total / BATCH * 1.5) + 5,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(items=st.lists(steps, min_size=STEPS, max_size=STEPS).map(flat))
    def batches(items: list[Inbound | Tick]) -> None:
        if run.inputs >= total:
            return
        asyncio.run(run_batch(template, workdir, items, run))

    batches()
    return run


def test_abuse_through_bot_handle(template: Path, tmp_path: Path) -> None:
    run = abuse(template, tmp_path, DEFAULT_INPUTS)
    assert run.inputs >= DEFAULT_INPUTS  # Ticks are not counted as inputs
    assert run.answered > run.inputs / 2


@pytest.mark.slow
def test_abuse_100k_inputs(template: Path, tmp_path: Path) -> None:
    run = abuse(template, tmp_path, SLOW_INPUTS)
    assert run.inputs >= SLOW_INPUTS


def test_the_seeded_members_can_use_the_bot(template: Path, tmp_path: Path) -> None:
    """The inputs reach deep states: a request is offered, accepted, delivered and thanked."""

    def said(user: str, text: str) -> Inbound:
        return Inbound("console", "console", user, text, display_name=user)

    script = [
        said("ann", "request I-1 review finance"),
        said("bob", "accept R-1"),
        said("bob", "done R-1 1.5 *great* <idea>"),
        said("ann", "thanks R-1 5 `thanks` ~a lot~"),
        said("staff", "balances"),
        said("staff", "grant @ann 5 <b>prize</b>"),
    ]
    run = Run(said=[])
    asyncio.run(run_batch(template, tmp_path, script, run))
    said = "\n".join(run.said or [])
    for expected in ("You accepted R-1", "Delivered R-1", "Thanks sent", "Granted 5.00 SIF"):
        assert expected in said, said


def test_a_replayed_event_is_answered_once(template: Path, tmp_path: Path) -> None:
    first = Inbound("console", "console", "staff", "grant @ann 5 once", "staff", event_id="e1")
    run = Run()
    asyncio.run(run_batch(template, tmp_path, [first, first, replace(first, text="x")], run))
    assert run.answered == 1
