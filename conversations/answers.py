"""Reading one answer: what a question accepts, and how a line of text becomes its answer.

For each kind of question (text, choice, multi, amount, number, tags, tag levels, yes/no)
this module parses what a person typed into a normalized, JSON-serializable value or
refuses it with a one-sentence reason (:func:`parse_answer`), checks a stored value
(:func:`validate`) and shows a value as a person reads it (:func:`format_answer`). It
knows nothing of flows or of where a conversation is: that is :mod:`conversations.engine`.
Reasons are styled spans (:mod:`conversations.spans`): what the person typed is quoted
back as plain text, never read as markup.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from conversations import spans
from conversations.amounts import (
    AMOUNT_HELP,
    DONT_KNOW,
    NotAnAmount,
    format_amount,
    is_amount,
    read_amount,
)
from conversations.i18n import gettext, number
from conversations.spans import Span

# Longer input is refused before it is even cleaned: no answer in any flow is this long.
MAX_INPUT = 100_000
# difflib is quadratic in the length of what it compares, so only short tokens are fuzzed.
FUZZY_MAX = 60
FUZZY_CUTOFF = 0.75
# Caps on non-text answers, checked before parsing so a huge paste costs nothing.
AMOUNT_MAX_CHARS = 200
NUMBER_MAX_CHARS = 40
YESNO_MAX_CHARS = 20
TAGS_MAX_CHARS = 2000
MAX_ITEMS = 50
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # the shape of a tag, here and in the core

T = TypeVar("T")


class Kind(StrEnum):
    """What sort of answer a question takes."""

    TEXT = "text"
    CHOICE = "choice"
    MULTI = "multi"
    AMOUNT = "amount"
    NUMBER = "number"
    TAGS = "tags"
    TAG_LEVELS = "tag_levels"
    YESNO = "yesno"


@dataclass(frozen=True)
class Question:
    """One question of a flow and the rules its answer must follow."""

    id: str
    prompt: str
    help: str = ""
    kind: Kind = Kind.TEXT
    optional: bool = False
    min_len: int = 1  # TEXT
    max_len: int = 1000  # TEXT, and the free words (note) after a CHOICE/MULTI answer
    choices: tuple[str, ...] = ()  # CHOICE / MULTI
    allow_note: bool = False  # CHOICE / MULTI: free words may follow the choices
    minimum: float | None = None  # NUMBER
    maximum: float | None = None  # NUMBER
    summary_label: str = ""  # label in the final summary (default: id)
    integer: bool = False  # NUMBER: only whole numbers (e.g. a count of reviews)

    @property
    def label(self) -> str:
        return self.summary_label or self.id


@dataclass(frozen=True)
class Context:
    """What the engine needs to know about the community."""

    tags: tuple[str, ...] = ()  # the community's expertise tags (for TAGS / TAG_LEVELS)


@dataclass(frozen=True)
class Parsed:
    """An answer read from text: a normalized value, or the one-sentence reason it was refused."""

    value: Any = None
    reason: tuple[Span, ...] = ()  # empty when the answer is accepted

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def error(self) -> str:
        """The reason as plain text with its marks written out ('' when accepted)."""
        return spans.plain(self.reason)


def _refuse(template: str, **values: Any) -> Parsed:
    """A refusal whose reason is the template (translated by the caller, with `gettext`)
    with the values filled in as plain text."""
    return Parsed(reason=spans.spans(template, **values))


# -- reading answers -------------------------------------------------------------------

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Cc except tab and newline
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean(text: str) -> str:
    """Strip the text and remove what must never be stored: control characters (other than
    newline and tab) and lone surrogates, which a database cannot encode."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_CHARS.sub("", text)
    text = _SURROGATES.sub("", text)
    return unicodedata.normalize("NFC", text).strip()


