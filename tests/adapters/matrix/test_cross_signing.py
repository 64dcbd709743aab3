"""ensure_cross_signed against a real Synapse.

Every outcome is checked from outside: another user's plain keys/query must show the bot's
master and self-signing keys and the bot device signed, and the signatures are verified
here with ed25519, not merely looked for.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from nio import AsyncClient, AsyncClientConfig, LoginResponse
from nio.store import SqliteStore

from adapters.matrix.cross_signing import CrossSigningError, ensure_cross_signed
from tests.adapters.matrix.synapse import MatrixUser, Synapse

MakeBot = Callable[[str, Path], Awaitable[AsyncClient]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def canonical(obj: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def verify(obj: dict[str, Any], user_id: str, public: str, key_id: str | None = None) -> None:
    """Fail unless ``obj`` carries a valid ed25519 signature by ``public``."""
    key_id = key_id or f"ed25519:{public}"
    signature = obj["signatures"][user_id][key_id]
    verifier = eddsa.new(eddsa.import_public_key(unb64(public)), "rfc8032")
    verifier.verify(canonical(obj), unb64(signature))  # raises ValueError if forged


def only_key(key_object: dict[str, Any]) -> str:
    (public,) = key_object["keys"].values()
    assert key_object["keys"] == {f"ed25519:{public}": public}
    return str(public)


def _makedirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


@pytest.fixture
async def make_bot(synapse: Synapse) -> AsyncIterator[MakeBot]:
    """``await make_bot(localpart, store)`` → a nio client logged in as a new device with
    encryption, its device keys uploaded; closed after the test."""
    clients: list[AsyncClient] = []

    async def make(localpart: str, store: Path) -> AsyncClient:
        _makedirs(store)
        config = AsyncClientConfig(
            encryption_enabled=True, store=SqliteStore, store_sync_tokens=False
        )
        user_id = f"@{localpart}:{synapse.server_name}"
        client = AsyncClient(synapse.base_url, user_id, store_path=str(store), config=config)
        clients.append(client)
        response = await client.login(f"pw-{localpart}")
        assert isinstance(response, LoginResponse), response
        await client.keys_upload()
        return client

    yield make
    for client in clients:
        await client.close()


@asynccontextmanager
async def observer(synapse: Synapse) -> AsyncIterator[MatrixUser]:
    user = await synapse.register(synapse.unique_localpart("observer"))
    try:
        yield user
    finally:
        await user.close()


async def seen_keys(observer: MatrixUser, user_id: str) -> dict[str, Any]:
    return await observer.api("POST", "/keys/query", body={"device_keys": {user_id: []}})


def assert_cross_signed(answer: dict[str, Any], user_id: str, device_id: str) -> str:
    """Check the whole chain as another user sees it; return the master public key."""
    master_obj = answer["master_keys"][user_id]
    assert master_obj["usage"] == ["master"]
    master = only_key(master_obj)
    self_obj = answer["self_signing_keys"][user_id]
    assert self_obj["usage"] == ["self_signing"]
    self_signing = only_key(self_obj)
    verify(self_obj, user_id, master)
    device = answer["device_keys"][user_id][device_id]
    device_ed25519 = device["keys"][f"ed25519:{device_id}"]
    verify(device, user_id, device_ed25519, f"ed25519:{device_id}")  # its own, still valid
    verify(device, user_id, self_signing)
    return master


def kept_master(store: Path) -> str:
    data = json.loads((store / "cross-signing.json").read_text())
    key = ECC.construct(curve="ed25519", seed=unb64(data["master"]))
    return b64(key.public_key().export_key(format="raw"))


async def upload_foreign_keys(user: MatrixUser, password: str) -> str:
    """Cross-sign the account the way another client would (own keys, raw HTTP, with
    password UIA if the server asks for it); return that master public key."""
    master, self_signing, user_signing = (ECC.generate(curve="ed25519") for _ in range(3))

    def obj(usage: str, key: ECC.EccKey) -> dict[str, Any]:
        public = b64(key.public_key().export_key(format="raw"))
        return {"user_id": user.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}

    master_obj = obj("master", master)
    master_id = str(next(iter(master_obj["keys"])))
    body: dict[str, Any] = {"master_key": master_obj}
    for field, usage, key in (
        ("self_signing_key", "self_signing", self_signing),
        ("user_signing_key", "user_signing", user_signing),
    ):
        o = obj(usage, key)
        sig = b64(eddsa.new(master, "rfc8032").sign(canonical(o)))
        o["signatures"] = {user.user_id: {master_id: sig}}
        body[field] = o
    url = user.base_url + "/_matrix/client/v3/keys/device_signing/upload"
    async with user.session.post(url, json=body) as resp:
        status, answer = resp.status, await resp.json()
    if status == 401:
        body["auth"] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user.user_id},
            "password": password,
            "session": answer["session"],
        }
        await user.api("POST", "/keys/device_signing/upload", body=body)
    else:
        assert status == 200, answer
    return master_id.removeprefix("ed25519:")


async def test_signs_device_and_second_call_is_already(
    synapse: Synapse, make_bot: MakeBot, tmp_path: Path
) -> None:
    localpart = synapse.unique_localpart("bot")
    await (await synapse.register(localpart)).close()
    store = tmp_path / "store"
    bot = await make_bot(localpart, store)

    assert await ensure_cross_signed(bot, password=f"pw-{localpart}", store_path=store) == "signed"

    async with observer(synapse) as alice:
        answer = await seen_keys(alice, bot.user_id)
        master = assert_cross_signed(answer, bot.user_id, bot.device_id)
        # The master key is signed by the device that made it, too.
        device = answer["device_keys"][bot.user_id][bot.device_id]
        verify(
            answer["master_keys"][bot.user_id],
            bot.user_id,
            device["keys"][f"ed25519:{bot.device_id}"],
            f"ed25519:{bot.device_id}",
        )
        assert kept_master(store) == master
        mode = stat.S_IMODE((store / "cross-signing.json").stat().st_mode)
        assert mode == 0o600

        # Idempotent: nothing to do the second time, and the server is unchanged.
        again = await ensure_cross_signed(bot, password=f"pw-{localpart}", store_path=store)
        assert again == "already"
        assert await seen_keys(alice, bot.user_id) == answer
    assert not list(store.glob(".cross-signing.json.*"))  # no temp file left over


async def test_new_device_is_signed_with_the_same_master_key_without_password(
    synapse: Synapse, make_bot: MakeBot, tmp_path: Path
) -> None:
    localpart = synapse.unique_localpart("bot")
    await (await synapse.register(localpart)).close()
    store = tmp_path / "store"
    first = await make_bot(localpart, store / "first")
    password = f"pw-{localpart}"
    assert await ensure_cross_signed(first, password=password, store_path=store) == "signed"
    master = kept_master(store)

    # A second device (its own nio store), the kept keys reused; no password needed,
    # since only a signature is uploaded.
    second = await make_bot(localpart, store / "second")
    assert second.device_id != first.device_id
    assert await ensure_cross_signed(second, password=None, store_path=store) == "signed"
    assert await ensure_cross_signed(second, password=None, store_path=store) == "already"
    assert await ensure_cross_signed(first, password=None, store_path=store) == "already"

    async with observer(synapse) as alice:
        answer = await seen_keys(alice, first.user_id)
        assert assert_cross_signed(answer, first.user_id, second.device_id) == master
        assert assert_cross_signed(answer, first.user_id, first.device_id) == master


async def test_fresh_account_without_password(
    synapse: Synapse, make_bot: MakeBot, tmp_path: Path
) -> None:
    """Synapse (MSC3967, stable since 1.9x) takes an account's FIRST cross-signing keys
    without user-interactive auth, so no password is needed on a fresh account."""
    localpart = synapse.unique_localpart("bot")
    await (await synapse.register(localpart)).close()
    bot = await make_bot(localpart, tmp_path / "nio")

    outcome = await ensure_cross_signed(bot, password=None, store_path=tmp_path)

    async with observer(synapse) as alice:
        answer = await seen_keys(alice, bot.user_id)
    assert outcome == "signed"
    assert assert_cross_signed(answer, bot.user_id, bot.device_id) == kept_master(tmp_path)


async def test_replacing_keys_needs_the_password(
    synapse: Synapse, make_bot: MakeBot, tmp_path: Path
) -> None:
    """Keys on the server that are not ours (set up elsewhere, or our file was lost):
    replacing them needs UIA. Without a password: "no-password" and nothing uploaded;
    with a wrong one: a refusal; with the right one: replaced and signed."""
    localpart = synapse.unique_localpart("bot")
    password = f"pw-{localpart}"
    other_client = await synapse.register(localpart)
    try:
        foreign_master = await upload_foreign_keys(other_client, password)
    finally:
        await other_client.close()
    bot = await make_bot(localpart, tmp_path / "nio")

    async with observer(synapse) as alice:
        before = await seen_keys(alice, bot.user_id)
        assert only_key(before["master_keys"][bot.user_id]) == foreign_master

        assert await ensure_cross_signed(bot, password=None, store_path=tmp_path) == "no-password"
        assert await seen_keys(alice, bot.user_id) == before  # uploaded nothing
        kept = kept_master(tmp_path)  # but the new keys are kept for the next run
        assert kept != foreign_master

        with pytest.raises(CrossSigningError, match="password"):
            await ensure_cross_signed(bot, password="wrong", store_path=tmp_path)
        assert await seen_keys(alice, bot.user_id) == before

        assert await ensure_cross_signed(bot, password=password, store_path=tmp_path) == "signed"
        answer = await seen_keys(alice, bot.user_id)
        assert assert_cross_signed(answer, bot.user_id, bot.device_id) == kept
        assert await ensure_cross_signed(bot, password=None, store_path=tmp_path) == "already"


async def test_device_without_keys_on_server_is_an_error(synapse: Synapse, tmp_path: Path) -> None:
    localpart = synapse.unique_localpart("bot")
    await (await synapse.register(localpart)).close()
    config = AsyncClientConfig(encryption_enabled=True, store=SqliteStore, store_sync_tokens=False)
    client = AsyncClient(
        synapse.base_url,
        f"@{localpart}:{synapse.server_name}",
        store_path=str(tmp_path),
        config=config,
    )
    try:
        assert isinstance(await client.login(f"pw-{localpart}"), LoginResponse)
        with pytest.raises(CrossSigningError, match="no keys for device"):
            await ensure_cross_signed(client, password=f"pw-{localpart}", store_path=tmp_path)
    finally:
        await client.close()


async def test_unreadable_key_file_is_not_replaced(
    synapse: Synapse, make_bot: MakeBot, tmp_path: Path
) -> None:
    localpart = synapse.unique_localpart("bot")
    await (await synapse.register(localpart)).close()
    bot = await make_bot(localpart, tmp_path / "nio")
    (tmp_path / "cross-signing.json").write_text("{not json")
    with pytest.raises(CrossSigningError, match="not a readable"):
        await ensure_cross_signed(bot, password=f"pw-{localpart}", store_path=tmp_path)
    assert (tmp_path / "cross-signing.json").read_text() == "{not json"
