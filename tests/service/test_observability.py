"""Logs, metrics and health: JSON log lines tied by a request id, /metrics, /healthz."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from adapters.matrix.client import MatrixAdapter
from adapters.slack.app import SlackAdapter
from bot.app.observability import CHATTY_LOGGERS, configure_logging
from bot.bootstrap import App, assemble
from bot.entrypoints.http import Monitor
from bot.entrypoints.scheduler import start_scheduler
from bot.ports import Status
from bot.settings import SettingsError, load_settings
from store.db import make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import make_settings
from tests.fakes import FakeClock, RecordingMessenger, said

Lines = Callable[[], list[dict[str, Any]]]


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def logs() -> Iterator[Lines]:
    """JSON log lines written while the test runs, parsed."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(json=True, level="INFO", stream=stream)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()


def handled(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "command handled"]


@asynccontextmanager
async def serving(monitor: Monitor) -> AsyncIterator[TestClient[Any, Any]]:
    web_app = web.Application()
    web_app.add_routes(monitor.routes())
    async with TestClient(TestServer(web_app)) as client:
        yield client


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


# -- logs ---------------------------------------------------------------------------


async def test_a_command_logs_one_json_line_with_request_id_and_outcome(
    app: App, logs: Lines
) -> None:
    await app.bot.handle(said("ann", "balance"))
    await app.bot.handle(said("staff", "grant @ann 5 pancake-party"))
    await app.bot.handle(said("ann", "grant @ann 5 more-pancakes"))  # not staff: refused
    lines = logs()
    grants = [line for line in handled(lines) if line["command"] == "grant"]
    assert [line["outcome"] for line in grants] == ["ok", "refused"]
    first = grants[0]
    assert first["level"] == "info" and first["logger"] == "bot.app.service"
    assert first["platform"] == "console" and first["community"] == "console"
    assert len(first["request_id"]) == 12 and first["duration_ms"] >= 0
    assert "pancake" not in json.dumps(lines)  # the command, never what was said


async def test_lines_of_one_inbound_share_a_request_id_and_inbounds_differ(
    app: App, logs: Lines
) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger(app).fail_next = 1  # the outbox delivery of the grant fails and logs it
    await app.bot.handle(said("staff", "grant @ann 2 prize"))
    lines = logs()
    failure = next(line for line in lines if "not delivered yet" in line["event"])
    assert failure["level"] == "error" and failure["logger"] == "bot.app.outbox"
    assert "ConnectionError" in failure["exception"]
    grant = next(line for line in handled(lines) if line["command"] == "grant")
    balance = next(line for line in handled(lines) if line["command"] == "balance")
    assert failure["request_id"] == grant["request_id"] and failure["command"] == "grant"
    assert balance["request_id"] != grant["request_id"]
    # Nothing stays bound once an inbound is handled.
    assert structlog.contextvars.get_contextvars() == {}


async def test_a_replayed_event_is_logged_as_duplicate(app: App, logs: Lines) -> None:
    await app.bot.handle(said("ann", "balance", event_id="Ev1"))
    await app.bot.handle(said("ann", "balance", event_id="Ev1"))
    assert [line["outcome"] for line in handled(logs())] == ["ok", "duplicate"]


def test_on_a_terminal_the_lines_are_for_people() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(level="INFO", stream=stream)
    try:
        with structlog.contextvars.bound_contextvars(request_id="abc123"):
            logging.getLogger("bot.test").info("hello %s", "there")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
    out = stream.getvalue()
    assert "hello there" in out and "request_id" in out and "abc123" in out
    assert not out.lstrip().startswith("{")


def test_a_bad_log_level_is_one_settings_line() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None, sif_log_level="loud")
    assert str(info.value).startswith("SIF_LOG_LEVEL: expected one of DEBUG, INFO")
    assert "\n" not in str(info.value)
    assert load_settings(_env_file=None, sif_log_level="debug").sif_log_level == "DEBUG"


# -- metrics ------------------------------------------------------------------------


