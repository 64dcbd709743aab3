"""How one argument of a command is read: members, amounts, numbers, hours, R-n and I-n
references, choices, words, free text and tags; and the one-sentence ParseError."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.domain.ledger import AmountError, parse_amount
from bot.i18n import N_, _, explain, number
from bot.messages import Body, as_parts, plain, render_plain, say
from conversations.answers import TAG_PATTERN

REQUEST_PATTERN = re.compile(r"^[rR]-?(\d{1,9})$|^(\d{1,9})$")
IDEA_PATTERN = re.compile(r"^[iI]-?(\d{1,9})$|^(\d{1,9})$")
# `<@slack:T01:U02>` is how adapters write a platform mention; `@ann` is typed by hand.
MENTION_PATTERN = re.compile(r"^<@([a-z]+):([^>\s]+)>$|^@(\S+)$")


class ParseError(ValueError):
    """Bad input; the message is one sentence for the person who typed it, as parts,
    written in their language (the parser runs while it is set: see `bot.i18n`)."""

    def __init__(self, body: Body) -> None:
        self.parts = as_parts(body)
        super().__init__(render_plain(self.parts))


@dataclass(frozen=True)
class MemberRef:
    """A reference to a member as typed: a name or a platform identity."""

    value: str
    platform: str | None = None  # set when an adapter resolved a platform mention

    def __str__(self) -> str:
        return f"@{self.value}"


# -- argument kinds -----------------------------------------------------------------


class Arg:
    """How one argument is read. `looks_like` decides whether an optional argument
    is present; `read` converts a token or raises ParseError."""

    rest = False  # consumes the rest of the line
    many = False  # consumes all remaining tokens

    def looks_like(self, token: str) -> bool:
        return True

    def read(self, token: str) -> Any:
        return token


class Member(Arg):
    def looks_like(self, token: str) -> bool:
        return bool(MENTION_PATTERN.match(token))

    def read(self, token: str) -> MemberRef:
        match = MENTION_PATTERN.match(token)
        if not match:
            raise ParseError(say("'{token}' is not a member; mention them like @ann.", token=token))
        platform, external, name = match.groups()
        if name is not None:
            return MemberRef(name)
        return MemberRef(external, platform)


class Amount(Arg):
    def __init__(self, signed: bool = False) -> None:
        self.signed = signed

    def looks_like(self, token: str) -> bool:
        return bool(re.match(r"^[+-]?\d", token))

    def read(self, token: str) -> int:
        try:
            return parse_amount(token, signed=self.signed)
        except AmountError as exc:
            raise ParseError(explain(exc)) from None


INT_PATTERN = re.compile(r"[+-]?\d+")  # \d: the decimal digits int() reads, of any script


class Int(Arg):
    """A whole number from `low` to `high`; `what` names it as the subject of a sentence
    ("The number of days"), marked with N_ and translated when it is said."""

    def __init__(self, low: int, high: int, what: str) -> None:
        self.low, self.high, self.what = low, high, what

    def looks_like(self, token: str) -> bool:
        return bool(INT_PATTERN.fullmatch(token))

    def read(self, token: str) -> int:
        # Not str.isdigit: it accepts "²" and "--5", which int() refuses.
        if not INT_PATTERN.fullmatch(token):
            raise ParseError(
                say(
                    "{what} must be a whole number, not '{token}'.",
                    what=_(self.what),
                    token=token[:20],
                )
            )
        # A few thousand digits would make int() itself refuse; no range needs 19.
        value = int(token) if len(token) < 20 else self.high + 1
        if not self.low <= value <= self.high:
            raise ParseError(
                say(
                    "{what} must be between {low} and {high}.",
                    what=_(self.what),
                    low=number(self.low, grouping=False),
                    high=number(self.high, grouping=False),
                )
            )
        return value


class Hours(Arg):
    """The time a review took, for the record (the price of a request is fixed per kind):
    quarter hours from a quarter of an hour to a working week."""

    LOW, HIGH = 0.25, 40.0

    def read(self, token: str) -> float:
        try:
            value = float(token.replace(",", "."))
        except ValueError:
            raise ParseError(
                say("hours must be a number like 1.5, not '{token}'.", token=token[:20])
            ) from None
        quarters = value * 4
        if not (self.LOW <= value <= self.HIGH and abs(quarters - round(quarters)) < 1e-9):
            raise ParseError(
                say(
                    "Hours are the time you spent, in quarter hours from {low} to {high} (like "
                    "1.5); they are recorded, and the price of the request stays as it is.",
                    low=number(Decimal(f"{self.LOW:g}")),
                    high=number(Decimal(f"{self.HIGH:g}")),
                )
            )
        return round(quarters) / 4


class Ref(Arg):
    """An R-n or I-n reference; `refusal` is the sentence (marked with N_) for a token that
    is none, with the token as `{token}`."""

    def __init__(self, pattern: re.Pattern[str], prefix: str, refusal: str) -> None:
        self.pattern, self.prefix, self.refusal = pattern, prefix, refusal

    def looks_like(self, token: str) -> bool:
        return bool(self.pattern.match(token))

    def read(self, token: str) -> int:
        match = self.pattern.match(token)
        if not match:
            raise ParseError(say(self.refusal, token=token))
        return int(match.group(1) or match.group(2))


class Choice(Arg):
    def __init__(self, *options: str) -> None:
        self.options = options

    def looks_like(self, token: str) -> bool:
        return token.lower() in self.options

    def read(self, token: str) -> str:
        if token.lower() not in self.options:
            meant = self.near(token)
            hint = say(" Did you mean `{meant}`?", meant=meant) if meant else ()
            raise ParseError(
                say(
                    "'{token}' should be one of: {options}.",
                    token=token,
                    options=", ".join(self.options),
                )
                + hint
            )
        return token.lower()

    def near(self, token: str) -> str | None:
        """The option a slip of the keyboard most likely meant ("reviews": review)."""
        word = token.lower()
        close = difflib.get_close_matches(word, self.options, n=1, cutoff=0.8)
        return close[0] if close and close[0][0] == word[0] else None


class Word(Arg):
    def __init__(self, max_len: int = 64) -> None:
        self.max_len = max_len

    def read(self, token: str) -> str:
        if len(token) > self.max_len:
            raise ParseError(
                say(
                    "'{token}…' is too long (at most {most} characters).",
                    token=token[:20],
                    most=number(self.max_len),
                )
            )
        return token


# What a free text too long is told, by what it is (a whole sentence each: the words
# around the name of the text change with it in other languages).
TOO_LONG = {
    "text": N_("The text is too long ({length} characters; at most {most})."),
    "command name": N_("The command name is too long ({length} characters; at most {most})."),
    "reason": N_("The reason is too long ({length} characters; at most {most})."),
    "feedback": N_("The feedback is too long ({length} characters; at most {most})."),
    "comment": N_("The comment is too long ({length} characters; at most {most})."),
    "note": N_("The note is too long ({length} characters; at most {most})."),
    "search": N_("The search is too long ({length} characters; at most {most})."),
}


class Rest(Arg):
    """The rest of the line as free text; `what` is what it is (a key of TOO_LONG)."""

    rest = True

    def __init__(self, what: str = "text", max_len: int = 2000) -> None:
        if what not in TOO_LONG:
            raise ValueError(f"no sentence for a {what!r} too long: add it to TOO_LONG")
        self.what, self.max_len = what, max_len

    def read(self, token: str) -> str:
        if len(token) > self.max_len:
            raise ParseError(
                say(TOO_LONG[self.what], length=number(len(token)), most=number(self.max_len))
                + plain(" ")
                + say("Shorten it, or put the full text in a shared document and send its link.")
            )
        return token


class Tags(Arg):
    """One or more `tag` or `tag:level` tokens."""

    many = True

    def __init__(self, levels: bool = False) -> None:
        self.levels = levels

    def looks_like(self, token: str) -> bool:
        return bool(TAG_PATTERN.fullmatch(token.split(":", 1)[0].lower()))

    def read(self, token: str) -> Any:
        tag, _, level = token.lower().partition(":")
        if not TAG_PATTERN.fullmatch(tag):
            raise ParseError(
                say(
                    "'{token}' is not a tag; tags look like business-model or finance.", token=token
                )
            )
        if not self.levels:
            if level:
                raise ParseError(
                    say("'{token}': levels are not used here, just the tag.", token=token)
                )
            return tag
        if not level:
            return (tag, 2)
        if level not in ("1", "2", "3"):
            raise ParseError(
                say("'{token}': the level after the colon must be 1, 2 or 3.", token=token)
            )
        return (tag, int(level))


REQUEST = Ref(REQUEST_PATTERN, "R", N_("'{token}' is not a request number; they look like R-7."))
IDEA = Ref(IDEA_PATTERN, "I", N_("'{token}' is not an idea number; they look like I-7."))
