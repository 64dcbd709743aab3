"""Outbox rows keep a message's typed parts, topic and subject; rows written before
messages had parts are still delivered as they were."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from sqlalchemy import insert

from bot.messages import Actions, Button, File, Text
from store.models import OutboxRow
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_a_row_from_before_typed_parts_is_sent_as_it_was(store: Store) -> None:
    old_parts = {
        "buttons": [["Accept", "accept R-1"], ["Decline", "decline R-1"]],
        "attachment": {
            "filename": "x.csv",
            "mimetype": "text/csv",
            "content": base64.b64encode(b"a,b\n").decode("ascii"),
        },
    }
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(OutboxRow).values(
                platform="console",
                delivery="dm",
                to="bob",
                channel=None,
                text="Can you help? R-1: `accept R-1`",
                parts=old_parts,
                created_at=NOW,
                attempts=0,
            )
        )
    async with store.uow() as uow:
        (message,) = await uow.outbox.pending(["console"], 10)
    assert message.text == "Can you help? R-1: `accept R-1`"
    assert message.parts == (
        Text("Can you help? R-1: `accept R-1`"),
        Actions((Button("Accept", "accept R-1"), Button("Decline", "decline R-1"))),
        File("x.csv", b"a,b\n", "text/csv"),
    )
    assert (message.topic, message.subject) == ("message", None)
