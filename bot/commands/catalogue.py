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
from bot.i18n import N_, normalize

# -- the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    role: Role
    usage: str  # command syntax: the same in every language
    summary: str  # English, marked with N_: translate it where it is shown, `_(summary)`
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
    "help",
    M,
    "help [command]",
    N_("List the commands you can use, or explain one."),
    reads_only=True,
)
@dataclass(frozen=True)
class Help:
    topic: Annotated[str | None, Rest("command name", 64)] = None


@command("intake", M, "intake", N_("Start (or resume) the intake conversation for a new idea."))
@dataclass(frozen=True)
class Intake:
    pass


@command(
    "profile", M, "profile", N_("Describe yourself as a peer: expertise, languages, capacity.")
)
@dataclass(frozen=True)
class Profile:
    pass


@command(
    "profile show",
    M,
    "profile show",
    N_("Your peer profile as it is: expertise, languages, availability, pause and bio."),
    reads_only=True,
)
@dataclass(frozen=True)
class ProfileShow:
    pass


@command(
    "expertise add",
    M,
    "expertise add <tag>[:level] ...",
    N_(
        "Add expertise tags, each with a level 1-3 (default 2), e.g. expertise add finance:3 legal."
    ),
)
@dataclass(frozen=True)
class ExpertiseAdd:
    tags: Annotated[tuple[tuple[str, int], ...], Tags(levels=True)]


@command("expertise remove", M, "expertise remove <tag> ...", N_("Remove expertise tags."))
@dataclass(frozen=True)
class ExpertiseRemove:
    tags: Annotated[tuple[str, ...], Tags()]


@command(
    "availability",
    M,
    "availability <n>",
    N_("Take at most n open reviews at once (0-10; default 2)."),
)
@dataclass(frozen=True)
class Availability:
    count: Annotated[int, Int(0, 10, N_("The number of open reviews"))]


@command(
    "pause",
    M,
    "pause [days]",
    N_("Stop receiving review offers, for a number of days or until resume."),
)
@dataclass(frozen=True)
class Pause:
    days: Annotated[int | None, Int(1, 365, N_("The number of days"))] = None


@command("resume", M, "resume", N_("Receive review offers again."))
@dataclass(frozen=True)
class Resume:
    pass


@command(
    "ideas",
    M,
    "ideas [all] [page]",
    N_("Your ideas and their status (staff: ideas all), 50 to a page."),
    reads_only=True,
)
@dataclass(frozen=True)
class Ideas:
    scope: Annotated[str | None, Choice("all")] = None
    page: Annotated[int, Int(1, 1_000_000, N_("The page"))] = 1


@command(
    "idea",
    M,
    "idea <I-n>",
    N_("One idea: its answers, where it stands and its requests (owner, reviewers, staff)."),
    reads_only=True,
)
@dataclass(frozen=True)
class IdeaShow:
    idea: Annotated[int, IDEA]


@command(
    "request",
    M,
    "request <I-n> [advice|feedback|review] [tag ...]",
    N_(
        "Ask the network for help on your idea; a review costs 2 SIF, advice and feedback 1 SIF "
        "(by default), however long it takes."
    ),
)
@dataclass(frozen=True)
class RequestHelp:
    idea: Annotated[int, IDEA]
    kind: Annotated[str, Choice("advice", "feedback", "review")] = "review"
    tags: Annotated[tuple[str, ...], Tags()] = ()


@command("offers", M, "offers", N_("Review requests offered to you."), reads_only=True)
@dataclass(frozen=True)
class Offers:
    pass


@command(
    "requests",
    M,
    "requests",
    N_("Your requests and the reviews you do or were offered, each with what happens next."),
    reads_only=True,
)
@dataclass(frozen=True)
class RequestsList:
    pass


@command(
    "status",
    M,
    "status",
    N_("Outside a conversation, the same as requests; inside one, where you are in it."),
    reads_only=True,
)
@dataclass(frozen=True)
class StatusOverview:
    pass


@command("accept", M, "accept <R-n>", N_("Accept a review request offered to you."))
@dataclass(frozen=True)
class Accept:
    request: Annotated[int, REQUEST]


@command(
    "decline", M, "decline <R-n> [reason]", N_("Decline an offer; it passes to the next peer.")
)
@dataclass(frozen=True)
class Decline:
    request: Annotated[int, REQUEST]
    reason: Annotated[str, Rest("reason", 500)] = ""


