"""The steps of a review request that move SIF: hold on accept, pay, refund, confirm.

Each exists once here and is used by the commands and the scheduler's sweeps alike.
A step moves the request through the lifecycle table (bot.domain.requests) with one
conditional UPDATE and posts its ledger transaction under the request's idempotency
key, inside the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot.domain import ledger
from bot.domain.ideas import STATUS_MOVES, idea_status
from bot.domain.ids import CommunityId, MemberId, RequestId
from bot.domain.records import HelpRequest
from bot.domain.requests import Move, hold_key, settle_key, sources, target
from bot.ports import UnitOfWork

# Posts one ledger transaction (the caller decides what a breached credit limit means).
Post = Callable[[ledger.TransactionDraft], Awaitable[int | None]]


async def move(uow: UnitOfWork, request: RequestId, step: Move, **fields: Any) -> bool:
    """Apply one move of the lifecycle; False when the request is no longer in a state
    the move may start from (something else moved it since it was read). A move that
    can change where the request's idea stands updates the idea's status with it."""
    if not await uow.requests.transition(request, sources(step), target(step), **fields):
        return False
    when = STATUS_MOVES.get(step)
    if when is not None:
        await _refresh_idea(uow, request, fields[when])
    return True


async def _refresh_idea(uow: UnitOfWork, request: RequestId, at: datetime) -> None:
    """Set the status of the request's idea from all its requests, as they are now."""
    moved = await uow.requests.get(request)
    if moved is not None:
        status = idea_status(await uow.requests.of_idea(moved.idea))
        await uow.ideas.set_status(moved.idea, status, at)


async def hold(post: Post, request: HelpRequest, floor: int | None = None) -> None:
    """Hold the request's price in escrow when a peer accepts it. The reason names the
    request, not the peer: entries stay for good, names must be erasable (SPEC §13).
    ``floor``: the requester's lowest balance when it is not the credit limit (a partner
    node's mirror account goes as low as that partner's limit)."""
    await post(
        ledger.hold(
            request.requester,
            request.price,
            request.id,
            f"{request.ref} {request.kind}, accepted",
            key=hold_key(request.id),
            floor=floor,
        )
    )


async def pay(post: Post, request: HelpRequest, reason: str, author: MemberId | None) -> None:
    """Pay the held price from escrow to the request's peer, once."""
    assert request.peer is not None
    await post(
        ledger.release(
            request.requester,
            request.peer,
            request.price,
            request.id,
            reason,
            author=author,
            key=settle_key(request.id),
        )
    )


async def refund(post: Post, request: HelpRequest, reason: str, author: MemberId | None) -> None:
    """Return the held price from escrow to the requester, once."""
    await post(
        ledger.refund(
            request.requester,
            request.price,
            request.id,
            reason,
            author=author,
            key=settle_key(request.id),
        )
    )


async def confirm(
    uow: UnitOfWork,
    post: Post,
    request: HelpRequest,
    now: datetime,
    reason: str,
    author: MemberId | None = None,
    **fields: Any,
) -> bool:
    """Close a delivered request as confirmed and pay its peer (thanks, or the time to
    object ran out); False, with nothing paid, when it was no longer delivered."""
    if not await move(uow, request.id, Move.CONFIRM, closed_at=now, **fields):
        return False
    await pay(post, request, reason, author)
    return True


def poster(uow: UnitOfWork, community: CommunityId, credit_limit: int, now: datetime) -> Post:
    """Posting straight to the store (the sweeps: no caller to refuse)."""

    async def post(draft: ledger.TransactionDraft) -> int | None:
        return await uow.ledger.post(community, draft, credit_limit, now)

    return post
