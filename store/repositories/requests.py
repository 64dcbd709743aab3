"""Help requests and their offers: a request created with its R-n number, moved from
status to status by conditional updates, its offers made, answered, withdrawn and
claimed by the reminder and expiry sweeps, all on statements built once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.records import HelpRequest, Offer, OfferStatus, RequestStatus
from store.models import IdeaRow, MemberRow, OfferRow, RequestRow
from store.repositories.communities import SqlCommunities
from store.rows import as_help_request, as_offer
from store.sql import table

# Requests and offers are read and moved on by every command and sweep: their statements
# are built once, as plain (Core) statements that return rows rather than ORM objects, and
# run on the session's connection with only values bound (no statement construction and
# cache-key generation per call, no identity-map bookkeeping).
_REQUESTS = table(RequestRow)
_OFFERS = table(OfferRow)
_MEMBERS = table(MemberRow)
_IDEAS = table(IdeaRow)


def _request_select() -> Select[Any]:
    requester = _MEMBERS.alias("requester")
    peer = _MEMBERS.alias("peer")
    return (
        select(
            *_REQUESTS.c,
            _IDEAS.c.number.label("idea_number"),
            _IDEAS.c.title.label("idea_title"),
            requester.c.name.label("requester_name"),
            peer.c.name.label("peer_name"),
        )
        .join(_IDEAS, _IDEAS.c.id == _REQUESTS.c.idea_id)
        .join(requester, requester.c.id == _REQUESTS.c.requester_id)
        .outerjoin(peer, peer.c.id == _REQUESTS.c.peer_id)
    )


def _offer_select() -> Select[Any]:
    return (
        select(
            *_OFFERS.c,
            _REQUESTS.c.number.label("request_number"),
            _MEMBERS.c.name.label("peer_name"),
        )
        .join(_REQUESTS, _REQUESTS.c.id == _OFFERS.c.request_id)
        .join(_MEMBERS, _MEMBERS.c.id == _OFFERS.c.peer_id)
    )


_REQUEST_SELECT = _request_select()
_REQUEST_BY_ID = _REQUEST_SELECT.where(_REQUESTS.c.id == bindparam("b_id"))
_REQUEST_BY_NUMBER = _REQUEST_SELECT.where(
    _REQUESTS.c.community_id == bindparam("b_community"),
    _REQUESTS.c.number == bindparam("b_number"),
)
_REQUESTS_BY_IDS = _REQUEST_SELECT.where(_REQUESTS.c.id.in_(bindparam("b_ids", expanding=True)))
_OFFER_SELECT = _offer_select()
_OFFER_BY_ID = _OFFER_SELECT.where(_OFFERS.c.id == bindparam("b_id"))
_OFFER_ID_IN = _OFFERS.c.id.in_(bindparam("b_ids", expanding=True))
_OFFERS_BY_IDS = _OFFER_SELECT.where(_OFFER_ID_IN).order_by(_OFFERS.c.id)
_OFFER_OF_REQUEST = _OFFERS.c.request_id == bindparam("b_request")
_OFFERS_OF_REQUEST = _OFFER_SELECT.where(_OFFER_OF_REQUEST).order_by(_OFFERS.c.id)
_OFFER_FOR = (
    _OFFER_SELECT.where(
        _OFFERS.c.request_id == bindparam("b_request"), _OFFERS.c.peer_id == bindparam("b_peer")
    )
    .order_by(_OFFERS.c.id.desc())
    .limit(1)
)
_OPEN_OFFERS_OF_PEER = _OFFER_SELECT.where(
    _OFFERS.c.peer_id == bindparam("b_peer"), _OFFERS.c.status == OfferStatus.OFFERED.value
).order_by(_OFFERS.c.id)
_INSERT_REQUEST = insert(_REQUESTS).returning(_REQUESTS.c.id)
_INSERT_OFFER = insert(_OFFERS).returning(_OFFERS.c.id)
_INSERT_OFFERS = insert(_OFFERS)
_ANSWER_OFFER = (
    update(_OFFERS)
    .where(_OFFERS.c.id == bindparam("b_id"), _OFFERS.c.status == OfferStatus.OFFERED.value)
    .values(
        status=bindparam("b_status"),
        answered_at=bindparam("b_at", type_=_OFFERS.c.answered_at.type),
        reason=bindparam("b_reason"),
        remind_at=None,
    )
)
_CLEAR_REMINDER = update(_OFFERS).where(_OFFERS.c.id == bindparam("b_id")).values(remind_at=None)
_COMMITTED = select(func.coalesce(func.sum(_REQUESTS.c.price), 0)).where(
    _REQUESTS.c.requester_id == bindparam("b_requester"),
    _REQUESTS.c.status.in_([RequestStatus.OPEN.value, RequestStatus.ESCALATED.value]),
)
# `transition` statements, one per shape (how many statuses it moves from, which fields).
_TRANSITIONS: dict[tuple[int, tuple[str, ...]], Any] = {}


def _transition_statement(sources: int, names: tuple[str, ...]) -> Any:
    statement = _TRANSITIONS.get((sources, names))
    if statement is None:
        column = _REQUESTS.c
        statement = (
            update(_REQUESTS)
            .where(
                column.id == bindparam("b_id"),
                column.status.in_([bindparam(f"b_from{i}") for i in range(sources)]),
            )
            .values(
                status=bindparam("b_to"),
                **{n: bindparam(f"b_{n}", type_=column[n].type) for n in names},
            )
        )
        _TRANSITIONS[(sources, names)] = statement
    return statement


def _new_offer(
    request: RequestId,
    peer: MemberId,
    round_: int,
    explanation: str,
    at: datetime,
    expires_at: datetime,
    remind_at: datetime | None,
) -> dict[str, Any]:
    """The columns of a new offer, waiting for the peer's answer (`_INSERT_OFFER(S)`)."""
    return {
        "request_id": request,
        "peer_id": peer,
        "round": round_,
        "status": OfferStatus.OFFERED.value,
        "explanation": explanation,
        "offered_at": at,
        "expires_at": expires_at,
        "remind_at": remind_at,
    }