@command(
    "done",
    M,
    "done <R-n> <hours> <feedback text>",
    N_(
        "Deliver your review: the hours you spent (for the record; the price of the request "
        "is fixed) and your feedback for the innovator (up to 12,000 characters)."
    ),
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
    N_("Confirm a review was delivered; releases the SIF to the peer."),
)
@dataclass(frozen=True)
class Thanks:
    request: Annotated[int, REQUEST]
    rating: Annotated[int | None, Int(1, 5, N_("The rating"))] = None
    comment: Annotated[str, Rest("comment", 1000)] = ""


@command(
    "dispute",
    M,
    "dispute <R-n> <reason>",
    N_("Hold the payment of a review and ask staff to look."),
)
@dataclass(frozen=True)
class Dispute:
    request: Annotated[int, REQUEST]
    reason: Annotated[str, Rest("reason", 1000)]


@command(
    "forward",
    M,
    "forward <R-n> [partner]",
    N_(
        "Send an open request to the network of factories now (your own; staff: any), to "
        "a partner you name or the one that fits it best."
    ),
)
@dataclass(frozen=True)
class Forward:
    request: Annotated[int, REQUEST]
    partner: Annotated[str | None, Word()] = None


@command(
    "cancel", M, "cancel [R-n]", N_("Cancel your request (refunded) or the current conversation.")
)
@dataclass(frozen=True)
class Cancel:
    request: Annotated[int | None, REQUEST] = None


@command(
    "balance",
    M,
    "balance [@member]",
    N_("Your SIF balance, held SIF and credit limit."),
    reads_only=True,
)
@dataclass(frozen=True)
class Balance:
    member: Annotated[MemberRef | None, Member()] = None


@command(
    "history",
    M,
    "history [@member]",
    N_("Your latest ledger entries with their reasons."),
    reads_only=True,
)
@dataclass(frozen=True)
class History:
    member: Annotated[MemberRef | None, Member()] = None


@command(
    "language",
    M,
    "language [code]",
    N_("Shows the language I speak to you and the choices; language nl chooses Dutch."),
)
@dataclass(frozen=True)
class LanguageChoice:
    code: Annotated[str | None, Word()] = None


@command("tags", M, "tags", N_("The expertise tags of this community."), reads_only=True)
@dataclass(frozen=True)
class TagsList:
    pass


@command(
    "network",
    S,
    "network",
    N_(
        "The partner factories of this node: when each was last heard from, messages "
        "waiting for it, its mirror balance and the requests crossing to or from it."
    ),
    reads_only=True,
    public=True,
)
@dataclass(frozen=True)
class NetworkOverview:
    pass


@command(
    "balances",
    S,
    "balances [negative|@member]",
    N_("A table of all balances, lowest and highest first."),
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
    N_("Requests, acceptance, SIF in circulation, busiest peers."),
    reads_only=True,
    public=True,
)
@dataclass(frozen=True)
class Stats:
    days: Annotated[int, Int(1, 3650, N_("The number of days"))] = 30


@command(
    "grant",
    S,
    "grant @member <amount> <reason>",
    N_(
        "Credit SIF from the network account (welcome credit, events, prizes). A grant to "
        "yourself or a large one asks you to confirm it (grant confirm ...) and is posted to the "
        "staff channel."
    ),
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
    N_(
        "A correction entry; earlier entries are never edited. Adjusting your own balance, or "
        "by a large amount, asks you to confirm it (adjust confirm ...) and is posted to the "
        "staff channel."
    ),
)
@dataclass(frozen=True)
class Adjust:
    confirm: Annotated[str | None, Choice("confirm")] = dataclasses.field(
        default=None, kw_only=True
    )
    member: Annotated[MemberRef, Member()]
    amount: Annotated[int, Amount(signed=True)]
    reason: Annotated[str, Rest("reason", 500)]


@command("assign", S, "assign <R-n> @peer", N_("Offer a stuck request to a chosen peer."))
@dataclass(frozen=True)
class Assign:
    request: Annotated[int, REQUEST]
    peer: Annotated[MemberRef, Member()]


@command(
    "resolve", S, "resolve <R-n> pay|refund [note]", N_("End a dispute: pay the peer or refund.")
)
@dataclass(frozen=True)
class Resolve:
    request: Annotated[int, REQUEST]
    outcome: Annotated[str, Choice("pay", "refund")]
    note: Annotated[str, Rest("note", 500)] = ""


@command("role", A, "role @member member|staff|admin", N_("Change a member's role."))
@dataclass(frozen=True)
class SetRole:
    member: Annotated[MemberRef, Member()]
    role: Annotated[str, Choice("member", "staff", "admin")]