def parse_answer(question: Question, text: str, context: Context) -> Parsed:
    """Read an answer to one question from the text a person typed."""
    if len(text) > MAX_INPUT:
        return _too_long(question, len(text))
    cleaned = clean(text)
    if not cleaned:
        if question.optional:
            return _refuse(gettext("Please type an answer, or `skip` to leave this one out."))
        return _refuse(gettext("Please type an answer; this question needs one."))
    return _PARSERS[question.kind](question, cleaned, context)


def validate(question: Question, value: Any, context: Context) -> str | None:
    """Check a stored (normalized) answer: None when valid, otherwise the reason."""
    try:
        ok = _VALIDATORS[question.kind](question, value, context)
    except (TypeError, ValueError, KeyError, AttributeError):
        ok = False
    return None if ok else f"not a valid answer to {question.id}"


def format_answer(question: Question, value: Any) -> str:
    """A normalized answer as a person reads it, in the language being written in: the
    labels of choices translated, their words as given (plain text, never markup)."""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if question.kind is Kind.AMOUNT and isinstance(value, dict):
        return format_amount(value)
    if question.kind is Kind.TAG_LEVELS and isinstance(value, dict):
        return ", ".join(f"{tag}:{level}" for tag, level in value.items())
    if isinstance(value, dict) and ("choice" in value or "choices" in value):
        chosen = value.get("choices", [value.get("choice", "")])
        items = chosen if isinstance(chosen, list) else [chosen]
        text = ", ".join(choice_label(c) for c in items)
        note = value.get("note") or ""
        return f"{text} — {note}" if note else text
    is_choice = question.kind in (Kind.CHOICE, Kind.MULTI)
    if isinstance(value, list):
        return ", ".join(choice_label(v) if is_choice else str(v) for v in value)
    return choice_label(value) if is_choice else str(value)


def chosen(value: Any) -> list[str]:
    """The chosen items of a multiple-choice answer, however it was stored (a dict with
    its choices and note, a list, or one item)."""
    if isinstance(value, dict):
        return [str(v) for v in value.get("choices", [])]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def choice_label(choice: Any) -> str:
    """A choice as shown: its label in the language being written in (a choice is stored
    as the flow's English word)."""
    text = str(choice)
    return gettext(text) if text else text


def _too_long(question: Question, length: int) -> Parsed:
    if question.kind is Kind.TEXT:
        template = gettext("That is too long ({length} characters; at most {most}).")
    else:
        template = gettext("That is far too long for this question ({length} characters).")
    return _refuse(template, length=length, most=question.max_len)


def match_key(text: str) -> str:
    """A loose form for comparing words: case, apostrophes and punctuation ignored."""
    folded = text.casefold().replace("'", "").replace("’", "").replace("`", "")
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def quote(text: str, limit: int = 30) -> str:
    """User text made safe to quote inside one sentence (as a value, never a template)."""
    flat = " ".join(text.split())
    return f"'{flat[:limit]}…'" if len(flat) > limit else f"'{flat}'"


def pick(
    token: str,
    numbered: Sequence[T],
    names: Mapping[str, T],
    fold: Callable[[str], str],
    cutoff: float = FUZZY_CUTOFF,
) -> T | None:
    """What a typed token means: its 1-based number in `numbered`, or by `fold(token)` one
    of the `names` (already folded), a unique prefix of one, or a close spelling."""
    if not token or len(token) > FUZZY_MAX:
        return None
    if re.fullmatch(r"[0-9]{1,3}", token):
        n = int(token)
        return numbered[n - 1] if 1 <= n <= len(numbered) else None
    key = fold(token)
    if not key:
        return None
    if key in names:
        return names[key]
    prefixed: list[T] = []
    for name, meant in names.items():
        if name.startswith(key) and meant not in prefixed:
            prefixed.append(meant)
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=cutoff)
    return names[close[0]] if close else None


def _resolve(token: str, options: Sequence[str]) -> str | None:
    """The option a token means: its number, the word (English, or its label in the
    language being written in), a unique prefix or a close spelling."""
    names = {match_key(o): o for o in options}
    for option in options:
        names.setdefault(match_key(choice_label(option)), option)
    names.pop("", None)
    return pick(token.strip(), options, names, match_key)


