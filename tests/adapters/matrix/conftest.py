"""Fixtures for tests against a real Synapse homeserver.

``synapse`` starts one homeserver for the whole session (installing it into
``.cache/synapse-venv`` on first use). Without network access to PyPI the tests that need it
are skipped, unless ``REQUIRE_SYNAPSE=1`` (set by .ci/run), ``REQUIRE_MATRIX=1`` or ``CI``
is set, where that fails them.
``matrix_users`` registers fresh users (unique localparts, as the server is shared) and
closes their HTTP sessions after the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from adapters.matrix.client import MatrixAdapter
from bot.app.service import Bot
from bot.bootstrap import assemble
from store.db import create_schema, make_engine, make_sessionmaker
from store.uow import SqlUnitOfWorkFactory
from tests.adapters.matrix.synapse import (
    MatrixUser,
    Synapse,
    SynapseUnavailable,
    ensure_synapse_venv,
    scratch_dir,
)
from tests.conftest import make_settings
from tests.fakes import FakeClock

T = TypeVar("T")


def _matrix_required() -> bool:
    return (
        os.environ.get("REQUIRE_SYNAPSE") == "1"
        or os.environ.get("REQUIRE_MATRIX") == "1"
        or bool(os.environ.get("CI"))
    )


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # A private loop, not asyncio.run(): that would reset the thread's current event loop,
    # which pytest-asyncio may have set. Synapse itself is loop-independent (a Popen).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(scope="session")
def synapse() -> Iterator[Synapse]:
    """One running Synapse for the session; use ``register`` from any test's loop."""
    try:
        ensure_synapse_venv()
    except SynapseUnavailable as exc:
        message = f"Synapse could not be installed (no access to PyPI?): {exc}"
        if _matrix_required():
            pytest.fail(f"Matrix tests are required (REQUIRE_SYNAPSE=1 or CI) but {message}")
        pytest.skip(message)
    workdir = Path(tempfile.mkdtemp(prefix="sif-synapse-", dir=scratch_dir()))
    server = Synapse(workdir)
    try:
        # Installed but not starting is a real failure, never a skip.
        _run(server.start())
        yield server
    finally:
        _run(server.stop())
        shutil.rmtree(workdir, ignore_errors=True)


class MakeUser(Protocol):
    def __call__(self, name: str, *, admin: bool = False) -> Awaitable[MatrixUser]: ...


@pytest.fixture
async def matrix_users(synapse: Synapse) -> AsyncIterator[MakeUser]:
    """``await matrix_users("alice")`` → a new logged-in user ``@alice-N:sif.test``."""
    made: list[MatrixUser] = []

    async def make(name: str, *, admin: bool = False) -> MatrixUser:
        user = await synapse.register(synapse.unique_localpart(name), admin=admin)
        made.append(user)
        return user

    yield make
    for user in made:
        await user.close()


# -- the bot on Synapse -----------------------------------------------------------------

INTAKE = [
    "Repair café network",
    "Volunteer-run repair cafés in every neighbourhood.",
    "Too much waste",
    "Neighbours meet each month",
    "grants",
    "don't know",
    "prototype",
    "whether volunteers stay",
    "civil society",
    "finance",
    "skip",
    "English",
]


@dataclass
class Net:
    synapse: Synapse
    bot: Bot
    bot_user: str
    staff: MatrixUser
    start: Callable[..., Awaitable[MatrixAdapter]]  # keyword arguments go to MatrixAdapter
    adapters: list[MatrixAdapter]

    async def stop(self, adapter: MatrixAdapter) -> None:
        """Stop a running bot (as a restart begins); `start` brings up the next one."""
        await adapter.stop()
        self.adapters.remove(adapter)


@pytest.fixture
async def net(synapse: Synapse, matrix_users: MakeUser, tmp_path: Path) -> AsyncIterator[Net]:
    url = f"sqlite+aiosqlite:///{tmp_path}/matrix.db"
    engine = make_engine(url)
    await create_schema(engine)
    uow = SqlUnitOfWorkFactory(make_sessionmaker(engine))
    bot_account = await matrix_users("sifbot")
    staff = await matrix_users("staff")
    # One peer per round: the flow below expects the request to go to bob alone.
    settings = make_settings(url, sif_admins=f"matrix:{staff.user_id}", sif_fanout=1)
    clock = FakeClock()
    bot = assemble(settings, uow, clock).bot
    adapters: list[MatrixAdapter] = []
    localpart = bot_account.user_id.split(":")[0].lstrip("@")

    async def start(**options: Any) -> MatrixAdapter:
        adapter = MatrixAdapter(
            bot,
            homeserver=synapse.base_url,
            user_id=bot_account.user_id,
            password=f"pw-{localpart}",
            store_path=tmp_path / "matrix-store",
            **options,
        )
        await adapter.start()
        adapters.append(adapter)
        return adapter

    yield Net(synapse, bot, bot_account.user_id, staff, start, adapters)
    for adapter in adapters:
        await adapter.stop()
    await engine.dispose()


async def open_dm(user: MatrixUser, bot_user: str) -> str:
    room = await user.create_room(invite=[bot_user], is_direct=True)
    await user.wait_joined(room, bot_user)
    return room


async def say(user: MatrixUser, room: str, text: str, bot_user: str, expect: str) -> dict[str, Any]:
    await user.send_text(room, text)
    (reply,) = await user.wait_for_message(room, bot_user, contains=expect, timeout=20)
    return reply
