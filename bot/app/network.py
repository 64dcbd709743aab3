"""Requests across factories (SPEC §12): the origin node sends a request its own peers
could not take to a partner; the host node routes it to its peers with its own rules;
what happens travels back, and SIF settles through mirror accounts.

Each node keeps a member per partner (identity ``federation:<partner>``, never offered a
review, hidden from similar ideas): its ledger account is the mirror account of that
partner. On the origin the request's peer is the host's member, so the usual release
pays escrow → ``partner:host``; on the host the request's requester is the origin's
member, so the usual hold takes the price from ``partner:origin`` (down to that
partner's limit, not the members' credit limit) and the usual release pays the peer.
After a review, ``partner:host`` on the origin and ``partner:origin`` on the host are
equal and opposite, and each community still sums to zero.

The steps, each a message with the request's network id ``xid`` (origin name and R-n):

1. origin → host ``request``: the shared fields (title, summary, need, impact, stage,
   tags, languages, kind, price, the innovator's display name); the host opens its own
   request and offers it to its peers (proposed);
2. host → origin ``accepted`` (the host's peer took it; the host held the price from the
   origin's mirror account: validated there) — the origin holds its innovator's price
   (validated here);
3. host → origin ``delivered``, with the hours and the feedback;
4. origin → host ``confirmed``, after the innovator's thanks or the time to object
   (committed): the origin pays ``partner:host``, the host pays its peer.

Every step is a move of a request that happens at most once (conditional UPDATE) and a
message whose id is derived from the xid and the step, so repeating one is a no-op.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import lifecycle
from bot.app.federation import Federation, handles, message
from bot.app.notices import FEDERATION, Notices, platform_of
from bot.app.similar import FINDABLE
from bot.domain.federation import (
    Link,
    Message,
    Partner,
    PartnersError,
    Refused,
    chain,
    read_partners,
)
from bot.domain.ids import CommunityId
from bot.domain.records import CrossRequest, HelpRequest, Idea, Member, RequestStatus, Role
from bot.domain.requests import Move
from bot.i18n import _, sif
from bot.messages import Outbound, say
from bot.ports import UnitOfWork
from bot.settings import Settings

ORIGIN, HOST = "origin", "host"
SHARED = ("title", "summary", "need", "impact", "stage")


@functools.cache
def _partners_file(path: Path, mtime: float, me: str) -> dict[str, Partner]:
    return read_partners(path.read_text(encoding="utf-8"), me=me)


def partners(settings: Settings) -> dict[str, Partner]:
    """This node's partners (none when it is not a node)."""
    path = settings.sif_partners_file
    if not settings.sif_node_name or path is None:
        return {}
    try:
        return _partners_file(path, path.stat().st_mtime, settings.sif_node_name)
    except (OSError, PartnersError):
        return {}  # start-up refused these already (bot.app.federation)


def choose_partner(
    found: Mapping[str, Partner], tags: Sequence[str], languages: frozenset[str]
) -> Partner | None:
    """The partner for a request: most of its tags, then a shared language, then name."""
    if not found:
        return None

    def score(partner: Partner) -> tuple[int, int, str]:
        common = len(set(tags) & set(partner.tags))
        speaks = not languages or not partner.languages or bool(languages & set(partner.languages))
        return (-common, 0 if speaks else 1, partner.name)

    return min(found.values(), key=score)


async def partner_member(
    uow: UnitOfWork, community: CommunityId, partner: str, now: datetime
) -> Member:
    """The member that stands for ``partner`` in this community (made the first time)."""
    found = await uow.members.by_identity(FEDERATION, partner)
    if found is not None:
        return found
    member = await uow.members.create(
        community, f"{partner} (network)", Role.MEMBER, FEDERATION, partner, now
    )
    await uow.members.set_capacity(member.id, 0)
    await uow.members.set_profile(member.id, languages=[], bio="", profile={FINDABLE: False})
    return member


def floor_of(settings: Settings, member: Member) -> int | None:
    """The lowest balance of a partner's mirror account (None for anyone else)."""
    for identity in member.identities:
        if identity.platform == FEDERATION:
            partner = partners(settings).get(identity.external_id)
            return -partner.limit if partner is not None else 0
    return None


