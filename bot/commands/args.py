"""How one argument of a command is read: members, amounts, numbers, hours, R-n and I-n
references, choices, words, free text and tags; and the one-sentence ParseError."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from bot.domain.ledger import AmountError, parse_amount
from bot.messages import Body, as_parts, render_plain, say
from conversations.answers import TAG_PATTERN

REQUEST_PATTERN = re.compile(r"^[rR]-?(\d{1,9})$|^(\d{1,9})$")
IDEA_PATTERN = re.compile(r"^[iI]-?(\d{1,9})$|^(\d{1,9})$")
# `<@slack:T01:U02>` is how adapters write a platform mention; `@ann` is typed by hand.
MENTION_PATTERN = re.compile(r"^<@([a-z]+):([^>\s]+)>$|^@(\S+)$")


class ParseError(ValueError):
    """Bad input; the message is one sentence for the person who typed it, as parts."""

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
            raise ParseError(f"'{token}' is not a member; mention them like @ann.")
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
            raise ParseError(str(exc)) from None


INT_PATTERN = re.compile(r"[+-]?\d+")  # \d: the decimal digits int() reads, of any script


class Int(Arg):
    def __init__(self, low: int, high: int, what: str) -> None:
        self.low, self.high, self.what = low, high, what

    def looks_like(self, token: str) -> bool:
        return bool(INT_PATTERN.fullmatch(token))

    def read(self, token: str) -> int:
        # Not str.isdigit: it accepts "²" and "--5", which int() refuses.
        if not INT_PATTERN.fullmatch(token):
            raise ParseError(f"{self.what} must be a whole number, not '{token[:20]}'.")
        # A few thousand digits would make int() itself refuse; no range needs 19.
        value = int(token) if len(token) < 20 else self.high + 1
        if not self.low <= value <= self.high:
            raise ParseError(f"{self.what} must be between {self.low} and {self.high}.")
        return value


class Hours(Arg):
    """The time a review took, for the record (the price of a request is fixed per kind):
    quarter hours from a quarter of an hour to a working week."""

    LOW, HIGH = 0.25, 40.0

    def read(self, token: str) -> float:
        try:
            value = float(token.replace(",", "."))
        except ValueError:
            raise ParseError(f"hours must be a number like 1.5, not '{token[:20]}'.") from None
        quarters = value * 4
        if not (self.LOW <= value <= self.HIGH and abs(quarters - round(quarters)) < 1e-9):
            raise ParseError(
                f"Hours are the time you spent, in quarter hours from {self.LOW:g} to "
                f"{self.HIGH:g} (like 1.5); they are recorded, and the price of the request "
                "stays as it is."
            )
        return round(quarters) / 4


class Ref(Arg):
    def __init__(self, pattern: re.Pattern[str], prefix: str, what: str) -> None:
        self.pattern, self.prefix, self.what = pattern, prefix, what

    def looks_like(self, token: str) -> bool:
        return bool(self.pattern.match(token))

    def read(self, token: str) -> int:
        match = self.pattern.match(token)
        if not match:
            raise ParseError(
                f"'{token}' is not {self.what} number; they look like {self.prefix}-7."
            )
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
            raise ParseError(f"'{token[:20]}…' is too long (at most {self.max_len} characters).")
        return token


class Rest(Arg):
    rest = True

    def __init__(self, what: str = "text", max_len: int = 2000) -> None:
        self.what, self.max_len = what, max_len

    def read(self, token: str) -> str:
        if len(token) > self.max_len:
            raise ParseError(
                f"The {self.what} is too long ({len(token):,} characters; at most "
                f"{self.max_len:,}). Shorten it, or put the full text in a shared document "
                "and send its link."
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
            raise ParseError(f"'{token}' is not a tag; tags look like business-model or finance.")
        if not self.levels:
            if level:
                raise ParseError(f"'{token}': levels are not used here, just the tag.")
            return tag
        if not level:
            return (tag, 2)
        if level not in ("1", "2", "3"):
            raise ParseError(f"'{token}': the level after the colon must be 1, 2 or 3.")
        return (tag, int(level))


REQUEST = Ref(REQUEST_PATTERN, "R", "a request")
IDEA = Ref(IDEA_PATTERN, "I", "an idea")
