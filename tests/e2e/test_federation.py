"""Two real `sif-bot run` nodes talking over HTTP (SPEC §12): ghent has no peer for a
request, lyon's peer reviews it, and SIF settles through the mirror accounts.

Each node is the console (`run` without Slack or Matrix credentials) with the
federation door on 127.0.0.1:$PORT; the test types into its stdin (`as NAME` switches
who speaks) and reads what it prints (`[to ann] ...` blocks, after the console's
`NAME> ` prompts). tests/service/test_network.py plays the same story in-process.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.console import SIF_BOT

DEADLINE = 60.0  # seconds a message may take to cross (it takes about one)
PUBLIC_KEY = re.compile(r"Public key, for your partners' files: ([0-9a-f]{64})")
LISTENS = "Federation: node {name} listens"
FEEDBACK = "Start with a cost model per café; city grants cover the first year."
INTAKE = (  # tests/e2e/scripts/first_week.txt, from `intake` to `confirm`
    "intake",
    "Repair café network",
    "A network of volunteer-run repair cafés in every Ghent neighbourhood, for everyone.",
    "Too much waste, and lonely elderly people in the city",
    "Fewer items thrown away; 200 neighbours meet each month",
    "grants, donations - mostly city grants",
    "about 5000 EUR",
    "prototype",
    "whether volunteers stay motivated",
    "civil society, government",
    "finance, legal",
    "skip",
    "English, Dutch",
    "confirm",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pump(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


class Node:
    """One `sif-bot run` process: its stdin to type into, its stdout and stderr lines
    (read by background threads), and where its files are."""

    def __init__(self, name: str, folder: Path, database_url: str) -> None:
        self.name = name
        self.folder = folder
        self.database_url = database_url
        self.port = free_port()
        self.key_file = folder / f"{name}.key"
        self.partners_file = folder / "partners.toml"
        self.public_key = ""
        self.proc: subprocess.Popen[str] | None = None
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads: list[threading.Thread] = []
        folder.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.folder),
            "USER": "staff",  # the console's first speaker (getpass.getuser)
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "SIF_ADMINS": "console:staff",
            "SIF_NODE_NAME": self.name,
            "SIF_NODE_KEY_FILE": str(self.key_file),
            "SIF_PARTNERS_FILE": str(self.partners_file),
            "SIF_FEDERATE_AFTER_ROUNDS": "1",
            "SIF_RATE_COMMANDS_PER_MINUTE": "0",
            "SIF_WELCOME_GRANT": "0",
            "PORT": str(self.port),
            **extra,
        }

    def keygen(self) -> None:
        done = subprocess.run(
            [SIF_BOT, "federation", "keygen", "--out", str(self.key_file)],
            env=self.env(),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found = PUBLIC_KEY.search(done.stdout)
        assert found is not None, done.stdout
        self.public_key = found.group(1)

    def trust(self, other: Node) -> None:
        self.partners_file.write_text(
            "[[partner]]\n"
            f'name = "{other.name}"\n'
            f'url = "http://127.0.0.1:{other.port}"\n'
            f'public_key = "{other.public_key}"\n'
            "limit = 50\n"
            'tags = ["finance"]\n',
            encoding="utf-8",
        )

    def start(self, **extra: str) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.out, self.err = [], []
        self.proc = subprocess.Popen(
            [SIF_BOT, "run"],
            env=self.env(**extra),
            cwd=self.folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.wait_for(LISTENS.format(name=self.name))

    def say(self, who: str, *texts: str) -> None:
        """Type lines as `who` (the console's `as NAME` switches the speaker)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("".join(f"as {who}\n{text}\n" for text in texts))
        self.proc.stdin.flush()

    def text(self) -> str:
        return "\n".join(self.out)

    def wait_for(self, text: str, timeout: float = DEADLINE, stream: str = "out") -> None:
        """Wait until the node printed `text` (on stdout, or stderr); fail with what it
        printed when it does not within `timeout` seconds or stops."""
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(lines)):
                return
            if self.proc is not None and self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers take its last lines
                if any(text in line for line in list(lines)):
                    return
                break
            time.sleep(0.1)
        pytest.fail(
            f"{self.name} did not print {text!r} within {timeout:.0f} s\n"
            f"--- stdout ---\n{self.text()[-4000:]}\n"
            f"--- stderr ---\n" + "\n".join(self.err)[-4000:]
        )

    def stop(self) -> int:
        """End the console (end of input), as a person pressing Ctrl-D; its exit code."""
        if self.proc is None:
            return 0
        proc = self.proc
        if proc.poll() is None:
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        return proc.returncode

    def kill(self) -> None:
        """For the fixture's clean-up only: whatever is still running is ended."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def pair(ghent: Node, lyon: Node) -> None:
    for node in (ghent, lyon):
        node.keygen()
    ghent.trust(lyon)
    lyon.trust(ghent)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    """The nodes a test starts; any still running when it ends is killed."""
    made: list[Node] = []
    yield made
    for node in made:
        node.kill()


async def _empty_postgres(url: str) -> None:
    """The session's scratch database, emptied (other tests share it)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        tables = ", ".join(f'"{row["tablename"]}"' for row in rows)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


