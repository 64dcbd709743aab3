"""The bot's own HTTP endpoints beside the Slack events: ``/healthz`` and ``/metrics``.

``/healthz`` answers 200 when the database answers, every adapter is connected and the
scheduler runs its jobs on time, and 503 naming the parts that do not; the body gives
each part's state in a few words. ``/metrics`` is the Prometheus text format of the
bot's registry, with the database gauges read at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.app.federation import Federation
from bot.app.service import Bot
from bot.domain.federation import MAX_BYTES as MAX_FEDERATION_BYTES
from bot.domain.ids import CommunityId
from bot.entrypoints.scheduler import scheduler_status
from bot.ports import Status, SystemClock

log = logging.getLogger(__name__)

# A probe that waits longer than this reports the part as down rather than hanging.
CHECK_TIMEOUT_SECONDS = 5.0
MAX_DETAIL = 200

Check = Callable[[], Awaitable[Status]]


def _detail(exc: BaseException) -> str:
    """The first line of an error, short: enough to name the problem, no traceback."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text[:MAX_DETAIL]


class Monitor:
    """What the endpoints look at: the bot's database, the adapters and the scheduler."""

    def __init__(
        self,
        bot: Bot,
        *,
        now: Callable[[], datetime] | None = None,
        timeout: float = CHECK_TIMEOUT_SECONDS,
    ) -> None:
        self.bot = bot
        self.now = now or SystemClock().now
        self.timeout = timeout
        self.scheduler: Any = None  # APScheduler's scheduler, once started
        self.adapters: dict[str, Check] = {}
        self.federation: Federation | None = None  # the door is open when set

    def add_adapter(self, name: str, status: Check) -> None:
        self.adapters[name] = status

    async def database(self) -> Status:
        try:
            async with asyncio.timeout(self.timeout):
                async with self.bot.uow_factory() as uow:
                    await uow.communities.tags(CommunityId(0))
        except TimeoutError:
            return Status(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # whatever it is, the point is to report it
            log.warning("health: the database is not reachable: %s", _detail(exc))
            return Status(False, _detail(exc))
        return Status(True, "reachable")

    def scheduler_status(self) -> Status:
        return scheduler_status(self.scheduler, self.now())

    async def _adapter(self, check: Check) -> Status:
        try:
            async with asyncio.timeout(self.timeout):
                return await check()
        except TimeoutError:
            return Status(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:
            return Status(False, _detail(exc))

    async def report(self) -> dict[str, Status]:
        """Every part's state: database, then the adapters, then the scheduler."""
        names = ["database", *self.adapters]
        results = await asyncio.gather(
            self.database(), *(self._adapter(check) for check in self.adapters.values())
        )
        parts = dict(zip(names, results, strict=True))
        parts["scheduler"] = self.scheduler_status()
        return parts

    async def health(self, request: web.Request) -> web.Response:
        parts = await self.report()
        failing = [name for name, status in parts.items() if not status.ok]
        body = {
            "status": "error" if failing else "ok",
            "failing": failing,
            "checks": {name: status.as_json() for name, status in parts.items()},
        }
        return web.json_response(body, status=503 if failing else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        metrics = self.bot.metrics
        await metrics.refresh(self.bot.uow_factory, self.scheduler_status().ok)
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    def routes(self) -> list[web.RouteDef]:
        routes = [web.get("/healthz", self.health), web.get("/metrics", self.metrics)]
        if self.federation is not None:
            routes.append(web.post("/federation/inbox", self.federation_inbox))
        return routes

    async def federation_inbox(self, request: web.Request) -> web.Response:
        """A partner node's message (SPEC §12): refused, done before, or done now."""
        assert self.federation is not None
        if (request.content_length or 0) > MAX_FEDERATION_BYTES:
            return web.json_response({"refused": "too large"}, status=400)
        raw = await request.read()  # the whole body, however many packets it came in
        answer = await self.federation.receive(raw)
        if answer.status != 200:
            log.warning("federation message refused: %s", answer.body.get("refused"))
        return web.json_response(answer.body, status=answer.status)
