"""Parse a line of text into a typed command, or a ParseError saying what to type
instead (SPEC §3): the first word picks the command, its fields read the rest."""

from __future__ import annotations

import difflib
import re
from typing import Any

from bot.commands.args import Arg, ParseError
from bot.commands.catalogue import COMMANDS, Spec
from bot.messages import Parts, plain, say

# -- parsing ------------------------------------------------------------------------


def _command_words() -> dict[str, list[str]]:
    words: dict[str, list[str]] = {}
    for name in COMMANDS:
        first, _, second = name.partition(" ")
        words.setdefault(first, []).append(second)
    return words


def suggest(word: str) -> str | None:
    names = sorted({n.split(" ")[0] for n in COMMANDS})
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.7)
    return close[0] if close else None


def parse(text: str) -> Any:
    """Parse one line into a command object; raises ParseError with a clear sentence."""
    tokens = [(m.group(), m.start()) for m in re.finditer(r"\S+", text)]
    if not tokens:
        raise ParseError(say("Type a command, for example `help`."))
    word = tokens[0][0].lower()
    words = _command_words()
    if word not in words:
        close = suggest(word)
        hint = say(" Did you mean `{close}`?", close=close) if close else ()
        shown = word if len(word) <= 30 else word[:30] + "…"
        raise ParseError(
            say("I don't know the command '{shown}'.", shown=shown)
            + hint
            + say(" Type `help` for the list.")
        )
    name = word
    rest = tokens[1:]
    if words[word] != [""]:
        subs = [s for s in words[word] if s]
        sub = rest[0][0].lower() if rest else ""
        if sub not in subs:
            raise ParseError(
                say(
                    "`{word}` needs one of: {subs}; for example `{usage}`.",
                    word=word,
                    subs=", ".join(subs),
                    usage=COMMANDS[f"{word} {subs[0]}"].usage,
                )
            )
        name = f"{word} {sub}"
        rest = rest[1:]
    spec = COMMANDS[name]
    return _bind(spec, text, rest)


def _bind(spec: Spec, text: str, tokens: list[tuple[str, int]]) -> Any:
    values: dict[str, Any] = {}
    i = 0
    for fname, reader, required in spec.fields:
        if i >= len(tokens):
            if required:
                raise ParseError(_needs_more(spec))
            continue
        token, start = tokens[i]
        if reader.rest:
            values[fname] = reader.read(text[start:].strip())
            i = len(tokens)
            continue
        if reader.many:
            items = []
            while i < len(tokens):
                items.append(_read(reader, tokens[i][0], spec))
                i += 1
            if required and not items:
                raise ParseError(_needs_more(spec))
            values[fname] = tuple(dict.fromkeys(items))
            continue
        if not required and not reader.looks_like(token):
            continue
        values[fname] = _read(reader, token, spec)
        i += 1
    if i < len(tokens):
        extra = " ".join(t for t, _ in tokens[i:])
        extra = extra if len(extra) <= 30 else extra[:30] + "…"
        raise ParseError(
            say("I did not expect '{extra}' after `{name}`. ", extra=extra, name=spec.name)
            + _usage(spec)
        )
    return spec.cls(**values)


def _usage(spec: Spec) -> Parts:
    return say("Usage: `{usage}`.", usage=spec.usage)


def _needs_more(spec: Spec) -> Parts:
    return say("`{name}` needs more: ", name=spec.name) + _usage(spec)


def _read(reader: Arg, token: str, spec: Spec) -> Any:
    try:
        return reader.read(token)
    except ParseError as exc:
        raise ParseError(exc.parts + plain(" ") + _usage(spec)) from None
