"""APScheduler (3.x, asyncio) running the sweeps of bot.app.jobs in the bot's event loop.

The jobs keep no state of their own: each run reads what is due from the database
and claims it in a transaction, so a restart or a second process loses and
doubles nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app.digest import weekly_digest
from bot.app.jobs import keep_for_retention, sweep_conversations, sweep_offers
from bot.app.service import Bot
from bot.ports import Status

log = logging.getLogger(__name__)

OFFER_SWEEP_SECONDS = 60
CONVERSATION_SWEEP_SECONDS = 15 * 60
# Delivered messages lose their files within this time, and their text on the day due.
RETENTION_SECONDS = 3600
# A digest still goes out if the bot was down at its hour and starts within this time;
# the processed-event log keeps it to one per ISO week either way.
DIGEST_GRACE_SECONDS = 12 * 3600
# A job whose run time passed this long ago means a stuck scheduler or a blocked loop.
OVERDUE_SECONDS = 120


class Scheduler(AsyncIOScheduler):  # type: ignore[misc]
    """AsyncIOScheduler that can stop gracefully: no new runs, running ones finish."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.running_jobs: set[asyncio.Task[Any]] = set()

    def tracked(self, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(job)
        async def run(*args: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self.running_jobs.add(task)
            try:
                return await job(*args)
            finally:
                self.running_jobs.discard(task)

        return run

    async def stop(self, seconds: float = 20.0) -> None:
        """Take no new runs, give the running ones `seconds` to finish, then shut down
        (APScheduler's own shutdown would cancel them halfway)."""
        if not self.running:
            return
        self.pause()
        if self.running_jobs:
            await asyncio.wait(set(self.running_jobs), timeout=seconds)
        self.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in the loop's next turn


def start_scheduler(bot: Bot) -> Scheduler:
    """Start the periodic sweeps; call from inside the running event loop."""
    scheduler = Scheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler.add_job(
        scheduler.tracked(sweep_offers),
        "interval",
        seconds=OFFER_SWEEP_SECONDS,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.relay],
        id="offers",
        **common,
    )
    scheduler.add_job(
        scheduler.tracked(sweep_conversations),
        "interval",
        seconds=CONVERSATION_SWEEP_SECONDS,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.flows, bot.relay],
        id="conversations",
        **common,
    )
    scheduler.add_job(
        scheduler.tracked(weekly_digest),
        "cron",
        day_of_week=bot.settings.sif_digest_day,  # APScheduler counts 0=Monday, as we do
        hour=bot.settings.sif_digest_hour,
        minute=0,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.relay],
        id="digest",
        **{**common, "misfire_grace_time": DIGEST_GRACE_SECONDS},
    )
    scheduler.add_job(
        scheduler.tracked(keep_for_retention),
        "interval",
        seconds=RETENTION_SECONDS,
        args=[bot.uow_factory, bot.settings, bot.clock],
        id="retention",
        **common,
    )
    scheduler.add_job(
        scheduler.tracked(bot.relay.flush),
        "interval",
        seconds=bot.settings.sif_outbox_retry_seconds,
        id="outbox",
        **common,
    )
    scheduler.start()
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    return scheduler


def scheduler_status(scheduler: AsyncIOScheduler | None, now: datetime) -> Status:
    """Whether the scheduler runs and none of its jobs is overdue (for /healthz)."""
    if scheduler is None:
        return Status(False, "not started")
    if not scheduler.running:
        return Status(False, "stopped")
    jobs = scheduler.get_jobs()
    late = []
    for job in jobs:
        if job.next_run_time is None:
            late.append(f"{job.id} paused")
        elif (overdue := (now - job.next_run_time).total_seconds()) > OVERDUE_SECONDS:
            late.append(f"{job.id} overdue by {overdue:.0f} s")
    if late:
        return Status(False, "; ".join(late))
    return Status(True, f"running {len(jobs)} jobs")
