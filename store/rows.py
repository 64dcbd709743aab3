"""Rows to records: every builder that turns what a statement returned (an ORM object or a
row of plain columns) into the core's record, one `as_<record>` per record, and for the
outbox the way back (`outbox_parts`). The repositories and queries run the statements;
what a record is made of is decided here only."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bot.domain.ids import CommunityId, IdeaId, MemberId, RequestId
from bot.domain.ledger import EntryKind
from bot.domain.privacy import redact
from bot.domain.records import (
    BalanceInfo,
    Community,
    Conversation,
    Expertise,
    HelpRequest,
    Idea,
    IdeaStatus,
    Identity,
    LedgerLine,
    Member,
    Offer,
    OfferStatus,
    PeerFacts,
    RequestStatus,
    Role,
)
from bot.messages import (
    Actions,
    Button,
    Code,
    Delivery,
    File,
    Outbound,
    Part,
    Strong,
    Table,
    Text,
)
from bot.ports import FindCandidate, RequestTimes


def as_community(row: Any) -> Community:
    return Community(CommunityId(row.id), row.key, row.name)


def as_member(row: Any, identities: Sequence[Any] = ()) -> Member:
    """A member from its row (an ORM object or plain columns) and its identities' rows."""
    return Member(
        id=MemberId(row.id),
        community=CommunityId(row.community_id),
        name=row.name,
        role=Role(row.role),
        capacity=row.capacity,
        paused_until=row.paused_until,
        languages=tuple(row.languages or ()),
        bio=row.bio or "",
        identities=tuple(Identity(i.platform, i.external_id) for i in identities),
        profile=dict(row.profile or {}),
        last_active=getattr(row, "last_active_at", None),
        language=getattr(row, "language", None),
        locale=getattr(row, "locale", None),
    )


class _IdentityOf(NamedTuple):
    platform: str
    external_id: str


def as_members(rows: Sequence[Any]) -> dict[MemberId, Member]:
    """Members from rows of a member's columns and one identity's (`i_platform`,
    `i_external_id`: a row per identity, in identity order), in the order they first
    appear."""
    identities: dict[int, list[_IdentityOf]] = {}
    first: dict[int, Any] = {}
    for r in rows:
        first.setdefault(r.id, r)
        if r.i_platform is not None:
            identities.setdefault(r.id, []).append(_IdentityOf(r.i_platform, r.i_external_id))
    return {MemberId(i): as_member(r, identities.get(i, [])) for i, r in first.items()}


def as_expertise(row: Any) -> Expertise:
    return Expertise(row.tag, row.level)


def as_find_candidate(row: Any, expertise: dict[str, int]) -> FindCandidate:
    """What `find` scores of a member: its row's id, name, bio and profile, and its tags."""
    return FindCandidate(
        MemberId(row.id), row.name, row.bio or "", dict(row.profile or {}), expertise
    )


_ROLES = {role.value: role for role in Role}


