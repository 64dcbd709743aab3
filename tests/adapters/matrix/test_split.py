"""A message too large for one Matrix event becomes several, each under the size the
homeserver takes, whatever characters it holds (`adapters.matrix.translate.contents`).
Delivery of such messages to a real Synapse is in test_matrix_bot.py."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.matrix import translate
from bot.messages import Delivery, Outbound, Table, Text

SPACE = re.compile(r"\s")


def channel(*parts: Text | Table) -> Outbound:
    return Outbound("matrix", Delivery.CHANNEL, "!r:x", "note", tuple(parts))


def size(content: dict[str, object]) -> int:
    return translate._size(content)


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_text_too_large_for_one_event_is_split_under_the_limit(fragment: str) -> None:
    text = fragment * (70_000 // len(fragment) + 1)
    contents = translate.contents(channel(Text(text)))
    assert all(size(c) <= translate.MAX_CONTENT_BYTES for c in contents)
    # nothing lost or added: a split drops at most the whitespace it falls on
    assert SPACE.sub("", "".join(c["body"] for c in contents)) == SPACE.sub("", text)


def test_a_message_that_fits_is_one_event_as_before() -> None:
    message = channel(Text("hello & <welcome>"))
    assert translate.contents(message) == [translate.content(message)]


def test_even_a_table_of_empty_cells_is_split_under_the_limit() -> None:
    table = Table(("",), tuple(("",) for _ in range(20_000)))
    contents = translate.contents(channel(table))
    assert len(contents) > 1
    assert all(size(c) <= translate.MAX_CONTENT_BYTES for c in contents)
    assert sum(c["formatted_body"].count("<tr><td></td></tr>") for c in contents) == 20_000
