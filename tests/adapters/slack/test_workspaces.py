"""SLACK_TEAM_ID: the workspaces the bot serves. Any workspace where the app is installed
signs its requests with our secret; with the setting, those of another workspace are
answered 200 (so Slack does not retry them) and nothing is made of them: no community,
no member, no Web API call. The app is started as `run` starts it (settings, bootstrap)
and served over HTTP on 127.0.0.1, against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.slack.app import NOT_SERVED
from bot.bootstrap import App, assemble, start_platforms
from store.db import create_schema, make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.adapters.slack.fake_slack import (
    FakeSlack,
    app_home_opened_event,
    block_actions_body,
    event_body,
    message_im_event,
    post_signed,
    slash_command_body,
)
from tests.conftest import make_settings
from tests.fakes import FakeClock

SECRET = "test-signing-secret"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@asynccontextmanager
async def serving(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[App, FakeSlack, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/slack.db"
    engine = make_engine(url)
    await create_schema(engine)
    uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    async with FakeSlack() as slack, aiohttp.ClientSession() as session:
        config = make_settings(
            url,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET,
            slack_api_url=slack.base_url,
            **settings,
        )
        app = assemble(config, uow, FakeClock())
        platforms = await start_platforms(app, session)
        runner = web.AppRunner(platforms.web_app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield app, slack, f"http://127.0.0.1:{port}/slack/events"
        finally:
            for drain in platforms.drains:
                await drain()
            await runner.cleanup()
    await engine.dispose()


async def community_exists(app: App, key: str) -> bool:
    async with app.bot.uow_factory() as uow:
        return await uow.communities.find(key) is not None


async def command(url: str, team: str) -> tuple[int, str]:
    body = slash_command_body(text="balance", team_id=team)
    return await post_signed(url, body, SECRET, content_type=FORM)


async def test_a_workspace_not_served_is_refused_and_leaves_no_trace(tmp_path: Path) -> None:
    async with serving(tmp_path, slack_team_id="T0001") as (app, slack, url):
        status, answer = await command(url, "T9999")
        assert status == 200
        assert json.loads(answer) == {"response_type": "ephemeral", "text": NOT_SERVED}
        requests: list[Callable[[], Any]] = [
            lambda: post_signed(
                url,
                event_body(message_im_event(text="balance", team="T9999"), team_id="T9999"),
                SECRET,
                content_type=JSON,
            ),
            lambda: post_signed(
                url,
                event_body(app_home_opened_event(), team_id="T9999"),
                SECRET,
                content_type=JSON,
            ),
            lambda: post_signed(
                url, block_actions_body(value="balance", team_id="T9999"), SECRET, content_type=FORM
            ),
        ]
        for send in requests:
            status, answer = await send()
            assert (status, answer) == (200, "")
        await asyncio.sleep(0.3)
        assert not await community_exists(app, "slack:T9999")
        assert [c.method for c in slack.calls if c.method != "auth.test"] == []
        # the workspace served is answered as ever
        status, _ = await command(url, "T0001")
        assert status == 200
        await slack.wait_for("chat.postEphemeral")
        assert await community_exists(app, "slack:T0001")


async def test_a_workspace_named_twice_must_be_served_both_times(tmp_path: Path) -> None:
    """An event whose installation (`authorizations`) is ours but whose team_id is not."""
    async with serving(tmp_path, slack_team_id="T0001,T0002") as (app, slack, url):
        body = json.loads(event_body(message_im_event(text="balance"), team_id="T0001"))
        body["team_id"] = "T9999"
        status, _ = await post_signed(url, json.dumps(body), SECRET, content_type=JSON)
        assert status == 200
        await asyncio.sleep(0.3)
        assert not await community_exists(app, "slack:T9999")
        status, _ = await command(url, "T0002")  # the second workspace listed is served
        assert status == 200
        await slack.wait_for("chat.postEphemeral")
        assert await community_exists(app, "slack:T0002")


async def test_without_the_setting_every_workspace_is_served(tmp_path: Path) -> None:
    async with serving(tmp_path) as (app, slack, url):
        for team in ("T0001", "T9999"):
            status, _ = await command(url, team)
            assert status == 200
        await slack.wait_for("chat.postEphemeral", count=2)
        assert await community_exists(app, "slack:T0001")
        assert await community_exists(app, "slack:T9999")
