"""Styled text from a template: the core's own markup, never people's words.

A template is a literal string written by sif-bot (or a flow file) in which `code`
(what to type) and *strong* (a heading) are marked, with ``{name}`` placeholders in
``str.format`` syntax. :func:`spans` cuts the template at its marks first and only then
fills each piece with the values, so a value (a member's name, an idea title, an
answer) is always plain text, whatever characters it holds: nothing has to be guessed
back later. The result is a tuple of (style, text) pairs that adapters render.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Style = Literal["text", "code", "strong"]
Span = tuple[Style, str]

# A mark pair holds no newline and no other mark; placeholders may sit inside one.
_MARK = re.compile(r"`([^`\n]+)`|\*([^*\n]+)\*")
_FORMATTER = string.Formatter()


@functools.cache
def _pieces(template: str) -> tuple[tuple[Style, str], ...]:
    """The template cut into styled pieces, each still holding its placeholders."""
    out: list[tuple[Style, str]] = []
    position = 0
    for mark in _MARK.finditer(template):
        if mark.start() > position:
            out.append(("text", template[position : mark.start()]))
        code, strong = mark.groups()
        out.append(("code", code) if code is not None else ("strong", strong))
        position = mark.end()
    if position < len(template):
        out.append(("text", template[position:]))
    return tuple(out)


def spans(template: str, /, **values: Any) -> tuple[Span, ...]:
    """The template's styled spans with the values filled in as plain text."""
    return fill(template, values)


def fill(template: str, values: Mapping[str, Any]) -> tuple[Span, ...]:
    out: list[Span] = []
    for style, piece in _pieces(template):
        text = _FORMATTER.vformat(piece, (), values) if "{" in piece or "}" in piece else piece
        if text:
            out.append((style, text))
    return merge(out)


def marked(template: str) -> tuple[Span, ...]:
    """A literal with marks and no placeholders (a question of a flow file): braces stay."""
    return merge(_pieces(template))


def merge(items: Iterable[Span]) -> tuple[Span, ...]:
    """Adjacent spans of one style joined into one."""
    out: list[Span] = []
    for style, value in items:
        if not value:
            continue
        if out and out[-1][0] == style:
            out[-1] = (style, out[-1][1] + value)
        else:
            out.append((style, value))
    return tuple(out)


def join(separator: str, parts: Iterable[tuple[Span, ...]]) -> tuple[Span, ...]:
    """Several span sequences joined with a plain separator (like ``str.join``)."""
    out: list[Span] = []
    for i, part in enumerate(parts):
        if i and separator:
            out.append(("text", separator))
        out.extend(part)
    return merge(out)


def plain(items: Iterable[Span]) -> str:
    """The spans as one string with their marks written out (`code`, *strong*)."""
    marks = {"text": "", "code": "`", "strong": "*"}
    return "".join(f"{marks[style]}{value}{marks[style]}" for style, value in items)
