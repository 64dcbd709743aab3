"""The pure conversation engine: walks a person through a declarative flow, one question at a time.

A flow (intake, profile) is data; the position in it is a JSON-serializable
:class:`State` that the core stores in a database row after every message. The
functions here take a state and a line of text and return the next :class:`Step`
(a new state and what to say). They do no I/O, never raise on any input string,
and never store an answer that fails validation.
"""

from __future__ import annotations

import copy
import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CONFIRM = "confirm"  # the position after the last question; never a question id
CONFIRM_WORDS = frozenset({"confirm", "yes", "y", "ok", "okay", "submit"})
CONTROL_WORDS = ("back", "skip", "edit <question>", "status", "help", "cancel")

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
AMOUNT_MAX = (
    10**12
)  # a development cost beyond this is a typo, and would overflow BIGINT-ish columns
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # same shape as the core's tags


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
class Flow:
    """A whole conversation: its questions in order and what is said around them."""

    id: str
    title: str
    intro: str
    questions: tuple[Question, ...]
    done_prompt: str
    thanks: str = "Thank you!"
    goodbye: str = "Cancelled; nothing was saved."

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    def index(self, question_id: str) -> int:
        """0-based position of a question, or -1."""
        for i, q in enumerate(self.questions):
            if q.id == question_id:
                return i
        return -1


@dataclass(frozen=True)
class Context:
    """What the engine needs to know about the community."""

    tags: tuple[str, ...] = ()  # the community's expertise tags (for TAGS / TAG_LEVELS)


@dataclass
class State:
    """Where a conversation is; stored by the core as JSON after every message."""

    flow: str
    answers: dict[str, Any]  # question id -> normalized answer (JSON types only)
    position: str | None  # question being asked, or CONFIRM
    trail: list[str]  # positions visited, a stack for `back`; trail[-1] == position
    editing: bool = False  # re-answering one question via `edit`: then back to where we were

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "answers": copy.deepcopy(self.answers),
            "position": self.position,
            "trail": list(self.trail),
            "editing": self.editing,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> State:
        """Rebuild a state from :meth:`to_dict` output; ValueError if it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("a conversation state must be a mapping")
        flow = data.get("flow")
        answers = data.get("answers", {})
        position = data.get("position")
        trail = data.get("trail", [])
        editing = data.get("editing", False)
        if not isinstance(flow, str):
            raise ValueError("conversation state: 'flow' must be a string")
        if not isinstance(answers, Mapping) or not all(isinstance(k, str) for k in answers):
            raise ValueError("conversation state: 'answers' must map question ids to answers")
        if position is not None and not isinstance(position, str):
            raise ValueError("conversation state: 'position' must be a string or null")
        if not isinstance(trail, list) or not all(isinstance(t, str) for t in trail):
            raise ValueError("conversation state: 'trail' must be a list of strings")
        if not isinstance(editing, bool):
            raise ValueError("conversation state: 'editing' must be true or false")
        return State(flow, copy.deepcopy(dict(answers)), position, list(trail), editing)


class Outcome(StrEnum):
    ASKING = "asking"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Step:
    """The engine's reply to one message: the new state and the text to send."""

    state: State
    say: str
    outcome: Outcome = Outcome.ASKING
    choices: tuple[str, ...] = ()  # buttons an adapter may show


@dataclass(frozen=True)
class Parsed:
    """An answer read from text: a normalized value, or the one-sentence reason it was refused."""

    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


# -- public entry points ---------------------------------------------------------------


def start(flow: Flow, context: Context, answers: dict[str, Any] | None = None) -> Step:
    """Begin a flow: the intro and the first question. Pre-filled answers that no longer
    validate (a community changed its choices, say) are dropped rather than kept."""
    kept: dict[str, Any] = {}
    for key, value in (answers or {}).items():
        q = flow.question(key)
        if q is not None and validate(q, value, context) is None:
            kept[key] = copy.deepcopy(value)
    if not flow.questions:
        state = State(flow.id, kept, CONFIRM, [CONFIRM])
        return _confirm_step(flow, state, lead=flow.intro)
    first = flow.questions[0]
    state = State(flow.id, kept, first.id, [first.id])
    return _ask_step(flow, state, context, lead=flow.intro)


def resume(flow: Flow, state: State, context: Context) -> Step:
    """Say the current question (or the summary and confirm prompt) again; state unchanged."""
    st = _repaired(flow, state)
    # No greeting of its own: the core says why it is repeating the question.
    if st.position == CONFIRM:
        return _confirm_step(flow, st)
    return _ask_step(flow, st, context)


