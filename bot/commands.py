"""Parse a line of text into a typed command, or a friendly ParseError (SPEC §3).

Each command is a frozen dataclass registered with :func:`command`; its fields'
``Annotated`` metadata says how to read each argument, so the grammar, the usage
line and the help text live together in one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from bot.domain.ledger import AmountError, parse_amount
from bot.domain.records import Role

TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
REQUEST_PATTERN = re.compile(r"^[rR]-?(\d{1,9})$|^(\d{1,9})$")
IDEA_PATTERN = re.compile(r"^[iI]-?(\d{1,9})$|^(\d{1,9})$")
# `<@slack:T01:U02>` is how adapters write a platform mention; `@ann` is typed by hand.
MENTION_PATTERN = re.compile(r"^<@([a-z]+):([^>\s]+)>$|^@(\S+)$")


class ParseError(ValueError):
    """Bad input; the message is one sentence for the person who typed it."""


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
    def read(self, token: str) -> float:
        try:
            value = float(token.replace(",", "."))
        except ValueError:
            raise ParseError(f"hours must be a number like 1.5, not '{token}'.") from None
        if not 0 < value <= 200:
            raise ParseError("hours must be more than 0 and at most 200.")
        return value


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
            raise ParseError(f"'{token}' should be one of: {', '.join(self.options)}.")
        return token.lower()


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
            raise ParseError(f"The {self.what} is too long (at most {self.max_len} characters).")
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


# -- the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    role: Role
    usage: str
    summary: str
    cls: type[Any]
    fields: tuple[tuple[str, Arg, bool], ...]  # (field name, how to read it, required)
    reads_only: bool = False  # changes nothing: its answer may ride on the platform's ack
    public: bool = False  # answers for everyone where it was asked, never privately


COMMANDS: dict[str, Spec] = {}


def command(
    name: str,
    role: Role,
    usage: str,
    summary: str,
    *,
    reads_only: bool = False,
    public: bool = False,
) -> Callable[[type[Any]], type[Any]]:
    def register(cls: type[Any]) -> type[Any]:
        hints = get_type_hints(cls, include_extras=True)
        fields: list[tuple[str, Arg, bool]] = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if get_origin(hint) is not Annotated:
                raise TypeError(f"{cls.__name__}.{f.name} needs Annotated[..., Arg]")
            reader = next(a for a in get_args(hint)[1:] if isinstance(a, Arg))
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            fields.append((f.name, reader, required))
        COMMANDS[name] = Spec(name, role, usage, summary, cls, tuple(fields), reads_only, public)
        cls.spec = COMMANDS[name]
        return cls

    return register


def spec_of(cmd: object) -> Spec:
    spec: Spec = type(cmd).spec  # type: ignore[attr-defined]
    return spec


M, S, A = Role.MEMBER, Role.STAFF, Role.ADMIN


@command(
    "help", M, "help [command]", "List the commands you can use, or explain one.", reads_only=True
)
@dataclass(frozen=True)
class Help:
    topic: Annotated[str | None, Rest("command name", 64)] = None


@command("intake", M, "intake", "Start (or resume) the intake conversation for a new idea.")
@dataclass(frozen=True)
class Intake:
    pass


@command("profile", M, "profile", "Describe yourself as a peer: expertise, languages, capacity.")
@dataclass(frozen=True)
class Profile:
    pass


@command(
    "expertise add",
    M,
    "expertise add <tag>[:level] ...",
    "Add expertise tags, each with a level 1-3 (default 2), e.g. expertise add finance:3 legal.",
)
@dataclass(frozen=True)
class ExpertiseAdd:
    tags: Annotated[tuple[tuple[str, int], ...], Tags(levels=True)]


@command("expertise remove", M, "expertise remove <tag> ...", "Remove expertise tags.")
@dataclass(frozen=True)
class ExpertiseRemove:
    tags: Annotated[tuple[str, ...], Tags()]


@command(
    "availability",
    M,
    "availability <n>",
    "Take at most n open reviews at once (0-10; default 2).",
)
@dataclass(frozen=True)
class Availability:
    count: Annotated[int, Int(0, 10, "The number of open reviews")]


@command(
    "pause",
    M,
    "pause [days]",
    "Stop receiving review offers, for a number of days or until resume.",
)
@dataclass(frozen=True)
class Pause:
    days: Annotated[int | None, Int(1, 365, "The number of days")] = None


@command("resume", M, "resume", "Receive review offers again.")
@dataclass(frozen=True)
class Resume:
    pass


@command(
    "ideas", M, "ideas [all]", "Your ideas and their status (staff: ideas all).", reads_only=True
)
@dataclass(frozen=True)
class Ideas:
    scope: Annotated[str | None, Choice("all")] = None


@command(
    "request",
    M,
    "request <I-n> [advice|feedback|review] [tag ...]",
    "Ask the network for help on your idea (advice 1, feedback 1, review 2 SIF).",
)
@dataclass(frozen=True)
class RequestHelp:
    idea: Annotated[int, IDEA]
    kind: Annotated[str, Choice("advice", "feedback", "review")] = "review"
    tags: Annotated[tuple[str, ...], Tags()] = ()


@command("offers", M, "offers", "Review requests offered to you.", reads_only=True)
@dataclass(frozen=True)
class Offers:
    pass


@command("accept", M, "accept <R-n>", "Accept a review request offered to you.")
@dataclass(frozen=True)
class Accept:
    request: Annotated[int, REQUEST]


@command("decline", M, "decline <R-n> [reason]", "Decline an offer; it passes to the next peer.")
@dataclass(frozen=True)
class Decline:
    request: Annotated[int, REQUEST]
    reason: Annotated[str, Rest("reason", 500)] = ""


@command(
    "done",
    M,
    "done <R-n> <hours> <feedback text>",
    "Deliver your review: the hours you spent and your feedback for the innovator.",
)
@dataclass(frozen=True)
class Done:
    request: Annotated[int, REQUEST]
    hours: Annotated[float, Hours()]
    feedback: Annotated[str, Rest("feedback", 3500)]


@command(
    "thanks",
    M,
    "thanks <R-n> [1-5] [comment]",
    "Confirm a review was delivered; releases the SIF to the peer.",
)
@dataclass(frozen=True)
class Thanks:
    request: Annotated[int, REQUEST]
    rating: Annotated[int | None, Int(1, 5, "The rating")] = None
    comment: Annotated[str, Rest("comment", 1000)] = ""


@command(
    "dispute", M, "dispute <R-n> <reason>", "Hold the payment of a review and ask staff to look."
)
@dataclass(frozen=True)
class Dispute:
    request: Annotated[int, REQUEST]
    reason: Annotated[str, Rest("reason", 1000)]


@command("cancel", M, "cancel [R-n]", "Cancel your request (refunded) or the current conversation.")
@dataclass(frozen=True)
class Cancel:
    request: Annotated[int | None, REQUEST] = None


@command(
    "balance",
    M,
    "balance [@member]",
    "Your SIF balance, held SIF and credit limit.",
    reads_only=True,
)
@dataclass(frozen=True)
class Balance:
    member: Annotated[MemberRef | None, Member()] = None


@command(
    "history",
    M,
    "history [@member]",
    "Your latest ledger entries with their reasons.",
    reads_only=True,
)
@dataclass(frozen=True)
class History:
    member: Annotated[MemberRef | None, Member()] = None


@command("tags", M, "tags", "The expertise tags of this community.", reads_only=True)
@dataclass(frozen=True)
class TagsList:
    pass


@command(
    "balances",
    S,
    "balances [negative|@member]",
    "A table of all balances, lowest and highest first.",
    reads_only=True,
    public=True,
)
@dataclass(frozen=True)
class Balances:
    member: Annotated[MemberRef | None, Member()] = None
    filter: Annotated[str | None, Choice("negative")] = None


@command(
    "stats",
    S,
    "stats [days]",
    "Requests, acceptance, SIF in circulation, busiest peers.",
    reads_only=True,
    public=True,
)
@dataclass(frozen=True)
class Stats:
    days: Annotated[int, Int(1, 3650, "The number of days")] = 30


@command(
    "grant",
    S,
    "grant @member <amount> <reason>",
    "Credit SIF from the network account (welcome credit, events, prizes).",
)
@dataclass(frozen=True)
class Grant:
    member: Annotated[MemberRef, Member()]
    amount: Annotated[int, Amount()]
    reason: Annotated[str, Rest("reason", 500)]


@command(
    "adjust",
    S,
    "adjust @member <±amount> <reason>",
    "A correction entry; earlier entries are never edited.",
)
@dataclass(frozen=True)
class Adjust:
    member: Annotated[MemberRef, Member()]
    amount: Annotated[int, Amount(signed=True)]
    reason: Annotated[str, Rest("reason", 500)]


@command("assign", S, "assign <R-n> @peer", "Offer a stuck request to a chosen peer.")
@dataclass(frozen=True)
class Assign:
    request: Annotated[int, REQUEST]
    peer: Annotated[MemberRef, Member()]


@command("resolve", S, "resolve <R-n> pay|refund [note]", "End a dispute: pay the peer or refund.")
@dataclass(frozen=True)
class Resolve:
    request: Annotated[int, REQUEST]
    outcome: Annotated[str, Choice("pay", "refund")]
    note: Annotated[str, Rest("note", 500)] = ""


@command("role", A, "role @member member|staff|admin", "Change a member's role.")
@dataclass(frozen=True)
class SetRole:
    member: Annotated[MemberRef, Member()]
    role: Annotated[str, Choice("member", "staff", "admin")]


@command("export", S, "export [ledger|members|requests]", "A CSV of the community's data.")
@dataclass(frozen=True)
class Export:
    what: Annotated[str, Choice("ledger", "members", "requests")] = "ledger"


@command("link", M, "link [code]", "Link another chat account (Slack, Matrix) to you.")
@dataclass(frozen=True)
class Link:
    code: Annotated[str | None, Word(32)] = None


@command(
    "find",
    M,
    "find <tag or word> ...",
    "Find members by expertise, name or what they offer.",
    reads_only=True,
)
@dataclass(frozen=True)
class Find:
    words: Annotated[str, Rest("search", 200)]


@command(
    "intro",
    M,
    "intro @member <I-n> [note]",
    "Introduce a member to your idea; both of you get a short message.",
)
@dataclass(frozen=True)
class Intro:
    member: Annotated[MemberRef, Member()]
    idea: Annotated[int, IDEA]
    note: Annotated[str, Rest("note", 500)] = ""


@command("mydata", M, "mydata", "Sends you a file with everything sif-bot stores about you.")
@dataclass(frozen=True)
class MyData:
    pass


@command(
    "forget",
    M,
    "forget [confirm]",
    "Remove your profile and answers; ledger entries stay, anonymised, so totals stay true.",
)
@dataclass(frozen=True)
class Forget:
    confirm: Annotated[str | None, Choice("confirm")] = None


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
        raise ParseError("Type a command, for example `help`.")
    word = tokens[0][0].lower()
    words = _command_words()
    if word not in words:
        close = suggest(word)
        hint = f" Did you mean `{close}`?" if close else ""
        shown = word if len(word) <= 30 else word[:30] + "…"
        raise ParseError(f"I don't know the command '{shown}'.{hint} Type `help` for the list.")
    name = word
    rest = tokens[1:]
    if words[word] != [""]:
        subs = [s for s in words[word] if s]
        sub = rest[0][0].lower() if rest else ""
        if sub not in subs:
            raise ParseError(
                f"`{word}` needs one of: {', '.join(subs)}; "
                f"for example `{COMMANDS[f'{word} {subs[0]}'].usage}`."
            )
        name = f"{word} {sub}"
        rest = rest[1:]
    spec = COMMANDS[name]
    return _bind(spec, text, rest)


def _bind(spec: Spec, text: str, tokens: list[tuple[str, int]]) -> Any:
    values: dict[str, Any] = {}
    i = 0
    usage = f"Usage: `{spec.usage}`."
    for fname, reader, required in spec.fields:
        if i >= len(tokens):
            if required:
                raise ParseError(f"`{spec.name}` needs more: {usage}")
            continue
        token, start = tokens[i]
        if reader.rest:
            values[fname] = reader.read(text[start:].strip())
            i = len(tokens)
            continue
        if reader.many:
            items = []
            while i < len(tokens):
                items.append(_read(reader, tokens[i][0], usage))
                i += 1
            if required and not items:
                raise ParseError(f"`{spec.name}` needs more: {usage}")
            values[fname] = tuple(dict.fromkeys(items))
            continue
        if not required and not reader.looks_like(token):
            continue
        values[fname] = _read(reader, token, usage)
        i += 1
    if i < len(tokens):
        extra = " ".join(t for t, _ in tokens[i:])
        extra = extra if len(extra) <= 30 else extra[:30] + "…"
        raise ParseError(f"I did not expect '{extra}' after `{spec.name}`. {usage}")
    return spec.cls(**values)


def _read(reader: Arg, token: str, usage: str) -> Any:
    try:
        return reader.read(token)
    except ParseError as exc:
        raise ParseError(f"{exc} {usage}") from None
