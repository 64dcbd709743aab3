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
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests.adapters.matrix.synapse import (
    MatrixUser,
    Synapse,
    SynapseUnavailable,
    ensure_synapse_venv,
    scratch_dir,
)

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
