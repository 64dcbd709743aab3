"""Offering requests to peers: rounds, escalation and the messages they cause.

Shared by the request handlers and the scheduler's sweeps; the ranking itself is
the pure `bot.domain.routing`. Everything here runs inside the caller's unit of work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from babel import Locale
from babel.dates import format_date, format_time

from bot.app import lifecycle, network, similar
from bot.app.notices import Notice, Notices
from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import HelpRequest, Idea, OfferStatus, RequestStatus
from bot.domain.requests import Move, kind_words
from bot.domain.routing import Candidate, Need
from bot.i18n import DEFAULT, N_, _, current, plural, sif, speaking
from bot.messages import Actions, Button, Parts, Text, say
from bot.ports import UnitOfWork
from bot.settings import Settings
from conversations.answers import Question, format_answer
from conversations.engine import Flow

FAIRNESS_DAYS = 90
SHORT_SUMMARY = 300  # characters of the summary an offer shows
# Intake answers a reviewer never sees: the title is in the request's own line, and ways to
# reach the innovator (a community's flow may ask for them) stay with staff.
NOT_FOR_REVIEWERS = frozenset({"title", "contact", "email", "phone", "address"})
_ANY = Question("answer", "")  # formats an answer without its question (choices, lists)


def idea_languages(idea: Idea) -> frozenset[str]:
    value = idea.answers.get("language")
    items = value.get("choices", []) if isinstance(value, dict) else value or []
    if isinstance(items, str):
        items = [items]
    return frozenset(str(i).lower() for i in items if str(i).lower() != "other")


# -- words shared by the request handlers, the status lists and the sweeps ------------

# A kind of help as a noun ("review of I-3") and as it reads in a sentence ("the price of
# a review"), in the language being written in.
_KIND_NAMES = {"review": N_("review"), "advice": N_("advice"), "feedback": N_("feedback")}
_KIND_PHRASES = {"review": N_("a review"), "advice": N_("advice"), "feedback": N_("feedback")}
# A request's status as people read it (`RequestStatus.label`).
_STATUS_LABELS = {
    "open": N_("open"),
    "escalated": N_("escalated"),
    "accepted": N_("accepted"),
    "delivered": N_("delivered"),
    "confirmed": N_("confirmed"),
    "disputed": N_("disputed"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
}


def kind_name(kind: str) -> str:
    """'review', 'advice': the kind as a noun, in the language being written in."""
    return _(_KIND_NAMES[kind]) if kind in _KIND_NAMES else kind


def kind_phrase(kind: str) -> str:
    """'a review', 'advice' (`kind_words`) in the language being written in."""
    return _(_KIND_PHRASES[kind]) if kind in _KIND_PHRASES else kind_words(kind)


def capitalized(text: str) -> str:
    """A sentence that may start with a value ('a review costs…') with a capital first
    letter, in whichever language it was written."""
    return text[:1].upper() + text[1:]


def capitalized_parts(parts: Parts) -> Parts:
    """`capitalized` for a sentence in parts (its first part, when that is text)."""
    if parts and isinstance(parts[0], Text):
        return (Text(capitalized(parts[0].text)), *parts[1:])
    return parts


def status_label(status: RequestStatus) -> str:
    """'accepted', 'delivered': a request's status in the language being written in."""
    label = status.label
    return _(_STATUS_LABELS[label]) if label in _STATUS_LABELS else label


def shown_date(value: date) -> str:
    """A date as people read it: 2026-03-09 in English, the language's own way otherwise
    ("9 mrt 2026")."""
    code = current()
    if code == DEFAULT:
        return f"{value:%Y-%m-%d}"
    return format_date(value, format="medium", locale=code)


def shown_moment(value: datetime) -> str:
    """A date and time (UTC, which the sentence says): 2026-03-09 14:05 in English, the
    language's own way otherwise ("9 mrt 2026, 14:05")."""
    code = current()
    if code == DEFAULT:
        return f"{value:%Y-%m-%d %H:%M}"
    pattern = str(Locale.parse(code).datetime_formats["medium"])
    return pattern.replace("{1}", format_date(value, format="medium", locale=code)).replace(
        "{0}", format_time(value, format="short", locale=code)
    )


def describe(request: HelpRequest) -> str:
    values = {
        "ref": request.ref,
        "kind": kind_name(request.kind),
        "idea": request.idea_number,
        "title": request.idea_title,
        "requester": request.requester_name,
        "price": sif(request.price),
    }
    if request.tags:
        return _(
            "{ref}: {kind} of I-{idea} \u201c{title}\u201d by {requester} ({price}, needs {tags})"
        ).format(tags=", ".join(request.tags), **values)
    return _("{ref}: {kind} of I-{idea} \u201c{title}\u201d by {requester} ({price})").format(
        **values
    )


