"""Every command of sif-bot as a typed, frozen dataclass with its name, role, usage and
summary (the help text lives next to the grammar); `spec_of` finds a command's entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from bot.commands.args import (
    IDEA,
    REQUEST,
    Amount,
    Arg,
    Choice,
    Hours,
    Int,
    Member,
    MemberRef,
    Rest,
    Tags,
    Word,
)
from bot.domain.records import Role

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
_BY_CLASS: dict[type[Any], Spec] = {}


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
        spec = Spec(name, role, usage, summary, cls, tuple(fields), reads_only, public)
        COMMANDS[name] = _BY_CLASS[cls] = spec
        return cls

    return register


def spec_of(cmd: object) -> Spec:
    return _BY_CLASS[type(cmd)]


M, S, A = Role.MEMBER, Role.STAFF, Role.ADMIN
# A review's feedback is often pages long: `done` reads this much, above the message limit.
REVIEW_CHARS = 12_000


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
    "profile show",
    M,
    "profile show",
    "Your peer profile as it is: expertise, languages, availability, pause and bio.",
    reads_only=True,
)
@dataclass(frozen=True)
class ProfileShow:
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
    "ideas",
    M,
    "ideas [all] [page]",
    "Your ideas and their status (staff: ideas all), 50 to a page.",
    reads_only=True,
)
@dataclass(frozen=True)
class Ideas:
    scope: Annotated[str | None, Choice("all")] = None
    page: Annotated[int, Int(1, 1_000_000, "The page")] = 1


@command(
    "idea",
    M,
    "idea <I-n>",
    "One idea: its answers, where it stands and its requests (owner, reviewers, staff).",
    reads_only=True,
)
@dataclass(frozen=True)
class IdeaShow:
    idea: Annotated[int, IDEA]


@command(
    "request",
    M,
    "request <I-n> [advice|feedback|review] [tag ...]",
    "Ask the network for help on your idea; a review costs 2 SIF, advice and feedback 1 SIF "
    "(by default), however long it takes.",
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


@command(
    "requests",
    M,
    "requests",
    "Your requests and the reviews you do or were offered, each with what happens next.",
    reads_only=True,
)
@dataclass(frozen=True)
class RequestsList:
    pass


@command(
    "status",
    M,
    "status",
    "Outside a conversation, the same as requests; inside one, where you are in it.",
    reads_only=True,
)
@dataclass(frozen=True)
class StatusOverview:
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
    "Deliver your review: the hours you spent (for the record; the price of the request is "
    f"fixed) and your feedback for the innovator (up to {REVIEW_CHARS:,} characters).",
)
@dataclass(frozen=True)
class Done:
    request: Annotated[int, REQUEST]
    hours: Annotated[float, Hours()]
    feedback: Annotated[str, Rest("feedback", REVIEW_CHARS)]


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
    "Credit SIF from the network account (welcome credit, events, prizes). A grant to "
    "yourself or a large one asks you to confirm it (grant confirm ...) and is posted to the "
    "staff channel.",
)
@dataclass(frozen=True)
class Grant:
    confirm: Annotated[str | None, Choice("confirm")] = dataclasses.field(
        default=None, kw_only=True
    )
    member: Annotated[MemberRef, Member()]
    amount: Annotated[int, Amount()]
    reason: Annotated[str, Rest("reason", 500)]


@command(
    "adjust",
    S,
    "adjust @member <±amount> <reason>",
    "A correction entry; earlier entries are never edited. Adjusting your own balance, or "
    "by a large amount, asks you to confirm it (adjust confirm ...) and is posted to the "
    "staff channel.",
)
@dataclass(frozen=True)
class Adjust:
    confirm: Annotated[str | None, Choice("confirm")] = dataclasses.field(
        default=None, kw_only=True
    )
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


@command(
    "link",
    M,
    "link [code [confirm]]",
    "Link another chat account (Slack, Matrix) to you; the bot says whom a code joins "
    "before you confirm.",
)
@dataclass(frozen=True)
class Link:
    code: Annotated[str | None, Word(32)] = None
    confirm: Annotated[str | None, Choice("confirm")] = None


@command(
    "merge",
    S,
    "merge [confirm] @member @member",
    "Join two members of one person when link cannot: the second's chat accounts, "
    "balance (by a ledger transfer), ideas, requests and reviews become the first's. It "
    "shows what it will do; merge confirm @member @member does it.",
)
@dataclass(frozen=True)
class Merge:
    confirm: Annotated[str | None, Choice("confirm")] = dataclasses.field(
        default=None, kw_only=True
    )
    keep: Annotated[MemberRef, Member()]
    gone: Annotated[MemberRef, Member()]


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
    "Introduce a member to your idea (staff: to any idea); the member and the idea's owner "
    "both get a short message.",
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
    "Erase your profile, answers and texts once your balance is not negative and nothing is "
    "open; a positive balance goes to the network; ledger entries stay, anonymised.",
)
@dataclass(frozen=True)
class Forget:
    confirm: Annotated[str | None, Choice("confirm")] = None
