"""Logs and metrics: structlog over the standard library, Prometheus counters per bot.

Every module keeps logging with ``logging.getLogger(__name__)``; `configure_logging`
routes those records (and any structlog logger) through one structlog formatter, so
they come out alike: JSON lines when stderr is not a terminal, readable lines when it
is. Values bound with ``structlog.contextvars`` (the request id `Bot.handle` binds for
each inbound event) appear on every line logged while they are bound.

Each :class:`Metrics` has a registry of its own rather than the process-wide one, so
several bots (tests, the simulator) can live in one process. The database gauges are
read when Prometheus scrapes (`Metrics.refresh`), not kept up to date on every write.
"""

from __future__ import annotations

import logging
import math
import random
import sys
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from structlog.typing import Processor

from bot.domain.ledger import HUNDREDTHS_PER_SIF
from bot.ports import UnitOfWorkFactory

# Libraries that log routine work at info level (a line per scheduler run, per HTTP
# request, health probes included); they are shown from warning up unless at debug.
CHATTY_LOGGERS = ("apscheduler", "aiohttp.access", "alembic.runtime.plugins")

log = logging.getLogger(__name__)


class _SifHandler(logging.StreamHandler[TextIO]):
    """The root handler `configure_logging` installs (and replaces when called again)."""


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def configure_logging(
    json: bool | None = None,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to `stream` (stderr) through structlog.

    `json` None picks JSON lines unless the stream is a terminal. Records from the
    standard library keep their message (``%`` arguments applied) as ``event``; their
    ``extra`` fields and the bound context variables become fields of the line.
    Calling it again replaces the handler it installed; it returns that handler.
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not _is_terminal(stream)
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(stream))
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        final.append(structlog.processors.format_exc_info)  # the traceback as one field
    final.append(renderer)
    handler = _SifHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SifHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else "WARNING")
    return handler


def new_request_id() -> str:
    """A short random id that ties together the log lines of one inbound event (not a
    secret: Python's generator, without a system call per event)."""
    return f"{random.getrandbits(48):012x}"


class Metrics:
    """The bot's Prometheus metrics, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "sif_commands",
            "Inbound events handled, by command and outcome (ok, refused, error, duplicate).",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "sif_command_seconds",
            "Time to handle an inbound event, delivery included, by command.",
            ["command"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "sif_outbox_backlog", "Outbox messages waiting to be sent.", registry=self.registry
        )
        self.outbox_set_aside = Gauge(
            "sif_outbox_set_aside",
            "Outbox messages set aside as undeliverable (never tried again).",
            registry=self.registry,
        )
        self.offers_open = Gauge(
            "sif_offers_open",
            "Review offers waiting for the peer's answer.",
            registry=self.registry,
        )
        self.circulation = Gauge(
            "sif_sif_in_circulation",
            "SIF in circulation: the sum of the members' positive balances in every "
            "community (as in `stats`), in SIF.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.scheduler_alive = Gauge(
            "sif_scheduler_alive",
            "1 while the scheduler runs its sweeps on time, else 0.",
            registry=self.registry,
        )

    def record(self, command: str, outcome: str, seconds: float) -> None:
        # The labelled children, looked up once per command and outcome (prometheus'
        # `labels` checks and joins its arguments on every call).
        key = (command, outcome)
        children = self._children.get(key)
        if children is None:
            children = (
                self.commands.labels(command=command, outcome=outcome),
                self.command_seconds.labels(command=command),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def refresh(self, uow_factory: UnitOfWorkFactory, scheduler_alive: bool) -> None:
        """Read the gauges' values from the database; NaN when it cannot be read."""
        self.scheduler_alive.set(1 if scheduler_alive else 0)
        try:
            async with uow_factory() as uow:
                backlog = await uow.stats.backlog()
                set_aside = await uow.stats.set_aside()
                offers = await uow.stats.count_open_offers()
                # The definition of `stats` (compute_stats): the sum of positive balances.
                circulating = 0
                for community in await uow.communities.all():
                    circulating += await uow.stats.circulation(community.id)
        except Exception:
            log.warning("could not read the metrics from the database", exc_info=True)
            gauges = (
                self.outbox_backlog,
                self.outbox_set_aside,
                self.offers_open,
                self.circulation,
            )
            for gauge in gauges:
                gauge.set(math.nan)
            return
        self.outbox_backlog.set(backlog)
        self.outbox_set_aside.set(set_aside)
        self.offers_open.set(offers)
        self.circulation.set(circulating / HUNDREDTHS_PER_SIF)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
