"""The neutral messages that cross between adapters and the core.

An adapter turns a platform payload into one :class:`Inbound`; the core answers with
:class:`Outbound` messages made of typed parts (text, strong, code, table, actions,
file) and a machine-readable topic, which each adapter renders its own way. Text is
never the protocol: the core says what is code or a heading, people's words are always
plain :class:`Text`, and tools read `topic` and `subject`, not the wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from bot.i18n import _
from bot.i18n import current as current_language
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
    # the person's locale as their platform knows it ("fr-FR"), when it says
    locale: str | None = None


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
    marks; every value is filled in as plain text, whatever characters it holds. The
    template is translated into the language being written in first."""
    return from_spans(_spans.fill(_(template), values))


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
    # the platform's id of the message this one answers (a public answer in a channel),
    # for platforms that show replies to a message (Matrix group rooms)
    in_reply_to: str | None = None
    # the language it is written in: the one in effect when it was made (the recipient's
    # for a notice); the platform's own words (hints, buttons) follow it when it is sent
    language: str = field(default_factory=current_language, compare=False)
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


# -- splitting ------------------------------------------------------------------------

# Where a message may be split, from the least to the most welcome place.
_GLUED, _WORD, _LINE, _PARAGRAPH = 0, 1, 2, 3
# Whitespace a line may break at: every Unicode space but the non-breaking ones.
_BREAKABLE = re.compile(r"[^\S\u00a0\u2007\u202f]+")


class _Piece(NamedTuple):
    """A word, a run of whitespace, a `code` or *strong* span or a table; `level` > 0
    marks a place to split (whitespace, or nothing beside a table), dropped there."""

    part: str | Code | Strong | Table | None  # str: plain text; None: no text
    size: int  # its length in the plain rendering
    level: int = _GLUED
    origin: int = -1  # the part a piece of text comes from, to join it back


def split_parts(parts: Parts, max_chars: int) -> list[Parts]:
    """A message's parts as one message or several, in order, each at most `max_chars`
    characters of plain rendering (:func:`render_plain`); a message that fits is
    returned unchanged, alone.

    A split falls between paragraphs (a blank line) if the message has one within the
    limit, else between lines, else between words; the whitespace at a split is dropped,
    so the parts joined back with it are the message again. It never falls inside a
    word, a `code` or *strong* span or a table row, and each part is rendered on its
    own, so no escape an adapter writes is cut either. A table too long for what is
    left of a part fills it with whole rows and goes on in the next part, each part of
    it a whole table with the headers; a table that fits in a part of its own is never
    split. Actions (buttons) and files go with the last part.

    Only as a last resort (nothing else within the limit) a split falls between a word
    and a span written against it, a word longer than `max_chars` is cut, a span longer
    than the limit goes on in more spans of its kind, and a table whose headers and one
    row do not fit is written out as plain text. Pure: the same parts are always split
    the same way. `max_chars` is at least 3 (a one-character span).
    """
    if max_chars < 3:
        raise ValueError(f"max_chars must be at least 3, not {max_chars}")
    body = [p for p in parts if not isinstance(p, Actions | File)]
    if len(render_plain(body)) <= max_chars:
        return [tuple(parts)]
    pieces: list[_Piece] = []
    for origin, part in enumerate(body):
        if isinstance(part, Table):
            _add(pieces, _Piece(None, 0, _LINE))
            _add(pieces, _Piece(part, len(render_table(part))))
            _add(pieces, _Piece(None, 0, _LINE))
        elif isinstance(part, Text):
            _add_text(pieces, part.text, origin, max_chars)
        elif isinstance(part, Code | Strong):
            for span in _cut(part.text, max_chars - 2):
                _add(pieces, _Piece(type(part)(span), len(span) + 2))
    # Nothing but whitespace says nothing: one empty message (with its buttons or file).
    chunks = [_rebuild(c) for c in _fill(pieces, max_chars)] or [()]
    chunks[-1] += tuple(p for p in parts if isinstance(p, Actions | File))
    return chunks


def _add(pieces: list[_Piece], piece: _Piece) -> None:
    """Append a piece; two places to split in a row become one."""
    last = pieces[-1] if pieces else None
    if last is None or not (last.level and piece.level):
        pieces.append(piece)
        return
    texts = [p.part for p in (last, piece) if isinstance(p.part, str)]
    origin = last.origin if last.part is not None else piece.origin
    pieces[-1] = _Piece(
        "".join(texts) if texts else None,
        last.size + piece.size,
        max(last.level, piece.level),
        origin,
    )