def answer(flow: Flow, state: State, text: str, context: Context) -> Step:
    """Handle one message. Never raises for any string; returns a new state."""
    st = _repaired(flow, state)
    if not isinstance(text, str):  # defensive: adapters should only ever pass text
        text = ""
    # Control words are looked for only in input of a sane size; the rest is refused by parsing.
    word = _control_word(clean(text)) if len(text) <= MAX_INPUT else ""
    if word == "cancel":
        return Step(st, flow.goodbye, Outcome.CANCELLED)
    if st.position == CONFIRM:
        return _at_confirm(flow, st, word, context)
    q = flow.question(st.position or "")
    assert q is not None  # _repaired guarantees a known position
    if word == "back":
        return _back(flow, st, context)
    if word == "skip":
        if not q.optional:
            return _ask_step(flow, st, context, lead="This question is required; please answer it.")
        st.answers.pop(q.id, None)
        return _advance(flow, st, context)
    if word == "status":
        return _ask_step(flow, st, context, lead=_status(flow, st))
    if word == "help":
        return _ask_step(flow, st, context, lead=_help(q))
    if word == "edit" or word.startswith("edit "):
        target = _find_question(flow, word[4:])
        # A multi-word text answer that merely starts with "edit" ("Edit videos for NGOs")
        # is an answer, not a command.
        looks_like_answer = q.kind is Kind.TEXT and len(word[4:].split()) > 1
        if target is not None or not looks_like_answer:
            return _edit(flow, st, target, word[4:], context)
    parsed = parse_answer(q, text, context)
    if not parsed.ok:
        return _ask_step(flow, st, context, lead=parsed.error)
    st.answers[q.id] = parsed.value
    return _advance(flow, st, context)


def summary(flow: Flow, state: State) -> str:
    """'label: answer' lines of all answered questions, in flow order."""
    lines = []
    for q in flow.questions:
        if q.id in state.answers:
            shown = format_answer(q, state.answers[q.id]).replace("\n", "\n    ")
            lines.append(f"{q.label}: {shown}")
    return "\n".join(lines)


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
        return Parsed(error=_too_long(question, len(text)))
    cleaned = clean(text)
    if not cleaned:
        if question.optional:
            return Parsed(error="Please type an answer, or `skip` to leave this one out.")
        return Parsed(error="Please type an answer; this question needs one.")
    return _PARSERS[question.kind](question, cleaned, context)


def validate(question: Question, value: Any, context: Context) -> str | None:
    """Check a stored (normalized) answer: None when valid, otherwise the reason."""
    try:
        ok = _VALIDATORS[question.kind](question, value, context)
    except (TypeError, ValueError, KeyError, AttributeError):
        ok = False
    return None if ok else f"not a valid answer to {question.id}"


