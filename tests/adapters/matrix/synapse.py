"""A real Synapse homeserver for tests, and a plain-HTTP Matrix user client.

Synapse lives in its own virtualenv (``<repo>/.cache/synapse-venv``), apart from the bot's,
so its large dependency set never mixes with ours. ``Synapse`` runs one homeserver as a
subprocess on 127.0.0.1 with a throwaway SQLite database, no federation and every rate
limit raised; ``MatrixUser`` drives a user over the client-server API with aiohttp alone,
so tests exercise the bot (which uses matrix-nio) from an independent implementation.
"""

# The API takes plain ``timeout`` seconds (deadlines for waits), as tests read best.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import hmac
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
SYNAPSE_REQUIREMENT = "matrix-synapse>=1.160,<2"
# SIF_SYNAPSE_VENV moves it (e.g. to a directory a CI cache keeps).
SYNAPSE_VENV = Path(os.environ.get("SIF_SYNAPSE_VENV") or REPO_ROOT / ".cache" / "synapse-venv")
# Written as the last step of an install: without it (or with another requirement in it)
# the directory is a half-finished or outdated install and is rebuilt.
_MARKER = ".sif-install-complete"

CLIENT_API = "/_matrix/client/v3"

# Seconds the last ensure_synapse_venv() call of this process spent installing (None when the
# venv was already there); reported by the harness test.
LAST_INSTALL_SECONDS: float | None = None


class SynapseUnavailable(RuntimeError):
    """Synapse could not be installed or started (e.g. no network to PyPI)."""


def _log(msg: str) -> None:
    print(f"[synapse] {msg}", file=sys.stderr, flush=True)


def _base_python() -> str:
    # Build the venv from the interpreter itself, not from the project venv's python, so it
    # does not depend on .venv (which may be rebuilt) and gets a clean site-packages.
    return getattr(sys, "_base_executable", None) or sys.executable


def _installed(path: Path) -> bool:
    marker = path / _MARKER
    return marker.is_file() and marker.read_text().strip() == SYNAPSE_REQUIREMENT