def offer_buttons(request: HelpRequest) -> tuple[Button, ...]:
    return (
        Button(_("Accept"), f"accept {request.ref}"),
        Button(_("Decline"), f"decline {request.ref}"),
    )


def with_offer_buttons(body: Parts, request: HelpRequest) -> Parts:
    """An offer's text and its buttons as one body, so that a notice writes the buttons'
    labels in the recipient's language too (the same parts as passing them as buttons)."""
    return (*body, Actions(offer_buttons(request)))


async def rank_round(
    uow: UnitOfWork,
    settings: Settings,
    community: CommunityId,
    requester: MemberId,
    tags: Sequence[str],
    idea: Idea | None,
    excluded: frozenset[MemberId],
    now: datetime,
) -> list[Candidate]:
    """The peers to offer a request's next round to, best first (reads only).

    With `Settings.sif_affinity`, text affinity breaks ties (SPEC §14) and the
    explanation of a peer it put first says why."""
    # Only peers who could take a review now: the others are never eligible, and leaving
    # them out of the index changes no ranking (routing orders each peer by its own keys).
    # With none left the request escalates to staff (`offer_next`).
    index = await uow.routing.peer_index(community, now, now - timedelta(days=FAIRNESS_DAYS))
    need = Need(
        requester=requester,
        co_owners=frozenset(),
        tags=tuple(tags),
        languages=idea_languages(idea) if idea else frozenset(),
        excluded=excluded,
    )
    if not settings.sif_affinity or idea is None or not len(index):
        return index.rank(need, now, settings.sif_fanout)
    hint = settings.sif_language
    corpus, terms, close = await similar.affinities(uow, community, idea, hint)
    ranked = index.rank(need, now, settings.sif_fanout, close)
    near = [c.member for c in ranked if c.affinity > 0]
    if not near:
        return ranked
    peers = await uow.members.get_many(near)
    explained = []
    for candidate in ranked:
        peer = peers.get(candidate.member)
        why = similar.affinity_reason(corpus, peer, terms, hint) if peer else None
        if why:
            candidate = replace(candidate, explanation=f"{candidate.explanation}; {why}")
        explained.append(candidate)
    return explained


async def offer_next(
    uow: UnitOfWork,
    notices: Notices,
    settings: Settings,
    request: HelpRequest,
    now: datetime,
    ranked: list[Candidate] | None = None,
) -> int:
    """Start the next round of offers for an open request, or escalate; returns offers made.

    Waits while an offer of the current round is still open (fan-out above 1). `ranked`
    is the round's ranking when the caller made it already (`rank_round`): a new request
    is ranked before it takes its number, so the community's request counter stays
    locked only briefly while concurrent requests are routed.
    """
    offers = await uow.requests.offers(request.id)
    if any(o.status is OfferStatus.OFFERED for o in offers):
        return 0
    idea = await uow.ideas.by_number(request.community, request.idea_number)
    if request.round >= settings.sif_max_rounds:
        if await network.forward(uow, notices, settings, request, idea, now, local_left=False):
            return 0
        rounds = request.round
        await escalate(uow, notices, request, lambda: _no_taker(rounds), now)
        return 0
    excluded = frozenset(o.peer for o in offers)
    candidates = (
        [c for c in ranked if c.member not in excluded]
        if ranked is not None
        else await rank_round(
            uow, settings, request.community, request.requester, request.tags, idea, excluded, now
        )
    )
    sent = await network.forward(
        uow, notices, settings, request, idea, now, local_left=bool(candidates)
    )
    if sent:
        return 0
    if not candidates:
        reason = NO_PEER_LEFT if offers else NO_PEER
        await escalate(uow, notices, request, lambda: _(reason), now)
        return 0
    round_ = request.round + 1
    if not await lifecycle.move(uow, request.id, Move.OFFER, round=round_):
        return 0  # cancelled or taken meanwhile: nothing to offer
    ttl = timedelta(hours=settings.sif_offer_ttl_hours)
    # The round's offers in one statement and its messages with one lookup, in rank order.
    await uow.requests.add_offers(
        request.id,
        round_,
        [(c.member, c.explanation) for c in candidates],
        now,
        now + ttl,
        now + ttl / 2,
    )
    until = now + ttl

    def offer(why: str) -> Callable[[], Parts]:
        # written in each peer's language, with that peer's reason
        return lambda: with_offer_buttons(offer_text(request, idea, why, until), request)

    await notices.dm_ids(
        [Notice(c.member, offer(c.explanation), "offer", request.ref) for c in candidates]
    )
    return len(candidates)