async def _balances(url: str, who: list[tuple[str, str]]) -> tuple[dict[str, int], list[str]]:
    """The balances of (platform, external id) members, through the bot's own store, and
    what check_invariants finds wrong in their community."""
    from bot.bootstrap import sql_store
    from bot.domain.ledger import AccountKey
    from store.db import dispose

    factory, engine, readers = sql_store(url)
    try:
        found: dict[str, int] = {}
        problems: list[str] = []
        async with factory() as uow:
            for platform, external in who:
                member = await uow.members.by_identity(platform, external)
                assert member is not None, f"no member {platform}:{external}"
                found[external] = await uow.ledger.balance(
                    member.community, AccountKey.of(member.id)
                )
            for community in await uow.communities.all():
                problems += await uow.ledger.check_invariants(community.id)
        return found, problems
    finally:
        await dispose(engine, readers)


def _sqlite_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def _no_traceback(node: Node) -> None:
    assert "Traceback" not in "\n".join(node.err), "\n".join(node.err)[-4000:]


@pytest.mark.postgres
def test_a_request_with_no_local_peer_is_reviewed_by_a_peer_of_the_partner(
    tmp_path: Path, pg_url: str, nodes: list[Node]
) -> None:
    asyncio.run(_empty_postgres(pg_url))
    ghent_url = f"sqlite+aiosqlite:///{tmp_path}/ghent/ghent.db"
    ghent = Node("ghent", tmp_path / "ghent", ghent_url)
    lyon = Node("lyon", tmp_path / "lyon", pg_url)
    nodes += [ghent, lyon]
    pair(ghent, lyon)
    ghent.start()
    lyon.start()

    lyon.say("bob", "expertise add finance:2")
    lyon.wait_for("[to bob]")
    ghent.say("staff", "availability 0")
    ghent.say("ann", "hi")
    ghent.say("staff", "grant @ann 5 welcome")
    ghent.say("ann", *INTAKE)
    ghent.wait_for("Your idea is saved as I-1")
    ghent.say("ann", "request I-1 review finance")
    ghent.wait_for("so it went to the network: the factory lyon")

    lyon.wait_for("Can you help? R-1")
    assert "Repair café network" in lyon.text()
    lyon.say("bob", "accept R-1")
    ghent.wait_for("bob of the factory lyon accepted R-1")
    lyon.say("bob", f"done R-1 1.5 {FEEDBACK}")
    ghent.wait_for(FEEDBACK)
    assert "lyon delivered R-1" in ghent.text()
    ghent.say("ann", "thanks R-1 5 great")
    lyon.wait_for("thanked you for R-1 (5/5)")

    assert ghent.stop() == 0, "\n".join(ghent.err)
    assert lyon.stop() == 0, "\n".join(lyon.err)
    _no_traceback(ghent)
    _no_traceback(lyon)

    # ghent, read with sqlite3: the member that stands for lyon
    with sqlite3.connect(_sqlite_file(ghent_url)) as db:
        mirror = db.execute(
            "SELECT m.name FROM members m JOIN identities i ON i.member_id = m.id "
            "WHERE i.platform = 'federation' AND i.external_id = 'lyon'"
        ).fetchall()
    assert mirror == [("lyon (network)",)]

    at_ghent, ghent_problems = asyncio.run(
        _balances(ghent_url, [("console", "ann"), ("federation", "lyon")])
    )
    at_lyon, lyon_problems = asyncio.run(
        _balances(pg_url, [("console", "bob"), ("federation", "ghent")])
    )
    assert at_ghent == {"ann": 300, "lyon": 200}  # ann paid 2 SIF of the 5 granted
    assert at_lyon == {"bob": 200, "ghent": -200}  # bob earned them; mirrors are opposite
    assert ghent_problems == []
    assert lyon_problems == []