def xid_of(settings: Settings, request: HelpRequest) -> str:
    return f"{settings.sif_node_name}:{request.ref}"


def _send(
    outbound: list[Outbound], partner: str, kind: str, xid: str, body: dict[str, Any]
) -> None:
    # The id is the step's: a repeated step is the same message, done once by the partner.
    outbound.append(message(partner, kind, {"xid": xid, **body}, f"{xid}:{kind}"))


# -- the origin ------------------------------------------------------------------------


async def forward(
    uow: UnitOfWork,
    notices: Notices,
    settings: Settings,
    request: HelpRequest,
    idea: Idea | None,
    now: datetime,
    *,
    local_left: bool,
    to: Partner | None = None,
) -> bool:
    """Send an open request to the network when this node is configured to (after
    `SIF_FEDERATE_AFTER_ROUNDS` local rounds, or at once when no local peer is left), or
    ``to`` a partner (`forward`); True when it was sent."""
    after = settings.sif_federate_after_rounds
    if idea is None or (to is None and not after):
        return False
    if to is None and local_left and request.round < after:
        return False
    if await uow.cross.of_request(request.id) is not None:
        return False  # it came from the network, or went there already
    answer = idea.answers.get("language")
    chosen = answer.get("choices", []) if isinstance(answer, dict) else []
    languages = frozenset(str(v).lower() for v in chosen)
    partner = to or choose_partner(partners(settings), request.tags, languages)
    if partner is None:
        return False
    xid = xid_of(settings, request)
    await uow.cross.add(request.community, request.id, partner.name, xid, ORIGIN, now)
    shared = {key: idea.answers.get(key) for key in SHARED}
    shared["title"] = idea.title
    _send(
        notices.outbound,
        partner.name,
        "request",
        xid,
        {
            "ref": request.ref,
            "kind": request.kind,
            "price": request.price,
            "tags": list(request.tags),
            "languages": sorted(languages),
            "requester": request.requester_name,
            "answers": shared,
        },
    )
    await notices.dm_id(
        request.requester,
        lambda: say(
            "No peer here could take {ref}, so it went to the network: the factory {partner} "
            "offers it to its peers. You are told when one accepts.",
            ref=request.ref,
            partner=partner.name,
        ),
        topic="request.forwarded",
        subject=request.ref,
    )
    return True


async def _crossed(
    uow: UnitOfWork, message: Message, role: str
) -> tuple[HelpRequest, CrossRequest]:
    """The request a partner's message is about, which crossed with that partner in
    ``role`` here; else `Refused` (a message about anything else changes nothing)."""
    cross = await uow.cross.by_xid(str(message.body.get("xid", "")))
    if cross is None or cross.role != role or cross.partner != message.sender:
        raise Refused("unknown request")
    request = await uow.requests.get(cross.request)
    if request is None:
        raise Refused("unknown request")
    return request, cross


def _notices(
    federation: Federation, uow: UnitOfWork, community: Any, outbound: list[Outbound]
) -> Notices:
    return Notices(uow, federation.settings, community, platform_of(community.key), outbound)


