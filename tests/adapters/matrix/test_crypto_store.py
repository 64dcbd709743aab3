"""The device's key store (`adapters.matrix.client.CryptoStore`): the rooms found
encrypted are kept across restarts (nio then never sends in plaintext there), and a sync
that found none costs no database work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nio.crypto import OlmAccount

from adapters.matrix.client import CryptoStore


def test_encrypted_rooms_are_kept_and_an_empty_sync_writes_nothing(tmp_path: Path) -> None:
    store = CryptoStore("@bot:sif.test", "DEVICE", str(tmp_path))
    store.save_account(OlmAccount())
    statements: list[str] = []
    execute = store.database.execute_sql

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args, **kwargs)

    store.database.execute_sql = counted
    store.save_encrypted_rooms(set())
    assert statements == []  # what nio asks after every sync that found no new room
    store.save_encrypted_rooms({"!secret:sif.test"})
    assert any("INSERT" in sql.upper() for sql in statements)
    reopened = CryptoStore("@bot:sif.test", "DEVICE", str(tmp_path))
    assert reopened.load_encrypted_rooms() == {"!secret:sif.test"}