def test_ghent_keeps_the_request_while_lyon_is_down(tmp_path: Path, nodes: list[Node]) -> None:
    ghent_url = f"sqlite+aiosqlite:///{tmp_path}/ghent/ghent.db"
    lyon_url = f"sqlite+aiosqlite:///{tmp_path}/lyon/lyon.db"
    ghent = Node("ghent", tmp_path / "ghent", ghent_url)
    lyon = Node("lyon", tmp_path / "lyon", lyon_url)
    nodes += [ghent, lyon]
    pair(ghent, lyon)

    lyon.start()  # bob joins lyon, then lyon goes down
    lyon.say("bob", "expertise add finance:2")
    lyon.wait_for("[to bob]")
    assert lyon.stop() == 0, "\n".join(lyon.err)

    # The outbox tries again every SIF_OUTBOX_RETRY_SECONDS (30 by default), and a
    # partner found down waits 5 s, then 10, 20...: 2 s keeps this test short.
    ghent.start(SIF_OUTBOX_RETRY_SECONDS="2")
    ghent.say("staff", "availability 0")
    ghent.say("ann", "hi")
    ghent.say("ann", *INTAKE)
    ghent.wait_for("Your idea is saved as I-1")
    ghent.say("ann", "request I-1 review finance")
    ghent.wait_for("so it went to the network: the factory lyon")
    ghent.wait_for("not delivered yet", stream="err")  # lyon is down: the message waits
    with sqlite3.connect(_sqlite_file(ghent_url)) as db:
        waiting = db.execute(
            "SELECT count(*) FROM outbox WHERE platform = 'federation' AND sent_at IS NULL"
        ).fetchone()
    assert waiting == (1,)

    lyon.start()
    lyon.wait_for("Can you help? R-1")
    time.sleep(6)  # three more of ghent's retries: none sends it again
    assert lyon.text().count("Can you help?") == 1
    assert ghent.stop() == 0, "\n".join(ghent.err)
    assert lyon.stop() == 0, "\n".join(lyon.err)
    _no_traceback(lyon)

    with sqlite3.connect(_sqlite_file(ghent_url)) as db:
        pending = db.execute(
            "SELECT count(*) FROM outbox WHERE platform = 'federation' AND sent_at IS NULL"
        ).fetchone()
    with sqlite3.connect(_sqlite_file(lyon_url)) as db:
        requests = db.execute("SELECT count(*) FROM requests").fetchone()
        offers = db.execute("SELECT count(*) FROM offers").fetchone()
    assert pending == (0,)
    assert requests == (1,)
    assert offers == (1,)


def test_the_requester_is_not_told_staff_were_asked_when_the_request_went_to_the_network(
    tmp_path: Path, nodes: list[Node]
) -> None:
    ghent = Node("ghent", tmp_path / "ghent", f"sqlite+aiosqlite:///{tmp_path}/ghent/ghent.db")
    lyon = Node("lyon", tmp_path / "lyon", f"sqlite+aiosqlite:///{tmp_path}/lyon/lyon.db")
    nodes.append(ghent)
    pair(ghent, lyon)  # lyon never starts: what ghent says does not depend on it
    ghent.start()
    ghent.say("staff", "availability 0")
    ghent.say("ann", "hi")
    ghent.say("ann", *INTAKE)
    ghent.wait_for("Your idea is saved as I-1")
    ghent.say("ann", "request I-1 review finance")
    ghent.wait_for("so it went to the network: the factory lyon")
    ghent.wait_for("Asked the network: R-1")
    said = ghent.text()
    assert "Escalation" not in said  # staff were indeed not asked...
    assert "staff have been asked" not in said  # ...but ann is told they were