def format_answer(question: Question, value: Any) -> str:
    """A normalized answer as a person reads it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if question.kind is Kind.AMOUNT and isinstance(value, dict):
        return _format_amount(value)
    if question.kind is Kind.TAG_LEVELS and isinstance(value, dict):
        return ", ".join(f"{tag}:{level}" for tag, level in value.items())
    if isinstance(value, dict) and ("choice" in value or "choices" in value):
        chosen = value.get("choices", [value.get("choice", "")])
        text = ", ".join(str(c) for c in chosen) if isinstance(chosen, list) else str(chosen)
        note = value.get("note") or ""
        return f"{text} — {note}" if note else text
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _too_long(question: Question, length: int) -> str:
    if question.kind is Kind.TEXT:
        return f"That is too long ({length} characters; at most {question.max_len})."
    return f"That is far too long for this question ({length} characters)."


def match_key(text: str) -> str:
    """A loose form for comparing words: case, apostrophes and punctuation ignored."""
    folded = text.casefold().replace("'", "").replace("’", "").replace("`", "")
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def _quote(text: str, limit: int = 30) -> str:
    """User text made safe to quote inside one sentence."""
    flat = " ".join(text.split())
    return f"'{flat[:limit]}…'" if len(flat) > limit else f"'{flat}'"


def _resolve(token: str, options: Sequence[str]) -> str | None:
    """The option a token means: its number, the word, a unique prefix or a close spelling."""
    token = token.strip()
    if not token or len(token) > FUZZY_MAX:
        return None
    if re.fullmatch(r"[0-9]{1,3}", token):
        n = int(token)
        return options[n - 1] if 1 <= n <= len(options) else None
    k = match_key(token)
    if not k:
        return None
    keys = {match_key(o): o for o in options}
    if k in keys:
        return keys[k]
    prefixed = [o for kk, o in keys.items() if kk.startswith(k)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(k, list(keys), n=1, cutoff=FUZZY_CUTOFF)
    return keys[close[0]] if close else None


def _numbered(choices: Sequence[str]) -> str:
    return ", ".join(f"{i}. {c}" for i, c in enumerate(choices, 1))


def _wrong_choice(question: Question, item: str) -> str:
    if re.fullmatch(r"[0-9]{1,3}", item.strip()):
        return (
            f"There is no choice {item.strip()}; "
            f"pick a number from 1 to {len(question.choices)}: {_numbered(question.choices)}."
        )
    hint = "; add your own words after a dash" if question.allow_note else ""
    return f"{_quote(item)} is not one of the choices ({_numbered(question.choices)}){hint}."


_CHOICE_NOTE_SEP = re.compile(r"\s*,\s*|\s+-{1,2}\s+|\s*[–—:]\s*")
_MULTI_NOTE_SEP = re.compile(r"\s+-{1,2}\s+|\s*[–—:]\s*")
_ITEM_SEP = re.compile(r"\s*(?:[,;/&+]|\band\b)\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\x00([0-9]+)\x00")


def _split_note(text: str, separator: re.Pattern[str]) -> tuple[str, str] | None:
    match = separator.search(text)
    if match is None:
        return None
    return text[: match.start()].strip(), text[match.end() :].strip()


def _note_error(question: Question, note: str) -> str | None:
    if len(note) > question.max_len:
        return f"Your note is too long ({len(note)} characters; at most {question.max_len})."
    return None


def _parse_text(question: Question, text: str, context: Context) -> Parsed:
    if len(text) < question.min_len:
        return Parsed(
            error=f"That is too short ({len(text)} characters; at least {question.min_len})."
        )
    if len(text) > question.max_len:
        return Parsed(error=_too_long(question, len(text)))
    return Parsed(text)


def _parse_choice(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > question.max_len + FUZZY_MAX + 10:
        return Parsed(error=_too_long(question, len(text)))
    chosen = _resolve(text, question.choices)
    note = ""
    if chosen is None and question.allow_note:
        split = _split_note(text, _CHOICE_NOTE_SEP)
        if split is not None:
            chosen = _resolve(split[0], question.choices)
            note = split[1]
    if chosen is None:
        split = _split_note(text, _CHOICE_NOTE_SEP) if question.allow_note else None
        return Parsed(error=_wrong_choice(question, split[0] if split else text))
    if not question.allow_note:
        return Parsed(chosen)
    problem = _note_error(question, note)
    return Parsed(error=problem) if problem else Parsed({"choice": chosen, "note": note})


def _parse_multi(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > question.max_len + 40 * len(question.choices) + 100:
        return Parsed(error=_too_long(question, len(text)))
    head, note = text, ""
    if question.allow_note:
        split = _split_note(text, _MULTI_NOTE_SEP)
        if split is not None:
            head, note = split
    # Choices that contain a separator ("research and development") are swapped for a
    # placeholder first so the split below cannot cut them in two. NUL is safe as a marker:
    # clean() removed every control character from the input.
    for i, choice in sorted(enumerate(question.choices), key=lambda ic: -len(ic[1])):
        if _ITEM_SEP.search(choice):
            head = re.sub(re.escape(choice), f"\x00{i}\x00", head, flags=re.IGNORECASE)
    items = [item for item in _ITEM_SEP.split(head) if item.strip()]
    if len(items) > MAX_ITEMS:
        return Parsed(error=f"That is too many choices (at most {len(question.choices)}).")
    chosen: list[str] = []
    for item in items:
        resolved = _resolve_item(question, item.strip())
        if resolved is None:
            return Parsed(error=_wrong_choice(question, _PLACEHOLDER.sub("", item)))
        chosen.extend(c for c in resolved if c not in chosen)
    if not chosen:
        return Parsed(error=f"Please choose at least one of: {_numbered(question.choices)}.")
    if not question.allow_note:
        return Parsed(chosen)
    problem = _note_error(question, note)
    return Parsed(error=problem) if problem else Parsed({"choices": chosen, "note": note})


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
        return Parsed(error=_number_rule(question))
    number = float(f"{match.group(1)}.{match.group(2) or '0'}")
    value: int | float = int(number) if number.is_integer() else number
    if not _number_ok(question, value):
        return Parsed(error=_number_rule(question))
    return Parsed(value)


def _number_ok(question: Question, value: float) -> bool:
    if question.minimum is not None and value < question.minimum:
        return False
    return question.maximum is None or value <= question.maximum


def _fmt_bound(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _number_rule(question: Question) -> str:
    what = "a whole number" if question.integer else "a number"
    lo, hi = question.minimum, question.maximum
    if lo is not None and hi is not None:
        return f"The answer must be {what} between {_fmt_bound(lo)} and {_fmt_bound(hi)}."
    if lo is not None:
        return f"The answer must be {what} of at least {_fmt_bound(lo)}."
    if hi is not None:
        return f"The answer must be {what} of at most {_fmt_bound(hi)}."
    return f"The answer must be {what}."


_YES = frozenset({"yes", "y", "ja", "oui"})
_NO = frozenset({"no", "n", "nee", "non"})


def _parse_yesno(question: Question, text: str, context: Context) -> Parsed:
    word = match_key(text) if len(text) <= YESNO_MAX_CHARS else ""
    if word in _YES:
        return Parsed(True)
    if word in _NO:
        return Parsed(False)
    return Parsed(error="Please answer yes or no.")


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


def _unknown_tag(token: str, tags: Sequence[str]) -> str:
    if not tags:
        return f"{_quote(token)} is not a tag; tags look like business-model or finance."
    shown = ", ".join(tags[:40]) + (f" and {len(tags) - 40} more" if len(tags) > 40 else "")
    return f"{_quote(token)} is not one of this community's tags: {shown}."


def _tag_tokens(text: str, tags: Sequence[str]) -> list[str] | None:
    if len(text) > TAGS_MAX_CHARS:
        return None
    tokens = [t for t in re.split(r"[\s,;/]+", text) if t and t not in ("&", "+")]
    # "finance and legal": "and" is a joining word unless the community really has that tag.
    return [t for t in tokens if t.casefold() != "and" or "and" in tags]


def _parse_tags(question: Question, text: str, context: Context) -> Parsed:
    tags = _normalized_tags(context)
    tokens = _tag_tokens(text, tags)
    if tokens is None or len(tokens) > MAX_ITEMS:
        return Parsed(error=f"That is too many tags (at most {MAX_ITEMS}).")
    chosen: list[str] = []
    for token in tokens:
        tag = _resolve_tag(token, tags)
        if tag is None:
            return Parsed(error=_unknown_tag(token, tags))
        if tag not in chosen:
            chosen.append(tag)
    if not chosen:
        return Parsed(error="Please name at least one tag.")
    return Parsed(chosen)


def _parse_tag_levels(question: Question, text: str, context: Context) -> Parsed:
    tags = _normalized_tags(context)
    tokens = _tag_tokens(re.sub(r"\s*[:=]\s*", ":", text), tags)
    if tokens is None or len(tokens) > MAX_ITEMS:
        return Parsed(error=f"That is too many tags (at most {MAX_ITEMS}).")
    levels: dict[str, int] = {}
    for token in tokens:
        name, _, level = token.partition(":")
        tag = _resolve_tag(name, tags)
        if tag is None:
            return Parsed(error=_unknown_tag(name, tags))
        if level and level not in ("1", "2", "3"):
            return Parsed(error=f"The level of {tag} must be 1, 2 or 3 (like {tag}:3).")
        levels[tag] = int(level) if level else 2  # a tag given twice keeps its last level
    if not levels:
        return Parsed(error="Please name at least one tag, like finance:3.")
    return Parsed(levels)


def _normalized_tags(context: Context) -> tuple[str, ...]:
    return tuple(t.casefold() for t in context.tags)


# -- amounts ---------------------------------------------------------------------------

CURRENCIES = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
    "chf": "CHF", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "pln": "PLN", "czk": "CZK",
    "huf": "HUF", "ron": "RON", "bgn": "BGN", "cad": "CAD", "aud": "AUD", "jpy": "JPY",
}  # fmt: skip
_MULTIPLIERS = {
    "k": 1_000, "thousand": 1_000, "m": 1_000_000, "mln": 1_000_000, "mio": 1_000_000,
    "million": 1_000_000, "millions": 1_000_000,
}  # fmt: skip
_CONNECTORS = frozenset({"-", "to", "and", "till", "until"})
_FILLERS = frozenset(
    {"between", "about", "around", "approx", "approximately", "roughly", "ca", "circa",
     "estimated", "est", "maybe", "perhaps", "some", "~", "≈", "in", "total"}
)  # fmt: skip
_DONT_KNOW = frozenset(
    {"dont know", "do not know", "dont know yet", "do not know yet", "unknown", "no idea",
     "not sure", "not known", "not known yet", "idk", "n a", "na", "weet niet", "no clue"}
)  # fmt: skip
_AMOUNT_TOKEN = re.compile(
    r"(?P<num>[0-9]+(?:[.,'’][0-9]+)*)|(?P<word>[^\W\d_]+)|(?P<sym>[€$£<>+~≈-])"
    r"|(?P<space>\s+)|(?P<punct>[.,;!?()])|(?P<other>.)",
    re.DOTALL,
)


def _decimal(digits: str) -> float | None:
    """'5,000' / '5.000' / '1.234,5' / '2.5' / "5'000" → a number; thousands separators are
    told apart from decimal ones by position and by a group of exactly three digits."""
    digits = digits.replace("’", "'").replace("'", "")
    seps = [c for c in digits if c in ".,"]
    if not seps:
        whole, frac = digits, ""
    elif len(set(seps)) == 2:
        last = max(digits.rfind("."), digits.rfind(","))
        whole, frac = re.sub(r"[.,]", "", digits[:last]), digits[last + 1 :]
    elif len(seps) > 1:
        whole, frac = re.sub(r"[.,]", "", digits), ""
    else:
        head, _, tail = digits.replace(",", ".").partition(".")
        whole, frac = (head + tail, "") if len(tail) == 3 else (head, tail)
    if len(whole) > 15:
        return None
    return float(f"{whole or '0'}.{frac[:6] or '0'}")


def _parse_amount(question: Question, text: str, context: Context) -> Parsed:
    if len(text) > AMOUNT_MAX_CHARS:
        return Parsed(error=_too_long(question, len(text)))
    key = match_key(text)
    if key in _DONT_KNOW or (not key and "?" in text and not text.strip("?!. ")):
        return Parsed({"low": None, "high": None, "currency": None, "text": text})
    reading = _read_amount(text)
    if isinstance(reading, str):
        return Parsed(error=reading)
    low, high, currency = reading
    if low is not None and high is not None and low > high:
        return Parsed(
            error=f"The range starts above where it ends ({low:,} is more than {high:,}); "
            "please put the lower amount first."
        )
    return Parsed({"low": low, "high": high, "currency": currency, "text": text})


_AMOUNT_HELP = "like 5000 EUR, 10-20k euro or don't know"


def _read_amount(text: str) -> tuple[int | None, int | None, str | None] | str:
    """(low, high, currency) or the reason the text is not an amount."""
    t = text.casefold().replace("–", "-").replace("—", "-")
    t = re.sub(r"(?<=[0-9])[ \u00a0\u202f](?=[0-9]{3}(?![0-9]))", "", t)  # "5 000"
    t = re.sub(r"\b(up to|at most|less than|no more than|maximum|max|under|below)\b", "<", t)
    t = re.sub(r"\b(at least|more than|over|above|minimum|min|from)\b", ">", t)
    numbers: list[list[float]] = []  # [value, multiplier]; multiplier 0 = not given
    currencies: set[str] = set()
    ranged = upper = lower = False
    last_was_number = False
    for match in _AMOUNT_TOKEN.finditer(t):
        kind, tok = match.lastgroup, match.group()
        if kind == "space" or kind == "punct":
            last_was_number = last_was_number and kind == "space"
            continue
        was_number, last_was_number = last_was_number, False
        if kind == "num":
            value = _decimal(tok)
            if value is None:
                return "That amount is too large to be a development cost."
            if len(numbers) == 2:
                return f"Please give one amount or a range, {_AMOUNT_HELP}."
            if len(numbers) == 1 and not ranged:
                return f"Please write a range with a dash, {_AMOUNT_HELP}."
            numbers.append([value, 0])
            last_was_number = True
        elif tok in _MULTIPLIERS and was_number and numbers[-1][1] == 0:
            numbers[-1][1] = _MULTIPLIERS[tok]
        elif tok in CURRENCIES:
            currencies.add(CURRENCIES[tok])
        elif kind == "word" and tok[:1] in "km" and tok[1:] in CURRENCIES and was_number:
            numbers[-1][1] = _MULTIPLIERS[tok[:1]]  # "5keur"
            currencies.add(CURRENCIES[tok[1:]])
        elif tok in _CONNECTORS and len(numbers) == 1 and not ranged:
            ranged = True
        elif tok == "+" and numbers:
            lower = True  # "5000+"
        elif tok == "<":
            upper = True
        elif tok == ">":
            lower = True
        elif tok in _FILLERS or tok == "+":
            continue
        else:
            return f"I could not read {_quote(tok)} in an amount; write it {_AMOUNT_HELP}."
    if not numbers:
        return f"Please give an amount, {_AMOUNT_HELP}."
    if len(currencies) > 1:
        return "Please use one currency for the amount."
    if ranged and len(numbers) == 1:
        return f"The range is missing its second amount; write it {_AMOUNT_HELP}."
    if len(numbers) == 2 and numbers[0][1] == 0:
        # "10-20k" means 10k-20k, so "20-10k" is a reversed range, refused below.
        numbers[0][1] = numbers[1][1]
    amounts = [round(v * (m or 1)) for v, m in numbers]
    if any(a > AMOUNT_MAX for a in amounts):
        return "That amount is too large to be a development cost."
    currency = next(iter(currencies), None)
    if len(amounts) == 2:
        return amounts[0], amounts[1], currency
    if upper and not lower:
        return None, amounts[0], currency
    if lower and not upper:
        return amounts[0], None, currency
    return amounts[0], amounts[0], currency


def _format_amount(value: Mapping[str, Any]) -> str:
    low, high, currency = value.get("low"), value.get("high"), value.get("currency")
    unit = f" {currency}" if currency else ""
    if low is None and high is None:
        return "not known yet"
    if low is None:
        return f"up to {high:,}{unit}"
    if high is None:
        return f"at least {low:,}{unit}"
    if low == high:
        return f"{low:,}{unit}"
    return f"{low:,}–{high:,}{unit}"


_PARSERS = {
    Kind.TEXT: _parse_text,
    Kind.CHOICE: _parse_choice,
    Kind.MULTI: _parse_multi,
    Kind.AMOUNT: _parse_amount,
    Kind.NUMBER: _parse_number,
    Kind.TAGS: _parse_tags,
    Kind.TAG_LEVELS: _parse_tag_levels,
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
    low, high, currency = value["low"], value["high"], value["currency"]
    for bound in (low, high):
        if bound is not None and (
            not isinstance(bound, int) or isinstance(bound, bool) or not 0 <= bound <= AMOUNT_MAX
        ):
            return False
    if low is not None and high is not None and low > high:
        return False
    if currency is not None and currency not in CURRENCIES.values():
        return False
    return _clean_str(value["text"], AMOUNT_MAX_CHARS, 1)


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


# -- moving through the flow -----------------------------------------------------------


def _control_word(cleaned: str) -> str:
    """The input as a possible control word: folded, single-spaced, trailing '.!?' dropped."""
    if len(cleaned) > FUZZY_MAX + 10:
        return ""
    return " ".join(cleaned.casefold().split()).rstrip(".!?").strip()


def _repaired(flow: Flow, state: State) -> State:
    """A copy of the state that is consistent with the flow, whatever was stored: a known
    position, at the top of the trail. For a well-formed state this equals the input."""
    ids = {q.id for q in flow.questions}
    answers = copy.deepcopy(state.answers) if isinstance(state.answers, dict) else {}
    trail = [t for t in state.trail if t in ids or t == CONFIRM][-500:]
    position = state.position
    if position != CONFIRM and position not in ids:
        missing = [q.id for q in flow.questions if q.id not in answers]
        position = missing[0] if missing else CONFIRM
    if not trail or trail[-1] != position:
        trail.append(position)
    editing = bool(state.editing) and position != CONFIRM
    return State(flow.id, answers, position, trail, editing)


def _choices_for(question: Question) -> tuple[str, ...]:
    if question.kind in (Kind.CHOICE, Kind.MULTI):
        return question.choices
    if question.kind is Kind.YESNO:
        return ("yes", "no")
    return ()


def _prompt(flow: Flow, state: State, question: Question, context: Context) -> str:
    """The question as asked: number, prompt, the options, the current answer if any."""
    lines = [f"({flow.index(question.id) + 1}/{len(flow.questions)}) {question.prompt}"]
    if question.kind is Kind.CHOICE:
        lines.append(f"Choose one: {_numbered(question.choices)}")
    elif question.kind is Kind.MULTI:
        lines.append(f"Choose one or more: {_numbered(question.choices)}")
    elif question.kind in (Kind.TAGS, Kind.TAG_LEVELS) and context.tags:
        lines.append("Tags: " + ", ".join(context.tags))
    elif question.kind is Kind.YESNO:
        lines.append("(yes or no)")
    if question.id in state.answers:
        now = " ".join(format_answer(question, state.answers[question.id]).split())
        lines.append(f"(now: {now[:300] + '…' if len(now) > 300 else now})")
    if question.optional:
        lines.append("Optional — type `skip` to leave it out.")
    return "\n".join(lines)


def _ask_step(flow: Flow, state: State, context: Context, lead: str = "") -> Step:
    question = flow.question(state.position or "")
    assert question is not None
    text = _prompt(flow, state, question, context)
    return Step(state, f"{lead}\n\n{text}" if lead else text, choices=_choices_for(question))


def _confirm_step(flow: Flow, state: State, lead: str = "") -> Step:
    listed = summary(flow, state) or "(no answers)"
    parts = [lead] if lead else []
    parts += [f"Here is what you told me:\n{listed}", flow.done_prompt]
    return Step(state, "\n\n".join(parts), choices=("confirm", "edit", "cancel"))


def _go_to_confirm(flow: Flow, state: State, context: Context, lead: str = "") -> Step:
    """Move to the confirm step, unless a required answer is missing or no longer valid
    (a community can change choices mid-conversation): then ask that question first."""
    if not state.trail or state.trail[-1] != CONFIRM:
        state.trail.append(CONFIRM)
    state.position, state.editing = CONFIRM, False
    for q in flow.questions:
        value = state.answers.get(q.id)
        if q.id in state.answers and validate(q, value, context) is not None:
            del state.answers[q.id]
        if q.id not in state.answers and not q.optional:
            state.position, state.editing = q.id, True
            state.trail.append(q.id)
            return _ask_step(flow, state, context, lead=f"I still need an answer about {q.label}.")
    return _confirm_step(flow, state, lead)


def _advance(flow: Flow, state: State, context: Context) -> Step:
    """After an answer (or a skip): in editing mode back to where the edit started,
    otherwise on to the next question in flow order, or to the confirm step."""
    if state.editing:
        state.trail.pop()
        state.editing = False
        back_to = state.trail[-1] if state.trail else CONFIRM
        if back_to == CONFIRM or flow.question(back_to) is None:
            return _go_to_confirm(flow, state, context)
        state.position = back_to
        return _ask_step(flow, state, context, lead="Saved. Back to where we were:")
    index = flow.index(state.position or "")
    if index + 1 >= len(flow.questions):
        return _go_to_confirm(flow, state, context)
    nxt = flow.questions[index + 1].id
    state.position = nxt
    state.trail.append(nxt)
    return _ask_step(flow, state, context)


def _back(flow: Flow, state: State, context: Context) -> Step:
    if state.editing:
        state.trail.pop()
        state.editing = False
        state.position = state.trail[-1] if state.trail else CONFIRM
        if state.position == CONFIRM or flow.question(state.position) is None:
            return _go_to_confirm(flow, state, context, lead="Kept your earlier answer.")
        return _ask_step(flow, state, context, lead="Kept your earlier answer.")
    if len(state.trail) >= 2 and flow.question(state.trail[-2]) is not None:
        state.trail.pop()
        state.position = state.trail[-1]
        return _ask_step(flow, state, context)
    index = flow.index(state.position or "")
    if index <= 0:
        return _ask_step(flow, state, context, lead="There is no question before this one.")
    # The trail was lost (an old state): fall back to flow order.
    state.position = flow.questions[index - 1].id
    state.trail = [state.position]
    return _ask_step(flow, state, context)


def _find_question(flow: Flow, argument: str) -> Question | None:
    """The question `edit <argument>` means: id, 1-based number, label, prefix or close spelling."""
    arg = argument.strip().lstrip("#").casefold()
    if not arg or len(arg) > FUZZY_MAX:
        return None
    if re.fullmatch(r"[0-9]{1,3}", arg):
        n = int(arg)
        return flow.questions[n - 1] if 1 <= n <= len(flow.questions) else None
    by_name: dict[str, Question] = {}
    for q in flow.questions:
        by_name.setdefault(q.label.casefold(), q)
    for q in flow.questions:
        by_name[q.id.casefold()] = q  # ids win over labels
    if arg in by_name:
        return by_name[arg]
    prefixed = {q.id: q for name, q in by_name.items() if name.startswith(arg)}
    if len(prefixed) == 1:
        return next(iter(prefixed.values()))
    close = difflib.get_close_matches(arg, list(by_name), n=1, cutoff=0.7)
    return by_name[close[0]] if close else None


def _edit(
    flow: Flow, state: State, target: Question | None, argument: str, context: Context
) -> Step:
    if target is None:
        ids = ", ".join(q.id for q in flow.questions)
        what = (
            f"There is no question {_quote(argument.strip())}" if argument.strip() else "Which one"
        )
        lead = f"{what}; type `edit` with one of: {ids} (or its number)."
        if state.position == CONFIRM:
            return Step(
                state, f"{lead}\n\n{flow.done_prompt}", choices=("confirm", "edit", "cancel")
            )
        return _ask_step(flow, state, context, lead=lead)
    if target.id == state.position:
        return _ask_step(flow, state, context, lead="That is the question we are on:")
    if state.editing and len(state.trail) >= 2 and state.trail[-2] == target.id:
        # Editing back to where the edit started is just going back there.
        return _back(flow, state, context)
    if state.editing:
        state.trail[-1] = target.id  # switch which question is being edited
    else:
        state.trail.append(target.id)
    state.position, state.editing = target.id, True
    return _ask_step(flow, state, context)


def _status(flow: Flow, state: State) -> str:
    so_far = summary(flow, state)
    if state.position == CONFIRM:
        head = f"All {len(flow.questions)} questions are done; waiting for your confirmation."
    else:
        n = flow.index(state.position or "") + 1
        head = f"Question {n} of {len(flow.questions)}: {state.position}."
    answers = f"Your answers so far:\n{so_far}" if so_far else "No answers yet."
    return f"{head}\n{answers}"


_KIND_HELP = {
    Kind.TEXT: "Answer in your own words.",
    Kind.CHOICE: "Type one of the choices, or its number.",
    Kind.MULTI: "Type one or more of the choices, or their numbers, separated by commas.",
    Kind.AMOUNT: f"Give an amount or a range, {_AMOUNT_HELP}.",
    Kind.NUMBER: "Type a number.",
    Kind.TAGS: "Type one or more tags, separated by commas or spaces.",
    Kind.TAG_LEVELS: "Type one or more tags, each with a level 1-3 like finance:3.",
    Kind.YESNO: "Answer yes or no.",
}


def _help(question: Question) -> str:
    own = question.help or _KIND_HELP[question.kind]
    skip = "`skip` (this one is optional), " if question.optional else ""
    return (
        f"{own}\nYou can also type `back` (previous question), {skip}"
        "`edit <question>` (change an earlier answer), `status` (how far we are) "
        "or `cancel` (stop)."
    )


def _at_confirm(flow: Flow, state: State, word: str, context: Context) -> Step:
    if word in CONFIRM_WORDS:
        step = _go_to_confirm(flow, state, context)
        if state.position != CONFIRM:
            return step  # an answer went missing; it is being asked now
        return Step(state, flow.thanks, Outcome.CONFIRMED)
    if word == "edit" or word.startswith("edit "):
        return _edit(flow, state, _find_question(flow, word[4:]), word[4:], context)
    if word == "back":
        state.trail.pop()
        last = state.trail[-1] if state.trail else ""
        if flow.question(last) is None:
            if not flow.questions:
                return _go_to_confirm(flow, state, context)
            last = flow.questions[-1].id
            state.trail.append(last)
        state.position = last
        return _ask_step(flow, state, context)
    if word == "status":
        return _confirm_step(flow, state, lead=_status(flow, state).split("\n")[0])
    if word == "help":
        lead = (
            "`confirm` submits your answers, `edit <question>` (a name or number, like `edit 6`) "
            "changes one, `back` returns to the last question and `cancel` stops without saving."
        )
        return Step(state, f"{lead}\n\n{flow.done_prompt}", choices=("confirm", "edit", "cancel"))
    lead = "Everything is answered; I only need your confirmation now."
    return Step(state, f"{lead}\n\n{flow.done_prompt}", choices=("confirm", "edit", "cancel"))


__all__ = [
    "CONFIRM",
    "CONTROL_WORDS",
    "Context",
    "Flow",
    "Kind",
    "Outcome",
    "Parsed",
    "Question",
    "State",
    "Step",
    "answer",
    "clean",
    "format_answer",
    "match_key",
    "parse_answer",
    "resume",
    "start",
    "summary",
    "validate",
]