class SqlRequests:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.communities = SqlCommunities(session)

    async def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        """Plain rows of a prebuilt statement, on the session's connection (sees what the
        session flushed in this transaction)."""
        connection = await self.s.connection()
        return (await connection.execute(statement, params)).all()

    async def _update(self, statement: Any, params: dict[str, Any]) -> int:
        connection = await self.s.connection()
        return int((await connection.execute(statement, params)).rowcount)

    async def create(
        self,
        community: CommunityId,
        idea: IdeaId,
        requester: MemberId,
        kind: str,
        price: int,
        tags: Sequence[str],
        at: datetime,
    ) -> HelpRequest:
        number = await self.communities.next_number(community, "request")
        connection = await self.s.connection()
        request_id = (
            await connection.execute(
                _INSERT_REQUEST,
                {
                    "community_id": community,
                    "number": number,
                    "idea_id": idea,
                    "requester_id": requester,
                    "kind": kind,
                    "price": price,
                    "tags": list(tags),
                    "status": RequestStatus.OPEN.value,
                    "round": 0,
                    "created_at": at,
                },
            )
        ).scalar_one()
        found = await self.get(RequestId(request_id))
        assert found is not None
        return found

    async def get(self, request: RequestId) -> HelpRequest | None:
        rows = await self._rows(_REQUEST_BY_ID, {"b_id": request})
        return as_help_request(rows[0]) if rows else None

    async def by_number(self, community: CommunityId, number: int) -> HelpRequest | None:
        rows = await self._rows(_REQUEST_BY_NUMBER, {"b_community": community, "b_number": number})
        return as_help_request(rows[0]) if rows else None

    async def of_member(self, member: MemberId) -> list[HelpRequest]:
        rows = await self.s.execute(
            _REQUEST_SELECT.where(
                (_REQUESTS.c.requester_id == member) | (_REQUESTS.c.peer_id == member)
            ).order_by(_REQUESTS.c.number.desc())
        )
        return [as_help_request(r) for r in rows]

    async def of_idea(self, idea: IdeaId) -> list[HelpRequest]:
        rows = await self.s.execute(
            _REQUEST_SELECT.where(_REQUESTS.c.idea_id == idea).order_by(_REQUESTS.c.number)
        )
        return [as_help_request(r) for r in rows]

    async def all(self, community: CommunityId) -> list[HelpRequest]:
        rows = await self.s.execute(
            _REQUEST_SELECT.where(_REQUESTS.c.community_id == community).order_by(
                _REQUESTS.c.number
            )
        )
        return [as_help_request(r) for r in rows]

    async def committed(self, requester: MemberId) -> int:
        rows = await self._rows(_COMMITTED, {"b_requester": requester})
        return int(rows[0][0] or 0)

    async def transition(
        self,
        request: RequestId,
        from_: Sequence[RequestStatus],
        to: RequestStatus,
        **fields: Any,
    ) -> bool:
        names = tuple(sorted(fields))
        params = {f"b_{name}": fields[name] for name in names}
        params.update({f"b_from{i}": status.value for i, status in enumerate(from_)})
        params.update(b_id=request, b_to=to.value)
        return await self._update(_transition_statement(len(from_), names), params) == 1

    async def claim_auto_release(self, now: datetime, limit: int) -> list[HelpRequest]:
        ids = list(
            await self.s.scalars(
                select(RequestRow.id)
                .where(
                    RequestRow.status == RequestStatus.DELIVERED.value,
                    RequestRow.auto_release_at <= now,
                )
                .order_by(RequestRow.auto_release_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        found = {r.id: r for r in await self._rows(_REQUESTS_BY_IDS, {"b_ids": ids})}
        return [as_help_request(found[i]) for i in ids if i in found]

    async def add_offer(
        self,
        request: RequestId,
        peer: MemberId,
        round_: int,
        explanation: str,
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> Offer:
        connection = await self.s.connection()
        offer_id = (
            await connection.execute(
                _INSERT_OFFER,
                _new_offer(request, peer, round_, explanation, at, expires_at, remind_at),
            )
        ).scalar_one()
        return as_offer((await self._rows(_OFFER_BY_ID, {"b_id": offer_id}))[0])

    async def add_offers(
        self,
        request: RequestId,
        round_: int,
        peers: Sequence[tuple[MemberId, str]],
        at: datetime,
        expires_at: datetime,
        remind_at: datetime | None,
    ) -> None:
        if not peers:
            return
        connection = await self.s.connection()
        await connection.execute(
            _INSERT_OFFERS,  # one statement for the round, rows in the order given
            [
                _new_offer(request, peer, round_, explanation, at, expires_at, remind_at)
                for peer, explanation in peers
            ],
        )

    async def offers(self, request: RequestId) -> list[Offer]:
        return [as_offer(r) for r in await self._rows(_OFFERS_OF_REQUEST, {"b_request": request})]

    async def offer_for(self, request: RequestId, peer: MemberId) -> Offer | None:
        rows = await self._rows(_OFFER_FOR, {"b_request": request, "b_peer": peer})
        return as_offer(rows[0]) if rows else None

    async def open_offers(self, peer: MemberId) -> list[Offer]:
        return [as_offer(r) for r in await self._rows(_OPEN_OFFERS_OF_PEER, {"b_peer": peer})]

    async def answer_offer(
        self, offer: int, to: OfferStatus, at: datetime, reason: str | None = None
    ) -> bool:
        params = {"b_id": offer, "b_status": to.value, "b_at": at, "b_reason": reason}
        return await self._update(_ANSWER_OFFER, params) == 1

    async def withdraw_offers(self, request: RequestId, at: datetime) -> list[Offer]:
        still_open = [o for o in await self.offers(request) if o.status is OfferStatus.OFFERED]
        withdrawn = []
        for offer in still_open:
            if await self.answer_offer(offer.id, OfferStatus.WITHDRAWN, at):
                withdrawn.append(offer)
        return withdrawn

    async def _claim_offers(self, condition: Any, order: Any, limit: int) -> list[Offer]:
        ids = list(
            await self.s.scalars(
                select(OfferRow.id)
                .where(OfferRow.status == OfferStatus.OFFERED.value, condition)
                .order_by(order)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        return [as_offer(r) for r in await self._rows(_OFFERS_BY_IDS, {"b_ids": ids})]

    async def claim_offers_to_remind(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(
            and_(OfferRow.remind_at.is_not(None), OfferRow.remind_at <= now),
            OfferRow.remind_at,
            limit,
        )

    async def clear_reminder(self, offer: int) -> None:
        await self._update(_CLEAR_REMINDER, {"b_id": offer})

    async def claim_expired_offers(self, now: datetime, limit: int) -> list[Offer]:
        return await self._claim_offers(OfferRow.expires_at <= now, OfferRow.expires_at, limit)