def numbered(choices: Sequence[str]) -> str:
    """The choices with their numbers, as a person picks them: '1. idea, 2. pilot' (their
    labels in the language being written in)."""
    return ", ".join(f"{i}. {choice_label(c)}" for i, c in enumerate(choices, 1))


def _wrong_choice(question: Question, item: str) -> Parsed:
    if re.fullmatch(r"[0-9]{1,3}", item.strip()):
        return _refuse(
            gettext("There is no choice {n}; pick a number from 1 to {count}: {choices}."),
            n=item.strip(),
            count=len(question.choices),
            choices=numbered(question.choices),
        )
    if question.allow_note:
        template = gettext(
            "{item} is not one of the choices ({choices}); add your own words after a dash."
        )
    else:
        template = gettext("{item} is not one of the choices ({choices}).")
    return _refuse(template, item=quote(item), choices=numbered(question.choices))


_CHOICE_NOTE_SEP = re.compile(r"\s*,\s*|\s+-{1,2}\s+|\s*[–—:]\s*")
_MULTI_NOTE_SEP = re.compile(r"\s+-{1,2}\s+|\s*[–—:]\s*")
# "sales and grants", and the same with the Dutch, French and German "and"
_JOINING_WORDS = ("and", "en", "et", "und")
_ITEM_SEP = re.compile(r"\s*(?:[,;/&+]|\b(?:and|en|et|und)\b)\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\x00([0-9]+)\x00")


def _split_note(text: str, separator: re.Pattern[str]) -> tuple[str, str] | None:
    match = separator.search(text)
    if match is None:
        return None
    return text[: match.start()].strip(), text[match.end() :].strip()


def _with_note(question: Question, value: dict[str, Any], note: str) -> Parsed:
    """A CHOICE/MULTI answer with its note, unless the note is too long."""
    if len(note) > question.max_len:
        return _refuse(
            gettext("Your note is too long ({length} characters; at most {most})."),
            length=len(note),
            most=question.max_len,
        )
    return Parsed({**value, "note": note})


def _parse_text(question: Question, text: str, context: Context) -> Parsed:
    if len(text) < question.min_len:
        return _refuse(
            gettext("That is too short ({length} characters; at least {least})."),
            length=len(text),
            least=question.min_len,
        )
    if len(text) > question.max_len:
        return _too_long(question, len(text))
    return Parsed(text)