def offer_text(request: HelpRequest, idea: Idea | None, why: str, until: datetime) -> Parts:
    """The offer: the request, a short version of the idea (its stage and the start of its
    summary), why this peer, the price; accepting shows every answer (`reviewer_answers`)."""
    short = []
    if idea is not None and idea.answers.get("stage") not in (None, ""):
        stage = format_answer(_ANY, idea.answers["stage"])
        short.append(_("Stage: {stage}.").format(stage=stage))
    summary = " ".join(str(idea.answers.get("summary", "")).split()) if idea else ""
    if summary:
        cut = len(summary) > SHORT_SUMMARY
        short.append(summary[:SHORT_SUMMARY].rstrip() + ("…" if cut else ""))
    return say(
        "Can you help? {request}.{about}\nWhy you: {why}.\n"
        "It pays {price}, the fixed price of {kind}. `accept {ref}` or `decline {ref} [reason]` "
        "before {until} UTC; accepting shows you all of the idea's answers.",
        request=describe(request),
        about="\n" + " ".join(short) if short else "",
        why=_why(why),
        price=sif(request.price),
        kind=kind_phrase(request.kind),
        ref=request.ref,
        until=shown_moment(until),
    )


def reviewer_answers(flow: Flow | None, idea: Idea, *, everything: bool = False) -> list[str]:
    """Every intake answer a reviewer sees, "Label: answer", in the flow's order: all of
    them but the title (the request names it) and ways to reach the innovator, which
    stay with staff (`everything`: the owner and staff see those too). Answers the flow
    no longer asks keep their id as the label."""
    questions = {q.id: q for q in flow.questions} if flow is not None else {}
    keys = [
        *(k for k in questions if k in idea.answers),
        *(k for k in idea.answers if k not in questions),
    ]
    lines = []
    for key in keys:
        value = idea.answers[key]
        hidden = key == "title" or (key in NOT_FOR_REVIEWERS and not everything)
        if hidden or value in (None, "", [], {}):
            continue
        question = questions.get(key)
        label = _(question.label) if question is not None else key.replace("_", " ").capitalize()
        text = format_answer(question or _ANY, value).replace("\n", "\n    ")
        lines.append(_("{label}: {shown}").format(label=label, shown=text))
    return lines


# Why a request went to staff: kept with it (its note) in English, told in each reader's
# language (`escalation_reason`).
NO_PEER = N_("no peer is eligible")
NO_PEER_LEFT = N_("no eligible peer is left")
_NO_TAKER = re.compile(r"nobody accepted it in (\d+) rounds? of offers")


def _no_taker(rounds: int) -> str:
    return _("nobody accepted it in {rounds} of offers").format(
        rounds=plural(rounds, "round", "rounds")
    )


def escalation_reason(note: str) -> str:
    """An escalation's stored (English) reason in the language being written in; other
    notes as they are."""
    if note in (NO_PEER, NO_PEER_LEFT):
        return _(note)
    if found := _NO_TAKER.fullmatch(note):
        return _no_taker(int(found.group(1)))
    return note


async def escalate(
    uow: UnitOfWork,
    notices: Notices,
    request: HelpRequest,
    reason: Callable[[], str],
    now: datetime,
) -> None:
    """Send the request to staff; `reason` writes why in the language being written in
    (the request keeps it in English)."""
    with speaking(DEFAULT):
        note = reason()
    moved = await lifecycle.move(uow, request.id, Move.ESCALATE, escalated_at=now, note=note)
    if not moved:
        return
    await network.escalated_here(notices, request)
    await notices.staff(
        lambda: say(
            "Escalation: {request} has no reviewer because {reason}. "
            "`assign {ref} @peer` offers it to someone you choose.",
            request=describe(request),
            reason=reason(),
            ref=request.ref,
        ),
        topic="escalated",
        subject=request.ref,
    )
    await notices.dm_id(
        request.requester,
        lambda: _(
            "{ref} has not found a peer yet ({reason}); staff have been asked to help."
        ).format(ref=request.ref, reason=reason()),
        topic="request.escalated",
        subject=request.ref,
    )


def what_next(offered: int, request: HelpRequest | None) -> str:
    """What became of a request once an offer of it ended (declined, expired), told to the
    peer whose offer it was: the end of a sentence. `offered` is what `offer_next` made,
    `request` the request after it."""
    if offered:
        return _("it goes to another peer.")
    if request is not None and request.status is RequestStatus.ESCALATED:
        return _("no other peer is free for it, so staff were asked to find a reviewer.")
    if request is not None and request.status.is_open:
        return _("the other peers it was offered to may still take it.")
    return _("nothing more is needed from you.")


def _why(explanation: str) -> str:
    from bot.app.wording import why  # wording reads this module's kind phrases

    return why(explanation)
