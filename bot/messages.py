"""The neutral messages that cross between adapters and the core.

An adapter turns a platform payload into one :class:`Inbound`; the core answers
with :class:`Outbound` messages that every adapter knows how to render. Neither
carries platform objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Delivery(StrEnum):
    """How an outbound message reaches people."""

    DM = "dm"  # a direct message to one person
    PRIVATE = "private"  # only the caller sees it where they asked (ephemeral on Slack)
    CHANNEL = "channel"  # a post in a channel or room


@dataclass(frozen=True)
class Inbound:
    """One thing a person said or did, as the core sees it."""

    platform: str  # "slack", "matrix", "console"
    community_key: str  # which factory: "slack:T01", "matrix:example.org", "console"
    user: str  # the platform identity: "T01:U02", "@ann:example.org", "ann"
    text: str
    display_name: str = ""
    channel: str | None = None  # None for a direct conversation with the bot
    event_id: str | None = None  # the platform's id for this event (idempotency)
    action: str | None = None  # a button or reaction ("accept R-7"), when not typed text
    # True when the person clearly addressed a command (Slack `/sif`, Matrix `!sif`), so
    # the text is never taken as an answer in a conversation
    explicit: bool = False


@dataclass(frozen=True)
class Table:
    """A table part, rendered as Block Kit, HTML or aligned text by each adapter."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Button:
    """An action a person can take with one click (or reaction); `action` is its command."""

    label: str
    action: str


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (an export, a chart)."""

    filename: str
    content: bytes
    mimetype: str = "text/csv"


@dataclass(frozen=True)
class Outbound:
    """One message from the core to people.

    `text` is always a complete plain-text rendering; `table` and `buttons` are
    optional richer parts that adapters may show instead.
    """

    platform: str
    delivery: Delivery
    to: str  # platform identity (DM, PRIVATE) or channel id (CHANNEL, PRIVATE in a channel)
    text: str
    channel: str | None = None  # for PRIVATE: where the caller asked
    table: Table | None = None
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    outbox_id: int | None = None  # set when the message was stored in the outbox
    attachment: Attachment | None = None
    # until when this process holds the stored message for sending (see bot.app.outbox)
    held_until: datetime | None = field(default=None, compare=False)


def render_table(table: Table) -> str:
    """Aligned plain text for a table (every adapter's fallback)."""
    widths = [
        max(len(r[i]) for r in (table.headers, *table.rows)) for i in range(len(table.headers))
    ]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    lines = [fmt(table.headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in table.rows]
    return "\n".join(lines)