async def test_metrics_count_commands_and_read_the_database(app: App) -> None:
    await app.bot.handle(said("ann", "balance"))
    messenger(app).fail_next = 1  # the grant's two messages stay in the outbox
    await app.bot.handle(said("staff", "grant @ann 2 prize"))
    await app.bot.handle(said("ann", "balance"))
    async with app.engine.connect() as conn:
        unsent = (
            await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        ).scalar_one()
    assert unsent == 2
    async with serving(Monitor(app.bot)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        found = samples(await response.text())
    assert found[("sif_commands_total", (("command", "balance"), ("outcome", "ok")))] == 2
    assert found[("sif_commands_total", (("command", "grant"), ("outcome", "ok")))] == 1
    assert found[("sif_command_seconds_count", (("command", "balance"),))] == 2
    assert found[("sif_outbox_backlog", ())] == unsent
    assert found[("sif_offers_open", ())] == 0
    assert found[("sif_sif_in_circulation", ())] == 2.0  # ann's balance, as `stats` counts it
    assert found[("sif_scheduler_alive", ())] == 0  # no scheduler was started


async def test_each_bot_has_its_own_registry(app: App, clock: FakeClock) -> None:
    other = assemble(app.settings, app.bot.uow_factory, clock).bot
    await app.bot.handle(said("ann", "balance"))
    assert b"sif_commands_total" in app.bot.metrics.exposition()
    assert b'command="balance"' not in other.metrics.exposition()


# -- health -------------------------------------------------------------------------


async def test_healthz_is_ok_when_every_part_works(app: App) -> None:
    monitor = Monitor(app.bot)

    async def connected() -> Status:
        return Status(True, "connected")

    monitor.add_adapter("slack", connected)
    monitor.scheduler = start_scheduler(app.bot)
    try:
        async with serving(monitor) as client:
            response = await client.get("/healthz")
            body = await response.json()
            metrics = samples(await (await client.get("/metrics")).text())
    finally:
        monitor.scheduler.shutdown(wait=False)
    assert response.status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"] == {"ok": True, "detail": "reachable"}
    assert body["checks"]["slack"]["ok"] and body["checks"]["scheduler"]["ok"]
    assert metrics[("sif_scheduler_alive", ())] == 1


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///{tmp}/no/such/dir/sif.db",
        "postgresql+asyncpg://postgres@127.0.0.1:1/sif",  # nothing listens on port 1
    ],
    ids=["unopenable-sqlite", "dead-postgres"],
)
async def test_healthz_names_the_database_when_it_is_down(
    url: str, tmp_path: Path, clock: FakeClock
) -> None:
    url = url.format(tmp=tmp_path)
    engine = make_engine(url)
    try:
        uow_factory = SqlUnitOfWorkFactory(make_sessionmaker(engine))
        bot = assemble(make_settings(url), uow_factory, clock).bot
        monitor = Monitor(bot)
        monitor.scheduler = start_scheduler(bot)
        try:
            async with serving(monitor) as client:
                response = await client.get("/healthz")
                body = await response.json()
                metrics = samples(await (await client.get("/metrics")).text())
        finally:
            monitor.scheduler.shutdown(wait=False)
    finally:
        await engine.dispose()
    assert response.status == 503
    assert body["status"] == "error" and body["failing"] == ["database"]
    assert not body["checks"]["database"]["ok"] and body["checks"]["database"]["detail"]
    assert body["checks"]["scheduler"]["ok"]
    # /metrics still answers; what it cannot read is NaN rather than a stale number.
    backlog = metrics[("sif_outbox_backlog", ())]
    assert backlog != backlog


async def test_healthz_names_a_stuck_scheduler_and_a_disconnected_adapter(app: App) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    monitor = Monitor(app.bot, now=lambda: later)  # every job is an hour overdue

    async def disconnected() -> Status:
        return Status(False, "Socket Mode disconnected")

    monitor.add_adapter("slack", disconnected)
    monitor.scheduler = start_scheduler(app.bot)
    try:
        async with serving(monitor) as client:
            response = await client.get("/healthz")
            body = await response.json()
    finally:
        monitor.scheduler.shutdown(wait=False)
    assert response.status == 503
    assert body["failing"] == ["slack", "scheduler"]
    assert "overdue" in body["checks"]["scheduler"]["detail"]
    assert body["checks"]["slack"]["detail"] == "Socket Mode disconnected"


async def test_healthz_without_a_scheduler_says_it_is_not_started(app: App) -> None:
    async with serving(Monitor(app.bot)) as client:
        response = await client.get("/healthz")
        body = await response.json()
    assert response.status == 503 and body["failing"] == ["scheduler"]
    assert body["checks"]["scheduler"]["detail"] == "not started"


async def test_slack_reports_listening_once_its_events_route_is_served(app: App) -> None:
    slack = SlackAdapter(
        app.bot, token="xoxb-test", signing_secret="secret", api_url="http://127.0.0.1:9/api/"
    )
    assert not (await slack.status()).ok
    slack.web_app()
    assert await slack.status() == Status(True, "listening (HTTP)")


async def test_matrix_reports_login_and_a_recent_sync(app: App, tmp_path: Path) -> None:
    matrix = MatrixAdapter(
        app.bot,
        homeserver="http://127.0.0.1:9",
        user_id="@sif:example.org",
        password="pw",
        store_path=tmp_path / "matrix-store",
    )
    try:
        assert await matrix.status() == Status(False, "not logged in")
        matrix.client.restore_login("@sif:example.org", "DEVICE", "token")
        assert await matrix.status() == Status(False, "not started")
        matrix._task = asyncio.create_task(asyncio.sleep(3600))  # a sync loop stand-in
        matrix._last_sync = time.monotonic()
        assert (await matrix.status()).ok
        matrix._last_sync = time.monotonic() - 600
        assert await matrix.status() == Status(False, "last sync 600 s ago")
    finally:
        await matrix.stop()
