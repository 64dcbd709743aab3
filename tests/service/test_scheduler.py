"""The scheduler stops gracefully: a job that is running finishes instead of being cut."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.bootstrap import App
from bot.entrypoints.scheduler import start_scheduler


async def test_stop_lets_a_running_job_finish_and_starts_no_new_one(app: App) -> None:
    scheduler = start_scheduler(app.bot)
    started, finished = asyncio.Event(), []

    async def slow_job() -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(True)

    scheduler.add_job(
        scheduler.tracked(slow_job), "interval", seconds=3600, next_run_time=datetime.now(UTC)
    )
    await asyncio.wait_for(started.wait(), 5)
    await scheduler.stop()
    assert finished == [True]  # APScheduler's shutdown alone would have cancelled it
    assert not scheduler.running and scheduler.running_jobs == set()