def ensure_synapse_venv(path: Path = SYNAPSE_VENV) -> Path:
    """Return a virtualenv with Synapse installed, creating it on first use (≈ 1 min).

    Safe to call from several processes at once: an flock serialises installs, and each
    caller re-checks the completion marker after taking it.
    """
    global LAST_INSTALL_SECONDS
    if _installed(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock lives beside the venv, not inside it, because a broken venv is deleted.
    lock_path = path.parent / (path.name + ".lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(path):  # another process finished while we waited
            return path
        if path.exists():
            _log(f"removing unfinished or outdated install at {path}")
            shutil.rmtree(path)
        started = time.monotonic()
        _log(f"creating {path} with {_base_python()} (first run only, ≈ 1 min)")
        try:
            subprocess.run(
                [_base_python(), "-m", "venv", str(path)],
                check=True,
                capture_output=True,
                text=True,
                preexec_fn=_die_with_parent,
            )
            _log(f"pip install {SYNAPSE_REQUIREMENT!r}")
            proc = subprocess.run(
                [str(path / "bin" / "python"), "-m", "pip", "install", "-q", SYNAPSE_REQUIREMENT],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                # An orphaned pip would go on writing into the directory that the next
                # caller (free to take the lock once we are dead) deletes and rebuilds.
                preexec_fn=_die_with_parent,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(path, ignore_errors=True)
            detail = getattr(exc, "stderr", "") or ""
            raise SynapseUnavailable(f"creating the Synapse venv failed: {exc}\n{detail}") from exc
        if proc.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            raise SynapseUnavailable(
                f"pip install {SYNAPSE_REQUIREMENT!r} into {path} failed "
                f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}"
            )
        (path / _MARKER).write_text(SYNAPSE_REQUIREMENT + "\n")
        LAST_INSTALL_SECONDS = time.monotonic() - started
        _log(f"installed matrix-synapse {synapse_version(path)} in {LAST_INSTALL_SECONDS:.1f} s")
    return path


def synapse_version(path: Path = SYNAPSE_VENV) -> str:
    """The matrix-synapse version installed in the venv at ``path``."""
    # Not synapse.__version__: that one appends git info of whatever repo encloses the venv.
    code = "import importlib.metadata as m; print(m.version('matrix-synapse'))"
    out = subprocess.run(
        [str(path / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def scratch_dir() -> Path:
    """Where homeserver workdirs go: /dev/shm when present (≈ 10% faster), else tmp."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: ask Linux to SIGTERM the child (Synapse, pip) when the
    # thread that started it dies, so a killed pytest leaves nothing running behind.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# Far above anything a test does. Keys are those Synapse 1.163 reads (synapse/config/
# ratelimiting.py). Measured with its defaults: the 10th message in a burst is refused
# (0.2/s after that, and createRoom draws on the same budget), the 11th room creation waits
# a minute, and the 6th /invite of one user (from anyone) waits ≈ 5 minutes.
_NO_LIMIT = {"per_second": 100_000, "burst_count": 100_000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _NO_LIMIT,
    "rc_registration": _NO_LIMIT,
    "rc_registration_token_validity": _NO_LIMIT,
    "rc_login": {"address": _NO_LIMIT, "account": _NO_LIMIT, "failed_attempts": _NO_LIMIT},
    "rc_admin_redaction": _NO_LIMIT,
    "rc_joins": {"local": _NO_LIMIT, "remote": _NO_LIMIT},
    "rc_joins_per_room": _NO_LIMIT,
    "rc_key_requests": _NO_LIMIT,
    "rc_3pid_validation": _NO_LIMIT,
    "rc_invites": {"per_room": _NO_LIMIT, "per_user": _NO_LIMIT, "per_issuer": _NO_LIMIT},
    "rc_third_party_invite": _NO_LIMIT,
    "rc_media_create": _NO_LIMIT,
    "rc_presence": {"per_user": _NO_LIMIT},
    "rc_delayed_event_mgmt": _NO_LIMIT,
    "rc_room_creation": _NO_LIMIT,
    "rc_reports": _NO_LIMIT,
    "rc_user_directory": _NO_LIMIT,
    "rc_profile": _NO_LIMIT,
}


class Synapse:
    """One Synapse homeserver in ``workdir``, listening on 127.0.0.1 (client API only).

    ``start``/``stop`` may run in different event loops (the process is a plain Popen), and
    ``register``/``login`` open their own HTTP session, so one server can serve tests that
    each run in their own loop. Call ``start`` from a long-lived thread (the main one): the
    server is SIGTERMed when the thread that started it exits.
    """

    def __init__(self, workdir: Path, server_name: str = "sif.test") -> None:
        self.workdir = Path(workdir)
        self.server_name = server_name
        self.registration_shared_secret = secrets.token_hex(16)
        self.port: int | None = None
        self.start_seconds: float | None = None  # how long the last start() took
        self.config_path = self.workdir / "homeserver.yaml"
        self.log_path = self.workdir / "homeserver.log"
        self.output_path = self.workdir / "stdout.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("Synapse is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def unique_localpart(self, name: str) -> str:
        """``name-N``: the server lives for the whole session, so localparts must not repeat."""
        return f"{name.lower()}-{next(self._names)}"

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, timeout: float = 60) -> None:
        """Write the config, start Synapse and wait until it answers the client API."""
        if self.running:
            raise RuntimeError("Synapse already running")
        started = time.monotonic()
        venv_path = await asyncio.to_thread(ensure_synapse_venv)
        # A restart keeps the port, so users and bots made earlier keep their base_url.
        # A fresh port may be taken by someone else before Synapse binds it: retry on that.
        for attempt in range(3):
            if self.port is None or attempt > 0:
                self.port = _free_port()
            self._write_config()
            self._spawn(venv_path)
            try:
                await self._wait_ready(started + timeout)
                break
            except SynapseUnavailable as exc:
                if attempt < 2 and "Address already in use" in str(exc):
                    continue
                raise
        self.start_seconds = time.monotonic() - started

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            _log(f"Synapse pid {proc.pid} ignored SIGTERM for 10 s; killing it")
            proc.kill()
            await asyncio.to_thread(proc.wait)

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_config = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(self.log_path),
                    "formatter": "plain",
                    "level": "WARNING",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        log_config_path = self.workdir / "log.yaml"
        log_config_path.write_text(yaml.safe_dump(log_config))
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.base_url + "/",
            "report_stats": False,
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    # "client" also serves /_synapse/admin (shared-secret registration).
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self.workdir / "homeserver.db")},
            },
            "log_config": str(log_config_path),
            "media_store_path": str(self.workdir / "media_store"),
            # Synapse writes this key itself on first start if it is missing.
            "signing_key_path": str(self.workdir / "signing.key"),
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "enable_registration": False,
            # Offline: no key servers, no federation, no phoning home.
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "enable_metrics": False,
            "presence": {"enabled": False},
            "use_presence": False,  # older name of presence.enabled; harmless alongside it
            "url_preview_enabled": False,
            "max_upload_size": "10M",
            # Fast password hashing: each registration/login ≈ 0.3 s quicker.
            "bcrypt_rounds": 4,
            # A fresh database is then ready at once instead of running updates slowly.
            "background_updates": {"sleep_enabled": False},
            **RATE_LIMITS,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _spawn(self, venv_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
        env.pop("VIRTUAL_ENV", None)
        with self.output_path.open("ab") as out:
            # stdout/stderr go to a file: a pipe nobody reads would eventually block Synapse.
            self._proc = subprocess.Popen(
                [
                    str(venv_path / "bin" / "python"),
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(self.config_path),
                ],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    async def _wait_ready(self, deadline: float) -> None:
        url = self.base_url + "/_matrix/client/versions"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    code, self._proc = self._proc.returncode, None
                    raise SynapseUnavailable(
                        f"Synapse exited with {code} before it was ready.\n"
                        f"--- {self.output_path} ---\n{self._output_tail()}\n"
                        f"--- {self.log_path} ---\n{self._log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise SynapseUnavailable(
                        f"Synapse did not answer {url} in time.\n{self._log_tail()}"
                    )
                await asyncio.sleep(0.05)

    def _output_tail(self, chars: int = 4000) -> str:
        return _tail(self.output_path, chars)

    def _log_tail(self, chars: int = 4000) -> str:
        return _tail(self.log_path, chars)

    # -- users -------------------------------------------------------------------------

    async def register(
        self, localpart: str, password: str | None = None, admin: bool = False
    ) -> MatrixUser:
        """Create a user by shared-secret registration and return it logged in.

        The password defaults to ``"pw-" + localpart``.
        """
        password = f"pw-{localpart}" if password is None else password
        url = self.base_url + "/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as session:
            nonce = (await _call(session, "GET", url))["nonce"]
            mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
            for part in (nonce, localpart, password):
                mac.update(part.encode())
                mac.update(b"\x00")
            mac.update(b"admin" if admin else b"notadmin")
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            reply = await _call(session, "POST", url, body=body)
        user = MatrixUser(self.base_url, reply["user_id"], reply["access_token"])
        await user.mark()
        return user

    async def login(self, localpart: str, password: str | None = None) -> MatrixUser:
        """Log an existing user in again (a new device and access token)."""
        password = f"pw-{localpart}" if password is None else password
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
        }
        async with aiohttp.ClientSession() as session:
            reply = await _call(session, "POST", self.base_url + CLIENT_API + "/login", body=body)
        user = MatrixUser(self.base_url, reply["user_id"], reply["access_token"])
        await user.mark()
        return user


@contextlib.asynccontextmanager
async def synapse_server(
    workdir: Path | None = None, server_name: str = "sif.test"
) -> AsyncIterator[Synapse]:
    """A started Synapse, stopped on exit; a temporary ``workdir`` is removed afterwards."""
    own_dir = workdir is None
    path = Path(tempfile.mkdtemp(prefix="sif-synapse-", dir=scratch_dir())) if own_dir else workdir
    assert path is not None
    server = Synapse(path, server_name)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)


def _tail(path: Path, chars: int) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no file)"


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    # Every non-2xx answer becomes an AssertionError carrying Synapse's errcode and error,
    # which is what a failing test should show.
    async with session.request(
        method, url, json=body, params=params, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as resp:
        text = await resp.text()
        if not 200 <= resp.status < 300:
            shown = url.split("?", 1)[0]
            raise AssertionError(f"{method} {shown} -> HTTP {resp.status}: {text}")
        result: dict[str, Any] = json.loads(text) if text else {}
        return result


@dataclass
class _RoomLog:
    """Events of one room seen by a user, read forwards from a pagination token."""

    token: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    consumed: int = 0  # events[:consumed] were passed over by wait_for_message


def _body(event: dict[str, Any]) -> str:
    return str(event.get("content", {}).get("body", ""))


def _is_text_from(event: dict[str, Any], sender: str, contains: str | None) -> bool:
    return (
        event.get("type") == "m.room.message"
        and event.get("sender") == sender
        and (contains is None or contains in _body(event))
    )


class MatrixUser:
    """A Matrix user driven over the client-server API v3 with plain aiohttp.

    ``wait_for_message`` reads each room as a log, from the moment this object was created
    (``mark``) onwards, so a reply that arrives before the wait starts is still found; each
    successful wait moves the room's cursor past the messages it returned.
    """

    def __init__(self, base_url: str, user_id: str, access_token: str) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.access_token = access_token
        self.next_batch: str | None = None  # the position of sync()
        self._origin: str | None = None  # stream position when this user was set up
        self._rooms: dict[str, _RoomLog] = {}
        self._invite_token: str | None = None
        self._invites: dict[str, str] = {}  # room id -> inviter, every invite synced
        self._invites_returned: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"MatrixUser({self.user_id!r})"

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily so it belongs to the loop of the test that uses it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.access_token}"}
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def api(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Any authenticated call: ``path`` is under /_matrix/client/v3 unless it starts
        with ``/_`` (e.g. ``/_synapse/admin/...``). Non-2xx raises AssertionError."""
        url = self.base_url + (path if path.startswith("/_") else CLIENT_API + path)
        return await _call(self.session, method, url, body=body, params=params, timeout=timeout)

    async def mark(self) -> None:
        """Remember "now": wait_for_message and wait_for_invite count events from here."""
        reply = await self.api("GET", "/sync", params={"timeout": "0", "filter": _QUIET_FILTER})
        self._origin = reply["next_batch"]
        self._invite_token = self._origin

    # -- rooms -------------------------------------------------------------------------

    async def create_room(
        self,
        *,
        invite: Iterable[str] = (),
        is_direct: bool = False,
        name: str | None = None,
        encrypted: bool = False,
        preset: str = "private_chat",
    ) -> str:
        """Create a room and return its id; ``encrypted`` sets m.room.encryption (megolm)."""
        invitees = list(invite)
        body: dict[str, Any] = {"preset": preset, "invite": invitees, "is_direct": is_direct}
        if name is not None:
            body["name"] = name
        if encrypted:
            body["initial_state"] = [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ]
        room_id = str((await self.api("POST", "/createRoom", body=body))["room_id"])
        if is_direct and invitees:
            await self._add_direct(room_id, invitees)
        return room_id

    async def _add_direct(self, room_id: str, invitees: list[str]) -> None:
        # What Element does for a DM: record it in the creator's m.direct account data.
        path = f"/user/{_q(self.user_id)}/account_data/m.direct"
        try:
            direct = await self.api("GET", path)
        except AssertionError as exc:
            if "M_NOT_FOUND" not in str(exc):
                raise
            direct = {}
        for other in invitees:
            rooms = direct.setdefault(other, [])
            if room_id not in rooms:
                rooms.append(room_id)
        await self.api("PUT", path, body=direct)

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.api("POST", f"/rooms/{_q(room_id)}/invite", body={"user_id": user_id})

    async def join(self, room_id: str) -> None:
        await self.api("POST", f"/join/{_q(room_id)}", body={})

    async def leave(self, room_id: str) -> None:
        await self.api("POST", f"/rooms/{_q(room_id)}/leave", body={})

    async def joined_members(self, room_id: str) -> list[str]:
        reply = await self.api("GET", f"/rooms/{_q(room_id)}/joined_members")
        return sorted(reply["joined"])

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        """The content of one state event (AssertionError with M_NOT_FOUND if absent)."""
        path = f"/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}"
        return await self.api("GET", path)

    async def get_event(self, room_id: str, event_id: str) -> dict[str, Any]:
        return await self.api("GET", f"/rooms/{_q(room_id)}/event/{_q(event_id)}")

    # -- sending -----------------------------------------------------------------------

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send any room event and return its id (a fresh transaction id per call)."""
        txn = uuid.uuid4().hex
        path = f"/rooms/{_q(room_id)}/send/{_q(event_type)}/{txn}"
        return str((await self.api("PUT", path, body=content))["event_id"])

    async def send_text(self, room_id: str, body: str, *, reply_to: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send_event(room_id, "m.room.message", content)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        relates = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return await self.send_event(room_id, "m.reaction", {"m.relates_to": relates})

    # -- reading -----------------------------------------------------------------------

    async def sync(self, timeout_ms: int = 0) -> dict[str, Any]:
        """One /sync from the last position this method reached (initial sync the first time).

        Independent of the waits below, which keep their own positions.
        """
        params = {"timeout": str(timeout_ms)}
        if self.next_batch is not None:
            params["since"] = self.next_batch
        reply = await self.api("GET", "/sync", params=params, timeout=timeout_ms / 1000 + 30)
        self.next_batch = reply["next_batch"]
        return reply

    async def events(
        self, room_id: str, *, event_type: str | None = None, sender: str | None = None
    ) -> list[dict[str, Any]]:
        """The room's whole visible timeline (optionally one type / sender), oldest first."""
        found: list[dict[str, Any]] = []
        params = {"dir": "b", "limit": "1000"}  # 1000 is Synapse's cap per page
        while True:
            reply = await self.api("GET", f"/rooms/{_q(room_id)}/messages", params=params)
            chunk = reply.get("chunk", [])
            found.extend(
                e
                for e in chunk
                if event_type in (None, e.get("type")) and sender in (None, e.get("sender"))
            )
            if not chunk or not reply.get("end"):
                break
            params["from"] = reply["end"]
        found.reverse()
        return found

    async def messages_from(
        self, room_id: str, sender: str, *, since_start: bool = True
    ) -> list[dict[str, Any]]:
        """m.room.message events by ``sender`` in the room, oldest first.

        ``since_start=True``: the room's whole visible history. ``False``: only those after
        the room's wait_for_message cursor (not yet returned or passed over by a wait);
        this does not move the cursor.
        """
        if since_start:
            return await self.events(room_id, event_type="m.room.message", sender=sender)
        log = await self._read_forward(room_id)
        return [e for e in log.events[log.consumed :] if _is_text_from(e, sender, None)]

    async def _read_forward(self, room_id: str) -> _RoomLog:
        # /messages dir=f from a sync token never has gaps, unlike an incremental /sync whose
        # timeline is cut ("limited") when many events arrive at once.
        if self._origin is None:
            await self.mark()
        assert self._origin is not None
        log = self._rooms.setdefault(room_id, _RoomLog(token=self._origin))
        while True:
            params = {"dir": "f", "from": log.token, "limit": "500"}
            reply = await self.api("GET", f"/rooms/{_q(room_id)}/messages", params=params)
            chunk = reply.get("chunk", [])
            for event in chunk:
                if event["event_id"] not in log.ids:
                    log.ids.add(event["event_id"])
                    log.events.append(event)
            if reply.get("end"):
                log.token = reply["end"]
            if not chunk or not reply.get("end"):
                return log

    async def _wake_token(self, room_id: str) -> str:
        reply = await self.api(
            "GET", "/sync", params={"timeout": "0", "filter": _room_filter(room_id)}
        )
        return str(reply["next_batch"])

    async def _wait_for_change(self, room_id: str, since: str, seconds: float) -> str:
        # A /sync long-poll limited to this room returns as soon as the room has a new event,
        # so waits react at once without busy polling.
        params = {
            "since": since,
            "timeout": str(max(0, int(seconds * 1000))),
            "filter": _room_filter(room_id),
        }
        reply = await self.api("GET", "/sync", params=params, timeout=seconds + 30)
        return str(reply["next_batch"])

    async def wait_for_message(
        self,
        room_id: str,
        sender: str,
        *,
        contains: str | None = None,
        count: int = 1,
        timeout: float = 15,
    ) -> list[dict[str, Any]]:
        """Wait for ``count`` new m.room.message events from ``sender`` (body containing
        ``contains``) and return them oldest first.

        "New" means after the room's cursor: from when this user was created, then after the
        last message a previous wait returned. Raises AssertionError listing the messages
        seen after the cursor if they do not arrive within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        wake = await self._wake_token(room_id)
        while True:
            log = await self._read_forward(room_id)
            matched: list[dict[str, Any]] = []
            for index in range(log.consumed, len(log.events)):
                if _is_text_from(log.events[index], sender, contains):
                    matched.append(log.events[index])
                    if len(matched) == count:
                        log.consumed = index + 1
                        return matched
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [
                    f"{e['sender']}: {_body(e)!r}"
                    for e in log.events[log.consumed :]
                    if e.get("type") == "m.room.message"
                ]
                want = f" containing {contains!r}" if contains is not None else ""
                raise AssertionError(
                    f"{self.user_id} waited {timeout} s for {count} message(s) from {sender}"
                    f"{want} in {room_id}; found {len(matched)}. Messages seen since the "
                    f"cursor ({len(seen)}):\n  " + "\n  ".join(seen or ["(none)"])
                )
            wake = await self._wait_for_change(room_id, wake, min(remaining, 10))

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = 15) -> None:
        """Wait until ``user_id`` is a joined member of the room (this user must see it)."""
        deadline = time.monotonic() + timeout
        wake = await self._wake_token(room_id)
        while True:
            members = await self.joined_members(room_id)
            if user_id in members:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{user_id} did not join {room_id} within {timeout} s; joined: {members}"
                )
            wake = await self._wait_for_change(room_id, wake, min(remaining, 10))

    async def wait_for_invite(self, *, inviter: str | None = None, timeout: float = 15) -> str:
        """Wait for an invite (from ``inviter`` if given) not returned before; its room id.

        Counts invites received since this user was created, so one that arrived before the
        call is found too.
        """
        deadline = time.monotonic() + timeout
        poll_ms = 0
        while True:
            params = {"timeout": str(poll_ms), "filter": _QUIET_FILTER}
            if self._invite_token is not None:
                params["since"] = self._invite_token
            reply = await self.api("GET", "/sync", params=params, timeout=poll_ms / 1000 + 30)
            self._invite_token = reply["next_batch"]
            # An incremental sync reports an invite once: remember every one we are shown.
            for room_id, room in reply.get("rooms", {}).get("invite", {}).items():
                events = room.get("invite_state", {}).get("events", [])
                self._invites[room_id] = next(
                    (
                        str(e.get("sender"))
                        for e in events
                        if e.get("type") == "m.room.member" and e.get("state_key") == self.user_id
                    ),
                    "",
                )
            for room_id, by in self._invites.items():
                if room_id not in self._invites_returned and inviter in (None, by):
                    self._invites_returned.add(room_id)
                    return room_id
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                who = f" from {inviter}" if inviter else ""
                raise AssertionError(
                    f"{self.user_id} got no new invite{who} within {timeout} s; "
                    f"invites so far: {self._invites}"
                )
            poll_ms = int(min(remaining, 10) * 1000)


def _q(part: str) -> str:
    return quote(part, safe="")


# Sync filters kept small: only what the waits need to notice.
_QUIET_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 1},
            "state": {"lazy_load_members": True},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }
)


def _room_filter(room_id: str) -> str:
    return json.dumps(
        {
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "rooms": [room_id],
                "timeline": {"limit": 1},
                "state": {"types": []},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
        }
    )
