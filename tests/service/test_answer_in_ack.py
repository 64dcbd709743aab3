"""Answers that change nothing ride on the platform's acknowledgement (a Slack slash
command's response): read-only commands run in a read-only unit of work and leave no trace;
anything else still goes through the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app.service import SORRY
from bot.bootstrap import App
from bot.commands import COMMANDS
from bot.messages import Delivery, Inbound, Outbound
from bot.ports import StoreBusy
from store.models import MemberRow, OutboxRow, ProcessedEventRow
from tests.conftest import Store
from tests.fakes import FakeClock, RecordingMessenger, said

CHANNEL = "general"


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def rows(app: App) -> tuple[int, int, int]:
    """Outbox rows, recorded events and members: what a command that changed nothing
    leaves as it was."""
    async with app.bot.uow_factory() as uow:
        session = uow.session  # type: ignore[attr-defined]
        counts = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (OutboxRow, ProcessedEventRow, MemberRow)
        ]
    return counts[0], counts[1], counts[2]


async def in_ack(app: App, inbound: Inbound) -> tuple[list[Outbound], list[Outbound]]:
    """Handle with answers in the ack: (what the ack carries, everything said)."""
    carried: list[Outbound] = []

    async def committed(answers: list[Outbound]) -> None:
        carried.extend(answers)

    said_all = await app.bot.handle(inbound, committed=committed, answer_in_ack=True)
    return carried, said_all


async def test_a_read_only_answer_rides_on_the_ack_and_leaves_no_trace(app: App) -> None:
    await app.bot.handle(said("ann", "balance", channel=CHANNEL))  # first contact
    messenger(app).clear()
    before = await rows(app)
    carried, said_all = await in_ack(app, said("ann", "balance", channel=CHANNEL, event_id="e1"))
    assert [m.text.splitlines()[0] for m in carried] == ["Your balance: 0.00 SIF"]
    assert carried[0].delivery is Delivery.PRIVATE and carried[0].outbox_id is None
    assert said_all == carried
    assert messenger(app).sent == []  # the adapter sends it, in its ack
    assert await rows(app) == before
    counted = app.bot.metrics.registry.get_sample_value(
        "sif_commands_total", {"command": "balance", "outcome": "ok"}
    )
    assert counted == 2  # counted under its name like any other command


async def test_a_refusal_rides_on_the_ack(app: App) -> None:
    await app.bot.handle(said("ann", "balance", channel=CHANNEL))
    before = await rows(app)
    for text in ("balance @nobody", "grant @ann 5 x", "balanse"):
        carried, _ = await in_ack(app, said("ann", text, channel=CHANNEL, event_id=text))
        assert len(carried) == 1 and carried[0].text != SORRY
    assert await rows(app) == before


async def test_a_first_contact_and_a_change_go_through_the_outbox(app: App) -> None:
    carried, said_all = await in_ack(app, said("bob", "balance", channel=CHANNEL, event_id="1"))
    assert carried == [] and said_all[0].outbox_id is not None  # bob was created
    carried, said_all = await in_ack(
        app, said("bob", "availability 3", channel=CHANNEL, event_id="2")
    )
    assert carried == [] and said_all[0].outbox_id is not None
    assert said_all[0].text.startswith("You take at most 3 open reviews at a time")


async def test_activity_is_recorded_when_ten_minutes_old(app: App, clock: FakeClock) -> None:
    await app.bot.handle(said("ann", "balance", channel=CHANNEL))
    clock.advance(minutes=10)
    carried, said_all = await in_ack(app, said("ann", "balance", channel=CHANNEL))
    assert carried == [] and said_all[0].outbox_id is not None
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None and ann.last_active == clock.now()


async def test_an_answer_for_the_channel_or_with_a_file_goes_through_the_outbox(
    app: App,
) -> None:
    await app.bot.handle(said("staff", "balance", channel=CHANNEL))
    for text in ("balances", "stats"):  # a table in the channel, a chart file
        carried, said_all = await in_ack(app, said("staff", text, channel=CHANNEL))
        assert carried == [] and said_all and all(m.outbox_id is not None for m in said_all)


ARGUMENTS = {"find": "finance", "help": "balance"}


@pytest.mark.parametrize("name", sorted(n for n, s in COMMANDS.items() if s.reads_only))
async def test_every_read_only_command_only_reads(app: App, name: str) -> None:
    """Read-only commands run on reader connections that refuse writes (SQLite's
    query_only, PostgreSQL's READ ONLY transaction): one that wrote would fail here."""
    await app.bot.handle(said("staff", "balance", channel=CHANNEL))
    await app.bot.handle(said("ann", "expertise add finance:2", channel=CHANNEL))
    messages: list[Any] = []
    for text in (name, f"{name} {ARGUMENTS.get(name, '')}".strip()):
        for who in ("staff", "ann"):
            _, said_all = await in_ack(app, said(who, text, channel=CHANNEL))
            messages.extend(said_all)
    assert messages and all(m.text != SORRY for m in messages)


async def test_a_reading_unit_of_work_cannot_write(store: Store, clock: FakeClock) -> None:
    from bot.domain.records import Role

    async with store.uow() as uow:
        community = await uow.communities.get_or_create("c", "C", ("finance",), clock.now())
        await uow.commit()
    async with store.uow.reading() as uow:
        with pytest.raises(Exception):  # noqa: B017 - each database words it differently
            await uow.members.create(community.id, "ann", Role.MEMBER, "x", "ann", clock.now())
    async with store.uow.reading() as uow:
        with pytest.raises(RuntimeError):
            await uow.commit()
    async with store.uow() as uow:
        assert await uow.members.by_identity("x", "ann") is None


class BusyReading:
    """The store's units of work, except that a read-only one finds the store busy (a
    SQLite checkpoint, a dropped PostgreSQL reader connection: `tests/store/test_readers.py`
    makes those happen for real)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __call__(self) -> Any:
        return self.real()

    def reading(self, single: bool = False) -> Any:
        return self

    async def __aenter__(self) -> Any:
        raise StoreBusy("the store is busy")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_busy_reader_falls_back_to_the_writing_path(app: App) -> None:
    await app.bot.handle(said("ann", "balance", channel=CHANNEL))
    app.bot.uow_factory = BusyReading(app.bot.uow_factory)
    carried, said_all = await in_ack(app, said("ann", "balance", channel=CHANNEL, event_id="b"))
    assert carried == []  # not in the ack: answered through the outbox, nothing lost
    assert [m.text.splitlines()[0] for m in said_all] == ["Your balance: 0.00 SIF"]
    assert said_all[0].outbox_id is not None
    assert [m.text for m in messenger(app).sent][-1] == said_all[0].text


class NoReading(BusyReading):
    """The store's units of work, failing the test if a read-only one is asked for."""

    def reading(self) -> Any:
        raise AssertionError("a command answered in public needs no read-only attempt")


async def test_a_command_answered_in_public_skips_the_read_only_attempt(app: App) -> None:
    await app.bot.handle(said("staff", "balance", channel=CHANNEL))
    app.bot.uow_factory = NoReading(app.bot.uow_factory)
    carried, said_all = await in_ack(app, said("staff", "balances", channel=CHANNEL))
    assert carried == [] and said_all[0].delivery is Delivery.CHANNEL
    assert said_all[0].text.startswith("Balances, lowest first")


async def test_a_read_only_command_of_several_statements_is_read_again_in_a_snapshot(
    app: App,
) -> None:
    # On PostgreSQL `history` is first tried in one statement, needs more, and is read
    # again in a snapshot; from then on it is read in one. Each answer is the same.
    await app.bot.handle(said("ann", "balance", channel=CHANNEL))  # first contact
    before = await rows(app)
    answers = []
    for n in range(3):
        carried, _ = await in_ack(app, said("ann", "history", channel=CHANNEL, event_id=f"h{n}"))
        answers.append([m.text for m in carried])
    assert answers[0] and answers[0] == answers[1] == answers[2]
    carried, _ = await in_ack(app, said("ann", "balance", channel=CHANNEL, event_id="b"))
    assert carried[0].text.startswith("Your balance: 0.00 SIF")
    assert await rows(app) == before
    single = getattr(app.bot.uow_factory, "single", None)
    assert ("history" in app.bot._needs_snapshot) is (single is not None)
    assert "balance" not in app.bot._needs_snapshot


async def directly(app: App, inbound: Inbound) -> list[Outbound]:
    """Handle as the Matrix adapter does: a read-only answer to the caller alone is handed
    back to send at once."""
    carried: list[Outbound] = []

    async def committed(answers: list[Outbound]) -> None:
        carried.extend(answers)

    await app.bot.handle(inbound, committed=committed, answer_directly=True)
    return carried


async def test_a_direct_answer_in_the_dm_leaves_no_trace_and_an_event_handled_before_none(
    app: App,
) -> None:
    first = said("ann", "balance", event_id="m1")  # in the DM, first contact
    await app.bot.handle(first)
    messenger(app).clear()
    before = await rows(app)
    carried = await directly(app, said("ann", "balance", event_id="m2"))
    assert [m.text.splitlines()[0] for m in carried] == ["Your balance: 0.00 SIF"]
    assert carried[0].delivery is Delivery.DM and carried[0].outbox_id is None
    assert await rows(app) == before and messenger(app).sent == []
    assert await directly(app, first) == []  # delivered again after a restart: no answer
    assert messenger(app).sent == [] and await rows(app) == before
    # A refusal still goes through the outbox, recorded, as without `answer_directly`.
    assert await directly(app, said("ann", "balance @nobody", event_id="m3")) == []
    assert await rows(app) == (before[0] + 1, before[1] + 1, before[2])