def _parse_choice(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > question.max_len + FUZZY_MAX + 10:
        return _too_long(question, len(text))
    chosen = _resolve(text, question.choices)
    note = ""
    if chosen is None and question.allow_note:
        split = _split_note(text, _CHOICE_NOTE_SEP)
        if split is not None:
            chosen = _resolve(split[0], question.choices)
            note = split[1]
    if chosen is None:
        split = _split_note(text, _CHOICE_NOTE_SEP) if question.allow_note else None
        return _wrong_choice(question, split[0] if split else text)
    if not question.allow_note:
        return Parsed(chosen)
    return _with_note(question, {"choice": chosen}, note)


def _parse_multi(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > question.max_len + 40 * len(question.choices) + 100:
        return _too_long(question, len(text))
    head, note = text, ""
    if question.allow_note:
        split = _split_note(text, _MULTI_NOTE_SEP)
        if split is not None:
            head, note = split
    # Choices that contain a separator ("research and development") are swapped for a
    # placeholder first so the split below cannot cut them in two. NUL is safe as a marker:
    # clean() removed every control character from the input.
    # Their translated labels too ("onderzoek en ontwikkeling").
    named = list(enumerate(question.choices))
    named += [(i, choice_label(choice)) for i, choice in enumerate(question.choices)]
    for i, choice in sorted(named, key=lambda ic: -len(ic[1])):
        if _ITEM_SEP.search(choice):
            head = re.sub(re.escape(choice), f"\x00{i}\x00", head, flags=re.IGNORECASE)
    items = [item for item in _ITEM_SEP.split(head) if item.strip()]
    if len(items) > MAX_ITEMS:
        many = gettext("That is too many choices (at most {most}).")
        return _refuse(many, most=len(question.choices))
    chosen: list[str] = []
    for item in items:
        resolved = _resolve_item(question, item.strip())
        if resolved is None:
            return _wrong_choice(question, _PLACEHOLDER.sub("", item))
        chosen.extend(c for c in resolved if c not in chosen)
    if not chosen:
        return _refuse(
            gettext("Please choose at least one of: {choices}."),
            choices=numbered(question.choices),
        )
    if not question.allow_note:
        return Parsed(chosen)
    return _with_note(question, {"choices": chosen}, note)


def _resolve_item(question: Question, item: str) -> list[str] | None:
    """One comma-separated piece of a MULTI answer: a choice, or several numbers or words
    separated by spaces ("1 3", "sales grants")."""
    placeholder = _PLACEHOLDER.fullmatch(item)
    if placeholder:
        return [question.choices[int(placeholder.group(1))]]
    whole = _resolve(item, question.choices)
    if whole is not None:
        return [whole]
    words = item.split()
    if 1 < len(words) <= MAX_ITEMS:
        each = [_resolve(w, question.choices) for w in words]
        if all(c is not None for c in each):
            return [c for c in each if c is not None]
    return None


def _parse_number(question: Question, text: str, context: Context) -> Parsed:
    compact = text.replace(" ", "")
    match = (
        re.fullmatch(r"([+-]?[0-9]{1,15})(?:[.,]([0-9]{1,9}))?", compact)
        if len(text) <= NUMBER_MAX_CHARS
        else None
    )
    if match is None or (question.integer and match.group(2) and int(match.group(2)) != 0):
        return _number_rule(question)
    number = float(f"{match.group(1)}.{match.group(2) or '0'}")
    value: int | float = int(number) if number.is_integer() else number
    if not _number_ok(question, value):
        return _number_rule(question)
    return Parsed(value)


def _number_ok(question: Question, value: float) -> bool:
    if question.minimum is not None and value < question.minimum:
        return False
    return question.maximum is None or value <= question.maximum


def _fmt_bound(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _number_rule(question: Question) -> Parsed:
    lo, hi = question.minimum, question.maximum
    if question.integer:
        if lo is not None and hi is not None:
            template = gettext("The answer must be a whole number between {lo} and {hi}.")
        elif lo is not None:
            template = gettext("The answer must be a whole number of at least {lo}.")
        elif hi is not None:
            template = gettext("The answer must be a whole number of at most {hi}.")
        else:
            template = gettext("The answer must be a whole number.")
    elif lo is not None and hi is not None:
        template = gettext("The answer must be a number between {lo} and {hi}.")
    elif lo is not None:
        template = gettext("The answer must be a number of at least {lo}.")
    elif hi is not None:
        template = gettext("The answer must be a number of at most {hi}.")
    else:
        template = gettext("The answer must be a number.")
    bounds = {name: _fmt_bound(v) for name, v in (("lo", lo), ("hi", hi)) if v is not None}
    return _refuse(template, **bounds)


_YES = frozenset({"yes", "y", "ja", "j", "oui"})
_NO = frozenset({"no", "n", "nee", "non", "nein"})


def _parse_yesno(question: Question, text: str, context: Context) -> Parsed:
    word = match_key(text) if len(text) <= YESNO_MAX_CHARS else ""
    if word in _YES:
        return Parsed(True)
    if word in _NO:
        return Parsed(False)
    return _refuse(gettext("Please answer yes or no."))


def _resolve_tag(token: str, tags: Sequence[str]) -> str | None:
    tag = token.strip().lstrip("#").casefold()
    if not tags:
        # A community without tags yet: accept anything shaped like a tag rather than
        # leaving a required question impossible to answer.
        return tag if TAG_PATTERN.fullmatch(tag) else None
    if tag in tags:
        return tag
    if len(tag) > FUZZY_MAX:
        return None
    if len(tag) >= 3:
        prefixed = [t for t in tags if t.startswith(tag)]
        if len(prefixed) == 1:
            return prefixed[0]
    close = difflib.get_close_matches(tag, list(tags), n=1, cutoff=FUZZY_CUTOFF)
    return close[0] if close else None


def _unknown_tag(token: str, tags: Sequence[str]) -> Parsed:
    if not tags:
        return _refuse(
            gettext("{token} is not a tag; tags look like business-model or finance."),
            token=quote(token),
        )
    if len(tags) > 40:
        return _refuse(
            gettext("{token} is not one of this community's tags: {shown} and {more} more."),
            token=quote(token),
            shown=", ".join(tags[:40]),
            more=len(tags) - 40,
        )
    return _refuse(
        gettext("{token} is not one of this community's tags: {shown}."),
        token=quote(token),
        shown=", ".join(tags),
    )


def _tag_tokens(text: str, tags: Sequence[str]) -> list[str] | None:
    """The tokens of a TAGS / TAG_LEVELS answer, or None when there are too many."""
    if len(text) > TAGS_MAX_CHARS:
        return None
    tokens = [t for t in re.split(r"[\s,;/]+", text) if t and t not in ("&", "+")]
    # "finance and legal": "and" (en, et, und) is a joining word unless the community
    # really has that tag.
    tokens = [t for t in tokens if t.casefold() not in _JOINING_WORDS or t.casefold() in tags]
    return tokens if len(tokens) <= MAX_ITEMS else None


def _parse_tags(question: Question, text: str, context: Context) -> Parsed:
    """A TAGS answer (a list of tags) or a TAG_LEVELS one (tag -> level 1-3, like finance:3)."""
    tags = _normalized_tags(context)
    leveled = question.kind is Kind.TAG_LEVELS
    tokens = _tag_tokens(re.sub(r"\s*[:=]\s*", ":", text) if leveled else text, tags)
    if tokens is None:
        return _refuse(gettext("That is too many tags (at most {most})."), most=MAX_ITEMS)
    levels: dict[str, int] = {}  # in the order first named
    for token in tokens:
        name, _, level = token.partition(":") if leveled else (token, "", "")
        tag = _resolve_tag(name, tags)
        if tag is None:
            return _unknown_tag(name, tags)
        if level and level not in ("1", "2", "3"):
            level_rule = gettext("The level of {tag} must be 1, 2 or 3 (like {tag}:3).")
            return _refuse(level_rule, tag=tag)
        levels[tag] = int(level) if level else 2  # a tag given twice keeps its last level
    if not levels:
        if leveled:
            return _refuse(gettext("Please name at least one tag, like finance:3."))
        return _refuse(gettext("Please name at least one tag."))
    return Parsed(levels if leveled else list(levels))


def _normalized_tags(context: Context) -> tuple[str, ...]:
    return tuple(t.casefold() for t in context.tags)


def _parse_amount(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > AMOUNT_MAX_CHARS:
        return _too_long(question, len(text))
    key = match_key(text)
    if key in DONT_KNOW or (not key and "?" in text and not text.strip("?!. ")):
        return Parsed({"low": None, "high": None, "currency": None, "text": text})
    try:
        low, high, currency = read_amount(text)
    except NotAnAmount as refused:
        return _refuse(gettext(refused.reason), word=quote(refused.word))
    if low is not None and high is not None and low > high:
        return _refuse(
            gettext(
                "The range starts above where it ends ({low} is more than {high}); "
                "please put the lower amount first."
            ),
            low=number(low),
            high=number(high),
        )
    return Parsed({"low": low, "high": high, "currency": currency, "text": text})


_PARSERS: dict[Kind, Callable[[Question, str, Context], Parsed]] = {
    Kind.TEXT: _parse_text,
    Kind.CHOICE: _parse_choice,
    Kind.MULTI: _parse_multi,
    Kind.AMOUNT: _parse_amount,
    Kind.NUMBER: _parse_number,
    Kind.TAGS: _parse_tags,
    Kind.TAG_LEVELS: _parse_tags,
    Kind.YESNO: _parse_yesno,
}


# -- validating stored answers ---------------------------------------------------------


def _clean_str(value: Any, max_len: int, min_len: int = 0) -> bool:
    return (
        isinstance(value, str)
        and min_len <= len(value) <= max_len
        and clean(value) == value
        and not _CONTROL_CHARS.search(value)
    )


def _valid_text(q: Question, value: Any, context: Context) -> bool:
    return _clean_str(value, q.max_len, q.min_len)


def _valid_choice(q: Question, value: Any, context: Context) -> bool:
    if not q.allow_note:
        return value in q.choices
    return (
        isinstance(value, dict)
        and set(value) == {"choice", "note"}
        and value["choice"] in q.choices
        and _clean_str(value["note"], q.max_len)
    )


def _valid_multi(q: Question, value: Any, context: Context) -> bool:
    if q.allow_note:
        if not isinstance(value, dict) or set(value) != {"choices", "note"}:
            return False
        if not _clean_str(value["note"], q.max_len):
            return False
        value = value["choices"]
    return (
        isinstance(value, list)
        and bool(value)
        and len(set(value)) == len(value)
        and all(isinstance(c, str) and c in q.choices for c in value)
    )


def _valid_amount(q: Question, value: Any, context: Context) -> bool:
    if not isinstance(value, dict) or set(value) != {"low", "high", "currency", "text"}:
        return False
    return is_amount(value["low"], value["high"], value["currency"]) and _clean_str(
        value["text"], AMOUNT_MAX_CHARS, 1
    )


def _valid_number(q: Question, value: Any, context: Context) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and (value != value or value.is_integer()):
        return False  # NaN, or a whole number that should have been stored as int
    return not (q.integer and not isinstance(value, int)) and _number_ok(q, value)


def _valid_tag(tag: Any, tags: Sequence[str]) -> bool:
    if not isinstance(tag, str):
        return False
    return tag in tags if tags else bool(TAG_PATTERN.fullmatch(tag))


def _valid_tags(q: Question, value: Any, context: Context) -> bool:
    tags = _normalized_tags(context)
    return (
        isinstance(value, list)
        and 0 < len(value) <= MAX_ITEMS
        and len(set(value)) == len(value)
        and all(_valid_tag(t, tags) for t in value)
    )


def _valid_tag_levels(q: Question, value: Any, context: Context) -> bool:
    tags = _normalized_tags(context)
    return (
        isinstance(value, dict)
        and 0 < len(value) <= MAX_ITEMS
        and all(_valid_tag(t, tags) for t in value)
        and all(type(level) is int and 1 <= level <= 3 for level in value.values())
    )


def _valid_yesno(q: Question, value: Any, context: Context) -> bool:
    return isinstance(value, bool)


_VALIDATORS = {
    Kind.TEXT: _valid_text,
    Kind.CHOICE: _valid_choice,
    Kind.MULTI: _valid_multi,
    Kind.AMOUNT: _valid_amount,
    Kind.NUMBER: _valid_number,
    Kind.TAGS: _valid_tags,
    Kind.TAG_LEVELS: _valid_tag_levels,
    Kind.YESNO: _valid_yesno,
}


__all__ = [
    "AMOUNT_HELP",
    "FUZZY_CUTOFF",
    "FUZZY_MAX",
    "MAX_INPUT",
    "TAG_PATTERN",
    "Context",
    "Kind",
    "Parsed",
    "Question",
    "choice_label",
    "clean",
    "format_answer",
    "match_key",
    "numbered",
    "parse_answer",
    "pick",
    "quote",
    "validate",
]