def _add_text(pieces: list[_Piece], text: str, origin: int, max_chars: int) -> None:
    at = 0
    for space in (*_BREAKABLE.finditer(text), None):
        end = space.start() if space is not None else len(text)
        if end > at:  # a word (cut only when it alone is longer than a part)
            for word in _cut(text[at:end], max_chars, at_spaces=False):
                _add(pieces, _Piece(word, len(word), _GLUED, origin))
        if space is None:
            break
        gap = space.group()
        newlines = gap.count("\n")
        level = _PARAGRAPH if newlines >= 2 else _LINE if newlines else _WORD
        _add(pieces, _Piece(gap, len(gap), level, origin))
        at = space.end()


def _cut(text: str, size: int, at_spaces: bool = True) -> list[str]:
    """Text in pieces of at most `size` characters (one piece when it fits), cut after a
    space when there is one (spans), else hard."""
    if len(text) <= size:
        return [text]
    out: list[str] = []
    while len(text) > size:
        cut = size
        if at_spaces:
            space = max(text.rfind(" ", 0, size), text.rfind("\n", 0, size))
            cut = space + 1 if space >= 0 else size
        out.append(text[:cut])
        text = text[cut:]
    if text:
        out.append(text)
    return out


def _fill(pieces: list[_Piece], max_chars: int) -> list[list[_Piece]]:
    """Greedy: each part takes what fits and ends at the best place to split in it."""
    chunks: list[list[_Piece]] = []
    start = 0
    while start < len(pieces):
        if pieces[start].level:  # a part never starts with the whitespace of a split
            start += 1
            continue
        total, end = 0, start
        while end < len(pieces):
            piece = pieces[end]
            if total + piece.size <= max_chars:
                total += piece.size
                end += 1
                continue
            if isinstance(piece.part, Table) and piece.size > max_chars:
                rows = _table_head(piece.part, max_chars - total)
                if rows is None and end == start:
                    rows = _table_as_text(piece.part, max_chars)
                if rows is not None:
                    pieces[end : end + 1] = rows
                    continue
            break
        if end == len(pieces):
            chunks.append(pieces[start:])
            break
        places = [k for k in range(start + 1, end + 1) if pieces[k].level]
        if places:
            best = max(places, key=lambda k: (pieces[k].level, k))
            chunks.append(pieces[start:best])
            start = best + 1
        else:  # glued together up to the limit: split where the limit is
            end = max(end, start + 1)
            chunks.append(pieces[start:end])
            start = end
    return chunks


def _table_head(table: Table, room: int) -> list[_Piece] | None:
    """As many first rows as fit in `room` as a table, then the rest as another (None
    when not even one row fits). Measured with the widest cells so far, so never over."""
    widths = [len(h) for h in table.headers]
    gaps = 2 * max(len(widths) - 1, 0)
    taken = 0
    for row in table.rows:
        wider = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        lines = taken + 3  # headers, rule, rows
        if lines * (sum(wider) + gaps) + lines - 1 > room:
            break
        widths, taken = wider, taken + 1
    if taken == 0:
        return None
    head = Table(table.headers, table.rows[:taken])
    out = [_Piece(head, len(render_table(head)))]
    if taken < len(table.rows):
        rest = Table(table.headers, table.rows[taken:])
        out += [_Piece(None, 0, _PARAGRAPH), _Piece(rest, len(render_table(rest)))]
    return out


def _table_as_text(table: Table, max_chars: int) -> list[_Piece]:
    """The last resort for a table too wide for a part: its first row as plain text."""
    first = Table(table.headers, table.rows[:1])
    out: list[_Piece] = []
    _add_text(out, render_table(first), -1, max_chars)
    if len(table.rows) > 1:
        rest = Table(table.headers, table.rows[1:])
        _add(out, _Piece(None, 0, _PARAGRAPH))
        out.append(_Piece(rest, len(render_table(rest))))
    return out


def _rebuild(chunk: list[_Piece]) -> Parts:
    """The pieces of a part as parts again, the text of one original part joined."""
    out: list[Part] = []
    texts: list[str] = []
    origin: int | None = None
    for piece in chunk:
        if isinstance(piece.part, str) and (not texts or piece.origin == origin):
            texts.append(piece.part)
            origin = piece.origin
            continue
        if texts:
            out.append(Text("".join(texts)))
            texts, origin = [], None
        if isinstance(piece.part, str):
            texts, origin = [piece.part], piece.origin
        elif piece.part is not None:
            out.append(piece.part)
    if texts:
        out.append(Text("".join(texts)))
    return tuple(out)
