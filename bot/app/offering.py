"""Offering requests to peers: rounds, escalation and the messages they cause.

Shared by the request handlers and the scheduler's sweeps; the ranking itself is
the pure `bot.domain.routing`. Everything here runs inside the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.app import lifecycle
from bot.app.notices import Notice, Notices
from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import format_sif
from bot.domain.records import HelpRequest, Idea, OfferStatus, PeerFacts, RequestStatus
from bot.domain.requests import Move, kind_words
from bot.domain.routing import Candidate, Need, Peer, PeerIndex, Policy
from bot.i18n import plural
from bot.messages import Button, Parts, say
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


def peers_from(facts: list[PeerFacts], now: datetime) -> list[Peer]:
    return [
        Peer(
            member=f.member,
            name=f.name,
            expertise=f.expertise,
            languages=frozenset(lang.lower() for lang in f.languages),
            capacity=f.capacity,
            open_reviews=f.open_reviews,
            paused=f.paused_until is not None and f.paused_until > now,
            reviews_90d=f.reviews_recent,
            last_offer_at=f.last_offer_at,
            given=f.given,
            received=f.received,
        )
        for f in facts
    ]


def _may_be_offered(facts: PeerFacts, now: datetime) -> bool:
    """A peer (opted in: expertise and availability above 0), not paused, with fewer open
    reviews than capacity (`PeerIndex`'s availability). Nobody else is ever offered a
    review: an innovator without a profile, a newcomer, staff who did not opt in."""
    paused = facts.paused_until is not None and facts.paused_until > now
    return facts.is_peer and not paused and facts.open_reviews < facts.capacity


def idea_languages(idea: Idea) -> frozenset[str]:
    value = idea.answers.get("language")
    items = value.get("choices", []) if isinstance(value, dict) else value or []
    if isinstance(items, str):
        items = [items]
    return frozenset(str(i).lower() for i in items if str(i).lower() != "other")


def describe(request: HelpRequest) -> str:
    tags = f", needs {', '.join(request.tags)}" if request.tags else ""
    return (
        f"{request.ref}: {request.kind} of I-{request.idea_number} "
        f"\u201c{request.idea_title}\u201d by {request.requester_name} "
        f"({format_sif(request.price)}{tags})"
    )


def offer_buttons(request: HelpRequest) -> tuple[Button, ...]:
    return (Button("Accept", f"accept {request.ref}"), Button("Decline", f"decline {request.ref}"))


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
    """The peers to offer a request's next round to, best first (reads only)."""
    facts = await uow.routing.peer_facts(community, now - timedelta(days=FAIRNESS_DAYS))
    # Only peers who could take a review now: the others are never eligible, and leaving
    # them out of the index changes no ranking (routing orders each peer by its own keys).
    # With none left the request escalates to staff (`offer_next`).
    facts = [f for f in facts if _may_be_offered(f, now)]
    need = Need(
        requester=requester,
        co_owners=frozenset(),
        tags=tuple(tags),
        languages=idea_languages(idea) if idea else frozenset(),
        excluded=excluded,
    )
    return PeerIndex(peers_from(facts, now), Policy()).rank(need, now, settings.sif_fanout)


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
    if request.round >= settings.sif_max_rounds:
        await escalate(
            uow,
            notices,
            request,
            f"nobody accepted it in {plural(request.round, 'round')} of offers",
            now,
        )
        return 0
    idea = await uow.ideas.by_number(request.community, request.idea_number)
    excluded = frozenset(o.peer for o in offers)
    candidates = (
        [c for c in ranked if c.member not in excluded]
        if ranked is not None
        else await rank_round(
            uow, settings, request.community, request.requester, request.tags, idea, excluded, now
        )
    )
    if not candidates:
        reason = "no eligible peer is left" if offers else "no peer is eligible"
        await escalate(uow, notices, request, reason, now)
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
    await notices.dm_ids(
        [
            Notice(
                c.member,
                offer_text(request, idea, c.explanation, now + ttl),
                "offer",
                request.ref,
                offer_buttons(request),
            )
            for c in candidates
        ]
    )
    return len(candidates)


def offer_text(request: HelpRequest, idea: Idea | None, why: str, until: datetime) -> Parts:
    """The offer: the request, a short version of the idea (its stage and the start of its
    summary), why this peer, the price; accepting shows every answer (`reviewer_answers`)."""
    short = []
    if idea is not None and idea.answers.get("stage") not in (None, ""):
        short.append(f"Stage: {format_answer(_ANY, idea.answers['stage'])}.")
    summary = " ".join(str(idea.answers.get("summary", "")).split()) if idea else ""
    if summary:
        cut = len(summary) > SHORT_SUMMARY
        short.append(summary[:SHORT_SUMMARY].rstrip() + ("…" if cut else ""))
    return say(
        "Can you help? {request}.{about}\nWhy you: {why}.\n"
        "It pays {price}, the fixed price of {kind}. `accept {ref}` or `decline {ref} [reason]` "
        "before {until:%Y-%m-%d %H:%M} UTC; accepting shows you all of the idea's answers.",
        request=describe(request),
        about="\n" + " ".join(short) if short else "",
        why=why,
        price=format_sif(request.price),
        kind=kind_words(request.kind),
        ref=request.ref,
        until=until,
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
        label = question.label if question is not None else key.replace("_", " ").capitalize()
        text = format_answer(question or _ANY, value).replace("\n", "\n    ")
        lines.append(f"{label}: {text}")
    return lines


async def escalate(
    uow: UnitOfWork, notices: Notices, request: HelpRequest, reason: str, now: datetime
) -> None:
    moved = await lifecycle.move(uow, request.id, Move.ESCALATE, escalated_at=now, note=reason)
    if not moved:
        return
    await notices.staff(
        say(
            "Escalation: {request} has no reviewer because {reason}. "
            "`assign {ref} @peer` offers it to someone you choose.",
            request=describe(request),
            reason=reason,
            ref=request.ref,
        ),
        topic="escalated",
        subject=request.ref,
    )
    await notices.dm_id(
        request.requester,
        f"{request.ref} has not found a peer yet ({reason}); staff have been asked to help.",
        topic="request.escalated",
        subject=request.ref,
    )


def what_next(offered: int, request: HelpRequest | None) -> str:
    """What became of a request once an offer of it ended (declined, expired), told to the
    peer whose offer it was: the end of a sentence. `offered` is what `offer_next` made,
    `request` the request after it."""
    if offered:
        return "it goes to another peer."
    if request is not None and request.status is RequestStatus.ESCALATED:
        return "no other peer is free for it, so staff were asked to find a reviewer."
    if request is not None and request.status.is_open:
        return "the other peers it was offered to may still take it."
    return "nothing more is needed from you."
