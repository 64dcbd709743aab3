"""The retention job on SQLite and PostgreSQL (SPEC §13): delivered messages lose their
files at the next run and their text after SIF_OUTBOX_RETENTION_DAYS; messages still to go
out keep both; processed-event keys and expired link codes go after 30 days."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.app.jobs import Retention, keep_for_retention
from bot.bootstrap import App
from bot.entrypoints.scheduler import RETENTION_SECONDS, start_scheduler
from store.models import OutboxRow
from store.rows import as_outbound
from tests.fakes import FakeClock, RecordingMessenger, said


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def _rows(app: App) -> dict[str, Any]:
    """The outbox rows by topic (one each here)."""
    async with app.engine.connect() as conn:
        found = await conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id))
        return {r.parts["topic"]: r for r in found}


def _has_file(row: Any) -> bool:
    return as_outbound(row).file is not None


async def test_files_go_once_delivered_texts_after_the_retention_days_keys_after_30_days(
    app: App, clock: FakeClock
) -> None:
    bot = app.bot
    run = lambda: keep_for_retention(bot.uow_factory, app.settings, clock)  # noqa: E731
    await bot.handle(said("ann", "balance", event_id="Ev1"))
    await bot.handle(said("ann", "mydata", event_id="Ev2"))
    await bot.handle(said("ann", "link", event_id="Ev3"))
    messenger(app).fail_next = 1  # the platform is down: the export waits
    await bot.handle(said("staff", "export members", event_id="Ev4"))
    rows = await _rows(app)
    assert rows["mydata"].sent_at is not None and _has_file(rows["mydata"])
    assert rows["export"].sent_at is None and _has_file(rows["export"])

    assert await run() == Retention(files=1)
    rows = await _rows(app)
    assert not _has_file(rows["mydata"]) and rows["mydata"].text  # the text stays for now
    assert _has_file(rows["export"])  # still to go out, with its file

    clock.advance(seconds=30)
    await app.relay.flush()
    assert [m.file is not None for m in messenger(app).sent if m.topic == "export"] == [True]
    assert await run() == Retention(files=1)

    clock.advance(days=7)
    assert (await run()).erased == 3  # balance, mydata, link: 7 days since delivery
    rows = await _rows(app)
    assert rows["export"].text.startswith("Export of members")  # delivered 30 s later
    clock.advance(seconds=30)
    assert await run() == Retention(erased=1)
    for row in (await _rows(app)).values():
        assert row.sent_at is not None and row.text == ""
        message = as_outbound(row)  # still reads back, as a message that says nothing
        assert message.parts == () and message.topic == row.parts["topic"]
        assert "ann" not in json.dumps(row.parts)
    assert await run() == Retention()  # nothing more to do

    clock.advance(days=23)  # 30 days after the events; the link code expired 15 min later
    assert await run() == Retention(events=4)
    clock.advance(minutes=15)
    assert await run() == Retention(links=1)
    again = await bot.handle(said("ann", "balance", event_id="Ev1"))
    assert again  # a forgotten key is new again (platforms retry within minutes, not weeks)


async def test_the_scheduler_runs_the_retention_job_every_hour(app: App) -> None:
    scheduler = start_scheduler(app.bot)
    try:
        job = scheduler.get_job("retention")
        assert job is not None
        assert job.trigger.interval == timedelta(seconds=RETENTION_SECONDS) == timedelta(hours=1)
        assert job.func.__wrapped__ is keep_for_retention
    finally:
        await scheduler.stop()
