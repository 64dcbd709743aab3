"""The neutral messages that cross between adapters and the core.

An adapter turns a platform payload into one :class:`Inbound`; the core answers with
:class:`Outbound` messages made of typed parts (text, strong, code, table, actions,
file) and a machine-readable topic, which each adapter renders its own way. Text is
never the protocol: the core says what is code or a heading, people's words are always
plain :class:`Text`, and tools read `topic` and `subject`, not the wording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from conversations import spans as _spans


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


# -- parts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Plain text: shown exactly as it is (people's words always are)."""

    text: str


@dataclass(frozen=True)
class Strong:
    """A heading or label the core emphasises."""

    text: str


@dataclass(frozen=True)
class Code:
    """Something to type: a command, a conversation word, an example."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table, rendered as Block Kit, HTML or aligned text by each adapter."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Button:
    """An action a person can take with one click (or reaction); `action` is its command."""

    label: str
    action: str


@dataclass(frozen=True)
class Actions:
    """The buttons of a message."""

    buttons: tuple[Button, ...]


@dataclass(frozen=True)
class File:
    """A file sent with a message (an export, a chart)."""

    filename: str
    content: bytes
    mimetype: str = "text/csv"


Part = Text | Strong | Code | Table | Actions | File
Parts = tuple[Part, ...]
_INLINE: dict[str, type[Text | Code | Strong]] = {"text": Text, "code": Code, "strong": Strong}
_MARKS: dict[type, str] = {Text: "", Code: "`", Strong: "*"}


def say(template: str, /, **values: Any) -> Parts:
    """Parts from one of the core's templates: `code` and *strong* are the template's own
    marks; every value is filled in as plain text, whatever characters it holds."""
    return from_spans(_spans.fill(template, values))


def from_spans(items: Iterable[_spans.Span]) -> Parts:
    """Parts from the conversation engine's styled spans."""
    return tuple(_INLINE[style](value) for style, value in items)


def plain(text: str) -> Parts:
    """A string (people's words, or text with no marks) as one plain part."""
    return (Text(text),) if text else ()


def join(separator: str, items: Iterable[Parts]) -> Parts:
    """Several parts joined with a plain separator, like ``str.join``."""
    out: list[Part] = []
    for i, item in enumerate(items):
        if i and separator:
            out.append(Text(separator))
        out.extend(item)
    return tuple(out)


Body = str | Parts  # what the core hands to reply(), notices and refusals


def as_parts(body: Body) -> Parts:
    return plain(body) if isinstance(body, str) else body


def compose(body: Body, buttons: tuple[Button, ...] = ()) -> Parts:
    """A message's parts: its body, then its buttons when it has any."""
    return as_parts(body) + ((Actions(buttons),) if buttons else ())


def render_plain(parts: Iterable[Part]) -> str:
    """Every part as plain text: marks written out (`code`, *strong*), tables aligned;
    actions and files are not text."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, Table):
            out.append(render_table(part))
        elif isinstance(part, Text | Code | Strong):
            mark = _MARKS[type(part)]
            out.append(f"{mark}{part.text}{mark}")
    return "".join(out)


@dataclass(frozen=True)
class Outbound:
    """One message from the core to people: typed parts and what it is about.

    `topic` names the kind of message ("offer", "accepted", "escalated", ...) and
    `subject` the request or idea it concerns ("R-7"), for tools and tests; `text` is
    the complete plain rendering every adapter can fall back on.
    """

    platform: str
    delivery: Delivery
    to: str  # platform identity (DM, PRIVATE) or channel id (CHANNEL, PRIVATE in a channel)
    topic: str
    parts: Parts
    channel: str | None = None  # for PRIVATE: where the caller asked
    subject: str | None = None  # the R-n or I-n the message is about, if any
    outbox_id: int | None = None  # set when the message was stored in the outbox
    # until when this process holds the stored message for sending (see bot.app.outbox)
    held_until: datetime | None = field(default=None, compare=False)
    # sends started so far (this one included) and when it was stored, for giving up
    attempts: int = field(default=1, compare=False)
    created_at: datetime | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return render_plain(self.parts)

    @property
    def table(self) -> Table | None:
        return next((p for p in self.parts if isinstance(p, Table)), None)

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(b for p in self.parts if isinstance(p, Actions) for b in p.buttons)

    @property
    def file(self) -> File | None:
        return next((p for p in self.parts if isinstance(p, File)), None)


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
