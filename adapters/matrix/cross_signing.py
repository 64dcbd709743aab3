"""Cross-signing of the bot's own device, done by hand over the client-server API.

matrix-nio 0.26 knows nothing of cross-signing, but Element is to stop sharing room keys
with devices their owner has not cross-signed: a bot device that is not signed would then
no longer read the encrypted rooms it is in. So the bot keeps its own three cross-signing
keys (master, self-signing, user-signing; ed25519) and signs each device it logs in with
its self-signing key.

The private keys are kept as 32-byte seeds in ``<store>/cross-signing.json`` (mode 0600,
written atomically), next to nio's crypto store: a new device of the same account that
finds the file is signed with the same master key, so nobody has to verify the bot again.
Uploading cross-signing keys needs user-interactive auth (the account password) unless
the server lets the first upload of an account through without it (MSC3967, stable in
recent Synapse); signing a device with a key already on the server never needs it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nio
from Crypto.PublicKey import ECC
from Crypto.PublicKey.ECC import EccKey
from Crypto.Signature import eddsa

log = logging.getLogger(__name__)

KEYS_FILE = "cross-signing.json"
FILE_VERSION = 1

Outcome = Literal["already", "signed", "no-password"]


class CrossSigningError(RuntimeError):
    """The homeserver refused a cross-signing step, or the kept keys cannot be used."""


def _b64encode(data: bytes) -> str:
    """Matrix uses unpadded standard base64 for keys and signatures."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def canonical_json(obj: dict[str, Any]) -> bytes:
    """The bytes a Matrix signature covers: the object without ``signatures`` and
    ``unsigned``, keys sorted, no whitespace, UTF-8 (spec: "Signing JSON")."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(stripped, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class _Key:
    """One ed25519 keypair, known by its seed (what is kept) and public key (its id)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise CrossSigningError("a kept cross-signing key is not a 32-byte ed25519 seed")
        self.seed = seed
        self._key: EccKey = ECC.construct(curve="ed25519", seed=seed)
        self.public = _b64encode(self._key.public_key().export_key(format="raw"))

    @classmethod
    def generate(cls) -> _Key:
        key = ECC.generate(curve="ed25519")
        seed = key.seed
        assert isinstance(seed, bytes)
        return cls(seed)

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public}"

    def sign(self, obj: dict[str, Any]) -> str:
        signer = eddsa.new(self._key, "rfc8032")
        return _b64encode(signer.sign(canonical_json(obj)))


@dataclass(frozen=True)
class _Keys:
    master: _Key
    self_signing: _Key
    user_signing: _Key

    @classmethod
    def generate(cls) -> _Keys:
        return cls(_Key.generate(), _Key.generate(), _Key.generate())


def _load_keys(path: Path, user_id: str) -> _Keys | None:
    """The kept keys, or None when there is no file. A file that is there but unreadable
    or of another account is an error, never silently replaced: it may hold the only copy
    of the master key other people have verified."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        if data.get("user_id") != user_id:
            raise CrossSigningError(
                f"{path} holds cross-signing keys of {data.get('user_id')!r}, not {user_id}"
            )
        return _Keys(
            _Key(_b64decode(data["master"])),
            _Key(_b64decode(data["self_signing"])),
            _Key(_b64decode(data["user_signing"])),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CrossSigningError(f"{path} is not a readable cross-signing key file: {exc}") from exc


def _save_keys(path: Path, user_id: str, keys: _Keys) -> None:
    """Write the seeds atomically (temp file, fsync, rename) with mode 0600, so a crash
    never leaves half a file, nor the secrets readable by others even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "version": FILE_VERSION,
        "user_id": user_id,
        "master": _b64encode(keys.master.seed),
        "self_signing": _b64encode(keys.self_signing.seed),
        "user_signing": _b64encode(keys.user_signing.seed),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; be explicit about it
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def _call(client: nio.AsyncClient, path: list[str], body: dict[str, Any]) -> tuple[int, Any]:
    """POST a JSON body with the client's token; (status, decoded answer). nio has no
    helper for these endpoints. Network errors propagate as they are."""
    response = await client.send(
        "POST",
        nio.Api._build_path(path),
        json.dumps(body),
        headers={"Authorization": f"Bearer {client.access_token}"},
    )
    try:
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            answer = None
        return response.status, answer
    finally:
        response.release()