def as_utc(value: Any) -> datetime | None:
    """Aggregates bypass the column type: SQLite returns a naive string or datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_peer_facts(
    members: Sequence[Any], expertise: dict[int, dict[str, int]], counts: list[dict[Any, Any]]
) -> list[PeerFacts]:
    """Every member's facts from its row (id, name, role, capacity, paused_until,
    languages), its expertise, and the six per-member aggregates (assigned, offered,
    recent, last offer, given, received) by member id."""
    assigned, offered, recent, last_offer, given, received = counts
    utc_last = {k: as_utc(v) for k, v in last_offer.items()}
    roles = _ROLES
    return [
        PeerFacts(
            member=MemberId(member_id),
            name=name,
            role=roles[role],
            expertise=expertise.get(member_id, {}),
            languages=tuple(languages or ()),
            capacity=capacity,
            paused_until=paused_until,
            open_reviews=int(assigned.get(member_id, 0)) + int(offered.get(member_id, 0)),
            reviews_recent=int(recent.get(member_id, 0)),
            last_offer_at=utc_last.get(member_id),
            given=int(given.get(member_id, 0) or 0),
            received=int(received.get(member_id, 0) or 0),
        )
        for member_id, name, role, capacity, paused_until, languages in members
    ]


def as_conversation(row: Any) -> Conversation:
    """A conversation from its row (an ORM object or plain columns)."""
    return Conversation(
        member=MemberId(row.member_id),
        community=CommunityId(row.community_id),
        flow=row.flow,
        state=dict(row.state),
        platform=row.platform,
        external_id=row.external_id,
        started_at=row.started_at,
        updated_at=row.updated_at,
        reminded_at=row.reminded_at,
    )


def as_idea(row: Any, owner_name: str = "") -> Idea:
    return Idea(
        id=IdeaId(row.id),
        community=CommunityId(row.community_id),
        number=row.number,
        owner=MemberId(row.owner_id),
        title=row.title,
        answers=dict(row.answers),
        status=IdeaStatus(row.status),
        created_at=row.created_at,
        owner_name=owner_name,
    )


def as_help_request(row: Any) -> HelpRequest:
    """A request from a flat row of the request's columns and names (idea_number,
    idea_title, requester_name, peer_name)."""
    return HelpRequest(
        id=RequestId(row.id),
        community=CommunityId(row.community_id),
        number=row.number,
        idea=IdeaId(row.idea_id),
        idea_number=row.idea_number,
        idea_title=row.idea_title,
        requester=MemberId(row.requester_id),
        requester_name=row.requester_name,
        kind=row.kind,
        price=row.price,
        tags=tuple(row.tags or ()),
        status=RequestStatus(row.status),
        round=row.round,
        created_at=row.created_at,
        peer=MemberId(row.peer_id) if row.peer_id is not None else None,
        peer_name=row.peer_name,
        hours=row.hours,
        feedback=row.feedback,
        rating=row.rating,
        note=row.note,
        accepted_at=row.accepted_at,
        delivered_at=row.delivered_at,
        closed_at=row.closed_at,
        escalated_at=row.escalated_at,
        auto_release_at=row.auto_release_at,
    )


def as_request_times(row: Any) -> RequestTimes:
    """What `stats` reads of a request, from its row of those columns."""
    return RequestTimes(
        row.number,
        RequestStatus(row.status),
        tuple(row.tags or ()),
        row.created_at,
        row.accepted_at,
        row.delivered_at,
        row.closed_at,
        row.escalated_at,
    )


def as_offer(row: Any) -> Offer:
    """An offer from a flat row of the offer's columns and names (request_number,
    peer_name)."""
    return Offer(
        id=row.id,
        request=RequestId(row.request_id),
        request_number=row.request_number,
        peer=MemberId(row.peer_id),
        peer_name=row.peer_name,
        round=row.round,
        status=OfferStatus(row.status),
        explanation=row.explanation,
        offered_at=row.offered_at,
        expires_at=row.expires_at,
        remind_at=row.remind_at,
        answered_at=row.answered_at,
        reason=row.reason,
    )


def as_balance_info(row: Any) -> BalanceInfo:
    """A member's balances from a row of (id, name, balance, held, given, received,
    last_active_at)."""
    mid, name, balance, held, given, received, last = row
    return BalanceInfo(
        MemberId(mid), name, int(balance), int(held), int(given), int(received), last
    )


def as_ledger_line(row: Any) -> LedgerLine:
    """A line of a member's history from a row of (transaction, at, kind, amount, reason,
    author's name, request number)."""
    tid, at, kind, amount, reason, who, req = row
    return LedgerLine(tid, at, EntryKind(kind), int(amount), reason, who, req)


_ENTRY_KEYS = (
    "transaction",
    "at",
    "kind",
    "request",
    "reason",
    "author",
    "account",
    "member",
    "amount",
)


def as_ledger_entry(row: Any) -> dict[str, Any]:
    """A posting with its transaction (exports), from a row of the `_ENTRY_KEYS` columns."""
    return dict(zip(_ENTRY_KEYS, row, strict=True))


def as_credit(row: Any) -> tuple[datetime, EntryKind, int]:
    """(at, kind, amount) of a positive posting, from a row of those columns."""
    at, kind, amount = row
    return (at, EntryKind(kind), int(amount))


def _part_row(part: Part) -> dict[str, Any]:
    if isinstance(part, Table):
        return {"t": "table", "headers": list(part.headers), "rows": [list(r) for r in part.rows]}
    if isinstance(part, Actions):
        return {"t": "actions", "buttons": [[b.label, b.action] for b in part.buttons]}
    if isinstance(part, File):
        return {
            "t": "file",
            "filename": part.filename,
            "mimetype": part.mimetype,
            "content": base64.b64encode(part.content).decode("ascii"),
        }
    return {"t": _INLINE_NAMES[type(part)], "v": part.text}