@handles("accepted")
async def accepted(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    request, cross = await _crossed(uow, message, ORIGIN)
    now = federation.clock.now()
    host = await partner_member(uow, request.community, message.sender, now)
    if not await lifecycle.move(uow, request.id, Move.ACCEPT, peer_id=host.id, accepted_at=now):
        # Cancelled here meanwhile: the host gives its peer's hold back.
        _send(outbound, cross.partner, "cancel", cross.xid, {})
        return
    await uow.cross.set_remote(cross.xid, str(message.body.get("ref", ""))[:40])
    post = lifecycle.poster(uow, request.community, federation.settings.credit_limit, now)
    await lifecycle.hold(post, request)
    community = await uow.communities.get(request.community)
    peer = str(message.body.get("peer", ""))[:100]
    await _notices(federation, uow, community, outbound).dm_id(
        request.requester,
        lambda: say(
            "{peer} of the factory {partner} accepted {ref} ({kind} of I-{idea}). {price} is "
            "held until you confirm with `thanks {ref}`.",
            peer=peer,
            partner=message.sender,
            ref=request.ref,
            kind=_(request.kind),
            idea=request.idea_number,
            price=sif(request.price),
        ),
        topic="request.accepted",
        subject=request.ref,
    )


@handles("delivered")
async def delivered(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    request, _cross = await _crossed(uow, message, ORIGIN)
    now = federation.clock.now()
    release_at = now + timedelta(days=federation.settings.sif_auto_release_days)
    hours = float(message.body.get("hours") or 0)
    feedback = str(message.body.get("feedback", ""))
    if not await lifecycle.move(
        uow,
        request.id,
        Move.DELIVER,
        hours=hours,
        feedback=feedback,
        delivered_at=now,
        auto_release_at=release_at,
    ):
        return
    community = await uow.communities.get(request.community)
    from bot.app.offering import shown_date

    await _notices(federation, uow, community, outbound).dm_id(
        request.requester,
        lambda: say(
            "{partner} delivered {ref} ({kind} of I-{idea}):\n{feedback}\n"
            "`thanks {ref} [1-5] [comment]` pays {price} to the factory {partner}; "
            "`dispute {ref} <reason>` holds it. Without either, it is paid on {release}.",
            partner=message.sender,
            ref=request.ref,
            kind=_(request.kind),
            idea=request.idea_number,
            feedback=feedback,
            price=sif(request.price),
            release=shown_date(release_at),
        ),
        topic="request.delivered",
        subject=request.ref,
    )


@handles("declined")
async def declined(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    """The partner found no peer for a request sent to it: staff here are asked."""
    request, _cross = await _crossed(uow, message, ORIGIN)
    if not request.status.is_open:
        return
    from bot.app.offering import escalate

    community = await uow.communities.get(request.community)
    partner = message.sender
    await escalate(
        uow,
        _notices(federation, uow, community, outbound),
        request,
        lambda: _("the factory {partner} found no peer for it either").format(partner=partner),
        federation.clock.now(),
    )


async def _crossed_here(notices: Notices, request: HelpRequest, role: str) -> CrossRequest | None:
    """The request's crossing when it crossed in ``role`` here; None at once on a bot
    that is not a node (the hooks below cost nothing there)."""
    if not notices.settings.sif_node_name:
        return None
    cross = await notices.uow.cross.of_request(request.id)
    return cross if cross is not None and cross.role == role else None


async def confirmed_here(
    notices: Notices, request: HelpRequest, rating: int | None, comment: str
) -> None:
    """After the origin paid a crossed request (thanks, or the time ran out): the host
    pays its peer."""
    cross = await _crossed_here(notices, request, ORIGIN)
    if cross is None:
        return
    outbound = notices.outbound
    if not await _reviewed_there(notices.uow, request, cross):
        # Reviewed here after all (staff assigned a peer here): the partner closes its copy.
        _send(outbound, cross.partner, "cancel", cross.xid, {})
        return
    _send(outbound, cross.partner, "confirmed", cross.xid, {"rating": rating, "comment": comment})


async def resolved_here(notices: Notices, request: HelpRequest, paid: bool | None) -> None:
    """After staff here resolved a dispute on a request that went to the network: the
    host pays its peer, or refunds what it held."""
    cross = await _crossed_here(notices, request, ORIGIN)
    if cross is None:
        return
    if not await _reviewed_there(notices.uow, request, cross):
        paid = None  # a peer here had it: the partner only closes its copy
    kind = {True: "confirmed", False: "refund", None: "cancel"}[paid]
    _send(notices.outbound, cross.partner, kind, cross.xid, {"rating": None, "comment": ""})


async def _reviewed_there(uow: UnitOfWork, request: HelpRequest, cross: CrossRequest) -> bool:
    """Whether the partner's peer has the request (not a peer here that staff assigned)."""
    if request.peer is None:
        return False
    peer = await uow.members.get(request.peer)
    return peer is not None and any(
        i.platform == FEDERATION and i.external_id == cross.partner for i in peer.identities
    )


async def cancelled_here(notices: Notices, request: HelpRequest) -> None:
    """After the innovator cancelled a request that went to the network: the host
    withdraws its offers, or refunds what it held and tells its peer."""
    cross = await _crossed_here(notices, request, ORIGIN)
    if cross is not None:
        _send(notices.outbound, cross.partner, "cancel", cross.xid, {})


# -- the host ---------------------------------------------------------------------------


async def _home(uow: UnitOfWork) -> Any:
    communities = await uow.communities.all()
    if not communities:
        raise Refused("this node has no community yet")
    return communities[0]


@handles("request")
async def received_request(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> dict[str, Any]:
    body = message.body
    xid = str(body.get("xid", ""))[:100]
    if not xid.startswith(f"{message.sender}:"):
        raise Refused("a request's id names its origin")
    if await uow.cross.by_xid(xid) is not None:
        return {"xid": xid}
    community = await _home(uow)
    now = federation.clock.now()
    origin = await partner_member(uow, community.id, message.sender, now)
    given = body.get("answers")
    raw: dict[str, Any] = given if isinstance(given, dict) else {}
    answers: dict[str, Any] = {k: raw.get(k) for k in SHARED if raw.get(k) not in (None, "")}
    tags = [str(t) for t in body.get("tags", []) if isinstance(t, str)][:10]
    languages = [str(lang) for lang in body.get("languages", [])][:10]
    answers["help"] = tags
    if languages:
        answers["language"] = {"choices": languages, "note": ""}
    answers["requester"] = f"{body.get('requester', '')} ({message.sender})"[:120]
    title = str(answers.get("title") or "Untitled idea")[:200]
    idea = await uow.ideas.create(community.id, origin.id, title, answers, now)
    kind = str(body.get("kind", "review"))
    price = int(body.get("price", 0))
    if kind not in federation.settings.prices or price <= 0:
        raise Refused("unknown kind of help or price")
    request = await uow.requests.create(community.id, idea.id, origin.id, kind, price, tags, now)
    await uow.cross.add(
        community.id, request.id, message.sender, xid, HOST, now, str(body.get("ref", ""))[:40]
    )
    from bot.app.offering import offer_next

    notices = _notices(federation, uow, community, outbound)
    made = await offer_next(uow, notices, federation.settings, request, now)
    return {"xid": xid, "ref": request.ref, "offered": made}


async def accepted_here(notices: Notices, request: HelpRequest, peer: Member) -> None:
    """After a peer here accepted a request from the network: tell its origin."""
    cross = await _crossed_here(notices, request, HOST)
    if cross is not None:
        body = {"ref": request.ref, "peer": peer.name}
        _send(notices.outbound, cross.partner, "accepted", cross.xid, body)


async def delivered_here(
    notices: Notices, request: HelpRequest, hours: float, feedback: str
) -> None:
    """After a peer here delivered a request from the network: its origin gets it."""
    cross = await _crossed_here(notices, request, HOST)
    if cross is not None:
        body = {"hours": hours, "feedback": feedback}
        _send(notices.outbound, cross.partner, "delivered", cross.xid, body)


@handles("cancel")
async def cancel(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    request, _cross = await _crossed(uow, message, HOST)
    now = federation.clock.now()
    community = await uow.communities.get(request.community)
    notices = _notices(federation, uow, community, outbound)
    if await lifecycle.move(uow, request.id, Move.WITHDRAW, closed_at=now):
        for offer in await uow.requests.withdraw_offers(request.id, now):
            await notices.dm_id(
                offer.peer,
                lambda: _("{ref} was cancelled by its requester.").format(ref=request.ref),
                topic="offer.cancelled",
                subject=request.ref,
            )
        return
    if await lifecycle.move(uow, request.id, Move.CANCEL, closed_at=now):
        post = lifecycle.poster(uow, request.community, federation.settings.credit_limit, now)
        await lifecycle.refund(post, request, f"{request.ref} cancelled", request.requester)
        if request.peer is not None:
            await notices.dm_id(
                request.peer,
                lambda: _("{name} cancelled {ref}; you can stop working on it.").format(
                    name=request.requester_name, ref=request.ref
                ),
                topic="request.cancelled",
                subject=request.ref,
            )


async def _settle_dispute(
    uow: UnitOfWork, request: HelpRequest, now: datetime, *, pay: bool
) -> bool:
    """Close a request held here as its origin's staff decided: True when it moved now."""
    if request.status in (RequestStatus.ASSIGNED, RequestStatus.DELIVERED):
        await lifecycle.move(uow, request.id, Move.DISPUTE, note="disputed at its origin")
    note = "resolved at its origin: " + ("pay" if pay else "refund")
    return await lifecycle.move(uow, request.id, Move.RESOLVE, closed_at=now, note=note)


@handles("refund")
async def refund(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    request, _cross = await _crossed(uow, message, HOST)
    now = federation.clock.now()
    if not await _settle_dispute(uow, request, now, pay=False):
        return
    post = lifecycle.poster(uow, request.community, federation.settings.credit_limit, now)
    await lifecycle.refund(post, request, f"{request.ref} dispute resolved: refund", None)
    if request.peer is not None:
        community = await uow.communities.get(request.community)
        await _notices(federation, uow, community, outbound).dm_id(
            request.peer,
            lambda: say(
                "The factory {partner} settled a dispute on {ref} with a refund: no SIF is "
                "paid for it.",
                partner=message.sender,
                ref=request.ref,
            ),
            topic="request.refunded",
            subject=request.ref,
        )


async def escalated_here(notices: Notices, request: HelpRequest) -> None:
    """A request from the network found no peer here (staff here were asked): its origin
    is told, and its staff decide too."""
    cross = await _crossed_here(notices, request, HOST)
    if cross is not None:
        _send(notices.outbound, cross.partner, "declined", cross.xid, {"ref": request.ref})


async def is_hosted(notices: Notices, request: HelpRequest) -> bool:
    """A request from the network: its origin decides when it is paid."""
    return await _crossed_here(notices, request, HOST) is not None


@handles("confirmed")
async def confirmed(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> None:
    request, _cross = await _crossed(uow, message, HOST)
    if request.peer is None:
        raise Refused("unknown request")
    now = federation.clock.now()
    post = lifecycle.poster(uow, request.community, federation.settings.credit_limit, now)
    if request.status is not RequestStatus.DELIVERED:
        # Paid after a dispute the origin's staff resolved before delivery.
        if await _settle_dispute(uow, request, now, pay=True):
            await lifecycle.pay(post, request, f"{request.ref} dispute resolved: pay", None)
        return
    rating = message.body.get("rating")
    rating = int(rating) if isinstance(rating, int) and 1 <= rating <= 5 else None
    comment = str(message.body.get("comment") or "")[:500] or None
    reason = f"{request.ref} {request.kind}, thanked"
    if not await lifecycle.confirm(
        uow, post, request, now, reason, request.requester, rating=rating, comment=comment
    ):
        return
    community = await uow.communities.get(request.community)
    stars = f" ({rating}/5)" if rating else ""
    await _notices(federation, uow, community, outbound).dm_id(
        request.peer,
        lambda: say(
            "The factory {partner} thanked you for {ref}{rating}. You received {price}.",
            partner=message.sender,
            ref=request.ref,
            rating=stars,
            price=sif(request.price),
        ),
        topic="request.thanked",
        subject=request.ref,
    )


# -- proving both ledgers agree --------------------------------------------------------


@handles("chain")
async def chain_of(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> dict[str, Any]:
    """A partner comparing ledgers: this node's chain of their committed transfers."""
    links = chain((federation.name, message.sender), await uow.cross.transfers(message.sender))
    return {"chain": [[link.xid, link.amount, link.hash] for link in links]}


async def local_chain(federation: Federation, partner: str) -> list[Link]:
    async with federation.uow_factory.reading() as uow:
        return chain((federation.name, partner), await uow.cross.transfers(partner))