def _refusal(what: str, status: int, answer: Any) -> CrossSigningError:
    if isinstance(answer, dict) and (answer.get("errcode") or answer.get("error")):
        detail = f"{answer.get('errcode', '')} {answer.get('error', '')}".strip()
    else:
        detail = "no Matrix error in the answer"
    return CrossSigningError(f"the homeserver refused to {what} (HTTP {status}: {detail})")


def _single_key(key_object: Any) -> str | None:
    """The public key of a cross-signing key object as keys/query shows it."""
    if not isinstance(key_object, dict):
        return None
    keys = key_object.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    (public,) = keys.values()
    return public if isinstance(public, str) else None


def _signed_by(obj: Any, user_id: str, key: _Key) -> bool:
    """Whether ``obj`` carries a valid signature by ``key``: verified, not just present,
    so that "already" means other clients will accept it (it costs next to nothing)."""
    if not isinstance(obj, dict):
        return False
    signature = ((obj.get("signatures") or {}).get(user_id) or {}).get(key.key_id)
    if not isinstance(signature, str):
        return False
    public = eddsa.import_public_key(_b64decode(key.public))
    try:
        eddsa.new(public, "rfc8032").verify(canonical_json(obj), _b64decode(signature))
    except ValueError:
        return False
    return True


def _key_object(user_id: str, usage: str, key: _Key) -> dict[str, Any]:
    return {"user_id": user_id, "usage": [usage], "keys": {key.key_id: key.public}}


def _upload_body(client: nio.AsyncClient, user_id: str, keys: _Keys) -> dict[str, Any]:
    """The keys/device_signing/upload body: the master key, signed by this device as
    well when nio has its olm account (lets other clients see the device vouches for it),
    and the self-signing and user-signing keys, each signed by the master key."""
    master = _key_object(user_id, "master", keys.master)
    olm = getattr(client, "olm", None)
    if olm is not None:
        device_signature = olm.account.sign(canonical_json(master).decode())
        master["signatures"] = {user_id: {f"ed25519:{client.device_id}": device_signature}}
    body: dict[str, Any] = {"master_key": master}
    for field, usage, key in (
        ("self_signing_key", "self_signing", keys.self_signing),
        ("user_signing_key", "user_signing", keys.user_signing),
    ):
        obj = _key_object(user_id, usage, key)
        obj["signatures"] = {user_id: {keys.master.key_id: keys.master.sign(obj)}}
        body[field] = obj
    return body


async def _upload_keys(
    client: nio.AsyncClient, user_id: str, keys: _Keys, password: str | None
) -> bool:
    """Upload the cross-signing keys; False when the server wants user-interactive auth
    and there is no password. Tried without auth first: that is how the UIA session is
    obtained, and servers implementing MSC3967 accept an account's first upload as is."""
    path = ["keys", "device_signing", "upload"]
    body = _upload_body(client, user_id, keys)
    status, answer = await _call(client, path, body)
    if status == 200:
        log.info("cross-signing keys uploaded without user-interactive auth")
        return True
    if status != 401 or not isinstance(answer, dict) or "flows" not in answer:
        raise _refusal("take the cross-signing keys", status, answer)
    flows = answer.get("flows") or []
    if not any(flow.get("stages") == ["m.login.password"] for flow in flows):
        raise CrossSigningError(
            "the homeserver wants user-interactive auth other than the account password "
            f"to take the cross-signing keys (flows: {flows})"
        )
    if password is None:
        return False
    body["auth"] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "session": answer.get("session"),
    }
    status, answer = await _call(client, path, body)
    if status != 200:
        raise _refusal("take the cross-signing keys with the account password", status, answer)
    log.info("cross-signing keys uploaded with password auth")
    return True


