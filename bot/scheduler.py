"""APScheduler (3.x, asyncio) running the sweeps of bot.jobs in the bot's event loop.

The jobs keep no state of their own: each run reads what is due from the database
and claims it in a transaction, so a restart or a second process loses and
doubles nothing.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.digest import weekly_digest
from bot.jobs import sweep_conversations, sweep_offers
from bot.service import Bot

log = logging.getLogger(__name__)

OFFER_SWEEP_SECONDS = 60
CONVERSATION_SWEEP_SECONDS = 15 * 60
OUTBOX_RETRY_SECONDS = 30
# A digest still goes out if the bot was down at its hour and starts within this time;
# the processed-event log keeps it to one per ISO week either way.
DIGEST_GRACE_SECONDS = 12 * 3600


def start_scheduler(bot: Bot) -> AsyncIOScheduler:
    """Start the periodic sweeps; call from inside the running event loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler.add_job(
        sweep_offers,
        "interval",
        seconds=OFFER_SWEEP_SECONDS,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.relay],
        id="offers",
        **common,
    )
    scheduler.add_job(
        sweep_conversations,
        "interval",
        seconds=CONVERSATION_SWEEP_SECONDS,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.flows, bot.relay],
        id="conversations",
        **common,
    )
    scheduler.add_job(
        weekly_digest,
        "cron",
        day_of_week=bot.settings.sif_digest_day,  # APScheduler counts 0=Monday, as we do
        hour=bot.settings.sif_digest_hour,
        minute=0,
        args=[bot.uow_factory, bot.settings, bot.clock, bot.relay],
        id="digest",
        **{**common, "misfire_grace_time": DIGEST_GRACE_SECONDS},
    )
    scheduler.add_job(
        bot.relay.flush, "interval", seconds=OUTBOX_RETRY_SECONDS, id="outbox", **common
    )
    scheduler.start()
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    return scheduler