@command("export", S, "export [ledger|members|requests]", N_("A CSV of the community's data."))
@dataclass(frozen=True)
class Export:
    what: Annotated[str, Choice("ledger", "members", "requests")] = "ledger"


@command(
    "link",
    M,
    "link [code [confirm]]",
    N_(
        "Link another chat account (Slack, Matrix) to you; the bot says whom a code joins "
        "before you confirm."
    ),
)
@dataclass(frozen=True)
class Link:
    code: Annotated[str | None, Word(32)] = None
    confirm: Annotated[str | None, Choice("confirm")] = None


@command(
    "merge",
    S,
    "merge [confirm] @member @member",
    N_(
        "Join two members of one person when link cannot: the second's chat accounts, "
        "balance (by a ledger transfer), ideas, requests and reviews become the first's. It "
        "shows what it will do; merge confirm @member @member does it."
    ),
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
    N_("Find members by expertise, name or what they offer."),
    reads_only=True,
)
@dataclass(frozen=True)
class Find:
    words: Annotated[str, Rest("search", 200)]


@command(
    "intro",
    M,
    "intro @member <I-n> [note]",
    N_(
        "Introduce a member to your idea (staff: to any idea); the member and the idea's owner "
        "both get a short message."
    ),
)
@dataclass(frozen=True)
class Intro:
    member: Annotated[MemberRef, Member()]
    idea: Annotated[int, IDEA]
    note: Annotated[str, Rest("note", 500)] = ""


@command(
    "similar",
    M,
    "similar <I-n>",
    N_(
        "Up to 3 ideas of the community like yours, why, and a button to introduce their "
        "owners (staff: for any idea)."
    ),
    reads_only=True,
)
@dataclass(frozen=True)
class SimilarIdeas:
    idea: Annotated[int, IDEA]


@command(
    "similar hide",
    M,
    "similar hide",
    N_("Keep your ideas out of the similar ideas others are shown."),
)
@dataclass(frozen=True)
class SimilarHide:
    pass


@command(
    "similar show",
    M,
    "similar show",
    N_("Let your ideas be shown to others as similar ideas again (the default)."),
)
@dataclass(frozen=True)
class SimilarShow:
    pass


@command("mydata", M, "mydata", N_("Sends you a file with everything sif-bot stores about you."))
@dataclass(frozen=True)
class MyData:
    pass


@command(
    "forget",
    M,
    "forget [confirm]",
    N_(
        "Erase your profile, answers and texts once your balance is not negative and nothing is "
        "open; a positive balance goes to the network; ledger entries stay, anonymised."
    ),
)
@dataclass(frozen=True)
class Forget:
    confirm: Annotated[str | None, Choice("confirm")] = None


# The `done` summary says the limit in words (a sentence with a number in its own format
# in each language); it must say the limit the parser keeps.
if f"{REVIEW_CHARS:,}" not in COMMANDS["done"].summary:
    raise RuntimeError("the summary of `done` must state REVIEW_CHARS")


# -- aliases in other languages ---------------------------------------------------------

# Commands keep their English names in every language; a language may add a few words of
# its own for the commonest ones (listed in its `help`). The parser takes an alias in any
# language, whatever the person's language is set to; the English names always work.
ALIASES: dict[str, dict[str, str]] = {
    "nl": {"saldo": "balance", "hulp": "help", "taal": "language"},
    "fr": {"solde": "balance", "aide": "help", "langue": "language"},
    "de": {"kontostand": "balance", "hilfe": "help", "sprache": "language"},
}
# every alias, of any language: the English command word it stands for
ALIAS_OF: dict[str, str] = {
    alias: name for table in ALIASES.values() for alias, name in table.items()
}


def aliases_for(code: str | None) -> dict[str, str]:
    """A language's aliases, {alias: English command} ("saldo": "balance" for nl)."""
    return dict(ALIASES.get(normalize(code) or "", {}))


def resolve_alias(word: str) -> str:
    """The English command word for an alias of any language ("saldo": "balance"); any
    other word as it is."""
    return ALIAS_OF.get(word.lower(), word)


def _check_aliases() -> None:
    words = {name.split(" ")[0] for name in COMMANDS}
    for alias, name in ALIAS_OF.items():
        if name not in words:
            raise RuntimeError(f"alias {alias!r} names no command: {name!r}")
        if alias in words:
            raise RuntimeError(f"alias {alias!r} is a command's own name")
    if len(ALIAS_OF) != sum(len(table) for table in ALIASES.values()):
        raise RuntimeError("two languages give one alias to different commands")


_check_aliases()