async def _sign_device(
    client: nio.AsyncClient, user_id: str, device: dict[str, Any], keys: _Keys
) -> None:
    """Sign the device keys as the server has them with the self-signing key."""
    signed = {k: v for k, v in device.items() if k not in ("signatures", "unsigned")}
    signed["signatures"] = {user_id: {keys.self_signing.key_id: keys.self_signing.sign(device)}}
    body = {user_id: {client.device_id: signed}}
    status, answer = await _call(client, ["keys", "signatures", "upload"], body)
    if status != 200 or not isinstance(answer, dict):
        raise _refusal("take the device signature", status, answer)
    failures = answer.get("failures") or {}
    if failures:
        raise CrossSigningError(
            f"the homeserver refused the signature of device {client.device_id}: {failures}"
        )


async def _query(client: nio.AsyncClient, user_id: str) -> dict[str, Any]:
    status, answer = await _call(client, ["keys", "query"], {"device_keys": {user_id: []}})
    if status != 200 or not isinstance(answer, dict):
        raise _refusal("show the account's keys", status, answer)
    return answer


async def ensure_cross_signed(
    client: nio.AsyncClient, *, password: str | None, store_path: Path
) -> Outcome:
    """Make sure the bot account has cross-signing keys and that the current device
    (``client.device_id``) is signed by the self-signing key.

    Returns "already" when the server already shows this device signed by our
    self-signing key (nothing is sent then), "signed" when it was signed now (after
    uploading the keys if need be), "no-password" when the keys had to be uploaded, the
    server wants the account password for that and none was given (nothing is uploaded;
    the kept keys are still written, so a later run with the password uses them).
    Raises CrossSigningError on a refusal; network errors propagate as they are.

    The device keys must already be on the server (nio's ``keys_upload``)."""
    user_id: str = client.user_id
    device_id: str | None = client.device_id
    if not user_id or not device_id or not client.access_token:
        raise CrossSigningError("the client must be logged in to cross-sign its device")
    path = store_path / KEYS_FILE
    keys = _load_keys(path, user_id)

    answer = await _query(client, user_id)
    device = ((answer.get("device_keys") or {}).get(user_id) or {}).get(device_id)
    if not isinstance(device, dict) or not device.get("keys"):
        raise CrossSigningError(
            f"the homeserver has no keys for device {device_id}; upload them first"
        )
    server_master = _single_key((answer.get("master_keys") or {}).get(user_id))
    server_self = (answer.get("self_signing_keys") or {}).get(user_id)

    ours_on_server = (
        keys is not None
        and server_master == keys.master.public
        and _single_key(server_self) == keys.self_signing.public
        and _signed_by(server_self, user_id, keys.master)
    )
    if ours_on_server:
        assert keys is not None
        if _signed_by(device, user_id, keys.self_signing):
            return "already"
    else:
        if keys is None:
            # No file (first run, or it was lost): new keys, kept before they are
            # uploaded, so the server never holds a key whose private half we lack.
            keys = _Keys.generate()
            _save_keys(path, user_id, keys)
        if server_master is not None:
            log.warning(
                "the account %s has other cross-signing keys on the server (master %s); "
                "uploading the bot's own (master %s) in their place",
                user_id,
                server_master,
                keys.master.public,
            )
        if not await _upload_keys(client, user_id, keys, password):
            log.warning(
                "cross-signing keys of %s need the account password to be uploaded; "
                "device %s stays unsigned",
                user_id,
                device_id,
            )
            return "no-password"
    await _sign_device(client, user_id, device, keys)
    log.info("device %s of %s signed by its self-signing key", device_id, user_id)
    return "signed"
