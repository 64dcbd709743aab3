"""The core's little markup, told apart from what people typed (for the adapters).

`Outbound.text` is plain text in which the core marks two things: `code` spans (what to
type: commands, conversation words, examples) and *bold* headings. Names, idea titles,
reasons, feedback and answers go into the same text unmarked, and may contain the same
characters: a member called `*bold*` or `` `code` `` must show exactly so, not formatted.

The text does not say which characters came from people, so the core's markup is told
apart by its vocabulary: a code span is markup when its first word is one the core
teaches people to type (a command, a conversation word) or when it is one of the
examples of the packaged conversations; a bold span is markup when it is one of the
core's headings. Everything else is text, and each adapter shows it literally (escaped
for HTML or neutralised for Slack mrkdwn). Markup the vocabulary does not know (say, an
example in a community's own flow file) shows with its backticks: never formatted by
accident. The other way round, someone may call themselves exactly like markup (say
`` `help` ``); then it shows as that markup, which is harmless: a markup span holds no
newline, backtick or asterisk, and adapters escape its content too.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any, Literal

from bot.commands import COMMANDS

Kind = Literal["text", "code", "bold"]
Segment = tuple[Kind, str]

CODE = re.compile(r"`([^`\n]{1,300})`")
BOLD = re.compile(r"\*([^*\n]{1,60})\*")
MARK = re.compile(r"[`*]")

# Words the core asks people to type besides the commands: the conversation's own.
CONVERSATION_WORDS = frozenset({"back", "skip", "edit", "status", "help", "cancel", "confirm"})
# The core's bold text: the groups of `help` and the labels of the Slack App Home.
HEADINGS = frozenset(
    {
        *("Your ideas", "Reviewing", "SIF", "Network", "You", "Staff", "Admin"),
        *("Balance", "held", "credit limit", "Open offers"),
    }
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@functools.cache
def _code_words() -> frozenset[str]:
    return frozenset({name.split()[0] for name in COMMANDS} | CONVERSATION_WORDS | {"sif-bot"})


@functools.cache
def _examples() -> frozenset[str]:
    """Every code span in the packaged conversations (`€5,000`, `finance:3 legal:1`, ...)."""
    from conversations.loader import load_flows

    spans: set[str] = set()
    for text in _strings(list(load_flows().values())):
        spans.update(CODE.findall(text))
    return frozenset(spans)


def is_code(content: str) -> bool:
    """Whether a code span's content is the core's markup."""
    if content != content.strip():
        return False
    first = content.split(maxsplit=1)[0].lower()
    return first in _code_words() or content in _examples()


def is_heading(content: str) -> bool:
    return content in HEADINGS


def segments(text: str) -> list[Segment]:
    """The text cut into the core's markup (`code`, `bold`, without their marks) and the
    plain text between, in order; joined back with their marks they are the text again."""
    out: list[Segment] = []
    start = position = 0
    while (mark := MARK.search(text, position)) is not None:
        at = mark.start()
        if text[at] == "`":
            found, kind, check = CODE.match(text, at), "code", is_code
        else:
            found, kind, check = BOLD.match(text, at), "bold", is_heading
        if found is None or not check(found.group(1)):
            position = at + 1
            continue
        if start < at:
            out.append(("text", text[start:at]))
        out.append(("code" if kind == "code" else "bold", found.group(1)))
        start = position = found.end()
    if start < len(text):
        out.append(("text", text[start:]))
    return out