def _part(data: dict[str, Any]) -> Part:
    kind = data["t"]
    if kind == "table":
        return Table(tuple(data["headers"]), tuple(tuple(r) for r in data["rows"]))
    if kind == "actions":
        return Actions(tuple(Button(label, action) for label, action in data["buttons"]))
    if kind == "file":
        return File(data["filename"], base64.b64decode(data["content"]), data["mimetype"])
    return _INLINE[kind](data["v"])


_INLINE: dict[str, type[Text | Code | Strong]] = {"text": Text, "code": Code, "strong": Strong}
_INLINE_NAMES = {cls: name for name, cls in _INLINE.items()}


def outbox_parts(message: Outbound) -> dict[str, Any]:
    """The outbox row's `parts` column for a message: what `as_outbound` reads back (the
    `text` column keeps the plain rendering for people reading the table)."""
    stored: dict[str, Any] = {
        "v": 2,
        "topic": message.topic,
        "parts": [_part_row(p) for p in message.parts],
    }
    if message.subject is not None:
        stored["subject"] = message.subject
    if message.in_reply_to is not None:
        stored["in_reply_to"] = message.in_reply_to
    if message.language != "en":
        stored["language"] = message.language
    return stored


def _legacy_parts(row: Any, stored: dict[str, Any]) -> tuple[Part, ...]:
    """A row written before messages had typed parts: its text (tables included) as plain
    text, then its buttons and file."""
    parts: list[Part] = [Text(row.text)] if row.text else []
    if stored.get("buttons"):
        parts.append(Actions(tuple(Button(label, action) for label, action in stored["buttons"])))
    if attached := stored.get("attachment"):
        parts.append(
            File(attached["filename"], base64.b64decode(attached["content"]), attached["mimetype"])
        )
    return tuple(parts)


def as_outbound(row: Any) -> Outbound:
    stored = row.parts or {}
    typed = stored.get("v") == 2
    return Outbound(
        platform=row.platform,
        delivery=Delivery(row.delivery),
        to=row.to,
        topic=stored.get("topic", "message"),
        parts=tuple(_part(p) for p in stored["parts"]) if typed else _legacy_parts(row, stored),
        channel=row.channel,
        subject=stored.get("subject"),
        outbox_id=row.id,
        in_reply_to=stored.get("in_reply_to"),
        language=stored.get("language", "en"),
    )


# -- erasing what a message says (SPEC §13) -------------------------------------------

# Strings in the JSON of a `parts` column that still says something (an erased one holds
# none of them), and in one that carries a file.
PARTS_MARKERS = ('"t"', '"buttons"', '"attachment"')
FILE_MARKERS = ('"file"', '"attachment"')


def erased_parts(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The `parts` column of a message whose text is erased: its topic and subject and no
    parts; `as_outbound` reads it back as a message that says nothing."""
    stored = stored or {}
    erased: dict[str, Any] = {"v": 2, "topic": stored.get("topic", "message"), "parts": []}
    if stored.get("subject") is not None:
        erased["subject"] = stored["subject"]
    for kept in ("in_reply_to", "language"):
        if stored.get(kept) is not None:
            erased[kept] = stored[kept]
    return erased


def without_files(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `parts` column without its attached files; None when it carries none."""
    if not stored:
        return None
    if stored.get("v") == 2:
        parts = stored.get("parts", [])
        kept = [p for p in parts if p.get("t") != "file"]
        return None if len(kept) == len(parts) else {**stored, "parts": kept}
    if "attachment" in stored:
        return {key: value for key, value in stored.items() if key != "attachment"}
    return None


def _redacted_part(part: Part, replacements: dict[str, str]) -> Part:
    if isinstance(part, Text | Strong | Code):
        return type(part)(redact(part.text, replacements))
    if isinstance(part, Table):
        return Table(
            tuple(redact(h, replacements) for h in part.headers),
            tuple(tuple(redact(c, replacements) for c in row) for row in part.rows),
        )
    if isinstance(part, Actions):
        return Actions(tuple(Button(redact(b.label, replacements), b.action) for b in part.buttons))
    return part  # a file goes as it is; it is dropped once delivered


def redacted(message: Outbound, replacements: dict[str, str]) -> Outbound:
    """The message with every whole word (any case) that is a key of `replacements`
    replaced by its value, in its text, tables and button labels."""
    return replace(message, parts=tuple(_redacted_part(p, replacements) for p in message.parts))
