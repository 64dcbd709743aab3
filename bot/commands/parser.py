"""Parse a line of text into a typed command, or a ParseError saying what to type
instead (SPEC §3): the first word picks the command (its English name, or an alias of
any language: `catalogue.ALIASES`), its fields read the rest. The errors are written in
the language of the person who typed the line (set by the core before it parses)."""

from __future__ import annotations

import difflib
import re
from typing import Any, NamedTuple

from bot.commands.args import Arg, Choice, ParseError, Rest
from bot.commands.catalogue import ALIAS_OF, COMMANDS, Help, Spec, resolve_alias
from bot.messages import Parts, plain, say

# -- parsing ------------------------------------------------------------------------


class _Words(NamedTuple):
    commands: int  # how many commands the catalogue had when these were read
    second: dict[str, list[str]]  # a command's first word: its second words ("" alone)
    longest: dict[str, int]  # a command's first word: the longest free text of any


_words: _Words | None = None


def _read_words() -> _Words:
    """The catalogue's command words, read again only when it has more commands (they are
    declared at import): parsing a line looks them up instead of going through them all."""
    global _words
    if _words is None or _words.commands != len(COMMANDS):
        second: dict[str, list[str]] = {}
        longest: dict[str, int] = {}
        for name, spec in COMMANDS.items():
            first, _, rest = name.partition(" ")
            second.setdefault(first, []).append(rest)
            for _, reader, _ in spec.fields:
                if isinstance(reader, Rest):
                    longest[first] = max(longest.get(first, 0), reader.max_len)
        _words = _Words(len(COMMANDS), second, longest)
    return _words


def _command_words() -> dict[str, list[str]]:
    return _read_words().second


def suggest(word: str) -> str | None:
    """The command a typo most likely meant, or None. Only a close word that starts with
    the same letter: people slip inside a word ("balanse", "acept"), and a word that merely
    resembles a command ("one" and `done`) is no typo of it. A slip in an alias of another
    language ("kontostnd") suggests the command by its English name (`balance`)."""
    word = word.lower()
    if not word:
        return None
    names = sorted({n.split(" ")[0] for n in COMMANDS})
    close = [
        name
        for name in difflib.get_close_matches(word, names, n=3, cutoff=0.7)
        if name[0] == word[0]
    ]
    if close:
        return close[0]
    near_alias = [
        alias
        for alias in difflib.get_close_matches(word, sorted(ALIAS_OF), n=3, cutoff=0.7)
        if alias[0] == word[0]
    ]
    return ALIAS_OF[near_alias[0]] if near_alias else None


# `help sif`: what sif-bot and SIF are. People ask it in their own words too; these few
# phrasings (compared folded, without the question mark) are read as `help sif`.
ABOUT_TOPICS = frozenset({"sif", "sif-bot", "sifbot", "about"})
QUESTIONS_ABOUT_SIF = frozenset(
    {
        "what is sif",
        "what's sif",
        "whats sif",
        "what is a sif",
        "what is sif-bot",
        "what is sif bot",
        "what does sif mean",
        "what does sif stand for",
        "how does sif work",
        "how does sif-bot work",
        "how does this work",
        "how does it work",
        "how does this bot work",
        "what is this",
        "what is this bot",
        "what can you do",
        "who are you",
    }
)


def _folded(text: str) -> str:
    return " ".join(text.casefold().replace("\u2019", "'").split()).rstrip("?!. ")


def is_help_topic(topic: str) -> bool:
    """Whether `help <topic>` is about something the help explains: a command (its
    name or first word, as `help expertise`) or sif-bot itself (`help sif`)."""
    folded = _folded(topic)
    if folded in ABOUT_TOPICS:
        return True
    folded = _with_command_word(folded)
    return any(name == folded or name.split()[0] == folded for name in COMMANDS)


def _with_command_word(text: str) -> str:
    """The text with its first word, when an alias, as the English command word."""
    first, space, rest = text.partition(" ")
    return resolve_alias(first) + space + rest if first else text


def longest_text(text: str) -> int:
    """The longest free text of the command this message names (0 when it names none, or
    one without a free text): the feedback of `done` may be longer than other messages."""
    words = text.split(maxsplit=1)
    return _read_words().longest.get(resolve_alias(words[0].lower()), 0) if words else 0


def parse(text: str) -> Any:
    """Parse one line into a command object; raises ParseError with a clear sentence."""
    folded = _folded(text)
    if resolve_alias(folded) == "help":  # "help?", "Help!", "Hilfe?"
        return Help()
    if folded in QUESTIONS_ABOUT_SIF:
        return Help("sif")
    tokens = [(m.group(), m.start()) for m in re.finditer(r"\S+", text)]
    if not tokens:
        raise ParseError(say("Type a command, for example `help`."))
    word = resolve_alias(tokens[0][0].lower())
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
        if sub not in subs and "" in words[word]:
            sub = ""  # the word alone is a command too (`profile`, `profile show`)
        elif sub not in subs:
            raise ParseError(
                say(
                    "`{word}` needs one of: {subs}; for example `{usage}`.",
                    word=word,
                    subs=", ".join(subs),
                    usage=COMMANDS[f"{word} {subs[0]}"].usage,
                )
            )
        if sub:
            name = f"{word} {sub}"
            rest = rest[1:]
    spec = COMMANDS[name]
    command = _bind(spec, text, rest)
    if isinstance(command, Help) and command.topic:
        # `help saldo` is `help balance`
        command = Help(_with_command_word(command.topic.strip()))
    return command


def _bind(spec: Spec, text: str, tokens: list[tuple[str, int]]) -> Any:
    values: dict[str, Any] = {}
    # Commas separate list items and follow mentions as people write them ("@ann, 1",
    # "finance, legal"): a comma ending a token, or standing alone, is not part of it.
    tokens = [(token.rstrip(","), start) for token, start in tokens if token.strip(",")]
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
                # "finance,legal" is two items, as in the profile conversation
                items += [_read(reader, item, spec) for item in tokens[i][0].split(",") if item]
                i += 1
            if required and not items:
                raise ParseError(_needs_more(spec))
            values[fname] = tuple(dict.fromkeys(items))
            continue
        if not required and not reader.looks_like(token):
            meant = reader.near(token) if isinstance(reader, Choice) else None
            if isinstance(reader, Choice) and meant is not None:
                # `request I-1 reviews`: a slip of the keyboard, not the next argument
                raise ParseError(
                    say(
                        "'{token}' is not one of {options}. Did you mean `{meant}`? ",
                        token=token[:30],
                        options=", ".join(reader.options),
                        meant=meant,
                    )
                    + _usage(spec)
                )
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
